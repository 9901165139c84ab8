"""cplane.kubeadm.node_version_check run through ``ansible`` against the Kubernetes API double."""
import os
import stat

import yaml

from tests.lab.ansible_run import BIN, run_module, run_playbook
from tests.lab.api_double import Cluster, fixture_names, generate, unused_address
from tests.lab.pki import ClusterCAs


def fake_binaries(directory, outputs):
    """Scripts that print what the real binaries print for their version commands."""
    os.makedirs(directory, exist_ok=True)
    for name, output in outputs.items():
        path = os.path.join(str(directory), name)
        with open(path, "w") as handle:
            handle.write("#!/bin/sh\ncat <<'EOF'\n%s\nEOF\n" % output)
        os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
    # Our fakes first; /bin for the shell tools Ansible's local connection uses.
    return {"PATH": os.pathsep.join([str(directory), BIN, "/usr/bin", "/bin"])}


def check(api, **args):
    args.setdefault("kubeconfig", api.kubeconfig)
    return run_module("node_version_check", args, check=args.pop("_check", False), env=args.pop("_env", None))


def assert_clean_failure(result, *words):
    assert result["failed"], result
    for word in words:
        assert word in result["msg"], result["msg"]
    # ansible-core 2.19 adds exception="(traceback unavailable)" to every failure; a real one starts "Traceback".
    assert "Traceback" not in result["_stdout"] and "Traceback" not in str(result.get("exception", ""))


def test_each_fixture_reports_exactly_its_expected_violations(api_for, tmp_path):
    """All fixtures in one ansible-playbook run (one task per fixture) to keep the suite fast."""
    clusters = [Cluster.load(name) for name in fixture_names()]
    tasks = []
    for cluster in clusters:
        api = api_for(cluster)
        task = {"name": cluster.name, "cplane.kubeadm.node_version_check": {"kubeconfig": api.kubeconfig},
                "ignore_errors": True}
        if cluster.host_binaries:
            task["cplane.kubeadm.node_version_check"]["gather_local"] = True
            task["environment"] = fake_binaries(tmp_path / ("bin-" + cluster.name), cluster.host_binaries)
        tasks.append(task)
    playbook = tmp_path / "fixtures.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]))
    run = run_playbook(str(playbook))
    assert len(run.results) == len(clusters), run.output
    for cluster in clusters:
        (entry,) = run.task(cluster.name)
        result = entry["result"]
        assert entry["status"] == "ok", (cluster.name, result.get("msg"))
        assert sorted(v["rule"] for v in result["violations"]) == sorted(cluster.expect.get("violations", [])), cluster.name
        if "mixed" in cluster.expect:
            assert sorted({m["node"] for m in result["mixed_versions"]}) == sorted(cluster.expect["mixed"]), cluster.name
        assert len(result["nodes"]) == len(cluster.nodes)


def test_seed_cluster_reports_the_fat_fingered_node(api_for):
    result = check(api_for("seed"))
    assert not result["failed"] and result["changed"] is False
    assert result["violations"] == []  # one minor behind the API server is within policy
    kubelet = [m for m in result["mixed_versions"] if m["component"] == "kubelet"]
    assert [(m["node"], m["version"], m["majority_version"]) for m in kubelet] == [("antidote-worker-gt5t", "v1.11.3", "v1.12.1")]
    assert result["components"]["kubelet"] == {"v1.12.1": 3, "v1.11.3": 1}
    controller = next(n for n in result["nodes"] if n["name"] == "antidote-controller-4m3j")
    assert controller["roles"] == ["master"]
    assert controller["control_plane"] == {"etcd": "3.2.24", "kube-apiserver": "v1.12.1",
                                           "kube-controller-manager": "v1.12.1", "kube-scheduler": "v1.12.1"}
    assert controller["restarts"]["etcd"] == 183  # the seed's restart loop is visible too
    assert result["api_server_version"] == "v1.12.1"


