"""A wheelhouse of the collection's requirements, as an air-gapped site would carry to its nodes.

Built once with ``pip wheel -r requirements.txt`` (from the package index, which the tests may use
to *build* it) and cached under ``~/.cache/cplane-kubeadm/wheelhouse/<key>/``, the key being the
requirements file's digest and the Python version, so CI builds it only when the requirements change.
The tests then install from it with the index made unreachable.
"""
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

from tests.lab.ansible_run import ROOT

REQUIREMENTS = os.path.join(ROOT, "requirements.txt")


def cache_root():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "cplane-kubeadm", "wheelhouse")


def wheelhouse(python=sys.executable):
    """The directory of wheels for ``requirements.txt`` on ``python``'s version, built if missing."""
    version = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    with open(REQUIREMENTS, "rb") as handle:
        key = hashlib.sha256(handle.read() + version.encode()).hexdigest()[:16]
    path = os.path.join(cache_root(), "py%s-%s" % (version, key))
    if os.path.isdir(path):
        return path
    os.makedirs(cache_root(), exist_ok=True)
    tmp = tempfile.mkdtemp(dir=cache_root(), prefix=".build-")
    try:
        subprocess.run([python, "-m", "pip", "wheel", "-q", "-r", REQUIREMENTS, "-w", tmp],
                       check=True, capture_output=True, text=True, timeout=1200)
        os.rename(tmp, path)   # finished wheelhouses only: an interrupted build is never taken as one
    except FileExistsError:
        shutil.rmtree(tmp, ignore_errors=True)   # another process finished first
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path
