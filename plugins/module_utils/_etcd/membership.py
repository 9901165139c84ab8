# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Changing etcd's membership one safe step at a time: add as learner, promote, remove.

A new member joins as a learner (etcd 3.4+): it replicates the log without voting, so adding it
cannot cost quorum, and it becomes a voter only once etcd agrees it has caught up (the server
refuses MemberPromote with "can only promote a learner member which is in sync with leader" until
then; etcd server/etcdserver/server.go ``mayPromoteMember``).  A removal is checked against the
quorum the remaining voters would need.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import (
    CplaneError, InputError, OperationFailed, UnsafeOperation)
from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd.members import (
    Cluster, member_hex, quorum_of, summarize)

# etcd's ErrLearnerNotReady text (server/etcdserver/errors.go): retry until the learner caught up.
LEARNER_NOT_READY = "in sync with leader"
SETTLE_SECONDS = 10
UNHEALTHY_CLUSTER = "unhealthy cluster"


def initial_cluster(members, new_id=None, new_name=None):
    """The ``--initial-cluster`` value for a member joining ``members``, as ``etcdctl member add`` prints it."""
    entries = []
    for member in members:
        name = new_name if member["id"] == new_id else member["name"]
        for url in member["peer_urls"]:
            entries.append("%s=%s" % (name, url))
    return ",".join(entries)


def listed(member):
    """A MemberList entry in the module's result format."""
    return dict(id=member_hex(member["id"]), name=member["name"], peer_urls=list(member["peer_urls"]),
                client_urls=list(member["client_urls"]), is_learner=bool(member["is_learner"]))


def find_member(members, name=None, member_id=None, peer_urls=None):
    """The member named ``name``, with id ``member_id`` (normalized hex) or advertising one of ``peer_urls``."""
    for member in members:
        if member_id is not None and member_hex(member["id"]) == member_id:
            return member
        if name and member["name"] == name:
            return member
        # A member added but never started has no name yet; its peer URLs identify it.
        if peer_urls and set(peer_urls) & set(member["peer_urls"]):
            return member
    return None


def normalize_id(member_id):
    """``0x8E9E...``, ``8e9e...`` -> ``8e9e...`` (as etcdctl prints ids); InputError when not hex."""
    if member_id is None:
        return None
    text = member_id.strip().lower()
    if text.startswith("0x"):
        text = text[2:]
    try:
        return member_hex(int(text, 16))
    except ValueError:
        raise InputError("id %r is not a hexadecimal etcd member id (as 'etcdctl member list' prints it)"
                         % member_id)


