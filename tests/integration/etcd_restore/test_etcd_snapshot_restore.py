"""etcd_snapshot_restore on a real etcd member: verify, restore beside, swap, keep the old data."""
import json
import os
import shutil

import pytest

from tests.lab.ansible_run import run_module
from tests.lab.binaries import etcd_binary
from tests.lab.trees import tree_digest


def keys(lab):
    out = lab.etcdctl("get", "k", "--prefix", "-w", "json").stdout
    return sorted(__import__("base64").b64decode(kv["key"]).decode() for kv in json.loads(out).get("kvs", []))


def snapshot_of(lab, tmp_path):
    path = str(tmp_path / "plain.db")
    lab.etcdctl("snapshot", "save", path)
    return path


def restore_args(lab, src, **extra):
    member = lab.members[0]
    args = dict(src=src, data_dir=member.data_dir, name=member.name,
                initial_cluster="%s=%s" % (member.name, member.peer_url),
                initial_advertise_peer_urls=member.peer_url, initial_cluster_token="restored",
                etcdutl_path=etcd_binary("etcdutl"))
    args.update(extra)
    return args


def stop(lab):
    lab._terminate(lab.members[0])


def start(lab):
    member = lab.members[0]
    lab.launch(member, lab.initial_cluster(lab.members), "existing")
    lab.wait_healthy([member])


def test_restore_moves_the_old_directory_aside_and_is_idempotent(etcd1_cluster, tmp_path):
    lab = etcd1_cluster
    for i in range(20):
        lab.etcdctl("put", "k%02d" % i, "v%d" % i)
    src = snapshot_of(lab, tmp_path)
    lab.etcdctl("put", "k-after-snapshot", "x")
    stop(lab)
    member = lab.members[0]
    before = tree_digest(member.data_dir)

    planned = run_module("etcd_snapshot_restore", restore_args(lab, src, bump_revision=0), check=True)
    assert not planned["failed"], planned["msg"]
    assert planned["changed"] is True and tree_digest(member.data_dir) == before
    assert not os.path.exists(member.data_dir + ".cplane-restoring")

    result = run_module("etcd_snapshot_restore", restore_args(lab, src, bump_revision=0))
    assert not result["failed"], result["msg"]
    assert result["changed"] is True and result["keys"] >= 20 and result["revision"] >= 21
    aside = result["moved_aside"]
    assert aside and tree_digest(aside) == before  # the old data, untouched
    # run again (a re-run of a recovery): the data directory still holds what this snapshot restored
    restored_digest = tree_digest(member.data_dir)
    again = run_module("etcd_snapshot_restore", restore_args(lab, src, bump_revision=0))
    assert not again["failed"] and again["changed"] is False and again["moved_aside"] == aside
    assert tree_digest(member.data_dir) == restored_digest
    start(lab)
    restored = keys(lab)
    assert restored == ["k%02d" % i for i in range(20)]  # everything up to the snapshot, nothing after

    # once etcd has run on it, the same snapshot is a new restore (a second loss of quorum), not a no-op
    stop(lab)
    later = run_module("etcd_snapshot_restore", restore_args(lab, src, bump_revision=0))
    assert not later["failed"] and later["changed"] is True and later["moved_aside"] != aside


def test_refusals_touch_nothing(etcd1_cluster, tmp_path):
    lab = etcd1_cluster
    lab.etcdctl("put", "k1", "v1")
    src = snapshot_of(lab, tmp_path)
    member = lab.members[0]
    # etcd still runs on the data directory: refused.
    running = run_module("etcd_snapshot_restore", restore_args(lab, src, bump_revision=0))
    assert running["failed"] and "etcd is running on" in running["msg"]
    stop(lab)
    before = tree_digest(member.data_dir)
    # A corrupt snapshot: refused before anything is touched.
    corrupt = str(tmp_path / "corrupt.db")
    shutil.copy(src, corrupt)
    with open(corrupt, "r+b") as handle:
        handle.seek(8192)
        handle.write(b"\xff" * 64)
    bad = run_module("etcd_snapshot_restore", restore_args(lab, corrupt, bump_revision=0))
    assert bad["failed"] and "corrupt.db" in bad["msg"] and "Traceback" not in bad["_stdout"]
    # etcdutl 3.5.1 cannot bump the revision: a clear refusal, not an un-bumped restore.
    old = run_module("etcd_snapshot_restore", restore_args(lab, src))
    assert old["failed"] and "--bump-revision" in old["msg"] and "3.5.10" in old["msg"]
    # A name missing from initial_cluster.
    wrong = run_module("etcd_snapshot_restore", restore_args(lab, src, bump_revision=0, name="cp9"))
    assert wrong["failed"] and "no entry for name 'cp9'" in wrong["msg"]
    assert tree_digest(member.data_dir) == before
    assert sorted(os.listdir(os.path.dirname(member.data_dir))) == ["etcd"]


