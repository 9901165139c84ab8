"""A real kubeadm cluster on lab nodes: 3 control planes + 1 worker, booted by kubeadm init/join.

One cluster for the module (about 2-3 minutes to boot on the shared 2-core machine).
"""
import json
import os
import subprocess
import time

import pytest
import yaml

from tests.lab import nodes
from tests.lab.ansible_run import BIN, ansible_env
from tests.lab.cluster import LabCluster

pytestmark = pytest.mark.slow
VERSION = "1.36.3"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    lab = LabCluster(str(tmp_path_factory.mktemp("labcluster")), control_planes=3, workers=1, version=VERSION)
    started = time.monotonic()
    try:
        lab.start()
        lab.kubeadm_bootstrap()
        lab.timings["total"] = round(time.monotonic() - started, 2)
        yield lab
    finally:
        lab.stop()


def _nodes(cluster):
    return {n["metadata"]["name"]: n for n in json.loads(cluster.kubectl("get", "nodes", "-o", "json"))["items"]}


def _wait(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(1)
    raise AssertionError("%s not reached within %ss (last: %r)" % (what, timeout, last))


def test_three_etcd_voters(cluster):
    members = cluster.etcd_members(cluster.node("cp3"))
    assert sorted(m["name"] for m in members) == ["cp1", "cp2", "cp3"]
    assert not [m for m in members if m.get("isLearner")], members
    addresses = sorted(u for m in members for u in m["clientURLs"])
    assert addresses == ["https://%s:2379" % n.address for n in cluster.control_planes]


def test_three_api_servers_ready(cluster):
    for node in cluster.control_planes:
        assert cluster.readyz(node) == (0, "ok"), node.name


def test_four_nodes_registered_ready_with_kubelet_version(cluster):
    found = _nodes(cluster)
    assert sorted(found) == ["cp1", "cp2", "cp3", "w1"]
    for name, node in found.items():
        assert node["status"]["nodeInfo"]["kubeletVersion"] == "v" + VERSION, name
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True", name
        internal = [a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP"]
        assert internal == [cluster.node(name).address]
    roles = {name for name, node in found.items() if "node-role.kubernetes.io/control-plane" in node["metadata"]["labels"]}
    assert roles == {"cp1", "cp2", "cp3"}
    table = cluster.kubectl("get", "nodes", node=cluster.node("cp2")).split("\n")
    assert table[0].split()[:2] == ["NAME", "STATUS"] and len([r for r in table[1:] if " Ready " in r]) == 4


def test_mirror_pods_and_kubelet_client_certificates(cluster):
    pods = json.loads(cluster.kubectl("get", "pods", "-n", "kube-system", "-o", "json"))["items"]
    mirrors = {p["metadata"]["name"] for p in pods if "kubernetes.io/config.mirror" in (p["metadata"].get("annotations") or {})}
    for node in cluster.control_planes:
        for component in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"):
            assert "%s-%s" % (component, node.name) in mirrors
    # joined nodes got their client certificate by a CSR the real kube-controller-manager signed
    csrs = json.loads(cluster.kubectl("get", "csr", "-o", "json"))["items"]
    signed = [c for c in csrs if c["spec"]["signerName"] == "kubernetes.io/kube-apiserver-client-kubelet"
              and c.get("status", {}).get("certificate")]
    assert len(signed) >= 3
    for node in cluster.nodes:
        assert os.path.islink(node.host_path("/var/lib/kubelet/pki/kubelet-client-current.pem")), node.name
        with open(node.host_path("/etc/kubernetes/kubelet.conf")) as handle:
            user = yaml.safe_load(handle)["users"][0]["user"]
        assert user["client-certificate"] == "/var/lib/kubelet/pki/kubelet-client-current.pem", node.name


def _ansible(cluster, pattern, module, args, tmp_path):
    inventory = cluster.write_inventory(str(tmp_path / "inventory.yml"))
    proc = subprocess.run([os.path.join(BIN, "ansible"), pattern, "-i", inventory, "-m", module, "-a", args,
                           "-o", "--become"], capture_output=True, text=True, env=ansible_env(), timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_ansible_reaches_nodes_through_labnode(cluster, tmp_path):
    out = _ansible(cluster, "kube_node", "ansible.builtin.command", "kubelet --version", tmp_path)
    assert "w1 | CHANGED | rc=0" in out and "Kubernetes v" + VERSION in out
    out = _ansible(cluster, "kube_control_plane", "ansible.builtin.command", "hostname", tmp_path)
    for node in cluster.control_planes:
        assert "%s | CHANGED | rc=0 | (stdout) %s" % (node.name, node.name) in out


def _static_pids(node):
    state = json.load(open(node.host_path("/var/lib/cplane-lab/kubelet-containers.json")))
    return {key.split("/")[1]: entry["pid"] for key, entry in state.items()}


def test_systemd_service_restarts_the_kubelet_double_and_static_pods_survive(cluster, tmp_path):
    node = cluster.node("cp3")
    show = node.run(["systemctl", "show", "kubelet"]).stdout
    props = dict(line.split("=", 1) for line in show.splitlines())
    assert props["ActiveState"] == "active" and props["UnitFileState"] == "enabled"
    before_kubelet = int(props["MainPID"])
    before = _static_pids(node)
    assert set(before) == {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"}
    _ansible(cluster, "cp3", "ansible.builtin.systemd_service", "name=kubelet state=restarted", tmp_path)
    props = dict(line.split("=", 1) for line in node.run(["systemctl", "show", "kubelet"]).stdout.splitlines())
    assert props["ActiveState"] == "active" and int(props["MainPID"]) != before_kubelet
    # as with a real kubelet, restarting it leaves the containers running: same processes after the restart
    _wait(lambda: _static_pids(node) == before, 60, "the restarted kubelet double adopting its static pods")
    assert cluster.readyz(node) == (0, "ok")


def test_drain_completes_for_pods_bound_to_the_worker(cluster):
    manifest = {"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "pinned", "namespace": "default"},
                "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "pinned"}},
                         "template": {"metadata": {"labels": {"app": "pinned"}},
                                      "spec": {"nodeSelector": {"kubernetes.io/hostname": "w1"},
                                               "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}}}
    node = cluster.control_planes[0]
    node.run(["kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", "apply", "-f", "-"], input=json.dumps(manifest))

    def bound():
        pods = json.loads(cluster.kubectl("get", "pods", "-l", "app=pinned", "-o", "json"))["items"]
        return len([p for p in pods if p["spec"].get("nodeName") == "w1"]) == 2
    _wait(bound, 120, "two pods bound to w1")
    out = cluster.kubectl("drain", "w1", "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=180s",
                          timeout=240)
    assert "node/w1 drained" in out
    pods = json.loads(cluster.kubectl("get", "pods", "-l", "app=pinned", "-o", "json"))["items"]
    assert not [p for p in pods if p["spec"].get("nodeName") == "w1"], pods
    cluster.kubectl("uncordon", "w1")


def test_memory_and_startup_figures(cluster):
    """Not an assertion on speed: records the figures docs/test-doubles.md quotes."""
    usage = cluster.memory()
    totals = {node: sum(procs.values()) // 1024 for node, procs in usage.items()}
    print("\nlab cluster timings (s): %s\nRSS per node (MiB): %s\nprocesses (KiB): %s"
          % (cluster.timings, totals, usage))
    for node in cluster.control_planes:
        assert {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet"} <= set(usage[node.name])


def test_teardown_leaves_no_namespace_link_or_process(cluster):
    lab_id = cluster.network.id
    netns = [n.netns for n in cluster.nodes]
    holders = [n.holder.pid for n in cluster.nodes]
    lb = cluster.lb.pid
    cluster.stop()
    left = nodes.leftovers()
    assert not [link for link in left["links"] if lab_id in link]
    assert lab_id not in left["registrations"]
    for pid in holders + [lb]:
        assert not os.path.exists("/proc/%d" % pid) or open("/proc/%d/stat" % pid).read().split()[2] == "Z"
    for ns in netns:
        assert nodes.processes_in_netns(ns) == []
