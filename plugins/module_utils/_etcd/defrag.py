# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Leader-aware rolling defragmentation: preflight, plan, then one member at a time, leader last.

The plan functions take member states as plain dicts (see members.Cluster.member_state) so the
decisions are unit-tested without etcd; RollingDefrag executes a plan against a live cluster.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import (
    CplaneError, OperationFailed, UnsafeOperation)
from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd.client import wait_for
from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd.members import (
    Cluster, leader_of, member_hex, summarize)

DEFAULT_OPTIONS = dict(
    force=False, force_single=False, force_unhealthy=False, compact=False, move_leader=True, pause_seconds=1.0,
    member_timeout=600, min_fragmentation=0.3, min_db_size=104857600, max_quota_usage=0.8, disarm_nospace=False,
    health_timeout=60, quota_bytes=None,
)
# NOSPACE is what defragmentation exists to fix; any other alarm (CORRUPT) means stop.
TOLERATED_ALARMS = ("NOSPACE",)
# etcd raises NOSPACE again at once if the database is still near its quota.
DISARM_MAX_QUOTA_USAGE = 0.9
COMMIT_SETTLE_SECONDS = 0.5


def options_with_defaults(options):
    merged = dict(DEFAULT_OPTIONS)
    merged.update(dict((k, v) for k, v in (options or {}).items() if v is not None or k == "quota_bytes"))
    return merged


def mib(size):
    return "%.1f MiB" % (float(size or 0) / 1048576.0)


def voting(states):
    return [s for s in states if not s["is_learner"]]


# -- preflight and selection (pure) -----------------------------------------------------------------
def preflight_problems(states, options):
    """What makes a rolling defragmentation unsafe now, one sentence per problem naming the member."""
    problems = []
    for state in voting(states):
        if not state["healthy"]:
            problems.append("member %s is not healthy: %s" % (state["name"], state["error"] or "unknown error"))
    if leader_of(states) is None:
        problems.append("the cluster has no leader")
    for alarm in summarize(states)["alarms"]:
        if alarm["alarm"] not in TOLERATED_ALARMS:
            problems.append("alarm %s is active on member %s" % (alarm["alarm"], alarm["member"]))
    return problems


def selection(state, options):
    """(selected, reason) for one healthy voting member."""
    if options["force"]:
        return True, "force: every voting member is defragmented"
    frag = state["fragmentation"]
    size = state["db_size"] or 0
    usage = state["quota_usage"]
    if usage is not None and usage >= options["max_quota_usage"]:
        return True, "quota usage %.2f >= max_quota_usage %.2f (db_size %s of quota %s)" % (
            usage, options["max_quota_usage"], mib(size), mib(state["db_size_quota"]))
    if frag is None:
        return False, "the member does not report dbSizeInUse (etcd < 3.4); use force to defragment it"
    if frag >= options["min_fragmentation"] and size >= options["min_db_size"]:
        return True, "fragmentation %.2f >= %.2f and db_size %s >= %s" % (
            frag, options["min_fragmentation"], mib(size), mib(options["min_db_size"]))
    if frag < options["min_fragmentation"]:
        return False, "fragmentation %.2f < min_fragmentation %.2f" % (frag, options["min_fragmentation"])
    return False, "db_size %s < min_db_size %s" % (mib(size), mib(options["min_db_size"]))


def choose_leader_target(states, leader_name, defragmented=()):
    """Where leadership goes before the leader's own defrag: the healthiest defragmented follower
    (highest applied index), else the healthiest follower."""
    followers = [s for s in voting(states) if s["name"] != leader_name and s["healthy"]]
    preferred = [s for s in followers if s["name"] in defragmented] or followers
    if not preferred:
        return None
    return sorted(preferred, key=lambda s: (-(s["raft_applied_index"] or 0), s["name"]))[0]["name"]


