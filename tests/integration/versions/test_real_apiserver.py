"""node_version_check against a real kube-apiserver (tests/lab/control_plane.py), cross-checked with the real kubectl.

One control plane per module (its start-up costs tens of seconds): kubeadm writes the PKI and the
kube-apiserver manifest, the kubelet double runs it on a real etcd member, and the nodes of each
test register as kubelets do (Node + status with nodeInfo.kubeletVersion; mirror pods for static pods).
The API double keeps serving what no binary here can be: the seed's 1.12 cluster and the 5,000-node benchmark.
"""
import json
import os
import ssl
import subprocess
import time
import urllib.request

import pytest

from tests.lab.ansible_run import BIN, run_module
from tests.lab.kubeadm import LabBinaryMissing, k8s_versions, real_binary


@pytest.fixture(scope="module")
def control_plane(tmp_path_factory):
    from tests.lab.control_plane import ControlPlaneLab
    try:
        lab = ControlPlaneLab(str(tmp_path_factory.mktemp("control-plane")))
    except LabBinaryMissing as exc:
        pytest.fail(str(exc))
    with lab:
        yield lab


@pytest.fixture
def nodes(control_plane):
    """``nodes({"w1": "v1.37.2", ...})`` registers kubelet agents; they are stopped and their Nodes deleted afterwards."""
    added = []

    def register(versions):
        for name, version in versions.items():
            control_plane.add_node(name, version)
            added.append(name)

    yield register
    for name in added:
        control_plane.remove_node(name)


def kubectl(control_plane, *args):
    """The newer minor's kubectl (the one scripts/lab-binaries builds by default) as kubernetes-admin."""
    proc = subprocess.run([real_binary("kubectl"), "--kubeconfig", control_plane.admin_kubeconfig]
                          + list(args), capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def kubectl_kubelet_versions(control_plane):
    listed = json.loads(kubectl(control_plane, "get", "nodes", "-o", "json"))
    return {n["metadata"]["name"]: n["status"]["nodeInfo"]["kubeletVersion"] for n in listed["items"]}


def check(control_plane, **args):
    result = run_module("node_version_check", dict(args, kubeconfig=control_plane.admin_kubeconfig))
    assert result["failed"] is False, result.get("msg")
    return result


def test_the_control_plane_node_is_what_kubelet_and_kubeadm_make_of_it(control_plane):
    v = "v" + control_plane.version
    pod = control_plane.admin.get("/api/v1/namespaces/kube-system/pods/kube-apiserver-cp1")
    annotations = pod["metadata"]["annotations"]
    assert annotations["kubernetes.io/config.source"] == "file"
    assert annotations["kubernetes.io/config.hash"] == annotations["kubernetes.io/config.mirror"]
    assert len(annotations["kubernetes.io/config.hash"]) == 32
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "Node" and pod["spec"]["nodeName"] == "cp1"
    assert pod["metadata"]["labels"] == {"component": "kube-apiserver", "tier": "control-plane"}
    assert pod["spec"]["containers"][0]["image"] == "registry.k8s.io/kube-apiserver:%s" % v
    assert pod["status"]["containerStatuses"][0]["ready"] is True
    # The process serving the API is the lab-built binary of the image's version.
    pid = control_plane.apiserver_pid()
    assert os.path.realpath("/proc/%d/exe" % pid) == os.path.realpath(real_binary("kube-apiserver", control_plane.version))
    # kubeadm's mark-control-plane phase labelled the node the kubelet agent registered.
    node = control_plane.admin.get("/api/v1/nodes/cp1")
    assert "node-role.kubernetes.io/control-plane" in node["metadata"]["labels"]
    assert node["status"]["nodeInfo"]["kubeletVersion"] == v
    assert node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"] == control_plane.kubelet.healthz_port
    with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % control_plane.kubelet.healthz_port, timeout=5) as r:
        assert r.status == 200 and r.read() == b"ok"
    # The real kubectl sees the real server version.
    server = json.loads(kubectl(control_plane, "version", "-o", "json"))["serverVersion"]
    assert server["gitVersion"] == v
    context = ssl.create_default_context(cafile=os.path.join(control_plane.node.pki_dir, "ca.crt"))
    with urllib.request.urlopen(control_plane.url + "/livez", context=context, timeout=5) as r:
        assert r.status == 200


