# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The control_plane_report role's report: built from what the read-only modules returned, judged, summarised.

The report is plain data (the modules' results minus Ansible's bookkeeping); the findings and the
summary are derived from it, so the JSON file and the screen always tell the same story.  The role
only runs the modules and hands their registered results to the filters in plugins/filter/.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils.common.text.formatters import bytes_to_human

from ansible_collections.cplane.kubeadm.plugins.module_utils import _topology

# Ansible's bookkeeping in a registered result, not part of the evidence.
BOOKKEEPING = ("invocation", "changed", "failed", "failed_when_result", "warnings")
STRAY_RULE = "stray-manifest-file"
PROBE_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")


def _first_sentence(message):
    return (message or "").split(". ")[0]


def _stray_text(message):
    """A stray-file finding's message up to its first parenthesis or sentence end (the file and what it is)."""
    return _first_sentence((message or "").split(" (")[0])


def _error(result, module):
    return (result or {}).get("msg") or "%s returned no result" % module


def etcd_section(enabled, result):
    if not enabled:
        return {"checked": False}
    result = result or {}
    if "members" not in result:
        return {"checked": True, "error": _error(result, "etcd_member_info")}
    section = dict((key, value) for key, value in result.items() if key not in BOOKKEEPING)
    section.update(checked=True, error=None)
    return section


def probe_sections(enabled, manifests, audits, probe, manifests_dir):
    """One entry per component looked for; ``manifests``/``audits`` are the looped stat and audit results."""
    if not enabled:
        return []
    out = []
    audits = list(audits or [])
    for index, found in enumerate(manifests or []):
        audit = audits[index] if index < len(audits) else {}
        present = bool((found.get("stat") or {}).get("exists"))
        entry = {"component": found.get("item"), "probe": probe,
                 "manifest": "%s/%s.yaml" % (manifests_dir, found.get("item")), "present": present}
        if present and "findings" in audit:
            entry.update(error=None, version=audit.get("version"), probe_spec=audit.get("probe_spec"),
                         kill_window=audit.get("kill_window"),
                         findings=[f for f in audit["findings"] if f.get("rule") != STRAY_RULE])
        elif present:
            entry.update(error=_error(audit, "static_pod_probe"), findings=[])
        out.append(entry)
    return out


def stray_files(enabled, audits):
    """Every audit lists the whole directory's stray files; each is kept once, in order."""
    out = []
    if not enabled:
        return out
    for audit in audits or []:
        for finding in audit.get("findings") or []:
            if finding.get("rule") == STRAY_RULE and finding not in out:
                out.append(finding)
    return out


def certificates_section(enabled, result, warn_days):
    if not enabled:
        return {"checked": False}
    result = result or {}
    if "certificates" not in result:
        return {"checked": True, "error": _error(result, "kubeadm_cert_info")}
    every = list(result["certificates"]) + list(result.get("certificate_authorities") or [])
    expiring = result.get("expiring") or []
    return {"checked": True, "error": None, "warn_days": int(warn_days),
            "expiring": [cert for cert in every if cert.get("name") in expiring],
            "certificates": result["certificates"], "certificate_authorities": result.get("certificate_authorities"),
            "kubelet_client": result.get("kubelet_client")}


def versions_section(enabled, result, kubeconfig, api_host):
    """``api_host`` is the host that ran the (run_once) API check, for the message when it found no kubeconfig."""
    result = result or {}
    if not enabled:
        return {"checked": False, "skipped": "disabled (control_plane_report_versions=false)"}
    if not kubeconfig:
        return {"checked": False, "skipped": "no kubeconfig set (control_plane_report_kubeconfig)"}
    if result.get("skipped"):
        return {"checked": False, "skipped": "no kubeconfig at %s on %s" % (kubeconfig, api_host)}
    if "violations" not in result:
        return {"checked": True, "error": _error(result, "node_version_check")}
    restarts = []
    for node in result.get("nodes") or []:
        for component, count in (node.get("restarts") or {}).items():
            if count > 0:
                restarts.append({"node": node.get("name"), "component": component, "restarts": count})
    restarts.sort(key=lambda item: item["restarts"], reverse=True)
    return {"checked": True, "error": None, "api_server_version": result.get("api_server_version"),
            "violations": result["violations"], "mixed_versions": result.get("mixed_versions"),
            "components": result.get("components"), "restarts": restarts}


