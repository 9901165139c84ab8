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

import math
import os
import re

from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import InputError
from ansible_collections.cplane.kubeadm.plugins.module_utils._manifests import prober

KINDS = ("liveness", "readiness", "startup")
FIELD = dict(liveness="livenessProbe", readiness="readinessProbe", startup="startupProbe")

ETCD = "etcd"
APISERVER = "kube-apiserver"
CONTROLLER_MANAGER = "kube-controller-manager"
SCHEDULER = "kube-scheduler"
COMPONENTS = (ETCD, APISERVER, CONTROLLER_MANAGER, SCHEDULER)

# kubeadm's probe timings: (initialDelaySeconds, timeoutSeconds, failureThreshold, periodSeconds).
# Startup: failureThreshold = ceil(ControlPlaneComponentHealthCheck timeout (4 min) / period).
KUBEADM_TIMING = dict(
    liveness=(10, 15, 8, 10),
    readiness=(0, 15, 3, 1),
    startup=(10, 15, int(math.ceil(240 / 10.0)), 10),
)
# Default ports and schemes kubeadm probes (constants.EtcdMetricsPort, KubeAPIServerPort, ...).
DEFAULT_ENDPOINT = {
    ETCD: ("HTTP", 2381),
    APISERVER: ("HTTPS", 6443),
    CONTROLLER_MANAGER: ("HTTPS", 10257),
    SCHEDULER: ("HTTPS", 10259),
}
# etcd grew /livez and /readyz in 3.5.11; kubeadm probes them from then on.
ETCD_LIVEZ_SINCE = (3, 5, 11)
# /health honours serializable=true only from 3.5.3 (etcd PR 13706); older members answer
# "RAFT NO LEADER" without quorum whatever the query says (measured on 3.5.1 in the lab).
ETCD_SERIALIZABLE_HEALTH_SINCE = (3, 5, 3)
# kubeadm 1.34+ probes a named container port (kubernetes PR 132776, CHANGELOG-1.34: "started using a
# named port 'probe-port' for all probes"); older manifests carry the number in the probe itself.
NAMED_PROBE_PORT = "probe-port"
# kube-scheduler: /livez (liveness, startup) and /readyz (readiness) from kubeadm 1.32 (kubernetes PR
# 126945, CHANGELOG-1.32); /healthz and no readiness probe before.
SCHEDULER_LIVEZ_SINCE = (1, 32)
# A component that needs longer than this to come up gets killed in a loop without a startupProbe.
SLOW_STARTING = COMPONENTS
LOOPBACK = ("127.0.0.1", "::1", "localhost", "[::1]")


def image_version(image):
    """``registry.k8s.io/etcd:3.5.12-0`` -> (3, 5, 12); ``...:v1.30.2`` -> (1, 30, 2); None if no tag."""
    name = (image or "").split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" not in last:
        return None
    match = re.match(r"v?(\d+)\.(\d+)(?:\.(\d+))?", last.split(":", 1)[1])
    if not match:
        return None
    return tuple(int(part or 0) for part in match.groups())


def component_of(container):
    """Which kubeadm component a container runs, from its image repository or name."""
    image = (container.get("image") or "").split("@", 1)[0].rsplit("/", 1)[-1].split(":", 1)[0]
    for candidate in (image, container.get("name") or ""):
        for component in COMPONENTS:
            if candidate == component or candidate.startswith(component + "-"):
                return component
    return None


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
    scheme, port = DEFAULT_ENDPOINT[component]
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


def probe_port(container, port):
    """The port as kubeadm writes it in the probe: its named port when the container declares it."""
    for entry in container.get("ports") or []:
        if entry.get("name") == NAMED_PROBE_PORT and entry.get("containerPort") == port:
            return NAMED_PROBE_PORT
    return port


def _http_probe(kind, scheme, host, port, path):
    delay, timeout, failures, period = KUBEADM_TIMING[kind]
    # Keys in kubeadm's (Go's sorted) order, so a restored probe diffs cleanly against kubeadm's.
    probe = {
        "failureThreshold": failures,
        "httpGet": {"host": host, "path": path, "port": port, "scheme": scheme},
        "initialDelaySeconds": delay,
        "periodSeconds": period,
        "timeoutSeconds": timeout,
    }
    if not delay:
        # kubeadm's manifests omit zero values (Go's omitempty): its readiness probe has no initialDelaySeconds.
        del probe["initialDelaySeconds"]
    return probe


