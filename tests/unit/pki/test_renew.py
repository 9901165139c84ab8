"""kubeadm-style renewal through the backend, checked with openssl and cryptography."""
import datetime
import os

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import InputError
from ansible_collections.cplane.kubeadm.plugins.module_utils._pki import inspect as pki
from ansible_collections.cplane.kubeadm.plugins.module_utils._pki import kubeadm as table
from ansible_collections.cplane.kubeadm.plugins.module_utils._pki import renew
from tests.lab import pki as lab
from tests.lab.trees import tree_digest
from tests.unit.pki.helpers import (
    NEAR_EXPIRY, build_template, copy_tree, kubeconfig_credentials, openssl_field, openssl_subject, openssl_text,
    openssl_verify)

CA_FILES = ["etc/kubernetes/pki/" + spec[f] for spec in table.CAS.values() for f in ("cert", "key")]


def run(tree, **kwargs):
    args = dict(pki_dir=tree.pki_dir, kubeconfig_dir=tree.kubeconfig_dir, backup_dir=tree.backup_dir)
    args.update(kwargs)
    return renew.renew_certificates(**args)


def cert_pem_of(tree, name):
    spec = table.CERTIFICATES[name]
    if spec["kind"] == "kubeconfig":
        return kubeconfig_credentials(os.path.join(tree.kubeconfig_dir, spec["file"]))[0]
    return tree.read("etc/kubernetes/pki/" + spec["cert"])


def key_pem_of(tree, name):
    spec = table.CERTIFICATES[name]
    if spec["kind"] == "kubeconfig":
        return kubeconfig_credentials(os.path.join(tree.kubeconfig_dir, spec["file"]))[1]
    return tree.read("etc/kubernetes/pki/" + spec["key"])


def test_renews_only_what_is_due_keeping_subject_sans_and_usages(tree):
    before = {name: cert_pem_of(tree, name) for name in table.CERTIFICATES}
    old_keys = {name: key_pem_of(tree, name) for name in table.CERTIFICATES}
    digest_before = tree_digest(tree.root)
    started = datetime.datetime.now(datetime.timezone.utc)

    result = run(tree)

    assert sorted(r["name"] for r in result["renewed"]) == sorted(NEAR_EXPIRY)
    assert result["restart_required"] == ["etcd", "kube-apiserver", "kube-controller-manager"]
    assert {s["name"] for s in result["not_renewed"]} == set(table.CERTIFICATES) - set(NEAR_EXPIRY)
    # Ansible treats a result carrying these keys as skipped/failed, whatever the module did.
    assert not {"skipped", "failed", "results"} & set(result)
    for name in NEAR_EXPIRY:
        old_pem, new_pem = before[name], cert_pem_of(tree, name)
        assert new_pem != old_pem
        old_text, new_text = openssl_text(old_pem), openssl_text(new_pem)
        assert openssl_subject(new_pem) == openssl_subject(old_pem)
        for header in ("X509v3 Subject Alternative Name", "X509v3 Extended Key Usage", "X509v3 Key Usage"):
            assert openssl_field(new_text, header) == openssl_field(old_text, header), (name, header)
        old, new = x509.load_pem_x509_certificate(old_pem), x509.load_pem_x509_certificate(new_pem)
        assert new.subject == old.subject and new.issuer == old.issuer
        assert new.serial_number != old.serial_number
        assert new.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) != \
            old.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        assert new.public_key().key_size == old.public_key().key_size == 2048
        expected_end = started + datetime.timedelta(days=365)
        assert abs((pki.not_after(new) - expected_end).total_seconds()) < 120
        assert datetime.timedelta(minutes=4) < started - pki.not_before(new) < datetime.timedelta(minutes=7)
        new_key = serialization.load_pem_private_key(key_pem_of(tree, name), None)
        assert pki.key_matches(new, new_key)
        assert key_pem_of(tree, name) != old_keys[name]
        ca = tree.cas.by_name(table.CERTIFICATES[name]["ca"]).cert
        assert pki.signed_by(new, ca)
    # openssl agrees that the renewed files chain to the CA on disk.
    for name in ("apiserver", "etcd-server"):
        spec = table.CERTIFICATES[name]
        ca_file = os.path.join(tree.pki_dir, table.CAS[spec["ca"]]["cert"])
        verdict = openssl_verify(ca_file, os.path.join(tree.pki_dir, spec["cert"]))
        assert verdict.returncode == 0 and verdict.stdout.strip().endswith(": OK"), verdict.stdout + verdict.stderr
        assert os.stat(os.path.join(tree.pki_dir, spec["key"])).st_mode & 0o777 == 0o600
    digest_after = tree_digest(tree.root)
    for rel in CA_FILES:
        assert digest_after[rel] == digest_before[rel]
    # Everything not renewed is byte-identical.
    touched = set()
    for name in NEAR_EXPIRY:
        spec = table.CERTIFICATES[name]
        touched |= ({"etc/kubernetes/" + spec["file"]} if spec["kind"] == "kubeconfig"
                    else {"etc/kubernetes/pki/" + spec["cert"], "etc/kubernetes/pki/" + spec["key"]})
    assert {k for k in digest_before if digest_before[k] != digest_after.get(k)} == touched


