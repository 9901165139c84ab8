"""The version-skew policy and the upgrade path, on hand-built inventories (no API, no processes)."""
import pytest

from ansible_collections.cplane.kubeadm.plugins.module_utils import _kubeadm
from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import InputError
from ansible_collections.cplane.kubeadm.plugins.module_utils._versions import skew


def node(name, kubelet, kube_proxy="same", control_plane=None):
    return {"name": name, "roles": ["control-plane"] if control_plane else [], "ready": True, "kubelet": kubelet,
            "kube_proxy": kubelet if kube_proxy == "same" else kube_proxy,
            "kube_proxy_source": "node" if kube_proxy else None, "control_plane": control_plane or {}, "restarts": {}}


def cp(version, **overrides):
    versions = {"kube-apiserver": version, "kube-controller-manager": version, "kube-scheduler": version,
                "etcd": "3.5.15-0"}
    versions.update({k.replace("_", "-"): v for k, v in overrides.items()})
    return versions


def inventory(*nodes, daemonset=None, kubectl=None, api_server=None):
    return {"api_server": api_server, "nodes": list(nodes), "kube_proxy_daemonset": daemonset,
            "local": {"kubectl": kubectl} if kubectl else {}}


def rules(inv):
    return sorted(v["rule"] for v in skew.evaluate_skew(inv))


@pytest.mark.parametrize("text,expected", [
    ("v1.12.1", (1, 12, 1)), ("1.30", (1, 30, 0)), ("Kubernetes v1.30.4", (1, 30, 4)),
    ("v1.30.4-eks-a1b2c3", (1, 30, 4)), ("v1.29.0+k3s1", (1, 29, 0)),
    ('Client Version: version.Info{Major:"1", Minor:"12", GitVersion:"v1.12.1", GitCommit:"4ed3216f"}', (1, 12, 1)),
    ("Client Version: v1.30.4\nKustomize Version: v5.0.4-0.2023", (1, 30, 4)),
])
def test_parse_version(text, expected):
    assert tuple(skew.parse_version(text)) == expected


@pytest.mark.parametrize("text", [None, "", "latest", "unknown"])
def test_parse_version_rejects_what_is_not_a_version(text):
    assert skew.parse_version(text) is None


@pytest.mark.parametrize("image,tag", [
    ("registry.k8s.io/kube-apiserver:v1.30.4", "v1.30.4"),
    ("my-registry:5000/k8s/kube-apiserver:v1.30.4@sha256:abcd", "v1.30.4"),
    ("my-registry:5000/k8s/kube-apiserver", None),
    ("k8s.gcr.io/etcd:3.2.24", "3.2.24"),
    (None, None),
])
def test_image_tag(image, tag):
    assert _kubeadm.image_tag(image) == tag


def test_clean_cluster_has_no_violation_and_nothing_mixed():
    inv = inventory(node("cp1", "v1.30.4", control_plane=cp("v1.30.4")), node("w1", "v1.30.4"), node("w2", "v1.30.4"))
    assert skew.evaluate_skew(inv) == []
    assert skew.find_mixed_versions(inv) == []


def test_seed_one_node_one_minor_behind_is_mixed_not_a_violation():
    inv = inventory(node("antidote-controller-4m3j", "v1.12.1", control_plane=cp("v1.12.1")),
                    node("antidote-worker-3m7f", "v1.12.1"), node("antidote-worker-3mcj", "v1.12.1"),
                    node("antidote-worker-gt5t", "v1.11.3"))
    assert skew.evaluate_skew(inv) == []
    kubelet = [m for m in skew.find_mixed_versions(inv) if m["component"] == "kubelet"]
    assert kubelet == [{"component": "kubelet", "node": "antidote-worker-gt5t", "version": "v1.11.3",
                        "majority_version": "v1.12.1",
                        "message": "kubelet on antidote-worker-gt5t is v1.11.3; the rest of the cluster runs v1.12.1"}]


def test_patch_difference_is_mixed_but_allowed():
    inv = inventory(node("cp1", "v1.30.4", control_plane=cp("v1.30.4")), node("w1", "v1.30.4"), node("w2", "v1.30.2"))
    assert skew.evaluate_skew(inv) == []
    assert [(m["node"], m["version"]) for m in skew.find_mixed_versions(inv) if m["component"] == "kubelet"] == [("w2", "v1.30.2")]


