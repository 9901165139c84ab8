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
    CplaneError, InputError, OperationFailed, UnsafeOperation)
from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd.client import wait_for
from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd.lock import EtcdLock, describe_holder, holder_identity
from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd.members import (
    Cluster, leader_of, member_hex, summarize)

# etcd's request timeout, ReqTimeout() in server/config/config.go: 5 s + 2 x the election timeout,
# 7 s with etcd's default --election-timeout of 1000 ms (kubeadm does not change it). A write that
# a follower forwarded during a leadership transfer waits this long (docs/benchmarks/defrag.md).
DEFAULT_REQUEST_TIMEOUT = 7.0
DEFAULT_LOCK_NAME = "/cplane.kubeadm/locks/etcd_defrag"
DEFAULT_OPTIONS = dict(
    force=False, force_single=False, force_unhealthy=False, compact=False, move_leader="auto", pause_seconds=1.0,
    member_timeout=600, min_fragmentation=0.3, min_db_size=104857600, max_quota_usage=0.8, disarm_nospace=False,
    health_timeout=60, quota_bytes=None, request_timeout_seconds=DEFAULT_REQUEST_TIMEOUT,
    lock_name=DEFAULT_LOCK_NAME, lock_wait=True, lock_timeout=600, lock_ttl=30,
)
# move_leader auto, when no member was defragmented before the leader in this run: an assumed
# defragmentation throughput well below what local SSDs show (~100 MiB/s in the lab), so that a
# large leader is still moved away rather than stalling its clients for long.
FALLBACK_THROUGHPUT = 20 * 1024 * 1024
# What etcd answers to a write (and a lease grant) while a NOSPACE alarm is active.
NOSPACE_REFUSAL = "database space exceeded"
# NOSPACE is what defragmentation exists to fix; any other alarm (CORRUPT) means stop.
TOLERATED_ALARMS = ("NOSPACE",)
# etcd raises NOSPACE again at once if the database is still near its quota.
DISARM_MAX_QUOTA_USAGE = 0.9
COMMIT_SETTLE_SECONDS = 0.5


def options_with_defaults(options):
    merged = dict(DEFAULT_OPTIONS)
    merged.update(dict((k, v) for k, v in (options or {}).items() if v is not None or k == "quota_bytes"))
    merged["move_leader"] = move_leader_mode(merged["move_leader"])
    return merged


def move_leader_mode(value):
    """``auto``, True or False from what a playbook may pass (booleans, yes/no, true/false strings)."""
    if isinstance(value, bool) or value == "auto":
        return value
    text = str(value).strip().lower()
    if text in ("auto", ""):
        return "auto"
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise InputError("move_leader must be auto, true or false, not %r" % (value,))


