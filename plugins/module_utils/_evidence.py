# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Evidence of a control plane's state, kept before anything is changed.

The first seed's team ran ``terraform destroy`` and lost what would have explained the outage: the
183 restarts, the probe in etcd.yaml, the odd kubelet.  ``collect_host_evidence`` packs, on one
node, the report's documents, every file of the manifests directory (dot-files too: a stray
``.bak`` is evidence), journal excerpts of kubelet and the container runtime, ``crictl ps -a`` and
the free space of the etcd data filesystem into one tarball; ``combine_bundles`` merges the nodes'
tarballs into one timestamped bundle on the controller.

Never copied: private keys and kubeconfig credentials.  Only the manifests directory is read as
files, and any file there that holds PEM private key material, kubeconfig client keys or tokens
is left out and listed under ``skipped`` with the reason.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time

from ansible_collections.cplane.kubeadm.plugins.module_utils import _files
from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import InputError, OperationFailed

SECRET_MARKERS = (
    (re.compile(br"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "holds a PEM private key"),
    (re.compile(br"client-key-data\s*:"), "holds a kubeconfig client key"),
    (re.compile(br"^\s*token\s*:\s*\S", re.MULTILINE), "holds a token"),
)
MAX_FILE_BYTES = 4 * 1024 * 1024
COMMAND_TIMEOUT = 30


def secret_reason(data):
    """Why ``data`` must not leave the node, or None."""
    for pattern, reason in SECRET_MARKERS:
        if pattern.search(data):
            return reason
    return None


def _run(argv):
    """(exit code, output) of a diagnostic command; (None, why) when it cannot run."""
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=COMMAND_TIMEOUT, check=False)
    except OSError as exc:
        return None, "%s: %s" % (argv[0], exc.strerror or exc)
    except subprocess.TimeoutExpired:
        return None, "%s did not finish within %ss" % (" ".join(argv), COMMAND_TIMEOUT)
    return proc.returncode, proc.stdout + proc.stderr


def free_space(path):
    """Free and total bytes of the filesystem holding ``path`` (or its nearest existing parent)."""
    while path and not os.path.exists(path):
        path = os.path.dirname(path)
    stat = os.statvfs(path or "/")
    return dict(path=path, total_bytes=stat.f_blocks * stat.f_frsize, free_bytes=stat.f_bavail * stat.f_frsize)


class _Bundle(object):
    """A tar.gz being written under one top directory (the host's name)."""

    def __init__(self, tar, top):
        self.tar = tar
        self.top = top
        self.files = []

    def add_bytes(self, name, data, mtime=None):
        info = tarfile.TarInfo("%s/%s" % (self.top, name))
        info.size = len(data)
        info.mode = 0o600
        info.mtime = int(mtime if mtime is not None else time.time())
        self.tar.addfile(info, io.BytesIO(data))
        self.files.append(name)

    def add_json(self, name, document):
        self.add_bytes(name, (json.dumps(document, indent=2, sort_keys=True, default=str) + "\n").encode())


@contextlib.contextmanager
def _atomic_tarball(target):
    """A gzipped tarfile that appears at ``target`` (0600) only once complete: temp file, fsync, rename."""
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(target), suffix=".tmp", dir=os.path.dirname(target))
    try:
        with os.fdopen(fd, "wb") as raw:
            with tarfile.open(fileobj=raw, mode="w:gz") as tar:
                yield tar
            raw.flush()
            os.fsync(raw.fileno())
        os.chmod(tmp, 0o600)
        os.rename(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def plan_host_evidence(host, manifests_dir, documents, journal_units, crictl_path, journalctl_path):
    """What a collection would read, without reading anything secret: for check mode and the result."""
    manifests = sorted(os.listdir(manifests_dir)) if os.path.isdir(manifests_dir) else []
    return dict(host=host, documents=sorted(documents), manifests=manifests, journal_units=list(journal_units),
                commands=[journalctl_path, crictl_path])


def collect_host_evidence(host, dest_dir, manifests_dir, data_dir, documents=None, journal_units=("kubelet",),
                          journal_lines=300, crictl_path="crictl", journalctl_path="journalctl"):
    """Write ``<dest_dir>/<host>.tar.gz`` (0600, atomically); return its path and what it holds."""
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*$", host):
        raise InputError("host name %r cannot name a file in the bundle" % host)
    try:
        os.makedirs(dest_dir, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise OperationFailed("cannot create the evidence directory %s: %s" % (dest_dir, exc.strerror or exc))
    skipped, notes = [], []
    target = os.path.join(dest_dir, "%s.tar.gz" % host)
    with _atomic_tarball(target) as tar:
        bundle = _Bundle(tar, host)
        for name, document in sorted((documents or {}).items()):
            bundle.add_json("documents/%s.json" % name, document)
        _add_manifests(bundle, manifests_dir, skipped)
        _add_commands(bundle, journal_units, journal_lines, crictl_path, journalctl_path, notes)
        bundle.add_json("filesystem/etcd-data.json", free_space(data_dir))
        bundle.add_json("MANIFEST.json", dict(host=host, collected_at=_files.timestamp(),
                                              files=bundle.files, skipped=skipped, notes=notes))
    return dict(path=target, files=bundle.files, skipped=skipped, notes=notes, size_bytes=os.path.getsize(target))


def _add_manifests(bundle, manifests_dir, skipped):
    if not os.path.isdir(manifests_dir):
        bundle.add_json("manifests/.missing.json", dict(manifests_dir=manifests_dir, exists=False))
        return
    for name in sorted(os.listdir(manifests_dir)):
        path = os.path.join(manifests_dir, name)
        if not os.path.isfile(path):
            skipped.append(dict(file=path, reason="not a regular file"))
            continue
        try:
            with open(path, "rb") as handle:
                data = handle.read(MAX_FILE_BYTES + 1)
            mtime = os.path.getmtime(path)
        except (IOError, OSError) as exc:
            skipped.append(dict(file=path, reason="unreadable: %s" % (exc.strerror or exc)))
            continue
        if len(data) > MAX_FILE_BYTES:
            skipped.append(dict(file=path, reason="larger than %d bytes" % MAX_FILE_BYTES))
            continue
        reason = secret_reason(data)
        if reason:
            skipped.append(dict(file=path, reason=reason))
            continue
        bundle.add_bytes("manifests/%s" % name, data, mtime)


def _add_commands(bundle, journal_units, journal_lines, crictl_path, journalctl_path, notes):
    for unit in journal_units:
        code, output = _run([journalctl_path, "--no-pager", "-o", "short-iso", "-n", str(journal_lines), "-u", unit])
        _keep_output(bundle, "commands/journal-%s.txt" % unit, code, output, notes)
    code, output = _run([crictl_path, "ps", "-a"])
    _keep_output(bundle, "commands/crictl-ps-a.txt", code, output, notes)


def _keep_output(bundle, name, code, output, notes):
    if code is None:
        notes.append("%s not collected: %s" % (name, output))
        return
    data = output if isinstance(output, bytes) else output.encode()
    if secret_reason(data):
        notes.append("%s not collected: the output holds secret material" % name)
        return
    bundle.add_bytes(name, data[-MAX_FILE_BYTES:])
    if code != 0:
        notes.append("%s: the command exited %d" % (name, code))


def combine_bundles(parts, dest_dir, stamp=None, prefix="cplane-evidence"):
    """Merge the hosts' tarballs into ``<dest_dir>/<prefix>-<stamp>.tar.gz`` (0600); remove the parts."""
    stamp = stamp or _files.timestamp()
    if not parts:
        raise InputError("no host evidence to combine")
    os.makedirs(dest_dir, mode=0o700, exist_ok=True)
    target = os.path.join(dest_dir, "%s-%s.tar.gz" % (prefix, stamp))
    members = []
    with _atomic_tarball(target) as out:
        for part in parts:
            try:
                with tarfile.open(part, mode="r:gz") as source:
                    for info in source:
                        if not info.isfile():
                            continue
                        out.addfile(info, source.extractfile(info))
                        members.append(info.name)
            except (tarfile.TarError, EOFError, OSError) as exc:
                raise OperationFailed("host evidence %s is not a readable tarball: %s" % (part, exc))
    for part in parts:
        os.unlink(part)
    staging = set(os.path.dirname(p) for p in parts)
    for directory in staging:
        if os.path.isdir(directory) and not os.listdir(directory):
            shutil.rmtree(directory)
    return dict(path=target, members=members, size_bytes=os.path.getsize(target))
