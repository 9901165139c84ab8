"""The upgrade playbook for real: a lab cluster of 3 control planes and 1 worker built by the real
kubeadm 1.36.3, upgraded to 1.37.2 by the real kubeadm, with a writer putting keys through etcd.

One cluster for the module; the tests run in order and each builds on the one before:
check mode changes nothing -> a two-minor jump is refused before anything runs -> the upgrade
stops at cp2, whose new kubelet never comes back -> fixed, the re-run completes -> the outcome
(static pods, kubelets, etcd keys, snapshot, certificates) -> the order of operations from the
recorded task results -> a second run changes nothing.
"""
import glob
import hashlib
import json
import os
import time

import pytest

from tests.lab.ansible_run import ROOT, run_playbook
from tests.lab.binaries import lab_binary
from tests.lab.cluster import IGNORE_PREFLIGHT

# A whole cluster upgrade on a shared 2-core machine takes tens of minutes; each test has its own limit.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]

PLAYBOOK = os.path.join(ROOT, "playbooks", "upgrade.yml")
FROM, TO = "1.36.3", "1.37.2"
COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
# Nodes of the lab run no container runtime and share the test machine's kernel: the checks the lab's
# kubeadm init ignores (CRI, ContainerRuntimeVersion, ImagePull, SystemVerification), plus kubeadm
# upgrade's Job health check (CreateJob: no pod can run).
TIMES = {}


class Lab(object):
    """The lab cluster with what the tests read from it."""

    def __init__(self, workdir):
        from tests.lab.cluster import LabCluster
        self.workdir = workdir
        started = time.monotonic()
        self.cluster = LabCluster(os.path.join(workdir, "cluster"), control_planes=3, workers=1, version=FROM).start()
        self.cluster.kubeadm_bootstrap()
        TIMES["bootstrap"] = time.monotonic() - started
        self.inventory = self.cluster.write_inventory(os.path.join(workdir, "inventory.yml"))
        self.control_planes = list(self.cluster.control_planes)
        self.workers = list(self.cluster.workers)
        self.nodes = self.control_planes + self.workers
        self.snapshots = os.path.join(workdir, "snapshots")
        self.binaries = self._binaries(TO)
        self.results = []

    def _binaries(self, version):
        directory = os.path.join(self.workdir, "binaries-" + version)
        os.makedirs(directory, exist_ok=True)
        kubelet = self.cluster.kubelet_file(os.path.join(directory, "kubelet"), version)
        return {"kubeadm": lab_binary("kubeadm", version), "kubectl": lab_binary("kubectl", version), "kubelet": kubelet}

    def broken_kubelet(self):
        """A kubelet package gone wrong: it prints the new version but never runs."""
        path = os.path.join(self.workdir, "broken-kubelet")
        with open(path, "w") as handle:
            handle.write("#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'Kubernetes v%s'; exit 0; fi\n"
                         "echo 'broken kubelet' >&2\nexit 1\n" % TO)
        os.chmod(path, 0o755)
        return path

    def extra_vars(self, **more):
        values = {"cluster_upgrade_become": False, "cluster_upgrade_target_version": TO, "cluster_upgrade_install_method": "binaries",
                  "cluster_upgrade_binaries": self.binaries,
                  "cluster_upgrade_ignore_preflight_errors": list(IGNORE_PREFLIGHT) + ["CreateJob"],
                  "cluster_upgrade_snapshot_dir": self.snapshots, "cluster_upgrade_ready_timeout": 180,
                  "cluster_upgrade_drain_timeout": 120, "cluster_upgrade_min_free_mb": 64}
        values.update(more)
        return values

    def run(self, check=False, **more):
        started = time.monotonic()
        result = run_playbook(PLAYBOOK, self.extra_vars(**more), inventory=self.inventory, check=check, timeout=3600)
        result.seconds = time.monotonic() - started
        self.results.append(result)
        return result

    # -- what the nodes have ---------------------------------------------------------------------
    def manifest_tags(self, node):
        from ansible_collections.cplane.kubeadm.plugins.module_utils._versions.upgrade import read_manifest_tags
        return read_manifest_tags(node.host_path("/etc/kubernetes/manifests"))

    def fingerprint(self):
        """Hashes of every file that an upgrade changes, per node."""
        found = {}
        for node in self.nodes:
            for pattern in ("/etc/kubernetes/manifests/*", "/usr/local/bin/*", "/var/lib/kubelet/config.yaml",
                            "/etc/kubernetes/pki/*.crt", "/etc/kubernetes/*.conf"):
                for path in sorted(glob.glob(node.host_path(pattern))):
                    with open(path, "rb") as handle:
                        found[(node.name, path)] = hashlib.sha256(handle.read()).hexdigest()
        return found

    def api_nodes(self):
        items = json.loads(self.cluster.kubectl("get", "nodes", "-o", "json"))["items"]
        return dict((n["metadata"]["name"], {"kubelet": n["status"]["nodeInfo"]["kubeletVersion"],
                                             "unschedulable": bool(n["spec"].get("unschedulable"))}) for n in items)

    def mirror_pods(self):
        out = self.cluster.kubectl("-n", "kube-system", "get", "pods", "-l", "tier=control-plane", "-o", "json")
        return dict((p["metadata"]["name"], p["spec"]["containers"][0]["image"].rsplit(":", 1)[1])
                    for p in json.loads(out)["items"])

    def etcd_tls(self):
        """(endpoints, ca, cert, key) for a client on the host: every member at its node's address,
        kube-apiserver's etcd client certificate."""
        first = self.control_planes[0]
        return (["https://%s:2379" % node.address for node in self.control_planes],
                first.host_path("/etc/kubernetes/pki/etcd/ca.crt"),
                first.host_path("/etc/kubernetes/pki/apiserver-etcd-client.crt"),
                first.host_path("/etc/kubernetes/pki/apiserver-etcd-client.key"))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("upgrade-lab"))
    lab = Lab(workdir)
    try:
        yield lab
    finally:
        lab.cluster.stop()
        print("\nupgrade lab wall times: %s" % json.dumps(dict((k, round(v, 1)) for k, v in TIMES.items())))


