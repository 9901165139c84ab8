# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""kubeadm-style certificate renewal: re-issue what exists, signed by the local CA.

Like ``kubeadm certs renew`` (phases/certs/renewal, certToConfig) the new certificate keeps the
old one's subject, DNS and IP SANs, key usages and extended key usages; it gets a fresh key of
the same type and size.  Unlike kubeadm, renewal is planned and validated for every requested
certificate before the first byte is written, never outlives its CA, and keeps backups.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import os
import traceback

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
except ImportError:  # pragma: no cover - reported by _deps.assert_required
    CRYPTOGRAPHY_IMPORT_ERROR = traceback.format_exc()

from ansible_collections.cplane.kubeadm.plugins.module_utils import _files, _journal
from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import InputError, OperationFailed
from ansible_collections.cplane.kubeadm.plugins.module_utils._pki import inspect as pki
from ansible_collections.cplane.kubeadm.plugins.module_utils._pki import kubeadm as table
from ansible_collections.cplane.kubeadm.plugins.module_utils._pki import kubeconfig as kubeconfigs

# kubeadm backdates new certificates so that nodes with a slightly slow clock accept them at once.
BACKDATE = datetime.timedelta(minutes=5)
# Restart order: etcd first, so the API server reconnects to members that already present new certificates.
COMPONENT_ORDER = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
DEFAULT_BACKUP_DIR = "/var/backups/cplane-kubeadm"


class RenewalItem(object):
    """One requested certificate: what it is, whether it is renewed, and why not."""

    def __init__(self, name, pki_dir, kubeconfig_dir):
        self.name = name
        self.spec = table.CERTIFICATES[name]
        self.kind = self.spec["kind"]
        self.cert_path, self.key_path = pki.leaf_paths(name, pki_dir, kubeconfig_dir)
        self.ca_cert_path, self.ca_key_path = pki.ca_paths(pki_dir, self.spec["ca"])
        self.action = "skip"
        self.reason = None
        self.cert = None
        self.key_pem = None
        self.creds = None
        self.ca_cert = None
        self.ca_key = None
        self.new_not_before = None
        self.new_not_after = None
        self.capped = False
        self.new_cert = None
        self.new_key_pem = None
        self.new_file = None

    def skip(self, reason):
        self.action, self.reason = "skip", reason
        return self

    def refuse(self, reason):
        self.action, self.reason = "refuse", reason
        return self

    @property
    def files(self):
        """The files a renewal replaces."""
        return [self.cert_path] if self.kind == "kubeconfig" else [self.cert_path, self.key_path]


def select_names(certs):
    names = list(table.CERTIFICATES) if "all" in certs else list(certs)
    unknown = [n for n in names if n not in table.CERTIFICATES]
    if unknown:
        raise InputError("unknown certificate name(s) %s; kubeadm names are: all, %s"
                         % (", ".join(unknown), ", ".join(table.CERTIFICATES)))
    # Table order, once each: the order kubeadm's check-expiration prints.
    return [n for n in table.CERTIFICATES if n in names]


def _load_item(item, backup_dir):
    """Read the certificate and key of ``item``; InputError names the file."""
    if item.kind == "kubeconfig":
        item.creds = kubeconfigs.load(item.cert_path)
        source = "client-certificate-data of user %r in %s" % (item.creds.user, item.cert_path)
        item.cert = pki.parse_certificate(item.creds.certificate_pem, source)
        item.key_pem = item.creds.key_pem
        key = pki.parse_private_key(item.key_pem, "client-key-data of user %r in %s" % (item.creds.user, item.cert_path))
        kubeconfigs.check_replaceable(item.creds)
    else:
        item.cert = pki.load_certificate(item.cert_path)
        item.key_pem = pki.read_file(item.key_path, "private key")
        key = pki.parse_private_key(item.key_pem, item.key_path)
    if not pki.key_matches(item.cert, key):
        raise InputError(pki.broken_pair(item.kind, item.cert_path, item.key_path, restore_advice(item, backup_dir)))


