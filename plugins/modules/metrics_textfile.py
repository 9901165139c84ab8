#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: metrics_textfile
short_description: Write the control plane's health as Prometheus metrics for node_exporter's textfile collector
version_added: 0.1.0
description:
  - Reads what the collection's read-only modules read and writes it as Prometheus metrics to O(path), a C(*.prom)
    file in node_exporter's C(--collector.textfile.directory).
  - C(certificates) - notAfter and seconds until expiry of every kubeadm certificate, kubeconfig client
    certificate, CA and kubelet's client certificate (M(cplane.kubeadm.kubeadm_cert_info)).
  - C(etcd) - per member health, leader, learner, database size, in-use size, fragmentation, quota, raft term,
    NOSPACE/CORRUPT alarms and etcd's own leader-change counter; quorum (M(cplane.kubeadm.etcd_member_info)).
  - C(static_pods) - probe audit findings by severity of the local static pod manifests and stray files in the
    manifests directory (M(cplane.kubeadm.static_pod_probe) C(state=audited)).
  - C(kubernetes) - restart counts of the static control-plane pods, version-skew violations, mixed versions and
    the number of control-plane nodes, through the API (M(cplane.kubeadm.node_version_check)).
  - C(runs) - outcome and last successful defragmentation, snapshot and renewal of the unattended timers, from
    their run-state files in O(state_dir).
  - A collector that fails (etcd unreachable, API down, no kubeconfig) does not fail the module and does not
    remove the file; it sets C(cplane_kubeadm_collector_success{collector="..."}) to 0 and its error is in
    RV(collectors). Set O(fail_on_collector_error) to fail instead, after writing.
  - The file is replaced atomically (a temp file in the same directory, renamed), so node_exporter never reads
    half of it. It changes on every run (the values are measurements), so the module usually reports changed.
  - The metric names, the alert rules that use them (C(docs/monitoring/rules.yml)) and how to wire node_exporter
    are in the collection's C(docs/monitoring.md).
extends_documentation_fragment:
  - cplane.kubeadm.kubeadm_pki
  - cplane.kubeadm.k8s_auth
  - cplane.kubeadm.attributes
