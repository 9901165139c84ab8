"""The build playbook on lab nodes (tests/lab/cluster.py): a real kubeadm cluster, 3 control planes
and 1 worker, with a node killed mid-join on the way.  One cluster for the whole module; the tests
run in order and each starts from where the previous one left the cluster.

1. build, killed while ``kubeadm join`` runs on cp3 (the third node) -> cp3 is left half-joined
2. build again -> refused before anything changes, naming cp3 and ``kubeadm reset -f``
3. build with ``cluster_build_reset_half_joined`` -> cp3 reset and joined, w1 joined: 3 etcd voters,
   3 API servers ready, 4 nodes at the lab's version, control_plane_report clean on every control plane
4. build again -> ``changed: false`` in every recorded task result
"""
import json
import os
import signal
import time

import pytest

from tests.integration.build.lab_build import BackgroundPlaybook, changed, kubeadm_seconds, lab_cluster, run_build

pytestmark = [pytest.mark.slow, pytest.mark.timeout(5400)]
pytest.importorskip("tests.lab.cluster", reason="lab nodes (tests/lab/cluster.py) not in this tree")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    for lab, inventory, extra in lab_cluster(tmp_path_factory.mktemp("build-lab"), 3, 1):
        yield lab, inventory, extra, {}


def kubeadm_join_running(node):
    for pid in node.processes():
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"kubeadm") and b"join" in argv:
            return pid
    return None


def test_1_a_build_killed_while_kubeadm_joins_the_third_node(cluster):
    lab, inventory, extra, notes = cluster
    cp3 = lab.node("cp3")
    run = BackgroundPlaybook(inventory, extra)
    deadline = time.monotonic() + 3000
    killed_at = None
    while time.monotonic() < deadline and run.proc.poll() is None:
        # kubeadm join on cp3 has written the cluster CA: it is past discovery, inside the join.
        pid = kubeadm_join_running(cp3)
        if pid and os.path.exists(cp3.host_path("/etc/kubernetes/pki/ca.crt")):
            run.kill()
            try:   # kubeadm itself too, whether or not the node's connection made it a descendant
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            killed_at = time.monotonic() - run.started
            break
        time.sleep(0.2)
    result = run.wait(600)
    assert killed_at is not None, "kubeadm join never ran on cp3:\n%s" % result.output[-4000:]
    notes["killed_after"] = round(killed_at, 1)
    time.sleep(1)   # the killed kubeadm's files are what they are; nothing writes any more
    assert kubeadm_join_running(cp3) is None
    assert os.path.exists(lab.node("cp2").host_path("/etc/kubernetes/kubelet.conf"))


def test_2_the_half_joined_node_is_refused_with_what_to_do(cluster):
    lab, inventory, extra, notes = cluster
    run = run_build(inventory, extra)
    assert run.rc != 0
    refused = [r for r in run.task("Refuse what the plan cannot do safely") if r["status"] == "failed"]
    assert refused, run.output[-4000:]
    message = refused[0]["result"]["msg"]
    assert "half-joined node(s): cp3 has" in message and "run 'kubeadm reset -f' on cp3" in message
    assert not changed(run)
    assert not [r for r in run.results if r["action"].endswith(("kubeadm_bootstrap", "command"))]


def test_3_the_build_resets_the_half_joined_node_and_joins_every_node(cluster):
    lab, inventory, extra, notes = cluster
    run = run_build(inventory, dict(extra, cluster_build_reset_half_joined=True))
    assert run.rc == 0, run.output[-6000:]
    notes["build_seconds"], notes["kubeadm_seconds"] = run.seconds, kubeadm_seconds(run)
    assert [r["host"] for r in run.task("Reset the half-joined nodes") if r["status"] == "ok"] == ["cp3"]
    assert not [r for r in run.task("Initialise the cluster on the first control plane") if r["status"] == "ok"]
    joined = [r["host"] for r in run.results if r["action"].endswith("kubeadm_bootstrap")
              and r["result"].get("action") == "join" and r["result"].get("changed")]
    assert joined == ["cp3", "w1"]

    members = lab.etcd_members()
    assert sorted(m["name"] for m in members) == ["cp1", "cp2", "cp3"]
    assert not [m for m in members if m.get("isLearner")]
    for node in lab.control_planes:
        status, body = lab.readyz(node)
        assert status == 0 and body == "ok", (node.name, body)
    nodes = json.loads(lab.kubectl("get", "nodes", "-o", "json"))["items"]
    assert sorted(n["metadata"]["name"] for n in nodes) == ["cp1", "cp2", "cp3", "w1"]
    assert {n["status"]["nodeInfo"]["kubeletVersion"] for n in nodes} == {"v" + lab.version}

    findings = {r["host"]: r["result"]["ansible_facts"]["control_plane_report_findings"]
                for r in run.task("Keep the findings") if "control_plane_report_findings" in r["result"].get("ansible_facts", {})}
    assert findings == {"cp1": [], "cp2": [], "cp3": []}
    assert not [r for r in run.task("Fail when the cluster built is not healthy") if r["status"] != "skipped"]


def test_4_a_second_run_changes_nothing(cluster):
    lab, inventory, extra, notes = cluster
    run = run_build(inventory, extra)
    assert run.rc == 0, run.output[-6000:]
    assert run.results and changed(run) == []
    plan = run.task("Show the plan")[0]["result"]["msg"]
    assert "existing cluster, issuer cp1" in plan and "control-plane joins: none; worker joins: none" in plan
    assert not [r for r in run.results if r["action"].endswith("kubeadm_bootstrap") and r["status"] != "skipped"]
