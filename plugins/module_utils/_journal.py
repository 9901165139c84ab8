# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Replace several files as one change that survives a kill: all new files, or all old ones.

One rename is atomic; two are not.  A certificate and its key replaced one after the other leave a
broken pair when the process dies in between, and etcd then refuses to start ("tls: private key
does not match public key").  So a transaction

1. records its intent in a journal (paths only, never content) with state ``staging``;
2. backs up every target and writes every new file beside its target (same filesystem, so the
   final rename is atomic), each fsync'd;
3. records the SHA-256 of every old and new file and switches the journal to ``swapping``;
4. renames the staged files over their targets, in the order they were added;
5. removes the journal.

Every later run calls recover() first.  A journal in ``staging`` means no target was touched: the
staged files are dropped.  A journal in ``swapping`` is rolled forward when every file is either
already in place or staged and intact, else every target is restored from its backup.  The
journal sits outside the static pod manifests directory and holds paths and digests only.

Symlinked targets are written through: the new file is staged beside the link's final target and
renamed over it, so the link stays a link (the layout some operators use to share a PKI).

``CPLANE_KUBEADM_FAULT=after:<step>:<n>`` (tests only) kills the process with SIGKILL right after
the n-th occurrence of a step (``begin``, ``backup``, ``stage``, ``commit``, ``swap``, ``end``), so that
tests can interrupt a transaction at every write point deterministically.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import signal

from ansible_collections.cplane.kubeadm.plugins.module_utils import _files
from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import OperationFailed

FAULT_ENV = "CPLANE_KUBEADM_FAULT"
STEPS = ("begin", "backup", "stage", "commit", "swap", "end")
STAGED_SUFFIX = ".cplane-staged"
_fault_counts = {}


def fault_point(step):
    """Test hook: die here when CPLANE_KUBEADM_FAULT names this step and occurrence."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    try:
        when, wanted, count = spec.split(":")
        count = int(count)
    except ValueError:
        return
    if when != "after" or wanted != step:
        return
    _fault_counts[step] = _fault_counts.get(step, 0) + 1
    if _fault_counts[step] == count:
        os.kill(os.getpid(), signal.SIGKILL)


def digest_of(path):
    """SHA-256 of the file at ``path`` (hex), None when it does not exist."""
    try:
        with open(path, "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest()
    except (IOError, OSError):
        return None


def _fsync_dir(path):
    """fsync the directory holding ``path``, so that a rename or creation there survives a power cut."""
    _files.fsync_dir(os.path.dirname(path) or ".")


def staged_path(real_target):
    directory, name = os.path.split(real_target)
    # A dot name: kubelet ignores it should a target ever sit in a watched directory.
    return os.path.join(directory, ".%s%s" % (name, STAGED_SUFFIX))


def _write_staged(path, data, mode, owner_from):
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    # Created 0600 whatever the final mode: a staged key is never readable by others, not even briefly.
    fd = os.open(path, flags, 0o600)
    try:
        os.fchmod(fd, 0o600)
        st = os.stat(owner_from)
        if (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
            try:
                os.fchown(fd, st.st_uid, st.st_gid)
            except PermissionError:
                pass
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fchmod(fd, mode)
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def exclusive(journal, what):
    """Hold an exclusive lock for the journal's directory (flock: released when the holder dies)."""
    directory = os.path.dirname(os.path.abspath(journal))
    try:
        fd = os.open(directory, os.O_RDONLY)
    except (IOError, OSError) as exc:
        raise OperationFailed("cannot open %s to lock it for the %s: %s." % (directory, what, exc.strerror or exc))
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except (IOError, OSError) as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            raise OperationFailed("another %s is running on this node (it holds the lock on %s); nothing was changed. "
                                  "Run again when it has finished." % (what, directory))
        yield
    finally:
        os.close(fd)


class Transaction(object):
    """Files to replace together.  ``backup_root`` receives the backups (the run's timestamped directory)."""

    def __init__(self, journal, backup_root, what="renewal"):
        self.journal = journal
        self.backup_root = backup_root
        self.what = what
        self.entries = []

    def add(self, path, data, mode=None, private=False):
        """Replace ``path`` (through any symlink) with ``data``; ``private`` forces group/other bits off."""
        real = _files.write_target(path)
        if mode is None:
            mode = os.stat(real).st_mode & 0o7777
        if private:
            mode = (mode & ~0o077) or 0o600
        self.entries.append({"path": path, "target": real, "staged": staged_path(real), "mode": mode, "data": data})

    def _record(self, state):
        entries = [{k: e[k] for k in ("path", "target", "staged", "backup", "old", "new") if k in e} for e in self.entries]
        body = {"version": 1, "what": self.what, "state": state, "backup_dir": self.backup_root, "files": entries}
        _files.atomic_write(self.journal, (json.dumps(body, indent=1, sort_keys=True) + "\n").encode("utf-8"), mode=0o600)

    def commit(self):
        """Back up, stage and swap every file; returns {path: backup path}."""
        if not self.entries:
            return {}
        for entry in self.entries:
            entry["backup"] = os.path.join(self.backup_root, os.path.abspath(entry["path"]).lstrip(os.sep))
        self._record("staging")
        fault_point("begin")
        for entry in self.entries:
            backup = entry["backup"]
            os.makedirs(os.path.dirname(backup), mode=0o700, exist_ok=True)
            shutil.copy2(entry["target"], backup)
            st = os.stat(entry["target"])
            try:
                os.chown(backup, st.st_uid, st.st_gid)
            except PermissionError:
                pass
            with open(backup, "rb") as handle:
                os.fsync(handle.fileno())
            _fsync_dir(backup)
            entry["old"] = digest_of(backup)
            fault_point("backup")
        for entry in self.entries:
            _write_staged(entry["staged"], entry["data"], entry["mode"], entry["target"])
            _fsync_dir(entry["staged"])
            entry["new"] = hashlib.sha256(entry["data"]).hexdigest()
            fault_point("stage")
        self._record("swapping")
        fault_point("commit")
        for entry in self.entries:
            os.rename(entry["staged"], entry["target"])
            _fsync_dir(entry["target"])
            fault_point("swap")
        _remove(self.journal)
        fault_point("end")
        return {e["path"]: e["backup"] for e in self.entries}


def _remove(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        return
    _fsync_dir(path)


def read(journal):
    """The journal's content, or None when there is none; OperationFailed when it cannot be used."""
    try:
        with open(journal, "rb") as handle:
            body = json.loads(handle.read().decode("utf-8"))
    except FileNotFoundError:
        return None
    except (IOError, OSError, ValueError) as exc:
        raise OperationFailed("the journal of an interrupted change %s cannot be read (%s). Check the files it lists "
                              "by hand, then remove it." % (journal, getattr(exc, "strerror", None) or exc))
    if not isinstance(body, dict) or body.get("state") not in ("staging", "swapping") or not isinstance(body.get("files"), list):
        raise OperationFailed("the journal of an interrupted change %s is not one this collection wrote. Check the "
                              "files it lists by hand, then remove it." % journal)
    return body


def plan_recovery(journal):
    """What recover() would do: None, or {action, state, backup_dir, files, reason}."""
    body = read(journal)
    if body is None:
        return None
    files = [e.get("path") for e in body["files"]]
    plan = {"journal": journal, "state": body["state"], "backup_dir": body.get("backup_dir"), "files": files,
            "what": body.get("what")}
    if body["state"] == "staging":
        plan.update(action="discard", reason="interrupted before any file was replaced; the staged files are removed")
        return plan
    incomplete = [e["path"] for e in body["files"]
                  if digest_of(e["target"]) != e["new"] and digest_of(e["staged"]) != e["new"]]
    if incomplete:
        plan.update(action="roll_back", reason="the new content of %s is no longer complete; every file is restored "
                                               "from %s" % (", ".join(incomplete), body.get("backup_dir")))
    else:
        plan.update(action="roll_forward", reason="every new file is complete; the interrupted swap is finished")
    return plan


def recover(journal):
    """Finish or undo an interrupted transaction; returns what was done (see plan_recovery) or None."""
    plan = plan_recovery(journal)
    if plan is None:
        return None
    body = read(journal)
    if plan["action"] == "roll_forward":
        for entry in body["files"]:
            if digest_of(entry["target"]) != entry["new"]:
                os.rename(entry["staged"], entry["target"])
                _fsync_dir(entry["target"])
    elif plan["action"] == "roll_back":
        for entry in body["files"]:
            if digest_of(entry["target"]) == entry["old"]:
                continue
            if digest_of(entry["backup"]) != entry["old"]:
                raise OperationFailed("cannot roll back the interrupted %s: the backup %s of %s is missing or changed. "
                                      "Restore %s by hand from %s, then remove %s."
                                      % (body.get("what"), entry["backup"], entry["path"], ", ".join(plan["files"]),
                                         body.get("backup_dir"), journal))
            with open(entry["backup"], "rb") as handle:
                data = handle.read()
            mode = os.stat(entry["backup"]).st_mode & 0o7777
            _write_staged(entry["staged"], data, mode, entry["backup"])
            os.rename(entry["staged"], entry["target"])
            _fsync_dir(entry["target"])
    for entry in body["files"]:
        _remove(entry["staged"])
    _remove(journal)
    return plan
