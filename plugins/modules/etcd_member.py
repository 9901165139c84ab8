#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: etcd_member
short_description: Add an etcd member as a learner, promote it, or remove a member without losing quorum
version_added: 0.1.0
description:
  - V(present) adds the member as a non-voting learner when no member has that name or those peer URLs,
    and returns the C(--initial-cluster) value and C(--initial-cluster-state=existing) to start it with,
    as C(etcdctl member add) prints them. A learner does not count towards quorum, so adding it is safe
    while the cluster has quorum; the module refuses when it has not.
  - V(promoted) makes a learner a voting member once etcd agrees it has caught up with the leader (etcd
    refuses the promotion until then); the module retries for O(promote_timeout) seconds, then waits for
    the member to be healthy.
  - V(absent) removes the member named O(name) or with id O(id). It refuses when the remaining voting
    members would not have a healthy quorum, when no other voting member is healthy, and when it is the
    last voting member, unless O(force=true).
  - One member changes per task; every result lists the members before and after.
author: cplane.kubeadm contributors (@cplane)
extends_documentation_fragment:
  - cplane.kubeadm.etcd_connection
  - cplane.kubeadm.attributes
attributes:
  check_mode:
    support: full
    details:
      - Reads the cluster and returns the planned change (RV(action)) without changing the membership.
  diff_mode:
    support: none
options:
  state:
    description:
      - V(present) adds a learner; V(promoted) makes a learner a voter; V(absent) removes a member.
    type: str
    choices: [present, promoted, absent]
    default: present
  name:
    description:
      - Member name (etcd's C(--name); kubeadm uses the node name).
      - Required for O(state=present); O(state=promoted) and O(state=absent) need O(name) or O(id).
    type: str
  id:
    description:
      - Member id in hex, as C(etcdctl member list) prints it (a C(0x) prefix is accepted).
    type: str
  peer_urls:
    description:
      - The new member's C(--initial-advertise-peer-urls). Required for O(state=present).
    type: list
    elements: str
  force:
    description:
      - With O(state=absent), remove even when the remaining members would lack a healthy quorum.
    type: bool
    default: false
  promote_timeout:
    description:
      - Seconds to keep asking etcd to promote a learner that has not caught up yet.
    type: int
    default: 60
  health_timeout:
    description:
      - Seconds to wait, after a promotion, for the member to be healthy and the cluster to have quorum.
    type: int
    default: 60
seealso:
  - module: cplane.kubeadm.etcd_member_info
  - name: etcd runtime reconfiguration
    description: Adding, promoting and removing members.
    link: https://etcd.io/docs/v3.5/op-guide/runtime-configuration/
"""

EXAMPLES = r"""
- name: Add the replacement node's member as a learner
  cplane.kubeadm.etcd_member:
    name: cp3
    peer_urls: ["https://10.0.0.13:2380"]
  register: joined

- name: Start it with the returned settings (etcd.yaml), then promote it
  cplane.kubeadm.etcd_member:
    name: cp3
    state: promoted
    promote_timeout: 120

- name: Remove a member whose node is gone (refused if that would cost quorum)
  cplane.kubeadm.etcd_member:
    name: cp3
    state: absent
"""

RETURN = r"""
action:
  description: V(add_learner), V(promote), V(remove), or V(none) when nothing needed to change.
  returned: always
  type: str
member:
  description: The member acted on (or found); null when O(state=absent) found no such member.
  returned: always
  type: dict
  contains:
    id:
      description: Member id in hex (0 in check mode for a member not added yet).
      type: str
    name:
      description: Member name.
      type: str
    peer_urls:
      description: Peer URLs.
      type: list
      elements: str
    client_urls:
      description: Client URLs; empty for a member that never started.
      type: list
      elements: str
    is_learner:
      description: Whether the member is a learner.
      type: bool
members_before:
  description: The member list before the change (same keys as RV(member)).
  returned: always
  type: list
  elements: dict
members_after:
  description: The member list after the change; equal to RV(members_before) in check mode and when nothing changed.
  returned: always
  type: list
  elements: dict
initial_cluster:
  description: The C(--initial-cluster) value to start the member with.
  returned: when O(state=present)
  type: str
  sample: cp1=https://10.0.0.11:2380,cp2=https://10.0.0.12:2380,cp3=https://10.0.0.13:2380
initial_cluster_state:
  description: Always V(existing) for a member joining a running cluster.
  returned: when O(state=present)
  type: str
msg:
  description: What was done or found.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cplane.kubeadm.plugins.module_utils import _deps
from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import CplaneError, fail_from
from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd.args import connection_params, etcd_argument_spec
from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd.membership import change_membership


def main():
    module = AnsibleModule(
        argument_spec=etcd_argument_spec(
            state=dict(type="str", choices=["present", "promoted", "absent"], default="present"),
            name=dict(type="str"),
            id=dict(type="str"),
            peer_urls=dict(type="list", elements="str"),
            force=dict(type="bool", default=False),
            promote_timeout=dict(type="int", default=60),
            health_timeout=dict(type="int", default=60),
        ),
        required_if=[("state", "present", ("name", "peer_urls")),
                     ("state", "promoted", ("name", "id"), True),
                     ("state", "absent", ("name", "id"), True)],
        mutually_exclusive=[("name", "id")],
        supports_check_mode=True,
    )
    _deps.assert_required(module, *_deps.ETCD)
    params = module.params
    try:
        result = change_membership(state=params["state"], name=params["name"], member_id=params["id"],
                                   peer_urls=params["peer_urls"], force=params["force"],
                                   promote_timeout=params["promote_timeout"], health_timeout=params["health_timeout"],
                                   check_mode=module.check_mode, **connection_params(params))
    except CplaneError as err:
        fail_from(module, err, changed=False)
    for warning in result.pop("warnings"):
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
