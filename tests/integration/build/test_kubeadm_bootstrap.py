"""kubeadm_bootstrap and kubeadm_node_state through Ansible, with the lab's real kubeadm 1.36.3 and 1.37.2.

No node is needed: ``validate`` and check-mode ``init`` render the configuration and have the real
kubeadm validate it (kubeadm config validate); joined/half-joined node trees are laid out in tmp.
"""
import os

import pytest

from ansible_collections.cplane.kubeadm.plugins.module_utils._build import node_state as ns
from tests.lab.ansible_run import run_module
from tests.lab.kubeadm import LabBinaryMissing, k8s_versions, real_binary

TOKEN = "q1w2e3.r4t5y6u7i8o9p0a1"
KEY = "cd" * 32
JOIN = "kubeadm join 10.0.0.100:6443 --token %s --discovery-token-ca-cert-hash sha256:%s" % (TOKEN, "ab" * 32)


def versions():
    try:
        return k8s_versions()
    except Exception:
        return ("1.37.2",)


def binary(version):
    try:
        return version, real_binary("kubeadm", version)
    except LabBinaryMissing as exc:
        pytest.fail(str(exc))


@pytest.fixture(params=versions())
def kubeadm(request):
    """Each lab kubeadm: the configuration must be valid for every release the lab builds."""
    return binary(request.param)


@pytest.fixture
def newest():
    return binary(versions()[-1])


def dirs(root):
    return dict(kubernetes_dir=str(root / "etc/kubernetes"), kubelet_dir=str(root / "var/lib/kubelet"),
                etcd_data_dir=str(root / "var/lib/etcd"))


def args(kubeadm, root, **extra):
    version, path = kubeadm
    out = dict(kubeadm_path=path, kubernetes_version=version, control_plane_endpoint="10.0.0.100:6443",
               advertise_address="10.0.0.12", node_name="cp2", cert_sans=["lb.example"], pod_subnet="10.244.0.0/16",
               service_subnet="10.96.0.0/12", temp_dir=str(root), **dirs(root))
    out.update(extra)
    return out


@pytest.mark.parametrize("validate_as,control_plane", [("init", True), ("join", True), ("join", False)])
def test_the_rendered_configuration_is_valid_for_the_real_kubeadm(kubeadm, tmp_path, validate_as, control_plane):
    result = run_module("kubeadm_bootstrap", args(kubeadm, tmp_path, action="validate", validate_as=validate_as,
                                                  control_plane=control_plane))
    assert not result["failed"], result.get("msg")
    assert result["validated"] and not result["changed"]
    assert result["api_version"] == "kubeadm.k8s.io/v1beta4"   # what both lab kubeadms print as default
    kinds = [d["kind"] for d in result["config"]]
    assert kinds == (["InitConfiguration", "ClusterConfiguration"] if validate_as == "init" else ["JoinConfiguration"])
    assert [r["cmd"][1:3] for r in result["kubeadm_runs"]] == [["config", "print"], ["config", "validate"]]
    assert os.listdir(str(tmp_path)) == []   # the private config directory is gone


def test_kubeadm_rejects_a_bad_configuration_and_the_module_says_so(kubeadm, tmp_path):
    result = run_module("kubeadm_bootstrap", args(kubeadm, tmp_path, action="validate", pod_subnet="10.244.0.0/33"))
    assert result["failed"]
    assert "kubeadm rejected the rendered configuration" in result["msg"] and "podSubnet" in result["msg"]


def test_check_mode_init_validates_and_changes_nothing(newest, tmp_path):
    result = run_module("kubeadm_bootstrap", args(newest, tmp_path, action="init", certificate_key=KEY), check=True)
    assert not result["failed"], result.get("msg")
    assert result["changed"] and result["validated"] and result["state_after"] == "not_member"
    assert not os.path.exists(str(tmp_path / "etc")) and os.listdir(str(tmp_path)) == []
    assert KEY not in result["_stdout"] and KEY not in str(result)


def test_secrets_are_not_in_the_output_of_a_join(newest, tmp_path):
    result = run_module("kubeadm_bootstrap", args(newest, tmp_path, action="join", control_plane=True,
                                                  join_command=JOIN, certificate_key=KEY), check=True)
    assert not result["failed"], result.get("msg")
    assert TOKEN not in result["_stdout"] + str(result) and KEY not in result["_stdout"] + str(result)
    assert result["config"][0]["discovery"]["bootstrapToken"]["token"] != TOKEN


def make(root, labels):
    paths = ns.footprint(**dirs(root))
    for label in labels:
        path = paths[label]
        os.makedirs(path if label == "etcd member" else os.path.dirname(path), exist_ok=True)
        if label != "etcd member":
            open(path, "w").close()


def test_a_joined_node_is_left_alone_and_a_half_joined_one_refused(newest, tmp_path):
    kubeadm = newest
    joined, half = tmp_path / "joined", tmp_path / "half"
    make(joined, ns.CONTROL_PLANE_FILES)
    make(half, ("ca.crt", "bootstrap-kubelet.conf", "kubelet config.yaml"))
    left = run_module("kubeadm_bootstrap", args(kubeadm, joined, action="join", control_plane=True, join_command=JOIN,
                                                certificate_key=KEY))
    assert not left["failed"] and not left["changed"] and left["kubeadm_runs"] == []
    assert "already a joined control-plane" in left["msg"]
    refused = run_module("kubeadm_bootstrap", args(kubeadm, half, action="join", join_command=JOIN))
    assert refused["failed"] and "kubeadm_runs" not in refused   # refused before kubeadm ran
    assert "is half-joined" in refused["msg"] and "kubeadm reset -f" in refused["msg"]
    state = run_module("kubeadm_node_state", dirs(half), check=True)
    assert state["state"] == "half_joined" and state["missing"] == ["kubelet.conf"] and not state["changed"]
