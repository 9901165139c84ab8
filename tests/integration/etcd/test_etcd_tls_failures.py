"""Bad connection settings fail with a message naming the file or member, never a traceback."""
import datetime
import json
import os
import shutil

import pytest

from tests.lab import pki
from tests.lab.ansible_run import run_module
from tests.lab.binaries import WHEEL_ETCD_VERSION
from tests.lab.ports import free_port

# The handshakes run on every etcd the lab has; the failures found before any connection on one.
pytestmark = pytest.mark.etcd_matrix
CLIENT_SIDE = pytest.mark.etcd_matrix(WHEEL_ETCD_VERSION)


def _fail(module, args):
    result = run_module(module, args)
    assert result["failed"] is True, result
    assert "Traceback" not in result["_stdout"]
    # ansible-core 2.19 puts a placeholder in every failed result; a real traceback would be here
    assert "Traceback" not in json.dumps(result.get("exception", ""))
    return result


@CLIENT_SIDE
@pytest.mark.parametrize("module", ["etcd_member_info", "etcd_defrag"])
def test_unreachable_endpoint(shared_etcd1, module):
    url = "https://127.0.0.1:%d" % free_port()
    result = _fail(module, shared_etcd1.connection_args(endpoints=[url]))
    assert "cannot reach etcd member %s" % url in result["msg"]


@pytest.mark.parametrize("module", ["etcd_member_info", "etcd_defrag"])
def test_wrong_ca(shared_etcd1, tmp_path, module):
    other = pki.make_ca("some-other-ca", key_type="ecdsa")
    pki.write(str(tmp_path / "ca.crt"), other.cert_pem, 0o644)
    result = _fail(module, shared_etcd1.connection_args(ca_cert=str(tmp_path / "ca.crt")))
    assert "not signed by the CA in %s" % (tmp_path / "ca.crt") in result["msg"]


def test_client_cert_from_another_ca(shared_etcd1, tmp_path):
    other = pki.make_ca("some-other-ca", key_type="ecdsa")
    pki.write_pair(str(tmp_path), "client.crt", "client.key", pki.issue(other, "intruder", key_type="ecdsa"))
    result = _fail("etcd_defrag", shared_etcd1.connection_args(client_cert=str(tmp_path / "client.crt"),
                                                               client_key=str(tmp_path / "client.key")))
    assert "rejected the client certificate" in result["msg"]
    assert "issued by 'CN=some-other-ca'" in result["msg"] and str(tmp_path / "client.crt") in result["msg"]


def test_expired_client_cert(shared_etcd1, tmp_path):
    past = pki.now() - datetime.timedelta(days=2)
    expired = pki.issue(shared_etcd1.cas.etcd_ca, "kube-etcd-healthcheck-client", key_type="ecdsa",
                        not_before=past - datetime.timedelta(days=365), not_after=past)
    pki.write_pair(str(tmp_path), "client.crt", "client.key", expired)
    args = shared_etcd1.connection_args(client_cert=str(tmp_path / "client.crt"), client_key=str(tmp_path / "client.key"))
    result = _fail("etcd_member_info", args)
    assert "%s" % (tmp_path / "client.crt") in result["msg"] and "expired on" in result["msg"]
    assert "kubeadm certs renew" in result["msg"]


@CLIENT_SIDE
@pytest.mark.parametrize("which", ["ca_cert", "client_cert", "client_key"])
def test_malformed_pem_names_the_file(shared_etcd1, tmp_path, which):
    args = shared_etcd1.connection_args()
    broken = str(tmp_path / os.path.basename(args[which]))
    shutil.copy(args[which], broken)
    with open(broken, "rb") as handle:
        data = handle.read()
    with open(broken, "wb") as handle:
        handle.write(data[: len(data) // 2])  # truncated
    args[which] = broken
    result = _fail("etcd_defrag", args)
    assert broken in result["msg"]
    # the key's content never reaches the output, only its path
    if which == "client_key":
        body = data.decode().splitlines()[1]
        assert body[:30] not in result["_stdout"] and body[:30] not in result["msg"]


@CLIENT_SIDE
def test_missing_file(shared_etcd1, tmp_path):
    result = _fail("etcd_member_info", shared_etcd1.connection_args(client_cert=str(tmp_path / "absent.crt")))
    assert "cannot read the client cert %s" % (tmp_path / "absent.crt") in result["msg"]
