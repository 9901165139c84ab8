"""Fixtures of the etcd module tests: a module-wide 1-member lab for the TLS failures.

The test modules here are marked ``etcd_matrix``: each runs on every etcd the lab has."""
import subprocess
import time

import pytest

from tests.lab.etcd_cluster import EtcdLab


@pytest.fixture(scope="module")
def shared_etcd1(tmp_path_factory, etcd_version):
    with EtcdLab(str(tmp_path_factory.mktemp("etcd1") / "lab"), size=1, etcd_version=etcd_version) as lab:
        yield lab


def add_learner(lab, timeout=20):
    """etcd refuses member add until every member has been up a few seconds (strict reconfig check)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return lab.add_learner()
        except subprocess.CalledProcessError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
