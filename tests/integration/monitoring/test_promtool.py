"""The shipped rules pass promtool's unit tests; the textfile the module writes passes promtool check metrics."""
import os
import subprocess

from tests.conftest import ROOT
from tests.integration.monitoring.promstack import program
from tests.lab.ansible_run import run_module

RULES_DIR = os.path.join(ROOT, "docs", "monitoring")


def test_rules_are_valid_and_their_unit_tests_pass():
    promtool = program("promtool")
    check = subprocess.run([promtool, "check", "rules", os.path.join(RULES_DIR, "rules.yml")],
                           capture_output=True, text=True, timeout=120, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 16 rules found" in check.stdout
    test = subprocess.run([promtool, "test", "rules", "tests.yml"], cwd=RULES_DIR, capture_output=True, text=True,
                          timeout=300, check=False)
    assert test.returncode == 0, test.stdout + test.stderr
    assert "SUCCESS" in test.stdout


def test_module_output_passes_promtool_check_metrics_even_with_failing_collectors(tmp_path):
    """Nothing to read on this host (no PKI, no etcd, no API): every collector fails, the file is still valid."""
    path = str(tmp_path / "cplane_kubeadm.prom")
    result = run_module("metrics_textfile", dict(
        path=path, pki_dir=str(tmp_path / "pki"), kubeconfig_dir=str(tmp_path), etcd_endpoints=["https://127.0.0.1:1"],
        etcd_ca_cert=str(tmp_path / "ca.crt"), etcd_client_cert=str(tmp_path / "c.crt"),
        etcd_client_key=str(tmp_path / "c.key"), kubeconfig=str(tmp_path / "admin.conf"),
        manifests_dir=str(tmp_path / "manifests"), state_dir=str(tmp_path / "runs")))
    assert not result["failed"] and result["changed"], result
    assert sorted(result["failed_collectors"]) == ["certificates", "etcd", "kubernetes"], result
    assert any("collector(s) failed" in w for w in result.get("warnings", []))
    with open(path) as handle:
        text = handle.read()
    assert 'cplane_kubeadm_collector_success{collector="etcd"} 0' in text
    assert 'cplane_kubeadm_collector_success{collector="runs"} 1' in text
    check = subprocess.run([program("promtool"), "check", "metrics"], input=text, capture_output=True, text=True,
                           timeout=60, check=False)
    assert check.returncode == 0 and not check.stdout.strip() and not check.stderr.strip(), check.stdout + check.stderr

    again = run_module("metrics_textfile", dict(path=path, collectors=["runs"], fail_on_collector_error=True,
                                                state_dir=str(tmp_path / "runs")), check=True, diff=True)
    assert not again["failed"] and again["changed"] and "diff" in again
    with open(path) as handle:
        assert handle.read() == text   # check mode wrote nothing
