"""Naming, retention planning and trailer checks of the snapshot backend (no processes)."""
import hashlib
import os

import pytest

from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import InputError, OperationFailed
from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd import snapshot


@pytest.mark.parametrize("name,own", [
    ("etcd-snapshot-20260101T023000Z.db.xz", True),
    ("etcd-snapshot-20260101T023000Z-2.db.zst", True),
    ("etcd-snapshot-20260101T023000Z.db", True),
    ("etcd-snapshot-20260101T023000Z.db.xz.bak", False),
    ("etcd-snapshot-manual.db", False),
    ("etcd-snapshot-prod-20260101T023000Z.db.xz", False),
    ("xetcd-snapshot-20260101T023000Z.db.xz", False),
    (".etcd-snapshot-20260101T023000Z.db.xz.part", False),
])
def test_name_pattern_matches_only_own_files(name, own):
    assert bool(snapshot.name_pattern("etcd-snapshot").match(name)) is own


def own_file(path, data=b"x"):
    """A file as etcd_snapshot leaves it: the snapshot and its sidecar."""
    path.write_bytes(data)
    path.with_name(path.name + ".json").write_bytes(
        snapshot.sidecar_data(str(path), len(data), hashlib.sha256(data).hexdigest()))


def test_existing_sorted_by_stamp_then_sequence_and_plan_keeps_newest(tmp_path):
    names = ["p-20260102T000000Z.db.xz", "p-20260101T000000Z-1.db.xz", "p-20260101T000000Z.db.zst",
             "p-20251231T235959Z.db"]
    for name in names:
        own_file(tmp_path / name)
    (tmp_path / "unrelated.txt").write_bytes(b"x")
    os.symlink(str(tmp_path / "unrelated.txt"), str(tmp_path / "p-20200101T000000Z.db.xz"))
    found = [os.path.basename(p) for p in snapshot.existing_snapshots(str(tmp_path), "p")]
    assert found == ["p-20251231T235959Z.db", "p-20260101T000000Z.db.zst", "p-20260101T000000Z-1.db.xz",
                     "p-20260102T000000Z.db.xz"]
    existing = snapshot.existing_snapshots(str(tmp_path), "p")
    assert snapshot.plan_retention(existing, 2) == existing[:3]
    assert snapshot.plan_retention(existing, 10) == []
    assert snapshot.plan_retention(existing, 0) == []


def test_same_second_gets_a_sequence_number(tmp_path):
    (tmp_path / "p-20260101T000000Z.db.zst").write_bytes(b"x")
    (tmp_path / "p-20260101T000000Z-1.db.xz.json").write_bytes(b"{}")  # a sidecar left alone counts as taken
    path = snapshot.snapshot_name(str(tmp_path), "p", "xz", "20260101T000000Z")
    assert os.path.basename(path) == "p-20260101T000000Z-2.db.xz"


@pytest.mark.parametrize("prefix", ["", "../x", "a/b", "-lead", "x*", "a b"])
def test_unsafe_prefixes_are_refused(prefix):
    with pytest.raises(InputError, match="name_prefix"):
        snapshot.validate_prefix(prefix)


def write_with_trailer(path, body):
    path.write_bytes(body + hashlib.sha256(body).digest())


def test_trailer_checked_before_the_bolt_file_is_read(tmp_path):
    good = tmp_path / "notbolt.db"
    write_with_trailer(good, b"\0" * 8192)
    with pytest.raises(OperationFailed, match="bolt meta"):
        snapshot.verify_snapshot(str(good))
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"\0" * 8192 + b"\1" * 32)
    with pytest.raises(OperationFailed, match="sha256"):
        snapshot.verify_snapshot(str(bad))
    plain = tmp_path / "member.db"
    plain.write_bytes(b"\0" * 8192)
    with pytest.raises(OperationFailed, match="trailer"):
        snapshot.verify_snapshot(str(plain))


def test_trailer_hash_is_independent_of_chunking():
    body = os.urandom(4096 * 3)
    stream = body + hashlib.sha256(body).digest()
    for size in (1, 7, 31, 32, 33, 4096, len(stream)):
        hasher = snapshot._TrailerHash()
        for i in range(0, len(stream), size):
            hasher.update(stream[i:i + size])
        hasher.check("test")
        assert hasher.whole.hexdigest() == hashlib.sha256(stream).hexdigest()