def leader_move_decision(mode, leader_db_size, measured, request_timeout):
    """Whether to move leadership before the leader's own defragmentation, and why.

    ``measured`` lists (name, db_size_before, duration_s) of the members defragmented earlier in
    this run. With ``auto`` leadership moves only when the leader's estimated defragmentation time
    (its db_size at their throughput) exceeds ``request_timeout``: a transfer costs up to one request
    timeout to every client with a forwarded write in flight, defragmenting in place stalls only
    the leader's own clients, for that estimated time.
    """
    if measured:
        seconds = max(sum(m[2] for m in measured), 0.001)
        throughput = sum(m[1] for m in measured) / seconds
        source = "throughput measured on %s in this run" % ", ".join(m[0] for m in measured)
    else:
        throughput = float(FALLBACK_THROUGHPUT)
        source = "no member was defragmented before it in this run, assumed %s/s (a slow disk)" % mib(throughput)
    estimate = round(float(leader_db_size or 0) / throughput, 3)
    decision = dict(mode=mode, estimate_s=estimate, throughput_bytes_per_s=int(throughput),
                    request_timeout_seconds=request_timeout, move=None, reason=None)
    basis = "estimated defragmentation %.2f s (db_size %s at %s/s, %s)" % (
        estimate, mib(leader_db_size), mib(throughput), source)
    if mode is True:
        decision["move"] = True
        decision["reason"] = "move_leader is true: leadership moves first (%s)" % basis
    elif mode is False:
        decision["move"] = False
        decision["reason"] = "move_leader is false: defragmented in place (%s)" % basis
    elif estimate > request_timeout:
        decision["move"] = True
        decision["reason"] = ("%s > request_timeout_seconds %s: leadership moves first, a transfer stalls clients "
                              "at most one request timeout" % (basis, request_timeout))
    else:
        decision["move"] = False
        decision["reason"] = ("%s <= request_timeout_seconds %s: defragmented in place, cheaper than a leadership "
                              "transfer (up to one request timeout for every client with a forwarded write in "
                              "flight)" % (basis, request_timeout))
    return decision


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
            if len(voters) == 1:
                entry["reason"] += "; the only member (force_single): every request waits for its defragmentation"
            elif options["move_leader"] == "auto":
                entry["reason"] += ("; leader: defragmented last; leadership moves first (to %s) only if its estimated "
                                    "defragmentation time exceeds request_timeout_seconds %s (move_leader auto, "
                                    "decided at its turn)" % (plan["leader_target"] or "a healthy follower",
                                                              options["request_timeout_seconds"]))
            elif options["move_leader"]:
                entry["reason"] += "; leader: defragmented last, after moving leadership to %s" % (
                    plan["leader_target"] or "a healthy follower")
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

    def __init__(self, cluster, options, sleep=time.sleep, clock=time.monotonic, lock=None):
        self.cluster = cluster
        self.options = options_with_defaults(options)
        self.sleep = sleep
        self.clock = clock
        self.lock = lock
        self.result = dict(changed=False, members=[], plan=[], leader_before=None, leader_after=None,
                           compacted_revision=None, alarms_disarmed=[], skipped_reason=None, warnings=[],
                           leader_decision=None)

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
        """Before touching ``name``: the lock is still ours, every member healthy at preflight still is,
        and there is a leader."""
        if self.lock is not None:
            self.lock.check()
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

    def _leader_decision(self, leader_name, states):
        leader_state = next(s for s in states if s["name"] == leader_name)
        done = [self._entry(name) for name in self.result["plan"]]
        measured = [(e["name"], e["db_size_before"], e["duration_s"]) for e in done
                    if e["action"] == "defragmented" and e["duration_s"] is not None]
        decision = leader_move_decision(self.options["move_leader"], leader_state["db_size"], measured,
                                        self.options["request_timeout_seconds"])
        decision["leader"] = leader_name
        self.result["leader_decision"] = decision
        self._entry(leader_name)["reason"] += "; %s" % decision["reason"]
        return decision

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
        if self.lock is not None:
            self.lock.busy = set([name])  # its keep-alives go to the other members meanwhile
        try:
            self.cluster.client_by_name(name).defragment(self.options["member_timeout"])
        except OperationFailed as err:
            if not getattr(err, "deadline_exceeded", False):
                raise
            self._timed_out(name, entry, started)
        finally:
            if self.lock is not None:
                self.lock.busy = set()
        entry["duration_s"] = round(self.clock() - started, 3)
        entry["action"] = "defragmented"
        self.result["changed"] = True
        after = self._wait_caught_up(name)
        entry.update(db_size_after=after["db_size"], db_size_in_use_after=after["db_size_in_use"])

    def _timed_out(self, name, entry, started):
        """The call gave up, etcd may not have: report it as timed out with its size read again, then stop."""
        entry["duration_s"] = round(self.clock() - started, 3)
        entry["action"] = "timed_out"
        # A defragment request that reached the member runs to its end even after the client left.
        self.result["changed"] = True
        try:
            after = self._wait_caught_up(name)
        except CplaneError as err:
            now = "its size could not be read again: %s" % err.msg
        else:
            entry.update(db_size_after=after["db_size"], db_size_in_use_after=after["db_size_in_use"])
            now = "read again once it answered: db_size %s (before %s)%s" % (
                mib(after["db_size"]), mib(entry["db_size_before"]),
                ", so etcd finished it after the call gave up" if after["db_size"] < entry["db_size_before"] else "")
        raise OperationFailed("the defragment call to member %s did not return within member_timeout %ss; %s. "
                              "Raise member_timeout for databases this large or disks this slow"
                              % (name, self.options["member_timeout"], now))

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
            leader_name = plan["leader"]
            if leader_name in plan["order"] and len(voting(states)) > 1:
                # No follower is defragmented in check mode: the estimate uses the fallback throughput.
                self.result["leader_decision"] = dict(leader_move_decision(
                    self.options["move_leader"], by_name[leader_name]["db_size"], [],
                    self.options["request_timeout_seconds"]), leader=leader_name)
            return self.result
        healthy_at_start = set(s["name"] for s in states if s["healthy"])
        current = None
        try:
            for index, name in enumerate(plan["order"]):
                current = name
                gate_states = self._gate(name, healthy_at_start)
                leader = leader_of(gate_states)
                if leader["name"] == name and len(voting(gate_states)) > 1:
                    if self._leader_decision(name, gate_states)["move"]:
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


