"""kubeadm_upgrade_state through the real ansible, against the API double and a node tree's manifests."""
import os
import stat

import pytest

from tests.lab.api_double import ApiDouble, generate
from tests.lab.ansible_run import run_module


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    from tests.lab.pki import ClusterCAs
    cluster = generate(nodes=2, control_planes=1, version="v1.37.2", odd={1: "v1.36.3"})
    with ApiDouble(str(tmp_path_factory.mktemp("api")), cluster, cas=ClusterCAs.create(key_type="ecdsa")) as double:
        yield double


def fake_binaries(tmp_path, versions):
    """Scripts that print versions as kubeadm/kubelet/kubectl do, on a PATH of their own."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    outputs = {"kubeadm": "%s", "kubelet": "Kubernetes %s", "kubectl": "Client Version: %s"}
    for name, version in versions.items():
        path = bin_dir / name
        path.write_text("#!/bin/sh\necho '%s'\n" % (outputs[name] % version))
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return {"PATH": str(bin_dir) + os.pathsep + "/usr/bin:/bin"}


def manifests(tmp_path, version):
    directory = tmp_path / "manifests"
    directory.mkdir()
    for component in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        (directory / (component + ".yaml")).write_text(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: %s-cp1}\nspec:\n  containers:\n"
            "  - {name: %s, image: 'registry.k8s.io/%s:%s'}\n" % (component, component, component, version))
    return str(directory)


def test_control_plane_at_target_is_done(api, tmp_path):
    env = fake_binaries(tmp_path, {"kubeadm": "v1.37.2", "kubelet": "v1.37.2", "kubectl": "v1.37.2"})
    result = run_module("kubeadm_upgrade_state", {"target_version": "1.37.2", "node_name": "cp1",
                                                  "kubeconfig": api.kubeconfig, "manifests_dir": manifests(tmp_path, "v1.37.2"),
                                                  "disk_paths": [str(tmp_path)]}, env=env)
    assert not result["failed"], result
    assert result["changed"] is False
    assert result["pending"] == [], result
    assert result["done"] is True
    assert result["local"]["manifests"]["kube-apiserver"] == "v1.37.2"
    assert result["node"]["kubelet"] == "v1.37.2" and result["node"]["ready"] is True
    assert result["node"]["control_plane"]["kube-apiserver"] == "v1.37.2"
    assert result["free_bytes"][str(tmp_path)] > 0


def test_worker_behind_reports_its_kubelet_and_times_out_waiting(api, tmp_path):
    env = fake_binaries(tmp_path, {"kubelet": "v1.36.3", "kubectl": "v1.37.2"})
    local = run_module("kubeadm_upgrade_state", {"target_version": "v1.37.2", "api": False, "control_plane": False}, env=env)
    assert not local["failed"], local
    assert local["pending"] == ["kubelet"] and local["local"]["kubelet"] == "v1.36.3"
    worker = api.cluster.nodes[1].name
    waited = run_module("kubeadm_upgrade_state", {"target_version": "1.37.2", "node_name": worker, "local": False,
                                                  "local_state": local["local"], "kubeconfig": api.kubeconfig,
                                                  "wait_ready": True, "wait_timeout": 3})
    assert waited["failed"]
    assert "%s did not come back Ready with kubelet v1.37.2 within 3 s" % worker in waited["msg"]
    assert "reports kubelet v1.36.3" in waited["msg"] and "run the playbook again" in waited["msg"]


def test_check_mode_does_not_wait(api, tmp_path):
    worker = api.cluster.nodes[1].name
    result = run_module("kubeadm_upgrade_state", {"target_version": "1.37.2", "node_name": worker, "local": False,
                                                  "kubeconfig": api.kubeconfig, "wait_ready": True, "wait_timeout": 600},
                        check=True)
    assert not result["failed"], result
    assert "waited" not in result and result["pending"] == ["kubelet"]


def test_unknown_node_and_bad_target(api):
    missing = run_module("kubeadm_upgrade_state", {"target_version": "1.37.2", "node_name": "nope", "local": False,
                                                   "kubeconfig": api.kubeconfig})
    assert not missing["failed"] and missing["node"]["found"] is False and "kubelet" in missing["pending"]
    bad = run_module("kubeadm_upgrade_state", {"target_version": "1.37", "api": False})
    assert bad["failed"] and "major.minor.patch" in bad["msg"]
