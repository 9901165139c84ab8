"""static_pod_probe on the manifests the real kubeadm writes (``init phase etcd local`` and
``init phase control-plane all``), for each Kubernetes version scripts/lab-binaries builds.

kubeadm's own probes are the collection's reference: auditing them must raise nothing to act on,
and ``state=present recommended=true`` must find them already as recommended (no change).
"""
import hashlib
import os

import pytest
import yaml

from tests.lab.ansible_run import run_playbook
from tests.lab.kubeadm import Kubeadm, KubeadmNode, LabBinaryMissing, k8s_versions

COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
KINDS = ("liveness", "readiness", "startup")


def versions():
    try:
        return k8s_versions()
    except Exception:  # the binaries module says why when the fixture runs
        return ("newest",)


@pytest.fixture(scope="module", params=versions())
def kubeadm_node(request, tmp_path_factory):
    try:
        kubeadm = Kubeadm(None if request.param == "newest" else request.param)
    except LabBinaryMissing as exc:
        pytest.fail(str(exc))
    root = tmp_path_factory.mktemp("kubeadm-manifests-%s" % kubeadm.version) / "cp1"
    return KubeadmNode(str(root), kubeadm, node_name="cp1", advertise_address="10.0.0.11").write_manifests(etcd=True)


def digests(directory):
    return {name: hashlib.sha256(open(os.path.join(directory, name), "rb").read()).hexdigest()
            for name in sorted(os.listdir(directory))}


def test_kubeadm_writes_the_four_static_pods_with_its_probes(kubeadm_node):
    assert sorted(os.listdir(kubeadm_node.manifests_dir)) == sorted(c + ".yaml" for c in COMPONENTS)
    apiserver = kubeadm_node.manifest("kube-apiserver")["spec"]["containers"][0]
    assert apiserver["image"] == "registry.k8s.io/kube-apiserver:v%s" % kubeadm_node.kubeadm.version
    assert apiserver["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert apiserver["livenessProbe"]["httpGet"]["host"] == "10.0.0.11"


def test_static_pod_probe_finds_nothing_to_act_on_in_kubeadms_own_probes(kubeadm_node, tmp_path):
    manifests = kubeadm_node.manifests_dir
    before = digests(manifests)
    tasks = []
    for component in COMPONENTS:
        for kind in KINDS:
            present = kubeadm_node.manifest(component)["spec"]["containers"][0].get(kind + "Probe") is not None
            tasks.append({"name": "audit %s %s" % (component, kind), "cplane.kubeadm.static_pod_probe": {
                "name": component, "manifest_dir": manifests, "probe": kind}})
            if present:
                tasks.append({"name": "recommended %s %s" % (component, kind), "cplane.kubeadm.static_pod_probe": {
                    "name": component, "manifest_dir": manifests, "probe": kind, "state": "present",
                    "recommended": True, "backup_dir": str(tmp_path / "backups")}})
    playbook = tmp_path / "audit.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]))
    run = run_playbook(str(playbook))
    assert run.rc == 0, run.output[-4000:]
    assert len(run.results) == len(tasks)
    for entry in run.results:
        result = entry["result"]
        if entry["task"].startswith("recommended"):
            # kubeadm's probe is exactly what the collection would restore for this version.
            assert result["changed"] is False, (entry["task"], result.get("diff"))
            continue
        actionable = [f for f in result["findings"] if f["severity"] != "info"]
        assert actionable == [], (entry["task"], actionable)
        for finding in result["findings"]:
            # What is left is kubeadm's own default, and says so.
            assert "kubeadm's own default" in finding["message"], (entry["task"], finding)
    assert digests(manifests) == before and not (tmp_path / "backups").exists()
