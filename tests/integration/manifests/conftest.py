"""Fixtures: etcd members run as static pods under kubelet doubles, torn down even on failure."""
import pytest

from tests.lab.static_pods import KubeletEtcdLab


@pytest.fixture
def kubelet_etcd1(tmp_path):
    """One etcd member as a static pod (kubeadm's probes for etcd 3.5.1), time-scaled 0.1."""
    with KubeletEtcdLab(str(tmp_path / "lab"), size=1, time_scale=0.1) as lab:
        yield lab
