# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Crash-safe file writes and backups that never land where kubelet would run them."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import errno
import fcntl
import os
import shutil
import tempfile

from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import InputError, OperationFailed
# A backup left in the manifests directory runs as a second copy of the component.
from ansible_collections.cplane.kubeadm.plugins.module_utils._kubeadm import MANIFESTS_DIR


# What to do about the operating-system errors a node really shows (EROFS after a disk error
# remounted / read-only, ENOSPC on a full /var, EACCES without become).
_REMEDIES = {
    errno.EROFS: "The filesystem is mounted read-only; check the disk (dmesg) and remount it read-write.",
    errno.ENOSPC: "The filesystem is full; free space (df -h) and run again.",
    errno.EDQUOT: "The disk quota is exhausted; free space and run again.",
    errno.EACCES: "Permission denied; run the task as root (become: true).",
    errno.EPERM: "Operation not permitted; run the task as root (become: true) and check chattr +i.",
    errno.ENOENT: "A directory on the way does not exist; create it or fix the path.",
    errno.ENOTDIR: "A component of the path is not a directory; fix the path.",
}


class FileOperationError(OperationFailed):
    """An operating-system error on a named path, told as what failed, where, and what to do."""

    def __init__(self, action, path, exc, **result):
        self.errno = getattr(exc, "errno", None)
        reason = getattr(exc, "strerror", None) or str(exc)
        remedy = _REMEDIES.get(self.errno, "")
        msg = "cannot %s %s: %s.%s" % (action, path, reason, (" " + remedy) if remedy else "")
        super(FileOperationError, self).__init__(msg, **result)


def os_error(action, exc, path=None, **result):
    """A FileOperationError for ``exc`` (an OSError), naming the path it carries or ``path``."""
    return FileOperationError(action, getattr(exc, "filename", None) or path or "?", exc, **result)


def write_target(path):
    """The file a write to ``path`` must replace: ``path`` itself, or where its symlink(s) lead.

    Replacing a symlink by rename would swap the link for a regular file and leave its target
    stale (kubeadm-managed hosts keep manifests and certificates as links into versioned trees),
    so writes go through to the target.  A dangling link is refused: its target's owner is unknown.
    """
    if not os.path.islink(path):
        return path
    target = os.path.realpath(path)
    if not os.path.exists(target):
        raise InputError("%s is a symlink to %s, which does not exist; fix the link (or replace it with the file) "
                         "and run again." % (path, os.readlink(path)))
    if not os.path.isfile(target):
        raise InputError("%s is a symlink to %s, which is not a regular file; refusing to write through it."
                         % (path, target))
    return target


def atomic_write(path, data, mode=None, owner_from=None):
    """Write ``data`` (bytes) to ``path`` so that readers see the old or the new file, never half.

    The temp file lives in the same directory as the file replaced (rename is atomic only within
    a filesystem) and starts with a dot, so kubelet ignores it while it exists.  A symlink is kept
    and its target replaced (see write_target).  ``mode`` defaults to the mode of the file being
    replaced (0600 for a new file); ``owner_from`` copies uid/gid from that path.  Returns the path
    actually written; an OS error becomes FileOperationError naming it, with nothing left behind.
    """
    target = write_target(path)
    shown = target if target == path else "%s (symlink target of %s)" % (target, path)
    directory = os.path.dirname(os.path.abspath(target))
    exists = os.path.exists(target)
    if mode is None:
        mode = os.stat(target).st_mode & 0o7777 if exists else 0o600
    reference = owner_from or (target if exists else None)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(target), suffix=".tmp", dir=directory)
    except OSError as exc:
        raise FileOperationError("write", shown, exc)
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
        os.rename(tmp, target)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise FileOperationError("write", shown, exc)
        raise
    fsync_dir(directory)
    return target


def flock_held(path):
    """Whether some process holds a flock on ``path``: True, False, or None when it cannot be opened.

    The probe takes the lock without waiting and drops it at once (closing the descriptor).
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return True
        raise
    finally:
        os.close(fd)
    return False


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

    Never overwrites a backup: when that file exists, ``<stamp>.1``, ``<stamp>.2``, ... are used.
    Returns the backup path.  The relative layout keeps files with the same basename apart
    (pki/ca.crt and pki/etcd/ca.crt).
    """
    check_backup_dir(backup_dir, forbidden_dirs)
    stamp = stamp or timestamp()
    relative = os.path.abspath(path).lstrip(os.sep)
    target = os.path.join(backup_dir, stamp, relative)
    # A second change of the same file within the same second (liveness, then startup probe) must not
    # overwrite the first backup: that one holds the original.
    number = 0
    while os.path.lexists(target):
        number += 1
        target = os.path.join(backup_dir, "%s.%d" % (stamp, number), relative)
    try:
        os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)
        # copy2 follows a symlinked ``path``: the backup holds the content that is replaced.
        shutil.copy2(path, target)
        st = os.stat(path)
    except OSError as exc:
        remove_backup(target, backup_dir)
        raise FileOperationError("back up %s to" % path, target, exc)
    try:
        os.chown(target, st.st_uid, st.st_gid)
    except PermissionError:
        pass
    return target


def remove_backup(backup, backup_dir):
    """Remove ``backup`` and the directories backup_file made for it, up to ``backup_dir``.

    Used when the change it was taken for did not happen: a backup must stand for a change.
    """
    try:
        if os.path.lexists(backup):
            os.unlink(backup)
    except OSError:
        return
    top = os.path.abspath(backup_dir)
    directory = os.path.dirname(os.path.abspath(backup))
    while is_inside(directory, top) and directory != top:
        try:
            os.rmdir(directory)
        except OSError:
            return
        directory = os.path.dirname(directory)


def read_input_file(path, what, remedy="Check that it exists and that the task runs as root (become: true)."):
    """Bytes of ``path``; InputError naming ``what`` (e.g. "kubeconfig"), the file and ``remedy``."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except (IOError, OSError) as exc:
        raise InputError("cannot read %s %s: %s. %s" % (what, path, exc.strerror or exc, remedy))
