# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Take, verify, compress and rotate etcd snapshots.

A snapshot is streamed from one healthy member (a follower when there is one, so the leader keeps
serving writes) into a hidden temp file in ``dest``; nothing is held in memory.  etcd 3.5 appends
the sha256 of the database to the stream: it is checked while the bytes arrive, then the bolt file
is opened (pure Python, see bolt.py; ``etcdutl snapshot status`` as well when it is installed),
then the file is compressed into a second temp file which is fsynced and renamed into place.

Ownership: next to each snapshot the module writes ``<snapshot>.json`` (who wrote it, size,
sha256).  Retention deletes only a file whose name matches this module's pattern *and* whose
sidecar vouches for its current size and sha256, so an operator's own ``etcdctl snapshot save``
under a matching name (no sidecar, or different content) is never deleted.

Crash safety: a run holds an exclusive ``flock`` on its own ``.<snapshot>.<token>.lock`` for its
whole life and names its temp files with the same token.  The kernel drops the lock when the
process dies (SIGKILL included), so the next run can tell an abandoned temp file (its lock file
can be locked) from one a running snapshot is still writing (locked), and removes the abandoned
ones at once.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fcntl
import hashlib
import json
import lzma
import os
import re
import shutil
import subprocess
import tempfile
import time

from ansible_collections.cplane.kubeadm.plugins.module_utils import _files
from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import (
    ConnectionFailure, InputError, OperationFailed)
from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd import bolt
from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd.members import Cluster

try:
    import zstandard
except ImportError:  # pragma: no cover - reported when compression=zstd is asked for
    zstandard = None

CHECKSUM_SIZE = 32
CHUNK = 1024 * 1024
SUFFIXES = {"xz": ".db.xz", "zstd": ".db.zst", "none": ".db"}
PREFIX_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


# -- names and retention ----------------------------------------------------------------------
def name_pattern(prefix):
    """Regex of the files this module writes for ``prefix`` (and nothing else)."""
    return re.compile(r"^%s-(?P<stamp>\d{8}T\d{6}Z)(?:-(?P<seq>\d+))?\.db(?:\.xz|\.zst)?$" % re.escape(prefix))


def validate_prefix(prefix):
    if not PREFIX_RE.match(prefix or ""):
        raise InputError("name_prefix %r is not allowed: use letters, digits, '.', '_' and '-' (no '/'), "
                         "starting with a letter or digit" % (prefix,))


def existing_snapshots(dest, prefix, foreign=None):
    """This module's snapshots in ``dest``, oldest first: names it would write, with a sidecar that matches.

    Files that fit the name but are not vouched for by a sidecar go to ``foreign`` (a list) if given.
    """
    pattern = name_pattern(prefix)
    found = []
    if not os.path.isdir(dest):
        return found
    for name in sorted(os.listdir(dest)):
        match = pattern.match(name)
        path = os.path.join(dest, name)
        if match and os.path.isfile(path) and not os.path.islink(path):
            if owned(path):
                found.append(((match.group("stamp"), int(match.group("seq") or 0)), name))
            elif foreign is not None:
                foreign.append(path)
    return [os.path.join(dest, name) for _key, name in sorted(found)]


def partial_pattern(prefix):
    """Hidden files of a run: ``.<snapshot name>.<token>.part|.packed|.lock``; group ``run`` is the run's key."""
    return re.compile(r"^(?P<run>\.%s-\d{8}T\d{6}Z(?:-\d+)?\.db(?:\.xz|\.zst)?\.[A-Za-z0-9_]+)\.(?P<kind>part|packed|lock)$"
                      % re.escape(prefix))


def _lock_is_free(lock_path):
    """True when no process holds ``lock_path`` (its run is dead)."""
    return _files.flock_held(lock_path) is False


