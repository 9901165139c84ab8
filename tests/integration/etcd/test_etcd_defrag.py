"""etcd_defrag and etcd_member_info against real TLS etcd clusters, run through ansible, on every
etcd the lab has (3.5.1, 3.5.latest, 3.6.latest)."""
import json
import threading
import time

import pytest

from tests.integration.etcd.conftest import add_learner
from tests.lab.ansible_run import run_module
from tests.lab.binaries import WHEEL_ETCD_VERSION
from tests.lab.workload import ConcurrentWriter, fragment

pytestmark = pytest.mark.etcd_matrix

MIB = 1024 * 1024
# Small, fast clusters: select by fragmentation from 8 MiB up instead of 100 MiB.
SMALL = dict(min_db_size=8 * MIB, pause_seconds=0.2)


def leader_of(lab):
    """The leader as the running members see it (etcdctl endpoint status fails once one is dead)."""
    import json as _json
    alive = [m for m in lab.members if m.process.poll() is None]
    out = _json.loads(lab.etcdctl("endpoint", "status", "-w", "json", endpoints=[m.client_url for m in alive]).stdout)
    leader_id = out[0]["Status"]["leader"]
    for entry, member in zip(out, alive):
        if entry["Status"]["header"]["member_id"] == leader_id:
            return member.name
    return None


def by_name(result):
    return dict((m["name"], m) for m in result["members"])


def test_member_info_reports_in_use_applied_index_and_leader(etcd3_cluster):
    lab = etcd3_cluster
    fragment(lab, 12)
    info = run_module("etcd_member_info", lab.connection_args(endpoints=lab.endpoints[:1]))
    assert not info["failed"] and info["changed"] is False
    assert info["leader"] == lab.leader()
    assert info["voting_members"] == 3 and info["quorum"] == 2 and info["has_quorum"] is True
    for member in info["members"]:
        assert member["healthy"] is True, member
        assert member["raft_applied_index"] > 0
        assert 0 < member["db_size_in_use"] < member["db_size"] / 2
        assert member["fragmentation"] > 0.5
        assert member["is_leader"] is (member["name"] == info["leader"])
    # check mode makes the same (read-only) calls
    checked = run_module("etcd_member_info", lab.connection_args(), check=True)
    assert checked["leader"] == info["leader"] and len(checked["members"]) == 3


def test_check_mode_returns_the_plan_and_touches_nothing(etcd3_cluster):
    lab = etcd3_cluster
    fragment(lab, 12)
    leader = lab.leader()
    before = lab.db_sizes()
    result = run_module("etcd_defrag", lab.connection_args(**SMALL), check=True)
    assert not result["failed"] and result["changed"] is False
    followers = sorted(n for n in before if n != leader)
    assert result["plan"] == followers + [leader]
    assert all(m["action"] == "planned" and "fragmentation" in m["reason"] for m in result["members"])
    assert result["leader_target"] in followers
    # the default move_leader auto: nothing measured in check mode, so the assumed slow disk decides
    decision = result["leader_decision"]
    assert decision["leader"] == leader and decision["mode"] == "auto" and decision["move"] is False
    assert "no member was defragmented before it" in decision["reason"]
    # check mode does not queue for the lock; nobody holds it
    assert result["lock"]["acquired"] is False and result["lock"]["held_by"] is None
    after = lab.db_sizes()
    assert after == before
    assert lab.leader() == leader


