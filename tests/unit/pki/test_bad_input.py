"""A broken certificate is refused with a message that names the file and leaks no key; the others are
still renewed, and the run fails at the end listing what it refused."""
import os
import shutil

import pytest

from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import InputError, OperationFailed
from ansible_collections.cplane.kubeadm.plugins.module_utils._pki import renew
from tests.lab import pki as lab
from tests.unit.pki.helpers import assert_no_key_material, key_bodies_in_tree, wrap_certificate_data


def write(path, data, mode=None):
    with open(path, "wb") as handle:
        handle.write(data)
    if mode is not None:
        os.chmod(path, mode)


def corrupt_certificate(tree):
    path = os.path.join(tree.pki_dir, "front-proxy-client.crt")
    data = open(path, "rb").read().splitlines(True)
    write(path, b"".join(data[:3] + [b"!!!!not base64!!!!\n"] + data[4:]))
    return path


def corrupt_key(tree):
    path = os.path.join(tree.pki_dir, "etcd/peer.key")
    data = open(path, "rb").read()
    write(path, data[:200] + data[260:])
    return path


def mismatched_key(tree):
    # The apiserver key replaced by another certificate's key: a broken pair.
    shutil.copy(os.path.join(tree.pki_dir, "apiserver-kubelet-client.key"), os.path.join(tree.pki_dir, "apiserver.key"))
    return os.path.join(tree.pki_dir, "apiserver.key")


def foreign_ca(tree):
    # etcd-server re-issued by a CA of another cluster, with the same name.
    other = lab.make_ca("etcd-ca")
    issued = lab.issue(other, "cp1", eku=["serverAuth", "clientAuth"], dns=["cp1"])
    lab.write_pair(os.path.join(tree.pki_dir, "etcd"), "server.crt", "server.key", issued)
    return os.path.join(tree.pki_dir, "etcd/server.crt")


def unreadable(tree):
    # A directory where the certificate should be: unreadable even for root.
    path = os.path.join(tree.pki_dir, "apiserver-etcd-client.crt")
    os.unlink(path)
    os.mkdir(path)
    return path


def malformed_kubeconfig(tree):
    path = os.path.join(tree.kubeconfig_dir, "scheduler.conf")
    data = open(path, "rb").read()
    write(path, data.replace(b"users:", b"users: [\n  - {"), 0o600)
    return path


def bad_base64_kubeconfig(tree):
    path = os.path.join(tree.kubeconfig_dir, "super-admin.conf")
    text = open(path, "rb").read()
    start = text.index(b"client-certificate-data: ") + len(b"client-certificate-data: ")
    write(path, text[:start + 10] + b"*" + text[start + 11:], 0o600)
    return path


def kubeconfig_without_embedded_key(tree):
    path = os.path.join(tree.kubeconfig_dir, "controller-manager.conf")
    lines = [line for line in open(path, "rb").read().splitlines(True) if b"client-key-data" not in line]
    write(path, b"".join(lines), 0o600)
    return path


CASES = {
    "corrupt certificate": (corrupt_certificate, "corrupt PEM certificate"),
    "corrupt key": (corrupt_key, "not an unencrypted PEM private key"),
    "key does not match": (mismatched_key, "does not match its certificate"),
    "not signed by the local CA": (foreign_ca, "is not signed by the etcd-ca"),
    "unreadable": (unreadable, "cannot read certificate"),
    "malformed kubeconfig": (malformed_kubeconfig, "malformed YAML"),
    "bad base64 in kubeconfig": (bad_base64_kubeconfig, "not valid base64"),
    "kubeconfig without embedded key": (kubeconfig_without_embedded_key, "no embedded"),
}