def same_probe(probe, other):
    """True when two probes behave alike: same handler, same timings with kubelet's defaults filled in."""
    if not probe or not other:
        return probe == other
    handlers = [dict((k, p[k]) for k in prober.HANDLERS if k in p) for p in (probe, other)]
    return handlers[0] == handlers[1] and prober.timing(probe) == prober.timing(other)


def recommended_probes(component, version, container):
    """{kind: probe or None} as kubeadm writes them for ``component`` at ``version``.

    ``version`` is the image tag's version: etcd's own for etcd, Kubernetes' for the others.
    None for a kind means kubeadm ships no such probe for that component and version.
    """
    if component not in COMPONENTS:
        raise InputError("no kubeadm-recommended probe for container image %r: give the probe as spec"
                         % container.get("image"))
    scheme, host, port = probe_endpoint(component, container)
    port = probe_port(container, port)
    paths = {}
    if component == ETCD:
        if version is None:
            raise InputError("cannot tell the etcd version from image %r: give the probe as spec" % container.get("image"))
        if version >= ETCD_LIVEZ_SINCE:
            paths = dict(liveness="/livez", readiness="/readyz", startup="/readyz")
        elif version >= (3, 4, 0):
            paths = dict(liveness="/health?exclude=NOSPACE&serializable=true", readiness=None,
                         startup="/health?serializable=false")
        else:
            raise InputError("etcd %s predates the /health parameters kubeadm probes (3.4+); give the probe as spec"
                             % ".".join(str(v) for v in version))
    elif component == APISERVER:
        paths = dict(liveness="/livez", readiness="/readyz", startup="/livez")
    elif component == SCHEDULER and (version is None or version[:2] >= SCHEDULER_LIVEZ_SINCE):
        paths = dict(liveness="/livez", readiness="/readyz", startup="/livez")
    else:
        paths = dict(liveness="/healthz", readiness=None, startup="/healthz")
    return {kind: (_http_probe(kind, scheme, host, port, path) if path else None) for kind, path in paths.items()}


def _recommended_or_none(component, version, container, kind):
    try:
        return recommended_probes(component, version, container).get(kind)
    except InputError:
        return None


# -- the audit ----------------------------------------------------------------------------------------
def kill_window(probe, kind="liveness"):
    """How long a hung process survives this probe, in seconds, the way kubelet schedules it.

    kubelet probes every periodSeconds but skips the ticks a running probe misses, so a probe that
    runs into its timeout repeats every ceil(timeout/period) periods.  ``fast_failure`` is for a
    probe that fails at once (connection refused); ``hung`` for one that times out each time.
    """
    if not probe:
        return None
    t = prober.timing(probe)
    period, timeout = t["periodSeconds"], t["timeoutSeconds"]
    interval = period * max(1, int(math.ceil(float(timeout) / period)))
    failures = t["failureThreshold"]
    return dict(
        kind=kind,
        fast_failure_seconds=t["initialDelaySeconds"] + (failures - 1) * period,
        hung_seconds=t["initialDelaySeconds"] + (failures - 1) * interval + timeout,
        initial_delay_seconds=t["initialDelaySeconds"], period_seconds=period, timeout_seconds=timeout,
        failure_threshold=failures,
    )


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
        if t["timeoutSeconds"] >= t["periodSeconds"]:
            window = kill_window(probe, kind)
            as_kubeadm = same_probe(probe, _recommended_or_none(component, version, container, kind))
            findings.append(_finding(
                "timeout-not-below-period", "info" if as_kubeadm else "warning",
                "timeoutSeconds (%d) >= periodSeconds (%d): a slow check occupies the whole period, kubelet skips "
                "the ticks it misses, and a hung process survives %ss instead of the %ss the numbers suggest.%s"
                % (t["timeoutSeconds"], t["periodSeconds"], window["hung_seconds"], window["fast_failure_seconds"],
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