def test_majority_tie_goes_to_the_newest():
    inv = inventory(node("cp1", "v1.30.4", control_plane=cp("v1.30.4")), node("w1", "v1.29.8"))
    mixed = [m for m in skew.find_mixed_versions(inv) if m["component"] == "kubelet"]
    assert [(m["node"], m["majority_version"]) for m in mixed] == [("w1", "v1.30.4")]


def test_kubelet_three_minors_behind_is_allowed_four_is_not():
    ok = inventory(node("cp1", "v1.30.4", control_plane=cp("v1.30.4")), node("w1", "v1.27.16"))
    assert rules(ok) == []
    bad = inventory(node("cp1", "v1.30.4", control_plane=cp("v1.30.4")), node("w1", "v1.26.15", kube_proxy="v1.27.0"))
    violation = skew.evaluate_skew(bad)
    assert [(v["rule"], v["node"], v["versions"]) for v in violation] == [
        ("kubelet-too-old", "w1", {"kubelet": "v1.26.15", "kube-apiserver": "v1.30.4"})]
    assert "4 minor versions older" in violation[0]["message"]


def test_kubelets_older_than_1_25_may_lag_only_two_minors():
    assert rules(inventory(node("cp1", "v1.26.15", control_plane=cp("v1.26.15")), node("w1", "v1.24.17"))) == []
    assert rules(inventory(node("cp1", "v1.26.15", control_plane=cp("v1.26.15")),
                           node("w1", "v1.23.17", kube_proxy="v1.24.0"))) == ["kubelet-too-old"]


def test_kubelet_newer_than_the_oldest_apiserver_in_ha():
    # cp1 already upgraded to 1.30: a 1.30 kubelet is newer than cp2's 1.29 API server.
    inv = inventory(node("cp1", "v1.29.8", control_plane=cp("v1.30.4")), node("cp2", "v1.29.8", control_plane=cp("v1.29.8")),
                    node("w1", "v1.30.4", kube_proxy="v1.29.8"))
    violations = skew.evaluate_skew(inv)
    assert [(v["rule"], v["node"], v["versions"]["kube-apiserver"]) for v in violations] == [
        ("kubelet-newer-than-apiserver", "w1", "v1.29.8")]


def test_apiserver_instances_more_than_one_minor_apart():
    inv = inventory(node("cp1", "v1.28.13", control_plane=cp("v1.30.4")), node("cp2", "v1.28.13", control_plane=cp("v1.28.13")))
    assert [(v["rule"], v["node"]) for v in skew.evaluate_skew(inv)] == [("apiserver-skew", "cp2")]


def test_controllers_are_compared_with_the_apiserver_on_their_node():
    # Mid-upgrade HA: cp1 fully on 1.30 while cp2 is still on 1.29 is the supported kubeadm order.
    inv = inventory(node("cp1", "v1.29.8", control_plane=cp("v1.30.4")), node("cp2", "v1.29.8", control_plane=cp("v1.29.8")))
    assert rules(inv) == []
    newer = inventory(node("cp1", "v1.29.8", control_plane=cp("v1.29.8", kube_controller_manager="v1.30.4")))
    assert [(v["rule"], v["component"]) for v in skew.evaluate_skew(newer)] == [
        ("controller-newer-than-apiserver", "kube-controller-manager")]
    older = inventory(node("cp1", "v1.30.4", control_plane=cp("v1.30.4", kube_scheduler="v1.28.13")))
    assert [(v["rule"], v["component"]) for v in skew.evaluate_skew(older)] == [("controller-too-old", "kube-scheduler")]


def test_kube_proxy_rules():
    base = node("cp1", "v1.30.4", control_plane=cp("v1.30.4"))
    assert rules(inventory(base, node("w1", "v1.30.4", kube_proxy="v1.31.0"))) == ["kube-proxy-newer-than-apiserver"]
    assert rules(inventory(base, node("w1", "v1.27.16", kube_proxy="v1.26.15"))) == ["kube-proxy-too-old"]
    assert rules(inventory(base, node("w1", "v1.26.15", kube_proxy="v1.30.4"))) == ["kube-proxy-kubelet-skew", "kubelet-too-old"]


