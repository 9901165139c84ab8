"""The recover playbook on real etcd members run as static pods by kubelet doubles."""
import json
import os
import signal
import time

import pytest

from tests.lab.ansible_run import run_playbook
from tests.lab.recovery import PLAYBOOK, destroy, write_inventory
from tests.lab.static_pods import KubeletEtcdLab
from tests.lab.trees import tree_digest
from tests.lab.workload import ConcurrentWriter


@pytest.fixture
def lab(tmp_path):
    with KubeletEtcdLab(str(tmp_path / "lab"), size=3, time_scale=0.2) as running:
        yield running


def member_list(lab, endpoints=None):
    out = lab.etcdctl("member", "list", "-w", "json", endpoints=endpoints).stdout
    return json.loads(out)["members"]


def wait_until(check, timeout=60, what="condition"):
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s" % what)
        time.sleep(0.5)


def test_healthy_cluster_changes_nothing(lab, tmp_path):
    inventory = write_inventory(lab, tmp_path)
    before = {m.name: tree_digest(m.manifests_dir) for m in lab.members}
    run = run_playbook(PLAYBOOK, inventory=inventory)
    assert run.rc == 0, run.output[-3000:]
    assert [r for r in run.results if r.get("changed")] == []
    assert "recovery: none" in run.output
    assert {m.name: tree_digest(m.manifests_dir) for m in lab.members} == before


def test_one_lost_member_is_replaced_learner_first_while_a_writer_runs(lab, tmp_path):
    survivors = [m.client_url for m in lab.members if m.name != "cp2"]
    with ConcurrentWriter(survivors, lab.ca_cert, lab.client_cert, lab.client_key, interval=0.01) as writer:
        destroy(lab, "cp2")
        wait_until(lambda: not lab.member("cp2").healthy(), what="cp2 unhealthy")
        run = run_playbook(PLAYBOOK, inventory=write_inventory(lab, tmp_path))
    assert run.rc == 0, run.output[-4000:]
    assert "recovery: member" in run.output
    members = member_list(lab)
    assert sorted(m["name"] for m in members) == ["cp1", "cp2", "cp3"]
    assert not any(m.get("isLearner") for m in members)
    lab.wait_healthy()
    # every acknowledged write is there, with its value, read from the replaced member
    written = {}
    for stats in writer.stats:
        written.update(stats.written)
    assert len(written) > 20
    client = lab.client(lab.member("cp2"))
    try:
        for key, value in written.items():
            got, _meta = client.get(key)
            assert got is not None and got.decode() == value, key
    finally:
        client.close()
    # the evidence was kept before anything changed: cp2's manifest as it was, and the sick member
    bundles = sorted(os.listdir(str(tmp_path / "evidence")))
    assert len(bundles) == 1 and bundles[0].startswith("cplane-evidence-"), bundles
    import tarfile
    with tarfile.open(str(tmp_path / "evidence" / bundles[0])) as tar:
        assert "cp2/manifests/etcd.yaml" in tar.getnames()
        etcd = json.loads(tar.extractfile("cp1/documents/etcd.json").read())
        assert [m["healthy"] for m in etcd["members"] if m["name"] == "cp2"] in ([False], [])
    # the old data directory was kept aside, not deleted
    parent = os.path.dirname(lab.member("cp2").data_dir)
    assert [n for n in os.listdir(parent) if n.startswith("etcd.")], os.listdir(parent)
    # a second run finds a healthy cluster
    again = run_playbook(PLAYBOOK, inventory=write_inventory(lab, tmp_path))
    assert again.rc == 0 and "recovery: none" in again.output


def test_quorum_lost_is_restored_from_the_snapshot_in_place(tmp_path):
    """On etcd 3.5.latest with its etcdutl: the revision is bumped and a watcher from before sees a compaction."""
    import subprocess
    from tests.lab.binaries import lab_binary, latest_etcd
    version = latest_etcd("3.5")
    with KubeletEtcdLab(str(tmp_path / "lab"), size=3, time_scale=0.2, etcd_version=version) as lab:
        for i in range(50):
            lab.etcdctl("put", "/before/%03d" % i, "v%d" % i)
        snapshots = tmp_path / "snapshots"
        snapshots.mkdir()
        snap = str(snapshots / "etcd-snapshot-20261201T000000Z.db")
        lab.etcdctl("snapshot", "save", snap, endpoints=lab.endpoints[:1])
        lab.etcdctl("put", "/after/lost", "x")
        seen = json.loads(lab.etcdctl("get", "/after/lost", "-w", "json").stdout)["header"]["revision"]
        destroy(lab, "cp2")
        destroy(lab, "cp3")
        inventory = write_inventory(lab, tmp_path, control_plane_recovery_etcdutl_path=lab_binary("etcdutl", version))
        run = run_playbook(PLAYBOOK, inventory=inventory)
        assert run.rc == 0, run.output[-4000:]
        assert "recovery: quorum" in run.output
        lab.wait_healthy()
        restored = [r["result"] for r in run.task("Quorum | restore the snapshot")]
        assert len(restored) == 3 and all(r["bumped_to"] == r["revision"] + 1000000000 for r in restored)
        now = json.loads(lab.etcdctl("get", "/before/000", "-w", "json").stdout)["header"]["revision"]
        assert now >= restored[0]["bumped_to"] > seen
        # A watcher that had seen revision `seen` (its watch was cancelled when quorum went: "no leader")
        # resumes from seen + 1, as informers do: etcd answers that the revision was compacted, instead of
        # replaying an older store as if it were new.
        cmd = [lab_binary("etcdctl", version), "--endpoints=%s" % ",".join(lab.endpoints), "--cacert=%s" % lab.ca_cert,
               "--cert=%s" % lab.client_cert, "--key=%s" % lab.client_key, "watch", "/", "--prefix",
               "--rev=%d" % (seen + 1)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=False)
            output = proc.stdout + proc.stderr
        except subprocess.TimeoutExpired as exc:
            output = "%s%s" % (exc.stdout or "", exc.stderr or "")
        assert "compacted" in output, output
        members = member_list(lab)
        assert sorted(m["name"] for m in members) == ["cp1", "cp2", "cp3"]
        out = lab.etcdctl("get", "/before/", "--prefix", "--keys-only").stdout.split()
        assert len(out) == 50
        assert lab.etcdctl("get", "/after/lost").stdout == ""
        # cp1's old data, which holds the write made after the snapshot, was kept aside
        parent = os.path.dirname(lab.member("cp1").data_dir)
        aside = [n for n in os.listdir(parent) if n.startswith("etcd.") and not n.endswith(".json")]
        assert len(aside) == 1
        with open(os.path.join(parent, aside[0], "member", "snap", "db"), "rb") as handle:
            assert b"/after/lost" in handle.read()
        again = run_playbook(PLAYBOOK, inventory=inventory)
        assert again.rc == 0 and "recovery: none" in again.output


