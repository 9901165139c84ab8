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
  - B(Order.) Followers first, one at a time. Before the leader's turn leadership is moved to the healthiest
    follower that was already defragmented (else the healthiest follower, highest applied index), then the former
    leader is defragmented. Before each member every member that was healthy at preflight must still be healthy;
    after each member the module waits until it is healthy and has applied up to the leader's applied index,
    then pauses O(pause_seconds).
  - B(Failure.) The run stops at the first failure. Later members are not touched, the message names the member,
    and the result still lists what was done.
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
      - Move leadership away from the leader before its own defragmentation (multi-member clusters).
      - When false the leader is defragmented in place, last; writes to the whole cluster stall meanwhile.
    type: bool
    default: true
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
    endpoint wait (kube-apiserver retries on other endpoints). Moving leadership first keeps the cluster
    able to commit writes while the former leader is defragmented.
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
        - V(defragmented); V(skipped) (see reason); V(planned) in check mode, or for members not reached
          because the run stopped.
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
      description: Database size after its defragmentation; null when not defragmented.
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
  description: Why the whole run did nothing (single-member cluster, no member above the thresholds); null otherwise.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cplane.kubeadm.plugins.module_utils import _deps
from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import CplaneError, fail_from
from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd.args import connection_params, etcd_argument_spec
from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd.defrag import DEFAULT_OPTIONS, run_defrag

OPTION_TYPES = dict(
    force="bool", force_single="bool", force_unhealthy="bool", compact="bool", move_leader="bool",
    pause_seconds="float", member_timeout="int", health_timeout="int", min_fragmentation="float",
    min_db_size="int", max_quota_usage="float", quota_bytes="int", disarm_nospace="bool",
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
