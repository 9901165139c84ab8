# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The build plan: from the topology and every node's kubeadm state to what the build does.

Rules (the cluster_build role's contract):
- An existing cluster (any control-plane node joined) is never initialised again and no joined
  node is touched; the first joined control plane issues the tokens and uploads the certificates.
- Without one, the first host of the control-plane group runs ``kubeadm init``.
- Control planes join before workers, one node at a time, in inventory order.
- A half-joined node is refused with what to do, unless ``reset_half_joined``: then it is reset
  (``kubeadm reset -f`` on that node only) and joined like a new node.  A half-joined first
  control plane with no cluster anywhere is reset and initialised the same way.
- A node whose files say the other kind (a worker-group host with a control plane's files, ...)
  is refused: the build never converts a node.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.cplane.kubeadm.plugins.module_utils import _topology
from ansible_collections.cplane.kubeadm.plugins.module_utils._build import node_state as ns


def plan_build(control_planes, workers, states, allow_single=False, allow_even=False, reset_half_joined=False):
    """The plan as a dict; ``states`` is {host: kubeadm_node_state result}, or None to judge the topology only.

    ``refused`` (text or None) is set when the build must not change anything; ``summary`` says it in a line.
    """
    plan = _plan(control_planes, workers, states, allow_single, allow_even, reset_half_joined)
    plan["summary"] = summary(plan)
    return plan


def _plan(control_planes, workers, states, allow_single, allow_even, reset_half_joined):
    control_planes, workers = list(control_planes or []), list(workers or [])
    topology = _topology.evaluate(control_planes, workers, allow_single, allow_even)
    plan = dict(topology=topology, refused=topology["refused"], init_host=None, issuer=None, cluster_exists=False,
                joined=[], reset=[], join_control_planes=[], join_workers=[], half_joined=[], problems=[],
                build=[], topology_only=states is None)
    if plan["refused"] or states is None:
        return plan
    missing = [h for h in list(control_planes) + list(workers) if h not in states]
    if missing:
        plan["refused"] = "no node state for %s (unreachable or skipped): the build needs every node" % ", ".join(missing)
        return plan
    problems = []
    for host in control_planes:
        if states[host]["state"] == ns.WORKER:
            problems.append("%s is in the control-plane group but is a joined worker: the build does not convert "
                            "nodes; move it to the worker group or reset it" % host)
    for host in workers:
        if states[host]["state"] == ns.CONTROL_PLANE:
            problems.append("%s is in the worker group but is a joined control plane: the build does not convert "
                            "nodes; move it to the control-plane group" % host)
    half = [h for h in list(control_planes) + list(workers) if states[h]["state"] == ns.HALF_JOINED]
    plan["half_joined"] = [dict(host=h, present=states[h]["present"], missing=states[h]["missing"],
                                hint=ns.RESET_HINT % h) for h in half]
    if half and not reset_half_joined:
        described = ["%s has %s but not %s: %s" % (h["host"], ", ".join(h["present"]),
                                                   ", ".join(h["missing"]) or "a clean state", h["hint"])
                     for h in plan["half_joined"]]
        problems.append("half-joined node(s): " + "; ".join(described))
    if problems:
        plan["problems"] = problems
        plan["refused"] = "refusing to build: " + "; ".join(problems)
        return plan
    plan["reset"] = half
    joined_cps = [h for h in control_planes if states[h]["state"] == ns.CONTROL_PLANE]
    plan["joined"] = [h for h in list(control_planes) + list(workers)
                      if states[h]["state"] in (ns.CONTROL_PLANE, ns.WORKER)]
    if joined_cps:
        plan.update(cluster_exists=True, issuer=joined_cps[0])
    else:
        plan.update(init_host=control_planes[0], issuer=control_planes[0])
    plan["join_control_planes"] = [h for h in control_planes
                                   if h not in plan["joined"] and h != plan["init_host"]]
    plan["join_workers"] = [h for h in workers if h not in plan["joined"]]
    plan["build"] = ([plan["init_host"]] if plan["init_host"] else []) + plan["join_control_planes"] + plan["join_workers"]
    return plan


def summary(plan):
    """One line for the screen."""
    if plan["refused"]:
        return plan["refused"]
    topo = plan["topology"]
    if plan["topology_only"]:
        return "topology: %d control plane(s) (etcd quorum %d, tolerates %d failure(s)), %d worker(s)" % (
            topo["etcd_members"], topo["quorum"], topo["failures_tolerated"], len(topo["workers"]))
    parts = ["%d control plane(s) (etcd quorum %d, tolerates %d failure(s)), %d worker(s)" % (
        topo["etcd_members"], topo["quorum"], topo["failures_tolerated"], len(topo["workers"]))]
    parts.append("existing cluster, issuer %s" % plan["issuer"] if plan["cluster_exists"]
                 else "new cluster, kubeadm init on %s" % plan["init_host"])
    parts.append("already joined: %s" % (", ".join(plan["joined"]) or "none"))
    if plan["reset"]:
        parts.append("reset first (half-joined): %s" % ", ".join(plan["reset"]))
    parts.append("control-plane joins: %s" % (", ".join(plan["join_control_planes"]) or "none"))
    parts.append("worker joins: %s" % (", ".join(plan["join_workers"]) or "none"))
    for finding in topo["findings"]:
        if finding["allowed"]:
            parts.append("opted in: %s" % finding["message"])
    return "; ".join(parts)
