#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: kubeadm_cert_renew
short_description: Renew kubeadm-managed certificates that are about to expire, the way C(kubeadm certs renew) does
version_added: 0.1.0
description:
  - Re-issues kubeadm's leaf certificates from the local CAs in O(pki_dir), keeping what kubeadm keeps
    (subject, DNS and IP SANs, key usages and extended key usages) with a new private key of the same
    type and size, and a C(notBefore) five minutes in the past.
  - Renews only what expires within O(renew_before_days) unless O(force) is set, so it is idempotent.
  - Never issues a certificate that outlives its CA; the validity is capped at the CA's expiry with a warning.
    Never renews a CA.
  - Validates every requested certificate before writing anything (corrupt PEM, a key that does not match its
    certificate, a certificate the local CA did not sign, a kubeconfig that cannot be edited in place). Such a
    certificate is refused and left as it is; the others are renewed, then the module fails listing RV(refused).
    A broken pair's message names the newest backup directory in O(backup_dir) that holds a matching pair.
  - Backs up every file it replaces into O(backup_dir) and replaces all of them as one transaction recorded in a
    journal beside O(pki_dir) (C(.cplane-kubeadm-renewal.journal), paths and digests only). Every run first finishes
    (or rolls back from the backups) a renewal that was killed mid-way, so the files are never left as a certificate
    and a key from different pairs. Key files are written with mode 0600.
  - A symlinked certificate, key or kubeconfig stays a link; the file it points to receives the new content.
  - For kubeconfig files only the C(client-certificate-data) and C(client-key-data) values of the user change;
    every other byte of the file stays the same.
  - Static pods do not reload certificates; RV(restart_required) lists the ones that must restart
    (the role C(cplane.kubeadm.cert_renewal) restarts them one at a time with health checks).
  - Warnings (validity capped at a CA's expiry, expired CAs) are reported as Ansible warnings.
extends_documentation_fragment:
  - cplane.kubeadm.kubeadm_pki
  - cplane.kubeadm.attributes
attributes:
  check_mode:
    support: full
    details:
      - Reports what would be renewed and the new C(notAfter) without writing.
  diff_mode:
    support: full
    details:
      - Shows serial numbers and validity dates before and after, never keys.
options:
  certs:
    description:
      - kubeadm names of the certificates to consider (C(apiserver), C(apiserver-kubelet-client), C(front-proxy-client),
        C(etcd-server), C(etcd-peer), C(etcd-healthcheck-client), C(apiserver-etcd-client), C(admin.conf),
        C(super-admin.conf), C(controller-manager.conf), C(scheduler.conf)), or C(all).
      - Files that do not exist on the node are skipped with a reason.
    type: list
    elements: str
    default: [all]
  renew_before_days:
    description: Renew a certificate only when it expires within this many days.
    type: int
    default: 30
  force:
    description: Renew every requested certificate regardless of its expiry (like C(kubeadm certs renew)).
    type: bool
    default: false
  validity_days:
    description:
      - Validity of a renewed certificate in days (capped at the CA's expiry).
      - Ignored by O(backend=kubeadm), which uses the validity of its own configuration.
    type: int
    default: 365
  backup_dir:
    description:
      - Directory that receives a timestamped copy of every replaced file (same owner and mode; backups of keys stay 0600).
      - Must not be inside the static pod manifests directory.
    type: path
    default: /var/backups/cplane-kubeadm
  backend:
    description:
      - V(python) re-issues certificates itself; it needs no C(kubeadm) binary and works with the cluster down.
      - V(kubeadm) runs C(kubeadm certs renew <name> --cert-dir <pki_dir>) for each certificate that is due and reads the
        result back. kubeadm always renews the kubeconfig files in C(/etc/kubernetes), so with another
        O(kubeconfig_dir) the module refuses to renew kubeconfig files with this backend (before it renews anything).
    type: str
    choices: [python, kubeadm]
    default: python
  kubeadm_path:
    description: The kubeadm executable for O(backend=kubeadm) (looked up in PATH when not absolute).
    type: str
    default: kubeadm
  kubeadm_config:
    description:
      - A kubeadm configuration file passed as C(--config) with O(backend=kubeadm).
      - kubeadm then renews in the C(certificatesDir) of its ClusterConfiguration and ignores C(--cert-dir); the module
        refuses a file whose C(certificatesDir) is not O(pki_dir).
    type: path
author:
  - cplane.kubeadm contributors (@cplane)
seealso:
  - module: cplane.kubeadm.kubeadm_cert_info
  - name: kubeadm certificate management
    description: Upstream documentation of C(kubeadm certs renew).
    link: https://kubernetes.io/docs/tasks/administer-cluster/kubeadm/kubeadm-certs/
"""

EXAMPLES = r"""
- name: Renew what expires within 30 days
  cplane.kubeadm.kubeadm_cert_renew:
  register: renewal

- name: Renew the etcd serving and peer certificates now, for two years if the CA allows it
  cplane.kubeadm.kubeadm_cert_renew:
    certs: [etcd-server, etcd-peer]
    force: true
    validity_days: 730

- name: Let kubeadm do it (reads the result back and verifies it)
  cplane.kubeadm.kubeadm_cert_renew:
    backend: kubeadm
    kubeadm_config: /etc/kubernetes/kubeadm-config.yaml
"""

RETURN = r"""
renewed:
  description: Certificates renewed (in check mode, that would be renewed).
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: "kubeadm name.", type: str, sample: etcd-server}
    path: {description: "Certificate file or kubeconfig.", type: str}
    key_path: {description: "Key file (file certificates only).", type: str, returned: for file certificates}
    ca: {description: "Issuing CA.", type: str}
    old_serial: {description: "Serial of the replaced certificate (hex).", type: str}
    new_serial: {description: "Serial of the new certificate (hex).", type: str, returned: unless check mode}
    old_not_after: {description: "Expiry of the replaced certificate.", type: str}
    new_not_after: {description: "Expiry of the new certificate.", type: str, sample: "2027-11-25T17:56:37Z"}
    capped_at_ca_expiry: {description: "The validity was shortened to the CA's expiry.", type: bool}
    restart: {description: "Static pods that must restart to load it.", type: list, elements: str}
    backups: {description: "Backup copies of the replaced files.", type: list, elements: str, returned: unless check mode}
not_renewed:
  description:
    - Certificates not renewed, each with the reason (not due, missing, externally managed CA, CA expired).
    - Not called C(skipped) because Ansible reserves that result key (a task returning it counts as skipped).
  returned: always
  type: list
  elements: dict
  sample: [{name: super-admin.conf, reason: "/etc/kubernetes/super-admin.conf does not exist (...)"}]
certificates:
  description: State after the run, as M(cplane.kubeadm.kubeadm_cert_info) returns it.
  returned: always
  type: list
  elements: dict
restart_required:
  description: Static pods to restart, in a safe order (etcd, kube-apiserver, kube-controller-manager, kube-scheduler).
  returned: always
  type: list
  elements: str
  sample: [etcd]
backup_dir:
  description: Where backups go; each run uses a C(<UTC timestamp>) subdirectory.
  returned: always
  type: str
refused:
  description:
    - Certificates left alone because their files cannot be used, each with the reason. When not empty the module
      fails (after renewing the others).
  returned: always
  type: list
  elements: dict
  sample: [{name: admin.conf, path: /etc/kubernetes/admin.conf, reason: "... cannot be replaced in place ..."}]
recovered:
  description:
    - An interrupted renewal this run found and finished first (in check mode, what a real run would do), else null.
    - C(action) is C(roll_forward) (the new files were complete), C(roll_back) (restored from C(backup_dir))
      or C(discard) (the swap had not started; staged files removed).
  returned: always
  type: dict
  sample: {action: roll_forward, files: [/etc/kubernetes/pki/etcd/server.key, /etc/kubernetes/pki/etcd/server.crt]}
backup_stamp:
  description: The timestamp subdirectory of this run's backups.
  returned: when something was renewed
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cplane.kubeadm.plugins.module_utils import _deps
from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import CplaneError, fail_from
from ansible_collections.cplane.kubeadm.plugins.module_utils._pki import renew
from ansible_collections.cplane.kubeadm.plugins.module_utils._pki.args import pki_argument_spec


def main():
    module = AnsibleModule(
        argument_spec=pki_argument_spec(
            certs=dict(type="list", elements="str", default=["all"]),
            renew_before_days=dict(type="int", default=30),
            force=dict(type="bool", default=False),
            validity_days=dict(type="int", default=365),
            backup_dir=dict(type="path", default=renew.DEFAULT_BACKUP_DIR),
            backend=dict(type="str", choices=["python", "kubeadm"], default="python"),
            kubeadm_path=dict(type="str", default="kubeadm"),
            kubeadm_config=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    _deps.assert_required(module, *_deps.PKI)
    try:
        result = renew.run(module.params, check_mode=module.check_mode, diff=module._diff,
                           run_command=module.run_command, get_bin_path=module.get_bin_path)
    except CplaneError as err:
        fail_from(module, err)
    for warning in result.pop("warnings"):
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
