"""Fixtures of the PKI integration tests: the unit tests' tree template, and the kubeadm stand-in."""
import json
import os
import stat
import sys

import pytest

from tests.conftest import COLLECTIONS_ROOT
# The unit tests' tree fixtures, shared.
from tests.unit.pki.conftest import pki_template, tree  # noqa: F401  # pylint: disable=unused-import

HERE = os.path.dirname(os.path.abspath(__file__))


class StandIn(object):
    def __init__(self, directory):
        self.path = os.path.join(directory, "kubeadm")
        self.log = os.path.join(directory, "argv.jsonl")
        with open(self.path, "w") as handle:
            handle.write("#!/bin/sh\nexec %s %s \"$@\"\n" % (sys.executable, os.path.join(HERE, "kubeadm_standin.py")))
        os.chmod(self.path, os.stat(self.path).st_mode | stat.S_IXUSR)
        self.env = {"KUBEADM_STANDIN_LOG": self.log, "KUBEADM_STANDIN_COLLECTIONS": COLLECTIONS_ROOT,
                    "KUBEADM_STANDIN_BACKUPS": os.path.join(directory, "standin-backups")}

    def calls(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as handle:
            return [json.loads(line) for line in handle]


@pytest.fixture
def kubeadm_standin(tmp_path):
    directory = tmp_path / "standin"
    directory.mkdir()
    return StandIn(str(directory))
