#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: kubeadm_upgrade_state
short_description: Report which steps of a kubeadm upgrade one node still needs, and wait for it to come back
version_added: 0.1.0
description:
  - Reads back the trace each step of kubeadm's upgrade procedure leaves on a node and compares it with
    O(target_version). This is what makes the C(cluster_upgrade) role re-runnable.
  - C(kubeadm) (control-plane nodes) is at target when the installed kubeadm prints it (C(kubeadm version -o short)).
  - C(control_plane) (control-plane nodes) is at target when the static pod manifests of kube-apiserver,
    kube-controller-manager and kube-scheduler carry the target's image tag (C(kubeadm upgrade apply) and
    C(kubeadm upgrade node) rewrite them). etcd's tag is reported but not required.
  - C(kubelet) is at target when the Node object reports it (C(status.nodeInfo.kubeletVersion)) and is Ready,
    and the installed C(kubelet --version) prints it.
  - C(kubectl) is at target when the installed client prints it (not required where kubectl is not installed).
  - C(uncordon) is done when the Node is schedulable.
  - With O(local=true) the module reads this host (manifests, binaries); with O(api=true) it reads the Node
    O(node_name) through the Kubernetes API. A worker has no admin kubeconfig, so the role reads the worker
    locally and then delegates the API read to a control-plane host, passing the local result as O(local_state).
  - With O(wait_ready=true) the module polls the Node until it is Ready with kubelet O(target_version), and fails
    after O(wait_timeout) seconds naming what the node reports and what to do.
extends_documentation_fragment:
  - cplane.kubeadm.k8s_auth
  - cplane.kubeadm.attributes
attributes:
  check_mode:
    support: full
    details:
      - The module only reads. In check mode it does not wait (O(wait_ready) is ignored), since nothing was changed
        that could bring the node back.
  diff_mode:
    support: N/A
    details:
      - The module does not change anything.
