# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""TLS connections to etcd members through python-etcd3, with the workarounds it needs."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time
import traceback

from ansible_collections.cplane.kubeadm.plugins.module_utils._deps import DEPENDENCIES
from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import ConnectionFailure, OperationFailed

# The environment python-etcd3 needs (pure-Python protobuf backend), before the import below.
DEPENDENCIES["etcd3"].prepare_import()

try:
    import etcd3  # noqa: F401
    import grpc  # noqa: F401, pylint: disable=unused-import
except Exception:  # pragma: no cover - reported through missing_required_lib
    HAS_ETCD3 = False
    ETCD3_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_ETCD3 = True
    ETCD3_IMPORT_ERROR = None

try:
    from urllib.parse import urlparse
except ImportError:  # pragma: no cover - Python 2 is not supported, kept for sanity's compile test
    from urlparse import urlparse  # type: ignore


def split_endpoint(endpoint):
    """``https://10.0.0.1:2379`` -> ("10.0.0.1", 2379)."""
    parsed = urlparse(endpoint if "://" in endpoint else "https://" + endpoint)
    return parsed.hostname, parsed.port or 2379


def connect(endpoint, ca_cert, client_cert, client_key, timeout):
    """An etcd3 client for one member; TLS verification is always on."""
    host, port = split_endpoint(endpoint)
    return etcd3.client(host=host, port=port, ca_cert=ca_cert, cert_cert=client_cert,
                        cert_key=client_key, timeout=timeout)


# StatusResponse fields newer than python-etcd3's protos (etcd api/etcdserverpb/rpc.proto); they
# arrive as unknown fields.  Numbers, not names, are the stable contract of the wire format.
STATUS_UNKNOWN_FIELDS = {
    7: "raft_applied_index",
    8: "errors",
    9: "db_size_in_use",
    10: "is_learner",
    11: "storage_version",
    12: "db_size_quota",
}
ALARM_NAMES = {0: "NONE", 1: "NOSPACE", 2: "CORRUPT"}


def parse_status(response):
    """A StatusResponse (with its unknown fields) as a plain dict."""
    from google.protobuf.unknown_fields import UnknownFieldSet

    status = dict(member_id=response.header.member_id, cluster_id=response.header.cluster_id,
                  leader_id=response.leader, version=response.version,
                  db_size=response.dbSize, raft_index=response.raftIndex, raft_term=response.raftTerm,
                  revision=response.header.revision, raft_applied_index=None, errors=[], db_size_in_use=None,
                  is_learner=False, storage_version=None, db_size_quota=None)
    for field in UnknownFieldSet(response):
        name = STATUS_UNKNOWN_FIELDS.get(field.field_number)
        if name is None:
            continue
        data = field.data
        if name == "errors":
            status["errors"].append(data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data))
        elif name == "storage_version":
            status[name] = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
        elif name == "is_learner":
            status[name] = bool(data)
        else:
            status[name] = int(data)
    return status


def member_is_learner(member):
    """Member.isLearner (field 5) postdates python-etcd3's protos too."""
    from google.protobuf.unknown_fields import UnknownFieldSet

    if hasattr(member, "isLearner"):
        return bool(member.isLearner)
    return any(f.field_number == 5 and bool(f.data) for f in UnknownFieldSet(member))


def members_of(response):
    """The ``members`` of a MemberList/MemberRemove/MemberPromote response as plain dicts."""
    return [member_entry(m) for m in response.members]


def member_entry(member):
    return dict(id=member.ID, name=member.name, peer_urls=list(member.peerURLs), client_urls=list(member.clientURLs),
                is_learner=member_is_learner(member))


# MemberAddRequest.isLearner (field 2, varint) and the MemberPromote RPC postdate python-etcd3's
# protos (etcd api/etcdserverpb/rpc.proto); they are sent as raw wire-format bytes.
IS_LEARNER_FIELD = b"\x10\x01"


def _tls_rejection(details):
    # TLS 1.3 finishes the client's side of the handshake before the server has checked the client
    # certificate; its refusal then arrives as an alert in the first record, which gRPC reports as
    # "Unwrap failed (TSI_DATA_CORRUPTED)" (etcd 3.5.35 and 3.6.16 built with Go 1.26 here, where
    # 3.5.1 still failed the handshake itself).  Checked after CERTIFICATE_VERIFY_FAILED, so the
    # server's certificate was accepted.
    markers = ("ALERT_BAD_CERTIFICATE", "ALERT_UNKNOWN_CA", "ALERT_CERTIFICATE", "CERTIFICATE_REQUIRED",
               "ALERT_HANDSHAKE_FAILURE", "TSI_DATA_CORRUPTED")
    return any(m in details for m in markers)


