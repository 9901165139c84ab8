#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: etcd_maintenance_turn
short_description: Decide whether this control-plane node runs tonight's unattended etcd maintenance
version_added: 0.1.0
description:
  - Every control-plane node runs the same nightly timer; this module makes exactly one of them act.
  - The local member is the member whose client URL is O(local_endpoint) (as M(cplane.kubeadm.etcd_member_info)
    lists them), else the member that answers on it (kubeadm advertises the node IP but the node's endpoint
    is C(https://127.0.0.1:2379)).
  - When the local member is the leader, this node is the candidate. When the local member or the leader
    cannot be told (the local member does not answer, no leader is agreed), every such node is a candidate.
  - A candidate claims the night's turn, a key under O(turn_name) bound to a lease of O(turn_ttl) seconds
    (the first key created wins, as with C(etcdctl lock)); the claim is left to expire, so a later run the
    same night on another node (after defragmentation moved leadership) stands down.
  - Returns RV(act) and a sentence RV(reason) saying which node acts and why; nodes that do not act should log
    it and end successfully.
author: cplane.kubeadm contributors (@cplane)
extends_documentation_fragment:
  - cplane.kubeadm.etcd_connection
  - cplane.kubeadm.attributes
attributes:
  check_mode:
    support: full
    details:
      - Decides the same way but does not claim the turn; RV(act) says whether it would act.
  diff_mode:
    support: N/A
    details:
      - The only change is a lease-bound key in etcd.
  idempotent:
    description: When run again with the same parameters, the module reports no change.
    support: full
    details:
      - A second run while the claim lives finds it and reports RV(act=false) with C(changed=false).
options:
  local_endpoint:
    description: This node's own etcd client URL. Defaults to the first of O(endpoints).
    type: str
  node:
    description: This node's name, stored in the claim and reported to the other nodes.
    type: str
    required: true
  turn_name:
    description: etcd key prefix of the nightly claim.
    type: str
    default: /cplane.kubeadm/turns/etcd_maintenance
  turn_ttl:
    description:
      - Seconds the claim lives (5 to 72000). Longer than a run plus the spread of the nodes' timers,
        well under a day so that the next night is free. A new etcd leader renews leases to their full TTL,
        so a claim can outlive this after a leader change.
    type: int
    default: 14400
notes:
  - Needs a working quorum to claim the turn; a cluster without one fails the run, which is what an
    unattended run should report.
seealso:
  - module: cplane.kubeadm.etcd_defrag
  - module: cplane.kubeadm.run_state
"""

EXAMPLES = r"""
- name: Decide whether this node runs tonight's maintenance
  cplane.kubeadm.etcd_maintenance_turn:
    node: "{{ inventory_hostname }}"
  register: turn

- name: Say who acts
  ansible.builtin.debug:
    msg: "{{ turn.reason }}"
"""

RETURN = r"""
act:
  description: Whether this node acts tonight (in check mode, whether it would).
  returned: always
  type: bool
basis:
  description: V(leader) when the leader decided, V(claim) when the first claim decided (the leader or the local member was unknown).
  returned: always
  type: str
reason:
  description: Which node acts and why, in one sentence.
  returned: always
  type: str
  sample: "the local member cp1 is the leader (its client URL is https://10.0.0.1:2379): this node (cp1) claimed tonight's turn for 14400s"
node:
  description: O(node).
  returned: always
  type: str
local_member:
  description: Name of the local member; null when it could not be told.
  returned: always
  type: str
leader:
  description: Name of the leader; null when none is agreed.
  returned: always
  type: str
voting_members:
  description: Voting members in the member list.
  returned: always
  type: int
healthy_voting_members:
  description: Voting members that answered healthy.
  returned: always
  type: int
claim:
  description: The night's claim (this node's when RV(act)); null when nobody has claimed.
  returned: always
  type: dict
  contains:
    node:
      description: Node that claimed.
      type: str
    member:
      description: Its local member.
      type: str
    basis:
      description: Why it was a candidate (V(leader) or V(claim)).
      type: str
    claimed:
      description: When (UTC, ISO 8601).
      type: str
    key:
      description: The claim's etcd key.
      type: str
turn:
  description: O(turn_name) and O(turn_ttl).
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cplane.kubeadm.plugins.module_utils import _deps
from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import CplaneError, fail_from
from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd.args import connection_params, etcd_argument_spec
from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd.turn import run_turn


def main():
    module = AnsibleModule(
        argument_spec=etcd_argument_spec(
            local_endpoint=dict(type="str"),
            node=dict(type="str", required=True),
            turn_name=dict(type="str", default="/cplane.kubeadm/turns/etcd_maintenance"),
            turn_ttl=dict(type="int", default=14400),
        ),
        supports_check_mode=True,
    )
    _deps.assert_required(module, *_deps.ETCD)
    try:
        result = run_turn(local_endpoint=module.params["local_endpoint"], node=module.params["node"],
                          turn_name=module.params["turn_name"], turn_ttl=module.params["turn_ttl"],
                          check_mode=module.check_mode, **connection_params(module.params))
    except CplaneError as err:
        fail_from(module, err, changed=False, act=False)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