options:
  target_version:
    description: The Kubernetes version of the upgrade, with its patch (C(1.37.2) or C(v1.37.2)).
    type: str
    required: true
  node_name:
    description: Name of the Node object of this node. Required with O(api=true).
    type: str
  local:
    description:
      - Read this host's static pod manifests and the versions of its kubeadm, kubelet and kubectl.
      - The binaries are looked up on E(PATH), then in C(/usr/local/bin) and C(/usr/bin).
    type: bool
    default: true
  control_plane:
    description:
      - Whether the node is a control-plane node (then kubeadm and the manifests are checked).
      - Default, with O(local=true), is whether O(manifests_dir) holds C(kube-apiserver.yaml).
    type: bool
  local_state:
    description: The RV(local) result of an earlier run on the node's own host, when this run (O(local=false)) reads the API.
    type: dict
  api:
    description: Read the Node O(node_name) and its static pods through the Kubernetes API.
    type: bool
    default: true
  manifests_dir:
    description: kubeadm's static pod manifests directory.
    type: path
    default: /etc/kubernetes/manifests
  disk_paths:
    description:
      - Paths whose free space to report in RV(free_bytes) (for a path that does not exist, its nearest existing parent's).
      - kubeadm upgrade copies the etcd data directory and the manifests into C(/etc/kubernetes/tmp) before it changes them.
    type: list
    elements: path
    default: []
  wait_ready:
    description: Wait until the Node is Ready and reports kubelet O(target_version). Needs O(api=true).
    type: bool
    default: false
  wait_timeout:
    description: Seconds to wait with O(wait_ready).
    type: int
    default: 300
  timeout:
    description: Deadline in seconds for each read through the API.
    type: float
    default: 30
author:
  - cplane.kubeadm contributors (@cplane)
seealso:
  - name: Upgrading kubeadm clusters
    description: The procedure whose steps the module checks.
    link: https://kubernetes.io/docs/tasks/administer-cluster/kubeadm/kubeadm-upgrade/
"""

EXAMPLES = r"""
- name: What does this control-plane node still need for 1.37.2?
  cplane.kubeadm.kubeadm_upgrade_state:
    target_version: 1.37.2
    node_name: cp1
    kubeconfig: /etc/kubernetes/admin.conf
  become: true
  register: state

- name: Read a worker's binaries on the worker
  cplane.kubeadm.kubeadm_upgrade_state:
    target_version: 1.37.2
    api: false
    control_plane: false
  register: worker_local

- name: Wait for the worker to come back, through a control-plane host
  cplane.kubeadm.kubeadm_upgrade_state:
    target_version: 1.37.2
    node_name: worker1
    local: false
    local_state: "{{ worker_local.local }}"
    kubeconfig: /etc/kubernetes/admin.conf
    wait_ready: true
    wait_timeout: 300
  delegate_to: cp1
  become: true
"""

RETURN = r"""
target_version:
  description: The target, normalised.
  returned: always
  type: str
  sample: v1.37.2
local:
  description: What this host has installed (with O(local=true)), or O(local_state).
  returned: when O(local=true) or O(local_state) is given
  type: dict
  contains:
    control_plane: {description: Whether the node is a control-plane node., type: bool}
    manifests: {description: Image tag per static pod manifest (component -> tag)., type: dict, sample: {kube-apiserver: v1.36.3}}
    kubeadm: {description: Installed kubeadm version (null when not installed)., type: str}
    kubelet: {description: Installed kubelet version (null when not installed)., type: str}
    kubectl: {description: Installed kubectl version (null when not installed)., type: str}
node:
  description: The Node as the API reports it.
  returned: when O(api=true)
  type: dict
  contains:
    name: {description: Node name., type: str}
    found: {description: The Node object exists., type: bool}
    kubelet: {description: status.nodeInfo.kubeletVersion., type: str}
    ready: {description: The Ready condition is True., type: bool}
    unschedulable: {description: spec.unschedulable (cordoned)., type: bool}
    control_plane: {description: Image version of each static control-plane pod on the node (mirror pods)., type: dict}
at_target:
  description: Per step (kubeadm, control_plane, kubelet, kubectl, uncordon) true when done, false when not, null when it does not apply or was not read.
  returned: always
  type: dict
  sample: {kubeadm: true, control_plane: true, kubelet: false, kubectl: false, uncordon: true}
pending:
  description: The steps still to do, in the procedure's order.
  returned: always
  type: list
  elements: str
  sample: [kubelet, kubectl]
done:
  description: Nothing is pending.
  returned: always
  type: bool
free_bytes:
  description: Free bytes per path of O(disk_paths).
  returned: when O(local=true)
  type: dict
  sample: {/var/lib/etcd: 52428800000}
waited:
  description: Seconds spent waiting for the node (O(wait_ready)).
  returned: when O(wait_ready=true) and not in check mode
  type: float
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cplane.kubeadm.plugins.module_utils import _deps, _k8s_client
from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import CplaneError, InputError, fail_from
from ansible_collections.cplane.kubeadm.plugins.module_utils._kubeadm import APISERVER, manifest_file
from ansible_collections.cplane.kubeadm.plugins.module_utils._versions import local as local_versions
from ansible_collections.cplane.kubeadm.plugins.module_utils._versions import upgrade

# Binaries are looked up on PATH first, then here (kubeadm's packages install to /usr/bin, the
# role's binaries method to /usr/local/bin), so a become without a full PATH still finds them.
BIN_DIRS = ["/usr/local/bin", "/usr/bin"]


def main():
    module = AnsibleModule(
        argument_spec=_k8s_client.k8s_argument_spec(
            target_version=dict(type="str", required=True),
            node_name=dict(type="str"),
            local=dict(type="bool", default=True),
            control_plane=dict(type="bool"),
            local_state=dict(type="dict"),
            api=dict(type="bool", default=True),
            manifests_dir=dict(type="path", default="/etc/kubernetes/manifests"),
            disk_paths=dict(type="list", elements="path", default=[]),
            wait_ready=dict(type="bool", default=False),
            wait_timeout=dict(type="int", default=300),
            timeout=dict(type="float", default=30),
        ),
        required_if=[("api", True, ("node_name",)), ("wait_ready", True, ("node_name",))],
        supports_check_mode=True,
    )
    params = module.params
    if params["api"] or params["wait_ready"]:
        _deps.assert_required(module, *_deps.K8S)
    else:
        _deps.assert_required(module, "PyYAML")
    try:
        target = upgrade.target_of(params["target_version"])
        result = dict(changed=False, target_version=target.text)
        local = params["local_state"]
        if params["local"]:
            control_plane = params["control_plane"]
            if control_plane is None:
                control_plane = os.path.exists(manifest_file(APISERVER, params["manifests_dir"]))
            tags = upgrade.read_manifest_tags(params["manifests_dir"]) if control_plane else {}
            gathered = local_versions.gather_local(
                lambda name: module.get_bin_path(name) or module.get_bin_path(name, opt_dirs=BIN_DIRS),
                lambda argv: module.run_command(argv, environ_update={"LANG": "C"}))
            local = upgrade.local_state(tags, local_versions.local_versions(gathered), control_plane)
            result["free_bytes"] = upgrade.free_bytes(params["disk_paths"])
        if local is not None:
            result["local"] = local
        node = None
        if params["wait_ready"] and not params["api"]:
            raise InputError("wait_ready needs api=true: the node's readiness is read through the API.")
        if params["api"]:
            if params["timeout"] <= 0 or params["wait_timeout"] < 0:
                raise InputError("timeout and wait_timeout must be positive numbers of seconds.")
            with _k8s_client.connect(timeout=None, **_k8s_client.auth_params(params)) as client:
                def read():
                    client.deadline = _k8s_client.Deadline(params["timeout"])
                    return upgrade.read_node(client, params["node_name"])
                if params["wait_ready"] and not module.check_mode:
                    node, result["waited"] = upgrade.wait_ready(read, target, params["wait_timeout"])
                else:
                    node = read()
            result["node"] = node
        result["at_target"], result["pending"] = upgrade.evaluate(target, local, node)
        result["done"] = not result["pending"]
    except CplaneError as err:
        fail_from(module, err, changed=False)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