def stale_partials(dest, prefix, older_than, now=None):
    """Temp files of runs that are gone (killed, out of disk), to remove now.

    A run's temp files share a token with its lock file.  The run is gone when that lock file can
    be locked (the kernel released it when the process died) — such files are abandoned whatever
    their age.  Temp files without a lock file (from a release before the lock) fall back to age:
    untouched for ``older_than`` seconds.
    """
    if not os.path.isdir(dest):
        return []
    now = now or time.time()
    pattern = partial_pattern(prefix)
    runs = {}
    for name in sorted(os.listdir(dest)):
        path = os.path.join(dest, name)
        match = pattern.match(name)
        if match and os.path.isfile(path) and not os.path.islink(path):
            runs.setdefault(match.group("run"), {})[match.group("kind")] = path
    found = []
    for _run, files in sorted(runs.items()):
        if "lock" in files:
            if _lock_is_free(files["lock"]):
                # the lock file last, so a later run still sees the pair if this one dies midway
                found.extend(files[k] for k in ("part", "packed", "lock") if k in files)
        else:
            found.extend(path for path in files.values() if now - os.path.getmtime(path) > older_than)
    return found


class RunLock(object):
    """The exclusive flock a run holds on its own lock file in ``dest`` while it has temp files there."""

    def __init__(self, dest, snapshot_path):
        while True:
            fd, self.path = tempfile.mkstemp(prefix=".%s." % os.path.basename(snapshot_path), suffix=".lock", dir=dest)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                os.unlink(self.path)
                raise
            # Another run may have found the file before it was locked, taken it for abandoned and
            # removed it: then this lock guards nothing; take a new file.
            try:
                if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                    break
            except OSError:
                pass
            os.close(fd)
        self.fd = fd
        # the temp files' names: same run key as the lock file
        self.base = self.path[:-len(".lock")]

    def release(self):
        if self.fd is None:
            return
        try:
            os.unlink(self.path)
        except OSError:
            pass
        os.close(self.fd)
        self.fd = None


# -- ownership sidecars -----------------------------------------------------------------------
WRITER = "cplane.kubeadm.etcd_snapshot"
SIDECAR_SUFFIX = ".json"


def sidecar_path(path):
    return path + SIDECAR_SUFFIX


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(CHUNK)
            if not chunk:
                return digest.hexdigest()
            digest.update(chunk)


def sidecar_data(path, size, sha256, extra=None):
    data = dict(written_by=WRITER, file=os.path.basename(path), size=size, sha256=sha256)
    data.update(extra or {})
    return json.dumps(data, sort_keys=True, indent=2).encode("utf-8") + b"\n"


def read_sidecar(path):
    """The sidecar of snapshot ``path`` when it is this module's and names this file, else None."""
    try:
        with open(sidecar_path(path), "rb") as handle:
            data = json.loads(handle.read().decode("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("written_by") != WRITER or data.get("file") != os.path.basename(path):
        return None
    return data


def owned(path, full=False):
    """True when the sidecar vouches for ``path`` as it is now: size (cheap) and, with ``full``, sha256."""
    data = read_sidecar(path)
    if data is None:
        return False
    try:
        if os.path.getsize(path) != data.get("size"):
            return False
    except OSError:
        return False
    return not full or file_sha256(path) == data.get("sha256")


def snapshot_name(dest, prefix, compression, stamp):
    """A new name that sorts after every existing one taken in the same second."""
    suffix = SUFFIXES[compression]
    taken = set(os.listdir(dest)) if os.path.isdir(dest) else set()
    seq = 0
    while True:
        name = "%s-%s%s%s" % (prefix, stamp, "-%d" % seq if seq else "", suffix)
        # the same stamp with any compression counts as taken, so ordering by name stays total
        if not any(n.startswith(name[:-len(suffix)] + ".db") for n in taken):
            return os.path.join(dest, name)
        seq += 1


def plan_retention(existing, retention, adding=1):
    """Paths to delete so that ``retention`` files remain once ``adding`` new ones exist (0 keeps all)."""
    if retention <= 0:
        return []
    excess = len(existing) + adding - retention
    return list(existing[:max(0, excess)])


def verified_removals(existing, retention, foreign, adding=1):
    """plan_retention over files whose sha256 still matches their sidecar; the others join ``foreign``.

    Only the files about to be deleted are hashed (the oldest few), not every snapshot.
    """
    candidates = list(existing)
    while True:
        planned = plan_retention(candidates, retention, adding)
        changed = [path for path in planned if not owned(path, full=True)]
        if not changed:
            return planned
        for path in changed:
            candidates.remove(path)
            foreign.append(path)


# -- verification -----------------------------------------------------------------------------
class _TrailerHash(object):
    """sha256 over everything except the last 32 bytes seen, kept aside as the trailer."""

    def __init__(self):
        self.body = hashlib.sha256()
        self.whole = hashlib.sha256()
        self.tail = b""
        self.size = 0

    def update(self, chunk):
        self.whole.update(chunk)
        self.size += len(chunk)
        data = self.tail + chunk
        if len(data) > CHECKSUM_SIZE:
            self.body.update(data[:-CHECKSUM_SIZE])
            data = data[-CHECKSUM_SIZE:]
        self.tail = data

    def check(self, what):
        """Raise unless the stream was a database plus the sha256 etcd appends to it."""
        if self.size <= CHECKSUM_SIZE or self.size % 512 != CHECKSUM_SIZE:
            raise OperationFailed("%s: size %d is not an etcd 3.5 snapshot with its sha256 trailer "
                                  "(truncated, or a copied member.db rather than a snapshot)" % (what, self.size))
        if self.body.digest() != self.tail:
            raise OperationFailed("%s: sha256 of the database does not match the checksum etcd appended: "
                                  "the snapshot is corrupted; take a new one" % what)


def _open_decompressed(path):
    if path.endswith(".xz"):
        return lzma.open(path, "rb")
    if path.endswith(".zst"):
        _require_zstd()
        return zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), closefd=True)
    return open(path, "rb")


