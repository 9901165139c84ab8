"""The build playbook's refusals, on node trees in tmp (no lab node needed): an unsafe topology is
refused before any task touches a node, in check mode too; a half-joined node is refused after the
read-only state check with what to do; a check-mode run on fresh nodes validates kubeadm's
configuration with the real kubeadm and writes nothing."""
import hashlib
import json
import os

import pytest

from tests.lab.ansible_run import ROOT, run_playbook
from tests.lab.kubeadm import LabBinaryMissing, newest, real_binary

PLAYBOOK = os.path.join(ROOT, "playbooks", "build.yml")
NODE_TASKS = ("Read where every node stands", "Install", "Render and validate", "Reset", "Initialise", "Join")


def tree_digest(root):
    out = {}
    for base, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(base, name)
            with open(path, "rb") as handle:
                out[os.path.relpath(path, root)] = hashlib.sha256(handle.read()).hexdigest()
        for name in dirs:
            out[os.path.relpath(os.path.join(base, name), root) + "/"] = "dir"
    return out


def inventory(tmp_path, control_planes, workers=(), **group_vars):
    addresses = dict((h, "10.0.0.%d" % (11 + i)) for i, h in enumerate(list(control_planes) + list(workers)))

    def node(name):
        root = tmp_path / name
        for sub in ("etc/kubernetes", "var/lib/kubelet", "var/lib/etcd", "bin"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        return {"ansible_connection": "local", "cluster_build_advertise_address": addresses[name],
                "cluster_build_kubernetes_dir": str(root / "etc/kubernetes"),
                "cluster_build_kubelet_dir": str(root / "var/lib/kubelet"),
                "cluster_build_etcd_data_dir": str(root / "var/lib/etcd"),
                "cluster_build_bin_dir": str(root / "bin")}
    data = {"all": {"vars": dict({"cluster_build_kubernetes_version": newest(), "cluster_build_become": False,
                                  "cluster_build_control_plane_endpoint": "10.0.0.100:6443",
                                  "cluster_build_install_method": "binaries",
                                  "cluster_build_skip_prerequisites": ["containerd", "package_repository",
                                                                       "kernel_modules", "sysctl", "swap",
                                                                       "kubelet_service"]}, **group_vars),
                    "children": {"kube_control_plane": {"hosts": {h: node(h) for h in control_planes}},
                                 "kube_node": {"hosts": {h: node(h) for h in workers}}}}}
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps(data))
    return str(path)


def node_tasks(run):
    return [r for r in run.results if any(prefix in (r["task"] or "") for prefix in NODE_TASKS)]


@pytest.fixture(scope="module")
def kubeadm_binaries():
    try:
        return {"kubeadm": real_binary("kubeadm"), "kubelet": real_binary("kubeadm"), "kubectl": real_binary("kubectl")}
    except LabBinaryMissing as exc:
        pytest.fail(str(exc))


@pytest.mark.parametrize("check", [False, True], ids=["run", "check"])
def test_a_single_control_plane_is_refused_before_anything_runs(tmp_path, check):
    inv = inventory(tmp_path, ["cp1"])
    before = tree_digest(str(tmp_path / "cp1"))
    run = run_playbook(PLAYBOOK, {"target": "all"}, check=check, inventory=inv)
    assert run.rc != 0
    refusal = run.task("Refuse an unsafe topology")
    assert refusal and refusal[0]["status"] == "failed"
    assert "a single control-plane node (one etcd member) is a single point of failure" in refusal[0]["result"]["msg"]
    assert "cluster_build_allow_single_control_plane=true" in refusal[0]["result"]["msg"]
    assert node_tasks(run) == []
    assert not [r for r in run.results if r["result"].get("changed")]
    assert tree_digest(str(tmp_path / "cp1")) == before


def test_an_even_number_of_control_planes_is_refused_with_the_quorum_arithmetic(tmp_path):
    run = run_playbook(PLAYBOOK, {"target": "all"}, inventory=inventory(tmp_path, ["cp1", "cp2"], ["w1"]))
    assert run.rc != 0
    msg = run.task("Refuse an unsafe topology")[0]["result"]["msg"]
    assert "2 etcd members (one per control-plane node) need 2 healthy for quorum and tolerate 0 failure(s)" in msg
    assert node_tasks(run) == []


def test_a_half_joined_node_is_refused_with_what_to_do_and_nothing_changes(tmp_path):
    inv = inventory(tmp_path, ["cp1", "cp2", "cp3"], ["w1"],
                    cluster_build_binaries={"kubeadm": "/nonexistent/kubeadm", "kubelet": "/nonexistent/kubelet"})
    for name in ("ca.crt",):
        (tmp_path / "w1/etc/kubernetes/pki").mkdir(parents=True)
        (tmp_path / "w1/etc/kubernetes/pki" / name).write_text("x")
    (tmp_path / "w1/etc/kubernetes/bootstrap-kubelet.conf").write_text("x")
    before = tree_digest(str(tmp_path))
    run = run_playbook(PLAYBOOK, {"target": "all"}, inventory=inv)
    assert run.rc != 0
    refused = [r for r in run.task("Refuse what the plan cannot do safely") if r["status"] == "failed"]
    assert refused, run.output[-3000:]
    assert "w1 has bootstrap-kubelet.conf, ca.crt but not kubelet.conf" in refused[0]["result"]["msg"]
    assert "run 'kubeadm reset -f' on w1" in refused[0]["result"]["msg"]
    assert [r["task"].split(" : ")[-1] for r in node_tasks(run)] == ["Read where every node stands with kubeadm"] * 4
    assert tree_digest(str(tmp_path)) == before


def test_check_mode_on_fresh_nodes_validates_and_writes_nothing(tmp_path, kubeadm_binaries):
    # cluster_build_kubeadm_path points at the lab kubeadm: in check mode nothing is copied to bin_dir.
    inv = inventory(tmp_path, ["cp1", "cp2", "cp3"], ["w1"], cluster_build_binaries=kubeadm_binaries,
                    cluster_build_kubeadm_path=kubeadm_binaries["kubeadm"])
    before = tree_digest(str(tmp_path))
    run = run_playbook(PLAYBOOK, {"target": "all"}, check=True, inventory=inv)
    assert run.rc == 0, run.output[-3000:]
    validated = run.task("Render and validate kubeadm's configuration")
    assert sorted(r["host"] for r in validated if r["result"].get("validated")) == ["cp1", "cp2", "cp3", "w1"]
    plan = run.task("Show the plan")[0]["result"]["msg"]
    assert "new cluster, kubeadm init on cp1" in plan and "control-plane joins: cp2, cp3; worker joins: w1" in plan
    assert "would run kubeadm init on cp1, join control planes cp2, cp3 and workers w1" in " ".join(
        run.task("Say what a real run would do")[0]["result"]["msg"].split())
    assert not run.task("Initialise the cluster on the first control plane")
    assert tree_digest(str(tmp_path)) == before