def plan_defrag(states, options):
    """The ordered plan: followers first (by name), the leader last.

    Returns dict(order, entries, skipped_reason, leader, leader_target); raises UnsafeOperation when
    the preflight fails and force_unhealthy is off.
    """
    options = options_with_defaults(options)
    leader = leader_of(states)
    leader_name = leader["name"] if leader else None
    entries = []
    plan = dict(order=[], entries=entries, skipped_reason=None, leader=leader_name, leader_target=None,
                warnings=[])
    voters = voting(states)
    if len(voters) == 1 and not options["force_single"]:
        plan["skipped_reason"] = ("single-member cluster: defragmenting its only member blocks every read and write "
                                  "until it finishes; set force_single to do it anyway (schedule a maintenance window)")
    else:
        problems = preflight_problems(states, options)
        if problems and not options["force_unhealthy"]:
            raise UnsafeOperation("preflight failed, nothing was defragmented: %s; fix the cluster first or set "
                                  "force_unhealthy" % "; ".join(problems))
        plan["warnings"] = ["force_unhealthy: %s" % p for p in problems]
    for state in states:
        entry = dict(name=state["name"], id=state["id"], action="skipped", reason=None,
                     was_leader=state["name"] == leader_name)
        entries.append(entry)
        if plan["skipped_reason"]:
            entry["reason"] = plan["skipped_reason"]
        elif state["is_learner"]:
            entry["reason"] = "learner: not a voting member yet; defragment it after promotion"
        elif not state["healthy"]:
            entry["reason"] = "unhealthy (force_unhealthy): %s" % state["error"]
        else:
            selected, entry["reason"] = selection(state, options)
            if selected:
                entry["action"] = "planned"
    planned = [e for e in entries if e["action"] == "planned"]
    followers = sorted((e for e in planned if not e["was_leader"]), key=lambda e: e["name"])
    plan["order"] = [e["name"] for e in followers] + [e["name"] for e in planned if e["was_leader"]]
    for entry in planned:
        if entry["was_leader"]:
            if options["move_leader"] and len(voters) > 1:
                plan["leader_target"] = choose_leader_target(states, leader_name, [e["name"] for e in followers])
                entry["reason"] += "; leader: defragmented last, after moving leadership to %s" % (
                    plan["leader_target"] or "a healthy follower")
            elif len(voters) == 1:
                entry["reason"] += "; the only member (force_single): every request waits for its defragmentation"
            else:
                entry["reason"] += "; leader: defragmented last, in place (move_leader is off)"
    if not plan["skipped_reason"] and not planned:
        plan["skipped_reason"] = "no member needs defragmentation"
    return plan


def nospace_disarmable(states, alarms):
    """The NOSPACE alarms to disarm, or (None, reason) when a member is still too close to its quota."""
    nospace = [a for a in alarms if a["alarm"] == "NOSPACE"]
    if not nospace:
        return [], None
    for state in voting(states):
        if state["db_size"] is None or state["db_size"] >= DISARM_MAX_QUOTA_USAGE * state["db_size_quota"]:
            return None, ("NOSPACE kept: member %s db_size %s is not below %d%% of its quota %s"
                          % (state["name"], mib(state["db_size"]), DISARM_MAX_QUOTA_USAGE * 100, mib(state["db_size_quota"])))
    return nospace, None


