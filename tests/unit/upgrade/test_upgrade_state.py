"""What a node still needs for an upgrade (backend of kubeadm_upgrade_state), on plain data; no processes."""
import os

import pytest

from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import InputError, OperationFailed
from ansible_collections.cplane.kubeadm.plugins.module_utils._versions import skew, upgrade

TARGET = upgrade.target_of("1.37.2")


def manifests(tmp_path, versions, etcd="3.6.4-0"):
    directory = tmp_path / "manifests"
    directory.mkdir(exist_ok=True)
    for component, version in versions.items():
        (directory / (component + ".yaml")).write_text(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: %s-cp1, namespace: kube-system}\n"
            "spec:\n  containers:\n  - name: %s\n    image: registry.k8s.io/%s:%s\n" % (component, component, component, version))
    (directory / "etcd.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: etcd-cp1}\nspec:\n  containers:\n"
        "  - {name: etcd, image: 'registry.k8s.io/etcd:%s'}\n" % etcd)
    return str(directory)


def cp_tags(version):
    return dict((component, version) for component in upgrade.UPGRADED_COMPONENTS)


def node(kubelet="v1.37.2", ready=True, unschedulable=False, found=True):
    return {"name": "cp1", "found": found, "kubelet": kubelet, "ready": ready, "unschedulable": unschedulable,
            "control_plane": {}}


@pytest.mark.parametrize("text", ["1.37", "v1.37", "latest", "", "1.37.2.1"])
def test_target_needs_a_patch(text):
    with pytest.raises(InputError, match="major.minor.patch"):
        upgrade.target_of(text)


def test_target_accepts_both_spellings():
    assert upgrade.target_of("v1.37.2") == upgrade.target_of("1.37.2") == (1, 37, 2)
    assert upgrade.target_of("1.37.2").text == "v1.37.2"


def test_manifest_tags_read_from_kubeadm_manifests(tmp_path):
    directory = manifests(tmp_path, cp_tags("v1.36.3"))
    tags = upgrade.read_manifest_tags(directory)
    assert tags == {"kube-apiserver": "v1.36.3", "kube-controller-manager": "v1.36.3", "kube-scheduler": "v1.36.3",
                    "etcd": "3.6.4-0"}


def test_a_manifest_that_is_not_a_pod_is_named(tmp_path):
    directory = manifests(tmp_path, cp_tags("v1.36.3"))
    with open(os.path.join(directory, "kube-scheduler.yaml"), "w") as handle:
        handle.write("kind: [\n")
    with pytest.raises(InputError, match="kube-scheduler.yaml"):
        upgrade.read_manifest_tags(directory)


def test_control_plane_before_anything():
    local = upgrade.local_state(cp_tags("v1.36.3"), {"kubeadm": "v1.36.3", "kubelet": "v1.36.3", "kubectl": "v1.36.3"}, True)
    at_target, pending = upgrade.evaluate(TARGET, local, node(kubelet="v1.36.3"))
    assert pending == ["kubeadm", "control_plane", "kubelet", "kubectl"]
    assert at_target["uncordon"] is True


def test_control_plane_after_apply_before_kubelet():
    local = upgrade.local_state(cp_tags("v1.37.2"), {"kubeadm": "v1.37.2", "kubelet": "v1.36.3", "kubectl": "v1.36.3"}, True)
    assert upgrade.evaluate(TARGET, local, node(kubelet="v1.36.3"))[1] == ["kubelet", "kubectl"]


def test_installed_kubelet_not_restarted_is_pending():
    # The binary is new but the running kubelet (what the Node reports) is still the old one.
    local = upgrade.local_state(cp_tags("v1.37.2"), {"kubeadm": "v1.37.2", "kubelet": "v1.37.2", "kubectl": "v1.37.2"}, True)
    assert upgrade.evaluate(TARGET, local, node(kubelet="v1.36.3"))[1] == ["kubelet"]


def test_not_ready_node_is_pending_even_at_the_version():
    local = upgrade.local_state(cp_tags("v1.37.2"), {"kubeadm": "v1.37.2", "kubelet": "v1.37.2", "kubectl": "v1.37.2"}, True)
    assert upgrade.evaluate(TARGET, local, node(ready=False))[1] == ["kubelet"]