options:
  path:
    description:
      - The textfile to write; must end in C(.prom), and its directory must exist.
      - Debian's prometheus-node-exporter reads C(/var/lib/prometheus/node-exporter).
    type: path
    default: /var/lib/prometheus/node-exporter/cplane_kubeadm.prom
  collectors:
    description: Which sources to read.
    type: list
    elements: str
    choices: [certificates, etcd, static_pods, kubernetes, runs]
    default: [certificates, etcd, static_pods, kubernetes, runs]
  fail_on_collector_error:
    description: Fail (after writing the file) when a collector failed.
    type: bool
    default: false
  kubelet_pki_dir:
    description: Directory of C(kubelet-client-current.pem).
    type: path
    default: /var/lib/kubelet/pki
  etcd_endpoints:
    description: Client URLs of etcd members to ask; the other members are found from the member list.
    type: list
    elements: str
    default: [https://127.0.0.1:2379]
  etcd_ca_cert:
    description: etcd CA bundle.
    type: path
    default: /etc/kubernetes/pki/etcd/ca.crt
  etcd_client_cert:
    description: Client certificate signed by the etcd CA.
    type: path
    default: /etc/kubernetes/pki/etcd/healthcheck-client.crt
  etcd_client_key:
    description: Key of O(etcd_client_cert).
    type: path
    default: /etc/kubernetes/pki/etcd/healthcheck-client.key
  etcd_command_timeout:
    description: Seconds to wait for one etcd request.
    type: int
    default: 10
  etcd_quota_bytes:
    description: The members' C(--quota-backend-bytes), for etcd before 3.6 (which does not report it); unset assumes 2 GiB.
    type: int
  manifests_dir:
    description: The directory kubelet watches for static pod manifests.
    type: path
    default: /etc/kubernetes/manifests
  components:
    description: Static pods whose C(<name>.yaml) manifest is audited; a missing manifest is reported as absent.
    type: list
    elements: str
    default: [etcd, kube-apiserver, kube-controller-manager, kube-scheduler]
  probes:
    description: Which probes of those static pods to audit.
    type: list
    elements: str
    choices: [liveness, readiness, startup]
    default: [liveness]
  api_timeout:
    description: Overall deadline in seconds for reading the cluster through the API.
    type: float
    default: 30
  state_dir:
    description: Directory of the run-state files (C(<job>.json)) the unattended timers write.
    type: path
    default: /var/lib/cplane-kubeadm/runs
requirements:
  - etcd3 (python-etcd3) >= 0.12.0, grpcio >= 1.50 and protobuf >= 4.21.1 for the C(etcd) collector
attributes:
  check_mode:
    support: full
    details:
      - Collects and reports whether the file would change, without writing it.
  diff_mode:
    support: full
author:
  - cplane.kubeadm contributors (@cplane)
seealso:
  - module: cplane.kubeadm.kubeadm_cert_info
  - module: cplane.kubeadm.etcd_member_info
  - module: cplane.kubeadm.static_pod_probe
  - module: cplane.kubeadm.node_version_check
  - name: node_exporter textfile collector
    description: How node_exporter reads C(*.prom) files.
    link: https://github.com/prometheus/node_exporter#textfile-collector
"""

EXAMPLES = r"""
- name: Write the control plane's metrics for node_exporter
  cplane.kubeadm.metrics_textfile:
    kubeconfig: /etc/kubernetes/admin.conf
  become: true

- name: Only what this node can read without the API
  cplane.kubeadm.metrics_textfile:
    path: /var/lib/node_exporter/textfile/cplane_kubeadm.prom
    collectors: [certificates, static_pods, runs]
"""

RETURN = r"""
path:
  description: The textfile written.
  returned: always
  type: str
  sample: /var/lib/prometheus/node-exporter/cplane_kubeadm.prom
samples:
  description: Number of samples in the file.
  returned: always
  type: int
  sample: 96
collectors:
  description: Per collector whether it succeeded, its error and how long it took.
  returned: always
  type: dict
  sample: {etcd: {success: false, error: "no etcd endpoint answered the member list request: ...", seconds: 10.01}}
failed_collectors:
  description: Names of the collectors that failed.
  returned: always
  type: list
  elements: str
  sample: [kubernetes]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cplane.kubeadm.plugins.module_utils import _k8s_client
from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import CplaneError, fail_from
from ansible_collections.cplane.kubeadm.plugins.module_utils._metrics import collect, textfile
from ansible_collections.cplane.kubeadm.plugins.module_utils._pki.args import pki_argument_spec
from ansible_collections.cplane.kubeadm.plugins.module_utils._runstate import DEFAULT_STATE_DIR


def main():
    spec = _k8s_client.k8s_argument_spec(**pki_argument_spec(
        path=dict(type="path", default=textfile.DEFAULT_TEXTFILE),
        collectors=dict(type="list", elements="str", choices=list(collect.COLLECTORS), default=list(collect.COLLECTORS)),
        fail_on_collector_error=dict(type="bool", default=False),
        kubelet_pki_dir=dict(type="path", default="/var/lib/kubelet/pki"),
        etcd_endpoints=dict(type="list", elements="str", default=["https://127.0.0.1:2379"]),
        etcd_ca_cert=dict(type="path", default="/etc/kubernetes/pki/etcd/ca.crt"),
        etcd_client_cert=dict(type="path", default="/etc/kubernetes/pki/etcd/healthcheck-client.crt"),
        etcd_client_key=dict(type="path", default="/etc/kubernetes/pki/etcd/healthcheck-client.key", no_log=False),
        etcd_command_timeout=dict(type="int", default=10),
        etcd_quota_bytes=dict(type="int"),
        manifests_dir=dict(type="path", default="/etc/kubernetes/manifests"),
        components=dict(type="list", elements="str",
                        default=["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"]),
        probes=dict(type="list", elements="str", choices=["liveness", "readiness", "startup"], default=["liveness"]),
        api_timeout=dict(type="float", default=30),
        state_dir=dict(type="path", default=DEFAULT_STATE_DIR),
    ))
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    settings = dict((key, p[key]) for key in (
        "pki_dir", "kubeconfig_dir", "kubelet_pki_dir", "etcd_endpoints", "etcd_ca_cert", "etcd_client_cert",
        "etcd_client_key", "etcd_command_timeout", "etcd_quota_bytes", "manifests_dir", "components", "probes",
        "api_timeout", "state_dir"))
    settings["auth"] = _k8s_client.auth_params(p)
    try:
        result = textfile.write_metrics(p["path"], settings, p["collectors"], check_mode=module.check_mode)
    except CplaneError as err:
        fail_from(module, err, changed=False)
    diff = result.pop("diff")
    if module._diff and result["changed"]:
        result["diff"] = diff
    if result["failed_collectors"]:
        message = "collector(s) failed: %s" % "; ".join(
            "%s: %s" % (name, result["collectors"][name]["error"]) for name in result["failed_collectors"])
        if p["fail_on_collector_error"]:
            module.fail_json(msg=message, **result)
        module.warn(message)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
