#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: static_pod_probe
short_description: Audit, set or remove the liveness, readiness or startup probe of a control-plane static pod
version_added: 0.1.0
description:
  - Reads one static pod manifest (kubeadm's C(etcd.yaml), C(kube-apiserver.yaml), ...) and one probe of one container.
  - O(state=audited) changes nothing and reports the probe, its kill window (how long a hung process survives it)
    and findings with a severity and a plain explanation, for example an exec probe that runs a linearizable
    C(etcdctl get) (it fails whenever quorum is lost, so kubelet kills healthy etcd members), an etcd health probe
    that does not exclude C(NOSPACE), a missing startup probe, a timeout not below the period, identical liveness
    and readiness probes, a probe aimed at a non-loopback address, and stray files in the manifests directory
    (kubelet runs every file there whose name does not start with a dot).
  - O(state=present) writes the probe given in O(spec), or with O(recommended=true) the probe kubeadm itself ships
    for the component and the version in the image tag. O(state=absent) removes the probe.
  - Writes are atomic, keep every other field and the key order of the manifest, are validated as a Pod before
    they happen, and back the old manifest up into O(backup_dir), which must be outside the manifests directory.
    A manifest that would not change is not rewritten.
  - kubelet restarts the static pod as soon as its manifest changes; change one control-plane node at a time.
  - O(measure) runs an C(httpGet) or C(tcpSocket) probe that many times the way kubelet does and reports the
    latencies against the probe's timeout. C(exec) probes are measured through C(crictl exec) when C(crictl) is
    installed, and skipped with a reason otherwise.
extends_documentation_fragment:
  - cplane.kubeadm.attributes
attributes:
  check_mode:
    support: full
    details:
      - Reports the change and the diff without writing or backing up anything.
  diff_mode:
    support: full
    details:
      - Shows the manifest before and after.
options:
  manifest:
    description: Path of the manifest. Mutually exclusive with O(name).
    type: path
  name:
    description:
      - Name of the manifest in O(manifest_dir) (V(etcd) selects C(etcd.yaml)). Mutually exclusive with O(manifest).
    type: str
  manifest_dir:
    description:
      - The directory kubelet watches (its C(staticPodPath)). Used with O(name), for the stray-file audit,
        and to refuse a O(backup_dir) inside it. Defaults to the directory of O(manifest).
    type: path
  container:
    description: Name of the container. May be left out when the pod has only one.
    type: str
  probe:
    description: Which probe to act on.
    type: str
    choices: [liveness, readiness, startup]
    default: liveness
  state:
    description:
      - V(audited) reads and reports; V(present) makes the probe equal O(spec) or the recommended one;
        V(absent) removes it.
    type: str
    choices: [audited, present, absent]
    default: audited
  spec:
    description:
      - The probe, as in a Pod spec (C(httpGet), C(tcpSocket), C(exec) or C(grpc) and the timing fields).
        Used with O(state=present). Mutually exclusive with O(recommended).
    type: dict
  recommended:
    description:
      - With O(state=present), write the probe kubeadm ships for the component and version (from the image tag).
        For etcd 3.5.11 and later C(/livez) (liveness) and C(/readyz) (readiness, startup) on the metrics URL;
        for etcd 3.4 to 3.5.10 C(/health?exclude=NOSPACE&serializable=true) (liveness) and
        C(/health?serializable=false) (startup). For kube-apiserver C(/livez) and C(/readyz) on the advertise
        address and secure port; for kube-controller-manager and kube-scheduler C(/healthz) on 10257 and 10259.
    type: bool
    default: false
  backup_dir:
    description:
      - Where the previous manifest is copied before a change (under a timestamped subdirectory).
      - Refused when inside the manifests directory, where kubelet would run the backup as a second pod.
    type: path
    default: /var/backups/cplane-kubeadm
  measure:
    description: Run the probe this many times and report latencies and failures. V(0) does not run it.
    type: int
    default: 0
  measure_interval:
    description: Seconds to wait between two measured runs.
    type: float
    default: 0
notes:
  - Run with C(become) on the control-plane node; manifests are owned by root.
seealso:
  - name: kubeadm's etcd probe endpoints
    description: Why kubeadm probes /livez and /readyz (kubeadm issue 3039).
    link: https://github.com/kubernetes/kubeadm/issues/3039
author:
  - cplane.kubeadm contributors (@cplane-kubeadm)
"""

EXAMPLES = r"""
- name: Audit etcd's liveness probe
  cplane.kubeadm.static_pod_probe:
    name: etcd
  register: etcd_probe

- name: Restore the probes kubeadm ships for the etcd version in the image
  cplane.kubeadm.static_pod_probe:
    name: etcd
    probe: "{{ item }}"
    state: present
    recommended: true
  loop: [liveness, startup]

- name: Emergency - stop kubelet from killing a healthy member
  cplane.kubeadm.static_pod_probe:
    manifest: /etc/kubernetes/manifests/etcd.yaml
    state: absent

- name: Measure kube-apiserver's liveness probe 20 times
  cplane.kubeadm.static_pod_probe:
    name: kube-apiserver
    measure: 20
"""

RETURN = r"""
manifest:
  description: Path of the manifest.
  returned: always
  type: str
container:
  description: Name of the container.
  returned: always
  type: str
probe:
  description: Which probe (liveness, readiness or startup).
  returned: always
  type: str
component:
  description: The kubeadm component detected from the image (etcd, kube-apiserver, ...), or null.
  returned: always
  type: str
version:
  description: The version in the image tag, or null.
  returned: always
  type: str
  sample: 3.5.12
probe_spec:
  description: The probe as found (O(state=audited)) or as it is after this run; null when there is none.
  returned: always
  type: dict
before:
  description: The probe as it was found.
  returned: always
  type: dict
kill_window:
  description:
    - How long a process that stops answering survives the probe, in seconds. C(fast_failure_seconds) when each
      check fails at once (initialDelaySeconds + (failureThreshold - 1) x periodSeconds).
    - C(hung_seconds) when each check runs into its timeout. kubelet's probe worker waits on a Go ticker that keeps
      the tick a running check misses, so the next check starts as soon as a timed-out one returns. Checks repeat
      every C(hung_probe_interval_seconds) = max(periodSeconds, timeoutSeconds), and C(hung_seconds) =
      initialDelaySeconds + failureThreshold x that. C(hung_seconds_latest) adds one period for kubelet's first
      tick after the initial delay.
    - For exec probes, C(exec_timeout_note) says that kubelet enforces timeoutSeconds on them only from
      Kubernetes 1.20 (ExecProbeTimeout). Null when there is no probe.
  returned: always
  type: dict
  sample: {fast_failure_seconds: 85, hung_seconds: 135, hung_seconds_latest: 145, hung_probe_interval_seconds: 15,
           initial_delay_seconds: 15, period_seconds: 10, timeout_seconds: 15, failure_threshold: 8, kind: liveness}
findings:
  description: Problems found, each with C(rule), C(severity) (critical, warning, info) and C(message).
  returned: always
  type: list
  elements: dict
backup_file:
  description: Where the previous manifest was copied.
  returned: when the manifest was changed (not in check mode)
  type: str
measurements:
  description:
    - With O(measure), C(runs), C(failures), C(timeouts), C(latencies), C(latency_max), C(latency_median),
      C(headroom) (timeout minus the slowest run), C(target) and per-run C(results); or C(skipped) and C(reason).
  returned: when O(measure) > 0
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cplane.kubeadm.plugins.module_utils import _deps
from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import CplaneError, fail_from
from ansible_collections.cplane.kubeadm.plugins.module_utils._files import MANIFESTS_DIR
from ansible_collections.cplane.kubeadm.plugins.module_utils._manifests import probe_state


def main():
    module = AnsibleModule(
        argument_spec=dict(
            manifest=dict(type="path"),
            name=dict(type="str"),
            manifest_dir=dict(type="path"),
            container=dict(type="str"),
            probe=dict(type="str", choices=["liveness", "readiness", "startup"], default="liveness"),
            state=dict(type="str", choices=["audited", "present", "absent"], default="audited"),
            spec=dict(type="dict"),
            recommended=dict(type="bool", default=False),
            backup_dir=dict(type="path", default=probe_state.DEFAULT_BACKUP_DIR),
            measure=dict(type="int", default=0),
            measure_interval=dict(type="float", default=0.0),
        ),
        mutually_exclusive=[("manifest", "name"), ("spec", "recommended")],
        required_one_of=[("manifest", "name")],
        supports_check_mode=True,
    )
    _deps.assert_required(module, *_deps.MANIFESTS)
    p = module.params
    try:
        path = probe_state.manifest_path(p["manifest"], p["name"], p["manifest_dir"] or MANIFESTS_DIR)
        result = probe_state.manage_probe(
            path, p["probe"], state=p["state"], container_name=p["container"], spec=p["spec"],
            recommended=p["recommended"], manifest_dir=p["manifest_dir"], backup_dir=p["backup_dir"],
            check_mode=module.check_mode, measure=p["measure"], measure_interval=p["measure_interval"],
            crictl=module.get_bin_path("crictl") if p["measure"] else None,
            run_command=module.run_command)
    except CplaneError as err:
        fail_from(module, err)
    diff = result.pop("diff", None)
    if module._diff and diff:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
