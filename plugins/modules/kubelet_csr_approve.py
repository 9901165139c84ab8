#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: kubelet_csr_approve
short_description: Approve kubelet serving-certificate requests that belong to their node
version_added: 0.1.0
description:
  - With C(serverTLSBootstrap) enabled, every kubelet requests its serving certificate through a
    CertificateSigningRequest for the signer C(kubernetes.io/kubelet-serving). Nothing in Kubernetes
    approves these requests (kube-controller-manager only approves kubelet client certificates), and
    kubeadm leaves their approval to the user.
  - This module approves a pending kubelet serving CSR only when all of these hold.
    The requester (C(spec.username)) is C(system:node:<name>) and C(spec.groups) contains C(system:nodes).
    The subject is CN C(system:node:<name>) for the same node and O exactly C(system:nodes).
    Every DNS and IP subject alternative name (at least one) is an address of that Node object
    (C(status.addresses), mapped as kubelet maps them), and there are no e-mail or URI SANs.
    The key usages are exactly C(digital signature) and C(server auth), optionally with C(key encipherment).
    The request's signature verifies, and the Node exists. No DNS name is one of the API server's
    in-cluster names, and the SANs lie within O(allowed_networks) and O(allowed_dns_suffixes) when they are set.
  - Any other pending kubelet serving CSR stays pending and is returned in RV(pending) with its reasons,
    or is denied with those reasons when O(deny_invalid=true).
  - CSRs that are already approved, denied or failed are left alone (RV(already_decided)). CSRs of other signers
    are not read.
  - Approval and denial go through the C(approval) subresource with the object as read, so a request that
    changed in the meantime is read again and decided anew, never overwritten.
extends_documentation_fragment:
  - cplane.kubeadm.k8s_auth
  - cplane.kubeadm.attributes
attributes:
  check_mode:
    support: full
    details:
      - Reads and checks the same requests and returns what it would approve (RV(approved)) and deny (RV(denied));
        no request is changed.
  diff_mode:
    support: none
  idempotent:
    description: When run again with the same parameters, the module reports no change.
    support: full
    details:
      - Requests approved or denied by a run are returned in RV(already_decided) by the next and left alone.