def _require_zstd():
    if zstandard is None:
        raise InputError("compression zstd needs the Python package 'zstandard' on the managed host "
                         "(pip install zstandard), or use compression=xz")


def verify_snapshot(path, workdir=None):
    """Check a snapshot file (raw, .xz or .zst) and return its revision and key count.

    Raises OperationFailed naming the file when it is truncated, fails to decompress, fails the
    sha256 check or is not a readable bolt database.  Compressed files are unpacked into a temp
    file (in ``workdir`` or next to the snapshot) because bolt pages need random access.
    """
    if not os.path.isfile(path):
        raise InputError("snapshot %s does not exist" % path)
    raw_path = path
    tmp = None
    try:
        if path.endswith((".xz", ".zst")):
            fd, tmp = tempfile.mkstemp(prefix=".verify.", suffix=".db.tmp", dir=workdir or os.path.dirname(os.path.abspath(path)))
            hasher = _TrailerHash()
            with os.fdopen(fd, "wb") as out:
                try:
                    with _open_decompressed(path) as source:
                        _copy(source, out, hasher)
                except (lzma.LZMAError, EOFError) as exc:
                    raise OperationFailed("snapshot %s does not decompress (%s): the file is corrupted or truncated" % (path, exc))
                except Exception as exc:
                    if zstandard is not None and isinstance(exc, zstandard.ZstdError):
                        raise OperationFailed("snapshot %s does not decompress (%s): the file is corrupted or truncated" % (path, exc))
                    raise
            raw_path = tmp
        else:
            hasher = _TrailerHash()
            with open(path, "rb") as source:
                _copy(source, None, hasher)
        hasher.check("snapshot %s" % path)
        status = _read_bolt(raw_path, hasher.size - CHECKSUM_SIZE, path)
        status["db_sha256"] = hasher.body.hexdigest()
        return status
    finally:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)


def _read_bolt(raw_path, size, label):
    try:
        return bolt.read_status(raw_path, size)
    except InputError as exc:
        raise OperationFailed("snapshot %s: %s" % (label, exc.msg))


def _copy(source, out, hasher):
    while True:
        chunk = source.read(CHUNK)
        if not chunk:
            return
        hasher.update(chunk)
        if out is not None:
            out.write(chunk)


