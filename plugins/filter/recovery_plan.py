# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The recovery_plan filter (documented in recovery_plan.yml)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.cplane.kubeadm.plugins.module_utils._recovery import RecoveryRefused, plan_recovery


def recovery_plan(hosts, cluster, requested="auto", force=False):
    if not isinstance(hosts, list) or not isinstance(cluster, dict):
        raise AnsibleFilterError("recovery_plan expects a list of host facts and the etcd_member_info result")
    try:
        return plan_recovery(hosts, cluster, requested, force)
    except RecoveryRefused as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    def filters(self):
        return {"recovery_plan": recovery_plan}
