# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster as etcd reports it: members from MemberList, each asked on its own client URL."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import CplaneError, ConnectionFailure
from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd.client import MemberClient
from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd.tls import check_tls_files
from ansible_collections.cplane.kubeadm.plugins.module_utils._topology import quorum

# etcd's default --quota-backend-bytes; members older than 3.6 do not report their quota.
DEFAULT_QUOTA_BYTES = 2 * 1024 * 1024 * 1024


def member_hex(member_id):
    """Member ids as etcdctl prints them."""
    return "%x" % member_id


def fragmentation(db_size, db_size_in_use):
    """Share of the backend file that is free pages: 1 - in_use / size."""
    if not db_size or db_size_in_use is None:
        return None
    return round(max(0.0, 1.0 - float(db_size_in_use) / float(db_size)), 4)


def quorum_of(voting):
    """etcd's quorum for ``voting`` voters (the rule lives in _topology)."""
    return quorum(voting)


class Cluster(object):
    """Connections to every member of one etcd cluster, opened from any reachable endpoint."""

    def __init__(self, endpoints, ca_cert, client_cert, client_key, command_timeout=10, quota_bytes=None):
        self.tls = check_tls_files(ca_cert, client_cert, client_key)
        self.endpoints = list(endpoints)
        self.timeout = command_timeout
        self.quota_bytes = quota_bytes
        self.member_list = []
        self._clients = {}
        self._discover()

    # -- connections --------------------------------------------------------------------------------
    def _discover(self):
        errors = []
        for endpoint in self.endpoints:
            client = MemberClient(endpoint, self.tls, self.timeout)
            try:
                self.member_list = client.member_list()
                return
            except CplaneError as err:
                errors.append(err)
            finally:
                client.close()
        if len(errors) == 1:
            raise errors[0]
        raise ConnectionFailure("no etcd endpoint answered the member list request: %s"
                                % "; ".join(e.msg for e in errors))

    def client(self, member):
        """The client of ``member`` (a MemberList entry or a state dict) on its own first client URL."""
        key = member["id"]
        if key not in self._clients:
            urls = member.get("client_urls") or []
            if not urls:
                raise ConnectionFailure("etcd member %s has no client URL yet (added but never started); start it "
                                        "or remove it with etcdctl member remove" % (member.get("name") or key))
            member_id = member["id"] if isinstance(member["id"], int) else int(member["id"], 16)
            self._clients[key] = MemberClient(urls[0], self.tls, self.timeout, name=member.get("name") or None,
                                              member_id=member_id)
        return self._clients[key]

    def client_by_name(self, name):
        return self.client(next(m for m in self.member_list if m["name"] == name))

    def close(self):
        for client in self._clients.values():
            client.close()
        self._clients = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- state ----------------------------------------------------------------------------------------
    def member_state(self, member):
        """Everything the modules report about one member; ``healthy`` False with ``error`` if unreachable."""
        state = dict(id=member_hex(member["id"]), name=member["name"] or member_hex(member["id"]),
                     client_urls=member["client_urls"], peer_urls=member["peer_urls"],
                     is_learner=member["is_learner"], is_leader=False, leader_id=None, version=None, db_size=None,
                     db_size_in_use=None, fragmentation=None, raft_term=None, raft_index=None,
                     raft_applied_index=None, revision=None, db_size_quota=None, quota_usage=None, alarms=[],
                     cluster_id=None, healthy=False, error=None)
        try:
            client = self.client(member)
            status = client.status()
            state.update(version=status["version"], db_size=status["db_size"],
                         cluster_id=member_hex(status["cluster_id"]) if status.get("cluster_id") else None,
                         db_size_in_use=status["db_size_in_use"], raft_term=status["raft_term"],
                         raft_index=status["raft_index"], raft_applied_index=status["raft_applied_index"],
                         revision=status["revision"], leader_id=member_hex(status["leader_id"]) if status["leader_id"] else None,
                         is_leader=status["leader_id"] == status["member_id"],
                         is_learner=status["is_learner"] or member["is_learner"])
            state["fragmentation"] = fragmentation(status["db_size"], status["db_size_in_use"])
            state["db_size_quota"] = status["db_size_quota"] or self.quota_bytes or DEFAULT_QUOTA_BYTES
            state["quota_usage"] = round(float(status["db_size"]) / state["db_size_quota"], 4)
            # etcd lists every active alarm among the status errors ("memberID:... alarm:NOSPACE");
            # alarms are read and judged on their own (a NOSPACE cluster is what defrag is for).
            errors = [error for error in status["errors"] if "alarm:" not in error]
            if errors:
                state["error"] = "member reports errors: %s" % "; ".join(errors)
                return state
            # Learners refuse linearizable reads; a voter answering one proves it reaches quorum.
            client.check_reads(serializable=state["is_learner"])
            state["healthy"] = True
        except CplaneError as err:
            state["error"] = err.msg
        return state

    def gather(self, members=None):
        """States of ``members`` (default: all), asked in parallel so one hung member costs one timeout."""
        members = members if members is not None else self.member_list
        if not members:
            return []
        with ThreadPoolExecutor(max_workers=min(8, len(members))) as pool:
            states = list(pool.map(self.member_state, members))
        alarms = self.alarms(states)
        by_id = {}
        for alarm in alarms:
            by_id.setdefault(alarm["member_id"], []).append(alarm["alarm"])
        for state in states:
            state["alarms"] = by_id.get(state["id"], [])
        return states

    def alarms(self, states):
        """Active alarms (cluster-wide), read from the first healthy member; [] if none answers."""
        for state in states:
            if state["healthy"]:
                try:
                    raw = self.client(state).alarms()
                except CplaneError:
                    continue
                names = dict((s["id"], s["name"]) for s in states)
                return [dict(member_id=member_hex(a["member_id"]), member=names.get(member_hex(a["member_id"])),
                             alarm=a["alarm"]) for a in raw]
        return []

    def member_by_name(self, name):
        return next(m for m in self.member_list if m["name"] == name)


