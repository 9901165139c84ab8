# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which recovery a control plane needs, from what its nodes and etcd report.

The control_plane_recovery role gathers, per host, whether its etcd data directory exists and
whether its member answers health, plus the cluster as etcd_member_info sees it; this module
decides.  Repairs happen in place: one lost member is replaced learner-first while the others keep
quorum; only a cluster without quorum is restored from a snapshot.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

MODES = ("auto", "none", "member", "quorum", "probe", "certificates")


class RecoveryRefused(Exception):
    """The requested recovery does not fit what the cluster reports."""


def lost_hosts(hosts, cluster):
    """Hosts whose member is missing, unhealthy, a learner that never caught up, or has no data."""
    members = dict((m["name"], m) for m in cluster.get("members", []) if m.get("name"))
    lost = []
    for host in hosts:
        member = members.get(host["etcd_name"])
        reasons = []
        if not host.get("data_dir_present"):
            reasons.append("its data directory %s is missing" % host.get("data_dir"))
        if member is None:
            reasons.append("etcd lists no member named %s" % host["etcd_name"])
        elif not member.get("healthy"):
            reasons.append("its member is not healthy (%s)" % (member.get("error") or "no answer"))
        elif member.get("is_learner"):
            reasons.append("its member is still a learner")
        if reasons:
            lost.append(dict(host=host["host"], reasons=reasons))
    return lost


def plan_recovery(hosts, cluster, requested="auto", force=False):
    """``{mode, reason, targets, healthy_hosts, lost}`` for the role.

    ``hosts``: per host ``{host, etcd_name, data_dir, data_dir_present}``; ``cluster``: the
    registered etcd_member_info result (``failed`` when no member answered).
    """
    if requested not in MODES:
        raise RecoveryRefused("recovery mode %r is not one of %s" % (requested, ", ".join(MODES)))
    answered = not cluster.get("failed") and "members" in cluster
    has_quorum = answered and bool(cluster.get("has_quorum"))
    if answered:
        lost = lost_hosts(hosts, cluster)
    else:
        lost = [dict(host=h["host"], reasons=["no etcd member answered"]) for h in hosts]
    lost_names = [entry["host"] for entry in lost]
    healthy_hosts = [h["host"] for h in hosts if h["host"] not in lost_names]
    plan = dict(mode="none", reason="", targets=[], healthy_hosts=healthy_hosts, lost=lost)

    if requested in ("probe", "certificates"):
        plan.update(mode=requested, targets=[h["host"] for h in hosts], reason="requested")
        return plan
    if not has_quorum:
        why = ("no etcd member answered (%s)" % cluster.get("msg", "no answer") if not answered else
               "etcd has %s healthy voting members of %s, quorum needs %s" % (
                   cluster.get("healthy_voting_members"), cluster.get("voting_members"), cluster.get("quorum")))
        if requested == "member":
            raise RecoveryRefused("member recovery needs a cluster with quorum, and %s; use mode quorum "
                                  "(restore from a snapshot)" % why)
        if requested == "none":
            plan.update(reason="quorum lost (%s), but recovery mode none was requested" % why)
            return plan
        plan.update(mode="quorum", targets=[h["host"] for h in hosts], reason="quorum lost: %s" % why)
        return plan
    if requested == "quorum" and not force:
        raise RecoveryRefused("etcd has quorum: restoring every member from a snapshot would throw away what was "
                              "written since the snapshot. Use mode member or auto, or force it")
    if requested == "quorum":
        plan.update(mode="quorum", targets=[h["host"] for h in hosts], reason="requested and forced")
        return plan
    if lost and requested in ("auto", "member"):
        first = lost[0]
        plan.update(mode="member", targets=[first["host"]],
                    reason="%s: %s%s" % (first["host"], "; ".join(first["reasons"]),
                                         "; run again for %s" % ", ".join(lost_names[1:]) if len(lost) > 1 else ""))
        return plan
    plan.update(reason="every etcd member is healthy" if not lost else "recovery mode none was requested")
    return plan
