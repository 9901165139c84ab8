#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: node_version_check
short_description: Check a kubeadm cluster against the Kubernetes version-skew policy and plan upgrades
version_added: 0.1.0
description:
  - Reads, through the Kubernetes API, every node's kubelet and kube-proxy version, the image versions of the
    static control-plane pods (kube-apiserver, kube-controller-manager, kube-scheduler, etcd) on each node and
    the kube-proxy DaemonSet image.
  - Optionally also reads the versions of C(kubelet), C(kubeadm) and C(kubectl) installed on the target host.
  - Evaluates the version-skew policy (U(https://kubernetes.io/releases/version-skew-policy/)). kube-apiserver
    instances must be within one minor version of each other. kubelet and kube-proxy must not be newer than any
    kube-apiserver and may be at most three minors older (two before 1.25). kube-proxy must be within three
    minors of its node's kubelet. kube-controller-manager and kube-scheduler must not be newer than, and at
    most one minor older than, the kube-apiserver on their node. kubectl must be within one minor version.
  - Also reports mixed versions, which the policy may allow. These are nodes or instances whose version
    differs from the rest of the cluster, such as one worker on v1.11.3 among v1.12.1.
  - With O(target_version), returns the upgrade path one minor version at a time. Each step lists what must
    be upgraded before it.
  - Nodes and pods are listed in pages of O(page_size), so clusters with thousands of nodes are read in
    bounded memory.
extends_documentation_fragment:
  - cplane.kubeadm.k8s_auth
  - cplane.kubeadm.attributes
  - cplane.kubeadm.attributes.INFO_MODULE
options:
  gather_local:
    description:
      - Also run C(kubelet --version), C(kubeadm version -o short) and C(kubectl version --client) on the target
        host. A binary that is not installed is reported as not found, and the module does not fail.
      - The local kubectl version is checked against the policy. The local kubelet and kubeadm versions are
        reported for information.
    type: bool
    default: false
  target_version:
    description:
      - Kubernetes version to plan an upgrade to, for example C(v1.30) or C(1.30.4). Returns RV(upgrade_path).
      - Must not be older than the oldest kube-apiserver. kubeadm does not downgrade.
    type: str
  fail_on:
    description:
      - V(none) only reports.
      - V(violation) fails when the policy is violated.
      - V(mixed) fails on a violation or on any mixed version.
    type: str
    choices: [none, violation, mixed]
    default: none
  page_size:
    description: Number of objects to request per list call (the API's C(limit)).
    type: int
    default: 500
  timeout:
    description:
      - Overall deadline in seconds for reading the cluster through the API, covering connecting, every
        page of every list and slow response bodies. A server that answers but too slowly (for example one
        that trickles its response) cannot hold the module longer than this.
      - When it passes the module fails with a message naming the server and the deadline.
    type: float
    default: 60
author:
  - cplane.kubeadm contributors (@cplane)
seealso:
  - name: Kubernetes version skew policy
    description: The policy this module evaluates.
    link: https://kubernetes.io/releases/version-skew-policy/
"""

EXAMPLES = r"""
- name: Check version skew with kubeadm's admin kubeconfig
  cplane.kubeadm.node_version_check:
    kubeconfig: /etc/kubernetes/admin.conf
    gather_local: true
  become: true
  register: skew

- name: Stop when a node drifted from the rest of the cluster
  cplane.kubeadm.node_version_check:
    kubeconfig: /etc/kubernetes/admin.conf
    fail_on: mixed
  become: true

- name: Plan the upgrade to 1.30
  cplane.kubeadm.node_version_check:
    kubeconfig: /etc/kubernetes/admin.conf
    target_version: v1.30
  register: plan

- name: Show the steps
  ansible.builtin.debug:
    msg: "{{ item.from }} -> {{ item.to }}: upgrade first {{ item.upgrade_first | map(attribute='node') | list }}"
  loop: "{{ plan.upgrade_path.steps }}"
"""

RETURN = r"""
api_server_version:
  description: Version the answering API server reports (C(/version) gitVersion).
  returned: always
  type: str
  sample: v1.12.1
violations:
  description: Every violation of the version-skew policy.
  returned: always
  type: list
  elements: dict
  contains:
    rule: {description: "Rule id, for example C(kubelet-too-old) (see the module docs page for the table).", type: str}
    component: {description: Component that violates the rule., type: str, sample: kubelet}
    node: {description: Node of the instance (null for the kube-proxy DaemonSet and local kubectl)., type: str}
    versions: {description: The versions compared (component -> version)., type: dict}
    message: {description: What is wrong and the rule it breaks., type: str}
  sample:
    - rule: kubelet-too-old
      component: kubelet
      node: worker-3
      versions: {kubelet: v1.26.5, kube-apiserver: v1.30.4}
      message: "kubelet on worker-3: v1.26.5 is 4 minor versions older than kube-apiserver v1.30.4 (at most 3 allowed) (...)"
mixed_versions:
  description: Instances whose version differs from the majority of their component, even where the policy allows it.
  returned: always
  type: list
  elements: dict
  contains:
    component: {description: Component., type: str, sample: kubelet}
    node: {description: Node., type: str, sample: antidote-worker-gt5t}
    version: {description: Version of this instance., type: str, sample: v1.11.3}
    majority_version: {description: Version most instances of the component run., type: str, sample: v1.12.1}
    message: {description: One line for humans., type: str}
nodes:
  description: Every node, with what was read about it.
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: Node name., type: str}
    roles: {description: "Roles from C(node-role.kubernetes.io/*) labels.", type: list, elements: str}
    ready: {description: The node's Ready condition is True., type: bool}
    kubelet: {description: "status.nodeInfo.kubeletVersion", type: str}
    kube_proxy: {description: "status.nodeInfo.kubeProxyVersion (empty since 1.31; then null).", type: str}
    control_plane: {description: Static control-plane pod image versions on this node (component -> version)., type: dict}
    restarts: {description: Restart counts of those static pods (component -> count)., type: dict}
components:
  description: >-
    Control-plane instances per component (node, version, image), version counts of kubelet and kube-proxy,
    the kube-proxy DaemonSet version, the API server's reported version and the local binaries' versions.
  returned: always
  type: dict
local:
  description: The binaries on the target host (name -> found, path, version, error).
  returned: when O(gather_local=true)
  type: dict
  sample: {kubelet: {found: true, path: /usr/bin/kubelet, version: v1.30.4, error: null}}
upgrade_path:
  description: The path to O(target_version), one minor version at a time.
  returned: when O(target_version) is set
  type: dict
  contains:
    from: {description: Oldest kube-apiserver version now., type: str}
    to: {description: The target version., type: str}
    steps:
      description: One entry per minor version, in order.
      type: list
      elements: dict
      contains:
        from: {description: Minor version before the step., type: str, sample: "1.27"}
        to: {description: Minor version after the step., type: str, sample: "1.28"}
        upgrade_first:
          description: Instances to upgrade before this step (component, node, version, upgrade_to, reason).
          type: list
          elements: dict
        order: {description: "What to do for the step, in order.", type: list, elements: str}
    blocking: {description: Current violations; fix them before the first step., type: list, elements: dict}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cplane.kubeadm.plugins.module_utils import _deps, _k8s_client
from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import CplaneError, fail_from
from ansible_collections.cplane.kubeadm.plugins.module_utils._versions.check import check_versions


def main():
    module = AnsibleModule(
        argument_spec=_k8s_client.k8s_argument_spec(
            gather_local=dict(type="bool", default=False),
            target_version=dict(type="str"),
            fail_on=dict(type="str", default="none", choices=["none", "violation", "mixed"]),
            page_size=dict(type="int", default=500),
            timeout=dict(type="float", default=60),
        ),
        supports_check_mode=True,
    )
    _deps.assert_required(module, *_deps.K8S)
    try:
        result, message = check_versions(
            module.params, module.get_bin_path, lambda argv: module.run_command(argv, environ_update={"LANG": "C"}))
    except CplaneError as err:
        fail_from(module, err, changed=False)
    if message:
        module.fail_json(msg=message, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
