"""kubelet_csr_approve against the real kube-apiserver of the lab (real certificates.k8s.io API, Node authorizer).

CSRs are created as the nodes themselves: each node's agent talks to the API with a kubelet client
certificate (CN system:node:<name>, O system:nodes) signed by kubeadm's cluster CA, so the API server
fills spec.username/groups exactly as for a real kubelet.  The request PEMs are built like kubelet's
(ECDSA P-256 key, CN system:node:<name>, O system:nodes, the node's addresses as SANs, usages
digital signature + server auth: client-go util/certificate/certificate_manager.go).

No kube-controller-manager runs in the lab's control plane; that does not change any outcome here:
its approver (pkg/controller/certificates/approver/sarapprove.go) never approves kubelet-serving
CSRs, and its signer only signs approved ones.  The last test starts the real one (csrapproving and
csrsigning, as kubeadm configures them) when it is built, and checks both: the request this module
approved is signed by the cluster CA, an older pending one stays pending.
"""
import base64
import contextlib
import json
import os
import subprocess
import time

import pytest

from tests.lab import pki
from tests.lab.ansible_run import ROOT, run_module, run_playbook
from tests.lab.control_plane import ApiError
from tests.lab.kubeadm import LabBinaryMissing, k8s_versions, real_binary

PLAYBOOK = os.path.join(ROOT, "playbooks", "kubelet_serving_certs.yml")
CSR_PATH = "/apis/certificates.k8s.io/v1/certificatesigningrequests"
SERVING = ("digital signature", "server auth")
W1 = {"ip": "127.0.0.11", "extra": [{"type": "ExternalIP", "address": "127.0.1.11"},
                                    {"type": "InternalDNS", "address": "w1.lab.internal"}]}
W2 = {"ip": "127.0.0.12", "extra": []}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    from tests.lab.control_plane import ControlPlaneLab
    try:
        control_plane = ControlPlaneLab(str(tmp_path_factory.mktemp("csr-control-plane")))
    except LabBinaryMissing as exc:
        pytest.fail(str(exc))
    with control_plane:
        control_plane.add_node("w1", "v" + control_plane.version, address=W1["ip"], extra_addresses=W1["extra"])
        control_plane.add_node("w2", "v" + control_plane.version, address=W2["ip"])
        yield control_plane


@pytest.fixture(scope="module")
def key():
    return pki.new_key("ecdsa")


def create_csr(client, pem, signer="kubernetes.io/kubelet-serving", usages=SERVING):
    """POST a CSR as kubelet does (generateName csr-); the created object."""
    body = {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
            "metadata": {"generateName": "csr-"},
            "spec": {"request": base64.b64encode(pem).decode(), "signerName": signer, "usages": list(usages)}}
    return client.request("POST", CSR_PATH, body, expect=(201,))[1]


def kubelet_request(key, node, dns, ips, **kwargs):
    return pki.csr_pem(key, "system:node:%s" % node, ["system:nodes"], dns, ips, **kwargs)


def read(lab, name):
    return lab.admin.get("%s/%s" % (CSR_PATH, name))


def run(lab, check=False, **args):
    result = run_module("kubelet_csr_approve", dict(args, kubeconfig=lab.admin_kubeconfig), check=check)
    assert result["failed"] is False, result.get("msg") or result["_stdout"][-3000:]
    return result


def by_name(entries):
    return {e["name"]: e for e in entries}


