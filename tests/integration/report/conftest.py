"""A diagnosable control plane: 3 real etcd members, their kubeadm PKI, manifests, and the API double."""
import datetime
import os
import sys

import pytest
import yaml

from tests.lab import pki
from tests.lab.api_double import ApiDouble
from tests.lab.etcd_cluster import ETCD_CERTS
from tests.lab.static_pods import write_etcd_manifest

NEAR_EXPIRY = "apiserver"   # expires in 5 days on cp1 (warn_days is 30)

# What an operator leaves behind after "cp kube-apiserver.yaml kube-apiserver.yaml.bak": kubelet runs it too.
APISERVER_BACKUP = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "kube-apiserver", "namespace": "kube-system",
                 "labels": {"component": "kube-apiserver", "tier": "control-plane"}},
    "spec": {"hostNetwork": True, "containers": [{
        "name": "kube-apiserver", "image": "registry.k8s.io/kube-apiserver:v1.12.1",
        "command": ["kube-apiserver", "--advertise-address=127.0.0.1", "--secure-port=6443"]}]},
}


class ControlPlane(object):
    """Per-host paths of the lab, as inventory host variables for the control_plane_report role."""

    def __init__(self, lab, api, workdir):
        self.lab = lab
        self.api = api
        self.workdir = workdir

    def host_vars(self, member):
        etcd_pki = os.path.join(member.pki_dir, "etcd")
        return {
            "ansible_connection": "local",
            "control_plane_report_etcd_endpoints": [member.client_url],
            "control_plane_report_etcd_ca_cert": os.path.join(etcd_pki, "ca.crt"),
            "control_plane_report_etcd_client_cert": os.path.join(etcd_pki, "healthcheck-client.crt"),
            "control_plane_report_etcd_client_key": os.path.join(etcd_pki, "healthcheck-client.key"),
            "control_plane_report_manifests_dir": member.manifests_dir,
            "control_plane_report_pki_dir": member.pki_dir,
            "control_plane_report_kubeconfig_dir": os.path.join(member.root, "etc/kubernetes"),
            "control_plane_report_kubelet_pki_dir": os.path.join(member.root, "var/lib/kubelet/pki"),
        }

    def inventory(self, name="inventory.yml", **group_vars):
        hosts = {m.name: self.host_vars(m) for m in self.lab.members}
        data = {"kube_control_plane": {"hosts": hosts, "vars": dict(ansible_python_interpreter=sys.executable,
                                                                    **group_vars)}}
        path = os.path.join(self.workdir, name)
        with open(path, "w") as handle:
            yaml.safe_dump(data, handle)
        return path


@pytest.fixture
def control_plane(etcd3_cluster, tmp_path):
    lab = etcd3_cluster
    soon = pki.now() + datetime.timedelta(days=5)
    others = [name for name in pki.table.CERTIFICATES if name not in ETCD_CERTS]
    for member in lab.members:
        pki.build_node_pki(member.root, lab.cas, node=member.name, names=others, key_type="ecdsa",
                           not_after={NEAR_EXPIRY: soon} if member.name == "cp1" else None)
    cp1 = lab.member("cp1")
    write_etcd_manifest(cp1, lab, probe="seed")
    with open(os.path.join(cp1.manifests_dir, "kube-apiserver.yaml.bak"), "w") as handle:
        yaml.safe_dump(APISERVER_BACKUP, handle)
    with ApiDouble(str(tmp_path / "api"), "seed", cas=lab.cas) as api:
        yield ControlPlane(lab, api, str(tmp_path))
