# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A lock held in etcd itself, by the scheme of etcd's ``concurrency.Mutex`` (and ``etcdctl lock``).

etcd's recipe (client/v3/concurrency/mutex.go, ``tryAcquire``/``Lock``; key.go, ``waitDeletes``):
every contender writes the key ``<name>/<lease id in hex>`` attached to its own lease, in a
transaction "if this key's create revision is 0 then put it, else get it", which also reads the
key with the lowest create revision under ``<name>/``. The contender whose key has the lowest
create revision holds the lock; the others wait until every key created before theirs is gone.
A holder that dies stops renewing its lease, etcd revokes it after its TTL and deletes the key:
the lock can never outlive its holder by more than the TTL.

Using the same key layout means ``etcdctl lock <name>`` and this lock exclude each other. Holders
written here store who they are (host, pid, start time) as the value; ``etcdctl lock`` writes an
empty value, which is reported as such.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import os
import socket
import threading
import time

from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import (
    ConnectionFailure, InputError, OperationFailed)
from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd.client import MemberClient

try:
    import etcd3
except Exception:  # pragma: no cover - reported through client.HAS_ETCD3 by the module
    pass

# Waiters poll the keys created before theirs instead of watching them (etcd's Mutex watches):
# one short read per interval, no watch stream to keep alive across member failures.
POLL_SECONDS = 0.5
# Keep-alives run at a third of the TTL, as etcd's client does (lease.go, sendKeepAliveLoop), so
# one missed renewal still leaves time for another before the lease expires.
KEEPALIVES_PER_TTL = 3


def holder_identity(tool):
    """Who holds the lock, as stored in the lock key's value."""
    return dict(tool=tool, host=socket.gethostname(), pid=os.getpid(),
                started=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))


def describe_holder(kv):
    """One phrase naming the holder of a lock key (a dict with key, value, lease)."""
    try:
        who = json.loads(kv["value"]) if kv["value"] else None
    except ValueError:
        who = None
    if isinstance(who, dict) and who.get("host"):
        return "%s on host %s (pid %s, started %s; key %s)" % (
            who.get("tool") or "a client", who["host"], who.get("pid"), who.get("started"), kv["key"])
    return ("a holder that did not say who it is, e.g. `etcdctl lock` (key %s, lease %x; its value: %r)"
            % (kv["key"], kv["lease"], kv["value"][:80]))


def prefix_end(prefix):
    """The range end covering every key that starts with ``prefix`` (etcd's GetPrefixRangeEnd)."""
    end = bytearray(prefix)
    for i in range(len(end) - 1, -1, -1):
        if end[i] < 0xFF:
            end[i] += 1
            return bytes(end[:i + 1])
    return b"\0"


def _kv(raw):
    return dict(key=raw.key.decode("utf-8", "replace"), value=raw.value.decode("utf-8", "replace"),
                create_revision=raw.create_revision, lease=raw.lease)


