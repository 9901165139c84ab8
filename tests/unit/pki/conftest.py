"""A kubeadm PKI template built once per session (RSA-2048, some certificates near expiry) and
copied for each test, so that every test starts from a fresh tree in milliseconds."""
import os

import pytest

from tests.unit.pki.helpers import build_template, copy_tree


@pytest.fixture(scope="session")
def pki_template(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("pki-template") / "node")
    cas, node = build_template(directory)
    return directory, cas, node


@pytest.fixture
def tree(pki_template, tmp_path):
    directory, cas, node = pki_template
    return copy_tree(directory, cas, node, os.path.join(str(tmp_path), "node"))