@pytest.fixture(scope="module")
def writer(lab):
    from tests.lab.workload import ConcurrentWriter
    endpoints, ca_cert, client_cert, client_key = lab.etcd_tls()
    from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd.client import connect
    client = connect(endpoints[0], ca_cert, client_cert, client_key, timeout=60)
    before = dict(("/before-upgrade/%04d" % i, "value-%d" % i) for i in range(200))
    for key, value in before.items():
        client.put(key, value)
    with ConcurrentWriter(endpoints, ca_cert, client_cert, client_key, interval=0.2) as running:
        running.before = before
        running.client = client
        yield running
    client.close()


def test_check_mode_changes_nothing(lab, writer):
    fingerprint = lab.fingerprint()
    nodes = lab.api_nodes()
    result = lab.run(check=True)
    TIMES["check"] = result.seconds
    assert result.rc == 0, result.output[-6000:]
    assert lab.fingerprint() == fingerprint
    assert lab.api_nodes() == nodes
    assert not os.path.exists(lab.snapshots) or not os.listdir(lab.snapshots)
    # What it would have done, it says: kubeadm apply is among the tasks that were skipped in check mode.
    assert [r for r in result.task("Apply | kubeadm upgrade apply") if r["status"] == "skipped"]


def test_two_minors_refused_before_anything_runs(lab):
    fingerprint = lab.fingerprint()
    result = lab.run(cluster_upgrade_target_version="1.38.1")
    assert result.rc != 0
    failed = [r for r in result.results if r["status"] == "failed"]
    assert [r["task"] for r in failed] == ["Preflight | one minor per run"]
    assert "1.36 -> 1.37 -> 1.38" in failed[0]["result"]["msg"]
    assert not [r for r in result.results if r["result"].get("changed")]
    assert lab.fingerprint() == fingerprint


def test_stops_at_the_node_that_does_not_come_back(lab, writer):
    cp2 = lab.control_planes[1].name
    later = [node.name for node in lab.control_planes[2:] + lab.workers]
    # Extra vars are templated per host: cp2 alone gets the broken kubelet.
    binaries = dict(lab.binaries, kubelet="{{ '%s' if inventory_hostname == '%s' else '%s' }}"
                    % (lab.broken_kubelet(), cp2, lab.binaries["kubelet"]))
    result = lab.run(cluster_upgrade_ready_timeout=45, cluster_upgrade_binaries=binaries)
    TIMES["run_stopped"] = result.seconds
    lab.stopped_run = result
    assert result.rc != 0
    failed = [r for r in result.results if r["status"] == "failed"]
    assert failed[-1]["host"] == cp2 and failed[-1]["task"] == "Kubelet | stop at this node", result.output[-6000:]
    message = failed[-1]["result"]["msg"]
    assert "Upgrade stopped at node %s" % cp2 in message and "run the playbook again" in message
    assert "did not come back Ready with kubelet v%s within 45 s" % TO in message
    # Every control plane got the new static pods; cp1 its kubelet; cp2 is held cordoned; later nodes untouched.
    nodes = lab.api_nodes()
    assert nodes[lab.control_planes[0].name] == {"kubelet": "v" + TO, "unschedulable": False}
    assert nodes[cp2]["unschedulable"] is True
    for name in later:
        assert nodes[name] == {"kubelet": "v" + FROM, "unschedulable": False}, name
        assert not [r for r in result.results if r["host"] == name and r["task"].startswith("Kubelet | kubectl drain")]
    for node in lab.control_planes:
        assert all(lab.manifest_tags(node)[c] == "v" + TO for c in COMPONENTS), node.name


def test_fixed_and_rerun_completes(lab, writer):
    cp2 = lab.control_planes[1]
    # The operator's fix: the right kubelet, restarted, Ready again; then the same command again.
    cp2.install(lab.binaries["kubelet"], "kubelet")
    cp2.run(["systemctl", "restart", "kubelet"])
    result = lab.run()
    TIMES["run_completed"] = result.seconds
    lab.completed_run = result
    assert result.rc == 0, result.output[-8000:]
    # Nothing already done was redone.
    assert not [r for r in result.results if r["task"] in ("Apply | kubeadm upgrade apply", "Node | kubeadm upgrade node")
                and r["status"] != "skipped"]
    assert not [r for r in result.results if r["host"] == lab.control_planes[0].name
                and r["task"] == "Kubelet | kubectl drain" and r["status"] != "skipped"]