def test_compression_levels_default_fast_and_are_range_checked():
    assert snapshot.check_level("xz", None) == 1
    assert snapshot.check_level("zstd", None) == 3
    assert snapshot.check_level("none", 5) is None
    assert snapshot.check_level("xz", 0) == 0
    for compression, level in (("xz", 10), ("xz", -1), ("zstd", 0), ("zstd", 23)):
        with pytest.raises(InputError, match="compression_level"):
            snapshot.check_level(compression, level)


def test_only_stale_own_partials_are_found(tmp_path):
    names = [".p-20260101T000000Z.db.xz.abc123_x.part", ".p-20260101T000000Z-1.db.xz.k9.packed",
             ".p-20260101T000000Z.db.xz.fresh.part", ".q-20260101T000000Z.db.xz.abc.part",
             "p-20260101T000000Z.db.xz.abc.part", ".p-notes.part", ".verify.abc.db.tmp"]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    old = 1_000_000
    for name in names:
        if "fresh" not in name:
            os.utime(str(tmp_path / name), (old, old))
    found = [os.path.basename(p) for p in snapshot.stale_partials(str(tmp_path), "p", older_than=900)]
    # without a lock file (an older release's run) age decides
    assert found == [".p-20260101T000000Z-1.db.xz.k9.packed", ".p-20260101T000000Z.db.xz.abc123_x.part"]


def test_only_files_a_sidecar_vouches_for_are_ours(tmp_path):
    own_file(tmp_path / "p-20260101T000000Z.db.xz", b"ours")
    (tmp_path / "p-20260101T000001Z.db").write_bytes(b"operator's etcdctl snapshot save")
    own_file(tmp_path / "p-20260101T000002Z.db.xz", b"ours too")
    (tmp_path / "p-20260101T000002Z.db.xz").write_bytes(b"overwritten")       # other size
    own_file(tmp_path / "p-20260101T000003Z.db.xz", b"same size")
    (tmp_path / "p-20260101T000003Z.db.xz").write_bytes(b"SAME SIZE")         # same size, other content
    (tmp_path / "p-20260101T000004Z.db").write_bytes(b"y")
    (tmp_path / "p-20260101T000004Z.db.json").write_bytes(b'{"file": "p-20260101T000004Z.db", "size": 1}')
    own_file(tmp_path / "p-20260101T000005Z.db.xz", b"newest")
    foreign = []
    existing = snapshot.existing_snapshots(str(tmp_path), "p", foreign)
    assert [os.path.basename(p) for p in existing] == ["p-20260101T000000Z.db.xz", "p-20260101T000003Z.db.xz",
                                                       "p-20260101T000005Z.db.xz"]
    assert [os.path.basename(p) for p in foreign] == ["p-20260101T000001Z.db", "p-20260101T000002Z.db.xz",
                                                      "p-20260101T000004Z.db"]
    # retention=1 with one new file: all three would go, but the sha256 rules the changed one out
    removals = snapshot.verified_removals(existing, 1, foreign)
    assert [os.path.basename(p) for p in removals] == ["p-20260101T000000Z.db.xz", "p-20260101T000005Z.db.xz"]
    assert "p-20260101T000003Z.db.xz" in [os.path.basename(p) for p in foreign]


def test_abandoned_run_files_are_found_at_once_and_a_live_run_is_left_alone(tmp_path):
    dest = str(tmp_path)
    live = snapshot.RunLock(dest, os.path.join(dest, "p-20260101T000000Z.db.xz"))
    open(live.base + ".part", "wb").write(b"being written")
    dead_lock = os.path.join(dest, ".p-20260101T000001Z.db.xz.dead1.lock")
    for suffix in (".lock", ".part", ".packed"):
        open(dead_lock[:-len(".lock")] + suffix, "wb").write(b"x")
    found = [os.path.basename(p) for p in snapshot.stale_partials(dest, "p", older_than=900)]
    assert found == [".p-20260101T000001Z.db.xz.dead1.part", ".p-20260101T000001Z.db.xz.dead1.packed",
                     ".p-20260101T000001Z.db.xz.dead1.lock"]
    live.release()
    assert not os.path.exists(live.path)
