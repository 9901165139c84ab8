"""kubeadm_cert_renew killed (SIGKILL, through the test-only fault hook) at every write point of its
transaction, then run again: every pair matches and the renewal is complete.  A real etcd shows why:
it will not start on the broken pair a kill used to leave, and starts once the re-run has finished."""
import json
import os
import signal
import time

import pytest

from ansible_collections.cplane.kubeadm.plugins.module_utils import _journal
from ansible_collections.cplane.kubeadm.plugins.module_utils._pki import inspect as pki
from ansible_collections.cplane.kubeadm.plugins.module_utils._pki import kubeadm as table
from tests.lab.ansible_run import run_module
from tests.lab.etcd_cluster import EtcdLab
from tests.unit.pki.helpers import NEAR_EXPIRY, assert_no_key_material, key_bodies_in_tree, wrap_certificate_data

# apiserver and etcd-server: key and certificate each; admin.conf, controller-manager.conf: one file each.
FILES = 6
FAULTS = (["after:begin:1"] + ["after:backup:%d" % n for n in range(1, FILES + 1)]
          + ["after:stage:%d" % n for n in range(1, FILES + 1)] + ["after:commit:1"]
          + ["after:swap:%d" % n for n in range(1, FILES + 1)] + ["after:end:1"])


def pairs_match(pki_dir, kubeconfig_dir):
    """{name: key matches certificate} for every kubeadm certificate present."""
    found = {}
    for entry in pki.scan(pki_dir, kubeconfig_dir)["certificates"]:
        if not entry["missing"]:
            found[entry["name"]] = entry.get("key_matches")
    return found


def leftovers(root):
    return [os.path.join(d, f) for d, _dirs, files in os.walk(root) for f in files
            if f.endswith(_journal.STAGED_SUFFIX) or f == pki.JOURNAL_NAME]


@pytest.mark.parametrize("fault", FAULTS)
def test_killed_at_each_write_point_the_next_run_completes_the_renewal(tree, fault):
    bodies = key_bodies_in_tree(tree)
    killed = run_module("kubeadm_cert_renew", tree.args(), env={_journal.FAULT_ENV: fault})
    assert killed["failed"] is True and "renewed" not in killed  # the module died; Ansible saw no result

    step = fault.split(":")[1]
    interrupted = pki.scan(tree.pki_dir, tree.kubeconfig_dir)["interrupted_renewal"]
    assert (interrupted is None) == (step == "end"), interrupted
    if interrupted is not None:
        assert interrupted["action"] == ("discard" if step in ("begin", "backup", "stage") else "roll_forward")

    again = run_module("kubeadm_cert_renew", tree.args())
    assert again["failed"] is False, again.get("msg")
    if interrupted is not None:
        assert again["recovered"]["action"] == interrupted["action"]
        assert any("interrupted certificate renewal" in w for w in again.get("warnings", []))
    assert pairs_match(tree.pki_dir, tree.kubeconfig_dir) == {name: True for name in table.CERTIFICATES}
    by_name = {c["name"]: c for c in again["certificates"]}
    assert all(by_name[name]["days_left"] >= 364 for name in NEAR_EXPIRY)
    assert leftovers(tree.root) == []
    assert_no_key_material(json.dumps(killed) + json.dumps(again), bodies + key_bodies_in_tree(tree))


def test_info_reports_an_interrupted_renewal_and_a_broken_pair(tree):
    run_module("kubeadm_cert_renew", tree.args(certs=["apiserver"]), env={_journal.FAULT_ENV: "after:swap:1"})
    info = run_module("kubeadm_cert_info", dict(pki_dir=tree.pki_dir, kubeconfig_dir=tree.kubeconfig_dir))
    assert info["failed"] is False and info["interrupted_renewal"]["action"] == "roll_forward"
    assert os.path.join(tree.pki_dir, "apiserver.key") in info["interrupted_renewal"]["files"]
    assert any("certificate renewal was interrupted" in w for w in info["warnings"])
    # Without the journal, this is what a kill right after the key swap used to leave behind.
    os.unlink(pki.journal_path(tree.pki_dir))
    info = run_module("kubeadm_cert_info", dict(pki_dir=tree.pki_dir, kubeconfig_dir=tree.kubeconfig_dir))
    entry = next(c for c in info["certificates"] if c["name"] == "apiserver")
    assert entry["key_matches"] is False
    assert any("apiserver" in w and "does not match" in w for w in info["warnings"])
    assert all(c.get("key_matches", True) for c in info["certificates"] if c["name"] != "apiserver")


