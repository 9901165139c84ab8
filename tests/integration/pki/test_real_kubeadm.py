"""The certificate modules against the real kubeadm (scripts/lab-binaries builds it).

Trees come from two builders: ``kubeadm init phase certs all`` + ``phase kubeconfig all`` (kubeadm's
own PKI) and the lab's builder (tests/lab/pki.py, some certificates near expiry).  On each,
kubeadm_cert_info must agree with ``kubeadm certs check-expiration -o json`` certificate by
certificate, and the python renewal backend must issue what ``kubeadm certs renew`` issues.
"""
import datetime
import os
import shutil

import pytest
import yaml
from cryptography import x509

from ansible_collections.cplane.kubeadm.plugins.module_utils._pki import inspect
from ansible_collections.cplane.kubeadm.plugins.module_utils._pki import kubeadm as table
from tests.lab.ansible_run import run_module
from tests.lab.kubeadm import Kubeadm, KubeadmNode, LabBinaryMissing
from tests.lab.trees import tree_digest
from tests.unit.pki.helpers import NEAR_EXPIRY, kubeconfig_credentials

UTC = datetime.timezone.utc
# kubeadm_cert_info and kubeadm read the clock a few seconds apart.
CLOCK_SLACK = 120


@pytest.fixture(scope="module")
def kubeadm():
    try:
        return Kubeadm()
    except LabBinaryMissing as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def kubeadm_template(kubeadm, tmp_path_factory):
    """A node tree whose whole PKI kubeadm wrote (CAs, leaves, kubeconfigs), built once per module."""
    root = tmp_path_factory.mktemp("kubeadm-template") / "node"
    return KubeadmNode(str(root), kubeadm, node_name="cp1", advertise_address="10.0.0.11").init_pki()


def copy_node(template, destination):
    shutil.copytree(template.root, str(destination), symlinks=True)
    return KubeadmNode(str(destination), template.kubeadm, node_name=template.node_name,
                       advertise_address=template.advertise_address)


@pytest.fixture
def kubeadm_tree(kubeadm_template, tmp_path):
    return copy_node(kubeadm_template, tmp_path / "kubeadm-node")


@pytest.fixture
def lab_tree(tree, kubeadm):
    """The lab builder's tree (apiserver, etcd-server, admin.conf, controller-manager.conf due in 5 days)
    with a kubeadm configuration beside it."""
    return KubeadmNode(tree.root, kubeadm, node_name="cp1", advertise_address="10.0.0.11")


def cert_info(node):
    result = run_module("kubeadm_cert_info", dict(pki_dir=node.pki_dir, kubeconfig_dir=node.kubeconfig_dir,
                                                  kubelet_pki_dir=os.path.join(node.root, "var/lib/kubelet/pki")))
    assert result["failed"] is False, result.get("msg")
    return result


