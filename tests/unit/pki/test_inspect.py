"""check-expiration as data: facts, expiring list, CA warnings, kubelet's certificate, no key material."""
import datetime
import json
import os

from ansible_collections.cplane.kubeadm.plugins.module_utils._pki import inspect as pki
from ansible_collections.cplane.kubeadm.plugins.module_utils._pki import kubeadm as table
from tests.lab import pki as lab
from tests.unit.pki.helpers import NEAR_EXPIRY, assert_no_key_material, build_template, copy_tree, key_bodies_in_tree


def test_scan_reports_every_certificate_and_ca(tree):
    report = pki.scan(tree.pki_dir, tree.kubeconfig_dir, tree.kubelet_pki_dir, warn_days=30)
    by_name = {c["name"]: c for c in report["certificates"]}
    assert list(by_name) == list(table.CERTIFICATES)
    assert [c["name"] for c in report["certificate_authorities"]] == list(table.CAS)
    assert sorted(report["expiring"]) == sorted(NEAR_EXPIRY)
    server = by_name["etcd-server"]
    assert server["common_name"] == "cp1" and server["ca"] == "etcd-ca" and server["signed_by_ca"] is True
    assert server["dns_names"] == ["cp1", "localhost"] and server["ip_addresses"] == ["10.0.0.11", "127.0.0.1", "::1"]
    assert server["extended_key_usages"] == ["serverAuth", "clientAuth"]
    assert (server["key_type"], server["key_size"]) == ("RSA", 2048)
    assert 4 <= server["days_left"] <= 5 and server["residual_time"] in ("4d", "5d")
    assert server["restart"] == ["etcd"] and server["externally_managed"] is False
    admin = by_name["admin.conf"]
    assert admin["kind"] == "kubeconfig" and admin["organizations"] == ["kubeadm:cluster-admins"]
    ca = report["certificate_authorities"][0]
    assert ca["residual_time"] == "9y" and ca["externally_managed"] is False
    assert report["warnings"] == []
    assert_no_key_material(json.dumps(report), key_bodies_in_tree(tree))


def test_external_ca_and_missing_files(tree):
    os.unlink(os.path.join(tree.pki_dir, "front-proxy-ca.key"))
    os.unlink(os.path.join(tree.kubeconfig_dir, "super-admin.conf"))
    report = pki.scan(tree.pki_dir, tree.kubeconfig_dir, tree.kubelet_pki_dir)
    by_name = {c["name"]: c for c in report["certificates"]}
    assert by_name["front-proxy-client"]["externally_managed"] is True
    assert by_name["apiserver"]["externally_managed"] is False
    assert by_name["super-admin.conf"]["missing"] is True and "not_after" not in by_name["super-admin.conf"]
    cas = {c["name"]: c for c in report["certificate_authorities"]}
    assert cas["front-proxy-ca"]["externally_managed"] is True


def test_ca_that_ends_before_a_renewed_leaf_is_a_warning(tmp_path):
    template = str(tmp_path / "t")
    cas, node = build_template(template, ca_days=200)
    tree = copy_tree(template, cas, node, str(tmp_path / "n"))
    report = pki.scan(tree.pki_dir, tree.kubeconfig_dir, tree.kubelet_pki_dir, validity_days=365)
    assert len(report["warnings"]) == 3
    assert all("Plan a CA rotation" in w for w in report["warnings"])
    assert not pki.scan(tree.pki_dir, tree.kubeconfig_dir, tree.kubelet_pki_dir, validity_days=150)["warnings"]


def test_kubelet_client_from_the_rotated_pem_with_its_key(tree):
    issued = lab.issue(tree.cas.ca, "system:node:cp1", "system:nodes", days=20)
    os.makedirs(tree.kubelet_pki_dir)
    path = os.path.join(tree.kubelet_pki_dir, "kubelet-client-current.pem")
    with open(path, "wb") as handle:
        handle.write(issued.cert_pem + issued.key_pem)
    report = pki.scan(tree.pki_dir, tree.kubeconfig_dir, tree.kubelet_pki_dir)
    kubelet = report["kubelet_client"]
    assert kubelet["path"] == path and kubelet["common_name"] == "system:node:cp1"
    assert 19 <= kubelet["days_left"] <= 20 and kubelet["rotated_by_kubelet"] is True
    assert "kubelet-client" not in report["expiring"]
    body = [b for b in issued.key_pem.decode().splitlines() if len(b) > 40]
    assert_no_key_material(json.dumps(report), body)


def test_kubelet_client_from_kubelet_conf(tree):
    issued = lab.issue(tree.cas.ca, "system:node:cp1", "system:nodes")
    import yaml
    config = lab.kubeconfig("https://127.0.0.1:6443", tree.cas.ca, "system:node:cp1", issued)
    with open(os.path.join(tree.kubeconfig_dir, "kubelet.conf"), "w") as handle:
        yaml.safe_dump(config, handle)
    kubelet = pki.scan(tree.pki_dir, tree.kubeconfig_dir, tree.kubelet_pki_dir)["kubelet_client"]
    assert kubelet["path"].endswith("kubelet.conf") and kubelet["organizations"] == ["system:nodes"]


def test_unreadable_entry_is_reported_not_fatal(tree):
    with open(os.path.join(tree.pki_dir, "apiserver.crt"), "wb") as handle:
        handle.write(b"garbage")
    report = pki.scan(tree.pki_dir, tree.kubeconfig_dir, tree.kubelet_pki_dir)
    entry = report["certificates"][0]
    assert "does not contain a PEM certificate" in entry["error"] and entry["error"] in report["warnings"]


def test_residual_time_like_kubeadm():
    assert pki.residual_time(364 * 86400 + 5) == "364d"
    assert pki.residual_time(9 * 365 * 86400 + 100) == "9y"
    assert pki.residual_time(5 * 3600 + 1) == "5h"
    assert pki.residual_time(0) == "<invalid>"


def test_expired_certificate_has_negative_days():
    ca = lab.make_ca("kubernetes", not_before=lab.now() - datetime.timedelta(days=30))
    cert = lab.issue(ca, "x", not_before=lab.now() - datetime.timedelta(days=20),
                     not_after=lab.now() - datetime.timedelta(days=2, hours=1)).cert
    facts = pki.certificate_facts(cert)
    assert facts["expired"] is True and facts["days_left"] == -3 and facts["residual_time"] == "<invalid>"
