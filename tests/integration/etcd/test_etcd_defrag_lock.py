"""etcd_defrag runs at once, a killed holder, etcdctl lock, and a defragment call that times out.

Real 3-member TLS etcd clusters; every module run goes through a real ``ansible`` process.
"""
import base64
import glob
import json
import os
import signal
import subprocess
import threading
import time

from tests.lab.ansible_run import run_module, start_module
from tests.lab.binaries import etcd_binary
from tests.lab.workload import fill, fragment

MIB = 1024 * 1024
LOCK = "/cplane.kubeadm/locks/etcd_defrag"
SMALL = dict(min_db_size=8 * MIB)


def lock_keys(lab, name=LOCK):
    """The keys under the lock prefix, oldest first, with their values."""
    out = json.loads(lab.etcdctl("get", "--prefix", name + "/", "-w", "json").stdout)
    kvs = sorted(out.get("kvs", []), key=lambda kv: kv["create_revision"])
    return [dict(key=base64.b64decode(kv["key"]).decode(), value=base64.b64decode(kv.get("value", "")).decode(),
                 lease=kv.get("lease")) for kv in kvs]


def wait_until(check, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("%s within %ss" % (what, timeout))


def defragmented(result):
    return sorted(m["name"] for m in result["members"] if m["action"] == "defragmented")


def test_two_runs_started_together_defragment_each_member_once(etcd3_cluster):
    lab = etcd3_cluster
    fragment(lab, 16)
    names = sorted(m.name for m in lab.members)
    # two nodes' timers firing at once: two ansible processes started together (a run lasts >= 6 s:
    # two 3 s pauses, longer than any start-up jitter between them)
    runs = [start_module("etcd_defrag", lab.connection_args(pause_seconds=3, **SMALL)) for _run in range(2)]
    first, second = [run.wait(timeout=300) for run in runs]
    for result in (first, second):
        assert not result["failed"], result.get("msg")
    # exactly one of them defragmented, each member once; the other waited for it and found nothing to do
    assert sorted(defragmented(first) + defragmented(second)) == names
    winner, waiter = (first, second) if first["changed"] else (second, first)
    assert winner["changed"] is True and waiter["changed"] is False
    assert defragmented(winner) == names and defragmented(waiter) == []
    assert winner["lock"]["acquired"] is True and waiter["lock"]["acquired"] is True
    assert waiter["skipped_reason"] == "no member needs defragmentation"
    assert waiter["lock"]["waited_s"] > 1.0
    assert winner["lock"]["holder"]["pid"] != waiter["lock"]["holder"]["pid"]
    # both released the lock (the lease was revoked, not left to expire)
    assert lock_keys(lab) == []


def test_second_run_fails_naming_the_holder_or_skips_with_lock_wait_false(etcd3_cluster):
    lab = etcd3_cluster
    fragment(lab, 16)
    # long pauses: the holder must still hold the lock when three more ansible processes have started
    holder = start_module("etcd_defrag", lab.connection_args(pause_seconds=12, **SMALL))
    try:
        keys = wait_until(lambda: lock_keys(lab), 60, "the first run did not take the lock")
        identity = json.loads(keys[0]["value"])
        assert identity["tool"] == "etcd_defrag" and identity["host"] and identity["pid"] > 0
        waiter = start_module("etcd_defrag", lab.connection_args(lock_timeout=2, **SMALL))
        skipper = start_module("etcd_defrag", lab.connection_args(lock_wait=False, **SMALL))
        checker = start_module("etcd_defrag", lab.connection_args(**SMALL), check=True)
        timed_out, skipped, checked = waiter.wait(timeout=120), skipper.wait(timeout=120), checker.wait(timeout=120)
    finally:
        held = holder.wait(timeout=300)
    assert not held["failed"], held.get("msg")
    assert held["lock"]["holder"] == identity and defragmented(held) == sorted(m.name for m in lab.members)
    named = "etcd_defrag on host %s (pid %d, started %s; key %s)" % (
        identity["host"], identity["pid"], identity["started"], keys[0]["key"])
    assert timed_out["failed"] is True and timed_out["changed"] is False
    assert timed_out["msg"] == ("the lock %s is held by %s; waited lock_timeout 2s. Run again later, or if that "
                                "holder is gone its lease expires within its TTL" % (LOCK, named))
    assert "Traceback" not in timed_out["_stdout"]
    assert skipped["failed"] is False and skipped["changed"] is False
    assert skipped["skipped_reason"] == ("another run holds the lock %s: %s; lock_wait is false, so this run did "
                                         "nothing" % (LOCK, named))
    assert skipped["lock"]["acquired"] is False and skipped["plan"] == []
    # check mode does not queue for the lock: it plans at once and names the holder
    assert checked["failed"] is False and checked["changed"] is False
    assert checked["lock"]["acquired"] is False and checked["lock"]["held_by"] == named
    assert checked["lock"]["key"] is None
    assert lock_keys(lab) == []


def test_killed_holder_lock_expires_and_the_next_run_proceeds_within_its_ttl(etcd3_cluster):
    lab = etcd3_cluster
    fragment(lab, 16)
    ttl = 5
    victim = start_module("etcd_defrag", lab.connection_args(lock_ttl=ttl, pause_seconds=60, **SMALL))
    try:
        # wait for its first member to be defragmented: the run is then in its pause, lock held
        before = lab.db_sizes()
        wait_until(lambda: lock_keys(lab) and any(v < before[n] / 2 for n, v in lab.db_sizes().items()), 60,
                   "the first run did not defragment a member")
        held = lock_keys(lab)
    finally:
        victim.kill(signal.SIGKILL)
        victim.proc.wait()
    killed_at = time.monotonic()
    # nothing released it: the key is still there, kept only by its lease
    assert lock_keys(lab) == held
    follower = start_module("etcd_defrag", lab.connection_args(lock_timeout=60, **SMALL))
    # etcd revokes the dead holder's lease within its TTL (its lessor checks expiry every 500 ms)
    wait_until(lambda: held[0] not in lock_keys(lab), ttl + 2, "the dead holder's lock key did not go")
    assert time.monotonic() - killed_at <= ttl + 2
    result = follower.wait(timeout=300)
    assert not result["failed"], result.get("msg")
    assert result["lock"]["acquired"] is True and result["lock"]["key"] != held[0]["key"]
    assert result["lock"]["waited_s"] <= ttl + 1  # it never waited longer than what was left of the lease
    # the next run finished the job: every member is defragmented now
    assert all(size < 8 * MIB for size in lab.db_sizes().values()), lab.db_sizes()
    assert lock_keys(lab) == []


def test_etcdctl_lock_and_etcd_defrag_exclude_each_other(etcd3_cluster):
    lab = etcd3_cluster
    cmd = [etcd_binary("etcdctl"), "--endpoints=%s" % lab.endpoints[0], "--cacert=%s" % lab.ca_cert,
           "--cert=%s" % lab.client_cert, "--key=%s" % lab.client_key, "lock", LOCK, "sleep", "30"]
    etcdctl = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        (key,) = wait_until(lambda: lock_keys(lab), 30, "etcdctl lock did not take the lock")
        result = run_module("etcd_defrag", lab.connection_args(lock_wait=False, **SMALL))
    finally:
        os.killpg(etcdctl.pid, signal.SIGKILL)
        etcdctl.wait()
    assert not result["failed"] and result["changed"] is False
    assert result["lock"]["acquired"] is False
    assert "did not say who it is, e.g. `etcdctl lock` (key %s" % key["key"] in result["skipped_reason"]


def test_a_defragment_call_that_times_out_is_reported_with_its_size_read_again(etcd3_cluster):
    lab = etcd3_cluster
    fill(lab, 96)  # live data: the defragmentation copies it, long enough to be caught in the act
    fragment(lab, 64)  # then free pages on top, for it to give back
    leader = lab.leader()
    followers = sorted(m.name for m in lab.members if m.name != leader)
    first = lab.member(followers[0])
    before = lab.db_sizes()
    stopped = threading.Event()
    done = threading.Event()

    def stop_it_during_its_defragmentation():
        # bbolt's defragmentation writes a temporary db.tmp.* next to the database (etcd backend.defrag)
        pattern = os.path.join(first.data_dir, "member", "snap", "db.tmp*")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not done.is_set():
            if glob.glob(pattern):
                lab.pause(first.name)
                stopped.set()
                time.sleep(5)  # well past member_timeout
                lab.resume(first.name)
                return
            time.sleep(0.002)

    thread = threading.Thread(target=stop_it_during_its_defragmentation, daemon=True)
    thread.start()
    try:
        result = run_module("etcd_defrag", lab.connection_args(member_timeout=2, command_timeout=3, health_timeout=60,
                                                               force=True), timeout=300)
    finally:
        done.set()
        thread.join(timeout=10)
        lab.resume(first.name)
    assert stopped.is_set()
    assert result["failed"] is True
    entry = next(m for m in result["members"] if m["name"] == first.name)
    assert entry["action"] == "timed_out"
    assert "the defragment call to member %s did not return within member_timeout 2s" % first.name in result["msg"]
    # once resumed, etcd finished the defragmentation the call had given up on
    assert entry["db_size_after"] is not None and entry["db_size_after"] < before[first.name] * 0.9, entry
    assert "so etcd finished it after the call gave up" in result["msg"]
    # the run stopped there
    assert all(m["action"] == "planned" for m in result["members"] if m["name"] != first.name)
    assert "Traceback" not in result["_stdout"]
    assert lock_keys(lab) == []


def test_a_run_whose_lock_was_lost_stops_before_the_next_member(etcd3_cluster):
    lab = etcd3_cluster
    fragment(lab, 16)
    # renewals every 2 s (a third of the TTL), pauses of 5 s: the loss is seen before the next member
    run = start_module("etcd_defrag", lab.connection_args(lock_ttl=6, pause_seconds=5, **SMALL))
    try:
        before = lab.db_sizes()
        wait_until(lambda: lock_keys(lab) and any(v < before[n] / 2 for n, v in lab.db_sizes().items()), 60,
                   "the run did not defragment a member")
        (key,) = lock_keys(lab)
        # the lease goes (an operator revoked it, or it expired while no member could renew it)
        lab.etcdctl("lease", "revoke", "%x" % int(key["lease"]))
    finally:
        result = run.wait(timeout=300)
    assert result["failed"] is True
    assert "the lock %s was lost (its lease %x expired); stopped so that two runs never work at once" % (
        LOCK, int(key["lease"])) in result["msg"]
    done = defragmented(result)
    assert len(done) == 1 and done[0] == result["plan"][0]
    assert all(m["action"] == "planned" for m in result["members"] if m["name"] not in done)
    assert "Traceback" not in result["_stdout"]
