# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rules of a safe control-plane topology, in one place: quorum math and what a build refuses.

kubeadm's stacked etcd runs one etcd member per control-plane node, so the number of control-plane
nodes is the number of etcd voters.  etcd needs a majority of its voters to agree (quorum =
n/2 + 1, integer division; etcd-io/etcd server/etcdserver/api/membership/cluster.go and the FAQ
"Why an odd number of cluster members?": "an etcd cluster with 4 members ... has the same fault
tolerance as a 3 member cluster"), so:

- one voter is a single point of failure: losing it loses the cluster (the third seed's lesson);
- an even number of voters tolerates no more failures than the odd number below it, and needs one
  more healthy member for quorum (kubeadm's HA guide: "an odd number of control plane nodes, at
  least three", kubernetes.io/docs/setup/production-environment/tools/kubeadm/ha-topology/).

The build refuses both unless the operator opts in; the control_plane_report names both as findings.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def quorum(voters):
    """Healthy voting members etcd needs to make progress: a majority."""
    return int(voters) // 2 + 1


def failures_tolerated(voters):
    """Voting members that can fail while the rest keep quorum."""
    voters = int(voters)
    return max(0, voters - quorum(voters)) if voters else 0


def single_point_of_failure(voters):
    return ("a single control-plane node (one etcd member) is a single point of failure: losing that one "
            "node loses etcd and the API server, with no other member to recover from; use three control-plane "
            "nodes (quorum 2, tolerates 1 failure)")


def even_members(voters):
    voters = int(voters)
    return ("%d etcd members (one per control-plane node) need %d healthy for quorum and tolerate %d failure(s), "
            "no more than %d members do (quorum %d); the extra member only adds a node whose loss counts against "
            "quorum: use %d or %d control-plane nodes" % (
                voters, quorum(voters), failures_tolerated(voters), voters - 1, quorum(voters - 1),
                voters - 1, voters + 1))


def evaluate(control_planes, workers=(), allow_single=False, allow_even=False):
    """The build's topology verdict for the given host names.

    Returns ``control_planes``, ``workers``, ``etcd_members``, ``quorum``, ``failures_tolerated``,
    ``findings`` (every rule broken, each {rule, message, allowed}) and ``refused``: the text of
    the refusal, or None when the build may go on (every broken rule opted into).
    """
    control_planes = list(control_planes or [])
    workers = list(workers or [])
    both = sorted(set(control_planes) & set(workers))
    voters = len(control_planes)
    found = []
    if not control_planes:
        found.append(dict(rule="no-control-plane", allowed=False,
                          message="no control-plane node: the control-plane group is empty or missing"))
    if both:
        found.append(dict(rule="host-in-both-groups", allowed=False,
                          message="%s in both the control-plane and the worker group: put each host in one"
                          % ", ".join(both)))
    if voters == 1:
        found.append(dict(rule="single-control-plane", allowed=bool(allow_single),
                          message=single_point_of_failure(voters)))
    elif voters and voters % 2 == 0:
        found.append(dict(rule="even-etcd-members", allowed=bool(allow_even), message=even_members(voters)))
    refusals = [f for f in found if not f["allowed"]]
    refused = None
    if refusals:
        opt_in = {"single-control-plane": "cluster_build_allow_single_control_plane",
                  "even-etcd-members": "cluster_build_allow_even_etcd"}
        parts = []
        for finding in refusals:
            hint = (" (set %s=true to build it anyway)" % opt_in[finding["rule"]]) if finding["rule"] in opt_in else ""
            parts.append(finding["message"] + hint)
        refused = "refusing to build: " + "; ".join(parts)
    return dict(control_planes=control_planes, workers=workers, etcd_members=voters,
                quorum=quorum(voters) if voters else 0, failures_tolerated=failures_tolerated(voters),
                findings=found, refused=refused)


def report_findings(voting_members):
    """Findings for a running cluster with ``voting_members`` etcd voters (the control_plane_report's words)."""
    voting_members = int(voting_members or 0)
    if voting_members == 1:
        return ["topology: single point of failure: " + single_point_of_failure(1)]
    if voting_members and voting_members % 2 == 0:
        return ["topology: even number of etcd members: " + even_members(voting_members)]
    return []
