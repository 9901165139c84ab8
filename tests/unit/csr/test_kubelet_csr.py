"""The checks of kubelet_csr_approve on CSRs built with cryptography, and its decisions against a fake API client.

The real API server (and a CSR created as the node) is in tests/integration/csr.
"""
import base64

import pytest

from ansible_collections.cplane.kubeadm.plugins.module_utils import _csr
from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import InputError, OperationFailed
from tests.lab import pki

SERVING = ["digital signature", "server auth"]
NODES = {
    "w1": {"metadata": {"name": "w1"}, "status": {"addresses": [
        {"type": "InternalIP", "address": "10.0.0.21"}, {"type": "Hostname", "address": "w1"},
        {"type": "ExternalIP", "address": "203.0.113.21"}, {"type": "InternalDNS", "address": "w1.internal"},
        {"type": "ExternalDNS", "address": "W1.example.com"}, {"type": "InternalIP", "address": "fd00::21"}]}},
    "w2": {"metadata": {"name": "w2"}, "status": {"addresses": [
        {"type": "InternalIP", "address": "10.0.0.22"}, {"type": "Hostname", "address": "w2"}]}},
}


@pytest.fixture(scope="module")
def key():
    return pki.new_key("ecdsa")


def request(key, node="w1", cn=None, o=("system:nodes",), dns=("w1",), ips=("10.0.0.21",), **sans):
    return pki.csr_pem(key, cn or "system:node:%s" % node, o, dns, ips, **sans)


def csr(pem, name="csr-1", username="system:node:w1", groups=("system:nodes", "system:authenticated"), usages=None,
        conditions=None, signer=_csr.SIGNER):
    request_b64 = base64.b64encode(pem).decode() if isinstance(pem, bytes) else pem
    return {"metadata": {"name": name, "resourceVersion": "7"},
            "spec": {"request": request_b64, "signerName": signer, "username": username, "groups": list(groups),
                     "usages": list(usages or SERVING)},
            "status": {"conditions": conditions} if conditions else {}}


def reasons_for(obj, nodes=None):
    nodes = NODES if nodes is None else nodes
    fields = _csr.parse_request(base64.b64decode(obj["spec"]["request"]))
    name = _csr._node_name(fields["common_names"][0]) if fields["common_names"] else None
    return _csr.evaluate(obj, fields, nodes.get(name))


def test_what_kubelet_requests_passes(key):
    assert reasons_for(csr(request(key))) == []


def test_every_address_kind_of_the_node_is_accepted_and_dns_compares_case_insensitively(key):
    pem = request(key, dns=("w1", "w1.internal", "w1.EXAMPLE.com"), ips=("10.0.0.21", "203.0.113.21", "fd00:0::21"))
    assert reasons_for(csr(pem)) == []


def test_rsa_usages_with_key_encipherment_pass_and_anything_else_does_not(key):
    assert reasons_for(csr(request(key), usages=["digital signature", "key encipherment", "server auth"])) == []
    for usages in (["digital signature", "server auth", "client auth"], ["server auth"],
                   ["digital signature", "server auth", "server auth"], ["digital signature", "client auth"]):
        reasons = reasons_for(csr(request(key), usages=usages))
        assert len(reasons) == 1 and "key usages" in reasons[0], usages


def test_another_nodes_ip_is_refused_and_named(key):
    reasons = reasons_for(csr(request(key, ips=("10.0.0.21", "10.0.0.22"))))
    assert len(reasons) == 1
    assert "10.0.0.22 are not addresses of node w1" in reasons[0] and "10.0.0.21" in reasons[0].split("its addresses")[1]


def test_an_extra_dns_name_is_refused(key):
    reasons = reasons_for(csr(request(key, dns=("w1", "vault.example.com"))))
    assert len(reasons) == 1 and "vault.example.com are not addresses of node w1" in reasons[0]


def test_a_request_without_any_san_is_refused(key):
    assert reasons_for(csr(request(key, dns=(), ips=()))) == ["no DNS or IP subject alternative name"]


def test_email_and_uri_sans_are_refused(key):
    reasons = reasons_for(csr(request(key, emails=("root@w1",), uris=("spiffe://cluster/w1",))))
    assert len(reasons) == 1 and "root@w1" in reasons[0] and "spiffe://cluster/w1" in reasons[0]