def build_report(results, settings):
    """The report of one host, findings included.

    ``results``: the registered results (``etcd``, ``manifests``, ``probes``, ``certificates``,
    ``versions``; a check that did not run may be missing).  ``settings``: ``host``, ``generated_at``,
    the role's switches (``etcd``, ``probes``, ``certificates``, ``versions``) and ``probe``,
    ``manifests_dir``, ``warn_days``, ``kubeconfig``, ``api_host``, ``max_restarts``.
    """
    audits = (results.get("probes") or {}).get("results") or []
    report = {
        "host": settings["host"],
        "generated_at": settings["generated_at"],
        "etcd": etcd_section(settings["etcd"], results.get("etcd")),
        "probes": probe_sections(settings["probes"], (results.get("manifests") or {}).get("results"), audits,
                                 settings["probe"], settings["manifests_dir"]),
        "stray_files": stray_files(settings["probes"], audits),
        "certificates": certificates_section(settings["certificates"], results.get("certificates"), settings["warn_days"]),
        "versions": versions_section(settings["versions"], results.get("versions"), settings["kubeconfig"],
                                     settings.get("api_host")),
    }
    report["findings"] = findings(report, settings["max_restarts"])
    return report


def findings(report, max_restarts):
    """What is wrong on this host, one sentence each, most basic first (etcd, probes, files, certificates, API)."""
    out = []
    etcd = report["etcd"]
    if etcd["checked"] and etcd["error"]:
        out.append("etcd: cannot read the cluster: %s" % etcd["error"])
    elif etcd["checked"]:
        if not etcd["has_quorum"]:
            out.append("etcd: no quorum: %d of %d voting members healthy, %d needed"
                       % (etcd["healthy_voting_members"], etcd["voting_members"], etcd["quorum"]))
        for member in etcd["members"]:
            if not member["healthy"]:
                out.append("etcd: member %s is unhealthy: %s" % (member["name"], member.get("error")))
        for alarm in etcd.get("alarms") or []:
            out.append("etcd: alarm %s raised on member %s" % (alarm["alarm"], alarm["member"]))
        out.extend(_topology.report_findings(etcd.get("voting_members")))
    for probe in report["probes"]:
        if not probe["present"]:
            continue
        if probe.get("error"):
            out.append("probe: %s: %s" % (probe["manifest"], probe["error"]))
        for finding in probe.get("findings") or []:
            if finding.get("severity") == "critical":
                out.append("probe: %s %s probe (%s): %s - %s" % (
                    probe["component"], probe["probe"], probe["manifest"], finding["rule"], _first_sentence(finding["message"])))
    for finding in report["stray_files"]:
        if finding.get("severity") == "critical":
            out.append("stray file: %s" % _stray_text(finding["message"]))
    certs = report["certificates"]
    if certs["checked"] and certs["error"]:
        out.append("certificates: cannot read them: %s" % certs["error"])
    elif certs["checked"]:
        for cert in certs["expiring"]:
            out.append("certificate: %s %s (%s, %s)" % (
                cert["name"], "has expired" if cert.get("expired") else "expires in %d days" % cert["days_left"],
                cert.get("not_after"), cert.get("path")))
    versions = report["versions"]
    if versions["checked"] and versions["error"]:
        out.append("versions: cannot read the cluster through the API: %s" % versions["error"])
    elif versions["checked"]:
        for violation in versions["violations"]:
            out.append("version skew: %s" % violation["message"])
        for pod in versions["restarts"]:
            if pod["restarts"] > int(max_restarts):
                out.append("restarts: %s on %s restarted %d times" % (pod["component"], pod["node"], pod["restarts"]))
    return out


