"""cert_renewal's monthly timer run: its exact ExecStart records each run in the run state file,
a failing run exits non-zero and keeps the last success, and cert_renewal_timer_state=absent removes it."""
import os
import subprocess
import sys

from ansible_collections.cplane.kubeadm.plugins.module_utils._runstate import read_run_state, state_path
from tests.integration.pki.test_role_local import PLAYBOOK, role_vars
from tests.lab.ansible_run import run_playbook, service_exec


def timer_run(tmp_path):
    """The rendered service's ExecStart, as systemd runs it."""
    command, env = service_exec((tmp_path / "units/cplane-cert-renewal.service").read_text())
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=900, check=False)


def test_the_timer_run_records_its_outcome_and_the_timer_can_be_removed(tree, tmp_path):
    (tmp_path / "units").mkdir()
    state_dir = tmp_path / "runs"
    extra = dict(role_vars(tree, tmp_path), cert_renewal_state_dir=str(state_dir),
                 cert_renewal_timer_ansible_playbook=os.path.join(os.path.dirname(sys.executable), "ansible-playbook"))
    install = run_playbook(PLAYBOOK, extra)
    assert install.rc == 0, install.output[-3000:]
    assert not state_dir.exists(), "the interactive run records nothing"
    path = state_path("cert_renewal", str(state_dir))

    proc = timer_run(tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    first = read_run_state(path)
    assert first["job"] == "cert_renewal" and first["host"] == "localhost"
    assert first["success"] is True and first["acted"] is True and first["consecutive_failures"] == 0
    assert first["steps"]["renew"]["success"] is True and first["steps"]["renew"]["renewed"] == []
    assert first["last_success"]["run"] == first["finished"]

    # A certificate that cannot be read: the run fails, says so, and the last success stays.
    cert = os.path.join(tree.pki_dir, "apiserver.crt")
    with open(cert, "rb") as handle:
        good = handle.read()
    with open(cert, "w") as handle:
        handle.write("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    proc = timer_run(tmp_path)
    with open(cert, "wb") as handle:
        handle.write(good)
    assert proc.returncode != 0, proc.stdout[-3000:]
    assert "The unattended certificate renewal failed" in proc.stdout
    failed = read_run_state(path)
    assert failed["success"] is False and failed["consecutive_failures"] == 1
    assert failed["last_success"] == first["last_success"]
    assert "failed:" in failed["reason"] and failed["steps"]["renew"]["success"] is False

    remove = dict(extra, cert_renewal_timer_enabled=False, cert_renewal_timer_state="absent")
    checked = run_playbook(PLAYBOOK, remove, check=True)
    assert checked.rc == 0, checked.output[-3000:]
    assert sorted(os.listdir(str(tmp_path / "units"))) == ["cplane-cert-renewal.service", "cplane-cert-renewal.timer"]
    removed = run_playbook(PLAYBOOK, remove)
    assert removed.rc == 0, removed.output[-3000:]
    assert os.listdir(str(tmp_path / "units")) == [] and not (tmp_path / "etc/cert-renewal.json").exists()
    assert removed.task("Remove the renewal service and timer units")[0]["result"]["changed"]
    assert read_run_state(path) == failed, "the run state stays"
