#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: kubeadm_bootstrap
short_description: Render and validate a kubeadm configuration, then kubeadm init, join or upload-certs with it
version_added: 0.1.0
description:
  - Renders kubeadm's configuration (InitConfiguration and ClusterConfiguration, or JoinConfiguration) in the
    config API version the node's kubeadm prints as its default (C(kubeadm config print init-defaults);
    C(kubeadm.k8s.io/v1beta4) from Kubernetes 1.31), with the control-plane endpoint, certSANs, local etcd
    and the pod and service subnets.
  - Validates it with C(kubeadm config validate --config) before anything else.
  - V(init) runs C(kubeadm init --upload-certs), V(join) runs C(kubeadm join), V(upload_certs) runs
    C(kubeadm init phase upload-certs --upload-certs) on a control plane of an existing cluster, V(validate)
    only renders and validates.
  - Idempotent. A node that is already what the action makes it (a joined control plane for V(init), a joined
    node of the requested kind for V(join)) is left alone, unchanged. A half-joined node is refused
    with what to do (C(kubeadm reset -f), then again), see M(cplane.kubeadm.kubeadm_node_state).
  - Secrets (the certificate key, the bootstrap token) travel inside the configuration file, never on the command
    line; the file is written 0600 into a private directory and removed when kubeadm returns. They are redacted
    from everything the module returns.
  - kubeadm writes the probes M(cplane.kubeadm.static_pod_probe) recommends, so no probe patches are rendered.
extends_documentation_fragment:
  - cplane.kubeadm.attributes
attributes:
  check_mode:
    support: full
    details:
      - Renders and validates the configuration (kubeadm config validate runs), reports the change, runs nothing else.
  diff_mode:
    support: none
