"""etcd_snapshot against a real 3-member TLS etcd cluster, run through the ansible CLI.

Every case runs on each etcd the lab has (3.5.1, 3.5.latest, 3.6.latest: ``etcd_matrix``), the
snapshot restored and read back with that version's etcdutl, etcd and etcdctl; the cases about
files and arguments only, which the server never changes, run on one."""
import hashlib
import json
import os
import signal
import stat
import subprocess
import time

import pytest

from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import OperationFailed
from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd.snapshot import sidecar_data, verify_snapshot
from tests.integration.etcd_snapshot.conftest import decompress, etcdctl_get, etcdutl_status, restored_etcd
from tests.lab.ansible_run import BIN, ansible_env, run_module
from tests.lab.binaries import WHEEL_ETCD_VERSION, etcd_binary
from tests.lab.trees import tree_digest

pytestmark = pytest.mark.etcd_matrix
# Arguments and files only: the etcd version makes no difference.
ONE_ETCD = pytest.mark.etcd_matrix(WHEEL_ETCD_VERSION)


def snapshot(lab, dest, check=False, **args):
    result = run_module("etcd_snapshot", lab.connection_args(dest=str(dest), **args), check=check)
    assert not result["failed"], result.get("msg")
    return result


def test_snapshot_restores_into_a_working_etcd_with_every_key(lab, tmp_path):
    result = snapshot(lab, tmp_path / "snaps")
    path = result["path"]
    assert path.endswith(".db.xz") and os.path.basename(path).startswith("etcd-snapshot-")
    assert result["changed"] is True
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert result["size"] == os.path.getsize(path)
    assert result["member"] != lab.leader(), "a follower is preferred"
    assert result["revision"] >= 201 and result["key_count"] >= 200
    raw = decompress(path, str(tmp_path / "raw.db"))
    status = etcdutl_status(raw, lab.etcd_version)
    assert status["revision"] == result["revision"]
    # key_count is etcdutl 3.5's totalKey (entries of every bucket); etcdutl 3.6 counts live keys.
    assert status["totalKey"] == (200 if lab.etcd_version.startswith("3.6.") else result["key_count"])
    with restored_etcd(raw, str(tmp_path), lab.etcd_version) as endpoint:
        out = etcdctl_get(endpoint, lab.etcd_version, "/registry/demo/", "--prefix", "--keys-only")
        assert len([line for line in out.splitlines() if line]) == 200
        assert etcdctl_get(endpoint, lab.etcd_version, "/registry/demo/key-123", "--print-value-only").strip() == "value-123"


@pytest.mark.parametrize("compression,level,suffix", [("zstd", None, ".db.zst"), ("xz", 9, ".db.xz"), ("none", None, ".db")])
def test_other_compressions_decompress_to_a_valid_snapshot(lab, tmp_path, compression, level, suffix):
    args = dict(compression=compression)
    if level is not None:
        args["compression_level"] = level
    result = snapshot(lab, tmp_path, **args)
    assert result["path"].endswith(suffix)
    assert result["compression_level"] == (level if level is not None else {"zstd": 3, "none": None}[compression])
    raw = decompress(result["path"], str(tmp_path / "raw.bin"))
    assert etcdutl_status(raw, lab.etcd_version)["revision"] == result["revision"]
    assert verify_snapshot(result["path"])["revision"] == result["revision"]
    assert os.listdir(str(tmp_path)).count(os.path.basename(result["path"])) == 1


@ONE_ETCD
def test_retention_keeps_exactly_n_and_never_touches_foreign_files(lab, tmp_path):
    dest = tmp_path / "snaps"
    dest.mkdir()
    foreign = {
        "notes.txt": b"operator notes",
        "etcd-snapshot-manual.db": b"hand-made copy",
        "etcd-snapshot-20200101T000000Z.db.xz.bak": b"renamed backup",
        "other-cluster-20200101T000000Z.db.xz": b"other prefix",
        "etcd-snapshotX-20200101T000000Z.db.xz": b"near-miss prefix",
    }
    for name, data in foreign.items():
        (dest / name).write_bytes(data)
    own_old = ["etcd-snapshot-20200101T00000%dZ.db.xz" % i for i in range(3)]
    for name in own_old:
        own_file(dest / name, b"old snapshot")
    foreign.update({name + ".json": (dest / (name + ".json")).read_bytes() for name in own_old})

    first = snapshot(lab, dest, retention=2)
    assert sorted(os.path.basename(p) for p in first["removed"]) == own_old[:2]
    second = snapshot(lab, dest, retention=2)
    third = snapshot(lab, dest, retention=2)
    assert [os.path.basename(p) for p in second["removed"]] == [own_old[2]]
    assert third["removed"] == [first["path"]]

    own_now = sorted(n for n in os.listdir(str(dest)) if n not in foreign)
    assert own_now == sorted(os.path.basename(r["path"]) + s for r in (second, third) for s in ("", ".json"))
    for name, data in foreign.items():
        if not name.endswith(".json"):
            assert (dest / name).read_bytes() == data