def test_quorum_mode_on_a_healthy_cluster_is_refused(lab, tmp_path):
    before = {m.name: tree_digest(m.manifests_dir) for m in lab.members}
    run = run_playbook(PLAYBOOK, inventory=write_inventory(lab, tmp_path, control_plane_recovery_mode="quorum"))
    assert run.rc != 0 and "etcd has quorum" in run.output
    assert {m.name: tree_digest(m.manifests_dir) for m in lab.members} == before


def run_until_killed(inventory, task_name, tmp_path, timeout=600):
    """Start ansible-playbook and SIGKILL it (its whole process group) once a task named ``task_name`` ends."""
    import subprocess
    import sys
    from tests.lab.ansible_run import ansible_env
    results = str(tmp_path / ("killed-%d.jsonl" % time.monotonic_ns()))
    env = ansible_env({"CPLANE_RESULTS": results})
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", inventory, PLAYBOOK]
    log = open(results + ".log", "w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                with open(results + ".log") as output:
                    raise AssertionError("the playbook ended before task %r:\n%s" % (task_name, output.read()[-3000:]))
            if os.path.exists(results):
                with open(results) as handle:
                    if any(task_name in (json.loads(line).get("task") or "") for line in handle if line.strip()):
                        os.killpg(proc.pid, signal.SIGKILL)
                        proc.wait()
                        return
            time.sleep(0.05)
        raise AssertionError("task %r never ran" % task_name)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.parametrize("mode", ["member", "quorum"])
def test_killed_at_each_step_then_run_again_finishes(lab, tmp_path, mode):
    if mode == "member":
        steps = ["Member | remove the lost member", "Member | keep the old data directory aside",
                 "Member | add the member back as a learner", "Member | start it as a member"]
    else:
        snapshots = tmp_path / "snapshots"
        snapshots.mkdir()
        for i in range(20):
            lab.etcdctl("put", "/before/%03d" % i, "v%d" % i)
        lab.etcdctl("snapshot", "save", str(snapshots / "etcd-snapshot-20261201T000000Z.db"), endpoints=lab.endpoints[:1])
        steps = ["Quorum | stop etcd", "Quorum | restore the snapshot", "Join existing | drop the old"]
    inventory = write_inventory(lab, tmp_path, control_plane_recovery_bump_revision=0)
    for step in steps:
        if mode == "member":
            destroy(lab, "cp2")
            wait_until(lambda: not lab.member("cp2").healthy(), what="cp2 unhealthy")
        else:
            destroy(lab, "cp2")
            destroy(lab, "cp3")
        run_until_killed(inventory, step, tmp_path)
        finished = run_playbook(PLAYBOOK, inventory=inventory)
        assert finished.rc == 0, "after a kill at %r:\n%s" % (step, finished.output[-4000:])
        lab.wait_healthy()
        members = member_list(lab)
        assert sorted(m["name"] for m in members) == ["cp1", "cp2", "cp3"], step
        assert not any(m.get("isLearner") for m in members), step
        if mode == "quorum":
            assert len(lab.etcdctl("get", "/before/", "--prefix", "--keys-only").stdout.split()) == 20, step


def test_probe_mode_replaces_the_seeds_runaway_probe_and_keeps_a_backup(tmp_path):
    with KubeletEtcdLab(str(tmp_path / "lab"), size=3, time_scale=0.2, probe="seed") as lab:
        manifest = lab.manifest_path("cp1")
        assert "get foo" in open(manifest).read()
        inventory = write_inventory(lab, tmp_path, control_plane_recovery_mode="probe",
                                    control_plane_recovery_backup_dir=str(tmp_path / "backups"))
        run = run_playbook(PLAYBOOK, inventory=inventory)
        assert run.rc == 0, run.output[-4000:]
        assert "recovery: probe (requested)" in run.output
        text = open(manifest).read()
        # kubeadm's probes for etcd 3.4-3.5.10 (the lab's etcd is 3.5.1): HTTP on the metrics URL
        assert "get foo" not in text and "path: /health?exclude=NOSPACE&serializable=true" in text
        assert "path: /health?serializable=false" in text
        backups = [os.path.join(d, f) for d, _s, files in os.walk(str(tmp_path / "backups")) for f in files]
        assert backups and any("get foo" in open(b).read() for b in backups)
        lab.wait_healthy()