def test_rolling_defrag_under_writes_leader_last_in_place_nothing_lost(etcd3_cluster):
    lab = etcd3_cluster
    fragment(lab, 24)
    client = lab.client()
    for i in range(200):
        client.put("/before/%04d" % i, "value-%d" % i)
    leader_before = lab.leader()
    before = lab.db_sizes()
    with ConcurrentWriter(lab.endpoints, lab.ca_cert, lab.client_cert, lab.client_key) as writer:
        result = run_module("etcd_defrag", lab.connection_args(**SMALL))
    assert not result["failed"], result.get("msg")
    assert result["changed"] is True
    members = by_name(result)
    # every member was selected and shrank
    assert set(result["plan"]) == set(before)
    for name, entry in members.items():
        assert entry["action"] == "defragmented", entry
        assert entry["db_size_after"] < entry["db_size_before"] / 4, entry
    # leader last; move_leader auto (the default) keeps it in place: the followers' throughput makes its
    # defragmentation far shorter than etcd's 7 s request timeout, which a transfer would cost
    assert result["leader_before"] == leader_before
    assert result["plan"][-1] == leader_before and members[leader_before]["was_leader"]
    decision = result["leader_decision"]
    assert decision["leader"] == leader_before and decision["mode"] == "auto" and decision["move"] is False
    assert decision["request_timeout_seconds"] == 7.0 and 0 < decision["estimate_s"] < 7.0
    followers = sorted(n for n in before if n != leader_before)
    assert "throughput measured on %s in this run" % ", ".join(followers) in decision["reason"]
    assert "<= request_timeout_seconds 7.0: defragmented in place" in decision["reason"]
    measured = sum(members[n]["db_size_before"] for n in followers) / sum(members[n]["duration_s"] for n in followers)
    assert abs(decision["throughput_bytes_per_s"] - measured) <= 1
    assert decision["reason"] in members[leader_before]["reason"]
    assert result["leader_after"] == leader_before and "leader_moved_to" not in result
    assert result["lock"]["acquired"] is True
    after = lab.db_sizes()
    assert all(after[n] < before[n] / 4 for n in before)
    # nothing written before or during the run is lost or changed
    assert writer.failures == 0, [s.errors[:3] for s in writer.stats]
    assert all(s.puts > 0 for s in writer.stats)
    assert writer.mismatches(client) == []
    stored = dict((m.key.decode(), v.decode()) for v, m in client.get_prefix("/before/"))
    assert stored == dict(("/before/%04d" % i, "value-%d" % i) for i in range(200))
    # a second run finds nothing to do
    again = run_module("etcd_defrag", lab.connection_args(**SMALL))
    assert not again["failed"] and again["changed"] is False
    assert again["plan"] == [] and again["skipped_reason"] == "no member needs defragmentation"
    assert all(m["action"] == "skipped" for m in again["members"])


def test_auto_moves_leadership_when_the_estimate_exceeds_the_request_timeout(etcd3_cluster):
    lab = etcd3_cluster
    fragment(lab, 16)
    leader_before = lab.leader()
    # a transfer "costs" 1 ms here, less than any defragmentation: auto must move leadership first
    result = run_module("etcd_defrag", lab.connection_args(request_timeout_seconds=0.001, **SMALL))
    assert not result["failed"], result.get("msg")
    decision = result["leader_decision"]
    assert decision["leader"] == leader_before and decision["move"] is True
    assert decision["estimate_s"] > 0.001
    assert "> request_timeout_seconds 0.001: leadership moves first" in decision["reason"]
    assert result["leader_moved_to"] == result["leader_after"] != leader_before
    assert lab.leader() == result["leader_after"]
    assert by_name(result)[leader_before]["action"] == "defragmented"


def test_compact_then_defrag_reports_revision(etcd3_cluster):
    lab = etcd3_cluster
    client = lab.client()
    value = "x" * 65536
    for _round in range(3):
        for i in range(60):  # superseded revisions only compaction frees
            client.put("/compact/%03d" % i, value)
    # a live cluster always writes (leases, events); compacted pages are freed at the next commit
    with ConcurrentWriter(lab.endpoints[:1], lab.ca_cert, lab.client_cert, lab.client_key, interval=0.05):
        result = run_module("etcd_defrag", lab.connection_args(compact=True, **SMALL))
    assert not result["failed"], result.get("msg")
    revision = int(client.get_response("/").header.revision)
    assert 0 < result["compacted_revision"] <= revision
    assert result["changed"] is True and len(result["plan"]) == 3


