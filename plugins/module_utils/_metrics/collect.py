# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the collection already reads, as Prometheus metrics (docs/monitoring.md lists them).

Each collector calls the backend of a read-only module: certificates (kubeadm_cert_info's scan),
etcd (etcd_member_info's gather, plus each member's own /metrics for leader changes), static pods
(static_pod_probe's audit of the local manifests), kubernetes (node_version_check's gathering and
skew rules: restart counts, skew violations, control-plane nodes) and runs (the run-state files
of the unattended timers, _runstate).  A collector that fails leaves none of its samples and sets
``cplane_kubeadm_collector_success{collector=...} 0``: the file is always written, so an alert
sees the failure instead of a silently missing metric.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import calendar
import glob
import os
import ssl
import time

try:
    from http.client import HTTPException, HTTPSConnection
    from urllib.parse import urlparse
except ImportError:  # pragma: no cover - Python 2 is not supported, kept for sanity's compile test
    from httplib import HTTPException, HTTPSConnection  # type: ignore
    from urlparse import urlparse  # type: ignore

from ansible_collections.cplane.kubeadm.plugins.module_utils import _deps, _kubeadm, _runstate
from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import CplaneError, InputError
from ansible_collections.cplane.kubeadm.plugins.module_utils._metrics.exposition import Registry

PREFIX = "cplane_kubeadm_"
COLLECTORS = ("certificates", "etcd", "static_pods", "kubernetes", "runs")
ALARMS = ("NOSPACE", "CORRUPT")
SEVERITIES = ("critical", "warning", "info")
STRAY_RULE = "stray-manifest-file"
# Steps whose last success is always exported (0 = never) once a job has recorded a run, so
# "no successful snapshot in 26 h" also fires when runs happen but no snapshot ever succeeded.
EXPECTED_STEPS = {"etcd_maintenance": ("defrag", "snapshot")}
# etcd's own counter of leader changes this member has seen since it started (etcd docs, Metrics,
# https://etcd.io/docs/v3.5/metrics/: "etcd_server_leader_changes_seen_total", "curl the metrics
# endpoint /metrics" on the client URL).
LEADER_CHANGES = "etcd_server_leader_changes_seen_total"
ROLE_LABELS = ("control-plane", "master")


class MissingLibrary(CplaneError):
    """A Python library a collector needs is missing or too old (the other collectors still run)."""


def _require(*pip_names):
    for pip_name in pip_names:
        problem = _deps.check(pip_name)
        if problem is not None:
            raise MissingLibrary(problem[0])


def timestamp_of(iso_text):
    """``2026-12-01T17:00:00Z`` (what the PKI backend reports) as unix seconds."""
    return calendar.timegm(time.strptime(iso_text, "%Y-%m-%dT%H:%M:%SZ"))


# -- certificates ----------------------------------------------------------------------------------

def collect_certificates(reg, settings, now):
    _require("cryptography", "PyYAML")
    import datetime
    from ansible_collections.cplane.kubeadm.plugins.module_utils._pki import inspect as pki

    moment = datetime.datetime.fromtimestamp(now, pki.UTC)
    result = pki.scan(settings["pki_dir"], settings["kubeconfig_dir"], settings["kubelet_pki_dir"], now=moment)
    entries = list(result["certificates"]) + list(result["certificate_authorities"]) + [result["kubelet_client"]]
    for entry in entries:
        if entry.get("missing") or "not_after" not in entry:
            continue
        kind = entry["kind"]
        labels = dict(name=entry["name"], file=entry["path"], kind=kind,
                      ca=entry["name"] if kind == "ca" else entry.get("ca") or "ca")
        reg.add("certificate_expiry_timestamp_seconds",
                "notAfter of the certificate or CA as unix seconds (alerts compare it with time(), so a stale "
                "textfile still alerts on time).", timestamp_of(entry["not_after"]), **labels)
        reg.add("certificate_expires_in_seconds",
                "Seconds from the collection until the certificate or CA expires (negative once expired).",
                entry["residual_seconds"], **labels)
    reg.add("certificate_warnings", "Problems the certificate scan reported: unreadable files, keys that do not "
            "match, leaves not signed by their CA, an interrupted renewal, a CA ending before renewed leaves would.",
            len(result.get("warnings") or []))


# -- etcd ------------------------------------------------------------------------------------------

def read_etcd_counter(url, settings, name=LEADER_CHANGES):
    """The value of counter ``name`` on the member's /metrics (TLS with the etcd client certificate), or None."""
    parsed = urlparse(url)
    if parsed.scheme != "https":
        return None
    context = ssl.create_default_context(cafile=settings["etcd_ca_cert"])
    context.load_cert_chain(settings["etcd_client_cert"], settings["etcd_client_key"])
    conn = HTTPSConnection(parsed.hostname, parsed.port or _kubeadm.ETCD_CLIENT_PORT, context=context,
                           timeout=settings["etcd_command_timeout"])
    try:
        conn.request("GET", "/metrics")
        response = conn.getresponse()
        if response.status != 200:
            return None
        for line in response.read().decode("utf-8", "replace").splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
    finally:
        conn.close()
    return None


def collect_etcd(reg, settings, now):
    _require("etcd3", "grpcio", "protobuf", "cryptography")
    from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd.members import gather_member_info

    info = gather_member_info(settings["etcd_endpoints"], settings["etcd_ca_cert"], settings["etcd_client_cert"],
                              settings["etcd_client_key"], settings["etcd_command_timeout"],
                              settings.get("etcd_quota_bytes"))
    reg.add("etcd_has_quorum", "1 when at least a quorum of the voting members is healthy.", info["has_quorum"])
    reg.add("etcd_voting_members", "Voting members in etcd's member list.", info["voting_members"])
    reg.add("etcd_healthy_voting_members", "Voting members that answered a linearizable read.",
            info["healthy_voting_members"])
    for member in info["members"]:
        labels = dict(member=member["name"], member_id=member["id"])
        reg.add("etcd_member_healthy", "1 when the member answered its status and a read.", member["healthy"], **labels)
        reg.add("etcd_member_is_leader", "1 on the member that is the raft leader.", member["is_leader"], **labels)
        reg.add("etcd_member_is_learner", "1 on learners (non-voting members).", member["is_learner"], **labels)
        reg.add("etcd_db_size_bytes", "Size of the member's backend database file.", member["db_size"], **labels)
        reg.add("etcd_db_size_in_use_bytes", "Bytes of the database file holding live data (the rest is free pages).",
                member["db_size_in_use"], **labels)
        reg.add("etcd_db_fragmentation_ratio", "Share of the database file that is free pages (1 - in use / size); "
                "defragmentation gives it back.", member["fragmentation"], **labels)
        reg.add("etcd_db_quota_bytes", "The member's backend quota (--quota-backend-bytes; etcd before 3.6 does not "
                "report it: the configured or default value).", member["db_size_quota"], **labels)
        reg.add("etcd_raft_term", "Raft term the member is in; every election raises it.", member["raft_term"], **labels)
        for alarm in ALARMS:
            reg.add("etcd_alarm_active", "1 while the alarm is raised for the member (NOSPACE: writes refused "
                    "until defragmented and disarmed; CORRUPT: data inconsistency).",
                    alarm in (member.get("alarms") or []), alarm=alarm, **labels)
        if member["healthy"] and member.get("client_urls"):
            try:
                changes = read_etcd_counter(member["client_urls"][0], settings)
            except (OSError, HTTPException, ValueError):
                # The counter is a bonus beside the status: a member that will not serve /metrics
                # (a proxy, --listen-metrics-urls only) loses this one sample, not the collector.
                changes = None
            reg.add("etcd_leader_changes_seen_total", "Leader changes the member has seen since it started (etcd's "
                    "own etcd_server_leader_changes_seen_total).", changes, metric_type="counter", **labels)


# -- static pods (local manifests) -----------------------------------------------------------------

def collect_static_pods(reg, settings, now):
    _require("PyYAML")
    from ansible_collections.cplane.kubeadm.plugins.module_utils._manifests import probe_state

    manifests_dir = settings["manifests_dir"]
    stray = []
    for component in settings["components"]:
        path = _kubeadm.manifest_file(component, manifests_dir)
        present = os.path.exists(path)
        reg.add("static_pod_manifest_present", "1 when the component's manifest is in the manifests directory.",
                present, component=component)
        if not present:
            continue
        for probe in settings["probes"]:
            try:
                audit = probe_state.manage_probe(path, probe, state="audited", manifest_dir=manifests_dir)
            except InputError:
                reg.add("static_pod_manifest_readable", "0 when kubelet cannot use the manifest (bad YAML, no "
                        "container): the audit of its probes failed.", 0, component=component)
                break
            reg.add("static_pod_manifest_readable", "0 when kubelet cannot use the manifest (bad YAML, no "
                    "container): the audit of its probes failed.", 1, component=component)
            counts = dict((severity, 0) for severity in SEVERITIES)
            for finding in audit["findings"]:
                if finding["rule"] == STRAY_RULE:
                    if finding["message"] not in stray:
                        stray.append(finding["message"])
                    continue
                counts[finding["severity"]] = counts.get(finding["severity"], 0) + 1
            for severity, count in counts.items():
                reg.add("static_pod_probe_findings", "Findings of the probe audit (static_pod_probe) by severity.",
                        count, component=component, probe=probe, severity=severity)
    reg.add("static_pod_stray_manifest_files", "Files in the manifests directory that kubelet runs besides the "
            "kubeadm manifests (backups such as etcd.yaml.bak run as a second pod).", len(stray))


# -- Kubernetes API --------------------------------------------------------------------------------

def collect_kubernetes(reg, settings, now):
    _require("kubernetes", "PyYAML")
    from ansible_collections.cplane.kubeadm.plugins.module_utils import _k8s_client
    from ansible_collections.cplane.kubeadm.plugins.module_utils._versions import cluster, skew

    with _k8s_client.connect(timeout=settings.get("api_timeout"), **settings["auth"]) as client:
        inventory = cluster.gather_cluster(client)
    violations = skew.evaluate_skew(inventory)
    mixed = skew.find_mixed_versions(inventory)
    control_planes = [node for node in inventory["nodes"]
                      if any(role in ROLE_LABELS for role in node["roles"]) or node["control_plane"]]
    reg.add("version_skew_violations", "Violations of the Kubernetes version-skew policy (node_version_check).",
            len(violations))
    reg.add("version_mixed_instances", "Instances whose version differs from the majority of their component.",
            len(mixed))
    reg.add("control_plane_nodes", "Nodes with a control-plane role label or static control-plane pods.",
            len(control_planes))
    reg.add("control_plane_nodes_ready", "Control-plane nodes whose Ready condition is True.",
            len([node for node in control_planes if node["ready"]]))
    for node in inventory["nodes"]:
        for component, count in sorted(node["restarts"].items()):
            reg.add("static_pod_restarts_total", "Container restarts of the static control-plane pod (its mirror "
                    "pod's restartCount); resets when the pod is recreated.", count, metric_type="counter",
                    node=node["name"], component=component)


# -- unattended runs -------------------------------------------------------------------------------

def collect_runs(reg, settings, now):
    paths = sorted(glob.glob(os.path.join(settings["state_dir"], "*.json")))
    for path in paths:
        state = _runstate.read_run_state(path)
        if state is None:
            continue
        run = state.get("job") or os.path.splitext(os.path.basename(path))[0]
        reg.add("run_last_timestamp_seconds", "When the last unattended run of the job finished (unix seconds).",
                state.get("finished"), run=run)
        reg.add("run_success", "1 when the last run succeeded (a node that left the work to another counts as "
                "success).", state.get("success"), run=run)
        reg.add("run_acted", "1 when the last run on this node did the work (0: another node acted).",
                state.get("acted"), run=run)
        reg.add("run_consecutive_failures", "Failed runs in a row on this node.", state.get("consecutive_failures"),
                run=run)
        last = dict((step, 0) for step in EXPECTED_STEPS.get(run, ()))
        last.update((step, value) for step, value in (state.get("last_success") or {}).items() if value is not None)
        for step, value in sorted(last.items()):
            reg.add("run_last_success_timestamp_seconds", "Last success of a step of the job (run, defrag, snapshot, "
                    "fstrim, ...) as unix seconds; 0 when it never succeeded.", value, run=run, step=step)
        for step, outcome in sorted((state.get("steps") or {}).items()):
            if isinstance(outcome, dict) and outcome.get("seconds") is not None:
                reg.add("run_step_duration_seconds", "How long the step took in the last run.", outcome["seconds"],
                        run=run, step=step)


COLLECT = {
    "certificates": collect_certificates,
    "etcd": collect_etcd,
    "static_pods": collect_static_pods,
    "kubernetes": collect_kubernetes,
    "runs": collect_runs,
}


def collect(settings, collectors=COLLECTORS, clock=time.time, monotonic=time.monotonic):
    """(textfile content, {collector: {success, error, seconds}}) for the given collectors.

    A failing collector never stops the others; its error is returned (and is a metric).
    """
    now = clock()
    reg = Registry(PREFIX)
    outcome = {}
    for name in collectors:
        if name not in COLLECT:
            raise InputError("unknown collector %r; choose from %s." % (name, ", ".join(COLLECTORS)))
        part = Registry(PREFIX)
        started = monotonic()
        error = None
        try:
            COLLECT[name](part, settings, now)
        except CplaneError as err:
            error = err.msg
        except Exception as err:  # pylint: disable=broad-exception-caught
            # Whatever breaks in one source must become collector_success 0, never a missing file.
            error = "%s: %s" % (type(err).__name__, err)
        seconds = round(monotonic() - started, 3)
        if error is None:
            for family in part.families.values():
                reg.family(family.name[len(PREFIX):], family.help, family.type).samples.extend(family.samples)
        outcome[name] = dict(success=error is None, error=error, seconds=seconds)
    for name in collectors:
        reg.add("collector_success", "1 when the collector read its source; 0 when it failed (its metrics are left "
                "out, the error is in the module result).", outcome[name]["success"], collector=name)
        reg.add("collector_duration_seconds", "How long the collector took.", outcome[name]["seconds"], collector=name)
    reg.add("textfile_timestamp_seconds", "When this file was generated (unix seconds).", round(now, 3))
    return reg.render(), outcome