def _backup_copy(backup_root, path):
    return os.path.join(backup_root, os.path.abspath(path).lstrip(os.sep))


def last_good_backup(item, backup_dir):
    """The newest run directory under ``backup_dir`` whose copies of the item's files form a matching pair."""
    try:
        stamps = sorted((d for d in os.listdir(backup_dir) if os.path.isdir(os.path.join(backup_dir, d))), reverse=True)
    except (IOError, OSError):
        return None
    for stamp in stamps:
        root = os.path.join(backup_dir, stamp)
        try:
            if item.kind == "kubeconfig":
                creds = kubeconfigs.load(_backup_copy(root, item.cert_path))
                cert = pki.parse_certificate(creds.certificate_pem, "backup")
                key = pki.parse_private_key(creds.key_pem, "backup")
            else:
                cert = pki.load_certificate(_backup_copy(root, item.cert_path))
                key = pki.load_private_key(_backup_copy(root, item.key_path))
        except InputError:
            continue
        if pki.key_matches(cert, key):
            return root
    return None


def restore_advice(item, backup_dir):
    good = last_good_backup(item, backup_dir)
    files = " and ".join(os.path.basename(p) for p in item.files)
    if good:
        return ("The newest matching pair is in %s: restore %s from there (same relative paths), then run again."
                % (good, files))
    return ("No backup in %s holds a matching pair: restore %s from your own backup, or re-create them with "
            "'kubeadm certs renew %s'." % (backup_dir, files, item.name))


def _load_ca(item, ca_cache):
    ca_name = item.spec["ca"]
    if ca_name not in ca_cache:
        ca_cert = pki.load_certificate(item.ca_cert_path)
        ca_key = None
        if os.path.exists(item.ca_key_path):
            ca_key = pki.load_private_key(item.ca_key_path)
            if not pki.key_matches(ca_cert, ca_key):
                raise InputError("the CA key %s does not match the CA certificate %s. Restore the CA pair from a backup."
                                 % (item.ca_key_path, item.ca_cert_path))
        ca_cache[ca_name] = (ca_cert, ca_key)
    item.ca_cert, item.ca_key = ca_cache[ca_name]