def test_kubeconfig_changes_only_in_the_two_client_fields(tree):
    path = os.path.join(tree.kubeconfig_dir, "admin.conf")
    old = open(path, "rb").read()
    # An operator's comment and odd formatting must survive.
    old = b"# managed by kubeadm; copied to /root/.kube/config\n" + old.replace(b"preferences: {}", b"preferences:   {}  # keep")
    with open(path, "wb") as handle:
        handle.write(old)
    os.chmod(path, 0o600)
    old_cert, old_key = kubeconfig_credentials(path)

    run(tree, certs=["admin.conf"])

    new = open(path, "rb").read()
    new_cert, new_key = kubeconfig_credentials(path)
    assert new_cert != old_cert and new_key != old_key
    import base64
    rebuilt = new.replace(base64.b64encode(new_cert), base64.b64encode(old_cert)).replace(
        base64.b64encode(new_key), base64.b64encode(old_key))
    assert rebuilt == old
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_second_run_changes_nothing(tree):
    run(tree)
    digest = tree_digest(tree.root)
    result = run(tree)
    assert result["changed"] is False and result["renewed"] == [] and result["restart_required"] == []
    assert tree_digest(tree.root) == digest


def test_check_mode_reports_and_writes_nothing(tree):
    digest = tree_digest(tree.root)
    result = run(tree, check_mode=True)
    assert result["changed"] is True
    assert sorted(r["name"] for r in result["renewed"]) == sorted(NEAR_EXPIRY)
    expected = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=365)
    for entry in result["renewed"]:
        end = datetime.datetime.strptime(entry["new_not_after"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
        assert abs((end - expected).total_seconds()) < 120
    assert "(new)" in result["diff"]["after"] and "BEGIN" not in result["diff"]["after"] + result["diff"]["before"]
    assert tree_digest(tree.root) == digest
    assert not os.path.exists(tree.backup_dir)


def test_backups_keep_content_and_mode(tree):
    old_key = tree.read("etc/kubernetes/pki/apiserver.key")
    old_conf = tree.read("etc/kubernetes/admin.conf")
    result = run(tree)
    entry = next(r for r in result["renewed"] if r["name"] == "apiserver")
    key_backup = next(b for b in entry["backups"] if b.endswith("apiserver.key"))
    assert open(key_backup, "rb").read() == old_key
    assert os.stat(key_backup).st_mode & 0o777 == 0o600
    assert key_backup.startswith(os.path.join(tree.backup_dir, result["backup_stamp"]))
    conf_backup = next(r for r in result["renewed"] if r["name"] == "admin.conf")["backups"][0]
    assert open(conf_backup, "rb").read() == old_conf


def test_force_and_validity_days(tree):
    result = run(tree, certs=["front-proxy-client", "etcd-peer"], force=True, validity_days=30)
    assert [r["name"] for r in result["renewed"]] == ["front-proxy-client", "etcd-peer"]
    cert = x509.load_pem_x509_certificate(tree.read("etc/kubernetes/pki/front-proxy-client.crt"))
    days = (pki.not_after(cert) - datetime.datetime.now(datetime.timezone.utc)).total_seconds() / 86400
    assert 29.9 < days < 30.1
    assert result["restart_required"] == ["etcd", "kube-apiserver"]


def test_validity_is_capped_at_the_ca_expiry(tmp_path):
    template = str(tmp_path / "template")
    cas, node = build_template(template, ca_days=100)
    tree = copy_tree(template, cas, node, str(tmp_path / "node"))
    result = run(tree, certs=["apiserver"])
    entry = result["renewed"][0]
    assert entry["capped_at_ca_expiry"] is True
    cert = x509.load_pem_x509_certificate(tree.read("etc/kubernetes/pki/apiserver.crt"))
    assert pki.not_after(cert) == pki.not_after(cas.ca.cert)
    assert any("capped" in w and "CA rotation" in w for w in result["warnings"])
    # Once at the CA's end, another run cannot extend it and leaves it alone.
    again = run(tree, certs=["apiserver"], renew_before_days=200)
    assert again["renewed"] == [] and "Rotate the CA" in again["not_renewed"][0]["reason"]


def test_expired_ca_is_not_used(tmp_path):
    template = str(tmp_path / "template")
    old = lab.now() - datetime.timedelta(days=20)
    cas = lab.ClusterCAs.create(days=10, not_before=old)
    node = lab.build_node_pki(template, cas, names=["etcd-peer"])
    # A leaf issued inside the CA's life that expired with it.
    leaf = lab.issue(cas.ca, "kube-apiserver", eku=[table.SERVER_AUTH], dns=["cp1"], not_before=old + datetime.timedelta(days=1),
                     not_after=old + datetime.timedelta(days=9))
    lab.write_pair(os.path.join(template, "etc/kubernetes/pki"), "apiserver.crt", "apiserver.key", leaf)
    tree = copy_tree(template, cas, node, str(tmp_path / "node"))
    result = run(tree, certs=["apiserver"])
    assert result["renewed"] == []
    assert "rotate the CA first" in result["not_renewed"][0]["reason"]


def test_external_ca_is_skipped_with_reason(tree):
    os.unlink(os.path.join(tree.pki_dir, "ca.key"))
    result = run(tree)
    skipped = {s["name"]: s["reason"] for s in result["not_renewed"]}
    assert "externally managed" in skipped["apiserver"] and "ca.key" in skipped["apiserver"]
    assert "externally managed" in skipped["admin.conf"]
    assert [r["name"] for r in result["renewed"]] == ["etcd-server"]


def test_missing_files_are_skipped_with_reason(tree):
    os.unlink(os.path.join(tree.kubeconfig_dir, "admin.conf"))
    os.unlink(os.path.join(tree.pki_dir, "etcd/server.crt"))
    os.unlink(os.path.join(tree.pki_dir, "etcd/server.key"))
    result = run(tree)
    skipped = {s["name"]: s["reason"] for s in result["not_renewed"]}
    assert "does not exist" in skipped["admin.conf"] and "does not exist" in skipped["etcd-server"]
    assert sorted(r["name"] for r in result["renewed"]) == ["apiserver", "controller-manager.conf"]


def test_unknown_name_is_refused(tree):
    with pytest.raises(InputError) as err:
        run(tree, certs=["apiserver", "kubelet"])
    assert "kubelet" in err.value.msg and "etcd-server" in err.value.msg


@pytest.mark.parametrize("fmt", ["ecdsa"])
def test_key_type_and_pem_format_are_kept(tmp_path, fmt):
    template = str(tmp_path / "template")
    cas, node = build_template(template, key_type=fmt)
    tree = copy_tree(template, cas, node, str(tmp_path / "node"))
    old_key = tree.read("etc/kubernetes/pki/etcd/server.key")
    run(tree, certs=["etcd-server"])
    new_key = tree.read("etc/kubernetes/pki/etcd/server.key")
    assert new_key.splitlines()[0] == old_key.splitlines()[0]
    cert = x509.load_pem_x509_certificate(tree.read("etc/kubernetes/pki/etcd/server.crt"))
    assert pki.key_description(cert.public_key()) == ("ECDSA", 256)
    assert pki.signed_by(cert, cas.etcd_ca.cert)


def test_restart_order_comes_from_the_table():
    assert renew.restart_required(["scheduler.conf", "apiserver", "etcd-peer", "admin.conf"]) == \
        ["etcd", "kube-apiserver", "kube-scheduler"]
    assert renew.restart_required(["etcd-healthcheck-client", "super-admin.conf"]) == []


def test_backup_dir_inside_manifests_is_refused(tree):
    with pytest.raises(InputError) as err:
        run(tree, backup_dir=os.path.join(tree.kubeconfig_dir, "manifests", "bak"))
    assert "manifests" in err.value.msg
    assert not os.path.exists(os.path.join(tree.kubeconfig_dir, "manifests"))
