#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: kubeadm_cert_info
short_description: Report the expiry of every kubeadm-managed certificate, like C(kubeadm certs check-expiration)
version_added: 0.1.0
description:
  - Reads every certificate kubeadm manages on a control-plane node (the files in O(pki_dir) and the
    client certificates embedded in C(admin.conf), C(super-admin.conf), C(controller-manager.conf) and
    C(scheduler.conf)) and the three CAs, and returns them as data.
  - Also reports kubelet's own client certificate for information; kubelet rotates it itself.
  - Needs no C(kubeadm) binary and works while the cluster is down.
  - Never reads out or returns private key material. Keys are read only to check that each belongs to its
    certificate.
  - Fails when O(pki_dir) holds none of kubeadm's files.
extends_documentation_fragment:
  - cplane.kubeadm.kubeadm_pki
  - cplane.kubeadm.attributes
  - cplane.kubeadm.attributes.INFO_MODULE
options:
  kubelet_pki_dir:
    description:
      - Directory holding C(kubelet-client-current.pem). When that file is absent, the certificate embedded
        in C(kubelet.conf) in O(kubeconfig_dir) is reported instead.
    type: path
    default: /var/lib/kubelet/pki
  warn_days:
    description: Certificates and CAs that expire within this many days are listed in RV(expiring).
    type: int
    default: 30
  validity_days:
    description:
      - Validity a renewal would give a leaf certificate. A CA that expires before a certificate renewed
        now would produces an Ansible warning that says what to do.
    type: int
    default: 365
author:
  - cplane.kubeadm contributors (@cplane)
seealso:
  - module: cplane.kubeadm.kubeadm_cert_renew
"""

EXAMPLES = r"""
- name: Read certificate expiry on a control-plane node
  cplane.kubeadm.kubeadm_cert_info:
    warn_days: 60
  register: certs

- name: Fail early when something expires within 60 days
  ansible.builtin.assert:
    that: certs.expiring | length == 0
    fail_msg: "Expiring soon: {{ certs.expiring | join(', ') }}"
"""

RETURN = r"""
certificates:
  description: One entry per kubeadm-managed leaf certificate, in C(kubeadm certs check-expiration) order.
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: "kubeadm name (as in C(kubeadm certs renew))", type: str, sample: apiserver}
    kind: {description: "C(file) or C(kubeconfig) (certificate embedded in a kubeconfig).", type: str}
    path: {description: "Certificate file or kubeconfig.", type: str}
    key_path: {description: "Private key file (the kubeconfig for embedded certificates).", type: str}
    missing: {description: "The file does not exist on this node.", type: bool}
    ca: {description: "Name of the issuing CA (C(ca), C(etcd-ca), C(front-proxy-ca)).", type: str}
    externally_managed: {description: "The issuing CA's key is absent, so kubeadm (and this collection) cannot renew it.", type: bool}
    restart: {description: "Static pods that must restart to load a renewed certificate.", type: list, elements: str}
    subject: {description: "Subject (RFC 4514).", type: str, returned: when present}
    common_name: {description: "Subject common name.", type: str, returned: when present}
    organizations: {description: "Subject organizations.", type: list, elements: str, returned: when present}
    issuer: {description: "Issuer (RFC 4514).", type: str, returned: when present}
    dns_names: {description: "DNS SANs.", type: list, elements: str, returned: when present}
    ip_addresses: {description: "IP SANs.", type: list, elements: str, returned: when present}
    extended_key_usages: {description: "Extended key usages.", type: list, elements: str, returned: when present}
    key_type: {description: "C(RSA), C(ECDSA) or C(Ed25519).", type: str, returned: when present}
    key_size: {description: "Key size in bits.", type: int, returned: when present}
    serial: {description: "Serial number in hex.", type: str, returned: when present}
    not_before: {description: "Start of validity (UTC, ISO 8601).", type: str, returned: when present}
    not_after: {description: "End of validity (UTC, ISO 8601).", type: str, returned: when present, sample: "2027-11-25T17:56:37Z"}
    residual_seconds: {description: "Seconds until expiry (negative once expired).", type: int, returned: when present}
    days_left: {description: "Whole days until expiry (negative once expired).", type: int, returned: when present}
    residual_time: {description: "kubeadm's RESIDUAL TIME column (C(364d), C(9y), C(<invalid>))", type: str, returned: when present}
    expired: {description: "The certificate has expired.", type: bool, returned: when present}
    signed_by_ca: {description: "The certificate is signed by the CA in O(pki_dir).", type: bool, returned: when present}
    error: {description: "Why the file could not be read (it is also reported as a warning).", type: str, returned: when unreadable}
    key_matches:
      description: "The private key belongs to the certificate. False means a broken pair: the component will not start."
      type: bool
      returned: when the certificate and its key are present
    renewable_in_place:
      description: "The kubeconfig's client fields can be replaced in place (false when the value is wrapped over lines)."
      type: bool
      returned: for kubeconfigs that could be read
    problem:
      description: "What is wrong with the pair or the kubeconfig (also reported as a warning)."
      type: str
      returned: when key_matches or renewable_in_place is false
certificate_authorities:
  description: The three kubeadm CAs with the same facts as RV(certificates) (without C(ca) and C(restart)).
  returned: always
  type: list
  elements: dict
kubelet_client:
  description: kubelet's client certificate (rotated by kubelet; for information).
  returned: always
  type: dict
interrupted_renewal:
  description:
    - A certificate renewal that was killed mid-way and not yet finished, else null. The next
      M(cplane.kubeadm.kubeadm_cert_renew) run finishes it first (C(action)).
  returned: always
  type: dict
  sample: {action: roll_forward, journal: /etc/kubernetes/.cplane-kubeadm-renewal.journal, files: [/etc/kubernetes/pki/apiserver.key]}
expiring:
  description: Names of certificates and CAs that expire within O(warn_days) (or have expired).
  returned: always
  type: list
  elements: str
  sample: [etcd-server, admin.conf]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cplane.kubeadm.plugins.module_utils import _deps
from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import CplaneError, fail_from
from ansible_collections.cplane.kubeadm.plugins.module_utils._pki import inspect as pki
from ansible_collections.cplane.kubeadm.plugins.module_utils._pki.args import pki_argument_spec


def main():
    module = AnsibleModule(
        argument_spec=pki_argument_spec(
            kubelet_pki_dir=dict(type="path", default="/var/lib/kubelet/pki"),
            warn_days=dict(type="int", default=30),
            validity_days=dict(type="int", default=365),
        ),
        supports_check_mode=True,
    )
    _deps.assert_required(module, *_deps.PKI)
    p = module.params
    try:
        result = pki.scan(p["pki_dir"], p["kubeconfig_dir"], p["kubelet_pki_dir"], p["warn_days"], p["validity_days"])
    except CplaneError as err:
        fail_from(module, err)
    for warning in result.pop("warnings"):
        module.warn(warning)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