class MembershipChange(object):
    """One run of etcd_member: read the cluster, decide, change at most one member, verify."""

    def __init__(self, cluster, check_mode=False, promote_timeout=60, health_timeout=60):
        self.cluster = cluster
        self.check_mode = check_mode
        self.promote_timeout = promote_timeout
        self.health_timeout = health_timeout
        self.members_before = [listed(m) for m in cluster.member_list]
        self.result = dict(changed=False, member=None, members_before=self.members_before,
                           members_after=self.members_before, action="none")

    # -- helpers ------------------------------------------------------------------------------------
    def _states(self):
        """Member states; while there is no quorum, asked again for a few seconds, since a lost leader
        makes every member answer "leader changed" until the election (about 1 s with kubeadm's
        settings) is over."""
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            states = self.cluster.gather()
            if summarize(states)["has_quorum"] or time.monotonic() >= deadline:
                return states
            time.sleep(0.5)

    def _healthy_client(self, states):
        # Learners refuse membership RPCs ("rpc not supported for learner").
        for state in states:
            if state["healthy"] and not state["is_learner"]:
                return self.cluster.client(state)
        raise UnsafeOperation("no voting etcd member is healthy, so etcd cannot change its membership; recover quorum "
                              "first (control_plane_recovery) and retry", **self.result)

    def _refresh(self):
        client = self._healthy_client(self._states())
        self.cluster.member_list = client.member_list()
        self.result["members_after"] = [listed(m) for m in self.cluster.member_list]

    def _finish(self, action, member, msg):
        self.result.update(action=action, member=listed(member) if member else None, msg=msg,
                           changed=not self.check_mode and action != "none")
        if self.check_mode and action != "none":
            self.result["changed"] = True
        return self.result

    # -- states -------------------------------------------------------------------------------------
    def present(self, name, peer_urls):
        if not peer_urls:
            raise InputError("state=present needs peer_urls: the new member's --initial-advertise-peer-urls")
        existing = find_member(self.cluster.member_list, name=name, peer_urls=peer_urls)
        if existing is not None:
            if existing["name"] and existing["name"] != name:
                raise InputError("peer URL %s already belongs to etcd member %s (%s), not %s; remove that member "
                                 "first or choose other peer URLs" % (", ".join(peer_urls), existing["name"],
                                                                      member_hex(existing["id"]), name))
            if set(existing["peer_urls"]) != set(peer_urls):
                raise InputError("etcd member %s exists with peer URLs %s, not %s; change them with "
                                 "'etcdctl member update' or remove and re-add the member"
                                 % (name, ", ".join(existing["peer_urls"]), ", ".join(peer_urls)))
            self.result.update(initial_cluster=initial_cluster(self.cluster.member_list, existing["id"], name),
                               initial_cluster_state="existing")
            return self._finish("none", existing, "etcd member %s already exists" % name)
        states = self._states()
        overview = summarize(states)
        if not overview["has_quorum"]:
            raise UnsafeOperation("etcd has %d healthy voting members of %d (quorum %d): it cannot add a member "
                                  "now; recover quorum first" % (overview["healthy_voting_members"],
                                                                 overview["voting_members"], overview["quorum"]),
                                  **self.result)
        if self.check_mode:
            planned = dict(id=0, name=name, peer_urls=list(peer_urls), client_urls=[], is_learner=True)
            self.result.update(initial_cluster=initial_cluster(self.cluster.member_list + [planned], 0, name),
                               initial_cluster_state="existing")
            return self._finish("add_learner", planned, "etcd member %s would be added as a learner" % name)
        added, members = self._retry_unhealthy(lambda: self._healthy_client(states).member_add_learner(peer_urls),
                                               "adding etcd member %s" % name)
        self.cluster.member_list = members
        self.result["members_after"] = [listed(m) for m in members]
        self.result.update(initial_cluster=initial_cluster(members, added["id"], name),
                           initial_cluster_state="existing")
        added = dict(added, name=name)
        return self._finish("add_learner", added, "etcd member %s added as a learner (%s); start it with "
                            "--initial-cluster-state=existing, then promote it" % (name, member_hex(added["id"])))

    def promoted(self, name=None, member_id=None):
        member = self._find_required(name, member_id, "promote")
        if not member["is_learner"]:
            return self._finish("none", member, "etcd member %s is a voting member" % self._label(member))
        if self.check_mode:
            return self._finish("promote", member, "etcd learner %s would be promoted" % self._label(member))
        if not member["client_urls"]:
            raise OperationFailed("etcd learner %s was added but never started; start its etcd with "
                                  "--initial-cluster-state=existing, then promote it" % self._label(member),
                                  **self.result)
        deadline = time.monotonic() + self.promote_timeout
        last = None
        while True:
            client = self._healthy_client(self._states())
            try:
                members = client.member_promote(member["id"])
                break
            except CplaneError as err:
                last = err
                if LEARNER_NOT_READY not in err.msg:
                    raise OperationFailed("promoting etcd learner %s failed: %s" % (self._label(member), err.msg),
                                          **self.result)
            if time.monotonic() >= deadline:
                raise OperationFailed(
                    "etcd learner %s has not caught up with the leader within promote_timeout=%ss (%s); check its "
                    "log and disk, raise promote_timeout, and run again" % (
                        self._label(member), self.promote_timeout, self._lag(member) or last.msg), **self.result)
            time.sleep(1)
        self.cluster.member_list = members
        self.result["members_after"] = [listed(m) for m in members]
        self._wait_healthy(member)
        promoted = next(m for m in members if m["id"] == member["id"])
        return self._finish("promote", promoted, "etcd learner %s promoted to a voting member" % self._label(member))

    def absent(self, name=None, member_id=None, force=False):
        member = self._find(name, member_id)
        if member is None:
            return self._finish("none", None, "etcd member %s is not a member" % (name or member_id))
        states = self._states()
        self._check_removal(member, states, force)
        if self.check_mode:
            return self._finish("remove", member, "etcd member %s would be removed" % self._label(member))
        survivors = [s for s in states if s["id"] != member_hex(member["id"]) and s["healthy"]]
        client = self.cluster.client(survivors[0]) if survivors else self._healthy_client(states)
        members = self._retry_unhealthy(lambda: client.member_remove(member["id"]),
                                        "removing etcd member %s" % self._label(member))
        self.cluster.member_list = members
        self.result["members_after"] = [listed(m) for m in members]
        return self._finish("remove", member, "etcd member %s removed; its data directory on that node is now "
                            "stale: move it aside before the node rejoins" % self._label(member))

    # -- checks -------------------------------------------------------------------------------------
    def _check_removal(self, member, states, force):
        target = member_hex(member["id"])
        voters = [s for s in states if not s["is_learner"]]
        remaining = [s for s in voters if s["id"] != target]
        healthy_remaining = [s for s in remaining if s["healthy"]]
        reasons = []
        if not remaining:
            reasons.append("it is the last voting member: removing it ends the cluster")
        elif not healthy_remaining:
            reasons.append("no other voting member is healthy")
        elif member["is_learner"] is False and len(healthy_remaining) < quorum_of(len(remaining)):
            reasons.append("the %d remaining voting members need a quorum of %d and only %d are healthy (%s)" % (
                len(remaining), quorum_of(len(remaining)), len(healthy_remaining),
                ", ".join(s["name"] for s in healthy_remaining) or "none"))
        if reasons and not force:
            raise UnsafeOperation("refusing to remove etcd member %s: %s. Bring the other members back first, or "
                                  "set force=true if you accept losing quorum"
                                  % (self._label(member), "; ".join(reasons)), **self.result)
        if reasons:
            self.result.setdefault("warnings", []).append(
                "removing etcd member %s with force: %s" % (self._label(member), "; ".join(reasons)))

    def _retry_unhealthy(self, change, what):
        """etcd's strict reconfiguration check refuses a change ("unhealthy cluster") until every voter
        has been connected for 5 s (server/etcdserver/server.go ``mayAddMember``, HealthInterval):
        right after a restart or an election.  Wait that out, up to health_timeout."""
        deadline = time.monotonic() + self.health_timeout
        while True:
            try:
                return change()
            except CplaneError as err:
                if UNHEALTHY_CLUSTER not in err.msg:
                    raise
                if time.monotonic() >= deadline:
                    raise OperationFailed("%s: etcd still refuses it as 'unhealthy cluster' after %ss (a voting member "
                                          "has not been connected to the others for 5 s); check every member's health "
                                          "and peer connectivity" % (what, self.health_timeout), **self.result)
            time.sleep(1)

    def _find(self, name, member_id):
        return find_member(self.cluster.member_list, name=name, member_id=normalize_id(member_id))

    def _find_required(self, name, member_id, what):
        member = self._find(name, member_id)
        if member is None:
            raise InputError("etcd has no member %s to %s; add it with state=present first" % (name or member_id,
                                                                                               what), **self.result)
        return member

    @staticmethod
    def _label(member):
        return "%s (%s)" % (member["name"] or "(not started)", member_hex(member["id"]))

    def _lag(self, member):
        """'applied index X of the leader's Y' for a learner that answers its status."""
        states = self._states()
        mine = next((s for s in states if s["id"] == member_hex(member["id"])), None)
        leader = next((s for s in states if s["is_leader"]), None)
        if mine and leader and mine["raft_applied_index"] is not None:
            return "applied index %s of the leader's %s" % (mine["raft_applied_index"], leader["raft_index"])
        return None

    def _wait_healthy(self, member):
        deadline = time.monotonic() + self.health_timeout
        while True:
            states = self._states()
            overview = summarize(states)
            mine = next((s for s in states if s["id"] == member_hex(member["id"])), None)
            if mine and mine["healthy"] and overview["has_quorum"]:
                return
            if time.monotonic() >= deadline:
                raise OperationFailed("etcd member %s was promoted but the cluster is not healthy after %ss (%s); "
                                      "check the member's log" % (self._label(member), self.health_timeout,
                                                                  (mine or {}).get("error") or "no quorum"),
                                      **self.result)
            time.sleep(0.5)


def change_membership(endpoints, ca_cert, client_cert, client_key, command_timeout=10, state="present", name=None,
                      peer_urls=None, member_id=None, force=False, promote_timeout=60, health_timeout=60,
                      check_mode=False):
    """The result of etcd_member."""
    with Cluster(endpoints, ca_cert, client_cert, client_key, command_timeout) as cluster:
        change = MembershipChange(cluster, check_mode=check_mode, promote_timeout=promote_timeout,
                                  health_timeout=health_timeout)
        if state == "present":
            result = change.present(name, peer_urls)
        elif state == "promoted":
            result = change.promoted(name, member_id)
        else:
            result = change.absent(name, member_id, force)
    result.setdefault("warnings", [])
    return result
