# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Python libraries the modules need on the managed host, with their minimum versions (one place).

Modelled on community.crypto's ``_cryptography_dep.py``: a module calls ``assert_required(module,
"etcd3", ...)`` first thing, and a library that is missing *or too old* ends the run with a
``missing_required_lib``-style message naming the pip package and the version needed.  A too-old
library must never get as far as the code: it fails there with an AttributeError traceback
(kubernetes < 37 has no ``ApiClient.param_serialize``) or, worse, with a misleading message
(cryptography 38 has no ``x509.load_pem_x509_certificates``, and a valid CA was then reported as
"not a PEM certificate").

requirements.txt states the same minimums (tests/unit/versions/test_deps.py keeps them equal), and
scripts/floors installs exactly these versions and runs the tests against them.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import importlib
import os
import sys
import traceback

from ansible.module_utils.basic import missing_required_lib
from ansible.module_utils.compat.version import LooseVersion


class Dependency(object):
    """``pip_name`` (the requirements.txt/PyPI name) is imported as ``import_name``."""

    def __init__(self, pip_name, import_name, minimum, why, environ=None):
        self.pip_name = pip_name
        self.import_name = import_name
        self.minimum = minimum
        self.why = why
        self.environ = environ or {}

    def prepare_import(self):
        """Set the environment the library needs before its first import (unless the user set it)."""
        for name, value in self.environ.items():
            os.environ.setdefault(name, value)

    @property
    def requirement(self):
        return "%s >= %s" % (self.pip_name, self.minimum)


# Each minimum is the oldest release with which the collection was checked to install (Python 3.11)
# and run; ``why`` says what the release before it lacks.
DEPENDENCIES = dict((dep.pip_name, dep) for dep in (
    # python-etcd3 0.12's generated protos fail to import with protobuf >= 4 and the C++/upb backend;
    # the pure-Python backend works.  Users and AWX execution environments will not set this.  gRPC's
    # C core logs failed TLS handshakes to stderr; the modules report them themselves.
    Dependency("etcd3", "etcd3", "0.12.0", "the only python-etcd3 release with the maintenance API the etcd modules use",
               environ={"PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python", "GRPC_VERBOSITY": "ERROR"}),
    Dependency("grpcio", "grpc", "1.50", "the oldest release checked with python-etcd3 0.12 on Python 3.11"),
    # 4.21.0 is yanked on PyPI (wrong python_requires); 4.21.1 is the first installable 4.21.
    Dependency("protobuf", "google.protobuf", "4.21.1",
               "google.protobuf.unknown_fields (etcd status fields newer than python-etcd3's protos) came with 4.21"),
    Dependency("cryptography", "cryptography", "39.0",
               "x509.load_pem_x509_certificates (CA bundles) came with 39.0"),
    Dependency("kubernetes", "kubernetes", "37.0.2", "ApiClient.param_serialize came with the v37 client"),
    Dependency("PyYAML", "yaml", "6.0.3", "the kubernetes client >= 37.0.2 requires it; older releases do not build on Python 3.11"),
    Dependency("zstandard", "zstandard", "0.18", "the oldest release checked for compression=zstd"),
))


def _version_of(library):
    """The ``__version__`` of an imported library, or None when it has none."""
    version = getattr(library, "__version__", None)
    return str(version) if version else None


def check(pip_name, importer=importlib.import_module):
    """None when ``pip_name`` is importable and new enough, else (message, import traceback or None)."""
    dep = DEPENDENCIES[pip_name]
    dep.prepare_import()
    try:
        library = importer(dep.import_name)
    except Exception:  # any failure to import (ImportError, a protobuf backend that refuses to load) is "missing"
        return (missing_required_lib(dep.requirement) +
                ". Install it with: pip install '%s>=%s'." % (dep.pip_name, dep.minimum), traceback.format_exc())
    version = _version_of(library)
    if version is None or LooseVersion(version) < LooseVersion(dep.minimum):
        where = getattr(library, "__file__", None) or "an unknown location"
        return ("The Python library %s on the managed host (%s, found at %s, used by %s) is too old: this collection "
                "needs %s (%s). Upgrade it with: pip install --upgrade '%s>=%s'."
                % (dep.pip_name, version or "version unknown", where, sys.executable, dep.requirement, dep.why,
                   dep.pip_name, dep.minimum), None)
    return None


def assert_required(module, *pip_names):
    """fail_json for the first of ``pip_names`` that is missing or older than its minimum."""
    for pip_name in pip_names:
        problem = check(pip_name)
        if problem is not None:
            message, error = problem
            module.fail_json(msg=message, exception=error)


# What each family of modules needs (their doc fragments list the same).
ETCD = ("etcd3", "grpcio", "protobuf", "cryptography")
PKI = ("cryptography", "PyYAML")
K8S = ("kubernetes", "PyYAML")
MANIFESTS = ("PyYAML",)
CSR = K8S + ("cryptography",)
