# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a control-plane probe should be, and what is wrong with the one a manifest has.

The recommended probes are the ones kubeadm itself writes (cmd/kubeadm/app/util/staticpod/utils.go:
LivenessProbe/ReadinessProbe/StartupProbe; phases/etcd/local.go; phases/controlplane/manifests.go),
so ``recommended: true`` restores kubeadm's defaults for the component and version in the image tag.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

from ansible_collections.cplane.kubeadm.plugins.module_utils import _kubeadm
from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import InputError
from ansible_collections.cplane.kubeadm.plugins.module_utils._kubeadm import (
    APISERVER, ETCD, ETCD_SERIALIZABLE_HEALTH_SINCE, component_of)
from ansible_collections.cplane.kubeadm.plugins.module_utils._manifests import prober

KINDS = _kubeadm.PROBE_KINDS
FIELD = _kubeadm.PROBE_FIELD
# A component that needs longer than this to come up gets killed in a loop without a startupProbe.
SLOW_STARTING = _kubeadm.CONTROL_PLANE_COMPONENTS
LOOPBACK = ("127.0.0.1", "::1", "localhost", "[::1]")


def flag_value(container, flag):
    """The value of ``--flag=value`` (or ``--flag value``) in the container's command and args."""
    argv = [str(a) for a in (container.get("command") or []) + (container.get("args") or [])]
    for index, arg in enumerate(argv):
        if arg.startswith("--%s=" % flag):
            return arg.split("=", 1)[1]
        if arg == "--%s" % flag and index + 1 < len(argv):
            return argv[index + 1]
    return None


def _unspecified(host):
    return host in (None, "", "0.0.0.0", "::", "[::]")


def probe_endpoint(component, container):
    """(scheme, host, port) kubeadm would probe for this container, from its own flags."""
    scheme, port = _kubeadm.PROBE_ENDPOINT[component]
    host = "127.0.0.1"
    if component == ETCD:
        # staticpod.GetEtcdProbeEndpoint: the first --listen-metrics-urls URL, else 127.0.0.1:2381.
        urls = flag_value(container, "listen-metrics-urls")
        if urls:
            match = re.match(r"(https?)://(\[[^\]]+\]|[^:/]+)(?::(\d+))?", urls.split(",")[0].strip())
            if match:
                scheme = match.group(1).upper()
                host = "127.0.0.1" if _unspecified(match.group(2)) else match.group(2).strip("[]")
                port = int(match.group(3)) if match.group(3) else (443 if scheme == "HTTPS" else 80)
    elif component == APISERVER:
        # kubeadm probes the advertise address (the loopback when it is unspecified).
        advertise = flag_value(container, "advertise-address")
        host = "127.0.0.1" if _unspecified(advertise) else advertise
        port = int(flag_value(container, "secure-port") or port)
    else:
        bind = flag_value(container, "bind-address")
        host = "127.0.0.1" if _unspecified(bind) else bind
        port = int(flag_value(container, "secure-port") or port)
    return scheme, host, port


def recommended_probes(component, version, container):
    """{kind: probe or None} as kubeadm writes them for ``component`` at ``version``.

    ``version`` is the image tag's version: etcd's own for etcd, Kubernetes' for the others.
    None for a kind means kubeadm ships no such probe for that component and version.
    """
    if component not in _kubeadm.CONTROL_PLANE_COMPONENTS:
        raise InputError("no kubeadm-recommended probe for container image %r: give the probe as spec"
                         % container.get("image"))
    try:
        paths = _kubeadm.probe_paths(component, version)
    except InputError as exc:
        raise InputError("%s (image %r)" % (exc.msg, container.get("image")))
    scheme, host, port = probe_endpoint(component, container)
    port = probe_port(container, port)
    return {kind: (_kubeadm.http_probe(kind, scheme, host, port, path) if path else None) for kind, path in paths.items()}


def probe_port(container, port):
    """The port as kubeadm writes it in the probe: its named port when the container declares it."""
    for entry in container.get("ports") or []:
        if entry.get("name") == _kubeadm.NAMED_PROBE_PORT and entry.get("containerPort") == port:
            return _kubeadm.NAMED_PROBE_PORT
    return port


