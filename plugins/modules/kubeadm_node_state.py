#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: kubeadm_node_state
short_description: Tell whether a node is a joined kubeadm control plane, a joined worker, not a member, or half-joined
version_added: 0.1.0
description:
  - Reads the files kubeadm and its etcd leave on a node (certificates, kubeconfig files, static pod manifests,
    the kubelet's configuration, the etcd data directory) and says where the node stands.
  - V(control_plane) has every file of a kubeadm control plane with stacked etcd. V(worker) has the cluster CA,
    C(kubelet.conf) and the kubelet's configuration and nothing of a control plane. V(not_member) has none of
    kubeadm's files. Anything in between is V(half_joined), for example a join killed before the kubelet's TLS
    bootstrap (C(bootstrap-kubelet.conf) but no C(kubelet.conf)) or before etcd started (no etcd member
    directory).
  - A half-joined node gets a RV(hint) with what to do, C(kubeadm reset -f) on that node and the build again.
  - Read-only. Used by the P(cplane.kubeadm.cluster_build#role) role to never initialise an existing cluster
    again and to leave joined nodes alone.
extends_documentation_fragment:
  - cplane.kubeadm.attributes
  - cplane.kubeadm.attributes.INFO_MODULE
options:
  kubernetes_dir:
    description: kubeadm's directory of certificates, kubeconfig files and manifests.
    type: path
    default: /etc/kubernetes
  kubelet_dir:
    description: The kubelet's directory (C(config.yaml), C(kubeadm-flags.env)).
    type: path
    default: /var/lib/kubelet
  etcd_data_dir:
    description: The local etcd member's data directory (C(etcd.local.dataDir)).
    type: path
    default: /var/lib/etcd
author:
  - cplane.kubeadm contributors (@cplane)
"""

EXAMPLES = r"""
- name: Where does this node stand with kubeadm?
  cplane.kubeadm.kubeadm_node_state:
  register: node

- name: Stop on a half-joined node
  ansible.builtin.fail:
    msg: "{{ node.hint }}"
  when: node.state == 'half_joined'
"""

RETURN = r"""
state:
  description: V(not_member), V(control_plane), V(worker) or V(half_joined).
  returned: always
  type: str
  sample: control_plane
kind:
  description: What the files present point to (V(control_plane) or V(worker)); null for V(not_member).
  returned: always
  type: str
  sample: worker
present:
  description: Labels of kubeadm's files that exist on the node.
  returned: always
  type: list
  elements: str
  sample: [ca.crt, kubelet.conf, kubelet config.yaml]
missing:
  description: Files a joined node of RV(kind) has and this node lacks.
  returned: always
  type: list
  elements: str
  sample: [kubelet.conf]
files:
  description: Path of each present file, by label.
  returned: always
  type: dict
  sample: {ca.crt: /etc/kubernetes/pki/ca.crt}
hint:
  description: What to do with a half-joined node; null otherwise.
  returned: always
  type: str
  sample: run 'kubeadm reset -f' on cp3, then run the build again
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cplane.kubeadm.plugins.module_utils._build import node_state as ns


def main():
    module = AnsibleModule(
        argument_spec=dict(
            kubernetes_dir=dict(type="path", default="/etc/kubernetes"),
            kubelet_dir=dict(type="path", default="/var/lib/kubelet"),
            etcd_data_dir=dict(type="path", default="/var/lib/etcd"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    result = ns.node_state("this node", kubernetes_dir=p["kubernetes_dir"], kubelet_dir=p["kubelet_dir"],
                           etcd_data_dir=p["etcd_data_dir"])
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
