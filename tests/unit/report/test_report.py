"""The control_plane_report's report, findings and summary, built from registered results (no Ansible run).

These replaced 224 lines of Jinja; the same inputs gave the same report, findings and summary
through the old tasks and the new filters (compared once, all five variants of inputs.py's data).
"""
import copy

import pytest

from ansible_collections.cplane.kubeadm.plugins.filter import control_plane_report as filters
from ansible_collections.cplane.kubeadm.plugins.module_utils._report import report as r

from tests.unit.report import inputs


def build(results=None, **settings):
    return r.build_report(copy.deepcopy(inputs.RESULTS if results is None else results), dict(inputs.SETTINGS, **settings))


def test_findings_list_every_problem_most_basic_first():
    assert build()["findings"] == [
        "etcd: no quorum: 1 of 3 voting members healthy, 2 needed",
        "etcd: member cp2 is unhealthy: connection refused",
        "etcd: member cp3 is unhealthy: deadline exceeded",
        "etcd: alarm NOSPACE raised on member cp2",
        "probe: etcd liveness probe (/m/etcd.yaml): linearizable-etcd-read - The probe reads through raft",
        "probe: /m/kube-scheduler.yaml: manifest /m/kube-scheduler.yaml is not valid YAML",
        "stray file: /etc/kubernetes/manifests/kube-apiserver.yaml.bak is a manifest kubelet runs",
        "certificate: apiserver expires in 12 days (2026-12-13T00:00:00Z, /p/apiserver.crt)",
        "certificate: admin.conf has expired (2026-11-28T00:00:00Z, /k/admin.conf)",
        "certificate: ca expires in 20 days (2026-12-21T00:00:00Z, /p/ca.crt)",
        "version skew: kubelet v1.27.1 on w1 is 3 minors older than kube-apiserver v1.30.4 (max 2)",
        "restarts: etcd on cp1 restarted 183 times",
        "restarts: kube-scheduler on cp3 restarted 183 times",
        "restarts: kube-controller-manager on cp3 restarted 11 times",
    ]


def test_report_keeps_the_evidence_without_ansible_bookkeeping():
    report = build()
    assert report["etcd"]["checked"] and report["etcd"]["error"] is None
    assert not set(r.BOOKKEEPING) & set(report["etcd"])
    assert [p["present"] for p in report["probes"]] == [True, False, True]
    etcd_probe = report["probes"][0]
    assert [f["rule"] for f in etcd_probe["findings"]] == ["linearizable-etcd-read", "long-timeout"]  # strays apart
    assert [f["severity"] for f in report["stray_files"]] == ["critical", "info"]
    assert [c["name"] for c in report["certificates"]["expiring"]] == ["apiserver", "admin.conf", "ca"]
    assert report["versions"]["restarts"][:2] == [{"node": "cp1", "component": "etcd", "restarts": 183},
                                                  {"node": "cp3", "component": "kube-scheduler", "restarts": 183}]


def test_stray_files_listed_by_every_audit_are_kept_once():
    results = copy.deepcopy(inputs.RESULTS)
    results["probes"]["results"][2] = copy.deepcopy(results["probes"]["results"][0])
    assert len(build(results)["stray_files"]) == 2


def test_restarts_at_the_limit_are_not_findings():
    findings = build(max_restarts=183)["findings"]
    assert not [f for f in findings if f.startswith("restarts:")]


def test_failed_checks_become_errors_and_findings_not_filter_errors():
    results = {"etcd": {"failed": True, "msg": "no endpoint answered"}, "manifests": {"results": []},
               "probes": {"results": []}, "certificates": {}, "versions": {"failed": True, "msg": "cannot reach"}}
    report = build(results)
    assert report["etcd"] == {"checked": True, "error": "no endpoint answered"}
    assert report["certificates"] == {"checked": True, "error": "kubeadm_cert_info returned no result"}
    assert report["findings"] == ["etcd: cannot read the cluster: no endpoint answered",
                                  "certificates: cannot read them: kubeadm_cert_info returned no result",
                                  "versions: cannot read the cluster through the API: cannot reach"]


@pytest.mark.parametrize("settings, versions, expected", [
    ({"versions": False}, {}, "disabled (control_plane_report_versions=false)"),
    ({"kubeconfig": ""}, {}, "no kubeconfig set (control_plane_report_kubeconfig)"),
    ({"api_host": "cp2"}, {"skipped": True}, "no kubeconfig at /etc/kubernetes/admin.conf on cp2"),
])
def test_why_versions_were_skipped(settings, versions, expected):
    report = build(dict(inputs.RESULTS, versions=versions), **settings)
    assert report["versions"] == {"checked": False, "skipped": expected}
    assert "versions: skipped, %s" % expected in r.summary(report, "cp1")


def test_summary_states_each_check_then_each_problem():
    report = build()
    lines = r.summary(report, "cp1")
    assert lines[0] == "cp1: 14 problem(s), listed last"
    assert lines[1] == "etcd: NO QUORUM, 1 of 3 voting members healthy (quorum 2), leader NONE, alarms: NOSPACE"
    assert lines[2] == "  cp1: healthy, etcd 3.5.15, db 19.53 MB (40% free pages, 1.0% of quota)"
    assert lines[4] == "  cp3 (learner): UNHEALTHY, etcd 3.5.15, db 4.00 KB (0% free pages, 0.0% of quota): deadline exceeded"
    assert "probe etcd liveness: exec, kills a hung process after 135s; critical linearizable-etcd-read, " \
           "warning long-timeout" in lines
    assert "stray file (info): notes.txt" in lines
    assert "certificates: 3 read, apiserver, admin.conf, ca expiring within 30 days; next: admin.conf in -3 days" in lines
    assert "versions: API server v1.30.4, 1 skew violation(s); mixed versions: kubelet v1.27.1 on w1 (majority v1.30.4), " \
           "kube-proxy v1.29.0 on cluster (majority v1.30.4)" in lines
    assert "restarts: etcd cp1 183, kube-scheduler cp3 183, kube-controller-manager cp3 11, kube-apiserver cp1 4" in lines
    assert lines[-14:] == ["PROBLEM: " + f for f in report["findings"]]


def test_summary_of_a_clean_host():
    results = copy.deepcopy(inputs.RESULTS)
    results["etcd"].update(has_quorum=True, healthy_voting_members=3, leader="cp1", alarms=[])
    for member in results["etcd"]["members"]:
        member.update(healthy=True, error=None)
    report = build(results, probes=False, certificates=False, versions=False)
    lines = r.summary(report, "cp1")
    assert lines[0] == "cp1: nothing wrong found"
    assert lines[-2:] == ["certificates: not checked", "versions: skipped, disabled (control_plane_report_versions=false)"]


def test_filters_refuse_what_is_not_a_report():
    with pytest.raises(Exception, match="missing option"):
        filters.control_plane_report({}, host="cp1")
    with pytest.raises(Exception, match="expects a report"):
        filters.control_plane_report_summary({}, "cp1")
    assert set(filters.FilterModule().filters()) == {"control_plane_report", "control_plane_report_summary"}