def _run_without_lock(cluster, options, info, why):
    result = RollingDefrag(cluster, options).run()
    result["lock"] = info
    result["warnings"].insert(0, "the lock %s could not be taken, so this run did not exclude others: %s (a NOSPACE "
                                 "alarm makes etcd refuse every write, including the lock's lease)"
                              % (info["name"], why))
    return result


def run_defrag(endpoints, ca_cert, client_cert, client_key, command_timeout=10, check_mode=False, **options):
    """The etcd_defrag module's backend: the whole run under one lock in etcd (see lock.py)."""
    options = options_with_defaults(options)
    problems = []
    if options["lock_ttl"] < 1:
        problems.append("lock_ttl must be at least 1 (seconds), not %s" % options["lock_ttl"])
    if options["lock_timeout"] < 0:
        problems.append("lock_timeout must not be negative, not %s" % options["lock_timeout"])
    if options["request_timeout_seconds"] <= 0:
        problems.append("request_timeout_seconds must be positive, not %s" % options["request_timeout_seconds"])
    if problems:
        raise InputError("; ".join(problems))
    with Cluster(endpoints, ca_cert, client_cert, client_key, command_timeout, options["quota_bytes"]) as cluster:
        lock = EtcdLock(cluster, options["lock_name"], options["lock_ttl"], holder_identity("etcd_defrag"))
        if check_mode:
            # Check mode changes nothing, so it does not queue for the lock; it says who holds it.
            try:
                holder = lock.holder()
            finally:
                lock.release()  # no lease was granted: this only closes its connections
            result = RollingDefrag(cluster, options).run(check_mode=True)
            result["lock"] = dict(name=lock.name, key=None, ttl=None, holder=None, acquired=False, waited_s=None,
                                  held_by=describe_holder(holder) if holder else None)
            return result
        started = time.monotonic()
        try:
            holder = lock.acquire(wait=options["lock_wait"], timeout=options["lock_timeout"])
        except CplaneError as err:
            info = dict(lock.info(), acquired=False, waited_s=round(time.monotonic() - started, 3), held_by=None)
            if NOSPACE_REFUSAL not in err.msg:
                err.result["lock"] = info
                raise
            # NOSPACE: etcd refuses lease grants and puts until space is freed, and freeing it is
            # what this run is for (etcd server/etcdserver/api/v3rpc/quota.go, quotaLeaseServer.LeaseGrant).
            return _run_without_lock(cluster, options, info, err.msg)
        info = dict(lock.info(), acquired=holder is None, waited_s=round(time.monotonic() - started, 3),
                    held_by=describe_holder(holder) if holder else None)
        if holder is not None:
            result = RollingDefrag(cluster, options).result
            result.update(lock=info, skipped_reason="another run holds the lock %s: %s; lock_wait is false, so this "
                                                    "run did nothing" % (lock.name, info["held_by"]))
            return result
        try:
            result = RollingDefrag(cluster, options, lock=lock).run()
        except CplaneError as err:
            err.result["lock"] = info
            raise
        finally:
            lock.release()
        result["lock"] = info
        return result
