# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks of the etcd client TLS files before any connection is made.

gRPC reports a missing, unreadable or malformed file, an expired client certificate and a
certificate from the wrong CA all as "failed to connect to all addresses".  Reading the files
first lets the module name the file and say what to do.  Key material never leaves this module:
messages carry file paths and certificate subjects only.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime

from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import InputError
from ansible_collections.cplane.kubeadm.plugins.module_utils._files import read_input_file
# Certificate and key handling is the PKI backend's; modules check the library with _deps.assert_required.
from ansible_collections.cplane.kubeadm.plugins.module_utils._pki.inspect import (
    key_matches, load_pem_key, not_after, not_before)

try:
    from cryptography import x509
except ImportError:  # pragma: no cover - the modules report the missing library first
    pass

RENEW_HINT = "renew it (kubeadm certs renew etcd-healthcheck-client, or the cplane.kubeadm.kubeadm_cert_renew module)"


class TLSFiles(object):
    """The three client TLS files, checked, with what the error messages need to know about them."""

    def __init__(self, ca_cert, client_cert, client_key, client_subject="", client_issuer="",
                 ca_subjects=(), client_not_after=None):
        self.ca_cert = ca_cert
        self.client_cert = client_cert
        self.client_key = client_key
        self.client_subject = client_subject
        self.client_issuer = client_issuer
        self.ca_subjects = list(ca_subjects)
        self.client_not_after = client_not_after

    @property
    def client_issued_by_ca(self):
        return self.client_issuer in self.ca_subjects

    def describe_client_rejection(self):
        """Why a member may have refused our client certificate, for an error message."""
        if not self.client_issued_by_ca:
            return ("the client certificate %s was issued by '%s', not by the etcd CA in %s ('%s'); "
                    "use a client certificate signed by the etcd CA (kubeadm: /etc/kubernetes/pki/etcd/healthcheck-client.crt)"
                    % (self.client_cert, self.client_issuer, self.ca_cert, "', '".join(self.ca_subjects)))
        return ("check that the client certificate %s is signed by the CA the members trust (--trusted-ca-file), "
                "is valid now and has the clientAuth usage" % self.client_cert)


def _read(path, what):
    return read_input_file(path, "the " + what, "Point the %s option at an existing readable file." % what.replace(" ", "_"))


def _load_certs(path, what):
    data = _read(path, what)
    try:
        certs = x509.load_pem_x509_certificates(data)
    except Exception:
        certs = []
    if not certs:
        raise InputError("the %s %s is not a PEM certificate (no readable '-----BEGIN CERTIFICATE-----' block); "
                         "check that the file is the certificate and not truncated" % (what, path))
    return certs


def check_tls_files(ca_cert, client_cert, client_key, now=None):
    """Read and parse the CA bundle, client certificate and key; raise InputError naming the bad file."""
    ca_certs = _load_certs(ca_cert, "ca cert")
    cert = _load_certs(client_cert, "client cert")[0]
    key_data = _read(client_key, "client key")
    try:
        key = load_pem_key(key_data)
    except TypeError:
        raise InputError("the client key %s is encrypted; etcd clients need an unencrypted key" % client_key)
    except Exception:
        # The parser's own message can quote the input: never pass it on.
        raise InputError("the client key %s is not a PEM private key; check that the file is the key that belongs "
                         "to %s and not truncated" % (client_key, client_cert))
    if not key_matches(cert, key):
        raise InputError("the client key %s does not belong to the client certificate %s; use the matching pair"
                         % (client_key, client_cert))
    now = now or datetime.datetime.now(datetime.timezone.utc)
    subject = cert.subject.rfc4514_string()
    if not_after(cert) < now:
        raise InputError("the client certificate %s (%s) expired on %s; %s"
                         % (client_cert, subject, not_after(cert).strftime("%Y-%m-%d %H:%M:%S UTC"), RENEW_HINT))
    if not_before(cert) > now:
        raise InputError("the client certificate %s (%s) is not valid before %s; check the clock of this host"
                         % (client_cert, subject, not_before(cert).strftime("%Y-%m-%d %H:%M:%S UTC")))
    return TLSFiles(ca_cert, client_cert, client_key, client_subject=subject,
                    client_issuer=cert.issuer.rfc4514_string(),
                    ca_subjects=[c.subject.rfc4514_string() for c in ca_certs],
                    client_not_after=not_after(cert))
