# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restore an etcd snapshot into a member's data directory, in place and reversibly.

Order of work, chosen so that a kill at any instant leaves the old directory in place or the new
one complete, and nothing the operator had is ever deleted:

1. decompress (when needed) next to the data directory and verify the snapshot (sha256 trailer,
   bolt pages) before anything is touched;
2. ``etcdutl snapshot restore`` into ``<data_dir>.cplane-restoring`` (removed first if an earlier
   run was killed during this step: it is this module's own unfinished output);
3. a journal ``<data_dir>.cplane-restore.json`` records the finished directory and where the old
   one goes, fsynced;
4. ``data_dir`` is renamed to ``<data_dir>.<timestamp>`` (``moved_aside``), the new directory is
   renamed to ``data_dir``; the journal becomes the record of the restore (``<data_dir>.cplane-restored.json``).

A run that finds a journal finishes step 4 first.  A run whose record says ``data_dir`` holds,
untouched since, what a restore of a snapshot with the same sha256 wrote changes nothing
(idempotent), unless forced; once etcd has run on it, a new restore is a new restore.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import json
import os
import shutil
import subprocess
import tempfile

from ansible_collections.cplane.kubeadm.plugins.module_utils import _files
from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import InputError, OperationFailed, UnsafeOperation
from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd import bolt, snapshot as snapshots
from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd.snapshot import _open_decompressed as open_decompressed

# etcdutl snapshot restore --bump-revision/--mark-compacted: etcd 3.5.10+ and 3.6
# (etcd PR 16029); without them, watchers that resume from a revision the restored store has
# already passed would silently see history rewritten.
DEFAULT_BUMP_REVISION = 1000000000
# bbolt opens its file with flock(LOCK_EX) (bbolt bolt_unix.go), so a running etcd holds this lock.
DB_RELATIVE = os.path.join("member", "snap", "db")
# A restore writes the database once more plus a fresh WAL; keep this much headroom on top.
SPACE_FACTOR = 1.2


def restoring_dir(data_dir):
    return data_dir.rstrip(os.sep) + ".cplane-restoring"


def journal_path(data_dir):
    return data_dir.rstrip(os.sep) + ".cplane-restore.json"


def record_path(data_dir):
    return data_dir.rstrip(os.sep) + ".cplane-restored.json"


def _write_json(path, data):
    _files.atomic_write(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode(), mode=0o600)


def _read_json(path):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (IOError, OSError):
        return None
    except ValueError:
        raise InputError("%s is not valid JSON (an interrupted restore's journal?); look at it, move it away and "
                         "run again" % path)


def etcd_holds(data_dir):
    """True when a process (a running etcd) holds the bolt lock on ``data_dir``'s database."""
    return _files.flock_held(os.path.join(data_dir, DB_RELATIVE)) is True


def db_identity(data_dir):
    """What tells "this is still the database the restore wrote": once etcd has run on it, it differs.

    A record alone would make a second quorum loss skip the restore on members whose data survived,
    leaving them newer than the members restored from the snapshot.
    """
    try:
        st = os.stat(os.path.join(data_dir, DB_RELATIVE))
    except OSError:
        return None
    return [st.st_ino, st.st_size, st.st_mtime_ns]


def etcdutl_features(etcdutl):
    """Which optional restore flags this etcdutl knows (from its own --help)."""
    try:
        proc = subprocess.run([etcdutl, "snapshot", "restore", "--help"], capture_output=True, text=True, timeout=60,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise OperationFailed("running %s snapshot restore --help failed: %s" % (etcdutl, exc))
    text = proc.stdout + proc.stderr
    return dict(bump_revision="--bump-revision" in text, mark_compacted="--mark-compacted" in text)


def free_bytes(directory):
    stat = os.statvfs(directory)
    return stat.f_bavail * stat.f_frsize


class Restore(object):
    """One etcd_snapshot_restore run for one member."""

    def __init__(self, src, data_dir, name, initial_cluster, initial_advertise_peer_urls,
                 initial_cluster_token="etcd-cluster", bump_revision=DEFAULT_BUMP_REVISION, mark_compacted=True,
                 etcdutl_path=None, skip_hash_check=False, expected_cluster_id=None, force=False, check_mode=False,
                 forbidden_dirs=(_files.MANIFESTS_DIR,)):
        self.src = os.path.abspath(src)
        self.data_dir = os.path.abspath(data_dir).rstrip(os.sep)
        self.name = name
        self.initial_cluster = initial_cluster
        self.peer_urls = initial_advertise_peer_urls
        self.token = initial_cluster_token
        self.bump_revision = bump_revision
        self.mark_compacted = mark_compacted
        self.etcdutl_path = etcdutl_path
        self.skip_hash_check = skip_hash_check
        self.expected_cluster_id = expected_cluster_id.lower().replace("0x", "", 1) if expected_cluster_id else None
        self.force = force
        self.check_mode = check_mode
        self.forbidden_dirs = forbidden_dirs
        self.parent = os.path.dirname(self.data_dir)
        self.warnings = []
        self.result = dict(changed=False, data_dir=self.data_dir, src=self.src, moved_aside=None, revision=None,
                           bumped_to=None, keys=None, snapshot_sha256=None, cluster_id=None, resumed=False,
                           warnings=self.warnings)

    # -- checks ---------------------------------------------------------------------------------
    def check_request(self):
        for forbidden in self.forbidden_dirs:
            if forbidden and _files.is_inside(self.data_dir, forbidden):
                raise InputError("data_dir %s is inside %s, which kubelet watches; give the etcd data directory "
                                 "(kubeadm: /var/lib/etcd)" % (self.data_dir, forbidden))
        if not os.path.isdir(self.parent):
            raise InputError("the parent directory of data_dir %s does not exist" % self.data_dir)
        members = [entry.split("=", 1) for entry in self.initial_cluster.split(",") if entry]
        if not any(len(m) == 2 and m[0] == self.name for m in members):
            raise InputError("initial_cluster %r has no entry for name %r; list every member as name=peer-url"
                             % (self.initial_cluster, self.name))
        if self.bump_revision < 0:
            raise InputError("bump_revision must be 0 or more")

    def check_sidecar(self):
        """The snapshot's etcd_snapshot sidecar, checked: same bytes as when written, from the expected cluster."""
        sidecar = snapshots.read_sidecar(self.src)
        if sidecar is None:
            if self.expected_cluster_id:
                self.warnings.append("%s has no sidecar of etcd_snapshot recording its cluster id: expected_cluster_id "
                                     "could not be checked" % self.src)
            return None
        self.result["cluster_id"] = sidecar.get("cluster_id")
        if snapshots.file_sha256(self.src) != sidecar.get("sha256"):
            raise OperationFailed("snapshot %s changed since etcd_snapshot wrote it (its sha256 differs from the one in "
                                  "%s); choose another snapshot" % (self.src, snapshots.sidecar_path(self.src)))
        recorded = sidecar.get("cluster_id")
        if self.expected_cluster_id and recorded and recorded.lower() != self.expected_cluster_id:
            raise UnsafeOperation("snapshot %s was taken from etcd cluster %s, not from the expected cluster %s; "
                                  "restoring it would replace this cluster's data with another cluster's. Choose a "
                                  "snapshot of this cluster" % (self.src, recorded, self.expected_cluster_id))
        if self.expected_cluster_id and not recorded:
            self.warnings.append("the sidecar of %s records no cluster id: expected_cluster_id could not be checked"
                                 % self.src)
        return sidecar

    def check_not_running(self):
        if etcd_holds(self.data_dir):
            raise UnsafeOperation("etcd is running on %s (it holds the database lock of %s); stop its static pod first "
                                  "(move etcd.yaml out of the manifests directory) and run again"
                                  % (self.data_dir, os.path.join(self.data_dir, DB_RELATIVE)))

    def find_etcdutl(self):
        etcdutl = snapshots.find_etcdutl(self.etcdutl_path, self.warnings)
        if etcdutl is None:
            raise InputError("no etcdutl found: install etcd's etcdutl (3.5.10+ for bump_revision) on the host or set "
                             "etcdutl_path")
        features = etcdutl_features(etcdutl)
        if self.bump_revision and not features["bump_revision"]:
            raise InputError("%s does not support --bump-revision (etcdutl 3.5.10 or newer does); install a newer "
                             "etcdutl and set etcdutl_path, or set bump_revision=0 if no client watches this cluster"
                             % etcdutl)
        if self.bump_revision and self.mark_compacted and not features["mark_compacted"]:
            raise InputError("%s does not support --mark-compacted; install etcdutl 3.5.10 or newer" % etcdutl)
        return etcdutl

    # -- steps ----------------------------------------------------------------------------------
    def run(self):
        self.check_request()
        if self.resume_interrupted():
            return self.result
        if not os.path.isfile(self.src):
            raise InputError("snapshot %s does not exist" % self.src)
        record = _read_json(record_path(self.data_dir))
        sidecar = self.check_sidecar()
        raw, status = self.verified_raw()
        try:
            self.result.update(revision=status["revision"], keys=status.get("keys"),
                               snapshot_sha256=status["db_sha256"])
            if sidecar and sidecar.get("revision") not in (None, status["revision"]):
                raise OperationFailed("snapshot %s holds revision %s but its sidecar %s recorded %s when etcd_snapshot "
                                      "wrote it; it is not the file that was taken. Choose another snapshot"
                                      % (self.src, status["revision"], snapshots.sidecar_path(self.src),
                                         sidecar["revision"]))
            if self.bump_revision:
                self.result["bumped_to"] = status["revision"] + self.bump_revision
            if record and record.get("snapshot_sha256") == status["db_sha256"] and not self.force \
                    and record.get("db_identity") == db_identity(self.data_dir):
                self.result.update(moved_aside=record.get("moved_aside"), bumped_to=record.get("bumped_to"))
                self.result["msg"] = ("%s was already restored from this snapshot at %s; nothing to do (force=true "
                                      "restores again)" % (self.data_dir, record.get("restored_at")))
                return self.result
            self.check_not_running()
            self.check_space(raw)
            etcdutl = self.find_etcdutl()
            self.result["changed"] = True
            if self.check_mode:
                self.result["msg"] = "would restore %s into %s" % (self.src, self.data_dir)
                return self.result
            self.restore_into_new_dir(etcdutl, raw)
        finally:
            if raw != self.src and os.path.exists(raw):
                os.unlink(raw)
        self.swap()
        return self.result

    def verified_raw(self):
        """A raw copy of the snapshot on data_dir's filesystem (or src itself) and its verified status."""
        if self.src.endswith((".xz", ".zst")):
            fd, raw = tempfile.mkstemp(prefix=".cplane-restore-src.", suffix=".db", dir=self.parent)
            try:
                with os.fdopen(fd, "wb") as out:
                    with open_decompressed(self.src) as source:
                        shutil.copyfileobj(source, out, snapshots.CHUNK)
            except Exception as exc:  # lzma/zstd errors have no common base class
                os.unlink(raw)
                if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
                    raise OperationFailed("no space left in %s to decompress %s; free space or restore elsewhere"
                                          % (self.parent, self.src))
                raise OperationFailed("snapshot %s does not decompress (%s): the file is corrupted or truncated"
                                      % (self.src, exc))
        else:
            raw = self.src
        try:
            if self.skip_hash_check:
                self.warnings.append("skip_hash_check: the sha256 trailer of %s was not checked" % self.src)
                try:
                    status = dict(bolt.read_status(raw), db_sha256=None)
                except InputError as exc:
                    raise OperationFailed("snapshot %s: %s" % (self.src, exc.msg))
            else:
                status = snapshots.verify_snapshot(raw)
        except Exception:
            if raw != self.src:
                os.unlink(raw)
            raise
        return raw, status

    def check_space(self, raw):
        needed = int(os.path.getsize(raw) * SPACE_FACTOR)
        available = free_bytes(self.parent)
        if available < needed:
            raise OperationFailed("not enough space to restore into %s: %d bytes free, about %d needed (the database "
                                  "once more plus its WAL); free space there first" % (self.parent, available, needed))

    def restore_into_new_dir(self, etcdutl, raw):
        target = restoring_dir(self.data_dir)
        if os.path.exists(target):
            # Only this module writes there, and only before the journal exists: an unfinished restore.
            shutil.rmtree(target)
        cmd = [etcdutl, "snapshot", "restore", raw, "--data-dir", target, "--name", self.name,
               "--initial-cluster", self.initial_cluster, "--initial-advertise-peer-urls", self.peer_urls,
               "--initial-cluster-token", self.token]
        if self.bump_revision:
            cmd += ["--bump-revision", str(self.bump_revision)]
            if self.mark_compacted:
                cmd.append("--mark-compacted")
        if self.skip_hash_check:
            cmd.append("--skip-hash-check")
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise OperationFailed("running %s snapshot restore failed: %s" % (etcdutl, exc))
        if proc.returncode != 0:
            if os.path.exists(target):
                shutil.rmtree(target)
            raise OperationFailed("%s snapshot restore of %s failed: %s; %s is unchanged"
                                  % (etcdutl, self.src, (proc.stderr or proc.stdout).strip()[-500:], self.data_dir))
        _fsync_tree(target)
        aside = "%s.%s" % (self.data_dir, _files.timestamp()) if os.path.exists(self.data_dir) else None
        _write_json(journal_path(self.data_dir), dict(
            restoring=target, data_dir=self.data_dir, moved_aside=aside, src=self.src,
            snapshot_sha256=self.result["snapshot_sha256"], revision=self.result["revision"],
            bumped_to=self.result["bumped_to"], keys=self.result["keys"]))

    def swap(self):
        journal = _read_json(journal_path(self.data_dir))
        target, aside = journal["restoring"], journal["moved_aside"]
        if aside and os.path.exists(self.data_dir) and os.path.isdir(target):
            os.rename(self.data_dir, aside)
        if os.path.isdir(target) and not os.path.exists(self.data_dir):
            os.rename(target, self.data_dir)
        _files.fsync_dir(self.parent)
        journal["restored_at"] = _files.timestamp()
        journal["db_identity"] = db_identity(self.data_dir)
        _write_json(record_path(self.data_dir), journal)
        os.unlink(journal_path(self.data_dir))
        _files.fsync_dir(self.parent)
        self.result.update(changed=True, moved_aside=aside, revision=journal["revision"],
                           bumped_to=journal["bumped_to"], keys=journal["keys"],
                           snapshot_sha256=journal["snapshot_sha256"])
        kept = "; the old directory is %s" % aside if aside else ""
        self.result["msg"] = "restored %s into %s%s" % (journal["src"], self.data_dir, kept)

    def resume_interrupted(self):
        """Finish a swap an earlier run was killed in; True when it did."""
        if _read_json(journal_path(self.data_dir)) is None:
            return False
        if self.check_mode:
            self.result.update(changed=True, resumed=True,
                               msg="an interrupted restore of %s would be finished" % self.data_dir)
            return True
        self.swap()
        self.result["resumed"] = True
        return True


def _fsync_tree(top):
    for directory, _subdirs, files in os.walk(top):
        for name in files:
            fd = os.open(os.path.join(directory, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _files.fsync_dir(directory)


def restore_snapshot(**params):
    """The result of etcd_snapshot_restore; operating-system errors become messages naming the path."""
    try:
        return Restore(**params).run()
    except (IOError, OSError) as exc:
        where = " (%s)" % exc.filename if exc.filename else ""
        raise OperationFailed("restoring %s into %s failed: %s%s; the journal beside the data directory lets the "
                              "next run finish or start over"
                              % (params.get("src"), params.get("data_dir"), exc.strerror or exc, where))