def test_follower_killed_mid_run_stops_there_and_leaves_the_rest(etcd3_cluster):
    lab = etcd3_cluster
    fragment(lab, 16)
    leader = lab.leader()
    first, second = sorted(m.name for m in lab.members if m.name != leader)
    before = lab.db_sizes()
    watcher = lab.client(lab.member(first))
    killed = threading.Event()

    def kill_second_after_first():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if watcher.status().db_size < before[first] / 4:
                    lab.kill(second)
                    killed.set()
                    return
            except Exception:  # pylint: disable=broad-except
                pass
            time.sleep(0.05)

    thread = threading.Thread(target=kill_second_after_first, daemon=True)
    thread.start()
    result = run_module("etcd_defrag", lab.connection_args(min_db_size=8 * MIB, pause_seconds=3, command_timeout=3))
    thread.join(timeout=5)
    assert killed.is_set()
    assert result["failed"] is True
    assert "stopped at member %s" % second in result["msg"]
    assert "member %s is not healthy" % second in result["msg"]
    assert "Traceback" not in result["_stdout"]
    members = by_name(result)
    assert members[first]["action"] == "defragmented"
    assert members[second]["action"] == "planned" and members[leader]["action"] == "planned"
    assert "left untouched: %s" % leader in result["msg"]
    # the leader was not touched: still leader, same size
    after = lab.db_sizes()
    assert after[leader] == before[leader]
    assert leader_of(lab) == leader


def test_follower_dead_at_preflight_changes_nothing(etcd3_cluster):
    lab = etcd3_cluster
    fragment(lab, 12)
    leader = lab.leader()
    victim = sorted(m.name for m in lab.members if m.name != leader)[0]
    lab.kill(victim)
    result = run_module("etcd_defrag", lab.connection_args(command_timeout=3, **SMALL))
    assert result["failed"] is True and result["changed"] is False
    assert "preflight failed" in result["msg"] and "member %s is not healthy" % victim in result["msg"]
    assert "cannot reach etcd member %s" % victim in result["msg"]
    assert "Traceback" not in result["_stdout"]


def test_stopped_member_times_out_instead_of_hanging(etcd3_cluster):
    lab = etcd3_cluster
    leader = lab.leader()
    victim = sorted(m.name for m in lab.members if m.name != leader)[0]
    lab.pause(victim)
    try:
        started = time.monotonic()
        result = run_module("etcd_defrag", lab.connection_args(command_timeout=2, **SMALL), timeout=120)
        elapsed = time.monotonic() - started
    finally:
        lab.resume(victim)
    assert result["failed"] is True
    assert "etcd member %s" % victim in result["msg"] and "did not answer" in result["msg"]
    assert "within 2s" in result["msg"]
    assert elapsed < 60
    assert "Traceback" not in result["_stdout"]


def test_single_member_skipped_unless_forced(etcd1_cluster):
    lab = etcd1_cluster
    fragment(lab, 12)
    result = run_module("etcd_defrag", lab.connection_args(**SMALL))
    assert not result["failed"] and result["changed"] is False
    assert "single-member" in result["skipped_reason"] and result["plan"] == []
    forced = run_module("etcd_defrag", lab.connection_args(force_single=True, **SMALL))
    assert not forced["failed"] and forced["changed"] is True
    (entry,) = forced["members"]
    assert entry["action"] == "defragmented" and entry["db_size_after"] < entry["db_size_before"] / 4


def test_learner_is_skipped_with_a_reason(etcd3_cluster):
    lab = etcd3_cluster
    learner = add_learner(lab)
    info = run_module("etcd_member_info", lab.connection_args())
    entry = next(m for m in info["members"] if m["name"] == learner.name)
    assert entry["is_learner"] is True and entry["healthy"] is True
    assert info["learners"] == [learner.name] and info["voting_members"] == 3
    result = run_module("etcd_defrag", lab.connection_args(force=True, pause_seconds=0))
    assert not result["failed"], result.get("msg")
    members = by_name(result)
    assert members[learner.name]["action"] == "skipped"
    assert members[learner.name]["reason"].startswith("learner")
    assert learner.name not in result["plan"] and len(result["plan"]) == 3


@pytest.mark.etcd_matrix(WHEEL_ETCD_VERSION)   # what the module prints, whatever the server
def test_results_never_contain_key_material(etcd3_cluster):
    lab = etcd3_cluster
    with open(lab.client_key) as handle:
        key_body = "".join(handle.read().splitlines()[1:-1])
    result = run_module("etcd_defrag", lab.connection_args(**SMALL), check=True)
    info = run_module("etcd_member_info", lab.connection_args())
    for res in (result, info):
        assert key_body[:40] not in json.dumps(res)
    assert result["invocation"]["module_args"]["client_key"] == lab.client_key
