#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: etcd_defrag
short_description: Defragment an etcd cluster one member at a time, leader last
version_added: 0.1.0
description:
  - Rolling, leader-aware defragmentation of a whole etcd cluster from one task (run it once, not on
    every node). Members are discovered from the member list and each one is talked to on its own client URL.
  - B(Preflight.) Every voting member must be reachable and healthy, there must be a leader and no alarm other
    than C(NOSPACE) may be active; otherwise the module fails naming the member and the problem, before it
    changes anything (O(force_unhealthy) overrides). A single-member cluster is skipped with a reason unless
    O(force_single) is set, because defragmenting its only member blocks every request until it finishes.
  - B(Selection.) A voting member is defragmented when its fragmentation (1 - in use / size) is at least
    O(min_fragmentation) and its database is at least O(min_db_size), or when its database uses at least
    O(max_quota_usage) of its quota. O(force) selects every voting member. Learners are skipped with a reason.
  - B(Order.) Followers first, one at a time, the leader last. With O(move_leader=auto) (the default) leadership
    is moved away before the leader's turn only when the leader's estimated defragmentation time (its database size
    at the throughput the members defragmented before it showed in this run) exceeds O(request_timeout_seconds);
    otherwise the leader is defragmented in place. The estimate, the decision and the reason are returned in
    RV(leader_decision). Leadership goes to the healthiest follower that was already defragmented (else the
    healthiest follower, highest applied index). Before each member every member that was healthy at preflight
    must still be healthy; after each member the module waits until it is healthy and has applied up to the
    leader's applied index, then pauses O(pause_seconds).
  - B(One run at a time.) The whole run holds a lock in etcd itself (O(lock_name)), attached to a lease of
    O(lock_ttl) seconds that the module keeps alive while it runs, so a lock whose holder died expires by itself.
    The scheme is etcd's own (C(concurrency.Mutex), C(etcdctl lock)), so C(etcdctl lock <lock_name>) excludes
    defragmentation too. A second run waits up to O(lock_timeout) seconds and then fails naming the holder (host,
    pid, start time), or with O(lock_wait=false) does nothing and says why in RV(skipped_reason).
  - B(Failure.) The run stops at the first failure. Later members are not touched, the message names the member,
    and the result still lists what was done. A member whose defragment call did not return within
    O(member_timeout) is reported as V(timed_out), with its size read again once it answers (etcd may finish it).
  - O(compact=true) first compacts the keyspace history to the current revision (physically), which turns
    superseded revisions into free pages for defragmentation to give back.
  - O(disarm_nospace=true) disarms C(NOSPACE) alarms afterwards, only when every member's database is below
    90% of its quota (otherwise etcd would raise the alarm again at once).
author: cplane.kubeadm contributors (@cplane)
extends_documentation_fragment:
  - cplane.kubeadm.etcd_connection
  - cplane.kubeadm.attributes
attributes:
  check_mode:
    support: full
    details:
      - Runs the preflight and returns the plan (members, order, reasons) without compacting, moving
        leadership, defragmenting or disarming anything.
      - Does not take the lock (it changes nothing), but reports who holds it in RV(lock.held_by).
  diff_mode:
    support: none
  idempotent:
    description: When run again with the same parameters, the module reports no change.
    support: full
    details:
      - A second run finds no member above the thresholds and changes nothing (unless O(force)).
