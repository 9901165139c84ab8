"""The certificate modules through the real ``ansible`` CLI: check mode, diff, idempotence, bad input,
the kubeadm backend's failure path against a recording stand-in (the real kubeadm: test_real_kubeadm.py),
and no key material in any output."""
import json
import os
import shutil

import pytest

from tests.lab import pki as lab
from tests.lab.ansible_run import run_module
from tests.lab.trees import tree_digest
from tests.unit.pki.helpers import NEAR_EXPIRY, assert_no_key_material, key_bodies_in_tree


def test_info_module_reports_expiry_and_no_key_material(tree):
    issued = lab.issue(tree.cas.ca, "system:node:cp1", "system:nodes", days=20)
    os.makedirs(tree.kubelet_pki_dir)
    with open(os.path.join(tree.kubelet_pki_dir, "kubelet-client-current.pem"), "wb") as handle:
        handle.write(issued.cert_pem + issued.key_pem)
    result = run_module("kubeadm_cert_info", dict(pki_dir=tree.pki_dir, kubeconfig_dir=tree.kubeconfig_dir,
                                                  kubelet_pki_dir=tree.kubelet_pki_dir, warn_days=30))
    assert result["failed"] is False and result["changed"] is False
    assert sorted(result["expiring"]) == sorted(NEAR_EXPIRY)
    assert len(result["certificates"]) == 11 and len(result["certificate_authorities"]) == 3
    assert result["kubelet_client"]["common_name"] == "system:node:cp1"
    bodies = key_bodies_in_tree(tree) + [b for b in issued.key_pem.decode().splitlines() if len(b) > 40]
    assert_no_key_material(json.dumps(result), bodies)


def test_renew_check_mode_diff_then_renew_then_idempotent(tree):
    bodies = key_bodies_in_tree(tree)
    digest = tree_digest(tree.root)
    checked = run_module("kubeadm_cert_renew", tree.args(), check=True, diff=True)
    assert checked["failed"] is False and checked["changed"] is True
    assert sorted(r["name"] for r in checked["renewed"]) == sorted(NEAR_EXPIRY)
    assert "notAfter" in checked["diff"]["before"] and "(new)" in checked["diff"]["after"]
    assert tree_digest(tree.root) == digest and not os.path.exists(tree.backup_dir)

    renewed = run_module("kubeadm_cert_renew", tree.args(), diff=True)
    assert renewed["changed"] is True
    assert renewed["restart_required"] == ["etcd", "kube-apiserver", "kube-controller-manager"]
    by_name = {c["name"]: c for c in renewed["certificates"]}
    for name in NEAR_EXPIRY:
        assert by_name[name]["days_left"] >= 364
        entry = next(r for r in renewed["renewed"] if r["name"] == name)
        assert entry["new_serial"] != entry["old_serial"] and entry["new_serial"] in renewed["diff"]["after"]
    bodies += key_bodies_in_tree(tree)
    assert_no_key_material(json.dumps(checked) + json.dumps(renewed), bodies)

    digest = tree_digest(tree.root)
    again = run_module("kubeadm_cert_renew", tree.args(), diff=True)
    assert again["changed"] is False and again["renewed"] == [] and again["restart_required"] == []
    checked_again = run_module("kubeadm_cert_renew", tree.args(), check=True)
    assert checked_again["changed"] is False
    assert tree_digest(tree.root) == digest


def _mismatch(tree):
    shutil.copy(os.path.join(tree.pki_dir, "front-proxy-client.key"), os.path.join(tree.pki_dir, "apiserver.key"))
    return os.path.join(tree.pki_dir, "apiserver.key")


def _foreign(tree):
    other = lab.make_ca("kubernetes")
    issued = lab.issue(other, "kube-apiserver", eku=["serverAuth"], dns=["cp1"])
    lab.write_pair(tree.pki_dir, "apiserver.crt", "apiserver.key", issued)
    return os.path.join(tree.pki_dir, "apiserver.crt")


def _corrupt_kubeconfig_key(tree):
    path = os.path.join(tree.kubeconfig_dir, "admin.conf")
    text = open(path).read()
    start = text.index("client-key-data: ") + len("client-key-data: ")
    # Valid base64 of something that is not a key.
    with open(path, "w") as handle:
        handle.write(text[:start] + "bm90IGEga2V5" + text[text.index("\n", start):])
    return path


@pytest.mark.parametrize("damage,expected", [
    (_mismatch, "does not match its certificate"),
    (_foreign, "is not signed by the ca"),
    (_corrupt_kubeconfig_key, "client-key-data of user"),
], ids=["mismatched key", "foreign CA", "kubeconfig key not a key"])
def test_bad_input_fails_cleanly_through_the_module(tree, damage, expected):
    bodies = key_bodies_in_tree(tree) if damage is not _corrupt_kubeconfig_key else []
    path = damage(tree)
    if damage is not _corrupt_kubeconfig_key:
        bodies = key_bodies_in_tree(tree) + bodies
    before = open(path, "rb").read()
    result = run_module("kubeadm_cert_renew", tree.args(force=True))
    assert result["failed"] is True
    assert path in result["msg"] and expected in result["msg"], result["msg"]
    assert "Traceback" not in result["_stdout"]
    # The broken file is left as it is; every other certificate was renewed (and is in the result).
    assert open(path, "rb").read() == before
    assert len(result["refused"]) == 1 and len(result["renewed"]) == 10
    assert all(os.path.exists(b) for r in result["renewed"] for b in r["backups"])
    assert_no_key_material(json.dumps(result), bodies + key_bodies_in_tree(tree))


def test_kubeadm_backend_failure_names_the_certificate(tree, kubeadm_standin):
    """The recording stand-in fails on demand; the real kubeadm (tests/integration/pki/test_real_kubeadm.py) fails
    only on input the module already refuses before it runs kubeadm."""
    env = dict(kubeadm_standin.env, KUBEADM_STANDIN_FAIL="etcd-server")
    result = run_module("kubeadm_cert_renew", tree.args(backend="kubeadm", kubeadm_path=kubeadm_standin.path,
                                                        certs=["apiserver", "etcd-server"]), env=env)
    assert result["failed"] is True
    assert "certs renew etcd-server" in result["msg"] and "simulated" in result["msg"]
    assert "renewed before the failure: apiserver" in result["msg"]
    assert [r["name"] for r in result["renewed"]] == ["apiserver"] and result["restart_required"] == ["kube-apiserver"]
    assert kubeadm_standin.calls() == [["certs", "renew", name, "--cert-dir", tree.pki_dir]
                                       for name in ("apiserver", "etcd-server")]


def test_kubeadm_backend_without_kubeadm_fails_clearly(tree):
    result = run_module("kubeadm_cert_renew", tree.args(backend="kubeadm", kubeadm_path="kubeadm-not-installed"))
    assert result["failed"] is True and "kubeadm-not-installed" in result["msg"]
