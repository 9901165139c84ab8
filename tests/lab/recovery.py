"""A control plane to recover: inventory of the recover playbook for a KubeletEtcdLab, and destroying members.

Shared by tests/integration/recovery, the recovery benchmark and the demo.
"""
import os
import shutil

import yaml

from tests.lab.ansible_run import ROOT
from tests.lab.binaries import etcd_binary

PLAYBOOK = os.path.join(ROOT, "playbooks", "recover.yml")


def write_inventory(lab, directory, **overrides):
    hosts = {}
    for member in lab.members:
        etcd_pki = os.path.join(member.pki_dir, "etcd")
        hosts[member.name] = dict(
            ansible_connection="local",
            control_plane_recovery_etcd_name=member.name,
            control_plane_recovery_etcd_client_url=member.client_url,
            control_plane_recovery_etcd_peer_url=member.peer_url,
            control_plane_recovery_etcd_health_url=member.metrics_url + "/health?serializable=true",
            control_plane_recovery_etcd_ca_cert=os.path.join(etcd_pki, "ca.crt"),
            control_plane_recovery_etcd_client_cert=os.path.join(etcd_pki, "healthcheck-client.crt"),
            control_plane_recovery_etcd_client_key=os.path.join(etcd_pki, "healthcheck-client.key"),
            control_plane_recovery_data_dir=member.data_dir,
            control_plane_recovery_manifests_dir=member.manifests_dir,
            control_plane_recovery_holding_dir=os.path.join(member.root, "var/lib/cplane-held"),
            control_plane_recovery_snapshot_dir=str(directory / "snapshots"),
            control_plane_recovery_etcdutl_path=etcd_binary("etcdutl"),
            control_plane_recovery_poll_interval=1,
            control_plane_recovery_become=False,
            control_plane_recovery_evidence_dir=str(directory / "evidence"),
            control_plane_report_bundle_node_dir=str(directory / "node-evidence" / member.name),
            control_plane_report_pki_dir=member.pki_dir,
            control_plane_report_kubeconfig_dir=os.path.join(member.root, "etc/kubernetes"),
            control_plane_report_kubelet_pki_dir=os.path.join(member.root, "var/lib/kubelet/pki"),
            control_plane_report_versions=False,
        )
        hosts[member.name].update(overrides)
    path = str(directory / "inventory.yml")
    with open(path, "w") as handle:
        yaml.safe_dump({"all": {"children": {"kube_control_plane": {"hosts": hosts}}}}, handle)
    return path


def destroy(lab, name):
    """The node's etcd dies with its data destroyed: no WAL, a database of random bytes.

    (A data directory that is merely empty is not enough to lose a member: etcd started with
    --initial-cluster-state=existing fetches the member list from its peers and catches up from
    the leader, and started with "new" it can bootstrap a cluster of its own.)
    """
    member = lab.member(name)
    lab.kill(name)
    shutil.rmtree(os.path.join(member.data_dir, "member", "wal"), ignore_errors=True)
    db = os.path.join(member.data_dir, "member", "snap", "db")
    os.makedirs(os.path.dirname(db), exist_ok=True)
    with open(db, "wb") as handle:
        handle.write(os.urandom(64 * 1024))