options:
  action:
    description: What to do.
    type: str
    required: true
    choices: [init, join, upload_certs, validate]
  validate_as:
    description: With O(action=validate), which configuration to render (V(join) with placeholder secrets when none are given).
    type: str
    choices: [init, join]
    default: init
  kubeadm_path:
    description: The kubeadm binary on the node.
    type: path
    default: kubeadm
  api_version:
    description: kubeadm config API version, for example C(kubeadm.k8s.io/v1beta4). Default, what the kubeadm prints.
    type: str
  kubernetes_version:
    description: Kubernetes version of the cluster (C(kubernetesVersion)), pinned so kubeadm looks nothing up online.
    type: str
  control_plane_endpoint:
    description: C(controlPlaneEndpoint), the load-balanced address of the API servers (C(host:port)); joins discover through it.
    type: str
  advertise_address:
    description: The address this node's API server and etcd advertise (control planes).
    type: str
  bind_port:
    description: The API server's port on this node.
    type: int
    default: 6443
  node_name:
    description: The node's name in the cluster (C(nodeRegistration.name)).
    type: str
    required: true
  cert_sans:
    description: Extra subject alternative names of the API server's certificate.
    type: list
    elements: str
    default: []
  pod_subnet:
    description: C(networking.podSubnet).
    type: str
  service_subnet:
    description: C(networking.serviceSubnet).
    type: str
  cluster_name:
    description: C(clusterName).
    type: str
  image_repository:
    description: C(imageRepository).
    type: str
  cri_socket:
    description: C(nodeRegistration.criSocket).
    type: str
  ignore_preflight_errors:
    description: C(nodeRegistration.ignorePreflightErrors).
    type: list
    elements: str
    default: []
  skip_phases:
    description: C(skipPhases) of the init or join configuration.
    type: list
    elements: str
    default: []
  kubelet_extra_args:
    description: C(nodeRegistration.kubeletExtraArgs).
    type: dict
    default: {}
  cluster_configuration:
    description: Merged into the ClusterConfiguration as rendered (dicts merge, everything else replaces).
    type: dict
    default: {}
  init_configuration:
    description: Merged into the InitConfiguration.
    type: dict
    default: {}
  join_configuration:
    description: Merged into the JoinConfiguration.
    type: dict
    default: {}
  control_plane:
    description: With O(action=join), join as a control plane (needs O(certificate_key)).
    type: bool
    default: false
  certificate_key:
    description: The key the control-plane certificates are uploaded with (C(kubeadm certs certificate-key)).
    type: str
  join_command:
    description: Output of C(kubeadm token create --print-join-command) on a control plane (token and CA hash).
    type: str
  kubernetes_dir:
    description: kubeadm's directory, read to tell the node's state.
    type: path
    default: /etc/kubernetes
  kubelet_dir:
    description: The kubelet's directory, read to tell the node's state.
    type: path
    default: /var/lib/kubelet
  etcd_data_dir:
    description: The local etcd's data directory (C(etcd.local.dataDir)), also read to tell the node's state.
    type: path
    default: /var/lib/etcd
  temp_dir:
    description: Where the private directory of the configuration file is created (default the system's).
    type: path
  timeout:
    description: Seconds each kubeadm run may take.
    type: int
    default: 600
author:
  - cplane.kubeadm contributors (@cplane)
"""

EXAMPLES = r"""
- name: Validate the init configuration
  cplane.kubeadm.kubeadm_bootstrap:
    action: validate
    node_name: cp1
    kubernetes_version: 1.37.2
    control_plane_endpoint: k8s.example.com:6443
    advertise_address: 10.0.0.11

- name: Join as a control plane
  cplane.kubeadm.kubeadm_bootstrap:
    action: join
    control_plane: true
    node_name: cp2
    kubernetes_version: 1.37.2
    control_plane_endpoint: k8s.example.com:6443
    advertise_address: 10.0.0.12
    join_command: "{{ join.stdout }}"
    certificate_key: "{{ certificate_key }}"
  no_log: true
"""

RETURN = r"""
action:
  description: The action requested.
  returned: always
  type: str
  sample: join
state_before:
  description: The node's state before (see M(cplane.kubeadm.kubeadm_node_state)).
  returned: always
  type: str
  sample: not_member
state_after:
  description: The node's state afterwards.
  returned: always
  type: str
  sample: control_plane
api_version:
  description: The kubeadm config API version rendered.
  returned: when a configuration was rendered
  type: str
  sample: kubeadm.k8s.io/v1beta4
config:
  description: The documents rendered, secrets redacted.
  returned: when a configuration was rendered
  type: list
  elements: dict
validated:
  description: kubeadm config validate accepted the configuration.
  returned: when a configuration was rendered
  type: bool
kubeadm_seconds:
  description: Wall time of the kubeadm processes this task ran (validate included).
  returned: always
  type: float
  sample: 41.2
kubeadm_runs:
  description: Each kubeadm run, its command (secrets redacted), exit code, seconds and output tails.
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cplane.kubeadm.plugins.module_utils._build import bootstrap
from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import CplaneError, fail_from


def main():
    module = AnsibleModule(
        argument_spec=dict(
            action=dict(type="str", required=True, choices=list(bootstrap.ACTIONS)),
            validate_as=dict(type="str", default="init", choices=["init", "join"]),
            kubeadm_path=dict(type="path", default="kubeadm"),
            api_version=dict(type="str"),
            kubernetes_version=dict(type="str"),
            control_plane_endpoint=dict(type="str"),
            advertise_address=dict(type="str"),
            bind_port=dict(type="int", default=6443),
            node_name=dict(type="str", required=True),
            cert_sans=dict(type="list", elements="str", default=[]),
            pod_subnet=dict(type="str"),
            service_subnet=dict(type="str"),
            cluster_name=dict(type="str"),
            image_repository=dict(type="str"),
            cri_socket=dict(type="str"),
            ignore_preflight_errors=dict(type="list", elements="str", default=[]),
            skip_phases=dict(type="list", elements="str", default=[]),
            kubelet_extra_args=dict(type="dict", default={}),
            cluster_configuration=dict(type="dict", default={}),
            init_configuration=dict(type="dict", default={}),
            join_configuration=dict(type="dict", default={}),
            control_plane=dict(type="bool", default=False),
            certificate_key=dict(type="str", no_log=True),
            join_command=dict(type="str", no_log=True),
            kubernetes_dir=dict(type="path", default="/etc/kubernetes"),
            kubelet_dir=dict(type="path", default="/var/lib/kubelet"),
            etcd_data_dir=dict(type="path", default="/var/lib/etcd"),
            temp_dir=dict(type="path"),
            timeout=dict(type="int", default=600),
        ),
        supports_check_mode=True,
    )
    try:
        result = bootstrap.bootstrap(module.params, module.check_mode)
    except CplaneError as err:
        fail_from(module, err)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
