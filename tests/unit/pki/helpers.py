"""Shared helpers of the PKI tests: a kubeadm tree copied from a once-built template, tree hashes,
openssl views and key-material checks."""
import base64
import datetime
import os
import re
import shutil
import subprocess

import yaml

from tests.lab import pki as lab

SOON = datetime.timedelta(days=5)
NEAR_EXPIRY = ("apiserver", "etcd-server", "admin.conf", "controller-manager.conf")


class Tree(object):
    """A node root with a kubeadm PKI; ``cas`` are the lab CAs that signed it."""

    def __init__(self, root, cas, node_pki):
        self.root = root
        self.cas = cas
        self.node = node_pki
        self.pki_dir = os.path.join(root, "etc/kubernetes/pki")
        self.kubeconfig_dir = os.path.join(root, "etc/kubernetes")
        self.backup_dir = os.path.join(os.path.dirname(root), "backups")
        self.kubelet_pki_dir = os.path.join(root, "var/lib/kubelet/pki")

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def args(self, **extra):
        args = dict(pki_dir=self.pki_dir, kubeconfig_dir=self.kubeconfig_dir, backup_dir=self.backup_dir)
        args.update(extra)
        return args

    def read(self, rel):
        with open(os.path.join(self.root, rel), "rb") as handle:
            return handle.read()


def build_template(directory, key_type="rsa", not_after=None, ca_days=3650):
    cas = lab.ClusterCAs.create(key_type=key_type, days=ca_days)
    now = lab.now()
    not_after = not_after if not_after is not None else {n: now + SOON for n in NEAR_EXPIRY}
    node = lab.build_node_pki(directory, cas, node="cp1", ip="10.0.0.11", not_after=not_after, key_type=key_type)
    return cas, node


def copy_tree(template, cas, node, destination):
    shutil.copytree(template, destination, symlinks=True)
    return Tree(destination, cas, node)


def openssl_text(pem_bytes):
    return subprocess.run(["openssl", "x509", "-noout", "-text"], input=pem_bytes, capture_output=True, check=True).stdout.decode()


def openssl_field(text, header):
    """The line after ``header`` in ``openssl x509 -text`` output (SANs, EKUs)."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.strip().startswith(header):
            return lines[index + 1].strip()
    return None


def openssl_subject(pem_bytes):
    return subprocess.run(["openssl", "x509", "-noout", "-subject", "-nameopt", "RFC2253"], input=pem_bytes,
                          capture_output=True, check=True).stdout.decode().strip()


def openssl_verify(ca_path, cert_path):
    return subprocess.run(["openssl", "verify", "-CAfile", ca_path, cert_path], capture_output=True, text=True, check=False)


def kubeconfig_credentials(path):
    with open(path) as handle:
        config = yaml.safe_load(handle)
    user = config["users"][0]["user"]
    return base64.b64decode(user["client-certificate-data"]), base64.b64decode(user["client-key-data"])


def wrap_certificate_data(path, width=64):
    """Fold the kubeconfig's client-certificate-data over lines (valid YAML; renewal cannot edit it in place)."""
    with open(path) as handle:
        text = handle.read()
    start = text.index("client-certificate-data: ") + len("client-certificate-data: ")
    end = text.index("\n", start)
    value = text[start:end]
    with open(path, "w") as handle:
        handle.write(text[:start] + "\n      ".join(value[i:i + width] for i in range(0, len(value), width)) + text[end:])


def pem_bodies(pem_bytes):
    """The base64 lines of every PEM block (what a leak would contain)."""
    return [line for line in pem_bytes.decode().splitlines() if line and not line.startswith("-----")]


def key_bodies_in_tree(tree):
    """Base64 body lines of every private key under the tree (files and kubeconfigs)."""
    bodies = []
    for dirpath, _dirs, files in os.walk(tree.root):
        for name in files:
            path = os.path.join(dirpath, name)
            data = open(path, "rb").read()
            if name.endswith(".key"):
                bodies.extend(pem_bodies(data))
            elif name.endswith(".conf"):
                _cert, key = kubeconfig_credentials(path)
                bodies.extend(pem_bodies(key))
                bodies.append(re.search(r"client-key-data: (\S+)", data.decode()).group(1))
    return [b for b in bodies if len(b) >= 40]


def assert_no_key_material(text, bodies):
    leaked = [b for b in bodies if b in text]
    assert not leaked, "private key material in output: %d lines" % len(leaked)