options:
  names:
    description:
      - Only consider the CSRs with these names. Names that are not kubelet serving CSRs are returned in
        RV(not_found).
      - Default is every kubelet serving CSR.
    type: list
    elements: str
  allowed_networks:
    description:
      - Networks in CIDR notation (for example C(10.0.0.0/16), C(fd00::/64)). When set, every IP subject alternative
        name must also lie in one of them.
      - A kubelet writes its own Node's C(status.addresses), so without limits a compromised node could list any
        address there and then request a certificate for it. This option and O(allowed_dns_suffixes) bound that.
    type: list
    elements: str
  allowed_dns_suffixes:
    description:
      - Domains (for example C(nodes.example.com)). When set, every DNS subject alternative name must be one of them
        or end with C(.<domain>). The node's own name is always allowed.
      - The API server's in-cluster names (C(kubernetes), C(kubernetes.default), C(kubernetes.default.svc) and
        C(kubernetes.default.svc.*)) are refused whatever this option says.
    type: list
    elements: str
  deny_invalid:
    description:
      - Deny pending kubelet serving CSRs that fail a check, with condition reason C(CplaneKubeadmDenied) and the
        reasons as message. A denied request cannot be approved later; the kubelet creates a new one.
      - When false, such requests stay pending and are only reported.
    type: bool
    default: false
  page_size:
    description: Number of CSRs to request per list call (the API's C(limit)).
    type: int
    default: 500
  timeout:
    description:
      - Overall deadline in seconds for all API calls of the run.
    type: float
    default: 60
requirements:
  - cryptography >= 39.0
author:
  - cplane.kubeadm contributors (@cplane)
seealso:
  - name: Enabling signed kubelet serving certificates (kubeadm)
    description: Why kubelet serving CSRs need an approver.
    link: https://kubernetes.io/docs/tasks/administer-cluster/kubeadm/kubeadm-certs/#kubelet-serving-certs
  - name: Certificate signing requests
    description: The kubernetes.io/kubelet-serving signer and the approval subresource.
    link: https://kubernetes.io/docs/reference/access-authn-authz/certificate-signing-requests/
"""

EXAMPLES = r"""
- name: Approve the kubelet serving certificates that belong to their nodes
  cplane.kubeadm.kubelet_csr_approve:
    kubeconfig: /etc/kubernetes/admin.conf
  become: true
  run_once: true
  register: csrs

- name: Show requests left pending and why
  ansible.builtin.debug:
    msg: "{{ item.name }} ({{ item.requester }}): {{ item.reasons | join('; ') }}"
  loop: "{{ csrs.pending }}"

- name: Deny forged requests; only node IPs in the node network, only names under the nodes' domain
  cplane.kubeadm.kubelet_csr_approve:
    kubeconfig: /etc/kubernetes/admin.conf
    allowed_networks: [10.0.0.0/16]
    allowed_dns_suffixes: [nodes.example.com]
    deny_invalid: true
  become: true
  run_once: true
"""

RETURN = r"""
approved:
  description: CSRs approved (in check mode, that would be approved).
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: CSR name., type: str, sample: csr-7x2kq}
    node: {description: "Node named in the subject CN (C(system:node:<node>)).", type: str, sample: worker-1}
    requester: {description: The CSR's C(spec.username)., type: str, sample: "system:node:worker-1"}
    dns_names: {description: DNS subject alternative names requested., type: list, elements: str}
    ip_addresses: {description: IP subject alternative names requested., type: list, elements: str}
    usages: {description: Key usages requested., type: list, elements: str}
  sample:
    - name: csr-7x2kq
      node: worker-1
      requester: "system:node:worker-1"
      dns_names: [worker-1]
      ip_addresses: [10.0.0.21]
      usages: [digital signature, server auth]
denied:
  description: CSRs denied (in check mode, that would be denied) because of O(deny_invalid); same keys as RV(approved) plus C(reasons).
  returned: always
  type: list
  elements: dict
  contains:
    reasons: {description: Every check the request failed., type: list, elements: str}
pending:
  description: Pending CSRs that failed a check and were left pending (O(deny_invalid=false)); same keys as RV(approved) plus C(reasons).
  returned: always
  type: list
  elements: dict
  contains:
    reasons:
      description: Every check the request failed.
      type: list
      elements: str
      sample: ["subject alternative names 10.0.0.22 are not addresses of node worker-1 (its addresses: worker-1, 10.0.0.21)"]
already_decided:
  description:
    - Kubelet serving CSRs already approved, denied or failed, left alone; same keys as RV(approved) plus C(state).
    - "Not named C(skipped) because Ansible reads a true C(skipped) in a result as a skipped task."
  returned: always
  type: list
  elements: dict
  contains:
    state: {description: "V(approved), V(denied) or V(failed).", type: str}
not_found:
  description: Names from O(names) that are not kubelet serving CSRs, and CSRs deleted while the module ran.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cplane.kubeadm.plugins.module_utils import _deps, _k8s_client
from ansible_collections.cplane.kubeadm.plugins.module_utils._csr import approve_kubelet_csrs
from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import CplaneError, fail_from


def main():
    module = AnsibleModule(
        argument_spec=_k8s_client.k8s_argument_spec(
            names=dict(type="list", elements="str"),
            allowed_networks=dict(type="list", elements="str"),
            allowed_dns_suffixes=dict(type="list", elements="str"),
            deny_invalid=dict(type="bool", default=False),
            page_size=dict(type="int", default=500),
            timeout=dict(type="float", default=60),
        ),
        supports_check_mode=True,
    )
    _deps.assert_required(module, *_deps.CSR)
    try:
        with _k8s_client.connect(timeout=module.params["timeout"], **_k8s_client.auth_params(module.params)) as client:
            result = approve_kubelet_csrs(client, names=module.params["names"], deny_invalid=module.params["deny_invalid"],
                                          check_mode=module.check_mode, page_size=module.params["page_size"],
                                          allowed_networks=module.params["allowed_networks"],
                                          allowed_dns_suffixes=module.params["allowed_dns_suffixes"])
    except CplaneError as err:
        fail_from(module, err, changed=False)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
