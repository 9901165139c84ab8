#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: etcd_member_info
short_description: Report every etcd member's health, size, fragmentation and raft position
version_added: 0.1.0
description:
  - Reads the member list from the first reachable endpoint in O(endpoints), then asks every member
    on its own client URL for its status, in parallel, each request with a gRPC deadline of
    O(command_timeout) seconds, so a hung (stopped) member costs one timeout and does not hang the task.
  - Reports the fields etcd 3.4+ adds to the status response (applied index, size in use, learner flag,
    quota) that python-etcd3's protocol definitions do not know, read from the raw response.
  - A member is V(healthy) when it answers its status without errors and serves a linearizable read
    (which needs a working quorum); learners are checked with a serializable read.
  - Fails only when no endpoint answers or the TLS files are unusable; an unreachable member is
    reported with RV(members[].healthy=false) and the reason in RV(members[].error).
author: cplane.kubeadm contributors (@cplane)
extends_documentation_fragment:
  - cplane.kubeadm.etcd_connection
  - cplane.kubeadm.attributes
  - cplane.kubeadm.attributes.INFO_MODULE
options:
  quota_bytes:
    description:
      - The members' C(--quota-backend-bytes), used for RV(members[].quota_usage) when a member does not
        report its quota (etcd before 3.6).
      - When unset, etcd's default of 2 GiB is assumed for such members.
    type: int
notes:
  - Private key contents are never read into the result; only the paths appear in it.
seealso:
  - module: cplane.kubeadm.etcd_defrag
"""

EXAMPLES = r"""
- name: Read the etcd cluster state from a control-plane node
  cplane.kubeadm.etcd_member_info:
    endpoints:
      - https://127.0.0.1:2379
  register: etcd

- name: Stop when the cluster has lost quorum
  ansible.builtin.assert:
    that: etcd.has_quorum
    fail_msg: "etcd has {{ etcd.healthy_voting_members }} healthy voting members, needs {{ etcd.quorum }}"

- name: Show each member's fragmentation
  ansible.builtin.debug:
    msg: "{{ item.name }}: {{ item.fragmentation }} of {{ item.db_size }} bytes is free"
  loop: "{{ etcd.members }}"
"""

RETURN = r"""
members:
  description: One entry per member of the member list (voting members and learners).
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Member id in hex, as C(etcdctl member list) prints it.
      type: str
      sample: 8e9e05c52164694d
    name:
      description: Member name (the hex id for a member that never started).
      type: str
    client_urls:
      description: Client URLs the member advertises; the first one is used to talk to it.
      type: list
      elements: str
    peer_urls:
      description: Peer URLs.
      type: list
      elements: str
    is_leader:
      description: Whether the member reports itself as leader.
      type: bool
    is_learner:
      description: Whether the member is a non-voting learner.
      type: bool
    version:
      description: etcd server version; null when unreachable.
      type: str
    db_size:
      description: Size of the backend database file in bytes.
      type: int
    db_size_in_use:
      description: Bytes of the backend file in use; the rest is free pages that only defragmentation gives back.
      type: int
    fragmentation:
      description: 1 - db_size_in_use / db_size, rounded to 4 decimals.
      type: float
    raft_term:
      description: Raft term.
      type: int
    raft_index:
      description: Raft committed index.
      type: int
    raft_applied_index:
      description: Raft index applied to the backend.
      type: int
    revision:
      description: The member's current key-value store revision; null when unreachable.
      type: int
    db_size_quota:
      description: Backend quota in bytes (reported by etcd 3.6+, else O(quota_bytes) or 2 GiB).
      type: int
    quota_usage:
      description: db_size / db_size_quota.
      type: float
    alarms:
      description: Alarms raised by this member (C(NOSPACE), C(CORRUPT)).
      type: list
      elements: str
    cluster_id:
      description:
        - Cluster id in hex the member reports; null when unreachable.
        - Members reporting different ids are not one cluster (a member that bootstrapped a cluster of its own).
      type: str
    healthy:
      description: Whether the member answered its status without errors and served a read.
      type: bool
    error:
      description: Why the member is not healthy; null when healthy.
      type: str
leader:
  description: Name of the leader; null when there is none.
  returned: always
  type: str
quorum:
  description: Number of voting members needed for quorum.
  returned: always
  type: int
voting_members:
  description: Number of voting members (learners excluded).
  returned: always
  type: int
healthy_voting_members:
  description: Number of healthy voting members.
  returned: always
  type: int
has_quorum:
  description: Whether healthy_voting_members >= quorum.
  returned: always
  type: bool
alarms:
  description: Active alarms in the cluster.
  returned: always
  type: list
  elements: dict
  contains:
    member:
      description: Name of the member the alarm is raised for.
      type: str
    member_id:
      description: Its id in hex.
      type: str
    alarm:
      description: C(NOSPACE) or C(CORRUPT).
      type: str
learners:
  description: Names of the learners.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cplane.kubeadm.plugins.module_utils import _deps
from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import CplaneError, fail_from
from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd.args import connection_params, etcd_argument_spec
from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd.members import gather_member_info


def main():
    module = AnsibleModule(argument_spec=etcd_argument_spec(quota_bytes=dict(type="int")), supports_check_mode=True)
    _deps.assert_required(module, *_deps.ETCD)
    try:
        result = gather_member_info(quota_bytes=module.params["quota_bytes"], **connection_params(module.params))
    except CplaneError as err:
        fail_from(module, err, changed=False)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
