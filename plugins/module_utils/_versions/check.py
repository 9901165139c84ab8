# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backend of node_version_check: read the cluster (and optionally this host), judge the skew."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.cplane.kubeadm.plugins.module_utils import _k8s_client
from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import InputError
from ansible_collections.cplane.kubeadm.plugins.module_utils._versions import cluster, local, skew


def failure_message(fail_on, violations, mixed):
    """The fail_json message when ``fail_on`` is met, else None."""
    found = list(violations) + (list(mixed) if fail_on == "mixed" else [])
    if fail_on == "none" or not found:
        return None
    shown = "; ".join(item["message"] for item in found[:5])
    more = " (and %d more)" % (len(found) - 5) if len(found) > 5 else ""
    return "%d version-skew violation(s) and %d mixed version(s): %s%s" % (len(violations), len(mixed), shown, more)


def check_versions(params, get_bin_path=None, run_command=None):
    """(result, failure message or None) for the module's ``params``.

    The API reads share one deadline of ``params["timeout"]`` seconds; CplaneError on any failure.
    ``get_bin_path``/``run_command`` are the module's, used only with ``gather_local``.
    """
    if params["page_size"] < 1:
        raise InputError("page_size must be at least 1, got %d." % params["page_size"])
    if params.get("timeout") is not None and params["timeout"] <= 0:
        raise InputError("timeout must be a positive number of seconds, got %s." % params["timeout"])
    result = dict(changed=False)
    with _k8s_client.connect(timeout=params.get("timeout"), **_k8s_client.auth_params(params)) as client:
        inventory = cluster.gather_cluster(client, page_size=params["page_size"])
    if params["gather_local"]:
        result["local"] = local.gather_local(get_bin_path, run_command)
        inventory["local"] = local.local_versions(result["local"])
    violations = skew.evaluate_skew(inventory)
    mixed = skew.find_mixed_versions(inventory)
    result.update(api_server_version=inventory["api_server"], violations=violations, mixed_versions=mixed,
                  nodes=inventory["nodes"], components=skew.component_summary(inventory))
    if params["target_version"]:
        result["upgrade_path"] = skew.plan_upgrade(inventory, params["target_version"])
    return result, failure_message(params["fail_on"], violations, mixed)