def test_seed_shape_one_kubelet_fat_fingered_one_minor_older(control_plane, nodes):
    """The seed incident on real versions: one worker's kubelet a minor behind the rest (within policy: mixed)."""
    newer, older = "v" + k8s_versions()[-1], "v" + k8s_versions()[0]
    assert control_plane.version == newer.lstrip("v")
    nodes({"worker-a": newer, "worker-b": newer, "worker-c": older})
    result = check(control_plane)
    assert result["api_server_version"] == newer
    assert result["violations"] == []
    kubelet = [(m["node"], m["version"], m["majority_version"]) for m in result["mixed_versions"] if m["component"] == "kubelet"]
    assert kubelet == [("worker-c", older, newer)]
    assert result["components"]["kubelet"] == {newer: 3, older: 1}
    # kubelets leave kubeProxyVersion empty since 1.31: kube-proxy's version is the DaemonSet kubeadm applied.
    assert result["components"]["kube_proxy_daemonset"] == newer
    daemonset = json.loads(kubectl(control_plane, "-n", "kube-system", "get", "daemonset", "kube-proxy", "-o", "json"))
    assert daemonset["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.k8s.io/kube-proxy:%s" % newer
    assert {n["name"]: n["kubelet"] for n in result["nodes"]} == kubectl_kubelet_versions(control_plane)
    controller = next(n for n in result["nodes"] if n["name"] == "cp1")
    assert controller["roles"] == ["control-plane"] and controller["ready"] is True
    assert controller["control_plane"] == {"kube-apiserver": newer}
    assert controller["restarts"] == {"kube-apiserver": 0}


def test_clean_cluster_has_no_violation_and_no_mixed_version(control_plane, nodes):
    newer = "v" + control_plane.version
    nodes({"worker-1": newer, "worker-2": newer})
    result = check(control_plane, fail_on="mixed")
    assert result["violations"] == [] and result["mixed_versions"] == []
    assert sorted(n["name"] for n in result["nodes"]) == ["cp1", "worker-1", "worker-2"]
    assert kubectl_kubelet_versions(control_plane) == {"cp1": newer, "worker-1": newer, "worker-2": newer}


def test_kubelet_four_minors_behind_is_a_violation(control_plane, nodes):
    major, minor = control_plane.version.split(".")[:2]
    too_old = "v%s.%d.0" % (major, int(minor) - 4)
    nodes({"worker-old": too_old})
    result = run_module("node_version_check", dict(kubeconfig=control_plane.admin_kubeconfig, fail_on="violation"))
    assert result["failed"] is True and "worker-old" in result["msg"] and too_old in result["msg"]
    # kube-proxy (the DaemonSet's version, on every node) is then four minors ahead of that kubelet, too.
    assert sorted((v["rule"], v["node"]) for v in result["violations"]) == [
        ("kube-proxy-kubelet-skew", "worker-old"), ("kubelet-too-old", "worker-old")]


def test_local_versions_come_from_the_real_binaries(control_plane, tmp_path):
    """gather_local runs the real kubectl and kubeadm (kubelet is absent here and reported so)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in ("kubectl", "kubeadm"):
        os.symlink(real_binary(name, control_plane.version), str(bindir / name))
    result = run_module("node_version_check", dict(kubeconfig=control_plane.admin_kubeconfig, gather_local=True),
                        env={"PATH": os.pathsep.join([str(bindir), BIN, "/usr/bin", "/bin"])})
    assert result["failed"] is False, result.get("msg")
    v = "v" + control_plane.version
    assert result["local"]["kubectl"]["version"] == v and result["local"]["kubeadm"]["version"] == v
    assert result["local"]["kubelet"]["found"] is False
    assert result["components"]["local"] == {"kubectl": v, "kubeadm": v}


def test_a_manifest_kubeadm_rewrites_gets_a_new_pod_and_mirror_hash(control_plane):
    """What kubeadm's upgrade waits for (WaitForStaticPodHash): kubelet runs the new manifest and the mirror
    pod's kubernetes.io/config.hash changes.  Last in the module: it restarts the API server."""
    path = "/api/v1/namespaces/kube-system/pods/kube-apiserver-cp1"
    before = control_plane.admin.get(path)["metadata"]["annotations"]["kubernetes.io/config.hash"]
    old_pid = control_plane.apiserver_pid()
    control_plane.node.apiserver_args["v"] = "3"
    control_plane.node.write_config()
    control_plane.node.init_phase("control-plane", "apiserver")

    def restarted():
        try:
            pod = control_plane.admin.get(path)
        except Exception:  # the API server is restarting
            return None
        statuses = pod["status"].get("containerStatuses") or [{}]
        changed = pod["metadata"]["annotations"]["kubernetes.io/config.hash"] != before
        return pod if changed and statuses[0].get("ready") else None

    deadline = time.monotonic() + 180
    pod = restarted()
    while pod is None and time.monotonic() < deadline:
        time.sleep(1)
        pod = restarted()
    assert pod is not None, control_plane.kubelet.agent_errors[-5:]
    assert "--v=3" in pod["spec"]["containers"][0]["command"]
    assert control_plane.apiserver_pid() != old_pid
    annotations = pod["metadata"]["annotations"]
    assert annotations["kubernetes.io/config.mirror"] == annotations["kubernetes.io/config.hash"]
    # One mirror pod for the node's one static pod: the old one was replaced, not left beside it.
    listed = control_plane.admin.get("/api/v1/namespaces/kube-system/pods", fieldSelector="spec.nodeName=cp1")
    assert [p["metadata"]["name"] for p in listed["items"]] == ["kube-apiserver-cp1"]
    assert check(control_plane)["api_server_version"] == "v" + control_plane.version


@pytest.fixture(scope="module")
def older_control_plane(tmp_path_factory):
    """The older of the two built minors: a control plane an upgrade would start from."""
    from tests.lab.control_plane import ControlPlaneLab
    try:
        lab = ControlPlaneLab(str(tmp_path_factory.mktemp("older-control-plane")), version=k8s_versions()[0])
    except LabBinaryMissing as exc:
        pytest.fail(str(exc))
    with lab:
        yield lab


def test_a_kubelet_newer_than_the_older_api_server_is_a_violation(older_control_plane):
    """Before an upgrade's first step: a node whose kubelet was upgraded ahead of the API server."""
    older, newer = "v" + k8s_versions()[0], "v" + k8s_versions()[-1]
    lab = older_control_plane
    lab.add_node("worker-ahead", newer)
    try:
        result = run_module("node_version_check", dict(kubeconfig=lab.admin_kubeconfig, target_version=newer))
        assert result["failed"] is False, result.get("msg")
        assert result["api_server_version"] == older
        assert [(v["rule"], v["node"]) for v in result["violations"]] == [("kubelet-newer-than-apiserver", "worker-ahead")]
        assert {n["name"]: n["control_plane"] for n in result["nodes"]}["cp1"] == {"kube-apiserver": older}
        steps = result["upgrade_path"]["steps"]
        assert [(s["from"], s["to"]) for s in steps] == [(older.lstrip("v").rsplit(".", 1)[0], newer.lstrip("v").rsplit(".", 1)[0])]
        # The newer kubectl (one minor ahead: within its skew policy) reads the older server.
        server = json.loads(kubectl(lab, "version", "-o", "json"))["serverVersion"]["gitVersion"]
        assert server == older
    finally:
        lab.remove_node("worker-ahead")
