# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the control_plane_report role (documented in control_plane_report.yml and control_plane_report_summary.yml)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.cplane.kubeadm.plugins.module_utils._report import report as _report

SETTINGS = ("host", "generated_at", "etcd", "probes", "certificates", "versions", "probe", "manifests_dir",
            "warn_days", "kubeconfig", "max_restarts")


def control_plane_report(results, **settings):
    if not isinstance(results, dict):
        raise AnsibleFilterError("control_plane_report expects a dict of registered results, got %s" % type(results).__name__)
    missing = [name for name in SETTINGS if name not in settings]
    if missing:
        raise AnsibleFilterError("control_plane_report: missing option(s): %s" % ", ".join(missing))
    return _report.build_report(results, settings)


def control_plane_report_summary(report, host):
    if not isinstance(report, dict) or "findings" not in report:
        raise AnsibleFilterError("control_plane_report_summary expects a report made by control_plane_report")
    return _report.summary(report, host)


class FilterModule(object):
    def filters(self):
        return {
            "control_plane_report": control_plane_report,
            "control_plane_report_summary": control_plane_report_summary,
        }
