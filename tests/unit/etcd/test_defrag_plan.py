"""The defrag plan and preflight decisions, from plain member states (no etcd)."""
import pytest

from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import InputError, UnsafeOperation
from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd.defrag import (
    choose_leader_target, leader_move_decision, move_leader_mode, nospace_disarmable, plan_defrag, run_defrag,
    selection)

MIB = 1024 * 1024
OPTS = dict(min_db_size=100 * MIB, min_fragmentation=0.3, max_quota_usage=0.8)


def member(name, leader="cp1", size=200 * MIB, in_use=50 * MIB, healthy=True, learner=False, applied=100,
           quota=2048 * MIB, alarms=()):
    return dict(id="%x" % (abs(hash(name)) % (1 << 60)), name=name, is_learner=learner, is_leader=name == leader,
                leader_id=None, healthy=healthy, error=None if healthy else "did not answer a status request",
                db_size=size, db_size_in_use=in_use, fragmentation=round(1 - float(in_use) / size, 4),
                raft_applied_index=applied, db_size_quota=quota, quota_usage=round(float(size) / quota, 4),
                alarms=list(alarms))


def cluster(*states):
    leader = next((s for s in states if s["is_leader"]), None)
    for state in states:
        if leader is not None:
            state["leader_id"] = leader["id"]
    return list(states)


def test_followers_first_by_name_leader_last_with_move():
    states = cluster(member("cp2", leader="cp2"), member("cp3", leader="cp2"), member("cp1", leader="cp2"))
    plan = plan_defrag(states, dict(OPTS, move_leader=True))
    assert plan["order"] == ["cp1", "cp3", "cp2"]
    leader_entry = next(e for e in plan["entries"] if e["name"] == "cp2")
    assert leader_entry["was_leader"] and "after moving leadership to" in leader_entry["reason"]
    assert plan["leader_target"] in ("cp1", "cp3")


def test_default_plan_decides_the_leader_move_at_its_turn():
    states = cluster(member("cp2", leader="cp2"), member("cp3", leader="cp2"), member("cp1", leader="cp2"))
    plan = plan_defrag(states, OPTS)
    leader_entry = next(e for e in plan["entries"] if e["name"] == "cp2")
    assert "only if its estimated defragmentation time exceeds request_timeout_seconds 7.0" in leader_entry["reason"]
    assert "move_leader auto" in leader_entry["reason"]
    off = plan_defrag(states, dict(OPTS, move_leader="no"))
    assert "in place (move_leader is off)" in next(e for e in off["entries"] if e["name"] == "cp2")["reason"]


@pytest.mark.parametrize("value, mode", [("auto", "auto"), (True, True), (False, False), ("yes", True),
                                         ("False", False), ("AUTO", "auto")])
def test_move_leader_accepts_auto_and_booleans(value, mode):
    assert move_leader_mode(value) == mode


def test_move_leader_rejects_anything_else():
    with pytest.raises(InputError, match="move_leader must be auto, true or false, not 'sometimes'"):
        move_leader_mode("sometimes")


def test_auto_keeps_a_leader_in_place_when_its_estimate_is_below_the_request_timeout():
    # followers: 200 MiB in 2 s = 100 MiB/s -> a 300 MiB leader takes ~3 s < 7 s
    measured = [("cp1", 100 * MIB, 1.0), ("cp3", 100 * MIB, 1.0)]
    decision = leader_move_decision("auto", 300 * MIB, measured, 7.0)
    assert decision["move"] is False and decision["estimate_s"] == 3.0
    assert decision["throughput_bytes_per_s"] == 100 * MIB
    assert "cp1, cp3" in decision["reason"] and "<= request_timeout_seconds 7.0" in decision["reason"]


def test_auto_moves_a_leader_whose_estimate_exceeds_the_request_timeout():
    measured = [("cp1", 100 * MIB, 10.0)]  # 10 MiB/s -> 300 MiB takes 30 s
    decision = leader_move_decision("auto", 300 * MIB, measured, 7.0)
    assert decision["move"] is True and decision["estimate_s"] == 30.0
    assert "> request_timeout_seconds 7.0: leadership moves first" in decision["reason"]


def test_auto_without_measurement_assumes_a_slow_disk():
    small = leader_move_decision("auto", 100 * MIB, [], 7.0)
    assert small["move"] is False and small["estimate_s"] == 5.0
    assert "no member was defragmented before it" in small["reason"] and "20.0 MiB/s" in small["reason"]
    assert leader_move_decision("auto", 200 * MIB, [], 7.0)["move"] is True


def test_true_and_false_keep_their_meaning_whatever_the_estimate():
    measured = [("cp1", 100 * MIB, 1.0)]
    assert leader_move_decision(True, 1 * MIB, measured, 7.0)["move"] is True
    assert leader_move_decision(False, 10000 * MIB, measured, 7.0)["move"] is False


