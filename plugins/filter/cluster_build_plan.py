# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster_build_plan filter (documented in cluster_build_plan.yml)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.cplane.kubeadm.plugins.module_utils._build.plan import plan_build


def cluster_build_plan(states, control_planes, workers, allow_single=False, allow_even=False, reset_half_joined=False):
    if states is not None and not isinstance(states, dict):
        raise AnsibleFilterError("cluster_build_plan expects {host: kubeadm_node_state result} or None")
    for name, value in (("control_planes", control_planes), ("workers", workers)):
        if not isinstance(value, list):
            raise AnsibleFilterError("cluster_build_plan: %s must be a list of host names" % name)
    return plan_build(control_planes, workers, states, allow_single, allow_even, reset_half_joined)


class FilterModule(object):
    def filters(self):
        return {"cluster_build_plan": cluster_build_plan}