def test_fail_on(api_for):
    seed = api_for("seed")
    assert not check(seed, fail_on="violation")["failed"]
    assert_clean_failure(check(seed, fail_on="mixed"), "0 version-skew violation(s)", "antidote-worker-gt5t is v1.11.3")
    too_old = api_for("skew-kubelet-too-old")
    failed = check(too_old, fail_on="violation")
    assert_clean_failure(failed, "1 version-skew violation(s)", "worker2", "v1.26.15")
    assert [v["rule"] for v in failed["violations"]] == ["kubelet-too-old"]  # the report still comes back
    assert not check(api_for("clean"), fail_on="mixed")["failed"]


def test_check_mode_reads_the_same(api_for):
    api = api_for("seed")
    normal, checked = check(api), check(api, _check=True)
    assert checked["changed"] is False and not checked["failed"]
    assert checked["mixed_versions"] == normal["mixed_versions"] and checked["nodes"] == normal["nodes"]


def test_pagination_with_more_nodes_than_the_page(api_for):
    api = api_for(generate(nodes=23, control_planes=3, version="v1.30.4", odd={17: "v1.29.8"}, images=0))
    result = check(api, page_size=5)
    assert len(result["nodes"]) == 23 == len({n["name"] for n in result["nodes"]})
    assert api.count("/api/v1/nodes") == 5  # 5 + 5 + 5 + 5 + 3
    assert all(q.get("limit") == "5" for p, q in api.requests if p == "/api/v1/nodes")
    assert [(m["node"], m["component"]) for m in result["mixed_versions"]] == [("worker-00017", "kube-proxy"),
                                                                               ("worker-00017", "kubelet")]


def test_upgrade_path_1_27_to_1_30(api_for):
    api = api_for(Cluster.from_dict({"version": "v1.27.16", "nodes": [
        {"name": "cp1", "control_plane": True}, {"name": "worker1"},
        {"name": "worker2", "kubelet": "v1.26.15"}]}))
    path = check(api, target_version="v1.30")["upgrade_path"]
    assert [(s["from"], s["to"]) for s in path["steps"]] == [("1.27", "1.28"), ("1.28", "1.29"), ("1.29", "1.30")]
    assert [[(u["component"], u["node"]) for u in s["upgrade_first"]] for s in path["steps"]] == [
        [], [], [("kubelet", "worker2")]]
    assert path["blocking"] == []
    downgrade = check(api, target_version="v1.26")
    assert_clean_failure(downgrade, "does not downgrade")


def test_gather_local_reports_missing_binaries_as_not_found(api_for, tmp_path):
    api = api_for("clean")
    env = fake_binaries(tmp_path / "bin", {"kubelet": "Kubernetes v1.30.4", "kubectl": "Client Version: v1.30.4"})
    result = check(api, gather_local=True, _env=env)
    assert not result["failed"], result.get("msg")
    assert result["local"]["kubelet"]["version"] == "v1.30.4"
    assert result["local"]["kubectl"]["path"] == str(tmp_path / "bin" / "kubectl")
    assert result["local"]["kubeadm"] == {"found": False, "path": None, "version": None, "error": None}
    assert result["components"]["local"] == {"kubelet": "v1.30.4", "kubectl": "v1.30.4"}


def test_unreachable_api_server(api_for):
    api = api_for("clean")
    address = unused_address()
    result = check(api, host=address)
    assert_clean_failure(result, "cannot reach the API server at %s" % address, "kube-apiserver is running")


def test_missing_and_malformed_kubeconfig(api_for, tmp_path):
    api = api_for("clean")
    missing = str(tmp_path / "missing.conf")
    assert_clean_failure(check(api, kubeconfig=missing), "kubeconfig %s does not exist" % missing)
    broken = tmp_path / "broken.conf"
    with open(api.kubeconfig) as handle:
        broken.write_text(handle.read() + "\n  : [unclosed\n")
    result = check(api, kubeconfig=str(broken))
    assert_clean_failure(result, "kubeconfig %s is not valid YAML" % broken)
    with open(api.client_key) as handle:
        key_body = handle.read().splitlines()[1]
    assert key_body not in result["_stdout"]
    assert_clean_failure(check(api, context="prod"), "has no context named 'prod'", "kubernetes-admin@kubernetes")