# -- execution --------------------------------------------------------------------------------------
class RollingDefrag(object):
    """Runs plan_defrag's plan on a live cluster, one member at a time, stopping at the first failure."""

    def __init__(self, cluster, options, sleep=time.sleep, clock=time.monotonic):
        self.cluster = cluster
        self.options = options_with_defaults(options)
        self.sleep = sleep
        self.clock = clock
        self.result = dict(changed=False, members=[], plan=[], leader_before=None, leader_after=None,
                           compacted_revision=None, alarms_disarmed=[], skipped_reason=None, warnings=[])

    # -- helpers ------------------------------------------------------------------------------------
    def _states(self):
        return self.cluster.gather()

    def _state(self, name):
        return self.cluster.member_state(self.cluster.member_by_name(name))

    def _entry(self, name):
        return next(e for e in self.result["members"] if e["name"] == name)

    def _leader_applied_index(self):
        states = self.cluster.gather(voting(self.cluster.member_list))
        leader = leader_of(states)
        if leader is None or leader["raft_applied_index"] is None:
            return None, leader
        return leader["raft_applied_index"], leader

    def _gate(self, name, healthy_at_start):
        """Before touching ``name``: every member healthy at preflight still is, and there is a leader."""
        states = self._states()
        problems = ["member %s is not healthy: %s" % (s["name"], s["error"]) for s in voting(states)
                    if not s["healthy"] and s["name"] in healthy_at_start]
        if leader_of(states) is None:
            problems.append("the cluster has no leader")
        if problems:
            raise UnsafeOperation("health check before defragmenting %s failed: %s" % (name, "; ".join(problems)))
        return states

    def _wait_caught_up(self, name):
        """Healthy and applied up to the leader's applied index as it was when the defrag finished."""
        target, _leader = self._leader_applied_index()
        last = {}

        def ready():
            state = self._state(name)
            last["state"] = state
            return state["healthy"] and (target is None or (state["raft_applied_index"] or 0) >= target)

        if not wait_for(ready, self.options["health_timeout"]):
            state = last.get("state") or {}
            why = state.get("error") or "applied index %s has not reached the leader's %s" % (
                state.get("raft_applied_index"), target)
            raise OperationFailed("member %s was not healthy and caught up within health_timeout %ss after its "
                                  "defragmentation: %s" % (name, self.options["health_timeout"], why))
        return last["state"]

    def _move_leadership(self, leader_name, states):
        target = choose_leader_target(states, leader_name, [e["name"] for e in self.result["members"]
                                                            if e["action"] == "defragmented"])
        if target is None:
            raise UnsafeOperation("cannot move leadership away from %s: no healthy follower" % leader_name)
        target_member = self.cluster.member_by_name(target)
        self.cluster.client_by_name(leader_name).move_leader(target_member["id"], self.options["health_timeout"])
        target_hex = member_hex(target_member["id"])
        if not wait_for(lambda: self._state(target)["leader_id"] == target_hex, self.options["health_timeout"]):
            raise OperationFailed("leadership did not move from %s to %s within health_timeout %ss"
                                  % (leader_name, target, self.options["health_timeout"]))
        self.result["leader_moved_to"] = target
        return target

    def _defragment(self, name):
        entry = self._entry(name)
        before = self._state(name)
        if not before["healthy"]:
            raise OperationFailed("member %s is not healthy: %s" % (name, before["error"]))
        entry.update(db_size_before=before["db_size"], db_size_in_use_before=before["db_size_in_use"])
        started = self.clock()
        self.cluster.client_by_name(name).defragment(self.options["member_timeout"])
        entry["duration_s"] = round(self.clock() - started, 3)
        entry["action"] = "defragmented"
        self.result["changed"] = True
        after = self._wait_caught_up(name)
        entry.update(db_size_after=after["db_size"], db_size_in_use_after=after["db_size_in_use"])

    def _compact(self, states):
        leader = leader_of(states)
        client = self.cluster.client(self.cluster.member_by_name(leader["name"]))
        revision = client.status()["revision"]
        try:
            client.compact(revision, self.options["member_timeout"])
        except OperationFailed as err:
            if "compacted" in err.msg:  # already compacted at this revision: nothing to do
                return None
            raise
        return revision

    def _disarm(self):
        states = self._states()
        alarms = summarize(states)["alarms"]
        disarm, why = nospace_disarmable(states, alarms)
        if why:
            self.result["warnings"].append(why)
            return
        leader = leader_of(states)
        client = self.cluster.client(self.cluster.member_by_name(leader["name"]))
        for alarm in disarm:
            client.disarm(int(alarm["member_id"], 16), alarm["alarm"])
            self.result["alarms_disarmed"].append(dict(member=alarm["member"], alarm=alarm["alarm"]))
            self.result["changed"] = True

    # -- run ----------------------------------------------------------------------------------------
    def run(self, check_mode=False):
        states = self._states()
        leader = leader_of(states)
        self.result["leader_before"] = self.result["leader_after"] = leader["name"] if leader else None
        if self.options["compact"] and not check_mode:
            plan_defrag(states, self.options)  # the preflight raises before anything changes
            if len(voting(states)) > 1 or self.options["force_single"]:
                self.result["compacted_revision"] = self._compact(states)
                # Compacted pages show as free only after each member's next backend commit
                # (batch interval 100 ms, on the next write).
                self.sleep(COMMIT_SETTLE_SECONDS)
                states = self._states()
        plan = plan_defrag(states, self.options)
        self.result["plan"] = list(plan["order"])
        self.result["warnings"].extend(plan["warnings"])
        self.result["skipped_reason"] = plan["skipped_reason"]
        by_name = dict((s["name"], s) for s in states)
        for entry in plan["entries"]:
            state = by_name[entry["name"]]
            entry.update(db_size_before=state["db_size"], db_size_in_use_before=state["db_size_in_use"],
                         db_size_after=None, db_size_in_use_after=None, duration_s=None)
        self.result["members"] = plan["entries"]
        if check_mode:
            self.result["leader_target"] = plan["leader_target"]
            return self.result
        healthy_at_start = set(s["name"] for s in states if s["healthy"])
        current = None
        try:
            for index, name in enumerate(plan["order"]):
                current = name
                gate_states = self._gate(name, healthy_at_start)
                leader = leader_of(gate_states)
                if leader["name"] == name and self.options["move_leader"] and len(voting(gate_states)) > 1:
                    self._move_leadership(name, gate_states)
                self._defragment(name)
                if index < len(plan["order"]) - 1 and self.options["pause_seconds"] > 0:
                    self.sleep(self.options["pause_seconds"])
            current = None
            if self.options["disarm_nospace"]:
                self._disarm()
        except CplaneError as err:
            self._finish()
            untouched = [n for n in plan["order"] if self._entry(n)["action"] == "planned" and n != current]
            where = "at member %s" % current if current else "after the last member"
            if current:
                self._entry(current)["reason"] += "; stopped here: %s" % err.msg
            msg = "rolling defragmentation stopped %s: %s; %s" % (
                where, err.msg, "members left untouched: %s" % ", ".join(untouched) if untouched
                else "no other member was left")
            raise type(err)(msg, **self.result)
        self._finish()
        return self.result

    def _finish(self):
        try:
            leader = leader_of(self.cluster.gather(voting(self.cluster.member_list)))
            self.result["leader_after"] = leader["name"] if leader else None
        except CplaneError:
            self.result["leader_after"] = None


def run_defrag(endpoints, ca_cert, client_cert, client_key, command_timeout=10, check_mode=False, **options):
    """The etcd_defrag module's backend."""
    options = options_with_defaults(options)
    with Cluster(endpoints, ca_cert, client_cert, client_key, command_timeout, options["quota_bytes"]) as cluster:
        return RollingDefrag(cluster, options).run(check_mode=check_mode)