def plan_renewal(pki_dir, kubeconfig_dir, certs=("all",), renew_before_days=30, force=False,
                 validity_days=table.LEAF_VALIDITY_DAYS, now=None, backup_dir=DEFAULT_BACKUP_DIR):
    """Decide and validate, for every requested certificate, whether it is renewed.

    A certificate whose files are broken (corrupt PEM, key/certificate mismatch, a certificate the
    local CA did not sign, a kubeconfig that cannot be edited in place) gets action ``refuse`` with
    the reason; the others are planned as usual.  A broken CA raises InputError.  Returns
    ``(items, warnings)``.
    """
    if validity_days < 1:
        raise InputError("validity_days must be at least 1 (got %d)." % validity_days)
    now = now or pki.utcnow()
    horizon = now + datetime.timedelta(days=renew_before_days)
    items, warnings, ca_cache = [], [], {}
    for name in select_names(certs):
        item = RenewalItem(name, pki_dir, kubeconfig_dir)
        items.append(item)
        if not os.path.exists(item.cert_path):
            item.skip("%s does not exist (not used on this node, e.g. external etcd or a kubeconfig never created)"
                      % item.cert_path)
            continue
        if item.kind == "file" and not os.path.exists(item.key_path):
            item.skip("the certificate %s exists without its key %s: not a kubeadm-managed pair, left alone"
                      % (item.cert_path, item.key_path))
            continue
        if not os.path.exists(item.ca_cert_path):
            item.skip("the %s certificate %s does not exist: cannot check or sign %s"
                      % (item.spec["ca"], item.ca_cert_path, name))
            continue
        _load_ca(item, ca_cache)
        try:
            _load_item(item, backup_dir)
            if not pki.signed_by(item.cert, item.ca_cert):
                raise InputError("%s (%s) is not signed by the %s in %s: the PKI directory does not match this certificate. "
                                 "Point pki_dir at this cluster's PKI or restore the certificate from a backup."
                                 % (name, item.cert_path, item.spec["ca"], item.ca_cert_path))
        except InputError as exc:
            # One unusable file must not stop the renewal of the others (an expiring etcd certificate
            # waits for nobody); the run still fails at the end and lists it.
            item.refuse(exc.msg)
            continue
        current_end = pki.not_after(item.cert)
        if not force and current_end > horizon:
            item.skip("valid until %s, more than %d days away (renew_before_days)" % (pki.isoformat(current_end), renew_before_days))
            continue
        if item.ca_key is None:
            item.skip("externally managed: the %s key %s is absent, so the certificate must be renewed by whoever holds "
                      "that CA" % (item.spec["ca"], item.ca_key_path))
            continue
        ca_end = pki.not_after(item.ca_cert)
        if ca_end <= now:
            item.skip("the %s certificate %s expired on %s: rotate the CA first" % (item.spec["ca"], item.ca_cert_path, pki.isoformat(ca_end)))
            warnings.append("%s not renewed: %s" % (name, item.reason))
            continue
        wanted_end = now + datetime.timedelta(days=validity_days)
        item.new_not_after = min(wanted_end, ca_end)
        item.new_not_before = max(now - BACKDATE, pki.not_before(item.ca_cert))
        item.capped = wanted_end > ca_end
        if item.capped and not force and item.new_not_after <= current_end:
            item.skip("already valid until the %s expires (%s); renewal cannot extend it. Rotate the CA."
                      % (item.spec["ca"], pki.isoformat(ca_end)))
            warnings.append("%s not renewed: %s" % (name, item.reason))
            continue
        if item.capped:
            warnings.append("%s: validity capped at the %s's expiry %s instead of %d days; plan a CA rotation before then."
                            % (name, item.spec["ca"], pki.isoformat(ca_end), validity_days))
        item.action = "renew"
    return items, warnings


# -- issuing ---------------------------------------------------------------------------------------


def new_key_like(public_key):
    """A fresh private key of the same type and size as ``public_key``."""
    if isinstance(public_key, rsa.RSAPublicKey):
        return rsa.generate_private_key(public_exponent=65537, key_size=public_key.key_size)
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return ec.generate_private_key(type(public_key.curve)())
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return ed25519.Ed25519PrivateKey.generate()
    raise InputError("unsupported key type %s" % type(public_key).__name__)


def encode_key_like(key, old_pem):
    """PEM in the format the old key used (kubeadm writes PKCS#1 / SEC1; some tools write PKCS#8)."""
    pkcs8 = b"BEGIN PRIVATE KEY" in (old_pem or b"") or isinstance(key, ed25519.Ed25519PrivateKey)
    fmt = serialization.PrivateFormat.PKCS8 if pkcs8 else serialization.PrivateFormat.TraditionalOpenSSL
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())


def _ext(cert, ext_type):
    try:
        return cert.extensions.get_extension_for_class(ext_type)
    except x509.ExtensionNotFound:
        return None