def test_requester_must_be_the_node_itself_in_system_nodes(key):
    admin = reasons_for(csr(request(key), username="kubernetes-admin", groups=["kubeadm:cluster-admins", "system:authenticated"]))
    assert admin[0] == "requested by kubernetes-admin, not by a node (system:node:<name>)"
    assert "not in the group system:nodes" in admin[1] and len(admin) == 2
    other_node = reasons_for(csr(request(key), username="system:node:w2"))
    assert other_node == ["subject CN system:node:w1 names another node than the requester system:node:w2"]
    no_group = reasons_for(csr(request(key), groups=["system:authenticated"]))
    assert no_group == ["the requester is not in the group system:nodes (groups: system:authenticated)"]


def test_subject_must_be_a_node_and_o_exactly_system_nodes(key):
    assert reasons_for(csr(request(key, o=("system:nodes", "system:masters")))) == [
        "subject O is system:nodes, system:masters, not exactly system:nodes"]
    assert reasons_for(csr(request(key, o=()))) == ["subject O is missing, not exactly system:nodes"]
    reasons = reasons_for(csr(request(key, cn="w1")))
    assert reasons == ["subject CN is w1, not system:node:<name>"]


def test_a_node_that_does_not_exist_is_refused(key):
    pem = request(key, node="gone", dns=("gone",))
    assert reasons_for(csr(pem, username="system:node:gone")) == ["node gone does not exist"]