class EtcdLock(object):
    """One contender for the lock ``name`` in the cluster, with its own lease and connections.

    The connections are its own (not the Cluster's): the keep-alive thread must never share a gRPC
    channel that the main thread closes after an error.
    """

    def __init__(self, cluster, name, ttl, identity, clock=time.monotonic, sleep=time.sleep):
        name = (name or "").rstrip("/")
        if not name:
            raise InputError("lock_name must not be empty: it is the etcd key prefix of the lock "
                             "(default /cplane.kubeadm/locks/etcd_defrag)")
        self.name = name
        self.prefix = (name + "/").encode("utf-8")
        self.ttl = ttl
        self.identity = identity
        self.clock = clock
        self.sleep = sleep
        self.lease_id = None
        self.key = None
        self.revision = None
        self.granted_ttl = None
        self.lost = None
        self.busy = set()
        self._stop = threading.Event()
        self._thread = None
        self._last_renewal = None
        self._clients = [MemberClient(m["client_urls"][0], cluster.tls, cluster.timeout, name=m["name"] or None,
                                      member_id=m["id"])
                         for m in cluster.member_list if m["client_urls"] and not m["is_learner"]]
        if not self._clients:
            raise ConnectionFailure("no voting etcd member has a client URL to hold the lock %s on" % name)

    # -- connections: any member will do; a member being defragmented is asked last --------------
    def _ordered(self):
        return ([c for c in self._clients if c.name not in self.busy]
                + [c for c in self._clients if c.name in self.busy])

    def _any(self, call):
        """``call(client)`` on the first member that answers; ConnectionFailure if none does."""
        errors = []
        for client in self._ordered():
            try:
                return call(client)
            except ConnectionFailure as err:
                errors.append(err.msg)
        raise ConnectionFailure("no etcd member answered for the lock %s: %s" % (self.name, "; ".join(errors)))

    def _range(self, **fields):
        request = etcd3.etcdrpc.RangeRequest(key=self.prefix, range_end=prefix_end(self.prefix), **fields)
        return self._any(lambda c: c.range_keys(request))

    def _first_created(self):
        response = self._range(sort_target=etcd3.etcdrpc.RangeRequest.CREATE,
                               sort_order=etcd3.etcdrpc.RangeRequest.ASCEND, limit=1)
        return _kv(response.kvs[0]) if response.kvs else None

    def holder(self):
        """The current holder's key (lowest create revision under the prefix), or None: read-only."""
        return self._first_created()

    # -- acquire / release --------------------------------------------------------------------------
    def acquire(self, wait=True, timeout=600):
        """Take the lock. Returns None when taken, else (lock_wait false) the holder's key dict.

        Raises OperationFailed naming the holder when ``timeout`` seconds pass while waiting.
        """
        started = self.clock()
        self.lease_id, self.granted_ttl = self._any(lambda c: c.lease_grant(self.ttl))
        self._last_renewal = self.clock()
        self._start_keepalive()
        try:
            owner = self._enqueue()
            if owner is None:
                return None
            if not wait:
                self.release()
                return owner
            while True:
                self.check()
                # etcd's waitDeletes: the newest key created before ours (the count would not do: etcd
                # counts before it applies max_create_revision, server/etcdserver/apply.go Range).
                older = self._range(max_create_revision=self.revision - 1, keys_only=True, limit=1,
                                    sort_target=etcd3.etcdrpc.RangeRequest.CREATE,
                                    sort_order=etcd3.etcdrpc.RangeRequest.DESCEND)
                if not older.kvs:
                    break
                if self.clock() - started >= timeout:
                    owner = self._first_created() or owner
                    raise OperationFailed(
                        "the lock %s is held by %s; waited lock_timeout %ss. Run again later, or if that holder is "
                        "gone its lease expires within its TTL" % (self.name, describe_holder(owner), timeout))
                self.sleep(POLL_SECONDS)
            # etcd's Mutex.Lock checks the same: our key may have gone with an expired lease meanwhile.
            mine = self._any(lambda c: c.range_keys(etcd3.etcdrpc.RangeRequest(key=self.key.encode("utf-8"))))
            if not mine.kvs:
                raise OperationFailed("the lock %s was lost while waiting for it: its lease %x expired"
                                      % (self.name, self.lease_id))
            return None
        except BaseException:
            self.release()
            raise

    def _enqueue(self):
        """etcd's tryAcquire: put our key unless it exists, read the first-created key; None if ours."""
        rpc = etcd3.etcdrpc
        self.key = "%s/%x" % (self.name, self.lease_id)
        key = self.key.encode("utf-8")
        value = json.dumps(self.identity, sort_keys=True).encode("utf-8")
        owner_read = rpc.RequestOp(request_range=rpc.RangeRequest(
            key=self.prefix, range_end=prefix_end(self.prefix), sort_target=rpc.RangeRequest.CREATE,
            sort_order=rpc.RangeRequest.ASCEND, limit=1))
        request = rpc.TxnRequest(
            compare=[rpc.Compare(result=rpc.Compare.EQUAL, target=rpc.Compare.CREATE, key=key, create_revision=0)],
            success=[rpc.RequestOp(request_put=rpc.PutRequest(key=key, value=value, lease=self.lease_id)), owner_read],
            failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=key)), owner_read])
        # Safe to repeat on another member after a timeout: the compare makes it idempotent.
        response = self._any(lambda c: c.txn(request, "taking the lock %s" % self.name))
        if response.succeeded:
            self.revision = response.header.revision
        else:
            self.revision = response.responses[0].response_range.kvs[0].create_revision
        owners = response.responses[1].response_range.kvs
        if not owners or owners[0].create_revision == self.revision:
            return None
        return _kv(owners[0])

    def release(self):
        """Revoke the lease (etcd deletes the key with it). Best effort: it expires within its TTL anyway."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(1, self.ttl))
            self._thread = None
        if self.lease_id is not None:
            try:
                self._any(lambda c: c.lease_revoke(self.lease_id))
            except (ConnectionFailure, OperationFailed):
                pass
            self.lease_id = None
        for client in self._clients:
            client.close()

    def detach(self):
        """Stop renewing and close the connections but keep the lease: the key lives out its TTL.

        For a claim that must outlast the process that took it (the nightly turn of _etcd/turn.py).
        """
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(1, self.ttl))
            self._thread = None
        self.lease_id = None
        for client in self._clients:
            client.close()

    # -- keep-alive ---------------------------------------------------------------------------------
    def _start_keepalive(self):
        self._stop.clear()
        self._thread = threading.Thread(target=self._keepalive_loop, name="etcd-lock-keepalive")
        self._thread.daemon = True
        self._thread.start()

    def _keepalive_loop(self):
        interval = max(0.5, float(self.granted_ttl or self.ttl) / KEEPALIVES_PER_TTL)
        while not self._stop.wait(interval):
            try:
                ttl = self._any(lambda c: c.lease_keepalive(self.lease_id, timeout=interval))
            except (ConnectionFailure, OperationFailed) as err:
                if self.clock() - self._last_renewal >= (self.granted_ttl or self.ttl):
                    self.lost = "no member renewed its lease %x within its TTL %ss: %s" % (
                        self.lease_id, self.granted_ttl, err.msg)
                    return
                continue
            if ttl <= 0:
                self.lost = "its lease %x expired" % self.lease_id
                return
            self._last_renewal = self.clock()

    def check(self):
        """Raise OperationFailed if the lease was lost: another run may hold the lock now."""
        if self.lost:
            raise OperationFailed("the lock %s was lost (%s); stopped so that two runs never work at once"
                                  % (self.name, self.lost))

    def info(self):
        return dict(name=self.name, key=self.key, ttl=self.granted_ttl, holder=self.identity)