def own_file(path, data):
    """A snapshot file as this module leaves it: the file and its sidecar."""
    path.write_bytes(data)
    path.with_name(path.name + ".json").write_bytes(
        sidecar_data(str(path), len(data), hashlib.sha256(data).hexdigest()))


def test_retention_never_deletes_an_operators_etcdctl_snapshot_with_a_matching_name(lab, tmp_path):
    dest = tmp_path / "snaps"
    dest.mkdir()
    operators = dest / "etcd-snapshot-20200101T000000Z.db"
    # etcdctl snapshot save needs exactly one endpoint
    lab.etcdctl("snapshot", "save", str(operators), endpoints=lab.endpoints[:1])
    assert operators.stat().st_size > 0
    operators_sha = hashlib.sha256(operators.read_bytes()).hexdigest()
    first = snapshot(lab, dest, retention=1)
    second = snapshot(lab, dest, retention=1)
    assert operators.exists() and hashlib.sha256(operators.read_bytes()).hexdigest() == operators_sha
    assert first["kept_foreign"] == [str(operators)] and second["kept_foreign"] == [str(operators)]
    assert second["removed"] == [first["path"]]
    # A file of ours that was overwritten since (same name, other content) is no longer ours either.
    third = snapshot(lab, dest, retention=5)
    with open(third["path"], "r+b") as handle:
        handle.seek(100)
        byte = handle.read(1)
        handle.seek(100)
        handle.write(bytes([byte[0] ^ 0xFF]))
    fourth = snapshot(lab, dest, retention=1)
    assert sorted(fourth["removed"]) == [second["path"]]
    assert sorted(fourth["kept_foreign"]) == sorted([str(operators), third["path"]])
    assert os.path.exists(third["path"])


@ONE_ETCD
def test_check_mode_reports_and_writes_nothing(lab, tmp_path):
    dest = tmp_path / "snaps"
    dest.mkdir()
    for i in range(3):
        own_file(dest / ("etcd-snapshot-20200101T00000%dZ.db.xz" % i), b"old %d" % i)
    before = tree_digest(str(tmp_path))
    result = snapshot(lab, dest, check=True, retention=2)
    assert result["changed"] is True
    assert len(result["removed"]) == 2 and result["member"]
    assert not os.path.exists(result["path"])
    assert tree_digest(str(tmp_path)) == before

    missing = tmp_path / "not-yet"
    snapshot(lab, missing, check=True)
    assert not missing.exists()