def describe_rpc_error(err, what, member, tls=None, timeout=None, error_class=None):
    """A typed error for a failed gRPC call: which member, what happened, what to do."""
    code = err.code() if hasattr(err, "code") else None
    details = (err.details() if hasattr(err, "details") else str(err)) or ""
    code_name = getattr(code, "name", str(code))
    where = member.label()
    if code_name == "DEADLINE_EXCEEDED":
        cls = error_class or ConnectionFailure
        error = cls("etcd member %s did not answer %s within %ss (the process may be stopped, overloaded or "
                    "partitioned); check the member's health and logs, or raise the timeout" % (where, what, timeout))
        # The server may still carry the request out (a defragmentation runs to its end): callers
        # that must tell "gave up waiting" from "refused" check this.
        error.deadline_exceeded = True
        return error
    if "CERTIFICATE_VERIFY_FAILED" in details:
        ca = tls.ca_cert if tls else "ca_cert"
        return ConnectionFailure("TLS to etcd member %s failed: its serving certificate is not signed by the CA in %s; "
                                 "point ca_cert at the etcd CA (kubeadm: /etc/kubernetes/pki/etcd/ca.crt)" % (where, ca))
    if _tls_rejection(details):
        hint = tls.describe_client_rejection() if tls else "check the client certificate"
        return ConnectionFailure("etcd member %s rejected the client certificate during the TLS handshake: %s"
                                 % (where, hint))
    if "Tls handshake" in details or "Ssl handshake" in details or "SSL_ERROR" in details:
        return ConnectionFailure("TLS handshake with etcd member %s failed (%s); check ca_cert, client_cert and "
                                 "client_key" % (where, details.split("SSL_ERROR_SSL:")[-1].strip()))
    if code_name == "UNAVAILABLE":
        reason = details.rsplit(": ", 1)[-1] if "failed to connect" in details else details
        return ConnectionFailure("cannot reach etcd member %s: %s; check that etcd runs there and listens on that "
                                 "client URL" % (where, reason or "unavailable"))
    cls = error_class or OperationFailed
    return cls("%s on etcd member %s failed: %s: %s" % (what, where, code_name, details))


