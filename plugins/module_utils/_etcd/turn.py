# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whose turn it is tonight: exactly one control-plane node runs the unattended etcd maintenance.

Every control-plane node has the same timer. Each run asks:

1. Which member is local? The member whose client URL is this node's endpoint (what
   etcd_member_info lists as ``client_urls``); when none matches, the member that answers on the
   endpoint (the member id in its Status header). kubeadm advertises only
   ``https://<node-ip>:2379`` but also listens on ``https://127.0.0.1:2379``, the default endpoint
   (cmd/kubeadm/app/phases/etcd/local.go, getEtcdCommand: ``advertise-client-urls`` and
   ``listen-client-urls``), so the URL alone does not find it on a kubeadm node.
2. Which member is the leader (the one most members name, ``members.leader_of``)?
3. The node whose local member is the leader is the candidate (the maintenance guide's rule: its
   script exits on every non-leader member). When either answer is unknown (the local member does
   not answer, no leader is agreed), every such node is a candidate and the claim decides.
4. A candidate claims the night's turn: a key under ``turn_name`` bound to a lease of ``turn_ttl``
   seconds, with the scheme of the defrag lock (_etcd/lock.py, etcd's concurrency.Mutex): the
   first key created wins, the others see who holds it and stand down. The lease is not renewed
   after the module exits, so the claim lasts ``turn_ttl`` seconds whatever happens to the run
   (finished, failed, killed): a later timer on another node the same night (after defragmentation
   moved leadership to it) sees the claim and does not act twice; the next night is free again.
   A new leader renews every lease to its full TTL (server/lease/lessor.go, ``Promote``; only
   remaining TTLs saved by lease checkpointing survive), so a claim may last longer than
   ``turn_ttl`` after a leader change; keep ``turn_ttl`` well under a day.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import os

from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import CplaneError, InputError
from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd.client import MemberClient
from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd.lock import EtcdLock
from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd.members import (
    Cluster, leader_of, member_hex, summarize)

try:
    from urllib.parse import urlsplit
except ImportError:  # pragma: no cover - Python 2
    from urlparse import urlsplit

DEFAULT_TURN_NAME = "/cplane.kubeadm/turns/etcd_maintenance"
DEFAULT_TURN_TTL = 4 * 3600


def url_key(url):
    """A client URL reduced to what identifies the listener: scheme, host, port (default 2379)."""
    parts = urlsplit(url.strip() if "://" in url else "https://" + url.strip())
    host = (parts.hostname or "").lower()
    return (parts.scheme.lower(), host, parts.port or 2379)


def match_by_url(states, endpoint):
    """The member state whose client URLs include ``endpoint``, or None."""
    wanted = url_key(endpoint)
    for state in states:
        if any(url_key(url) == wanted for url in state["client_urls"] or []):
            return state
    return None


def find_local_member(cluster, states, endpoint):
    """(state, how) of the member serving ``endpoint``; (None, why not) when it cannot be told."""
    state = match_by_url(states, endpoint)
    if state is not None:
        return state, "its client URL is %s" % endpoint
    client = MemberClient(endpoint, cluster.tls, cluster.timeout)
    try:
        member_id = member_hex(client.status()["member_id"])
    except CplaneError as err:
        return None, "the local endpoint %s does not answer (%s)" % (endpoint, err.msg)
    finally:
        client.close()
    state = next((s for s in states if s["id"] == member_id), None)
    if state is None:
        return None, "the member answering on %s (id %s) is not in the member list" % (endpoint, member_id)
    return state, "it answers on %s" % endpoint


def decide(local, local_how, leader):
    """(candidate, basis, reason) from the local member and the leader (state dicts or None)."""
    if local is None:
        return True, "claim", ("the local member is not known (%s): the node that claims the turn first acts"
                               % local_how)
    if leader is None:
        return True, "claim", ("the members agree on no leader: the node that claims the turn first acts "
                               "(local member %s)" % local["name"])
    if local["id"] == leader["id"]:
        return True, "leader", "the local member %s is the leader (%s)" % (local["name"], local_how)
    return False, "leader", ("member %s is the leader, so its node acts; the local member %s (%s) is a follower"
                             % (leader["name"], local["name"], local_how))


def describe_claim(kv):
    """Who holds the night's claim, from its key's value."""
    try:
        who = json.loads(kv["value"]) if kv.get("value") else {}
    except ValueError:
        who = {}
    if not isinstance(who, dict):
        who = {}
    return dict(node=who.get("node"), member=who.get("member"), basis=who.get("basis"), claimed=who.get("claimed"),
                key=kv["key"])


def claim_phrase(claim):
    return "node %s (member %s) took tonight's turn at %s" % (
        claim.get("node") or "?", claim.get("member") or "?", claim.get("claimed") or "?")


def check_request(turn_name, turn_ttl, node):
    if not (turn_name or "").strip("/"):
        raise InputError("turn_name must be an etcd key prefix such as %s" % DEFAULT_TURN_NAME)
    if turn_ttl < 5 or turn_ttl > 20 * 3600:
        raise InputError("turn_ttl %s is out of range: it must be 5 to 72000 seconds (longer than one run, "
                         "well under a day so that the next night's run is free)" % turn_ttl)
    if not node:
        raise InputError("node must name this node (the inventory name); it is what the other nodes report")


def run_turn(endpoints, ca_cert, client_cert, client_key, command_timeout=10, local_endpoint=None, node=None,
             turn_name=DEFAULT_TURN_NAME, turn_ttl=DEFAULT_TURN_TTL, check_mode=False, now=None):
    """Decide and, for a candidate outside check mode, claim the turn. Returns the module's result."""
    check_request(turn_name, turn_ttl, node)
    local_endpoint = local_endpoint or endpoints[0]
    discovery = [local_endpoint] + [e for e in endpoints if e != local_endpoint]
    now = now or datetime.datetime.now(datetime.timezone.utc)
    with Cluster(discovery, ca_cert, client_cert, client_key, command_timeout) as cluster:
        states = cluster.gather()
        local, how = find_local_member(cluster, states, local_endpoint)
        leader = leader_of(states)
        candidate, basis, reason = decide(local, how, leader)
        summary = summarize(states)
        result = dict(changed=False, act=False, basis=basis, node=node,
                      local_member=local["name"] if local else None, leader=leader["name"] if leader else None,
                      healthy_voting_members=summary["healthy_voting_members"],
                      voting_members=summary["voting_members"], claim=None,
                      turn=dict(name=turn_name.rstrip("/"), ttl=turn_ttl))
        identity = dict(tool="etcd_maintenance_turn", node=node, host=node, pid=os.getpid(), basis=basis,
                        member=local["name"] if local else None,
                        claimed=now.strftime("%Y-%m-%dT%H:%M:%SZ"))
        lock = EtcdLock(cluster, turn_name, turn_ttl, identity)
        try:
            held = lock.holder()
            if held is not None:
                claim = describe_claim(held)
                result.update(claim=claim, reason="%s; %s" % (claim_phrase(claim), reason))
                return result
            if not candidate:
                result.update(reason="%s; nobody has claimed tonight's turn yet" % reason)
                return result
            if check_mode:
                result.update(act=True, changed=True, reason="%s: would claim tonight's turn" % reason)
                return result
            owner = lock.acquire(wait=False)
            if owner is not None:
                claim = describe_claim(owner)
                result.update(claim=claim, reason="%s; %s first" % (claim_phrase(claim), reason))
                return result
            lock.detach()
            result.update(act=True, changed=True, claim=describe_claim(dict(key=lock.key, value=json.dumps(identity))),
                          reason="%s: this node (%s) claimed tonight's turn for %ss" % (reason, node, turn_ttl))
            return result
        finally:
            lock.release()
