#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: evidence_collect
short_description: Pack a control-plane node's evidence into one tarball before anything is changed
version_added: 0.1.0
description:
  - Writes C(<dest_dir>/<host>.tar.gz) (mode 0600, atomically) holding, under C(<host>/), the given
    O(documents) as JSON (the report, etcd members, certificates, versions), every file of the manifests
    directory (dot-files too), journal excerpts of O(journal_units), C(crictl ps -a), and the free space
    of the etcd data filesystem.
  - Never copies private keys or kubeconfig credentials. Only the manifests directory is read as files;
    a file there holding PEM private key material, a kubeconfig client key or a token is left out and
    listed in RV(skipped). Commands that do not exist on the node are listed in RV(notes).
  - Use M(cplane.kubeadm.evidence_bundle) on the controller to merge the nodes' tarballs; the
    control_plane_report role does both with C(control_plane_report_bundle=true).
author: cplane.kubeadm contributors (@cplane)
extends_documentation_fragment:
  - cplane.kubeadm.attributes
attributes:
  check_mode:
    support: full
    details:
      - Returns what would be collected (RV(plan)) and writes nothing.
  diff_mode:
    support: none
options:
  host:
    description: Name of the top directory in the tarball and of the file (the inventory host name).
    type: str
    required: true
  dest_dir:
    description: Directory on the node to write the tarball to (created 0700).
    type: path
    required: true
  documents:
    description: Named JSON documents to include (C(documents/<name>.json)).
    type: dict
    default: {}
  manifests_dir:
    description: The static pod manifests directory.
    type: path
    default: /etc/kubernetes/manifests
  data_dir:
    description: The etcd data directory, for the free space of its filesystem.
    type: path
    default: /var/lib/etcd
  journal_units:
    description: systemd units whose journal excerpts to include.
    type: list
    elements: str
    default: [kubelet, containerd]
  journal_lines:
    description: Lines of each journal excerpt.
    type: int
    default: 300
  crictl_path:
    description: crictl binary.
    type: str
    default: crictl
  journalctl_path:
    description: journalctl binary.
    type: str
    default: journalctl
"""

EXAMPLES = r"""
- name: Keep the evidence of this node
  cplane.kubeadm.evidence_collect:
    host: "{{ inventory_hostname }}"
    dest_dir: /var/tmp/cplane-evidence
    documents:
      report: "{{ control_plane_report_result }}"
"""

RETURN = r"""
path:
  description: The tarball written on the node.
  returned: success, not in check mode
  type: str
files:
  description: Names of the files in the tarball (below C(<host>/)).
  returned: success, not in check mode
  type: list
  elements: str
skipped:
  description: Files of the manifests directory left out, with the reason (secret material, not a regular file, too large).
  returned: success, not in check mode
  type: list
  elements: dict
notes:
  description: Commands that could not run or failed.
  returned: success, not in check mode
  type: list
  elements: str
size_bytes:
  description: Size of the tarball.
  returned: success, not in check mode
  type: int
plan:
  description: What would be collected.
  returned: check mode
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import CplaneError, fail_from
from ansible_collections.cplane.kubeadm.plugins.module_utils._evidence import (
    collect_host_evidence, plan_host_evidence)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            host=dict(type="str", required=True),
            dest_dir=dict(type="path", required=True),
            documents=dict(type="dict", default={}),
            manifests_dir=dict(type="path", default="/etc/kubernetes/manifests"),
            data_dir=dict(type="path", default="/var/lib/etcd"),
            journal_units=dict(type="list", elements="str", default=["kubelet", "containerd"]),
            journal_lines=dict(type="int", default=300),
            crictl_path=dict(type="str", default="crictl"),
            journalctl_path=dict(type="str", default="journalctl"),
        ),
        supports_check_mode=True,
    )
    params = dict(module.params)
    if module.check_mode:
        module.exit_json(changed=False, plan=plan_host_evidence(
            params["host"], params["manifests_dir"], params["documents"], params["journal_units"],
            params["crictl_path"], params["journalctl_path"]))
    try:
        result = collect_host_evidence(**params)
    except CplaneError as err:
        fail_from(module, err, changed=False)
    module.exit_json(changed=True, **result)


if __name__ == "__main__":
    main()