def test_a_run_killed_between_the_renames_is_finished_by_the_next(etcd1_cluster, tmp_path, monkeypatch):
    from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd import restore
    lab = etcd1_cluster
    lab.etcdctl("put", "k1", "v1")
    src = snapshot_of(lab, tmp_path)
    stop(lab)
    args = restore_args(lab, src, bump_revision=0)
    member = lab.members[0]
    real_rename = os.rename
    calls = []

    def dies_after_first_rename(a, b):
        real_rename(a, b)
        calls.append((a, b))
        if a == member.data_dir:
            raise KeyboardInterrupt("killed")  # the process dies here: data_dir is gone, the new one not in place

    monkeypatch.setattr(restore.os, "rename", dies_after_first_rename)
    with pytest.raises(KeyboardInterrupt):
        restore.restore_snapshot(check_mode=False, force=False, mark_compacted=True, skip_hash_check=False, **args)
    assert not os.path.exists(member.data_dir) and os.path.isdir(member.data_dir + ".cplane-restoring")
    monkeypatch.setattr(restore.os, "rename", real_rename)

    finished = run_module("etcd_snapshot_restore", args)
    assert not finished["failed"], finished["msg"]
    assert finished["resumed"] is True and finished["changed"] is True
    assert os.path.isdir(member.data_dir) and os.path.isdir(finished["moved_aside"])
    start(lab)
    assert keys(lab) == ["k1"]


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root (CI runs as root)")
def test_a_filesystem_without_room_is_refused_before_anything_is_written(etcd1_cluster, tmp_path):
    import subprocess
    lab = etcd1_cluster
    for i in range(40):
        lab.etcdctl("put", "big%02d" % i, "x" * 60000)
    src = snapshot_of(lab, tmp_path)
    assert os.path.getsize(src) > 2 * 1024 * 1024
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(small)], check=True)
    try:
        args = restore_args(lab, src, bump_revision=0, data_dir=str(small / "etcd"))
        result = run_module("etcd_snapshot_restore", args)
        assert result["failed"] and "not enough space to restore into %s" % small in result["msg"]
        assert os.listdir(str(small)) == []
    finally:
        subprocess.run(["umount", str(small)], check=False)


@pytest.mark.parametrize("minor", ["3.5", "3.6"])
def test_bumped_revision_makes_a_resumed_watcher_see_a_compaction_not_older_data(tmp_path, minor):
    """etcdutl 3.5.10+/3.6 --bump-revision --mark-compacted: time never goes backwards for watchers."""
    import subprocess
    from tests.lab.binaries import lab_binary, latest_etcd
    from tests.lab.etcd_cluster import EtcdLab
    version = latest_etcd(minor)
    with EtcdLab(str(tmp_path / "lab"), size=1, etcd_version=version) as lab:
        for i in range(10):
            lab.etcdctl("put", "k%02d" % i, "v%d" % i)
        src = snapshot_of(lab, tmp_path)
        for i in range(30):
            lab.etcdctl("put", "after", str(i))   # revisions a watcher has seen, lost with the restore
        seen = json.loads(lab.etcdctl("get", "after", "-w", "json").stdout)["header"]["revision"]
        stop(lab)
        args = restore_args(lab, src, etcdutl_path=lab_binary("etcdutl", version), bump_revision=1000000)
        result = run_module("etcd_snapshot_restore", args)
        assert not result["failed"], result["msg"]
        assert result["bumped_to"] == result["revision"] + 1000000
        start(lab)
        now = json.loads(lab.etcdctl("get", "k00", "-w", "json").stdout)["header"]["revision"]
        assert now >= result["bumped_to"] > seen
        assert keys(lab) == ["k%02d" % i for i in range(10)]
        # A watcher that had seen revision `seen` resumes from seen + 1: etcd says it was compacted.
        cmd = [lab_binary("etcdctl", version), "--endpoints=%s" % lab.endpoints[0], "--cacert=%s" % lab.ca_cert,
               "--cert=%s" % lab.client_cert, "--key=%s" % lab.client_key, "watch", "after", "--rev=%d" % (seen + 1)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=15, check=False)
            output = proc.stdout + proc.stderr
        except subprocess.TimeoutExpired as exc:
            output = (exc.stdout or b"").decode() + (exc.stderr or b"").decode()
        assert "compacted" in output, output


def test_a_snapshot_of_another_cluster_or_changed_since_is_refused(etcd1_cluster, tmp_path):
    lab = etcd1_cluster
    lab.etcdctl("put", "k1", "v1")
    taken = run_module("etcd_snapshot", lab.connection_args(dest=str(tmp_path / "snaps"), compression="none"))
    assert not taken["failed"], taken["msg"]
    cluster_id = taken["cluster_id"]
    assert cluster_id and json.load(open(taken["path"] + ".json"))["cluster_id"] == cluster_id
    stop(lab)
    member = lab.members[0]
    before = tree_digest(member.data_dir)
    other = run_module("etcd_snapshot_restore", restore_args(lab, taken["path"], bump_revision=0,
                                                             expected_cluster_id="0123abcd"))
    assert other["failed"] and "taken from etcd cluster %s, not from the expected cluster 0123abcd" % cluster_id \
        in other["msg"]
    assert tree_digest(member.data_dir) == before
    # the same file, changed after etcd_snapshot wrote it (a valid snapshot of the same cluster, later revision)
    tampered = str(tmp_path / "snaps" / "tampered.db")
    shutil.copy(taken["path"], tampered)
    shutil.copy(taken["path"] + ".json", tampered + ".json")
    sidecar = json.load(open(tampered + ".json"))
    sidecar["file"] = "tampered.db"
    json.dump(sidecar, open(tampered + ".json", "w"))
    with open(tampered, "ab") as handle:
        handle.write(b"x")
    changed = run_module("etcd_snapshot_restore", restore_args(lab, tampered, bump_revision=0))
    assert changed["failed"] and "changed since etcd_snapshot wrote it" in changed["msg"]
    assert tree_digest(member.data_dir) == before
    good = run_module("etcd_snapshot_restore", restore_args(lab, taken["path"], bump_revision=0,
                                                            expected_cluster_id="0x" + cluster_id.upper()))
    assert not good["failed"], good["msg"]
    assert good["changed"] is True and good["cluster_id"] == cluster_id
