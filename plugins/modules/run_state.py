#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: run_state
short_description: Record the outcome of an unattended run (etcd maintenance, certificate renewal) in its state file
version_added: 0.1.0
description:
  - Writes C(<state_dir>/<job>.json) atomically, saying when the run started and finished, whether it succeeded,
    whether this node acted and why, what each step did and how long it took, the last success of the run
    and of each step (carried over from the previous state when a step did not succeed this time) and the
    number of consecutive failures.
  - The roles call it at the end of every timer run, failed ones included; the Prometheus metrics read the
    file. The format is described in C(plugins/module_utils/_runstate.py) and docs/etcd_maintenance.md.
author: cplane.kubeadm contributors (@cplane)
extends_documentation_fragment:
  - cplane.kubeadm.attributes
attributes:
  check_mode:
    support: full
    details:
      - Returns the state it would write; writes nothing.
  diff_mode:
    support: full
  idempotent:
    description: When run again with the same parameters, the module reports no change.
    support: none
    details:
      - Each call records one run (the consecutive failure count and last successes move on).
options:
  job:
    description: Which job's state to write.
    type: str
    required: true
    choices: [etcd_maintenance, cert_renewal]
  state_dir:
    description: Directory of the state files (created 0755 when missing).
    type: path
    default: /var/lib/cplane-kubeadm/runs
  host:
    description: The node's name.
    type: str
    required: true
  started:
    description: When the run started, unix seconds.
    type: float
    required: true
  finished:
    description: When it finished, unix seconds; now when unset.
    type: float
  success:
    description: Whether the run succeeded (a node that did not act succeeds).
    type: bool
    required: true
  acted:
    description: Whether this node did the work (false when another node acted).
    type: bool
    required: true
  reason:
    description: Why it acted or not, or why it failed.
    type: str
    default: ""
  steps:
    description:
      - Step name to outcome, each a dict with C(success) and C(started)/C(finished) unix seconds (C(seconds) is
        computed when missing; a step without C(finished) ends at O(finished)), plus any details (paths, sizes).
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Record this run
  cplane.kubeadm.run_state:
    job: etcd_maintenance
    host: "{{ inventory_hostname }}"
    started: "{{ run_started }}"
    success: true
    acted: true
    reason: the local member is the leader
    steps:
      defrag: {success: true, started: 1764547200.0, finished: 1764547212.3}
"""

RETURN = r"""
path:
  description: The state file.
  returned: always
  type: str
  sample: /var/lib/cplane-kubeadm/runs/etcd_maintenance.json
state:
  description: What was written (in check mode, what would be), the format of C(_runstate.py).
  returned: always
  type: dict
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import CplaneError, fail_from
from ansible_collections.cplane.kubeadm.plugins.module_utils._runstate import (
    JOBS, merge_run, normalize_steps, read_run_state, record_run, state_path)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            job=dict(type="str", required=True, choices=list(JOBS)),
            state_dir=dict(type="path", default="/var/lib/cplane-kubeadm/runs"),
            host=dict(type="str", required=True),
            started=dict(type="float", required=True),
            finished=dict(type="float"),
            success=dict(type="bool", required=True),
            acted=dict(type="bool", required=True),
            reason=dict(type="str", default=""),
            steps=dict(type="dict", default={}),
        ),
        supports_check_mode=True,
    )
    params = module.params
    path = state_path(params["job"], params["state_dir"])
    finished = params["finished"] if params["finished"] is not None else time.time()
    try:
        outcome = dict(job=params["job"], host=params["host"], started=params["started"], finished=finished,
                       success=params["success"], acted=params["acted"], reason=params["reason"],
                       steps=normalize_steps(params["steps"], finished))
        previous = read_run_state(path)
        if module.check_mode:
            state = merge_run(previous, **outcome)
        else:
            state = record_run(path, **outcome)
    except CplaneError as err:
        fail_from(module, err, changed=False, path=path)
    result = dict(changed=True, path=path, state=state)
    if module._diff:
        result["diff"] = dict(before=previous or {}, after=state, before_header=path, after_header=path)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