def same_probe(probe, other):
    """True when two probes behave alike: same handler, same timings with kubelet's defaults filled in."""
    if not probe or not other:
        return probe == other
    handlers = [dict((k, p[k]) for k in prober.HANDLERS if k in p) for p in (probe, other)]
    return handlers[0] == handlers[1] and prober.timing(probe) == prober.timing(other)


def _recommended_or_none(component, version, container, kind):
    try:
        return recommended_probes(component, version, container).get(kind)
    except InputError:
        return None


# -- the audit ----------------------------------------------------------------------------------------
# kubelet enforces timeoutSeconds on exec probes from Kubernetes 1.20 (kubernetes PR 94115, the
# ExecProbeTimeout feature gate, on by default).  Before, a hung command ran until it exited by
# itself: a hung ``etcdctl`` after its own --command-timeout (5 s by default).
EXEC_TIMEOUT_ENFORCED_SINCE = (1, 20)


def probe_interval(probe):
    """Seconds between the starts of two probes that each run into their timeout.

    kubelet's worker (pkg/kubelet/prober/worker.go, run()) is ``for w.doProbe(ctx) { select {
    case <-probeTicker.C: ... } }`` on a Go time.Ticker of periodSeconds.  A ticker's channel
    holds one tick: the tick that fires while a slow probe runs waits there, so the next probe
    starts the moment the slow one returns.  Probes that time out therefore repeat every
    max(periodSeconds, timeoutSeconds).
    """
    t = prober.timing(probe)
    return max(t["periodSeconds"], t["timeoutSeconds"])


def kill_window(probe, kind="liveness"):
    """How long a failing process survives this probe, in seconds, the way kubelet schedules it.

    ``fast_failure_seconds``: probes that fail at once (connection refused) run every period, so
    the container is killed initialDelaySeconds + (failureThreshold - 1) * periodSeconds after it
    started.  ``hung_seconds``: probes that run into their timeout repeat every probe_interval,
    so the last one ends initialDelaySeconds + failureThreshold * max(period, timeout) after the
    start (15 + 8 x 15 = 135 s for the first seed's etcdctl probe).  Both count from a first probe
    at initialDelaySeconds; kubelet's first probe waits for the first tick of the worker's ticker
    (started with the pod, just before the container) after initialDelaySeconds, up to one
    periodSeconds later: ``hung_seconds_latest``.  For exec probes on Kubernetes before 1.20 see
    EXEC_TIMEOUT_ENFORCED_SINCE.
    """
    if not probe:
        return None
    t = prober.timing(probe)
    period, timeout = t["periodSeconds"], t["timeoutSeconds"]
    failures = t["failureThreshold"]
    window = dict(
        kind=kind,
        fast_failure_seconds=t["initialDelaySeconds"] + (failures - 1) * period,
        hung_seconds=t["initialDelaySeconds"] + failures * probe_interval(probe),
        hung_seconds_latest=t["initialDelaySeconds"] + period + failures * probe_interval(probe),
        hung_probe_interval_seconds=probe_interval(probe),
        initial_delay_seconds=t["initialDelaySeconds"], period_seconds=period, timeout_seconds=timeout,
        failure_threshold=failures,
    )
    if prober.handler_of(probe) == "exec":
        window["exec_timeout_note"] = (
            "timeoutSeconds bounds exec probes only from Kubernetes 1.20 (ExecProbeTimeout); before that a hung "
            "command ran until it exited by itself (etcdctl: its --command-timeout, 5s by default).")
    return window


def _finding(rule, severity, message):
    return dict(rule=rule, severity=severity, message=message)


def _exec_text(probe):
    command = ((probe or {}).get("exec") or {}).get("command") or []
    return " ".join(str(part) for part in command)


def _etcdctl_linearizable(text):
    if "etcdctl" not in text:
        return None
    if re.search(r"\bget\b", text) and "--consistency=s" not in text:
        return "etcdctl get"
    if re.search(r"\bendpoint\s+health\b", text):
        return "etcdctl endpoint health"
    return None