@pytest.mark.parametrize("data, expected", [
    (b"", "no PEM block of type CERTIFICATE REQUEST"),
    (b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", "no PEM block of type CERTIFICATE REQUEST"),
    (b"-----BEGIN CERTIFICATE REQUEST-----\nbm90IGEgY3Ny\n-----END CERTIFICATE REQUEST-----\n", "not a parsable"),
])
def test_bad_pem_is_a_reason_not_a_traceback(data, expected):
    with pytest.raises(ValueError) as caught:
        _csr.parse_request(data)
    assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_a_tampered_request_fails_its_signature_check(key):
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    der = x509.load_pem_x509_csr(request(key)).public_bytes(serialization.Encoding.DER)
    # The DNS SAN "w1" (context tag [2], length 2) changed to "w9" after signing: still well-formed DER.
    assert der.count(b"\x82\x02w1") == 1
    forged = der.replace(b"\x82\x02w1", b"\x82\x02w9")
    pem = b"-----BEGIN CERTIFICATE REQUEST-----\n" + base64.encodebytes(forged) + b"-----END CERTIFICATE REQUEST-----\n"
    fields = _csr.parse_request(pem)
    assert fields["dns_names"] == ["w9"]
    assert reasons_for(csr(pem)) == ["the signature does not verify with the request's public key",
                                     "subject alternative names w9 are not addresses of node w1 (its addresses: w1, "
                                     "w1.example.com, w1.internal, 10.0.0.21, 203.0.113.21, fd00::21)"]


def test_approval_state_reads_conditions():
    assert _csr.approval_state({"status": {}}) == "pending"
    assert _csr.approval_state({"status": {"conditions": [{"type": "Approved", "status": "True"}]}}) == "approved"
    assert _csr.approval_state({"status": {"conditions": [{"type": "Approved"}]}}) == "approved"
    assert _csr.approval_state({"status": {"conditions": [{"type": "Denied", "status": "True"}]}}) == "denied"
    assert _csr.approval_state({"status": {"conditions": [{"type": "Approved", "status": "True"},
                                                          {"type": "Failed", "status": "True"}]}}) == "failed"
    assert _csr.approval_state({"status": {"conditions": [{"type": "Approved", "status": "False"}]}}) == "pending"


def test_node_addresses_map_as_kubelet_maps_them():
    dns, ips = _csr.node_addresses({"status": {"addresses": [
        {"type": "Hostname", "address": "10.1.1.1"}, {"type": "Hostname", "address": "Host"},
        {"type": "InternalIP", "address": "not-an-ip"}, {"type": "ExternalDNS", "address": ""},
        {"type": "InternalDNS", "address": "h.internal"}]}})
    assert dns == {"host", "h.internal"}
    assert {str(ip) for ip in ips} == {"10.1.1.1"}


class FakeClient(object):
    """Serves a list of CSR objects and Nodes; records approval PUTs. ``conflicts``: names whose first PUT gets 409."""

    def __init__(self, csrs, nodes=None, conflicts=(), deleted=()):
        self.csrs = {c["metadata"]["name"]: c for c in csrs}
        self.nodes = NODES if nodes is None else nodes
        self.puts = []
        self.conflicts = set(conflicts)
        self.deleted = set(deleted)   # listed, then gone before the PUT

    def request(self, what, method, path, body=None, forbidden_hint=None, **query):
        if method == "GET" and path == _csr.CSR_PATH:
            assert query["fieldSelector"] == "spec.signerName=kubernetes.io/kubelet-serving"
            return {"items": list(self.csrs.values()), "metadata": {}}
        if method == "GET" and path.startswith("/api/v1/nodes/"):
            name = path.rsplit("/", 1)[1]
            if name not in self.nodes:
                error = OperationFailed("%s: 404" % what)
                error.status = 404
                raise error
            return self.nodes[name]
        if method == "GET" and path.startswith(_csr.CSR_PATH + "/"):
            return self.csrs[path.rsplit("/", 1)[1]]
        assert method == "PUT" and path.endswith("/approval"), (method, path)
        name = path.split("/")[-2]
        if name in self.deleted:
            error = OperationFailed("%s: 404" % what)
            error.status = 404
            raise error
        if name in self.conflicts:
            self.conflicts.discard(name)
            error = OperationFailed("%s: 409" % what)
            error.status = 409
            raise error
        self.puts.append((name, body))
        self.csrs[name] = body
        return body


def test_decisions_approve_leave_pending_and_skip(key):
    client = FakeClient([
        csr(request(key), name="good"),
        csr(request(key, ips=("10.0.0.22",)), name="forged"),
        csr(request(key), name="done", conditions=[{"type": "Approved", "status": "True"}]),
        csr("bm90IGJhc2U2NA==", name="garbage"),
    ])
    result = _csr.approve_kubelet_csrs(client)
    assert [a["name"] for a in result["approved"]] == ["good"]
    assert result["approved"][0]["node"] == "w1" and result["approved"][0]["ip_addresses"] == ["10.0.0.21"]
    assert [p["name"] for p in result["pending"]] == ["forged", "garbage"]
    assert "no PEM block" in result["pending"][1]["reasons"][0]
    assert [(s["name"], s["state"]) for s in result["already_decided"]] == [("done", "approved")]
    assert result["changed"] is True and result["denied"] == []
    [(name, body)] = client.puts
    assert name == "good" and body["metadata"]["resourceVersion"] == "7"
    condition = body["status"]["conditions"][-1]
    assert condition["type"] == "Approved" and condition["reason"] == "CplaneKubeadmApproved"
    # A second run changes nothing.
    again = _csr.approve_kubelet_csrs(client)
    assert again["changed"] is False and again["approved"] == [] and len(client.puts) == 1


def test_check_mode_reports_and_sends_nothing(key):
    client = FakeClient([csr(request(key), name="good"), csr(request(key, dns=("w1", "evil")), name="bad")])
    result = _csr.approve_kubelet_csrs(client, deny_invalid=True, check_mode=True)
    assert [a["name"] for a in result["approved"]] == ["good"] and [d["name"] for d in result["denied"]] == ["bad"]
    assert result["changed"] is True and client.puts == []


def test_deny_invalid_denies_with_the_reasons(key):
    client = FakeClient([csr(request(key, dns=("w1", "evil")), name="bad")])
    result = _csr.approve_kubelet_csrs(client, deny_invalid=True)
    [denied] = result["denied"]
    assert denied["name"] == "bad" and len(denied["reasons"]) == 1 and "evil" in denied["reasons"][0]
    condition = client.puts[0][1]["status"]["conditions"][-1]
    assert condition["type"] == "Denied" and condition["reason"] == "CplaneKubeadmDenied" and "evil" in condition["message"]


def test_names_filter_and_not_found(key):
    client = FakeClient([csr(request(key), name="a"), csr(request(key), name="b")])
    result = _csr.approve_kubelet_csrs(client, names=["b", "zzz"])
    assert [a["name"] for a in result["approved"]] == ["b"] and result["not_found"] == ["zzz"]
    with pytest.raises(InputError):
        _csr.approve_kubelet_csrs(client, names=[""])


def test_a_conflict_reads_the_request_again_and_decides_anew(key):
    client = FakeClient([csr(request(key), name="good")], conflicts={"good"})
    result = _csr.approve_kubelet_csrs(client)
    assert [a["name"] for a in result["approved"]] == ["good"] and len(client.puts) == 1


def test_a_failure_returns_what_was_already_approved(key):
    client = FakeClient([csr(request(key), name="a"), csr(request(key), name="b")])
    original = client.request

    def failing(what, method, path, **kwargs):
        if method == "PUT" and "/b/" in path:
            raise OperationFailed("approving CSR b: forbidden")
        return original(what, method, path, **kwargs)

    client.request = failing
    with pytest.raises(OperationFailed) as caught:
        _csr.approve_kubelet_csrs(client)
    assert [a["name"] for a in caught.value.result["approved"]] == ["a"] and caught.value.result["changed"] is True


def test_the_api_servers_in_cluster_names_are_refused_even_when_the_node_lists_them(key):
    """A node writes its own status.addresses (NodeRestriction allows it): a compromised one could list these."""
    node = {"status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.21"}, {"type": "Hostname", "address": "w1"},
                                     {"type": "InternalDNS", "address": "kubernetes.default.svc"},
                                     {"type": "ExternalDNS", "address": "kubernetes.default.svc.cluster.local"}]}}
    pem = request(key, dns=("w1", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"))
    assert reasons_for(csr(pem), {"w1": node}) == [
        "DNS names kubernetes.default.svc, kubernetes.default.svc.cluster.local are the API server's in-cluster names, "
        "never a kubelet's"]


def test_allowed_networks_and_dns_suffixes_limit_what_a_node_may_claim(key):
    pem = request(key, dns=("w1", "w1.internal", "W1.example.com"), ips=("10.0.0.21", "203.0.113.21"))
    fields = _csr.parse_request(pem)
    policy = _csr.make_policy(["10.0.0.0/16"], ["example.com."])
    assert _csr.evaluate(csr(pem), fields, NODES["w1"], policy) == [
        "IP addresses 203.0.113.21 are outside allowed_networks (10.0.0.0/16)",
        "DNS names w1.internal are outside allowed_dns_suffixes (example.com)"]
    # The node's own name passes any suffix list; a v6 address is outside a v4 network, not an error.
    roomy = _csr.make_policy(["10.0.0.0/8", "203.0.113.0/24", "fd00::/64"], ["internal", "example.com"])
    assert _csr.evaluate(csr(pem), fields, NODES["w1"], roomy) == []
    v6 = request(key, dns=("w1",), ips=("fd00::21",))
    assert "outside allowed_networks" in _csr.evaluate(csr(v6), _csr.parse_request(v6), NODES["w1"],
                                                       _csr.make_policy(["10.0.0.0/8"], None))[0]


@pytest.mark.parametrize("networks, suffixes, message", [
    (["10.0.0.0/33"], None, "allowed_networks: '10.0.0.0/33' is not a network"),
    (["w1"], None, "allowed_networks: 'w1' is not a network"),
    (None, ["."], "allowed_dns_suffixes: '.' is empty"),
])
def test_bad_policy_values_are_named(networks, suffixes, message):
    with pytest.raises(InputError) as caught:
        _csr.make_policy(networks, suffixes)
    assert caught.value.msg.startswith(message)


def test_a_request_deleted_during_the_run_is_reported_not_fatal(key):
    client = FakeClient([csr(request(key), name="a"), csr(request(key), name="gone")], deleted={"gone"})
    result = _csr.approve_kubelet_csrs(client)
    assert [a["name"] for a in result["approved"]] == ["a"] and result["not_found"] == ["gone"]


def test_a_request_approved_by_someone_else_meanwhile_is_left_alone(key):
    client = FakeClient([csr(request(key), name="raced")], conflicts={"raced"})
    client.csrs["raced"] = csr(request(key), name="raced", conditions=[{"type": "Approved", "status": "True",
                                                                        "reason": "Operator"}])
    listed = [csr(request(key), name="raced")]
    client.request = _listing(client, listed)
    result = _csr.approve_kubelet_csrs(client)
    assert result["approved"] == [] and [(d["name"], d["state"]) for d in result["already_decided"]] == [("raced", "approved")]
    assert client.puts == []


def _listing(client, listed):
    """The list call answers ``listed`` (the state before a race); every other call goes to the fake as is."""
    original = client.request

    def request(what, method, path, **kwargs):
        if method == "GET" and path == _csr.CSR_PATH:
            return {"items": listed, "metadata": {}}
        return original(what, method, path, **kwargs)
    return request