def test_info_warns_about_a_kubeconfig_renewal_cannot_edit(tree):
    path = os.path.join(tree.kubeconfig_dir, "scheduler.conf")
    wrap_certificate_data(path)
    info = run_module("kubeadm_cert_info", dict(pki_dir=tree.pki_dir, kubeconfig_dir=tree.kubeconfig_dir))
    entry = next(c for c in info["certificates"] if c["name"] == "scheduler.conf")
    assert entry["renewable_in_place"] is False and entry["key_matches"] is True
    assert any("scheduler.conf" in w and "renewal will refuse it" in w for w in info["warnings"])

    renewed = run_module("kubeadm_cert_renew", tree.args(force=True))
    assert renewed["failed"] is True and [r["name"] for r in renewed["refused"]] == ["scheduler.conf"]
    assert "refused 1 certificate(s)" in renewed["msg"] and path in renewed["msg"]
    assert len(renewed["renewed"]) == len(table.CERTIFICATES) - 1


def test_info_fails_on_a_directory_without_kubeadm_pki(tmp_path):
    empty = tmp_path / "pki"
    empty.mkdir()
    info = run_module("kubeadm_cert_info", dict(pki_dir=str(empty), kubeconfig_dir=str(tmp_path)))
    assert info["failed"] is True and "holds no kubeadm PKI" in info["msg"] and str(empty) in info["msg"]
    assert "Traceback" not in info["_stdout"]


def test_etcd_refuses_a_broken_pair_and_starts_after_the_re_run(tmp_path):
    with EtcdLab(str(tmp_path / "lab"), size=1) as lab:
        member = lab.members[0]
        args = dict(pki_dir=member.pki_dir, kubeconfig_dir=os.path.join(member.root, "etc/kubernetes"),
                    backup_dir=str(tmp_path / "backups"), certs=["etcd-server"], force=True)
        lab.kill(member.name, signal.SIGTERM)
        # Killed after the key was swapped and before the certificate was.
        killed = run_module("kubeadm_cert_renew", args, env={_journal.FAULT_ENV: "after:swap:1"})
        assert killed["failed"] is True
        lab.launch(member, lab.initial_cluster(lab.members), "existing")
        member.process.wait(timeout=30)
        assert "private key does not match public key" in lab.tail_log(member, 40)

        again = run_module("kubeadm_cert_renew", args)
        assert again["failed"] is False and again["recovered"]["action"] == "roll_forward", again.get("msg")
        started = time.monotonic()
        lab.launch(member, lab.initial_cluster(lab.members), "existing")
        lab.wait_healthy([member], timeout=60)
        assert time.monotonic() - started < 60


@pytest.mark.parametrize("relative", [False, True], ids=["absolute links", "relative links"])
def test_symlinked_certificate_key_and_kubeconfig_are_renewed_through_the_link(tree, relative):
    shared = os.path.join(tree.root, "srv/shared-pki")
    os.makedirs(shared)
    links = {}
    for rel in ("etc/kubernetes/pki/apiserver.crt", "etc/kubernetes/pki/apiserver.key", "etc/kubernetes/admin.conf"):
        link = tree.path(rel)
        real = os.path.join(shared, os.path.basename(rel))
        os.rename(link, real)
        os.symlink(os.path.relpath(real, os.path.dirname(link)) if relative else real, link)
        links[link] = (os.readlink(link), open(real, "rb").read())
    renewed = run_module("kubeadm_cert_renew", tree.args(certs=["apiserver", "admin.conf"]))
    assert renewed["failed"] is False, renewed.get("msg")
    for link, (pointer, old) in links.items():
        assert os.path.islink(link) and os.readlink(link) == pointer
        assert open(link, "rb").read() != old
    assert sorted(os.listdir(shared)) == ["admin.conf", "apiserver.crt", "apiserver.key"]
    assert os.stat(os.path.join(shared, "apiserver.key")).st_mode & 0o777 == 0o600
    matches = pairs_match(tree.pki_dir, tree.kubeconfig_dir)
    assert matches["apiserver"] is True and matches["admin.conf"] is True
    by_name = {c["name"]: c for c in renewed["certificates"]}
    assert by_name["apiserver"]["days_left"] >= 364 and by_name["admin.conf"]["days_left"] >= 364