def test_wrong_ca_and_missing_client_certificate(api_for, tmp_path):
    api = api_for("clean")
    wrong = api.write_kubeconfig(tmp_path / "other-cluster.conf", cas=ClusterCAs.create(key_type="ecdsa"))
    assert_clean_failure(check(api, kubeconfig=wrong), "TLS to the API server at %s failed" % api.url, "not signed by the CA")
    result = check(api, kubeconfig=None, host=api.url, ca_cert=api.ca_cert)
    assert_clean_failure(result, api.url)
    assert "client certificate" in result["msg"]


def test_bearer_token_auth_and_rejection_without_leaking_it(api_for):
    token = "abcdef.0123456789abcdef"
    api = api_for("clean", tokens={token})
    ok = check(api, kubeconfig=None, host=api.url, ca_cert=api.ca_cert, api_key=token)
    assert not ok["failed"] and ok["api_server_version"] == "v1.30.4"
    wrong = "zzzzzz.0123456789zzzzzz"
    rejected = check(api, kubeconfig=None, host=api.url, ca_cert=api.ca_cert, api_key=wrong)
    assert_clean_failure(rejected, "401 Unauthorized")
    assert wrong not in rejected["_stdout"] and wrong not in rejected["msg"]


def test_client_certificate_options(api_for):
    api = api_for("clean")
    result = check(api, kubeconfig=None, host=api.url, ca_cert=api.ca_cert, client_cert=api.client_cert,
                   client_key=api.client_key)
    assert not result["failed"], result.get("msg")
    assert len(result["nodes"]) == 6


def test_versions_follow_the_kubelet_doubles_static_pods(api_for, tmp_path):
    """With the kubelet double attached, control-plane versions come from its manifests, live."""
    from tests.lab.kubelet_double import KubeletDouble

    manifests = tmp_path / "cp1" / "etc/kubernetes/manifests"
    manifests.mkdir(parents=True)

    def manifest(component, version):
        (manifests / (component + ".yaml")).write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": component, "namespace": "kube-system", "labels": {"component": component, "tier": "control-plane"}},
            "spec": {"containers": [{"name": component, "image": "registry.k8s.io/%s:%s" % (component, version)}]}}))

    manifest("kube-apiserver", "v1.29.8")
    manifest("kube-scheduler", "v1.30.4")
    with KubeletDouble("cp1", str(tmp_path / "cp1"), time_scale=0.05) as kubelet:
        kubelet.wait_for(lambda k: len(k.pods()) == 2, what="two static pods")
        api = api_for("clean", kubelets=[kubelet])
        before = check(api)
        assert before["components"]["kube-apiserver"] == [
            {"node": "cp1", "version": "v1.29.8", "image": "registry.k8s.io/kube-apiserver:v1.29.8"}]
        rules = sorted({v["rule"] for v in before["violations"]})
        assert rules == ["controller-newer-than-apiserver", "kube-proxy-newer-than-apiserver", "kubelet-newer-than-apiserver"]
        manifest("kube-apiserver", "v1.30.4")  # the operator fixes the manifest; kubelet restarts the pod
        # While kubelet swaps the pod, it is briefly absent.
        kubelet.wait_for(lambda k: ((k.pod("kube-apiserver-cp1") or {}).get("image") or "").endswith("v1.30.4"),
                         what="new apiserver pod")
        after = check(api)
        assert after["violations"] == []
        assert after["nodes"][0]["control_plane"] == {"kube-apiserver": "v1.30.4", "kube-scheduler": "v1.30.4"}