def parse_time(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def assert_same_as_check_expiration(node):
    """kubeadm_cert_info and ``kubeadm certs check-expiration -o json`` on the same tree, entry by entry."""
    ours = cert_info(node)
    theirs, their_cas = node.check_expiration()
    assert sorted(theirs) == sorted(table.CERTIFICATES) == sorted(c["name"] for c in ours["certificates"])
    assert sorted(their_cas) == sorted(table.CAS) == sorted(c["name"] for c in ours["certificate_authorities"])
    pairs = [(c, theirs[c["name"]]) for c in ours["certificates"]]
    pairs += [(c, their_cas[c["name"]]) for c in ours["certificate_authorities"]]
    for mine, kubeadm_entry in pairs:
        name = mine["name"]
        assert mine["missing"] == kubeadm_entry["missing"], name
        assert mine["externally_managed"] == kubeadm_entry["externallyManaged"], name
        if mine["missing"]:
            continue
        if mine["kind"] != "ca":
            assert mine["ca"] == kubeadm_entry.get("caName"), name
        assert parse_time(mine["not_after"]) == parse_time(kubeadm_entry["expirationDate"]), name
        assert abs(mine["residual_seconds"] - kubeadm_entry["residualTime"]) <= CLOCK_SLACK, name
    return ours, theirs, their_cas


def test_kubeadm_init_phases_write_the_pki_the_modules_read(kubeadm_tree):
    """What kubeadm itself issues is what the collection's table says kubeadm issues."""
    result = cert_info(kubeadm_tree)
    assert not result.get("warnings") and result["expiring"] == []  # Ansible warnings, if any
    for entry in result["certificates"]:
        spec = table.CERTIFICATES[entry["name"]]
        assert not entry["missing"] and entry["signed_by_ca"], entry
        assert entry["common_name"] == spec["cn"].format(node="cp1"), entry["name"]
        assert entry["organizations"] == ([spec["o"]] if spec["o"] else []), entry["name"]
        assert sorted(entry["extended_key_usages"]) == sorted(spec["eku"]), entry["name"]
        assert (entry["key_type"], entry["key_size"]) == ("RSA", 2048), entry["name"]
        assert 364 <= entry["days_left"] <= 365, entry["name"]
    by_name = {c["name"]: c for c in result["certificates"]}
    apiserver = by_name["apiserver"]
    assert {"cp1", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local", "localhost"} <= set(apiserver["dns_names"])
    assert {"10.96.0.1", "10.0.0.11", "127.0.0.1"} <= set(apiserver["ip_addresses"])
    assert set(by_name["etcd-server"]["ip_addresses"]) >= {"10.0.0.11", "127.0.0.1", "::1"}
    assert all(9 * 365 <= ca["days_left"] <= 3650 for ca in result["certificate_authorities"])


def test_cert_info_agrees_with_kubeadm_check_expiration_on_a_kubeadm_tree(kubeadm_tree):
    ours, theirs, _cas = assert_same_as_check_expiration(kubeadm_tree)
    assert not any(c["missing"] or c["externallyManaged"] for c in theirs.values())


def test_cert_info_agrees_with_kubeadm_check_expiration_on_the_lab_tree(lab_tree):
    ours, theirs, _cas = assert_same_as_check_expiration(lab_tree)
    due = sorted(name for name, entry in theirs.items() if entry["residualTime"] < 30 * 86400)
    assert due == sorted(NEAR_EXPIRY) == sorted(ours["expiring"])


def test_missing_and_externally_managed_agree_with_kubeadm(lab_tree):
    """A kubeconfig that is not there, and a CA without its key (external CA mode), as kubeadm sees them."""
    os.remove(os.path.join(lab_tree.kubeconfig_dir, "super-admin.conf"))
    os.remove(os.path.join(lab_tree.pki_dir, "front-proxy-ca.key"))
    ours, theirs, cas = assert_same_as_check_expiration(lab_tree)
    assert theirs["super-admin.conf"]["missing"] is True
    assert cas["front-proxy-ca"]["externallyManaged"] is True
    assert theirs["front-proxy-client"]["externallyManaged"] is True
    assert [n for n, e in theirs.items() if e["externallyManaged"]] == ["front-proxy-client"]


# -- renewal: the python backend against kubeadm certs renew ---------------------------------------


def leaf(node, name):
    spec = table.CERTIFICATES[name]
    if spec["kind"] == "kubeconfig":
        return x509.load_pem_x509_certificate(kubeconfig_credentials(os.path.join(node.kubeconfig_dir, spec["file"]))[0])
    with open(os.path.join(node.pki_dir, spec["cert"]), "rb") as handle:
        return x509.load_pem_x509_certificate(handle.read())


def _ext(cert, ext_type):
    try:
        return cert.extensions.get_extension_for_class(ext_type).value
    except x509.ExtensionNotFound:
        return None


def issued_as(cert):
    """What a renewal must carry over or decide, without serial and dates."""
    san = _ext(cert, x509.SubjectAlternativeName)
    eku = _ext(cert, x509.ExtendedKeyUsage)
    usage = _ext(cert, x509.KeyUsage)
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "dns": sorted(san.get_values_for_type(x509.DNSName)) if san else [],
        "ips": sorted(str(i) for i in san.get_values_for_type(x509.IPAddress)) if san else [],
        "eku": [oid.dotted_string for oid in eku] if eku else [],
        "key_usage": (usage.digital_signature, usage.key_encipherment, usage.key_cert_sign) if usage else None,
        "key": inspect.key_description(cert.public_key()),
        "validity": (inspect.not_after(cert) - inspect.not_before(cert)).total_seconds(),
        "ca": _ext(cert, x509.BasicConstraints).ca,
    }


def kubeconfig_shape(node, name):
    with open(os.path.join(node.kubeconfig_dir, table.CERTIFICATES[name]["file"])) as handle:
        config = yaml.safe_load(handle)
    return ([c["cluster"]["server"] for c in config["clusters"]], [u["name"] for u in config["users"]],
            config["current-context"])


@pytest.mark.parametrize("builder", ["kubeadm", "lab"])
def test_python_backend_renews_as_kubeadm_certs_renew_does(builder, kubeadm_tree, lab_tree, tmp_path):
    original = kubeadm_tree if builder == "kubeadm" else lab_tree
    by_python = copy_node(original, tmp_path / "python")
    by_kubeadm = copy_node(original, tmp_path / "kubeadm")
    before = {name: leaf(original, name) for name in table.CERTIFICATES}

    renewed = run_module("kubeadm_cert_renew", dict(pki_dir=by_python.pki_dir, kubeconfig_dir=by_python.kubeconfig_dir,
                                                    force=True, backup_dir=str(tmp_path / "backups")))
    assert renewed["failed"] is False, renewed.get("msg")
    assert sorted(r["name"] for r in renewed["renewed"]) == sorted(table.CERTIFICATES)
    for name in table.CERTIFICATES:
        out = by_kubeadm.renew(name).stdout
        assert "renewed" in out and "MISSING" not in out, out

    for name in table.CERTIFICATES:
        python_cert, kubeadm_cert = leaf(by_python, name), leaf(by_kubeadm, name)
        assert python_cert.serial_number != before[name].serial_number
        assert kubeadm_cert.serial_number != before[name].serial_number
        mine, theirs = issued_as(python_cert), issued_as(kubeadm_cert)
        # kubeadm backdates by 5 minutes and adds the configured validity (one year) to the current time.
        assert abs(mine.pop("validity") - theirs.pop("validity")) <= CLOCK_SLACK, name
        if builder == "lab":
            # kubeadm issues the key its configuration asks for (encryptionAlgorithm, RSA-2048 by default),
            # whatever the old key was; the lab tree is RSA-2048 as well, so both agree here.
            assert theirs["key"] == ("RSA", 2048)
        assert mine == theirs, name
        assert abs((inspect.not_after(python_cert) - inspect.not_after(kubeadm_cert)).total_seconds()) <= CLOCK_SLACK
        if table.CERTIFICATES[name]["kind"] == "kubeconfig":
            assert kubeconfig_shape(by_python, name) == kubeconfig_shape(by_kubeadm, name) == kubeconfig_shape(original, name)
    # The CAs are never renewed, by either.
    for ca in table.CAS.values():
        for node in (by_python, by_kubeadm):
            with open(os.path.join(node.pki_dir, ca["cert"]), "rb") as mine, \
                    open(os.path.join(original.pki_dir, ca["cert"]), "rb") as before_ca:
                assert mine.read() == before_ca.read()
    # Afterwards kubeadm and kubeadm_cert_info agree on both trees.
    assert_same_as_check_expiration(by_python)
    assert_same_as_check_expiration(by_kubeadm)


# -- the module's kubeadm backend with the real kubeadm --------------------------------------------


def test_kubeadm_backend_runs_the_real_kubeadm_certs_renew(lab_tree, kubeadm, tmp_path):
    config = lab_tree.write_host_config(tmp_path / "kubeadm.yaml")
    names = ["apiserver", "etcd-server"]
    before = {name: leaf(lab_tree, name) for name in names}
    digest = tree_digest(lab_tree.root)
    args = dict(pki_dir=lab_tree.pki_dir, kubeconfig_dir=lab_tree.kubeconfig_dir, backup_dir=str(tmp_path / "backups"),
                certs=names, backend="kubeadm", kubeadm_path=kubeadm.path, kubeadm_config=config)
    checked = run_module("kubeadm_cert_renew", args, check=True)
    assert checked["changed"] is True and [r["name"] for r in checked["renewed"]] == names
    assert tree_digest(lab_tree.root) == digest

    result = run_module("kubeadm_cert_renew", args)
    assert result["failed"] is False, result.get("msg")
    assert [r["name"] for r in result["renewed"]] == names
    assert result["restart_required"] == ["etcd", "kube-apiserver"]
    for entry in result["renewed"]:
        after = leaf(lab_tree, entry["name"])
        assert "%X" % after.serial_number == entry["new_serial"] != entry["old_serial"]
        mine, old = issued_as(after), issued_as(before[entry["name"]])
        assert mine.pop("validity") > old.pop("validity")   # five days -> a year (plus kubeadm's backdating)
        assert mine == old, entry["name"]
        assert all(os.path.exists(path) for path in entry["backups"])
    by_name = {c["name"]: c for c in result["certificates"]}
    assert all(by_name[name]["days_left"] >= 364 for name in names)
    again = run_module("kubeadm_cert_renew", args)
    assert again["changed"] is False and again["renewed"] == []


def test_kubeadm_backend_refuses_kubeconfigs_outside_etc_kubernetes(lab_tree, kubeadm, tmp_path):
    """kubeadm certs renew has no flag for the kubeconfig directory: it renews /etc/kubernetes/<name>.

    Run against a kubeconfig_dir elsewhere it reports ``MISSING!`` and exits 0 (or renews the host's
    own file), so the module refuses before anything is renewed.
    """
    digest = tree_digest(lab_tree.root)
    result = run_module("kubeadm_cert_renew", dict(
        pki_dir=lab_tree.pki_dir, kubeconfig_dir=lab_tree.kubeconfig_dir, backup_dir=str(tmp_path / "backups"),
        certs=["apiserver", "admin.conf"], backend="kubeadm", kubeadm_path=kubeadm.path))
    assert result["failed"] is True
    assert "/etc/kubernetes" in result["msg"] and lab_tree.kubeconfig_dir in result["msg"], result["msg"]
    assert "admin.conf" in result["msg"] and "backend=python" in result["msg"]
    assert tree_digest(lab_tree.root) == digest and not os.path.exists(str(tmp_path / "backups"))


def test_kubeadm_backend_refuses_a_config_whose_certificates_dir_is_elsewhere(lab_tree, kubeadm, tmp_path):
    """With --config, kubeadm renews in the configuration's certificatesDir and ignores --cert-dir."""
    other = KubeadmNode(str(tmp_path / "other"), kubeadm, node_name="cp1", advertise_address="10.0.0.11")
    config = other.write_host_config(tmp_path / "other.yaml")
    digest = tree_digest(lab_tree.root)
    result = run_module("kubeadm_cert_renew", dict(
        pki_dir=lab_tree.pki_dir, kubeconfig_dir=lab_tree.kubeconfig_dir, backup_dir=str(tmp_path / "backups"),
        certs=["apiserver"], backend="kubeadm", kubeadm_path=kubeadm.path, kubeadm_config=config))
    assert result["failed"] is True
    assert other.pki_dir in result["msg"] and lab_tree.pki_dir in result["msg"] and config in result["msg"], result["msg"]
    assert tree_digest(lab_tree.root) == digest
