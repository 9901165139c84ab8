"""Status unknown fields, error mapping and TLS file checks (no etcd process)."""
import datetime

import grpc
import pytest

from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import ConnectionFailure, InputError, OperationFailed
from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd import client as etcd_client
from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd.tls import check_tls_files
from tests.lab import pki


def _varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number, wire, payload):
    return _varint(number << 3 | wire) + payload


def test_status_reads_fields_python_etcd3_does_not_know():
    from etcd3 import etcdrpc
    known = etcdrpc.StatusResponse(version="3.5.1", dbSize=4096 * 100, leader=7, raftIndex=42, raftTerm=3)
    raw = known.SerializeToString()
    raw += _field(7, 0, _varint(41)) + _field(8, 2, _varint(5) + b"oops!") + _field(9, 0, _varint(4096 * 30))
    raw += _field(10, 0, _varint(1)) + _field(12, 0, _varint(8 * 1024 ** 3))
    parsed = etcd_client.parse_status(etcdrpc.StatusResponse.FromString(raw))
    assert parsed["raft_applied_index"] == 41
    assert parsed["db_size_in_use"] == 4096 * 30
    assert parsed["errors"] == ["oops!"]
    assert parsed["is_learner"] is True
    assert parsed["db_size_quota"] == 8 * 1024 ** 3
    assert parsed["db_size"] == 4096 * 100 and parsed["raft_index"] == 42


class FakeRpcError(grpc.RpcError):
    def __init__(self, code, details):
        super().__init__()
        self._code, self._details = code, details

    def code(self):
        return self._code

    def details(self):
        return self._details


MEMBER = etcd_client.MemberClient("https://10.0.0.2:2379", None, 5, name="cp2")


def test_timeout_names_member_and_timeout():
    err = etcd_client.describe_rpc_error(FakeRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"),
                                         "defragmentation", MEMBER, None, 600, OperationFailed)
    assert isinstance(err, OperationFailed)
    assert "cp2 (https://10.0.0.2:2379)" in err.msg and "within 600s" in err.msg


def test_wrong_ca_and_refused_connection_are_told_apart():
    wrong_ca = etcd_client.describe_rpc_error(FakeRpcError(
        grpc.StatusCode.UNAVAILABLE, "Tls handshake failed: CERTIFICATE_VERIFY_FAILED: unable to get local issuer"),
        "a status request", MEMBER)
    assert isinstance(wrong_ca, ConnectionFailure) and "not signed by the CA" in wrong_ca.msg
    refused = etcd_client.describe_rpc_error(FakeRpcError(
        grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses; last error: UNKNOWN: ipv4:10.0.0.2:2379: "
        "Failed to connect to remote host: Connection refused"), "a status request", MEMBER)
    assert "cannot reach etcd member cp2" in refused.msg and "Connection refused" in refused.msg


def test_tls13_rejection_after_the_handshake_is_a_client_certificate_rejection():
    """What gRPC reports when etcd 3.5.35/3.6.16 (Go 1.26, TLS 1.3) refuses the client certificate."""
    err = etcd_client.describe_rpc_error(FakeRpcError(
        grpc.StatusCode.UNAVAILABLE, "Unwrap failed (TSI_DATA_CORRUPTED)"), "a status request", MEMBER)
    assert isinstance(err, ConnectionFailure) and "rejected the client certificate" in err.msg


@pytest.fixture
def tls_dir(tmp_path):
    ca = pki.make_ca("etcd-ca", key_type="ecdsa")
    pki.write(str(tmp_path / "ca.crt"), ca.cert_pem, 0o644)
    pki.write_pair(str(tmp_path), "client.crt", "client.key", pki.issue(ca, "client", key_type="ecdsa"))
    return tmp_path, ca


def test_good_files_pass(tls_dir):
    path, _ca = tls_dir
    tls = check_tls_files(str(path / "ca.crt"), str(path / "client.crt"), str(path / "client.key"))
    assert tls.client_issued_by_ca


def test_malformed_key_names_the_file_and_never_its_content(tls_dir):
    path, _ca = tls_dir
    secret = b"-----BEGIN PRIVATE KEY-----\nU0VDUkVUS0VZTUFURVJJQUw=\n-----END PRIVATE KEY-----\n"
    (path / "client.key").write_bytes(secret)
    with pytest.raises(InputError) as err:
        check_tls_files(str(path / "ca.crt"), str(path / "client.crt"), str(path / "client.key"))
    assert str(path / "client.key") in err.value.msg
    assert "U0VDUkVU" not in err.value.msg


def test_missing_and_truncated_ca(tls_dir):
    path, _ca = tls_dir
    with pytest.raises(InputError, match="cannot read the ca cert .*nope.crt"):
        check_tls_files(str(path / "nope.crt"), str(path / "client.crt"), str(path / "client.key"))
    (path / "ca.crt").write_bytes((path / "ca.crt").read_bytes()[:100])
    with pytest.raises(InputError, match="is not a PEM certificate"):
        check_tls_files(str(path / "ca.crt"), str(path / "client.crt"), str(path / "client.key"))


def test_expired_client_cert_says_renew(tls_dir):
    path, ca = tls_dir
    past = pki.now() - datetime.timedelta(days=1)
    expired = pki.issue(ca, "client", key_type="ecdsa", not_before=past - datetime.timedelta(days=30), not_after=past)
    pki.write_pair(str(path), "client.crt", "client.key", expired)
    with pytest.raises(InputError, match="expired on .*renew"):
        check_tls_files(str(path / "ca.crt"), str(path / "client.crt"), str(path / "client.key"))


def test_key_of_another_certificate(tls_dir):
    path, ca = tls_dir
    other = pki.issue(ca, "other", key_type="ecdsa")
    pki.write(str(path / "client.key"), other.key_pem, 0o600)
    with pytest.raises(InputError, match="does not belong to the client certificate"):
        check_tls_files(str(path / "ca.crt"), str(path / "client.crt"), str(path / "client.key"))
