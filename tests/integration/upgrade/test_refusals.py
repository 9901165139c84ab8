"""The upgrade playbook refuses what it must before anything runs; no cluster needed (the API double).

A two-minor jump is refused by the first check, naming the path node_version_check computes, and a
skew violation stops the preflight; in both cases no other task ran.
"""
import os

import pytest

from tests.lab.api_double import generate
from tests.lab.ansible_run import ROOT, run_playbook

PLAYBOOK = os.path.join(ROOT, "playbooks", "upgrade.yml")


@pytest.fixture(scope="module")
def lab_cas():
    from tests.lab.pki import ClusterCAs
    return ClusterCAs.create(key_type="ecdsa")


def inventory(tmp_path, kubeconfig):
    path = tmp_path / "inventory.ini"
    path.write_text("[kube_control_plane]\ncp1 ansible_connection=local\n[kube_node]\nworker1 ansible_connection=local\n"
                    "[all:vars]\ncluster_upgrade_kubeconfig=%s\n" % kubeconfig)
    return str(path)


def run(tmp_path, api, target, **extra):
    extra_vars = {"cluster_upgrade_become": False, "cluster_upgrade_target_version": target,
                  "cluster_upgrade_install_method": "binaries"}
    extra_vars.update(extra)
    return run_playbook(PLAYBOOK, extra_vars, inventory=inventory(tmp_path, api.kubeconfig))


def test_two_minors_refused_before_anything_runs_with_the_path(tmp_path, lab_cas):
    from tests.lab.api_double import ApiDouble
    with ApiDouble(str(tmp_path / "api"), generate(nodes=2, control_planes=1, version="v1.35.4"), cas=lab_cas) as api:
        result = run(tmp_path, api, "1.37.2")
        assert api.count("/api/v1/nodes") >= 1
    assert result.rc != 0, result.output
    refused = [r for r in result.results if r["status"] == "failed"]
    assert [r["task"] for r in refused] == ["Preflight | one minor per run"], result.output
    message = " ".join(refused[0]["result"]["msg"].split())
    assert "v1.35.4 -> v1.37.2 is 2 minor versions" in message
    assert "1.35 -> 1.36 -> 1.37" in message
    assert "newest patch of 1.36 first" in message
    # Nothing but the check itself and the argument validation ran: no state read, no snapshot, no kubeadm.
    ran = [r["action"] for r in result.results if r["status"] != "skipped"]
    assert set(ran) <= {"cplane.kubeadm.node_version_check", "ansible.builtin.assert", "ansible.builtin.validate_argument_spec",
                        "validate_argument_spec", "ansible.builtin.include_tasks", "include_tasks"}, ran
    assert not [r for r in result.results if r["result"].get("changed")]


def test_skew_violation_stops_the_preflight(tmp_path, lab_cas):
    from tests.lab.api_double import ApiDouble
    # A worker's kubelet newer than the API server violates the policy.
    cluster = generate(nodes=2, control_planes=1, version="v1.36.3", odd={1: "v1.37.2"})
    with ApiDouble(str(tmp_path / "api"), cluster, cas=lab_cas) as api:
        result = run(tmp_path, api, "1.37.2")
    assert result.rc != 0
    failed = [r for r in result.results if r["status"] == "failed"]
    assert [r["task"] for r in failed] == ["Preflight | version skew and the upgrade path (node_version_check)"]
    assert "kubelet-newer-than-apiserver" in str(failed[0]["result"]["violations"])
    assert not [r for r in result.results if r["result"].get("changed")]


def test_target_without_patch_refused(tmp_path, lab_cas):
    from tests.lab.api_double import ApiDouble
    with ApiDouble(str(tmp_path / "api"), generate(nodes=1, control_planes=1, version="v1.36.3"), cas=lab_cas) as api:
        result = run(tmp_path, api, "1.37")
    assert result.rc != 0
    failed = [r for r in result.results if r["status"] == "failed"]
    assert failed and "full version such as 1.37.2" in failed[0]["result"]["msg"]
    assert not [r for r in result.results if r["action"] == "cplane.kubeadm.node_version_check"]
