# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Load and inspect the certificates of a kubeadm node: the data behind ``kubeadm certs check-expiration``.

Every loader raises InputError naming the file and never quoting its content: a key file that is
corrupt must not end up in an error message.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import os
import re
import traceback

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
except ImportError:  # pragma: no cover - reported through missing_required_lib
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None

from ansible_collections.cplane.kubeadm.plugins.module_utils import _journal
from ansible_collections.cplane.kubeadm.plugins.module_utils._files import read_input_file
from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import CplaneError, InputError
from ansible_collections.cplane.kubeadm.plugins.module_utils._pki import kubeadm as table
from ansible_collections.cplane.kubeadm.plugins.module_utils._pki import kubeconfig as kubeconfigs

UTC = datetime.timezone.utc
KUBELET_CLIENT_FILE = "kubelet-client-current.pem"
# The record of a renewal's swap in progress (see _journal).
JOURNAL_NAME = ".cplane-kubeadm-renewal.journal"
_CERT_BLOCK = re.compile(br"-----BEGIN CERTIFICATE-----\r?\n.+?-----END CERTIFICATE-----", re.S)

# Names as kubeadm's table (and openssl) spell them, for what the modules return.
EKU_NAMES = {}
if HAS_CRYPTOGRAPHY:
    EKU_NAMES = {ExtendedKeyUsageOID.SERVER_AUTH: table.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH: table.CLIENT_AUTH}


def utcnow():
    return datetime.datetime.now(UTC)


def not_before(cert):
    value = getattr(cert, "not_valid_before_utc", None)
    return value if value is not None else cert.not_valid_before.replace(tzinfo=UTC)


def not_after(cert):
    value = getattr(cert, "not_valid_after_utc", None)
    return value if value is not None else cert.not_valid_after.replace(tzinfo=UTC)


def isoformat(moment):
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_file(path, what="file"):
    return read_input_file(path, what)


def parse_certificate(data, source):
    """The first certificate in PEM ``data``; ``source`` names where it came from in errors.

    Only the CERTIFICATE block is handed to the parser, so files that hold the key as well
    (kubelet-client-current.pem) never put key bytes near an error path.
    """
    match = _CERT_BLOCK.search(data or b"")
    if not match:
        raise InputError("%s does not contain a PEM certificate (no BEGIN/END CERTIFICATE block). "
                         "Restore it from a backup or re-create it with kubeadm." % source)
    try:
        return x509.load_pem_x509_certificate(match.group(0))
    except ValueError:
        raise InputError("%s holds a corrupt PEM certificate that cannot be parsed. "
                         "Restore it from a backup or re-create it with kubeadm." % source)


def load_certificate(path):
    return parse_certificate(read_file(path, "certificate"), path)


def load_pem_key(data):
    # The RSA consistency check (primality of p and q) costs ~100 ms per key and proves nothing we
    # rely on: pairs are matched by public key, and every certificate signed with a CA key is
    # verified against the CA certificate before it is written.
    try:
        return serialization.load_pem_private_key(data, password=None, unsafe_skip_rsa_key_validation=True)
    except TypeError:  # cryptography < 39 has no such parameter
        return serialization.load_pem_private_key(data, password=None)


def parse_private_key(data, source):
    try:
        return load_pem_key(data)
    except (ValueError, TypeError):
        # The exception text can echo parts of the input; say only which file is bad.
        raise InputError("%s is not an unencrypted PEM private key (corrupt, encrypted or of an unsupported type). "
                         "Restore it from a backup." % source)
    except Exception:  # cryptography raises UnsupportedAlgorithm and others for odd keys
        raise InputError("%s holds a private key that cannot be loaded. Restore it from a backup." % source)


def load_private_key(path):
    return parse_private_key(read_file(path, "private key"), path)


def key_description(public_key):
    """("RSA", 2048), ("ECDSA", 256) or ("Ed25519", 256)."""
    if isinstance(public_key, rsa.RSAPublicKey):
        return "RSA", public_key.key_size
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return "ECDSA", public_key.curve.key_size
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256
    return type(public_key).__name__, None


def _public_bytes(public_key):
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_matches(cert, private_key):
    return _public_bytes(cert.public_key()) == _public_bytes(private_key.public_key())