def _etcd_lines(etcd):
    if not etcd["checked"]:
        return ["etcd: not checked"]
    if etcd["error"]:
        return ["etcd: UNREACHABLE: %s" % etcd["error"]]
    lines = ["etcd: %s, %d of %d voting members healthy (quorum %d), leader %s, alarms: %s" % (
        "quorum OK" if etcd["has_quorum"] else "NO QUORUM", etcd["healthy_voting_members"], etcd["voting_members"],
        etcd["quorum"], etcd.get("leader") or "NONE", ", ".join(a["alarm"] for a in etcd.get("alarms") or []) or "none")]
    for member in etcd["members"]:
        role = " (leader)" if member.get("is_leader") else (" (learner)" if member.get("is_learner") else "")
        lines.append("  %s%s: %s, etcd %s, db %s (%.0f%% free pages, %.1f%% of quota)%s" % (
            member["name"], role, "healthy" if member["healthy"] else "UNHEALTHY", member.get("version") or "?",
            bytes_to_human(member.get("db_size") or 0), (member.get("fragmentation") or 0) * 100,
            (member.get("quota_usage") or 0) * 100, "" if member["healthy"] else ": %s" % member.get("error")))
    return lines


def _probe_line(probe):
    if not probe["present"]:
        return "probe %s: no manifest at %s, not audited" % (probe["component"], probe["manifest"])
    if probe.get("error"):
        return "probe %s: AUDIT FAILED: %s" % (probe["component"], probe["error"])
    window = probe.get("kill_window")
    if window:
        handler = next((key for key in probe.get("probe_spec") or {} if key in PROBE_HANDLERS), "?")
        kills = "%s, kills a hung process after %ss" % (handler, window["hung_seconds"])
    else:
        kills = "none"
    found = ", ".join("%s %s" % (f["severity"], f["rule"]) for f in probe.get("findings") or [])
    return "probe %s %s: %s; %s" % (probe["component"], probe["probe"], kills, found or "no findings")


def _certificate_line(certs):
    if not certs["checked"]:
        return "certificates: not checked"
    if certs["error"]:
        return "certificates: UNREADABLE: %s" % certs["error"]
    present = [c for c in certs["certificates"] if not c.get("missing") and "days_left" in c]
    expiring = ", ".join(c["name"] for c in certs["expiring"]) + " expiring" if certs["expiring"] else "none expiring"
    nearest = min(present, key=lambda c: c["days_left"]) if present else None
    return "certificates: %d read, %s within %d days%s" % (
        len(present), expiring, certs["warn_days"],
        "; next: %s in %d days" % (nearest["name"], nearest["days_left"]) if nearest else "")


def _version_lines(versions):
    if not versions["checked"]:
        return ["versions: skipped, %s" % versions["skipped"]]
    if versions["error"]:
        return ["versions: API UNREACHABLE: %s" % versions["error"]]
    mixed = ", ".join("%s %s on %s (majority %s)" % (m["component"], m["version"], m.get("node") or "cluster", m.get("majority_version"))
                      for m in versions["mixed_versions"] or [])
    restarts = ", ".join("%s %s %s" % (r["component"], r["node"], r["restarts"]) for r in versions["restarts"][:5])
    state = "versions: API server %s, %d skew violation(s); mixed versions: %s" % (
        versions["api_server_version"], len(versions["violations"]), mixed or "none")
    return [state, "restarts: %s" % (restarts or "none")]


def summary(report, host):
    """The report of ``host`` as lines for the screen: state of each check, then every finding."""
    lines = ["%s: %s" % (host, "%d problem(s), listed last" % len(report["findings"]) if report["findings"]
                         else "nothing wrong found")]
    lines += _etcd_lines(report["etcd"])
    lines += [_probe_line(probe) for probe in report["probes"]]
    lines += ["stray file (%s): %s" % (f["severity"], _stray_text(f["message"])) for f in report["stray_files"]]
    lines.append(_certificate_line(report["certificates"]))
    lines += _version_lines(report["versions"])
    lines += ["PROBLEM: %s" % finding for finding in report["findings"]]
    return lines
