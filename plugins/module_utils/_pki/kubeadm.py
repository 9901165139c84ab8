# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one table of kubeadm-managed certificates (names as ``kubeadm certs renew`` uses them).

Paths are relative to ``pki_dir`` (files) or ``kubeconfig_dir`` (kubeconfigs).  Subjects and
extended key usages are what kubeadm issues (v1.29+: admin.conf is in kubeadm:cluster-admins and
super-admin.conf in system:masters; v1.37, v1.36.1+ and v1.35.5+: apiserver-kubelet-client has no
organization, kubernetes PR 138957, authorized through the ClusterRoleBinding
kubeadm:apiserver-kubelet-client instead); renewal copies them from the existing certificate, so the
table's subject is used only to build new trees (the lab) and to explain findings.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

SERVER_AUTH = "serverAuth"
CLIENT_AUTH = "clientAuth"

# name: (path, CA name, common name ("{node}" = node name), organization, EKUs, kind)
CAS = {
    "ca": {"cert": "ca.crt", "key": "ca.key", "cn": "kubernetes"},
    "etcd-ca": {"cert": "etcd/ca.crt", "key": "etcd/ca.key", "cn": "etcd-ca"},
    "front-proxy-ca": {"cert": "front-proxy-ca.crt", "key": "front-proxy-ca.key", "cn": "front-proxy-ca"},
}

CERTIFICATES = {
    "apiserver": {
        "kind": "file", "cert": "apiserver.crt", "key": "apiserver.key", "ca": "ca",
        "cn": "kube-apiserver", "o": None, "eku": [SERVER_AUTH], "san": "apiserver",
        "restart": ["kube-apiserver"],
    },
    "apiserver-kubelet-client": {
        "kind": "file", "cert": "apiserver-kubelet-client.crt", "key": "apiserver-kubelet-client.key",
        "ca": "ca", "cn": "kube-apiserver-kubelet-client", "o": None,
        "eku": [CLIENT_AUTH], "san": None, "restart": ["kube-apiserver"],
    },
    "front-proxy-client": {
        "kind": "file", "cert": "front-proxy-client.crt", "key": "front-proxy-client.key",
        "ca": "front-proxy-ca", "cn": "front-proxy-client", "o": None,
        "eku": [CLIENT_AUTH], "san": None, "restart": ["kube-apiserver"],
    },
    "etcd-server": {
        "kind": "file", "cert": "etcd/server.crt", "key": "etcd/server.key", "ca": "etcd-ca",
        "cn": "{node}", "o": None, "eku": [SERVER_AUTH, CLIENT_AUTH], "san": "etcd",
        "restart": ["etcd"],
    },
    "etcd-peer": {
        "kind": "file", "cert": "etcd/peer.crt", "key": "etcd/peer.key", "ca": "etcd-ca",
        "cn": "{node}", "o": None, "eku": [SERVER_AUTH, CLIENT_AUTH], "san": "etcd",
        "restart": ["etcd"],
    },
    "etcd-healthcheck-client": {
        "kind": "file", "cert": "etcd/healthcheck-client.crt", "key": "etcd/healthcheck-client.key",
        "ca": "etcd-ca", "cn": "kube-etcd-healthcheck-client", "o": None,
        "eku": [CLIENT_AUTH], "san": None, "restart": [],
    },
    "apiserver-etcd-client": {
        "kind": "file", "cert": "apiserver-etcd-client.crt", "key": "apiserver-etcd-client.key",
        "ca": "etcd-ca", "cn": "kube-apiserver-etcd-client", "o": None,
        "eku": [CLIENT_AUTH], "san": None, "restart": ["kube-apiserver"],
    },
    "admin.conf": {
        "kind": "kubeconfig", "file": "admin.conf", "ca": "ca", "cn": "kubernetes-admin",
        "o": "kubeadm:cluster-admins", "eku": [CLIENT_AUTH], "san": None, "restart": [],
    },
    "super-admin.conf": {
        "kind": "kubeconfig", "file": "super-admin.conf", "ca": "ca", "cn": "kubernetes-super-admin",
        "o": "system:masters", "eku": [CLIENT_AUTH], "san": None, "restart": [],
    },
    "controller-manager.conf": {
        "kind": "kubeconfig", "file": "controller-manager.conf", "ca": "ca",
        "cn": "system:kube-controller-manager", "o": None, "eku": [CLIENT_AUTH], "san": None,
        "restart": ["kube-controller-manager"],
    },
    "scheduler.conf": {
        "kind": "kubeconfig", "file": "scheduler.conf", "ca": "ca", "cn": "system:kube-scheduler",
        "o": None, "eku": [CLIENT_AUTH], "san": None, "restart": ["kube-scheduler"],
    },
}

# kubelet rotates its own client certificate; reported for information, never renewed here.
KUBELET_CLIENT = {"kubeconfig": "kubelet.conf", "pem": "/var/lib/kubelet/pki/kubelet-client-current.pem",
                  "cn": "system:node:{node}", "o": "system:nodes"}

# kubeadm's defaults: leaf certificates for one year, CAs for ten.
LEAF_VALIDITY_DAYS = 365
CA_VALIDITY_DAYS = 3650

# The etcd client files every etcd module uses by default (kubeadm layout).
ETCD_CA = "/etc/kubernetes/pki/etcd/ca.crt"
ETCD_CLIENT_CERT = "/etc/kubernetes/pki/etcd/healthcheck-client.crt"
ETCD_CLIENT_KEY = "/etc/kubernetes/pki/etcd/healthcheck-client.key"

PKI_DIR = "/etc/kubernetes/pki"
KUBECONFIG_DIR = "/etc/kubernetes"
