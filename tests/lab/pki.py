"""Builds a kubeadm-layout PKI (and kubeconfigs) with ``cryptography``.

Layout per node, under ``<node_root>``:
  etc/kubernetes/pki/{ca,front-proxy-ca,apiserver,...}.{crt,key}, etc/kubernetes/pki/etcd/*,
  etc/kubernetes/pki/sa.{key,pub}, etc/kubernetes/{admin,super-admin,controller-manager,
  scheduler,kubelet}.conf
Subjects, EKUs and CA of each certificate come from the collection's own table
(plugins/module_utils/_pki/kubeadm.py), so the lab and the modules agree on one list.
"""
import base64
import datetime
import ipaddress
import os
from dataclasses import dataclass, field

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ansible_collections.cplane.kubeadm.plugins.module_utils._pki import kubeadm as table

EKU_OIDS = {table.SERVER_AUTH: ExtendedKeyUsageOID.SERVER_AUTH, table.CLIENT_AUTH: ExtendedKeyUsageOID.CLIENT_AUTH}
UTC = datetime.timezone.utc


def now():
    return datetime.datetime.now(UTC)


def new_key(key_type="rsa", size=2048):
    if key_type == "ecdsa":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=size)


def key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL
                             if isinstance(key, rsa.RSAPrivateKey) else serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def cert_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass
class Issued:
    cert: x509.Certificate
    key: object

    @property
    def cert_pem(self):
        return cert_pem(self.cert)

    @property
    def key_pem(self):
        return key_pem(self.key)


def _name(cn, o=None):
    attrs = []
    if o:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, o))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def make_ca(cn, days=table.CA_VALIDITY_DAYS, not_before=None, key_type="rsa"):
    key = new_key(key_type)
    not_before = not_before or now() - datetime.timedelta(minutes=5)
    name = _name(cn)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(not_before)
            .not_valid_after(not_before + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return Issued(cert, key)


def issue(ca, cn, o=None, eku=(table.CLIENT_AUTH,), dns=(), ips=(), days=table.LEAF_VALIDITY_DAYS,
          not_before=None, not_after=None, key_type="rsa"):
    """Issue a leaf certificate as kubeadm does.  ``not_after`` overrides ``days`` (near-expiry tests)."""
    key = new_key(key_type)
    not_before = not_before or now() - datetime.timedelta(minutes=5)
    not_after = not_after or not_before + datetime.timedelta(days=days)
    builder = (x509.CertificateBuilder().subject_name(_name(cn, o)).issuer_name(ca.cert.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(not_before).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                                            data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                            crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.ExtendedKeyUsage([EKU_OIDS[e] for e in eku]), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False))
    sans = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return Issued(builder.sign(ca.key, hashes.SHA256()), key)


def csr_pem(key, cn, organizations=(), dns=(), ips=(), emails=(), uris=()):
    """A PEM certificate request as kubelet's certificate manager builds one (client-go util/cert/csr.go
    MakeCSRFromTemplate):
    subject CN/O and the SANs given, signed with ``key``; ``organizations`` may hold several O values."""
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs))
    sans = ([x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
            + [x509.RFC822Name(e) for e in emails] + [x509.UniformResourceIdentifier(u) for u in uris])
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def write(path, data, mode):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)
    os.chmod(path, mode)


def write_pair(directory, base_cert, base_key, issued):
    write(os.path.join(directory, base_cert), issued.cert_pem, 0o644)
    write(os.path.join(directory, base_key), issued.key_pem, 0o600)


def b64(data):
    return base64.b64encode(data).decode()


def kubeconfig(server, ca, user, issued, cluster="kubernetes"):
    context = "%s@%s" % (user, cluster)
    return {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": cluster, "cluster": {"certificate-authority-data": b64(ca.cert_pem), "server": server}}],
        "contexts": [{"name": context, "context": {"cluster": cluster, "user": user}}],
        "current-context": context,
        "users": [{"name": user, "user": {
            "client-certificate-data": b64(issued.cert_pem), "client-key-data": b64(issued.key_pem)}}],
    }


@dataclass
class ClusterCAs:
    """The three kubeadm CAs; one set per lab cluster, shared by all its nodes."""
    ca: Issued
    etcd_ca: Issued
    front_proxy_ca: Issued

    @classmethod
    def create(cls, key_type="rsa", days=table.CA_VALIDITY_DAYS, not_before=None):
        return cls(*(make_ca(table.CAS[n]["cn"], days=days, not_before=not_before, key_type=key_type)
                     for n in ("ca", "etcd-ca", "front-proxy-ca")))

    def by_name(self, name):
        return {"ca": self.ca, "etcd-ca": self.etcd_ca, "front-proxy-ca": self.front_proxy_ca}[name]


@dataclass
class NodePKI:
    root: str
    node: str
    pki_dir: str
    kubeconfig_dir: str
    issued: dict = field(default_factory=dict)

    def path(self, name):
        spec = table.CERTIFICATES[name]
        if spec["kind"] == "kubeconfig":
            return os.path.join(self.kubeconfig_dir, spec["file"])
        return os.path.join(self.pki_dir, spec["cert"])


def san_for(kind, node, ip):
    if kind == "etcd":
        return [node, "localhost"], [ip, "127.0.0.1", "::1"]
    if kind == "apiserver":
        return ([node, "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                 "kubernetes.default.svc.cluster.local", "localhost"], ["10.96.0.1", ip, "127.0.0.1"])
    return [], []


def build_node_pki(root, cas, node="cp1", ip="127.0.0.1", names=None, not_after=None, key_type="rsa",
                   api_server="https://127.0.0.1:6443", with_cas=True, with_ca_keys=True):
    """Write a node's kubeadm PKI under ``root`` (which plays the node's ``/``).

    ``names``: which entries of the kubeadm table to issue (default all).  ``not_after``: dict of
    name -> datetime for certificates that should expire at a given time.
    """
    pki_dir = os.path.join(root, "etc/kubernetes/pki")
    kubeconfig_dir = os.path.join(root, "etc/kubernetes")
    result = NodePKI(root, node, pki_dir, kubeconfig_dir)
    if with_cas:
        for ca_name, ca_spec in table.CAS.items():
            ca = cas.by_name(ca_name)
            write(os.path.join(pki_dir, ca_spec["cert"]), ca.cert_pem, 0o644)
            if with_ca_keys:
                write(os.path.join(pki_dir, ca_spec["key"]), ca.key_pem, 0o600)
    not_after = not_after or {}
    for name in names or table.CERTIFICATES:
        spec = table.CERTIFICATES[name]
        dns, ips = san_for(spec["san"], node, ip)
        issued = issue(cas.by_name(spec["ca"]), spec["cn"].format(node=node), spec["o"], spec["eku"], dns, ips,
                       not_after=not_after.get(name), key_type=key_type)
        result.issued[name] = issued
        if spec["kind"] == "file":
            write_pair(pki_dir, spec["cert"], spec["key"], issued)
        else:
            config = kubeconfig(api_server, cas.ca, spec["cn"].format(node=node), issued)
            write(os.path.join(kubeconfig_dir, spec["file"]),
                  yaml.safe_dump(config, default_flow_style=False, sort_keys=False).encode(), 0o600)
    return result


def write_service_account_keys(root):
    key = new_key("rsa")
    pki_dir = os.path.join(root, "etc/kubernetes/pki")
    write(os.path.join(pki_dir, "sa.key"), key_pem(key), 0o600)
    write(os.path.join(pki_dir, "sa.pub"), key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo), 0o644)