def leader_of(states):
    """The member most reachable members name as leader, or None."""
    votes = Counter(s["leader_id"] for s in states if s["leader_id"])
    if not votes:
        return None
    leader_id = votes.most_common(1)[0][0]
    return next((s for s in states if s["id"] == leader_id), None)


def summarize(states):
    """Cluster-level facts: leader, quorum, alarms."""
    voting = [s for s in states if not s["is_learner"]]
    healthy = [s for s in voting if s["healthy"]]
    leader = leader_of(states)
    alarms = []
    seen = set()
    for state in states:
        for alarm in state["alarms"]:
            if (state["id"], alarm) not in seen:
                seen.add((state["id"], alarm))
                alarms.append(dict(member=state["name"], member_id=state["id"], alarm=alarm))
    return dict(leader=leader["name"] if leader else None, quorum=quorum_of(len(voting)),
                voting_members=len(voting), healthy_voting_members=len(healthy),
                has_quorum=len(healthy) >= quorum_of(len(voting)), alarms=alarms,
                learners=[s["name"] for s in states if s["is_learner"]])


PUBLIC_MEMBER_KEYS = ("id", "name", "client_urls", "peer_urls", "is_leader", "is_learner", "version", "db_size",
                      "db_size_in_use", "fragmentation", "raft_term", "raft_index", "raft_applied_index", "revision",
                      "db_size_quota", "quota_usage", "alarms", "cluster_id", "healthy", "error")


def gather_member_info(endpoints, ca_cert, client_cert, client_key, command_timeout=10, quota_bytes=None):
    """The result of etcd_member_info: every member and the cluster summary."""
    with Cluster(endpoints, ca_cert, client_cert, client_key, command_timeout, quota_bytes) as cluster:
        states = cluster.gather()
    result = dict(members=[public_member(s) for s in states])
    result.update(summarize(states))
    return result


def public_member(state):
    return dict((k, state[k]) for k in PUBLIC_MEMBER_KEYS)