def test_cordoned_node_left_by_a_stopped_run_needs_uncordon():
    local = upgrade.local_state(cp_tags("v1.37.2"), {"kubeadm": "v1.37.2", "kubelet": "v1.37.2", "kubectl": "v1.37.2"}, True)
    assert upgrade.evaluate(TARGET, local, node(unschedulable=True))[1] == ["uncordon"]


def test_done_node():
    local = upgrade.local_state(cp_tags("v1.37.2"), {"kubeadm": "v1.37.2", "kubelet": "v1.37.2", "kubectl": "v1.37.2"}, True)
    at_target, pending = upgrade.evaluate(TARGET, local, node())
    assert pending == []
    assert at_target == {"kubeadm": True, "control_plane": True, "kubelet": True, "kubectl": True, "uncordon": True}


def test_worker_without_kubectl_or_kubeadm_needs_only_kubelet():
    local = upgrade.local_state({}, {"kubelet": "v1.36.3"}, False)
    at_target, pending = upgrade.evaluate(TARGET, local, node(kubelet="v1.36.3"))
    assert pending == ["kubelet"]
    assert at_target["control_plane"] is None and at_target["kubectl"] is None and at_target["kubeadm"] is None


def test_worker_with_kubeadm_needs_it_too():
    local = upgrade.local_state({}, {"kubelet": "v1.36.3", "kubeadm": "v1.36.3"}, False)
    assert upgrade.evaluate(TARGET, local, node(kubelet="v1.36.3"))[1] == ["kubeadm", "kubelet"]


def test_control_plane_without_kubeadm_installed_needs_it():
    local = upgrade.local_state(cp_tags("v1.36.3"), {"kubelet": "v1.36.3"}, True)
    assert "kubeadm" in upgrade.evaluate(TARGET, local, None)[1]


def test_one_manifest_behind_keeps_control_plane_pending():
    tags = dict(cp_tags("v1.37.2"), **{"kube-scheduler": "v1.36.3"})
    local = upgrade.local_state(tags, {"kubeadm": "v1.37.2"}, True)
    assert upgrade.evaluate(TARGET, local, None)[1] == ["control_plane"]


def test_missing_node_is_not_at_target():
    assert upgrade.evaluate(TARGET, None, node(found=False, kubelet=None, ready=False))[1] == ["kubelet", "uncordon"]


def test_free_bytes_of_a_missing_path_is_its_parents(tmp_path):
    free = upgrade.free_bytes([str(tmp_path / "not" / "there"), str(tmp_path)])
    assert free[str(tmp_path / "not" / "there")] == free[str(tmp_path)] > 0


class Clock(object):
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_wait_ready_returns_when_the_node_is_back():
    clock = Clock()
    answers = iter([OperationFailed("apiserver restarting"), node(kubelet="v1.36.3", ready=False), node()])
    result, waited = upgrade.wait_ready(lambda: _answer(next(answers)), TARGET, 60, interval=2, clock=clock, sleep=clock.sleep)
    assert result["kubelet"] == "v1.37.2" and waited == 4


def _answer(value):
    if isinstance(value, Exception):
        raise value
    return value


def test_wait_ready_times_out_with_what_to_do():
    clock = Clock()
    with pytest.raises(OperationFailed) as caught:
        upgrade.wait_ready(lambda: node(kubelet="v1.36.3", ready=False), TARGET, 10, interval=2, clock=clock,
                           sleep=clock.sleep)
    message = str(caught.value)
    assert "cp1 did not come back Ready with kubelet v1.37.2 within 10 s" in message
    assert "reports kubelet v1.36.3, Ready=False" in message
    assert "run the playbook again" in message
    assert clock.now == 10


def test_the_path_the_role_refuses_comes_from_plan_upgrade():
    # The role's refusal reads node_version_check's upgrade_path; two minors give two steps.
    inventory = {"api_server": "v1.35.4", "kube_proxy_daemonset": None, "local": {},
                 "nodes": [{"name": "cp1", "kubelet": "v1.35.4", "control_plane": {"kube-apiserver": "v1.35.4"}}]}
    path = skew.plan_upgrade(inventory, "1.37.2")
    assert [(step["from"], step["to"]) for step in path["steps"]] == [("1.35", "1.36"), ("1.36", "1.37")]
