# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Approval of kubelet serving-certificate requests (CSRs for the signer kubernetes.io/kubelet-serving).

With ``serverTLSBootstrap: true`` every kubelet asks the certificates API for a serving certificate,
and nothing in Kubernetes approves those requests: kube-controller-manager's approver
(pkg/controller/certificates/approver/sarapprove.go, ``recognizers()``) only knows the
kube-apiserver-client-kubelet signer, and kubeadm's "Enabling signed kubelet serving certificates"
(https://kubernetes.io/docs/tasks/administer-cluster/kubeadm/kubeadm-certs/#kubelet-serving-certs)
leaves approval to the user or a custom controller.  Approving blindly would let anything that
holds a node credential obtain a certificate for any name or IP the cluster CA vouches for, so a
request is approved here only when it is exactly what that node's kubelet asks for:

* requester: ``spec.username`` is ``system:node:<name>`` and ``spec.groups`` holds ``system:nodes``
  (the API server fills both from the authenticated creator; they cannot be forged in the body);
* subject: CN ``system:node:<name>`` for the same ``<name>`` (a node asks for its own certificate
  only), O exactly ``[system:nodes]``;
* SANs: at least one DNS or IP SAN, every one of them an address of that Node object
  (``status.addresses``, mapped as kubelet maps them: pkg/kubelet/certificate/kubelet.go
  ``addressesToHostnamesAndIPs``: Hostname -> DNS name, or IP when it parses as one;
  InternalIP/ExternalIP -> IP; InternalDNS/ExternalDNS -> DNS name); no e-mail or URI SAN;
* key usages: exactly {digital signature, server auth} or {digital signature, key encipherment,
  server auth}, the two sets kube-controller-manager's kubelet-serving signer accepts
  (pkg/apis/certificates/helpers.go ``ValidateKubeletServingCSR``, called by
  pkg/controller/certificates/signer/signer.go ``isKubeletServing``) and kubelet requests
  (client-go util/certificate/certificate_manager.go ``DefaultKubeletServingGetUsages``: key
  encipherment for RSA keys only);
* the request's signature verifies, and the Node exists;
* no DNS SAN is one of the API server's in-cluster names (kubernetes.default.svc...), and, when the
  operator gives them, every IP SAN lies in ``allowed_networks`` and every DNS SAN under
  ``allowed_dns_suffixes``: a node writes its own ``status.addresses``, so a compromised node could
  otherwise list any address there first.

Everything else stays pending with its reasons, or is denied with them (``deny_invalid``).
Requests already approved, denied or failed are left alone.  Approval and denial go through the
``approval`` subresource with the object as read (its resourceVersion), as ``kubectl certificate
approve`` and kube-controller-manager do, so a request changed meanwhile is never overwritten.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import ipaddress
from urllib.parse import quote

from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import CplaneError, InputError

try:
    from cryptography import x509
    from cryptography.x509.oid import NameOID
except ImportError:  # pragma: no cover - reported through _deps.assert_required
    x509 = None

SIGNER = "kubernetes.io/kubelet-serving"
NODE_PREFIX = "system:node:"
NODES_GROUP = "system:nodes"
# pkg/apis/certificates/helpers.go kubeletServingRequiredUsages / kubeletServingRequiredUsagesNoRSA.
SERVING_USAGES = (frozenset(["digital signature", "server auth"]),
                  frozenset(["digital signature", "key encipherment", "server auth"]))
APPROVED_REASON = "CplaneKubeadmApproved"
DENIED_REASON = "CplaneKubeadmDenied"
CSR_PATH = "/apis/certificates.k8s.io/v1/certificatesigningrequests"
FORBIDDEN_HINT = ("Approving kubelet serving certificates needs list/get on certificatesigningrequests, update on "
                  "certificatesigningrequests/approval, approve on signers %s and get on nodes: use kubeadm's "
                  "admin.conf (cluster-admin)." % SIGNER)
# The API server's in-cluster names, which kubeadm puts in its serving certificate (signed by the same
# cluster CA): cmd/kubeadm/app/util/pkiutil/pki_helpers.go GetAPIServerAltNames.  A node may write any
# address into its own Node status (NodeRestriction lets it), so these are refused whatever the Node says.
API_SERVER_NAMES = ("kubernetes", "kubernetes.default", "kubernetes.default.svc")
API_SERVER_NAME_PREFIX = "kubernetes.default.svc."
# Node address types and what kubelet puts in its serving CSR for each (kubelet.go addressesToHostnamesAndIPs).
_DNS_TYPES = ("InternalDNS", "ExternalDNS")
_IP_TYPES = ("InternalIP", "ExternalIP")


def parse_request(pem):
    """The fields of a PEM CSR that the checks need; ValueError with a one-line reason when it is not one.

    ``pem``: bytes or text of ``spec.request`` (already base64-decoded).
    """
    if isinstance(pem, str):
        pem = pem.encode("utf-8", "replace")
    if b"-----BEGIN CERTIFICATE REQUEST-----" not in (pem or b""):
        raise ValueError("spec.request holds no PEM block of type CERTIFICATE REQUEST")
    try:
        request = x509.load_pem_x509_csr(pem)
    except ValueError as error:
        raise ValueError("spec.request is not a parsable certificate request (%s)" % (str(error).splitlines() or ["?"])[0])
    try:
        signature_ok = request.is_signature_valid
    except Exception as error:  # an unsupported key algorithm: cryptography cannot check it
        signature_ok = None
        signature_problem = "the signature cannot be checked (%s)" % type(error).__name__
    else:
        signature_problem = None if signature_ok else "the signature does not verify with the request's public key"
    try:
        subject = request.subject
        common_names = [a.value for a in subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        organizations = [a.value for a in subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
        try:
            san = request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            san = None
        dns = san.get_values_for_type(x509.DNSName) if san is not None else []
        ips = san.get_values_for_type(x509.IPAddress) if san is not None else []
        emails = san.get_values_for_type(x509.RFC822Name) if san is not None else []
        uris = san.get_values_for_type(x509.UniformResourceIdentifier) if san is not None else []
        known = (x509.DNSName, x509.IPAddress, x509.RFC822Name, x509.UniformResourceIdentifier)
        others = [n for n in san if not isinstance(n, known)] if san is not None else []
    except (ValueError, TypeError) as error:
        raise ValueError("spec.request has a malformed subject or extension (%s)" % (str(error).splitlines() or ["?"])[0])
    return {
        "common_names": [str(v) for v in common_names],
        "organizations": [str(v) for v in organizations],
        "dns_names": list(dns),
        "ip_addresses": [str(ip) for ip in ips],
        "emails": list(emails),
        "uris": list(uris),
        "other_sans": [type(n).__name__ for n in others],
        "signature_problem": signature_problem,
    }


def _ip(text):
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def node_addresses(node):
    """(DNS names, IP addresses) a node's kubelet may put in its serving CSR, from ``status.addresses``."""
    dns, ips = set(), set()
    for entry in ((node or {}).get("status") or {}).get("addresses") or []:
        kind, value = entry.get("type"), entry.get("address") or ""
        if not value:
            continue
        if kind == "Hostname":
            if _ip(value) is not None:
                ips.add(_ip(value))
            else:
                dns.add(value.lower())
        elif kind in _IP_TYPES and _ip(value) is not None:
            ips.add(_ip(value))
        elif kind in _DNS_TYPES:
            dns.add(value.lower())
    return dns, ips


def approval_state(csr):
    """``approved``, ``denied``, ``failed`` or ``pending`` from ``status.conditions`` (status defaults to True)."""
    conditions = (csr.get("status") or {}).get("conditions") or []
    kinds = {c.get("type") for c in conditions if (c.get("status") or "True") == "True"}
    for kind in ("Denied", "Failed", "Approved"):
        if kind in kinds:
            return kind.lower()
    return "pending"


def _node_name(username):
    if username and username.startswith(NODE_PREFIX) and len(username) > len(NODE_PREFIX):
        return username[len(NODE_PREFIX):]
    return None


def make_policy(allowed_networks=None, allowed_dns_suffixes=None):
    """The operator's limits on SANs beyond the Node's addresses; InputError naming a bad value."""
    networks = []
    for text in allowed_networks or []:
        try:
            networks.append(ipaddress.ip_network(str(text).strip(), strict=False))
        except ValueError:
            raise InputError("allowed_networks: %r is not a network in CIDR notation (for example 10.0.0.0/16 or "
                             "fd00::/64)." % (text,))
    suffixes = []
    for text in allowed_dns_suffixes or []:
        suffix = str(text).strip().strip(".").lower()
        if not suffix:
            raise InputError("allowed_dns_suffixes: %r is empty; give a domain such as nodes.example.com." % (text,))
        suffixes.append(suffix)
    return {"networks": networks, "dns_suffixes": suffixes}


def _in_suffixes(name, suffixes):
    name = name.lower().rstrip(".")
    return any(name == s or name.endswith("." + s) for s in suffixes)


def _policy_reasons(fields, policy, node_name):
    reasons = []
    reserved = [n for n in fields["dns_names"]
                if n.lower() in API_SERVER_NAMES or n.lower().startswith(API_SERVER_NAME_PREFIX)]
    if reserved:
        reasons.append("DNS names %s are the API server's in-cluster names, never a kubelet's" % ", ".join(reserved))
    if policy and policy["networks"]:
        outside = [ip for ip in fields["ip_addresses"] if not any(_ip(ip) in net for net in policy["networks"])]
        if outside:
            reasons.append("IP addresses %s are outside allowed_networks (%s)"
                           % (", ".join(outside), ", ".join(str(n) for n in policy["networks"])))
    if policy and policy["dns_suffixes"]:
        # The node's own name is its identity (the CN its client certificate proves), under any suffix or none.
        outside = [n for n in fields["dns_names"]
                   if n.lower() != (node_name or "").lower() and not _in_suffixes(n, policy["dns_suffixes"])]
        if outside:
            reasons.append("DNS names %s are outside allowed_dns_suffixes (%s)"
                           % (", ".join(outside), ", ".join(policy["dns_suffixes"])))
    return reasons


def evaluate(csr, fields, node, policy=None):
    """Every reason not to approve ``csr`` (empty: approve).

    ``fields``: parse_request() of its request (None when it did not parse; the parse reason is the
    caller's).  ``node``: the Node object of the name in the subject, or None when it does not exist.
    ``policy``: make_policy() (None: no limits beyond the Node's addresses).
    """
    spec = csr.get("spec") or {}
    reasons = []
    username = spec.get("username") or ""
    groups = spec.get("groups") or []
    requester = _node_name(username)
    if requester is None:
        reasons.append("requested by %s, not by a node (system:node:<name>)" % (username or "an unknown user"))
    if NODES_GROUP not in groups:
        reasons.append("the requester is not in the group %s (groups: %s)" % (NODES_GROUP, ", ".join(groups) or "none"))
    usages = spec.get("usages") or []
    if frozenset(usages) not in SERVING_USAGES or len(usages) != len(set(usages)):
        reasons.append("key usages %s are not the kubelet serving ones (digital signature, server auth, and key "
                       "encipherment for RSA keys)" % (", ".join(usages) or "none"))
    if fields is None:
        return reasons
    if fields["signature_problem"]:
        reasons.append(fields["signature_problem"])
    cns = fields["common_names"]
    subject_node = _node_name(cns[0]) if len(cns) == 1 else None
    if subject_node is None:
        reasons.append("subject CN is %s, not system:node:<name>" % (", ".join(cns) or "missing"))
    elif requester is not None and subject_node != requester:
        reasons.append("subject CN %s names another node than the requester %s" % (cns[0], username))
    if fields["organizations"] != [NODES_GROUP]:
        reasons.append("subject O is %s, not exactly %s" % (", ".join(fields["organizations"]) or "missing", NODES_GROUP))
    if fields["emails"] or fields["uris"] or fields["other_sans"]:
        reasons.append("subject alternative names of a kind kubelet never requests: %s"
                       % ", ".join(fields["emails"] + fields["uris"] + fields["other_sans"]))
    if not fields["dns_names"] and not fields["ip_addresses"]:
        reasons.append("no DNS or IP subject alternative name")
    if subject_node is not None and node is None:
        reasons.append("node %s does not exist" % subject_node)
    elif node is not None:
        dns, ips = node_addresses(node)
        foreign = [n for n in fields["dns_names"] if n.lower() not in dns]
        foreign += [ip for ip in fields["ip_addresses"] if _ip(ip) not in ips]
        if foreign:
            known = sorted(dns) + sorted(str(ip) for ip in ips)
            reasons.append("subject alternative names %s are not addresses of node %s (its addresses: %s)"
                           % (", ".join(foreign), subject_node, ", ".join(known) or "none"))
    return reasons + _policy_reasons(fields, policy, subject_node)


def _summary(csr, fields, subject_node):
    spec = csr.get("spec") or {}
    return {
        "name": (csr.get("metadata") or {}).get("name"),
        "node": subject_node,
        "requester": spec.get("username"),
        "dns_names": fields["dns_names"] if fields else [],
        "ip_addresses": fields["ip_addresses"] if fields else [],
        "usages": spec.get("usages") or [],
    }


def _decode_request(csr):
    raw = (csr.get("spec") or {}).get("request") or ""
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("spec.request is not base64")


def _list(client, page_size):
    items, token = [], None
    while True:
        page = client.request("listing kubelet serving CSRs", "GET", CSR_PATH, forbidden_hint=FORBIDDEN_HINT,
                              fieldSelector="spec.signerName=%s" % SIGNER, limit=page_size, **{"continue": token})
        items.extend(page.get("items") or [])
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return items


def _get_node(client, name, cache):
    if name not in cache:
        try:
            cache[name] = client.request("reading node %s" % name, "GET", "/api/v1/nodes/%s" % quote(name, safe=""),
                                         forbidden_hint=FORBIDDEN_HINT)
        except CplaneError as error:
            if getattr(error, "status", None) != 404:
                raise
            cache[name] = None
    return cache[name]


def _condition(kind, reason, message):
    return {"type": kind, "status": "True", "reason": reason, "message": message}


def _set_condition(client, csr, condition):
    """PUT the approval subresource with ``condition`` appended; the updated object (409 propagates)."""
    name = csr["metadata"]["name"]
    body = dict(csr)
    body["status"] = dict(csr.get("status") or {})
    body["status"]["conditions"] = list(body["status"].get("conditions") or []) + [condition]
    return client.request("%s CSR %s" % ("approving" if condition["type"] == "Approved" else "denying", name), "PUT",
                          "%s/%s/approval" % (CSR_PATH, quote(name, safe="")), body=body, forbidden_hint=FORBIDDEN_HINT)


def review(csr, client, node_cache, policy=None):
    """(verdict, summary, reasons) for one CSR: verdict ``approve``, ``reject`` or the state it is already in."""
    state = approval_state(csr)
    fields, parse_reason = None, None
    try:
        fields = parse_request(_decode_request(csr))
    except ValueError as error:
        parse_reason = str(error)
    subject_node = None
    if fields and len(fields["common_names"]) == 1:
        subject_node = _node_name(fields["common_names"][0])
    summary = _summary(csr, fields, subject_node)
    if state != "pending":
        return state, summary, []
    node = _get_node(client, subject_node, node_cache) if subject_node else None
    reasons = ([parse_reason] if parse_reason else []) + evaluate(csr, fields, node, policy)
    return ("reject" if reasons else "approve"), summary, reasons


def approve_kubelet_csrs(client, names=None, deny_invalid=False, check_mode=False, page_size=500,
                         allowed_networks=None, allowed_dns_suffixes=None):
    """Approve every pending kubelet-serving CSR that passes ``evaluate``; the result lists.

    ``names``: only these CSRs (others are not reported).  Returns a dict with ``approved``,
    ``denied``, ``pending`` (with ``reasons``), ``already_decided`` (already approved, denied or failed;
    with ``state``), ``not_found`` (names given that are no kubelet-serving CSR, and CSRs deleted
    during the run) and ``changed``.
    """
    if names is not None and any(not isinstance(n, str) or not n for n in names):
        raise InputError("names must be a list of CSR names (strings); got %r." % (names,))
    policy = make_policy(allowed_networks, allowed_dns_suffixes)
    items = _list(client, page_size)
    wanted = set(names) if names is not None else None
    result = {"approved": [], "denied": [], "pending": [], "already_decided": [], "not_found": []}
    if wanted is not None:
        present = {(c.get("metadata") or {}).get("name") for c in items}
        result["not_found"] = sorted(wanted - present)
        items = [c for c in items if (c.get("metadata") or {}).get("name") in wanted]
    node_cache = {}
    try:
        _decide_all(client, items, deny_invalid, check_mode, result, node_cache, policy)
    except CplaneError as error:
        # What was approved or denied before the failure is returned with it.
        error.result.update(result, changed=bool(result["approved"] or result["denied"]) and not check_mode)
        raise
    result["changed"] = bool(result["approved"] or result["denied"])
    return result


def _decide_all(client, items, deny_invalid, check_mode, result, node_cache, policy):
    for csr in sorted(items, key=lambda c: (c.get("metadata") or {}).get("name") or ""):
        for attempt in (1, 2):
            verdict, summary, reasons = review(csr, client, node_cache, policy)
            try:
                _act(client, csr, verdict, summary, reasons, deny_invalid, check_mode, result)
                break
            except CplaneError as error:
                status = getattr(error, "status", None)
                if status == 404:   # deleted since it was listed (kube-controller-manager's csrcleaner, an operator)
                    result["not_found"].append(summary["name"])
                    break
                if status != 409 or attempt == 2:
                    raise
            # Changed since it was listed (a kubelet's retry, another approver): read it again and decide anew.
            try:
                csr = client.request("reading CSR %s" % summary["name"], "GET",
                                     "%s/%s" % (CSR_PATH, quote(summary["name"], safe="")), forbidden_hint=FORBIDDEN_HINT)
            except CplaneError as error:
                if getattr(error, "status", None) != 404:
                    raise
                result["not_found"].append(summary["name"])
                break


def _act(client, csr, verdict, summary, reasons, deny_invalid, check_mode, result):
    if verdict in ("approved", "denied", "failed"):
        result["already_decided"].append(dict(summary, state=verdict))
    elif verdict == "approve":
        if not check_mode:
            _set_condition(client, csr, _condition(
                "Approved", APPROVED_REASON, "cplane.kubeadm.kubelet_csr_approve: requester, subject, subject alternative "
                "names and key usages match node %s" % summary["node"]))
        result["approved"].append(summary)
    elif deny_invalid:
        if not check_mode:
            _set_condition(client, csr, _condition(
                "Denied", DENIED_REASON, "cplane.kubeadm.kubelet_csr_approve: " + "; ".join(reasons)))
        result["denied"].append(dict(summary, reasons=reasons))
    else:
        result["pending"].append(dict(summary, reasons=reasons))
