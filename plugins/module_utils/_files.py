# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Crash-safe file writes and backups that never land where kubelet would run them."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import os
import shutil
import tempfile

from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import InputError

# kubelet starts a static pod for every file in this directory whose name does not start with a
# dot, so a backup left there runs as a second copy of the component.
MANIFESTS_DIR = "/etc/kubernetes/manifests"


def atomic_write(path, data, mode=None, owner_from=None):
    """Write ``data`` (bytes) to ``path`` so that readers see the old or the new file, never half.

    The temp file lives in the same directory (rename is atomic only within a filesystem) and
    starts with a dot, so kubelet ignores it while it exists.  ``mode`` defaults to the mode of
    the file being replaced (0600 for a new file); ``owner_from`` copies uid/gid from that path.
    """
    directory = os.path.dirname(os.path.abspath(path))
    if mode is None:
        mode = os.stat(path).st_mode & 0o7777 if os.path.exists(path) else 0o600
    reference = owner_from or (path if os.path.exists(path) else None)
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, mode)
        if reference is not None:
            st = os.stat(reference)
            if (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
                try:
                    os.fchown(fd, st.st_uid, st.st_gid)
                except PermissionError:
                    pass
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def is_inside(path, directory):
    """True when ``path`` is ``directory`` or below it (after resolving symlinks)."""
    path = os.path.realpath(path)
    directory = os.path.realpath(directory)
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


def check_backup_dir(backup_dir, forbidden_dirs):
    """Refuse a backup directory inside a directory kubelet watches."""
    for forbidden in forbidden_dirs:
        if forbidden and is_inside(backup_dir, forbidden):
            raise InputError(
                "backup_dir %s is inside %s: kubelet runs every file there as a static pod. "
                "Choose a directory outside it, e.g. /var/backups/cplane-kubeadm." % (backup_dir, forbidden))


def timestamp():
    """UTC timestamp used in backup and snapshot names (sortable, no colons)."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def fsync_dir(directory):
    """Make renames and creations in ``directory`` durable (a rename is only as durable as its directory)."""
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def backup_file(path, backup_dir, forbidden_dirs=(MANIFESTS_DIR,), stamp=None):
    """Copy ``path`` into ``backup_dir/<stamp>/<path without leading />`` keeping mode and owner.

    Returns the backup path.  The relative layout keeps files with the same basename apart
    (pki/ca.crt and pki/etcd/ca.crt).
    """
    check_backup_dir(backup_dir, forbidden_dirs)
    stamp = stamp or timestamp()
    target = os.path.join(backup_dir, stamp, os.path.abspath(path).lstrip(os.sep))
    os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)
    shutil.copy2(path, target)
    st = os.stat(path)
    try:
        os.chown(target, st.st_uid, st.st_gid)
    except PermissionError:
        pass
    return target


def read_input_file(path, what, remedy="Check that it exists and that the task runs as root (become: true)."):
    """Bytes of ``path``; InputError naming ``what`` (e.g. "kubeconfig"), the file and ``remedy``."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except (IOError, OSError) as exc:
        raise InputError("cannot read %s %s: %s. %s" % (what, path, exc.strerror or exc, remedy))