def signed_by(cert, ca_cert):
    """True when ``ca_cert`` issued ``cert`` (issuer name and signature)."""
    if cert.issuer != ca_cert.subject:
        return False
    public_key = ca_cert.public_key()
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), cert.signature_hash_algorithm)
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
        elif isinstance(public_key, ed25519.Ed25519PublicKey):
            public_key.verify(cert.signature, cert.tbs_certificate_bytes)
        else:
            return False
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _extension(cert, ext_type):
    try:
        return cert.extensions.get_extension_for_class(ext_type)
    except x509.ExtensionNotFound:
        return None


def subject_parts(name):
    common = [a.value for a in name.get_attributes_for_oid(NameOID.COMMON_NAME)]
    orgs = [a.value for a in name.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    return (common[0] if common else None), orgs


def residual_time(seconds):
    """kubeadm's RESIDUAL TIME column: 364d, 9y, 5h, <invalid> once expired."""
    if seconds <= 0:
        return "<invalid>"
    days = seconds // 86400
    if days >= 365 * 2:
        return "%dy" % (days // 365)
    if days >= 1:
        return "%dd" % days
    if seconds >= 3600:
        return "%dh" % (seconds // 3600)
    return "%dm" % max(1, seconds // 60)


def certificate_facts(cert, now=None):
    """What an operator needs to know about ``cert``; no key material."""
    now = now or utcnow()
    cn, orgs = subject_parts(cert.subject)
    san = _extension(cert, x509.SubjectAlternativeName)
    eku = _extension(cert, x509.ExtendedKeyUsage)
    key_type, key_size = key_description(cert.public_key())
    residual = int((not_after(cert) - now).total_seconds())
    return {
        "subject": cert.subject.rfc4514_string(),
        "common_name": cn,
        "organizations": orgs,
        "issuer": cert.issuer.rfc4514_string(),
        "dns_names": san.value.get_values_for_type(x509.DNSName) if san else [],
        "ip_addresses": [str(ip) for ip in san.value.get_values_for_type(x509.IPAddress)] if san else [],
        "extended_key_usages": [EKU_NAMES.get(oid, oid.dotted_string) for oid in eku.value] if eku else [],
        "key_type": key_type,
        "key_size": key_size,
        "serial": "%X" % cert.serial_number,
        "not_before": isoformat(not_before(cert)),
        "not_after": isoformat(not_after(cert)),
        "residual_seconds": residual,
        "days_left": residual // 86400 if residual > 0 else -((-residual + 86399) // 86400),
        "residual_time": residual_time(residual),
        "expired": residual <= 0,
    }


# -- the kubeadm tree ------------------------------------------------------------------------------


def ca_paths(pki_dir, ca_name):
    spec = table.CAS[ca_name]
    return os.path.join(pki_dir, spec["cert"]), os.path.join(pki_dir, spec["key"])


def leaf_paths(name, pki_dir, kubeconfig_dir):
    """(certificate path, key path) of a table entry; for kubeconfigs both are the kubeconfig."""
    spec = table.CERTIFICATES[name]
    if spec["kind"] == "kubeconfig":
        path = os.path.join(kubeconfig_dir, spec["file"])
        return path, path
    return os.path.join(pki_dir, spec["cert"]), os.path.join(pki_dir, spec["key"])


def journal_path(pki_dir):
    """Where a renewal records an unfinished swap: beside the PKI directory (/etc/kubernetes), never in manifests/."""
    return os.path.join(os.path.dirname(os.path.abspath(pki_dir.rstrip(os.sep) or os.sep)), JOURNAL_NAME)


def check_pki_dir(pki_dir):
    """InputError unless ``pki_dir`` holds at least one file of kubeadm's PKI layout."""
    if not os.path.isdir(pki_dir):
        raise InputError("pki_dir %s is not a directory. Point pki_dir at the node's kubeadm PKI (default %s) and run "
                         "with become." % (pki_dir, table.PKI_DIR))
    known = [spec["cert"] for spec in table.CAS.values()]
    known += [spec["cert"] for spec in table.CERTIFICATES.values() if spec["kind"] == "file"]
    if not any(os.path.exists(os.path.join(pki_dir, rel)) for rel in known):
        raise InputError("pki_dir %s holds no kubeadm PKI (none of %s). Point pki_dir at the node's kubeadm PKI "
                         "(default %s)." % (pki_dir, ", ".join(known[:3] + ["..."]), table.PKI_DIR))


def load_leaf(name, pki_dir, kubeconfig_dir):
    """The certificate of table entry ``name``; kubeconfigs are parsed for their user's credentials."""
    spec = table.CERTIFICATES[name]
    cert_path = leaf_paths(name, pki_dir, kubeconfig_dir)[0]
    if spec["kind"] == "kubeconfig":
        embedded = kubeconfigs.load(cert_path)
        return parse_certificate(embedded.certificate_pem, "client-certificate-data of user %r in %s"
                                 % (embedded.user, cert_path))
    return load_certificate(cert_path)


def inspect_ca(ca_name, pki_dir, now=None):
    cert_path, key_path = ca_paths(pki_dir, ca_name)
    entry = {"name": ca_name, "kind": "ca", "path": cert_path, "key_path": key_path,
             "missing": not os.path.exists(cert_path), "externally_managed": not os.path.exists(key_path)}
    if not entry["missing"]:
        try:
            entry.update(certificate_facts(load_certificate(cert_path), now))
        except InputError as exc:
            entry["error"] = exc.msg
    return entry


def inspect_leaf(name, pki_dir, kubeconfig_dir, cas, ca_certs, now=None):
    """One row of check-expiration.  ``cas``: CA entries by name; ``ca_certs``: loaded CA certificates."""
    spec = table.CERTIFICATES[name]
    cert_path, key_path = leaf_paths(name, pki_dir, kubeconfig_dir)
    ca = cas[spec["ca"]]
    entry = {"name": name, "kind": spec["kind"], "path": cert_path, "key_path": key_path, "ca": spec["ca"],
             "externally_managed": ca["externally_managed"], "restart": list(spec["restart"]),
             "missing": not os.path.exists(cert_path)}
    if entry["missing"]:
        return entry
    try:
        cert = load_leaf(name, pki_dir, kubeconfig_dir)
    except InputError as exc:
        entry["error"] = exc.msg
        return entry
    entry.update(certificate_facts(cert, now))
    ca_cert = ca_certs.get(spec["ca"])
    entry["signed_by_ca"] = bool(ca_cert is not None and signed_by(cert, ca_cert))
    entry.update(_pair_facts(spec, cert_path, key_path, cert))
    return entry


def broken_pair(kind, cert_path, key_path, advice):
    """The one wording of a key that does not belong to its certificate."""
    return ("the private key %s does not match its certificate %s: the pair is broken (a component using it will not "
            "start; etcd: 'tls: private key does not match public key'). %s"
            % ("in " + cert_path if kind == "kubeconfig" else key_path, cert_path, advice))


def _pair_facts(spec, cert_path, key_path, cert):
    """key_matches (and, for kubeconfigs, renewable_in_place) with the problem, if any, under ``problem``."""
    facts = {}
    try:
        if spec["kind"] == "kubeconfig":
            embedded = kubeconfigs.load(cert_path)
            key = parse_private_key(embedded.key_pem, "client-key-data of user %r in %s" % (embedded.user, cert_path))
        elif os.path.exists(key_path):
            key = load_private_key(key_path)
        else:
            return facts
    except InputError as exc:
        facts.update(key_matches=False, problem=exc.msg)
        return facts
    facts["key_matches"] = key_matches(cert, key)
    if not facts["key_matches"]:
        facts["problem"] = broken_pair(spec["kind"], cert_path, key_path, "renewal will refuse it. Restore both from "
                                                                          "the same backup.")
    if spec["kind"] == "kubeconfig":
        try:
            kubeconfigs.check_replaceable(embedded)
            facts["renewable_in_place"] = True
        except InputError as exc:
            facts["renewable_in_place"] = False
            facts.setdefault("problem", "renewal will refuse it: " + exc.msg)
    return facts


def inspect_kubelet_client(kubeconfig_dir, kubelet_pki_dir, now=None):
    """kubelet's own client certificate (kubelet rotates it; reported, never renewed here)."""
    pem_path = os.path.join(kubelet_pki_dir, KUBELET_CLIENT_FILE)
    conf_path = os.path.join(kubeconfig_dir, table.KUBELET_CLIENT["kubeconfig"])
    entry = {"name": "kubelet-client", "kind": "kubelet", "rotated_by_kubelet": True}
    try:
        if os.path.exists(pem_path):
            entry["path"] = pem_path
            cert = parse_certificate(read_file(pem_path, "certificate"), pem_path)
        elif os.path.exists(conf_path):
            entry["path"] = conf_path
            embedded = kubeconfigs.load(conf_path, require_embedded=False)
            if embedded.certificate_pem is None:
                entry["missing"] = True
                entry["reason"] = ("%s points to %s, which does not exist"
                                   % (conf_path, embedded.certificate_file or "no client certificate"))
                return entry
            cert = parse_certificate(embedded.certificate_pem, conf_path)
        else:
            entry.update(path=pem_path, missing=True, reason="neither %s nor %s exists" % (pem_path, conf_path))
            return entry
    except InputError as exc:
        entry["error"] = exc.msg
        return entry
    entry["missing"] = False
    entry.update(certificate_facts(cert, now))
    return entry


def scan(pki_dir=table.PKI_DIR, kubeconfig_dir=table.KUBECONFIG_DIR, kubelet_pki_dir="/var/lib/kubelet/pki",
         warn_days=30, validity_days=table.LEAF_VALIDITY_DAYS, names=None, now=None):
    """``kubeadm certs check-expiration`` as data.

    Returns certificates, certificate_authorities, kubelet_client, expiring (names), warnings.
    """
    check_pki_dir(pki_dir)
    now = now or utcnow()
    cas, ca_certs = {}, {}
    for ca_name in table.CAS:
        cas[ca_name] = inspect_ca(ca_name, pki_dir, now)
        if not cas[ca_name]["missing"] and "error" not in cas[ca_name]:
            ca_certs[ca_name] = load_certificate(cas[ca_name]["path"])
    certificates = [inspect_leaf(name, pki_dir, kubeconfig_dir, cas, ca_certs, now) for name in (names or table.CERTIFICATES)]
    warnings = []
    horizon = warn_days * 86400
    expiring = [e["name"] for e in certificates + list(cas.values())
                if not e["missing"] and "residual_seconds" in e and e["residual_seconds"] <= horizon]
    for entry in certificates + list(cas.values()):
        if entry.get("error"):
            warnings.append(entry["error"])
        elif entry.get("problem"):
            warnings.append("%s: %s" % (entry["name"], entry["problem"]))
        elif not entry["missing"] and entry["kind"] != "ca" and not entry.get("signed_by_ca", True):
            warnings.append("%s (%s) is not signed by the %s in %s: renewal would refuse it; check that the "
                            "PKI directory belongs to this cluster." % (entry["name"], entry["path"], entry["ca"], pki_dir))
    warnings.extend(ca_expiry_warnings(cas.values(), validity_days, now))
    interrupted = None
    try:
        interrupted = _journal.plan_recovery(journal_path(pki_dir))
    except CplaneError as exc:
        warnings.append(exc.msg)
    if interrupted is not None:
        warnings.insert(0, "a certificate renewal was interrupted (journal %s, files %s); until the next "
                           "kubeadm_cert_renew run finishes it, these files may not match. That run will %s: %s."
                        % (interrupted["journal"], ", ".join(interrupted["files"]),
                           interrupted["action"].replace("_", " "), interrupted["reason"]))
    return {
        "interrupted_renewal": interrupted,
        "certificates": certificates,
        "certificate_authorities": list(cas.values()),
        "kubelet_client": inspect_kubelet_client(kubeconfig_dir, kubelet_pki_dir, now),
        "expiring": expiring,
        "warnings": warnings,
    }


def ca_expiry_warnings(ca_entries, validity_days, now):
    """A CA that ends before a leaf renewed now would: renewals get capped, and the clock is running."""
    warnings = []
    renewed_until = now + datetime.timedelta(days=validity_days)
    for ca in ca_entries:
        if ca.get("missing") or "not_after" not in ca:
            continue
        if ca["residual_seconds"] <= 0:
            warnings.append("CA %s (%s) expired on %s: certificates it signed are no longer trusted and renewal cannot "
                            "help. Rotate the CA (kubeadm docs: 'Manual rotation of CA certificates') now."
                            % (ca["name"], ca["path"], ca["not_after"]))
        elif ca["residual_seconds"] < (renewed_until - now).total_seconds():
            warnings.append("CA %s (%s) expires on %s, before a certificate renewed now for %d days would (%s): renewed "
                            "certificates will be capped at the CA's expiry. Plan a CA rotation (kubeadm docs: "
                            "'Manual rotation of CA certificates') before %s."
                            % (ca["name"], ca["path"], ca["not_after"], validity_days, isoformat(renewed_until),
                               ca["not_after"]))
    return warnings