def renew_certificate(old_cert, old_key_pem, ca_cert, ca_key, not_before, not_after):
    """Re-issue ``old_cert`` as kubeadm does; returns (certificate, key PEM)."""
    key = new_key_like(old_cert.public_key())
    builder = (x509.CertificateBuilder().subject_name(old_cert.subject).issuer_name(ca_cert.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(not_before).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True))
    for ext_type in (x509.KeyUsage, x509.ExtendedKeyUsage):
        ext = _ext(old_cert, ext_type)
        if ext is not None:
            builder = builder.add_extension(ext.value, critical=ext.critical)
    san = _ext(old_cert, x509.SubjectAlternativeName)
    if san is not None:
        # kubeadm's certToConfig keeps DNS names and IP addresses only.
        kept = [g for g in san.value if isinstance(g, (x509.DNSName, x509.IPAddress))]
        if kept:
            builder = builder.add_extension(x509.SubjectAlternativeName(kept), critical=san.critical)
    if _ext(old_cert, x509.SubjectKeyIdentifier) is not None:
        builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    ca_ski = _ext(ca_cert, x509.SubjectKeyIdentifier)
    aki = (x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski.value) if ca_ski is not None
           else x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()))
    builder = builder.add_extension(aki, critical=False)
    algorithm = None if isinstance(ca_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    cert = builder.sign(ca_key, algorithm)
    if not pki.signed_by(cert, ca_cert):
        raise InputError("the CA key that should sign %s produced a signature its CA certificate does not verify: "
                         "the CA key is damaged. Restore the CA pair from a backup." % old_cert.subject.rfc4514_string())
    return cert, encode_key_like(key, old_key_pem)


def issue_all(items):
    """Sign every planned renewal in memory; a failure here leaves every file untouched."""
    for item in items:
        if item.action != "renew":
            continue
        item.new_cert, item.new_key_pem = renew_certificate(item.cert, item.key_pem, item.ca_cert, item.ca_key,
                                                            item.new_not_before, item.new_not_after)
        if item.kind == "kubeconfig":
            cert_pem = item.new_cert.public_bytes(serialization.Encoding.PEM)
            item.new_file = kubeconfigs.replace_credentials(item.creds, cert_pem, item.new_key_pem)


def new_contents(item):
    """(path, bytes, private) for every file the renewal of ``item`` replaces, key first."""
    if item.kind == "kubeconfig":
        return [(item.cert_path, item.new_file, True)]
    return [(item.key_path, item.new_key_pem, True),
            (item.cert_path, item.new_cert.public_bytes(serialization.Encoding.PEM), False)]


def write_all(items, journal, backup_root):
    """Replace the files of every renewed item as one transaction; returns {name: [backup paths]}."""
    txn = _journal.Transaction(journal, backup_root, what="certificate renewal")
    for item in items:
        for path, data, private in new_contents(item):
            txn.add(path, data, private=private)
    backups = txn.commit()
    return {item.name: [backups[path] for path in item.files] for item in items}


def restart_required(names):
    wanted = set()
    for name in names:
        wanted.update(table.CERTIFICATES[name]["restart"])
    return [c for c in COMPONENT_ORDER if c in wanted]


def _summary(item, backups=None):
    entry = {"name": item.name, "path": item.cert_path, "ca": item.spec["ca"],
             "old_not_after": pki.isoformat(pki.not_after(item.cert)), "old_serial": "%X" % item.cert.serial_number,
             "new_not_after": pki.isoformat(item.new_not_after), "capped_at_ca_expiry": item.capped,
             "restart": list(item.spec["restart"])}
    if item.kind == "file":
        entry["key_path"] = item.key_path
    if item.new_cert is not None:
        entry["new_serial"] = "%X" % item.new_cert.serial_number
        entry["new_not_after"] = pki.isoformat(pki.not_after(item.new_cert))
    if backups is not None:
        entry["backups"] = backups
    return entry


def _diff(items):
    before, after = [], []
    for item in items:
        if item.action != "renew":
            continue
        before.append("%s: serial %X, notAfter %s\n" % (item.name, item.cert.serial_number, pki.isoformat(pki.not_after(item.cert))))
        serial = "%X" % item.new_cert.serial_number if item.new_cert is not None else "(new)"
        capped = " (capped at CA expiry)" if item.capped else ""
        after.append("%s: serial %s, notAfter %s%s\n" % (item.name, serial, pki.isoformat(item.new_not_after), capped))
    return {"before": "".join(before), "after": "".join(after)}


def kubeadm_certificates_dir(kubeadm_config):
    """certificatesDir of the ClusterConfiguration in a kubeadm configuration file (kubeadm's default if unset)."""
    data = pki.read_file(kubeadm_config, "kubeadm configuration")
    try:
        documents = list(kubeconfigs.yaml.safe_load_all(data))
    except kubeconfigs.yaml.YAMLError:
        raise InputError("the kubeadm configuration %s is not valid YAML. Fix it or leave kubeadm_config unset." % kubeadm_config)
    for document in documents:
        if isinstance(document, dict) and document.get("kind") == "ClusterConfiguration":
            return document.get("certificatesDir") or table.PKI_DIR
    return table.PKI_DIR


def check_kubeadm_paths(due, pki_dir, kubeconfig_dir, kubeadm_config):
    """Refuse what ``kubeadm certs renew`` would renew somewhere else than the module reads it back.

    kubeadm renews kubeconfig files in /etc/kubernetes only: the directory is fixed
    (cmd/kubeadm/app/cmd/certs.go: getRenewSubCommands(out, kubeadmconstants.KubernetesDir)); for a
    file that is not there it prints "MISSING!" and exits 0.  With --config it takes certificatesDir
    from the file and ignores --cert-dir (configutil.LoadOrDefaultInitConfiguration).
    """
    names = [item.name for item in due if item.kind == "kubeconfig"]
    if names and os.path.realpath(kubeconfig_dir) != os.path.realpath(table.KUBECONFIG_DIR):
        raise InputError("backend=kubeadm cannot renew %s: kubeadm certs renew always renews the kubeconfig files in %s "
                         "(it has no option for another directory), but kubeconfig_dir is %s. Use backend=python for "
                         "kubeconfig files elsewhere, or leave them out of certs."
                         % (", ".join(names), table.KUBECONFIG_DIR, kubeconfig_dir))
    if kubeadm_config:
        certificates_dir = kubeadm_certificates_dir(kubeadm_config)
        if os.path.realpath(certificates_dir) != os.path.realpath(pki_dir):
            raise InputError("the kubeadm configuration %s sets certificatesDir %s, where kubeadm renews (it ignores "
                             "--cert-dir when --config is given), but pki_dir is %s. Point both at the same directory."
                             % (kubeadm_config, certificates_dir, pki_dir))


def run_kubeadm_renewal(item, kubeadm_path, pki_dir, kubeconfig_dir, kubeadm_config, run_command):
    """``kubeadm certs renew <name>``, then read the result back and check it is what was asked for."""
    cmd = [kubeadm_path, "certs", "renew", item.name, "--cert-dir", pki_dir]
    if kubeadm_config:
        cmd += ["--config", kubeadm_config]
    rc, out, err = run_command(cmd)
    if rc != 0:
        raise OperationFailed("'%s' failed (rc=%d): %s" % (" ".join(cmd), rc, (err or out or "").strip()[-2000:]))
    try:
        cert = pki.load_leaf(item.name, pki_dir, kubeconfig_dir)
    except InputError as exc:
        raise OperationFailed("kubeadm renewed %s but the result cannot be read back: %s" % (item.name, exc.msg))
    if cert.serial_number == item.cert.serial_number or not pki.signed_by(cert, item.ca_cert):
        raise OperationFailed("kubeadm reported success for %s but %s does not hold a new certificate signed by the %s."
                              % (item.name, item.cert_path, item.spec["ca"]))
    item.new_cert = cert
    item.new_not_after = pki.not_after(cert)


def _refusal_message(refused, renewed_names):
    return ("refused %d certificate(s), renewed %s: %s"
            % (len(refused), ", ".join(renewed_names) or "none",
               "; ".join("%s: %s" % (r["name"], r["reason"]) for r in refused)))


def finish_interrupted(pki_dir, check_mode=False):
    """Finish or undo a renewal a kill interrupted (in check mode, only say what would happen)."""
    journal = pki.journal_path(pki_dir)
    try:
        if check_mode:
            return _journal.plan_recovery(journal)
        return _journal.recover(journal)
    except (IOError, OSError) as exc:
        raise OperationFailed("finishing the interrupted renewal recorded in %s failed on %s: %s. Nothing else was "
                              "changed; fix the cause and run again." % (journal, exc.filename or journal, exc.strerror or exc))


def renew_certificates(pki_dir=table.PKI_DIR, kubeconfig_dir=table.KUBECONFIG_DIR, certs=("all",), renew_before_days=30,
                       force=False, validity_days=table.LEAF_VALIDITY_DAYS, backup_dir=DEFAULT_BACKUP_DIR,
                       check_mode=False, backend="python", kubeadm_path="kubeadm", kubeadm_config=None,
                       run_command=None, forbidden_dirs=None, now=None, lock=True):
    """Finish an interrupted run, then plan, validate, back up and renew.

    Returns the module result (without ``certificates``).  Raises OperationFailed, with what was
    renewed in its result, when a certificate was refused or a step failed.  ``lock=False`` is for a
    caller that already holds the node's renewal lock.
    """
    pki.check_pki_dir(pki_dir)
    if check_mode or not lock:
        return _renew(pki_dir, kubeconfig_dir, certs, renew_before_days, force, validity_days, backup_dir, check_mode,
                      backend, kubeadm_path, kubeadm_config, run_command, forbidden_dirs, now)
    # The timer and a hand run on the same node must not finish each other's swap.
    with _journal.exclusive(pki.journal_path(pki_dir), "certificate renewal"):
        return _renew(pki_dir, kubeconfig_dir, certs, renew_before_days, force, validity_days, backup_dir, check_mode,
                      backend, kubeadm_path, kubeadm_config, run_command, forbidden_dirs, now)


def _renew(pki_dir, kubeconfig_dir, certs, renew_before_days, force, validity_days, backup_dir, check_mode, backend,
           kubeadm_path, kubeadm_config, run_command, forbidden_dirs, now):
    forbidden = forbidden_dirs if forbidden_dirs is not None else (_files.MANIFESTS_DIR, os.path.join(kubeconfig_dir, "manifests"))
    recovered = finish_interrupted(pki_dir, check_mode)
    items, warnings = plan_renewal(pki_dir, kubeconfig_dir, certs, renew_before_days, force, validity_days, now, backup_dir)
    if recovered is not None:
        warnings.insert(0, "%s an interrupted certificate renewal (%s) of %s: %s."
                        % ("a run without check mode would " + recovered["action"].replace("_", " ") if check_mode
                           else {"roll_forward": "finished", "roll_back": "rolled back",
                                 "discard": "discarded"}[recovered["action"]],
                           recovered["journal"], ", ".join(recovered["files"]), recovered["reason"]))
    due = [i for i in items if i.action == "renew"]
    refused = [{"name": i.name, "path": i.cert_path, "reason": i.reason} for i in items if i.action == "refuse"]
    if due:
        _files.check_backup_dir(backup_dir, forbidden)
        if backend == "kubeadm":
            check_kubeadm_paths(due, pki_dir, kubeconfig_dir, kubeadm_config)
    not_renewed = [{"name": i.name, "reason": i.reason} for i in items if i.action == "skip"]
    result = {"renewed": [], "not_renewed": not_renewed, "refused": refused, "warnings": warnings, "changed": bool(due),
              "restart_required": restart_required([i.name for i in due]), "backup_dir": backup_dir,
              "recovered": recovered}
    if recovered is not None:
        result["changed"] = True
    if check_mode or not due:
        result["renewed"] = [_summary(i) for i in due]
        result["diff"] = _diff(items)
        _raise_if_refused(result, refused, [])
        return result
    stamp = _files.timestamp()
    if backend == "python":
        issue_all(items)
        backups = _write_python(due, pki_dir, backup_dir, stamp)
        done = due
    else:
        backups, done = _run_kubeadm(due, backup_dir, forbidden, stamp, pki_dir, kubeconfig_dir, kubeadm_path,
                                     kubeadm_config, run_command)
    result["renewed"] = [_summary(i, backups[i.name]) for i in done]
    result["diff"] = _diff(items)
    result["backup_stamp"] = stamp
    _raise_if_refused(result, refused, [i.name for i in done])
    return result


def _raise_if_refused(result, refused, renewed_names):
    if refused:
        failed = dict(result)
        failed.pop("diff", None)
        raise OperationFailed(_refusal_message(refused, renewed_names), **failed)


def _write_python(due, pki_dir, backup_dir, stamp):
    journal = pki.journal_path(pki_dir)
    try:
        return write_all(due, journal, os.path.join(backup_dir, stamp))
    except (IOError, OSError) as exc:
        failure = "writing %s failed: %s" % (exc.filename or "the renewed files", exc.strerror or exc)
    # Undo whatever part of the swap happened, so that the failure leaves every pair as it was.
    try:
        _journal.recover(journal)
    except (IOError, OSError, OperationFailed) as exc:
        raise OperationFailed("%s, and undoing the partial change failed too (%s); the journal %s lists the files and "
                              "their backups in %s." % (failure, getattr(exc, "msg", None) or exc, journal,
                                                        os.path.join(backup_dir, stamp)))
    raise OperationFailed("%s; nothing was renewed (every file is as it was)." % failure)


def _run_kubeadm(due, backup_dir, forbidden, stamp, pki_dir, kubeconfig_dir, kubeadm_path, kubeadm_config, run_command):
    """kubeadm writes the files itself, one certificate at a time: back up first, stop at the first failure."""
    backups = {}
    for item in due:
        backups[item.name] = [_files.backup_file(path, backup_dir, forbidden, stamp) for path in item.files]
    done = []
    for item in due:
        try:
            run_kubeadm_renewal(item, kubeadm_path, pki_dir, kubeconfig_dir, kubeadm_config, run_command)
        except OperationFailed as exc:
            raise OperationFailed("%s; renewed before the failure: %s (backups in %s)"
                                  % (exc.msg, ", ".join(i.name for i in done) or "none", os.path.join(backup_dir, stamp)),
                                  renewed=[_summary(i, backups[i.name]) for i in done],
                                  restart_required=restart_required([i.name for i in done]))
        done.append(item)
    return backups, done


def run(params, check_mode=False, diff=False, run_command=None, get_bin_path=None):
    """Everything kubeadm_cert_renew does, from its parameters to its result (warnings under ``warnings``)."""
    kubeadm_path = params["kubeadm_path"]
    if params["backend"] == "kubeadm" and not check_mode:
        kubeadm_path = get_bin_path(kubeadm_path, required=True)
    try:
        result = renew_certificates(
            pki_dir=params["pki_dir"], kubeconfig_dir=params["kubeconfig_dir"], certs=params["certs"],
            renew_before_days=params["renew_before_days"], force=params["force"], validity_days=params["validity_days"],
            backup_dir=params["backup_dir"], check_mode=check_mode, backend=params["backend"], kubeadm_path=kubeadm_path,
            kubeadm_config=params["kubeadm_config"], run_command=run_command)
    except OperationFailed as exc:
        # What the node holds now belongs in a failed result too: part of the run may have renewed.
        try:
            exc.result["certificates"] = pki.scan(params["pki_dir"], params["kubeconfig_dir"],
                                                  validity_days=params["validity_days"])["certificates"]
        except InputError:
            pass
        raise
    after = pki.scan(params["pki_dir"], params["kubeconfig_dir"], validity_days=params["validity_days"])
    changes = result.pop("diff")
    if diff and result["changed"]:
        result["diff"] = changes
    result["certificates"] = after["certificates"]
    return result