def kubectl(lab, *args):
    proc = subprocess.run([real_binary("kubectl"), "--kubeconfig", lab.admin_kubeconfig] + list(args),
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_a_csr_created_by_a_node_carries_the_requester_a_kubelet_csr_carries(lab, key):
    created = create_csr(lab.agents["w1"].api, kubelet_request(key, "w1", ["w1"], [W1["ip"]]))
    assert created["spec"]["username"] == "system:node:w1"
    assert "system:nodes" in created["spec"]["groups"] and "system:authenticated" in created["spec"]["groups"]
    by_admin = create_csr(lab.admin, kubelet_request(key, "w1", ["w1"], [W1["ip"]]))
    assert by_admin["spec"]["username"] == "kubernetes-admin"
    assert "system:nodes" not in by_admin["spec"]["groups"]
    # Nothing in the cluster approves kubelet-serving CSRs by itself.
    assert "conditions" not in (read(lab, created["metadata"]["name"]).get("status") or {})


def test_good_approved_forged_and_foreign_left_pending_approved_left_alone_check_mode_changes_nothing(lab, key):
    w1, w2 = lab.agents["w1"].api, lab.agents["w2"].api
    names = {}
    names["good"] = create_csr(w1, kubelet_request(key, "w1", ["w1", "w1.lab.internal"], [W1["ip"], "127.0.1.11"]))
    names["forged_ip"] = create_csr(w1, kubelet_request(key, "w1", ["w1"], [W1["ip"], W2["ip"]]))
    names["extra_dns"] = create_csr(w1, kubelet_request(key, "w1", ["w1", "kubernetes.default.svc"], [W1["ip"]]))
    names["by_admin"] = create_csr(lab.admin, kubelet_request(key, "w1", ["w1"], [W1["ip"]]))
    # Node A asking for node B's certificate: kube-apiserver's NodeRestriction admission already refuses it
    # (plugin/pkg/admission/noderestriction/admission.go admitCSR); the module's own check is in the unit tests.
    with pytest.raises(ApiError) as refused:
        create_csr(w1, kubelet_request(key, "w2", ["w2"], [W2["ip"]]))
    assert refused.value.status == 403 and "can only create a node CSR with CN=system:node:w1" in str(refused.value)
    names["good_w2"] = create_csr(w2, kubelet_request(key, "w2", ["w2"], [W2["ip"]]))
    names["client_signer"] = create_csr(w1, pki.csr_pem(key, "system:node:w1", ["system:nodes"]),
                                        signer="kubernetes.io/kube-apiserver-client-kubelet",
                                        usages=["digital signature", "client auth"])
    names = {label: obj["metadata"]["name"] for label, obj in names.items()}
    # Approved beforehand by an operator with the real kubectl.
    names["approved_before"] = create_csr(w2, kubelet_request(key, "w2", ["w2"], [W2["ip"]]))["metadata"]["name"]
    kubectl(lab, "certificate", "approve", names["approved_before"])
    wanted = sorted(names.values())
    before = {name: read(lab, name) for name in wanted}

    checked = run(lab, check=True, names=wanted)
    assert checked["changed"] is True
    assert sorted(by_name(checked["approved"])) == sorted([names["good"], names["good_w2"]])
    after_check = {name: read(lab, name) for name in wanted}
    assert {n: o["metadata"]["resourceVersion"] for n, o in after_check.items()} == \
        {n: o["metadata"]["resourceVersion"] for n, o in before.items()}
    assert all("conditions" not in (o.get("status") or {}) for n, o in after_check.items() if n != names["approved_before"])

    result = run(lab, names=wanted)
    assert result["changed"] is True
    approved = by_name(result["approved"])
    assert sorted(approved) == sorted([names["good"], names["good_w2"]])
    assert approved[names["good"]]["node"] == "w1" and approved[names["good"]]["requester"] == "system:node:w1"
    assert approved[names["good"]]["ip_addresses"] == [W1["ip"], "127.0.1.11"]
    pending = by_name(result["pending"])
    assert sorted(pending) == sorted([names["forged_ip"], names["extra_dns"], names["by_admin"]])
    assert pending[names["forged_ip"]]["reasons"] == [
        "subject alternative names %s are not addresses of node w1 (its addresses: w1, w1.lab.internal, 127.0.0.11, "
        "127.0.1.11)" % W2["ip"]]
    assert "kubernetes.default.svc" in pending[names["extra_dns"]]["reasons"][0]
    assert pending[names["by_admin"]]["reasons"][0] == "requested by kubernetes-admin, not by a node (system:node:<name>)"
    assert [(s["name"], s["state"]) for s in result["already_decided"]] == [(names["approved_before"], "approved")]
    # Another signer's CSR is not read at all.
    assert result["not_found"] == [names["client_signer"]] and result["denied"] == []

    for label in ("good", "good_w2"):
        conditions = read(lab, names[label])["status"]["conditions"]
        assert [(c["type"], c["status"], c["reason"]) for c in conditions] == [("Approved", "True", "CplaneKubeadmApproved")]
    for label in ("forged_ip", "extra_dns", "by_admin", "client_signer"):
        assert "conditions" not in (read(lab, names[label]).get("status") or {}), label
    # The operator's approval is untouched.
    assert read(lab, names["approved_before"])["status"]["conditions"] == before[names["approved_before"]]["status"]["conditions"]
    # The real kubectl sees the approval.
    listed = json.loads(kubectl(lab, "get", "csr", names["good"], "-o", "json"))
    assert listed["status"]["conditions"][0]["type"] == "Approved"

    again = run(lab, names=wanted)
    assert again["changed"] is False and again["approved"] == []
    assert sorted(s["name"] for s in again["already_decided"]) == sorted([names["good"], names["good_w2"], names["approved_before"]])


def test_deny_invalid_denies_with_reasons_and_leaves_good_ones_to_approval(lab, key):
    w1 = lab.agents["w1"].api
    forged = create_csr(w1, kubelet_request(key, "w1", ["w1"], ["10.99.0.1"]))["metadata"]["name"]
    ghost = create_csr(lab.kubelet_client("ghost"), kubelet_request(key, "ghost", ["ghost"], ["127.0.0.99"]))["metadata"]["name"]
    checked = run(lab, check=True, names=[forged, ghost], deny_invalid=True)
    assert sorted(by_name(checked["denied"])) == sorted([forged, ghost])
    assert "conditions" not in (read(lab, forged).get("status") or {})

    result = run(lab, names=[forged, ghost], deny_invalid=True)
    denied = by_name(result["denied"])
    assert result["changed"] is True and result["pending"] == [] and result["approved"] == []
    assert denied[ghost]["reasons"] == ["node ghost does not exist"]
    condition = read(lab, forged)["status"]["conditions"][0]
    assert (condition["type"], condition["status"], condition["reason"]) == ("Denied", "True", "CplaneKubeadmDenied")
    assert "10.99.0.1" in condition["message"] and "not addresses of node w1" in condition["message"]
    assert [(s["name"], s["state"]) for s in run(lab, names=[forged])["already_decided"]] == [(forged, "denied")]


def test_allowed_networks_refuse_an_address_the_node_wrote_into_its_own_status(lab, key):
    """NodeRestriction lets a node patch its own status.addresses: w2 adds an ExternalIP it does not own."""
    agent = lab.agents["w2"]
    agent.extra_addresses = [{"type": "ExternalIP", "address": "192.0.2.50"}]
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            addresses = [a["address"] for a in lab.admin.get("/api/v1/nodes/w2")["status"]["addresses"]]
            if "192.0.2.50" in addresses:
                break
            time.sleep(0.5)
        assert "192.0.2.50" in addresses
        name = create_csr(agent.api, kubelet_request(key, "w2", ["w2"], [W2["ip"], "192.0.2.50"]))["metadata"]["name"]
        unbounded = run(lab, check=True, names=[name])
        assert [a["name"] for a in unbounded["approved"]] == [name]
        bounded = run(lab, names=[name], allowed_networks=["127.0.0.0/8"], allowed_dns_suffixes=["lab.internal"])
        assert bounded["approved"] == [] and bounded["changed"] is False
        assert bounded["pending"][0]["reasons"] == ["IP addresses 192.0.2.50 are outside allowed_networks (127.0.0.0/8)"]
        assert "conditions" not in (read(lab, name).get("status") or {})
    finally:
        agent.extra_addresses = []


def test_a_kubeconfig_without_approve_permission_fails_naming_what_is_needed(lab, key):
    """A node's own credentials may create CSRs but not approve them: the module fails with the permissions needed."""
    name = create_csr(lab.agents["w2"].api, kubelet_request(key, "w2", ["w2"], [W2["ip"]]))["metadata"]["name"]
    directory = "%s/credentials/kubelet-w2" % lab.workdir
    result = run_module("kubelet_csr_approve", {"host": lab.url, "ca_cert": directory + "/ca.crt",
                                                "client_cert": directory + "/client.crt",
                                                "client_key": directory + "/client.key", "names": [name]})
    assert result["failed"] is True
    assert "forbidden (403)" in result["msg"] and "certificatesigningrequests/approval" in result["msg"]
    assert "BEGIN" not in result["msg"]
    assert "conditions" not in (read(lab, name).get("status") or {})


def approvals(run):
    found = [r for r in run.results if r["action"] == "cplane.kubeadm.kubelet_csr_approve"]
    assert found, [(r["task"], r["action"], r["status"]) for r in run.results]
    return found


def test_playbook_approves_the_good_one_and_fails_listing_what_stays_pending(lab, key):
    good = create_csr(lab.agents["w1"].api, kubelet_request(key, "w1", ["w1"], [W1["ip"]]))["metadata"]["name"]
    forged = create_csr(lab.agents["w1"].api, kubelet_request(key, "w1", ["w1", "vault.example.com"], [W1["ip"]]))
    forged = forged["metadata"]["name"]
    extra = {"target": "localhost", "kubelet_serving_certs_become": False,
             "kubelet_serving_certs_kubeconfig": lab.admin_kubeconfig, "kubelet_serving_certs_fail_on_pending": True}

    checked = run_playbook(PLAYBOOK, extra, check=True)
    [approval] = approvals(checked)
    assert good in [a["name"] for a in approval["result"]["approved"]]
    assert "conditions" not in (read(lab, good).get("status") or {})

    run = run_playbook(PLAYBOOK, extra)
    assert run.rc != 0, run.output[-3000:]
    [approval] = approvals(run)
    assert approval["status"] == "ok" and good in [a["name"] for a in approval["result"]["approved"]]
    assert read(lab, good)["status"]["conditions"][0]["reason"] == "CplaneKubeadmApproved"
    [failure] = run.task("Fail when requests were left pending")
    assert failure["status"] == "failed"
    left = failure["result"]["msg"]["left_pending"]
    assert "vault.example.com are not addresses of node w1" in " ".join(left[forged])
    assert "conditions" not in (read(lab, forged).get("status") or {})


@contextlib.contextmanager
def controller_manager(lab):
    """The real kube-controller-manager (the lab's version, else the minor before: the skew policy allows it)
    with the CSR controllers and the flags kubeadm gives it (cluster CA as signer, per-controller service
    account credentials: cmd/kubeadm/app/phases/controlplane/manifests.go getControllerManagerCommand)."""
    binary = None
    for version in [lab.version] + [v for v in reversed(k8s_versions()) if v != lab.version]:
        try:
            binary = real_binary("kube-controller-manager", version)
            break
        except LabBinaryMissing:
            continue
    if binary is None:
        pytest.skip("kube-controller-manager is not built (scripts/lab-binaries --all builds it)")
    pki_dir = lab.node.pki_dir
    log_path = os.path.join(lab.workdir, "kube-controller-manager.log")
    with open(log_path, "w") as log:
        proc = subprocess.Popen([binary, "--kubeconfig", os.path.join(lab.node.kubeconfig_dir, "controller-manager.conf"),
                                 "--controllers=csrapproving,csrsigning", "--leader-elect=false", "--secure-port=0",
                                 "--use-service-account-credentials=true",
                                 "--cluster-signing-cert-file", os.path.join(pki_dir, "ca.crt"),
                                 "--cluster-signing-key-file", os.path.join(pki_dir, "ca.key")],
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        yield proc, log_path
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_the_real_controller_manager_signs_what_was_approved_and_approves_nothing_itself(lab, key):
    from cryptography import x509
    w1 = lab.agents["w1"].api
    with controller_manager(lab) as (proc, log_path):
        older = create_csr(w1, kubelet_request(key, "w1", ["w1"], [W1["ip"]]))["metadata"]["name"]
        good = create_csr(w1, kubelet_request(key, "w1", ["w1", "w1.lab.internal"], [W1["ip"]]))["metadata"]["name"]
        assert [a["name"] for a in run(lab, names=[good])["approved"]] == [good]
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not (read(lab, good).get("status") or {}).get("certificate"):
            assert proc.poll() is None, tail(log_path)
            time.sleep(0.5)
        signed = read(lab, good)["status"]
        assert signed.get("certificate"), tail(log_path)
        cert = x509.load_pem_x509_certificate(base64.b64decode(signed["certificate"]))
        with open(os.path.join(lab.node.pki_dir, "ca.crt"), "rb") as handle:
            ca = x509.load_pem_x509_certificate(handle.read())
        cert.verify_directly_issued_by(ca)   # signed by kubeadm's cluster CA, or raises
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert sorted(san.get_values_for_type(x509.DNSName)) == ["w1", "w1.lab.internal"]
        assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == [W1["ip"]]
        assert cert.subject.rfc4514_string() == "CN=system:node:w1,O=system:nodes"
        # kube-controller-manager's approver saw the older request first (one informer, one queue) and left it.
        assert "conditions" not in (read(lab, older).get("status") or {})
        assert [p["name"] for p in run(lab, check=True, names=[older])["approved"]] == [older]


def tail(path, size=3000):
    with open(path, errors="replace") as handle:
        return handle.read()[-size:]