options:
  force:
    description: Defragment every healthy voting member regardless of the thresholds.
    type: bool
    default: false
  force_single:
    description:
      - Defragment a single-member cluster. Every request to it blocks for the duration.
    type: bool
    default: false
  force_unhealthy:
    description:
      - Go on although the preflight found unhealthy members, no leader or alarms other than NOSPACE.
      - Unhealthy members are skipped; members healthy at the start must stay healthy during the run.
    type: bool
    default: false
  compact:
    description: Compact the keyspace to the current revision (physical) before selecting and defragmenting.
    type: bool
    default: false
  move_leader:
    description:
      - V(auto), V(true) or V(false) (booleans and C(yes)/C(no) are accepted too).
      - V(true) moves leadership away from the leader before its own defragmentation (multi-member clusters).
        In etcd 3.5 a transfer makes every client with a write forwarded to the leader at that moment wait
        one request timeout (O(request_timeout_seconds)).
      - V(false) defragments the leader in place, last; its own clients wait for its defragmentation.
      - V(auto) moves leadership only when the leader's estimated defragmentation time exceeds
        O(request_timeout_seconds). The estimate is the leader's database size divided by the throughput
        (bytes of database per second of defragment call) of the members defragmented before it in this run;
        when there is none, 20 MiB/s is assumed (a slow disk).
    type: raw
    default: auto
  request_timeout_seconds:
    description:
      - etcd's request timeout, the cost of a leadership transfer for O(move_leader=auto).
      - etcd computes it as 5 s + 2 x C(--election-timeout) (C(ReqTimeout) in etcd's server/config/config.go),
        which makes 7 s with the default election timeout of 1000 ms, which kubeadm keeps.
    type: float
    default: 7
  lock_name:
    description:
      - Key prefix of the lock in etcd; the holder's key is C(<lock_name>/<lease id in hex>).
      - Runs that should exclude each other (every etcd_defrag against this cluster) must use the same name.
    type: str
    default: /cplane.kubeadm/locks/etcd_defrag
  lock_wait:
    description:
      - Wait for a lock held by another run (up to O(lock_timeout)). When false, a held lock makes the run
        do nothing, with the holder named in RV(skipped_reason) (changed false, not failed).
    type: bool
    default: true
  lock_timeout:
    description: Seconds to wait for the lock before failing with a message that names its holder.
    type: int
    default: 600
  lock_ttl:
    description:
      - TTL in seconds of the lease the lock is attached to; the module renews it every third of it while it runs.
      - A run that was killed holds the lock at most this long. etcd 3.5 cannot renew leases while the leader
        itself is being defragmented (it waits for its applied index), so keep this above the leader's in-place
        defragmentation time.
    type: int
    default: 30
  pause_seconds:
    description: Seconds to wait after each member once it is healthy and caught up.
    type: float
    default: 1
  member_timeout:
    description: Seconds one member's defragmentation (and the compaction) may take before the run fails.
    type: int
    default: 600
  health_timeout:
    description:
      - Seconds to wait for a member to be healthy and caught up with the leader after its defragmentation,
        and for a leadership move to complete.
    type: int
    default: 60
  min_fragmentation:
    description: Minimum fragmentation (0-1) for a member to be selected.
    type: float
    default: 0.3
  min_db_size:
    description: Minimum database size in bytes for a member to be selected by fragmentation.
    type: int
    default: 104857600
  max_quota_usage:
    description: A member whose db_size / quota reaches this share (0-1) is selected whatever its fragmentation.
    type: float
    default: 0.8
  quota_bytes:
    description:
      - The members' C(--quota-backend-bytes), for members that do not report their quota (etcd before 3.6).
      - When unset, etcd's default of 2 GiB is assumed for them.
    type: int
  disarm_nospace:
    description: Disarm C(NOSPACE) alarms after the defragmentation when every member is below 90% of its quota.
    type: bool
    default: false
notes:
  - Defragmentation blocks reads and writes on the member being defragmented; clients of that member's
    endpoint wait (kube-apiserver retries on other endpoints). A leader defragmented in place keeps committing
    (raft and its log are separate from the backend), only its own clients wait; a leadership transfer instead
    makes clients with a write forwarded at that moment wait etcd's request timeout. See the benchmark in
    docs/benchmarks/defrag.md of the collection.
seealso:
  - module: cplane.kubeadm.etcd_member_info
  - name: etcd maintenance guide
    description: Defragmentation in the etcd operations guide.
    link: https://etcd.io/docs/v3.5/op-guide/maintenance/#defragmentation
"""

EXAMPLES = r"""
- name: Defragment the members that need it (followers first, leader last)
  cplane.kubeadm.etcd_defrag:
    endpoints:
      - https://127.0.0.1:2379
  register: defrag
  run_once: true

- name: Show what would be defragmented, in which order
  cplane.kubeadm.etcd_defrag:
    endpoints: ["https://10.0.0.11:2379"]
  check_mode: true
  register: plan

- name: From every node's timer - one run defragments, the others find the lock held and skip
  cplane.kubeadm.etcd_defrag:
    endpoints: ["https://127.0.0.1:2379"]
    lock_wait: false

- name: Always move leadership away from the leader before its defragmentation (the former default)
  cplane.kubeadm.etcd_defrag:
    endpoints: ["https://127.0.0.1:2379"]
    move_leader: true

- name: After a NOSPACE alarm, compact, defragment every member and disarm
  cplane.kubeadm.etcd_defrag:
    endpoints: ["https://10.0.0.11:2379"]
    compact: true
    force: true
    disarm_nospace: true
"""

RETURN = r"""
members:
  description: Every member, in member-list order, with what happened to it.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Member name.
      type: str
    id:
      description: Member id in hex.
      type: str
    action:
      description:
        - V(defragmented); V(skipped) (see reason); V(timed_out) when its defragment call did not return within
          O(member_timeout) (the run stopped there; RV(members[].db_size_after) is its size read again once it
          answered, null if it did not); V(planned) in check mode, or for members not reached because the run
          stopped.
      type: str
    reason:
      description: Why the member was selected or skipped; where the run stopped.
      type: str
    db_size_before:
      description: Database size in bytes before.
      type: int
    db_size_in_use_before:
      description: Bytes in use before.
      type: int
    db_size_after:
      description: Database size after its defragmentation (or read again after a timeout); null when not defragmented.
      type: int
    db_size_in_use_after:
      description: Bytes in use after; null when not defragmented.
      type: int
    duration_s:
      description: Seconds its defragment call took; null when not defragmented.
      type: float
    was_leader:
      description: Whether the member was the leader when the run started.
      type: bool
plan:
  description: Names of the members to defragment, in order.
  returned: always
  type: list
  elements: str
leader_before:
  description: Leader when the run started.
  returned: always
  type: str
leader_after:
  description: Leader when the run ended.
  returned: always
  type: str
leader_target:
  description: In check mode, the follower leadership would move to (chosen again at run time).
  returned: check mode
  type: str
leader_moved_to:
  description: The member leadership was moved to before the former leader's defragmentation.
  returned: when leadership was moved
  type: str
compacted_revision:
  description: Revision the keyspace was compacted to; null when O(compact) is off or nothing was compacted.
  returned: always
  type: int
alarms_disarmed:
  description: NOSPACE alarms disarmed.
  returned: always
  type: list
  elements: dict
skipped_reason:
  description:
    - Why the whole run did nothing (single-member cluster, no member above the thresholds, the lock held by another
      run with O(lock_wait=false)); null otherwise.
  returned: always
  type: str
leader_decision:
  description:
    - Whether leadership was moved before the leader's defragmentation, and why (see O(move_leader)). In check mode
      the estimate uses the assumed throughput, since nothing was defragmented. Null when the leader was not
      defragmented or the cluster has one member.
  returned: always
  type: dict
  contains:
    leader:
      description: The member that was leader at its turn.
      type: str
    mode:
      description: O(move_leader) as understood (V(auto), V(true) or V(false)).
      type: raw
    estimate_s:
      description: Estimated seconds of the leader's defragmentation.
      type: float
    throughput_bytes_per_s:
      description: Throughput the estimate used, measured on the members defragmented before it or assumed.
      type: int
    request_timeout_seconds:
      description: The cost of a transfer it was compared with.
      type: float
    move:
      description: Whether leadership was (or, in check mode, would be) moved.
      type: bool
    reason:
      description: The decision in words, with the figures.
      type: str
  sample:
    leader: cp1
    mode: auto
    estimate_s: 0.41
    throughput_bytes_per_s: 98566144
    request_timeout_seconds: 7.0
    move: false
    reason: "estimated defragmentation 0.41 s (...) <= request_timeout_seconds 7.0: defragmented in place, ..."
lock:
  description: The lock the run held, waited for or found held.
  returned: always
  type: dict
  contains:
    name:
      description: O(lock_name).
      type: str
    key:
      description: This run's key under it (null in check mode).
      type: str
    ttl:
      description: TTL in seconds etcd granted its lease (null in check mode).
      type: int
    holder:
      description: What this run wrote as its identity (tool, host, pid, started).
      type: dict
    acquired:
      description:
        - Whether this run held the lock (false in check mode and when skipped).
        - Also false when a C(NOSPACE) alarm made etcd refuse the lock's lease; the run then went on without it
          and warned, since freeing space is what it is for.
      type: bool
    waited_s:
      description: Seconds spent getting the lock.
      type: float
    held_by:
      description: The other holder, when the run skipped (O(lock_wait=false)) or in check mode; null otherwise.
      type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cplane.kubeadm.plugins.module_utils import _deps
from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import CplaneError, fail_from
from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd.args import connection_params, etcd_argument_spec
from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd.defrag import DEFAULT_OPTIONS, run_defrag

OPTION_TYPES = dict(
    force="bool", force_single="bool", force_unhealthy="bool", compact="bool", move_leader="raw",
    pause_seconds="float", member_timeout="int", health_timeout="int", min_fragmentation="float",
    min_db_size="int", max_quota_usage="float", quota_bytes="int", disarm_nospace="bool",
    request_timeout_seconds="float", lock_name="str", lock_wait="bool", lock_timeout="int", lock_ttl="int",
)


def main():
    module = AnsibleModule(
        # Defaults live with the backend (DEFAULT_OPTIONS), so callers of run_defrag get the same ones.
        argument_spec=etcd_argument_spec(**dict(
            (name, dict(type=kind, default=DEFAULT_OPTIONS[name])) for name, kind in OPTION_TYPES.items())),
        supports_check_mode=True,
    )
    _deps.assert_required(module, *_deps.ETCD)
    options = dict((k, v) for k, v in module.params.items() if k not in connection_params(module.params))
    try:
        result = run_defrag(check_mode=module.check_mode, **dict(connection_params(module.params), **options))
    except CplaneError as err:
        for warning in err.result.pop("warnings", []):
            module.warn(warning)
        fail_from(module, err, changed=err.result.get("changed", False))
    for warning in result.pop("warnings"):
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