def test_kube_proxy_from_the_daemonset_is_reported_once():
    nodes = [node("cp1", "v1.31.2", kube_proxy=None, control_plane=cp("v1.31.2"))] + \
        [node("w%d" % i, "v1.31.2", kube_proxy=None) for i in range(50)]
    violations = skew.evaluate_skew(inventory(*nodes, daemonset="v1.32.0"))
    assert [(v["rule"], v["node"]) for v in violations] == [("kube-proxy-newer-than-apiserver", None)]
    assert skew.component_summary(inventory(*nodes, daemonset="v1.32.0"))["kube-proxy"] == {"v1.32.0": 51}


def test_kubectl_within_one_minor_of_every_apiserver():
    base = node("cp1", "v1.30.4", control_plane=cp("v1.30.4"))
    assert rules(inventory(base, kubectl="v1.31.0")) == []
    assert rules(inventory(base, kubectl="v1.29.8")) == []
    assert rules(inventory(base, kubectl="v1.28.13")) == ["kubectl-skew"]
    ha = inventory(node("cp1", "v1.29.8", control_plane=cp("v1.30.4")), node("cp2", "v1.29.8", control_plane=cp("v1.29.8")),
                   kubectl="v1.31.0")
    assert rules(ha) == ["kubectl-skew"]  # two minors from cp2's 1.29


def test_reported_version_is_used_without_static_pods():
    inv = inventory(node("w1", "v1.30.4"), node("w2", "v1.26.1", kube_proxy="v1.27.0"), api_server="v1.30.4")
    assert rules(inv) == ["kubelet-too-old"]


def test_upgrade_path_1_27_to_1_30_one_minor_at_a_time():
    inv = inventory(node("cp1", "v1.27.16", control_plane=cp("v1.27.16")), node("w1", "v1.27.16"),
                    node("w2", "v1.26.15", kube_proxy="v1.26.15"))
    path = skew.plan_upgrade(inv, "v1.30")
    assert (path["from"], path["to"]) == ("v1.27.16", "v1.30.0")
    assert [(s["from"], s["to"]) for s in path["steps"]] == [("1.27", "1.28"), ("1.28", "1.29"), ("1.29", "1.30")]
    assert path["steps"][0]["upgrade_first"] == [] and path["steps"][1]["upgrade_first"] == []
    # w2's kubelet 1.26 would be four minors behind 1.30: it must move to 1.29 first.
    assert [(u["component"], u["node"], u["upgrade_to"]) for u in path["steps"][2]["upgrade_first"]] == [("kubelet", "w2", "1.29")]
    assert path["blocking"] == []
    assert "kubeadm upgrade apply v1.30.x" in path["steps"][2]["order"][1]


def test_upgrade_path_lists_blocking_violations():
    inv = inventory(node("cp1", "v1.27.16", control_plane=cp("v1.27.16", kube_scheduler="v1.25.16")), node("w1", "v1.27.16"))
    path = skew.plan_upgrade(inv, "1.28")
    assert [v["rule"] for v in path["blocking"]] == ["controller-too-old"]
    assert [(u["component"], u["upgrade_to"]) for u in path["steps"][0]["upgrade_first"]] == [("kube-scheduler", "1.27")]


def test_upgrade_path_to_the_current_minor_has_no_steps():
    inv = inventory(node("cp1", "v1.30.2", control_plane=cp("v1.30.2")))
    assert skew.plan_upgrade(inv, "v1.30.4")["steps"] == []


@pytest.mark.parametrize("target,words", [("v1.29", "does not downgrade"), ("v2.0", "major"), ("latest", "not a Kubernetes version")])
def test_upgrade_path_refuses_what_kubeadm_cannot_do(target, words):
    with pytest.raises(InputError) as raised:
        skew.plan_upgrade(inventory(node("cp1", "v1.30.2", control_plane=cp("v1.30.2"))), target)
    assert words in raised.value.msg


def test_every_rule_has_a_description():
    inv = inventory(node("cp1", "v1.30.4", control_plane=cp("v1.30.4")), node("w1", "v1.26.15"))
    for violation in skew.evaluate_skew(inv):
        assert skew.RULES[violation["rule"]] in violation["message"]