def audit_probe(container, kind, component=None, version=None, manifest_files=None, manifest_path=None):
    """Findings (rule, severity, message) about ``container``'s ``kind`` probe.

    ``manifest_files`` is [(file name, pod name or None)] of the manifests directory, for the
    stray-file rule; ``manifest_path`` the audited file.
    """
    findings = []
    probe = container.get(FIELD[kind])
    component = component or component_of(container)
    handler = prober.handler_of(probe) if probe else None
    t = prober.timing(probe) if probe else None

    if probe is None and kind == "liveness":
        findings.append(_finding("no-liveness-probe", "info",
                                 "No liveness probe: kubelet restarts the container only when its process exits, "
                                 "not when it hangs."))
    if probe is not None:
        what = _etcdctl_linearizable(_exec_text(probe)) if handler == "exec" else None
        if what and kind in ("liveness", "startup"):
            findings.append(_finding(
                "linearizable-etcd-read", "critical",
                "The %s probe runs '%s', a linearizable read that needs the etcd leader and a quorum. It fails "
                "whenever quorum or the leader is slow or lost (a peer down, a network blip, a long defrag), so "
                "kubelet kills members that are healthy and takes kube-apiserver down with them - the "
                "restart-every-two-minutes outage of the kubeadm 1.12 etcd probe. Use an HTTP probe of etcd's "
                "local health instead (state=present recommended=true)." % (kind, what)))
        elif what:
            findings.append(_finding(
                "linearizable-etcd-read", "warning",
                "The readiness probe runs '%s', which fails when quorum is lost; the member then reports "
                "not ready exactly when clients need to know which members still serve reads." % what))
        if handler == "httpGet" and component == ETCD:
            path = probe["httpGet"].get("path") or "/"
            if path.startswith("/health") and kind == "liveness" and "exclude=NOSPACE" not in path:
                findings.append(_finding(
                    "etcd-health-includes-nospace", "critical",
                    "The liveness probe checks %s without exclude=NOSPACE: one NOSPACE alarm (the cluster's "
                    "quota is full, raised on every member at once) makes /health fail everywhere and kubelet "
                    "kills every member in turn, turning a full database into a full outage." % path))
            old_etcd = version is not None and version < ETCD_SERIALIZABLE_HEALTH_SINCE
            if kind == "liveness" and path.startswith("/health") and "serializable=true" in path and old_etcd:
                findings.append(_finding(
                    "etcd-health-ignores-serializable", "critical",
                    "The liveness probe asks %s, but etcd %s ignores serializable=true (honoured from 3.5.3): "
                    "without quorum /health answers 'RAFT NO LEADER', so losing two members of three still makes "
                    "kubelet kill the third. kubeadm ships this probe for this version anyway. Upgrade etcd to "
                    "3.5.3 or later; until then remove the liveness probe (state=absent) or probe a local-only "
                    "endpoint." % (path, ".".join(str(v) for v in version))))
            elif kind == "liveness" and (path.startswith("/readyz") or
                                         (path.startswith("/health") and "serializable=true" not in path)):
                findings.append(_finding(
                    "liveness-needs-quorum", "critical",
                    "The liveness probe %s answers false when the member has no leader or no quorum, so "
                    "losing two members of three makes kubelet kill the third as well." % path))
        if (component in SLOW_STARTING and kind == "liveness" and container.get("startupProbe") is None):
            window = kill_window(probe)
            findings.append(_finding(
                "no-startup-probe", "warning",
                "%s has a liveness probe but no startupProbe: kubelet starts killing it %ss after start even "
                "while it is still loading its data (a large etcd snapshot, a slow apiserver cache warm-up), "
                "which can turn a slow start into a restart loop." % (component, window["fast_failure_seconds"])))
        if t["timeoutSeconds"] > t["periodSeconds"]:
            window = kill_window(probe, kind)
            as_kubeadm = same_probe(probe, _recommended_or_none(component, version, container, kind))
            findings.append(_finding(
                "timeout-not-below-period", "info" if as_kubeadm else "warning",
                "timeoutSeconds (%d) > periodSeconds (%d): kubelet starts the next probe as soon as a timed-out one "
                "returns, so failing probes repeat every %ds, not every %ds, and a hung process survives about %ss "
                "(initialDelaySeconds + failureThreshold x %d) instead of the %ss the period suggests.%s%s"
                % (t["timeoutSeconds"], t["periodSeconds"], window["hung_probe_interval_seconds"], t["periodSeconds"],
                   window["hung_seconds"], window["hung_probe_interval_seconds"], window["fast_failure_seconds"],
                   " " + window["exec_timeout_note"] if "exec_timeout_note" in window else "",
                   " (kubeadm's own default: known and accepted.)" if as_kubeadm else "")))
        if handler in ("httpGet", "tcpSocket"):
            host = (probe[handler].get("host") or "").strip("[]")
            if host not in LOOPBACK:
                target = host or "the pod IP (the node address for hostNetwork pods)"
                kubeadm_default = component == APISERVER and host == probe_endpoint(component, container)[1]
                findings.append(_finding(
                    "non-loopback-target", "info" if kubeadm_default else "warning",
                    "The %s probe goes to %s, not the loopback: a firewall rule, a moved address or an "
                    "interface flap then fails the probe and kubelet acts on a healthy component.%s"
                    % (kind, target, " (kubeadm's own default for kube-apiserver.)" if kubeadm_default else "")))
    other = "readinessProbe" if kind == "liveness" else ("livenessProbe" if kind == "readiness" else None)
    if probe is not None and other and container.get(other) is not None:
        mine = {k: v for k, v in probe.items() if k in prober.HANDLERS}
        theirs = {k: v for k, v in container[other].items() if k in prober.HANDLERS}
        if mine == theirs:
            findings.append(_finding(
                "liveness-equals-readiness", "warning",
                "The liveness and readiness probes check the same thing: whatever makes the component unready "
                "(often a dependency) also gets it killed, and restarting cannot fix a dependency."))
    findings.extend(audit_manifest_files(manifest_files or [], manifest_path))
    return findings