def test_corrupted_snapshot_files_are_detected(lab, tmp_path):
    raw = snapshot(lab, tmp_path / "raw", compression="none")["path"]
    good = verify_snapshot(raw)
    assert good["revision"] > 0 and good["total_key"] > 0

    flipped = str(tmp_path / "flipped.db")
    data = bytearray(open(raw, "rb").read())
    data[len(data) // 2] ^= 0xFF
    open(flipped, "wb").write(bytes(data))
    with pytest.raises(OperationFailed, match="sha256"):
        verify_snapshot(flipped)

    truncated = str(tmp_path / "truncated.db")
    open(truncated, "wb").write(bytes(data[:4096 * 3]))
    with pytest.raises(OperationFailed, match="not an etcd 3.5 snapshot"):
        verify_snapshot(truncated)

    packed = snapshot(lab, tmp_path / "xz")["path"]
    cut = str(tmp_path / "cut.db.xz")
    blob = open(packed, "rb").read()
    open(cut, "wb").write(blob[:len(blob) // 2])
    with pytest.raises(OperationFailed, match="does not decompress"):
        verify_snapshot(cut)
    assert sorted(os.listdir(str(tmp_path))) == sorted(["raw", "xz", "flipped.db", "truncated.db", "cut.db.xz"])


@ONE_ETCD
def test_bad_input_fails_cleanly_and_writes_nothing(lab, tmp_path):
    cases = [
        (dict(dest="/etc/kubernetes/manifests/snapshots"), "inside /etc/kubernetes/manifests"),
        (dict(dest=str(tmp_path / "d"), name_prefix="../escape"), "name_prefix"),
        (dict(dest=str(tmp_path / "d"), endpoints=["https://127.0.0.1:1"]), "127.0.0.1:1"),
        (dict(dest=str(tmp_path / "d"), client_key=str(tmp_path / "missing.key")), "missing.key"),
        (dict(dest=str(tmp_path / "d"), member="cp9"), "cp9"),
        (dict(dest=str(tmp_path / "d"), compression="zstd", compression_level=40), "compression_level"),
        (dict(dest=str(tmp_path / "d"), etcdutl_path=str(tmp_path)), "etcdutl_path"),
    ]
    for args, fragment in cases:
        result = run_module("etcd_snapshot", lab.connection_args(**args))
        assert result["failed"], args
        assert fragment in result["msg"], result["msg"]
        assert "Traceback" not in result["msg"]
    assert not (tmp_path / "d").exists()


def test_stopped_member_is_skipped_and_named(lab, tmp_path):
    follower = next(m.name for m in lab.members if m.name != lab.leader())
    lab.pause(follower)
    try:
        result = snapshot(lab, tmp_path, command_timeout=2)
    finally:
        lab.resume(follower)
    assert result["member"] != follower
    assert any(s.startswith(follower + ":") for s in result["skipped_members"]), result["skipped_members"]
    assert verify_snapshot(result["path"])["revision"] == result["revision"]


def test_single_member_cluster_snapshots_from_its_leader(etcd1_cluster, tmp_path):
    client = etcd1_cluster.client()
    for index in range(5):
        client.put("/registry/k%d" % index, "v")
    client.delete("/registry/k0")
    client.close()
    dest = tmp_path / "new" / "snaps"
    # etcdutl of the cluster's own version confirms the built-in reader (3.6 counts keys differently).
    result = snapshot(etcd1_cluster, dest, compression="zstd",
                      etcdutl_path=etcd_binary("etcdutl", etcd1_cluster.etcd_version))
    assert result["status_source"] == "etcdutl"
    assert result["member"] == "cp1" and result["member_was_leader"] is True
    assert stat.S_IMODE(os.stat(str(dest)).st_mode) == 0o700
    assert verify_snapshot(result["path"])["revision"] == result["revision"]


@ONE_ETCD
def test_lockless_temp_files_of_an_older_release_are_cleaned_once_stale(lab, tmp_path):
    stale = tmp_path / ".etcd-snapshot-20200101T000000Z.db.xz.a1b2c3.part"
    fresh = tmp_path / ".etcd-snapshot-20200101T000001Z.db.xz.d4e5f6.part"
    for path in (stale, fresh):
        path.write_bytes(b"half a snapshot")
    os.utime(str(stale), (1_000_000, 1_000_000))
    result = snapshot(lab, tmp_path)
    assert result["removed"] == [str(stale)]
    assert not stale.exists() and fresh.exists()
    name = os.path.basename(result["path"])
    assert sorted(os.listdir(str(tmp_path))) == sorted([fresh.name, name, name + ".json"])


def _lock_holder(dest):
    """Pid of the process holding the flock on the run's lock file in ``dest`` (from /proc/locks)."""
    lock = next(n for n in os.listdir(str(dest)) if n.endswith(".lock"))
    inode = os.stat(str(dest / lock)).st_ino
    with open("/proc/locks") as handle:
        for line in handle:
            fields = line.split()
            if fields[1] == "FLOCK" and fields[5].endswith(":%d" % inode):
                return int(fields[4])
    raise AssertionError("nobody holds %s" % lock)


def _wait_gone(pid, timeout=60):
    """SIGKILL lands when the process leaves the kernel (an fsync may hold it); a zombie holds no locks."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open("/proc/%d/stat" % pid) as handle:
                if handle.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return
        except OSError:
            return
        time.sleep(0.05)
    raise AssertionError("process %d survived SIGKILL" % pid)


def test_a_run_killed_mid_stream_is_cleaned_up_by_the_next_run_at_once(etcd1_cluster, tmp_path):
    lab = etcd1_cluster
    client = lab.client()
    for i in range(24):   # 24 MiB that do not compress: the stream and xz take long enough to be caught
        client.put("/registry/blob/%02d" % i, os.urandom(1024 * 1024))
    client.close()
    dest = tmp_path / "snaps"
    dest.mkdir()
    cmd = [os.path.join(BIN, "ansible"), "localhost", "-c", "local", "-i", "localhost,", "-m",
           "cplane.kubeadm.etcd_snapshot", "-a", json.dumps(lab.connection_args(dest=str(dest)))]
    proc = subprocess.Popen(cmd, env=ansible_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not [n for n in os.listdir(str(dest)) if n.endswith(".part") and os.path.getsize(str(dest / n)) > 0]:
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no temp file appeared"
            time.sleep(0.002)
        module_pid = _lock_holder(dest)
        os.kill(module_pid, signal.SIGKILL)   # the module itself, mid-stream: no cleanup code runs
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    _wait_gone(module_pid)
    left = sorted(os.listdir(str(dest)))
    assert [n for n in left if n.endswith(".part")] and [n for n in left if n.endswith(".lock")], left
    assert not [n for n in left if not n.startswith(".")], left   # no snapshot was completed

    result = snapshot(lab, dest, compression="zstd")   # immediately: no waiting for snapshot_timeout + 300 s
    assert sorted(os.path.basename(p) for p in result["removed"]) == left
    name = os.path.basename(result["path"])
    assert sorted(os.listdir(str(dest))) == [name, name + ".json"]
    assert verify_snapshot(result["path"])["revision"] == result["revision"]


def test_a_read_only_dest_fails_with_a_message_naming_it(lab, tmp_path):
    dest = tmp_path / "ro"
    dest.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(dest)], capture_output=True,
                             check=False)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN)")
    try:
        result = run_module("etcd_snapshot", lab.connection_args(dest=str(dest)))
    finally:
        subprocess.run(["umount", "-l", str(dest)], check=False)
    assert result["failed"] and "MODULE FAILURE" not in result["_stdout"] and "Traceback" not in result["_stdout"]
    assert result["msg"].startswith("cannot write a snapshot into %s: Read-only file system." % dest), result["msg"]