def _renew_all(tree):
    with pytest.raises(OperationFailed) as err:
        renew.renew_certificates(pki_dir=tree.pki_dir, kubeconfig_dir=tree.kubeconfig_dir, backup_dir=tree.backup_dir,
                                 force=True)
    return err.value


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_refused_naming_the_file_and_the_rest_is_renewed(tree, case):
    damage, expected = CASES[case]
    bodies = key_bodies_in_tree(tree) if case not in ("corrupt key",) else []
    path = damage(tree)
    if case == "corrupt key":
        bodies = key_bodies_in_tree_except(tree, path)
    before = open(path, "rb").read() if os.path.isfile(path) else None
    error = _renew_all(tree)
    refused = error.result["refused"]
    assert len(refused) == 1 and path in refused[0]["reason"] and expected in refused[0]["reason"], refused
    assert error.msg.startswith("refused 1 certificate(s)") and path in error.msg, error.msg
    assert (open(path, "rb").read() if os.path.isfile(path) else None) == before
    renewed = {r["name"] for r in error.result["renewed"]}
    assert renewed == set(renew.table.CERTIFICATES) - {refused[0]["name"]}
    assert all(os.path.exists(b) for r in error.result["renewed"] for b in r["backups"])
    assert_no_key_material(error.msg, bodies)


def test_wrapped_kubeconfig_is_refused_and_everything_else_renewed(tree):
    # client-certificate-data folded over lines (valid YAML, readable) cannot be replaced in place.
    path = os.path.join(tree.kubeconfig_dir, "admin.conf")
    wrap_certificate_data(path)
    before = open(path, "rb").read()
    error = _renew_all(tree)
    assert [r["name"] for r in error.result["refused"]] == ["admin.conf"]
    assert "admin.conf" in error.msg and "cannot be replaced in place" in error.msg
    assert open(path, "rb").read() == before
    assert {r["name"] for r in error.result["renewed"]} == set(renew.table.CERTIFICATES) - {"admin.conf"}


def test_broken_pair_refusal_names_the_backup_holding_the_last_good_pair(tree):
    first = renew.renew_certificates(pki_dir=tree.pki_dir, kubeconfig_dir=tree.kubeconfig_dir,
                                     backup_dir=tree.backup_dir, certs=["apiserver"], force=True)
    good = os.path.join(tree.backup_dir, first["backup_stamp"])
    mismatched_key(tree)
    with pytest.raises(OperationFailed) as err:
        renew.renew_certificates(pki_dir=tree.pki_dir, kubeconfig_dir=tree.kubeconfig_dir, backup_dir=tree.backup_dir,
                                 certs=["apiserver"], force=True)
    assert "the pair is broken" in err.value.msg and good in err.value.msg, err.value.msg


def test_broken_pair_without_any_good_backup_says_so(tree):
    mismatched_key(tree)
    with pytest.raises(OperationFailed) as err:
        renew.renew_certificates(pki_dir=tree.pki_dir, kubeconfig_dir=tree.kubeconfig_dir, backup_dir=tree.backup_dir,
                                 certs=["apiserver"], force=True)
    assert "No backup in %s holds a matching pair" % tree.backup_dir in err.value.msg


def key_bodies_in_tree_except(tree, broken):
    from tests.unit.pki.helpers import pem_bodies
    bodies = pem_bodies(open(broken, "rb").read())
    return [b for b in bodies if len(b) >= 40]


def test_a_certificate_that_is_not_due_is_still_validated(tree):
    # etcd-peer is far from expiry; a broken pair there is still reported, and what is due is renewed.
    path = corrupt_key(tree)
    before = open(path, "rb").read()
    with pytest.raises(OperationFailed) as err:
        renew.renew_certificates(pki_dir=tree.pki_dir, kubeconfig_dir=tree.kubeconfig_dir, backup_dir=tree.backup_dir)
    assert [r["name"] for r in err.value.result["refused"]] == ["etcd-peer"]
    assert len(err.value.result["renewed"]) == 4 and open(path, "rb").read() == before


def test_ca_key_that_does_not_match_its_certificate(tree):
    other = lab.make_ca("kubernetes")
    write(os.path.join(tree.pki_dir, "ca.key"), other.key_pem, 0o600)
    with pytest.raises(InputError) as err:
        renew.renew_certificates(pki_dir=tree.pki_dir, kubeconfig_dir=tree.kubeconfig_dir, backup_dir=tree.backup_dir)
    assert os.path.join(tree.pki_dir, "ca.key") in err.value.msg
    assert_no_key_material(err.value.msg, [b for b in other.key_pem.decode().splitlines() if len(b) > 40])