class MemberClient(object):
    """One etcd member, talked to on its own client URL, every call with a gRPC deadline.

    The channel is rebuilt after a connection failure: a gRPC channel in TRANSIENT_FAILURE fails
    fast for its whole reconnect back-off, which would make a member that is back look dead.
    """

    def __init__(self, endpoint, tls, timeout, name=None, member_id=None):
        self.endpoint = endpoint
        self.tls = tls
        self.timeout = timeout
        self.name = name
        self.member_id = member_id
        self._client = None

    def label(self):
        if self.name:
            return "%s (%s)" % (self.name, self.endpoint)
        return self.endpoint

    def _stubs(self):
        if self._client is None:
            self._client = connect(self.endpoint, self.tls.ca_cert, self.tls.client_cert, self.tls.client_key,
                                   self.timeout)
        return self._client

    def snapshot_chunks(self, timeout):
        """The member's snapshot as byte chunks; ``timeout`` bounds the whole stream, not one chunk."""
        try:
            for response in self._stubs().maintenancestub.Snapshot(etcd3.etcdrpc.SnapshotRequest(), timeout=timeout):
                yield response.blob
        except grpc.RpcError as err:
            self.close()
            raise describe_rpc_error(err, "the snapshot stream", self, self.tls, timeout)

    def close(self):
        if self._client is not None:
            self._client.close()
            self._client = None

    def _call(self, what, stub, method, request, timeout=None, error_class=None):
        timeout = timeout or self.timeout
        client = self._stubs()
        try:
            return getattr(getattr(client, stub), method)(request, timeout=timeout)
        except grpc.RpcError as err:
            self.close()
            raise describe_rpc_error(err, what, self, self.tls, timeout, error_class)

    # -- reads ------------------------------------------------------------------------------------
    def status(self):
        response = self._call("a status request", "maintenancestub", "Status", etcd3.etcdrpc.StatusRequest())
        return parse_status(response)

    def member_list(self):
        response = self._call("a member list request", "clusterstub", "MemberList", etcd3.etcdrpc.MemberListRequest())
        return members_of(response)

    def check_reads(self, serializable=False):
        """A read of the key ``health`` as etcdctl endpoint health does: linearizable needs a working quorum."""
        request = etcd3.etcdrpc.RangeRequest(key=b"health", serializable=serializable)
        self._call("a %s read" % ("serializable" if serializable else "linearizable"), "kvstub", "Range", request)

    def alarms(self):
        request = etcd3.etcdrpc.AlarmRequest(action=etcd3.etcdrpc.AlarmRequest.GET, memberID=0,
                                             alarm=etcd3.etcdrpc.NONE)
        response = self._call("an alarm list request", "maintenancestub", "Alarm", request)
        return [dict(member_id=a.memberID, alarm=ALARM_NAMES.get(a.alarm, str(a.alarm))) for a in response.alarms]

    # -- changes ----------------------------------------------------------------------------------
    def disarm(self, member_id, alarm="NOSPACE"):
        codes = dict((v, k) for k, v in ALARM_NAMES.items())
        request = etcd3.etcdrpc.AlarmRequest(action=etcd3.etcdrpc.AlarmRequest.DEACTIVATE, memberID=member_id,
                                             alarm=codes[alarm])
        self._call("disarming the %s alarm" % alarm, "maintenancestub", "Alarm", request)

    def defragment(self, timeout):
        self._call("defragmentation", "maintenancestub", "Defragment", etcd3.etcdrpc.DefragmentRequest(),
                   timeout=timeout, error_class=OperationFailed)

    def compact(self, revision, timeout):
        """Compact the keyspace history to ``revision`` and wait until it is applied to the backend."""
        request = etcd3.etcdrpc.CompactionRequest(revision=revision, physical=True)
        self._call("compaction to revision %d" % revision, "kvstub", "Compact", request, timeout=timeout,
                   error_class=OperationFailed)

    def member_add_learner(self, peer_urls):
        """MemberAdd with isLearner; returns (the new member, the member list after)."""
        request = etcd3.etcdrpc.MemberAddRequest(peerURLs=list(peer_urls)).SerializeToString() + IS_LEARNER_FIELD
        response = self._raw_call("adding a learner with peer URLs %s" % ", ".join(peer_urls),
                                  "/etcdserverpb.Cluster/MemberAdd", request, etcd3.etcdrpc.MemberAddResponse)
        return member_entry(response.member), members_of(response)

    def member_promote(self, member_id):
        """MemberPromote (etcd 3.4+); the response has MemberListResponse's layout (header 1, members 2)."""
        request = etcd3.etcdrpc.MemberRemoveRequest(ID=member_id).SerializeToString()  # same layout: ID = 1
        response = self._raw_call("promoting learner %x" % member_id, "/etcdserverpb.Cluster/MemberPromote",
                                  request, etcd3.etcdrpc.MemberListResponse)
        return members_of(response)

    def member_remove(self, member_id):
        response = self._call("removing member %x" % member_id, "clusterstub", "MemberRemove",
                              etcd3.etcdrpc.MemberRemoveRequest(ID=member_id), error_class=OperationFailed)
        return members_of(response)

    def _raw_call(self, what, method, request_bytes, response_class):
        call = self._stubs().channel.unary_unary(method, request_serializer=None,
                                                 response_deserializer=response_class.FromString)
        try:
            return call(request_bytes, timeout=self.timeout)
        except grpc.RpcError as err:
            self.close()
            raise describe_rpc_error(err, what, self, self.tls, self.timeout, OperationFailed)

    def move_leader(self, target_id, timeout):
        """Hand leadership to ``target_id``; etcd only accepts this on the current leader."""
        request = etcd3.etcdrpc.MoveLeaderRequest(targetID=target_id)
        self._call("moving leadership to %x" % target_id, "maintenancestub", "MoveLeader", request,
                   timeout=timeout, error_class=OperationFailed)

    # -- leases, ranges and transactions (the lock of _etcd/lock.py) ------------------------------
    def lease_grant(self, ttl):
        """A new lease; returns (id, granted TTL): etcd may grant more than asked (its minimum TTL)."""
        response = self._call("a lease grant", "leasestub", "LeaseGrant", etcd3.etcdrpc.LeaseGrantRequest(TTL=ttl))
        if response.error:
            raise OperationFailed("etcd member %s refused a lease grant: %s" % (self.label(), response.error))
        return response.ID, response.TTL

    def lease_keepalive(self, lease_id, timeout=None):
        """Renew ``lease_id`` once; returns its new TTL (0 or less: the lease has expired)."""
        timeout = timeout or self.timeout
        request = etcd3.etcdrpc.LeaseKeepAliveRequest(ID=lease_id)
        try:
            # LeaseKeepAlive is a bidirectional stream; one request, one answer renews it.
            responses = self._stubs().leasestub.LeaseKeepAlive(iter([request]), timeout=timeout)
            for response in responses:
                return response.TTL
        except grpc.RpcError as err:
            self.close()
            raise describe_rpc_error(err, "a lease keep-alive", self, self.tls, timeout)
        return 0

    def lease_revoke(self, lease_id):
        """Revoke ``lease_id``; etcd deletes every key attached to it."""
        self._call("a lease revocation", "leasestub", "LeaseRevoke", etcd3.etcdrpc.LeaseRevokeRequest(ID=lease_id))

    def range_keys(self, request):
        """A RangeRequest; returns the response (header and kvs)."""
        return self._call("a read of %s" % request.key.decode("utf-8", "replace"), "kvstub", "Range", request)

    def txn(self, request, what):
        """A TxnRequest; returns the response."""
        return self._call(what, "kvstub", "Txn", request)


def wait_for(check, timeout, interval=0.2):
    """Call ``check()`` until it returns a true value or ``timeout`` seconds pass; return the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)