def test_every_node_runs_the_new_version_and_etcd_kept_every_key(lab, writer):
    nodes = lab.api_nodes()
    assert nodes == dict((node.name, {"kubelet": "v" + TO, "unschedulable": False}) for node in lab.nodes)
    pods = lab.mirror_pods()
    for node in lab.control_planes:
        for component in COMPONENTS:
            assert pods["%s-%s" % (component, node.name)] == "v" + TO
    writer.stop()
    written = writer.written
    assert len(written) > 50, "the writer wrote %d keys during the upgrade" % len(written)
    assert writer.mismatches(writer.client) == []
    for key, value in writer.before.items():
        stored = writer.client.get(key)[0]
        assert stored is not None and stored.decode() == value, key
    TIMES["writer_keys"] = len(written)
    TIMES["writer_failures"] = writer.failures


def test_snapshot_taken_before_anything_changed_and_certificates_renewed(lab):
    first = lab.stopped_run     # the run that stopped at cp2: the first one that changed anything
    snapshot = [r for r in first.results if r["task"] == "Preflight | verified etcd snapshot before anything changes"
                and r["status"] == "ok"]
    assert len(snapshot) == 1 and snapshot[0]["result"]["changed"]
    assert os.path.exists(snapshot[0]["result"]["path"]) or os.path.exists(
        lab.control_planes[0].host_path(snapshot[0]["result"]["path"]))
    first_change = min(r["start"] for r in first.results if r["result"].get("changed") and r is not snapshot[0]
                       and r["action"] not in ("ansible.builtin.file", "ansible.builtin.copy"))
    assert snapshot[0]["time"] <= first_change
    last = lab.completed_run
    renewed = [r for r in last.results if r["task"] == "Postflight | the certificates kubeadm renewed" and r["status"] == "ok"]
    assert renewed
    for entry in renewed:
        names = entry["result"]["ansible_facts"]["cluster_upgrade_renewed"]
        assert "apiserver" in names and "admin.conf" in names, (entry["host"], names)


def test_order_of_operations(lab):
    results = lab.stopped_run.results + lab.completed_run.results
    changed = [r for r in results if r["status"] == "ok" and r["result"].get("changed")]
    snapshot = next(r for r in changed if r["task"].startswith("Preflight | verified etcd snapshot"))
    apply = next(r for r in changed if r["task"] == "Apply | kubeadm upgrade apply")
    assert snapshot["time"] <= apply["start"]
    # kubeadm upgrade node one control plane at a time, after apply.
    upgrade_node = sorted((r for r in changed if r["task"] == "Node | kubeadm upgrade node"), key=lambda r: r["start"])
    assert [r["host"] for r in upgrade_node] == [n.name for n in lab.control_planes[1:]]
    assert apply["time"] <= upgrade_node[0]["start"]
    for before, after in zip(upgrade_node, upgrade_node[1:]):
        assert before["time"] <= after["start"]
    # Per node: drain before the kubelet is replaced, kubelet restarted before uncordon; one node at a time.
    spans = []
    for node in lab.nodes:
        mine = [r for r in changed if r["host"] == node.name and r["task"].startswith("Kubelet |")]
        drain = [r for r in changed if r["task"] == "Kubelet | kubectl drain" and node.name in " ".join(r["result"]["cmd"])]
        copy = [r for r in mine if r["task"] == "Install | copy the binaries"]
        restart = [r for r in mine if r["task"] == "Kubelet | daemon-reload and restart kubelet"]
        uncordon = [r for r in changed if r["task"] == "Kubelet | kubectl uncordon" and node.name in " ".join(r["result"]["cmd"])]
        assert drain and restart and uncordon, node.name
        assert drain[0]["time"] <= min(r["start"] for r in copy + restart)
        assert restart[-1]["time"] <= uncordon[-1]["start"]
        spans.append((drain[0]["start"], uncordon[-1]["time"], node.name))
    # Control planes first, then the worker; no two nodes drained at once (batch size 1).
    assert [name for _s, _e, name in sorted(spans)][:3] == [n.name for n in lab.control_planes]
    ordered = sorted(spans)
    for (s1, e1, n1), (s2, e2, n2) in zip(ordered, ordered[1:]):
        assert e1 <= s2, (n1, n2)


def test_second_run_changes_nothing(lab):
    fingerprint = lab.fingerprint()
    result = lab.run()
    TIMES["run_noop"] = result.seconds
    assert result.rc == 0, result.output[-6000:]
    changed = [(r["host"], r["task"]) for r in result.results if r["result"].get("changed")]
    assert changed == []
    assert not [r for r in result.results if r["task"].startswith("Preflight | verified etcd snapshot") and r["status"] != "skipped"]
    assert lab.fingerprint() == fingerprint
