# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The static_pod_probe backend: audit, set or remove one probe of one static pod, and measure it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import time

from ansible_collections.cplane.kubeadm.plugins.module_utils import _kubeadm
from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import InputError
from ansible_collections.cplane.kubeadm.plugins.module_utils._files import MANIFESTS_DIR, os_error
from ansible_collections.cplane.kubeadm.plugins.module_utils._manifests import probes, prober, static_pod

DEFAULT_BACKUP_DIR = "/var/backups/cplane-kubeadm"


def manifest_path(manifest=None, name=None, manifest_dir=MANIFESTS_DIR):
    if manifest:
        return manifest
    if not name:
        raise InputError("give either manifest (a path) or name (a component, e.g. etcd) to select a manifest.")
    if name.endswith((".yaml", ".yml", ".json")):
        return os.path.join(manifest_dir, name)
    return _kubeadm.manifest_file(name, manifest_dir)


def manage_probe(path, probe_kind, state="audited", container_name=None, spec=None, recommended=False,
                 manifest_dir=None, backup_dir=DEFAULT_BACKUP_DIR, check_mode=False, measure=0,
                 measure_interval=0.0, crictl=None, run_command=None):
    """Do what ``state`` asks for ``probe_kind`` of the container; return the module result.

    Nothing is written in check mode, when nothing changes, or when any input is bad.  An
    operating-system error anywhere (read-only filesystem, full disk, permission denied) is told
    as what failed on which path, never as a traceback.
    """
    try:
        return _manage_probe(path, probe_kind, state, container_name, spec, recommended, manifest_dir, backup_dir,
                             check_mode, measure, measure_interval, crictl, run_command)
    except OSError as exc:
        raise os_error("access", exc, path)


def _manage_probe(path, probe_kind, state, container_name, spec, recommended, manifest_dir, backup_dir,
                  check_mode, measure, measure_interval, crictl, run_command):
    if probe_kind not in probes.KINDS:
        raise InputError("probe must be one of %s, not %r." % (", ".join(probes.KINDS), probe_kind))
    manifest_dir = manifest_dir or os.path.dirname(os.path.abspath(path))
    if state != "audited":
        # Refuse a bad backup_dir before anything else, even when nothing would change.
        static_pod.check_backup_dir(backup_dir, [manifest_dir, MANIFESTS_DIR])
    data, doc = static_pod.read_manifest(path)
    container = static_pod.find_container(doc, container_name, path)
    component = _kubeadm.component_of(container)
    version = _kubeadm.image_version(container.get("image"))
    field = probes.FIELD[probe_kind]
    before = container.get(field)
    result = dict(changed=False, manifest=path, container=container["name"], probe=probe_kind, component=component,
                  version=".".join(str(v) for v in version) if version else None)

    if state == "present":
        if recommended:
            wanted = probes.recommended_probes(component, version, container).get(probe_kind)
            if wanted is None:
                raise InputError("kubeadm ships no %s probe for %s %s; use state=absent to remove it or give spec."
                                 % (probe_kind, component, result["version"]))
        elif spec:
            wanted = static_pod.normalize_probe(spec)
            static_pod.validate_probe(wanted, field, "spec")
        else:
            raise InputError("state=present needs spec (the probe) or recommended=true.")
        changed = static_pod.set_probe(container, field, wanted)
    elif state == "absent":
        changed = static_pod.set_probe(container, field, None)
    else:
        changed = False

    if changed:
        static_pod.validate_pod(doc, path)
        new_data = static_pod.dump_manifest(doc)
        result.update(changed=True, diff=dict(before=data.decode("utf-8", "replace"), after=new_data.decode("utf-8"),
                                              before_header=path, after_header=path))
        if not check_mode:
            result["backup_file"] = static_pod.write_manifest(path, new_data, backup_dir, manifest_dir)

    after = container.get(field)
    result["probe_spec"] = before if state == "audited" else after
    result["before"] = before
    result["kill_window"] = probes.kill_window(result["probe_spec"], probe_kind)
    files = static_pod.list_manifest_dir(manifest_dir)
    # Findings describe the probe as it is after this run (as found in check mode or audited).
    audited = dict(container)
    if check_mode or state == "audited":
        audited[field] = before
        if before is None:
            audited.pop(field, None)
    result["findings"] = probes.audit_probe(audited, probe_kind, component, version, files, path)
    if measure:
        result["measurements"] = measure_probe(result["probe_spec"], container, measure, measure_interval, crictl,
                                               run_command, doc)
    return result


def measure_probe(probe, container, runs, interval=0.0, crictl=None, run_command=None, pod=None):
    """Run ``probe`` ``runs`` times as kubelet would; latencies and failures against its timeout."""
    if not probe:
        return dict(skipped=True, reason="the container has no such probe to measure")
    t = prober.timing(probe)
    timeout = t["timeoutSeconds"]
    kind = prober.handler_of(probe)
    if kind == "exec":
        if not crictl or run_command is None:
            return dict(skipped=True, reason="exec probes run inside the container: crictl was not found on this host")
        container_id = _crictl_container_id(crictl, run_command, container["name"], pod)
        if not container_id:
            return dict(skipped=True, reason="no running container %s found through crictl" % container["name"])

        def runner():
            return _crictl_exec(crictl, run_command, container_id, probe["exec"]["command"], timeout)
    elif kind in ("httpGet", "tcpSocket"):
        def runner():
            return prober.run_network_probe(probe, timeout=timeout, container=container)
    else:
        return dict(skipped=True, reason="%s probes cannot be measured by this module" % kind)
    outcomes = []
    for index in range(runs):
        outcomes.append(runner())
        if interval and index + 1 < runs:
            time.sleep(interval)
    latencies = sorted(o.latency for o in outcomes)
    return dict(
        skipped=False, runs=runs, timeout_seconds=timeout, target=prober.describe_target(probe, container),
        failures=sum(1 for o in outcomes if not o.success),
        timeouts=sum(1 for o in outcomes if o.timed_out),
        latencies=[round(o.latency, 6) for o in outcomes],
        latency_max=round(latencies[-1], 6), latency_median=round(latencies[len(latencies) // 2], 6),
        headroom=round(timeout - latencies[-1], 6),
        results=[o.as_dict() for o in outcomes],
    )


def _crictl_container_id(crictl, run_command, name, pod):
    namespace = ((pod or {}).get("metadata") or {}).get("namespace") or "kube-system"
    rc, out, _err = run_command([crictl, "ps", "-q", "--state", "Running", "--name", "^%s$" % name,
                                 "--label", "io.kubernetes.pod.namespace=%s" % namespace])
    ids = out.split() if rc == 0 else []
    return ids[0] if ids else None


def _crictl_exec(crictl, run_command, container_id, command, timeout):
    started = time.monotonic()
    rc, out, err = run_command([crictl, "exec", "--sync", "--timeout", "%ds" % timeout, container_id] + list(command))
    latency = time.monotonic() - started
    if rc == 0 and latency <= timeout:
        return prober.ProbeOutcome(True, latency, "exit 0")
    timed_out = latency > timeout or "deadline" in (err or "").lower()
    return prober.ProbeOutcome(False, latency, "exit %d: %s" % (rc, (err or out or "").strip()[-200:]), timed_out=timed_out)
