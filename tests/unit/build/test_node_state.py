"""kubeadm_node_state's backend on node trees laid out as kubeadm leaves them."""
import os

import pytest

from ansible_collections.cplane.kubeadm.plugins.module_utils._build import node_state as ns


def node(tmp_path, *labels):
    dirs = dict(kubernetes_dir=str(tmp_path / "etc/kubernetes"), kubelet_dir=str(tmp_path / "var/lib/kubelet"),
                etcd_data_dir=str(tmp_path / "var/lib/etcd"))
    paths = ns.footprint(**dirs)
    for label in labels:
        path = paths[label]
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if label == "etcd member":
            os.makedirs(path)
        else:
            with open(path, "w") as handle:
                handle.write("x")
    return dirs


def test_an_empty_node_is_not_a_member(tmp_path):
    state = ns.node_state("n1", **node(tmp_path))
    assert state["state"] == ns.NOT_MEMBER and state["present"] == [] and state["hint"] is None


def test_every_file_of_a_control_plane_is_a_joined_control_plane(tmp_path):
    state = ns.node_state("cp1", **node(tmp_path, *ns.CONTROL_PLANE_FILES))
    assert state["state"] == ns.CONTROL_PLANE and state["missing"] == []


def test_a_worker_is_a_joined_worker(tmp_path):
    state = ns.node_state("w1", **node(tmp_path, *ns.WORKER_FILES, "kubeadm-flags.env"))
    assert state["state"] == ns.WORKER and state["kind"] == ns.WORKER


@pytest.mark.parametrize("labels,missing", [
    # a join killed while kubeadm waited for the kubelet's TLS bootstrap
    (("ca.crt", "bootstrap-kubelet.conf", "kubelet config.yaml"), ["kubelet.conf"]),
    # a control-plane join killed before etcd started (manifests written, no member data)
    (tuple(label for label in ns.CONTROL_PLANE_FILES if label not in ("etcd member", "etcd.yaml")),
     ["etcd member", "etcd.yaml"]),
])
def test_a_node_between_is_half_joined_with_what_to_do(tmp_path, labels, missing):
    state = ns.node_state("cp3", **node(tmp_path, *labels))
    assert state["state"] == ns.HALF_JOINED and state["missing"] == missing
    assert "kubeadm reset -f' on cp3" in state["hint"]


def test_a_control_plane_with_a_leftover_bootstrap_kubeconfig_is_half_joined(tmp_path):
    state = ns.node_state("cp2", **node(tmp_path, *(ns.CONTROL_PLANE_FILES + ("bootstrap-kubelet.conf",))))
    assert state["state"] == ns.HALF_JOINED and state["missing"] == []