STRAY_NAME = re.compile(r"(\.(bak|orig|old|save|swp|tmp|dpkg-[a-z]+|rpm[a-z]+)|~)$|\.(yaml|yml|json)\.")


def audit_manifest_files(manifest_files, manifest_path=None):
    """Stray files in the manifests directory: kubelet reads every file not starting with a dot."""
    findings = []
    by_pod = {}
    for name, pod_name in manifest_files:
        if pod_name:
            by_pod.setdefault(pod_name, []).append(name)
    for name, pod_name in manifest_files:
        if name.startswith("."):
            continue
        canonical = pod_name and name in ("%s.yaml" % pod_name, "%s.yml" % pod_name, "%s.json" % pod_name)
        twins = [other for other in by_pod.get(pod_name, []) if other != name] if pod_name else []
        stray = bool(STRAY_NAME.search(name)) or not re.search(r"\.(yaml|yml|json)$", name)
        if not stray and (canonical or not twins):
            continue
        if twins:
            message = ("%s in the manifests directory defines pod '%s' like %s. kubelet reads every file there "
                       "whose name does not start with a dot and keeps one pod per name: the file read last wins, "
                       "so kubelet may run this copy instead of the one you edit. Move it out of the directory."
                       % (name, pod_name, ", ".join(twins)))
            severity = "critical"
        elif pod_name:
            message = ("%s in the manifests directory is read by kubelet as a static pod manifest (only names "
                       "starting with a dot are ignored) and runs as pod '%s'. Move it out "
                       "of the directory, e.g. to /var/backups/cplane-kubeadm." % (name, pod_name))
            severity = "critical"
        else:
            message = ("%s in the manifests directory is not a valid pod manifest; kubelet tries to read it on "
                       "every sync. Move it out of the directory." % name)
            severity = "warning"
        if manifest_path and os.path.basename(manifest_path) == name:
            continue
        findings.append(_finding("stray-manifest-file", severity, message))
    return findings