def test_thresholds_select_by_fragmentation_and_size_or_quota():
    assert selection(member("a", size=200 * MIB, in_use=50 * MIB), dict(OPTS, force=False))[0] is True
    selected, reason = selection(member("b", size=200 * MIB, in_use=190 * MIB), dict(OPTS, force=False))
    assert selected is False and "fragmentation 0.05 < min_fragmentation 0.30" in reason
    selected, reason = selection(member("c", size=50 * MIB, in_use=1 * MIB), dict(OPTS, force=False))
    assert selected is False and "min_db_size" in reason
    # nearly full quota: selected although hardly fragmented
    selected, reason = selection(member("d", size=1800 * MIB, in_use=1790 * MIB), dict(OPTS, force=False))
    assert selected is True and "quota usage" in reason


def test_force_selects_every_healthy_voter_but_never_learners():
    states = cluster(member("cp1", in_use=199 * MIB), member("cp2", in_use=199 * MIB),
                     member("cp3", in_use=199 * MIB), member("cp4", learner=True))
    plan = plan_defrag(states, dict(OPTS, force=True))
    assert plan["order"] == ["cp2", "cp3", "cp1"]
    learner = next(e for e in plan["entries"] if e["name"] == "cp4")
    assert learner["action"] == "skipped" and learner["reason"].startswith("learner")


def test_nothing_selected_is_a_skip_not_a_failure():
    states = cluster(member("cp1", in_use=199 * MIB), member("cp2", in_use=199 * MIB))
    plan = plan_defrag(states, OPTS)
    assert plan["order"] == [] and plan["skipped_reason"] == "no member needs defragmentation"


def test_single_member_skipped_unless_force_single():
    plan = plan_defrag(cluster(member("cp1")), OPTS)
    assert plan["order"] == [] and "single-member" in plan["skipped_reason"]
    plan = plan_defrag(cluster(member("cp1")), dict(OPTS, force_single=True))
    assert plan["order"] == ["cp1"] and plan["skipped_reason"] is None
    assert "move_leader is off" not in plan["entries"][0]["reason"]


def test_preflight_names_the_unhealthy_member():
    states = cluster(member("cp1"), member("cp2", healthy=False), member("cp3"))
    with pytest.raises(UnsafeOperation) as err:
        plan_defrag(states, OPTS)
    assert "member cp2 is not healthy" in err.value.msg and "force_unhealthy" in err.value.msg


def test_force_unhealthy_skips_the_unhealthy_member_and_warns():
    states = cluster(member("cp1"), member("cp2", healthy=False), member("cp3"))
    plan = plan_defrag(states, dict(OPTS, force_unhealthy=True))
    assert plan["order"] == ["cp3", "cp1"]
    assert any("cp2" in w for w in plan["warnings"])


def test_preflight_refuses_corrupt_alarm_but_tolerates_nospace():
    states = cluster(member("cp1"), member("cp2", alarms=["NOSPACE"]), member("cp3"))
    assert plan_defrag(states, OPTS)["order"]
    states = cluster(member("cp1"), member("cp2", alarms=["CORRUPT"]), member("cp3"))
    with pytest.raises(UnsafeOperation, match="alarm CORRUPT is active on member cp2"):
        plan_defrag(states, OPTS)


def test_no_leader_fails_preflight():
    states = [member("cp1", leader=None), member("cp2", leader=None), member("cp3", leader=None)]
    with pytest.raises(UnsafeOperation, match="no leader"):
        plan_defrag(states, OPTS)


def test_leader_target_prefers_defragmented_then_applied_index():
    states = cluster(member("cp1", applied=10), member("cp2", leader="cp1", applied=30),
                     member("cp3", leader="cp1", applied=20))
    assert choose_leader_target(states, "cp1", defragmented=["cp3"]) == "cp3"
    assert choose_leader_target(states, "cp1", defragmented=[]) == "cp2"
    states[1]["healthy"] = False
    assert choose_leader_target(states, "cp1", defragmented=["cp2"]) == "cp3"


def test_nospace_disarmed_only_below_ninety_percent_of_quota():
    alarms = [dict(member="cp2", member_id="1", alarm="NOSPACE")]
    low = cluster(member("cp1", size=100 * MIB, quota=200 * MIB), member("cp2", size=170 * MIB, quota=200 * MIB))
    disarm, why = nospace_disarmable(low, alarms)
    assert disarm == alarms and why is None
    high = cluster(member("cp1", size=100 * MIB, quota=200 * MIB), member("cp2", size=185 * MIB, quota=200 * MIB))
    disarm, why = nospace_disarmable(high, alarms)
    assert disarm is None and "cp2" in why


def test_lock_and_timeout_options_are_checked_before_connecting():
    with pytest.raises(InputError) as err:
        run_defrag(["https://127.0.0.1:1"], "/nonexistent/ca.crt", "/nonexistent/c.crt", "/nonexistent/c.key",
                   lock_ttl=0, request_timeout_seconds=-1)
    assert err.value.msg == ("lock_ttl must be at least 1 (seconds), not 0; request_timeout_seconds must be positive, "
                             "not -1")