def find_etcdutl(etcdutl_path=None, warnings=None):
    """``etcdutl_path`` if given (must run), else a working etcdutl on PATH, else None.

    One found on PATH that does not run (``etcdutl version`` fails) is ignored with a warning:
    the built-in checks still run, and a broken helper binary must not block backups.
    """
    if etcdutl_path:
        if not (os.path.isfile(etcdutl_path) and os.access(etcdutl_path, os.X_OK)):
            raise InputError("etcdutl_path %s is not an executable file" % etcdutl_path)
        problem = _etcdutl_problem(etcdutl_path)
        if problem:
            raise InputError("etcdutl_path %s does not run (%s); fix it or leave etcdutl_path unset" % (etcdutl_path, problem))
        return etcdutl_path
    found = shutil.which("etcdutl")
    if found:
        problem = _etcdutl_problem(found)
        if problem:
            if warnings is not None:
                warnings.append("ignoring %s found on PATH: it does not run (%s); only the built-in snapshot checks ran"
                                % (found, problem))
            return None
    return found


def _etcdutl_problem(path):
    try:
        proc = subprocess.run([path, "version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if proc.returncode != 0:
        return ((proc.stderr or proc.stdout).strip().splitlines() or ["exit code %d" % proc.returncode])[-1][:200]
    return None


def etcdutl_status(etcdutl, raw_path, timeout=600):
    """``etcdutl snapshot status -w json``: also walks every bolt page (tx.Check)."""
    try:
        proc = subprocess.run([etcdutl, "snapshot", "status", "-w", "json", raw_path],
                              capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise OperationFailed("running %s snapshot status failed: %s" % (etcdutl, exc))
    if proc.returncode != 0:
        raise OperationFailed("%s snapshot status rejected the snapshot: %s" % (etcdutl, (proc.stderr or proc.stdout).strip()[-500:]))
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        raise OperationFailed("%s snapshot status printed no JSON: %s" % (etcdutl, proc.stdout[-300:]))
    return {"revision": data.get("revision"), "total_key": data.get("totalKey"),
            "total_size": data.get("totalSize"), "hash": data.get("hash")}


# -- compression ------------------------------------------------------------------------------
# Fast levels by default: xz -6 compresses Kubernetes-like data at well under 1 MiB/s on a busy
# control-plane core (tests/benchmarks/etcd_snapshot_vs_etcdctl.py), hours for a multi-GiB database.
DEFAULT_LEVELS = {"xz": 1, "zstd": 3}
LEVEL_RANGES = {"xz": (0, 9), "zstd": (1, 19)}


def check_level(compression, level):
    """The compression level to use (the default when ``level`` is None)."""
    if compression == "none" or level is None:
        return DEFAULT_LEVELS.get(compression)
    low, high = LEVEL_RANGES[compression]
    if not low <= level <= high:
        raise InputError("compression_level %d is out of range for %s: use %d to %d" % (level, compression, low, high))
    return level


def _compressor(compression, out, level=None):
    level = check_level(compression, level)
    if compression == "xz":
        return lzma.open(out, "wb", preset=level)
    if compression == "zstd":
        _require_zstd()
        return zstandard.ZstdCompressor(level=level).stream_writer(out, closefd=False)
    raise InputError("unknown compression %r: use xz, zstd or none" % (compression,))


class _HashingWriter(object):
    """File wrapper that hashes what is written (sha256 of the file on disk)."""

    def __init__(self, handle):
        self.handle = handle
        self.sha256 = hashlib.sha256()

    def write(self, data):
        self.sha256.update(data)
        return self.handle.write(data)

    def flush(self):
        self.handle.flush()

    def close(self):
        pass

    @property
    def closed(self):
        return False


def compress_file(raw_path, target_tmp, compression, level=None):
    """Compress ``raw_path`` into ``target_tmp`` (fsynced, 0600); return the sha256 of the result."""
    fd = os.open(target_tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        writer = _HashingWriter(handle)
        packer = _compressor(compression, writer, level)
        with open(raw_path, "rb") as source:
            while True:
                chunk = source.read(CHUNK)
                if not chunk:
                    break
                packer.write(chunk)
        packer.close()
        handle.flush()
        os.fsync(handle.fileno())
    return writer.sha256.hexdigest()


# -- taking a snapshot ------------------------------------------------------------------------
def choose_source(cluster, member_name=None):
    """The member to stream from: ``member_name`` if given, else a healthy follower, else the leader.

    ``cluster`` is a members.Cluster.  A snapshot reads the whole database on the serving member;
    on a follower that load stays off the member that orders every write.  Learners are never used
    (they may lag behind).  Returns dict(name, client, is_leader, endpoint, skipped) where
    ``skipped`` says why members were passed over.
    """
    states = cluster.gather()
    names = [s["name"] for s in states]
    if member_name and member_name not in names:
        raise InputError("member %r is not in the etcd cluster (members: %s)" % (member_name, ", ".join(names)))
    healthy, skipped = [], []
    for state in states:
        if member_name and state["name"] != member_name:
            continue
        if state["is_learner"]:
            skipped.append("%s: learner" % state["name"])
        elif not state["healthy"]:
            skipped.append("%s: %s" % (state["name"], state["error"]))
        else:
            healthy.append(state)
    if not healthy:
        raise ConnectionFailure("no healthy etcd member to take a snapshot from: %s. Restore the member's health "
                                "(etcdctl endpoint health) before taking a snapshot" % "; ".join(skipped))
    healthy.sort(key=lambda state: state["is_leader"])   # followers first, member-list order otherwise
    chosen = healthy[0]
    member_client = cluster.client(chosen)
    return dict(name=chosen["name"], client=member_client, is_leader=chosen["is_leader"],
                endpoint=member_client.endpoint, skipped=skipped, cluster_id=chosen.get("cluster_id"))


def stream_snapshot(member, out, timeout):
    """Write the member's snapshot stream to ``out``; return the _TrailerHash of it.

    ``timeout`` bounds the whole stream (gRPC deadline), not one chunk.
    """
    hasher = _TrailerHash()
    for chunk in member.snapshot_chunks(timeout):
        hasher.update(chunk)
        out.write(chunk)
    return hasher


def check_request(dest, name_prefix, compression, compression_level, retention, forbidden_dirs=(_files.MANIFESTS_DIR,)):
    """Validate the parameters before any connection is made; return (absolute dest, compression level)."""
    if compression not in SUFFIXES:
        raise InputError("unknown compression %r: use xz, zstd or none" % (compression,))
    if compression == "zstd":
        _require_zstd()
    level = check_level(compression, compression_level)
    validate_prefix(name_prefix)
    if retention < 0:
        raise InputError("retention must be 0 (keep every snapshot) or a positive number, got %d" % retention)
    dest = os.path.abspath(dest)
    try:
        _files.check_backup_dir(dest, forbidden_dirs)
    except InputError as err:
        raise InputError("dest is not allowed: %s" % err.msg)
    if os.path.exists(dest) and not os.path.isdir(dest):
        raise InputError("dest %s exists and is not a directory" % dest)
    return dest, level


def take_snapshot(source, dest, name_prefix="etcd-snapshot", compression="xz", retention=7,
                  etcdutl_path=None, snapshot_timeout=600, check_mode=False, forbidden_dirs=(_files.MANIFESTS_DIR,),
                  stamp=None, compression_level=None):
    """Snapshot ``source`` into ``dest`` and rotate; ``source`` is a dict(name, client, is_leader, endpoint).

    Returns the module result (without ``changed``).
    """
    dest, level = check_request(dest, name_prefix, compression, compression_level, retention, forbidden_dirs)
    warnings = []
    etcdutl = find_etcdutl(etcdutl_path, warnings)

    stamp = stamp or _files.timestamp()
    foreign = []
    existing = existing_snapshots(dest, name_prefix, foreign)
    removed = verified_removals(existing, retention, foreign)
    partials = stale_partials(dest, name_prefix, older_than=snapshot_timeout + 300)
    path = snapshot_name(dest, name_prefix, compression, stamp)
    result = dict(path=path, member=source["name"], member_was_leader=source["is_leader"],
                  cluster_id=source.get("cluster_id"), removed=removed + partials,
                  kept_foreign=sorted(foreign), compression=compression, compression_level=level, warnings=warnings)
    if foreign:
        warnings.append("kept %d file(s) in %s that fit the snapshot name but that this module did not write (no "
                        "matching %s sidecar): %s. Retention never deletes them; remove them yourself when no longer needed."
                        % (len(foreign), dest, SIDECAR_SUFFIX, ", ".join(os.path.basename(f) for f in sorted(foreign))))
    if check_mode:
        return result

    if not os.path.isdir(dest):
        os.makedirs(dest, mode=0o700)
    # Abandoned temp files first: they may hold the disk space this run needs.
    for leftover in partials:
        os.unlink(leftover)
    started = time.monotonic()
    lock = RunLock(dest, path)
    raw_tmp = lock.base + ".part"
    packed_tmp = None
    try:
        fd = os.open(raw_tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            hasher = stream_snapshot(source["client"], out, snapshot_timeout)
            out.flush()
            os.fsync(out.fileno())
        hasher.check("snapshot from member %s" % source["name"])
        status = _read_bolt(raw_tmp, hasher.size - CHECKSUM_SIZE, "from member %s" % source["name"])
        result.update(revision=status["revision"], key_count=status["total_key"], db_size=hasher.size - CHECKSUM_SIZE,
                      db_sha256=hasher.body.hexdigest(), status_source="python")
        if etcdutl:
            checked = etcdutl_status(etcdutl, raw_tmp)
            # etcdutl 3.5 counts the entries of every bucket, 3.6 the live keys (bolt.py).
            if checked["revision"] != status["revision"] or checked["total_key"] not in (status["total_key"],
                                                                                         status["live_keys"]):
                raise OperationFailed("etcdutl and the built-in reader disagree on snapshot %s (revision %s/%s, keys %s/%s)"
                                      % (path, checked["revision"], status["revision"], checked["total_key"], status["total_key"]))
            result.update(status_source="etcdutl", etcdutl_hash=checked["hash"])

        if compression == "none":
            sha256 = hasher.whole.hexdigest()
            final_tmp = raw_tmp
        else:
            packed_tmp = lock.base + ".packed"
            sha256 = compress_file(raw_tmp, packed_tmp, compression, level)
            os.unlink(raw_tmp)
            raw_tmp = None
            final_tmp = packed_tmp
        size = os.path.getsize(final_tmp)
        os.rename(final_tmp, path)
        raw_tmp = packed_tmp = None
        # Written after the snapshot: a run killed in between leaves a snapshot retention will not
        # delete (reported in kept_foreign), never a sidecar vouching for a file that is not there.
        _files.atomic_write(sidecar_path(path), sidecar_data(path, size, sha256, dict(
            revision=result["revision"], key_count=result["key_count"], db_sha256=result["db_sha256"],
            member=source["name"], cluster_id=source.get("cluster_id"), compression=compression,
            created=stamp)), mode=0o600)
    finally:
        for leftover in (raw_tmp, packed_tmp):
            if leftover and os.path.exists(leftover):
                os.unlink(leftover)
        lock.release()

    for old in removed:
        os.unlink(old)
        if os.path.exists(sidecar_path(old)):
            os.unlink(sidecar_path(old))
    if removed or partials:
        _files.fsync_dir(dest)
    result.update(size=os.path.getsize(path), sha256=sha256, duration_s=round(time.monotonic() - started, 3))
    return result


def run_snapshot(endpoints, ca_cert, client_cert, client_key, command_timeout=10, check_mode=False, dest=None,
                 name_prefix="etcd-snapshot", compression="xz", compression_level=None, retention=7, member=None,
                 etcdutl_path=None, snapshot_timeout=600):
    """The etcd_snapshot module's backend: check the request, pick the source member, snapshot, rotate.

    Parameters are checked before any connection is made.  An operating-system error on ``dest``
    (read-only, full, permission denied) is told as what failed on which path.
    """
    check_request(dest, name_prefix, compression, compression_level, retention)
    try:
        with Cluster(endpoints, ca_cert, client_cert, client_key, command_timeout) as cluster:
            source = choose_source(cluster, member_name=member)
            result = take_snapshot(source, dest, name_prefix=name_prefix, compression=compression,
                                   retention=retention, etcdutl_path=etcdutl_path, compression_level=compression_level,
                                   snapshot_timeout=snapshot_timeout, check_mode=check_mode)
    except OSError as exc:
        raise _files.FileOperationError("write a snapshot into", dest, exc)
    result["skipped_members"] = source["skipped"]
    return result
