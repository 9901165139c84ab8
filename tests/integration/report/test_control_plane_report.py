"""control_plane_report: the seed outage's evidence, collected read-only from a real 3-member etcd, a lab PKI,
static pod manifests and the Kubernetes API double serving the seed cluster (tests/fixtures/clusters/seed.yaml).
"""
import json
import os

from tests.integration.report.conftest import NEAR_EXPIRY
from tests.lab.ansible_run import ROOT, run_playbook
from tests.lab.trees import tree_digest

PLAYBOOK = os.path.join(ROOT, "playbooks", "control_plane_report.yml")
SUMMARY = "Show the summary of this host"


def summaries(run):
    return {r["host"]: "\n".join(r["result"]["msg"]) for r in run.task(SUMMARY)}


def failures(run):
    return {r["host"]: r["result"]["msg"] for r in run.task("Fail on what is wrong") if r["status"] == "failed"}


def node_files(lab):
    """Everything the report must leave alone: manifests, PKI and kubeconfigs of every node."""
    return {m.name: tree_digest(os.path.join(m.root, "etc/kubernetes")) for m in lab.members}


def test_report_names_the_seed_evidence_and_changes_nothing(control_plane, tmp_path):
    lab = control_plane.lab
    dest = tmp_path / "evidence" / "control-plane.json"
    dest.parent.mkdir()
    inventory = control_plane.inventory(control_plane_report_kubeconfig=control_plane.api.kubeconfig)
    before = node_files(lab)

    run = run_playbook(PLAYBOOK, {"control_plane_report_become": False, "control_plane_report_dest": str(dest)},
                       inventory=inventory)
    assert run.rc == 0, run.output[-4000:]
    assert node_files(lab) == before
    assert not [r for r in run.results if r["result"].get("changed") and r["action"] != "ansible.builtin.copy"]
    assert os.stat(str(dest)).st_mode & 0o777 == 0o600

    report = json.loads(dest.read_text())
    assert sorted(report) == ["cp1", "cp2", "cp3"]
    cp1, cp2 = report["cp1"], report["cp2"]

    # etcd: healthy, with quorum, the real leader.
    leader = lab.leader()
    for host in report.values():
        etcd = host["etcd"]
        assert etcd["has_quorum"] and etcd["healthy_voting_members"] == 3 and etcd["quorum"] == 2
        assert etcd["leader"] == leader and etcd["alarms"] == []
        assert all(m["healthy"] and m["db_size"] > 0 for m in etcd["members"])

    # The seed's exec probe on cp1, and the stray backup that kubelet runs as a second kube-apiserver.
    etcd_probe = next(p for p in cp1["probes"] if p["component"] == "etcd")
    assert {f["rule"] for f in etcd_probe["findings"] if f["severity"] == "critical"} == {"linearizable-etcd-read"}
    assert "get foo" in " ".join(etcd_probe["probe_spec"]["exec"]["command"])
    assert etcd_probe["kill_window"]["hung_seconds"] == 135
    assert [p["present"] for p in cp1["probes"]] == [True, False]   # no kube-apiserver.yaml: not audited
    assert len(cp1["stray_files"]) == 1 and cp1["stray_files"][0]["severity"] == "critical"
    assert cp1["stray_files"][0]["message"].startswith("kube-apiserver.yaml.bak ")
    assert [p["present"] for p in cp2["probes"]] == [False, False] and cp2["stray_files"] == []

    # The near-expiry certificate on cp1 only.
    assert [c["name"] for c in cp1["certificates"]["expiring"]] == [NEAR_EXPIRY]
    assert 0 <= cp1["certificates"]["expiring"][0]["days_left"] <= 5
    assert cp2["certificates"]["expiring"] == []

    # Versions through the API (read once): no violation, one node fat-fingered to v1.11.3, 183 restarts.
    for host in report.values():
        versions = host["versions"]
        assert versions["api_server_version"] == "v1.12.1" and versions["violations"] == []
        assert {(m["node"], m["version"]) for m in versions["mixed_versions"]} == {("antidote-worker-gt5t", "v1.11.3")}
        assert {"node": "antidote-controller-4m3j", "component": "etcd", "restarts": 183} in versions["restarts"]
    assert control_plane.api.count("/version") == 1

    assert any("linearizable-etcd-read" in f for f in cp1["findings"])
    assert any("kube-apiserver.yaml.bak" in f for f in cp1["findings"])
    assert any(f.startswith("certificate: %s expires in" % NEAR_EXPIRY) for f in cp1["findings"])
    assert not any("etcd:" in f or "probe" in f or "certificate" in f for f in cp2["findings"])

    # The summary on screen says the same.
    text = summaries(run)
    assert "etcd: quorum OK, 3 of 3 voting members healthy (quorum 2), leader %s" % leader in text["cp1"]
    assert "critical linearizable-etcd-read" in text["cp1"]
    assert "stray file (critical): kube-apiserver.yaml.bak" in text["cp1"]
    assert "certificates: 11 read, %s expiring within 30 days" % NEAR_EXPIRY in text["cp1"]
    assert "kubelet v1.11.3 on antidote-worker-gt5t (majority v1.12.1)" in text["cp2"]
    assert "PROBLEM: restarts: etcd on antidote-controller-4m3j restarted 183 times" in text["cp2"]
    assert "no manifest at %s/etcd.yaml" % lab.member("cp2").manifests_dir in text["cp2"]


def test_fail_on_findings_lists_what_is_wrong_even_with_a_member_down(control_plane):
    lab = control_plane.lab
    inventory = control_plane.inventory(control_plane_report_kubeconfig=control_plane.api.kubeconfig,
                                        control_plane_report_etcd_command_timeout=2)
    # A hung follower, not the leader: pausing the leader would make the others elect a new one
    # while the report reads them, and "no quorum" would then be the truth of that moment.
    lab.move_leader("cp1")
    lab.pause("cp3")   # hung, not dead: each request to it costs one timeout
    try:
        run = run_playbook(PLAYBOOK, {"control_plane_report_become": False,
                                      "control_plane_report_fail_on_findings": True}, inventory=inventory)
    finally:
        lab.resume("cp3")
    assert run.rc != 0
    failed = failures(run)
    assert sorted(failed) == ["cp1", "cp2", "cp3"], run.output[-4000:]

    cp1 = failed["cp1"]
    for expected in ("linearizable-etcd-read", "kube-apiserver.yaml.bak", "certificate: %s expires in" % NEAR_EXPIRY,
                     "etcd: member cp3 is unhealthy", "restarts: etcd on antidote-controller-4m3j restarted 183 times"):
        assert expected in cp1, cp1
    assert "no quorum" not in cp1   # two of three still answer
    assert "kube-apiserver.yaml.bak" not in failed["cp2"] and NEAR_EXPIRY + " expires" not in failed["cp2"]
    # cp3 only knows its own, hung endpoint: the report says so instead of stopping.
    assert "etcd: cannot read the cluster" in failed["cp3"]
    # The summary came first.
    assert len(run.task(SUMMARY)) == 3


def test_check_mode_without_kubeconfig_skips_the_api_and_writes_nothing(control_plane, tmp_path):
    lab = control_plane.lab
    dest = tmp_path / "report.json"
    missing = str(tmp_path / "no-such" / "admin.conf")
    inventory = control_plane.inventory(control_plane_report_kubeconfig=missing)
    before = node_files(lab)

    run = run_playbook(PLAYBOOK, {"control_plane_report_become": False, "control_plane_report_fail_on_findings": True,
                                  "control_plane_report_dest": str(dest)}, inventory=inventory, check=True, limit="cp2")
    assert run.rc == 0, run.output[-4000:]   # cp2 is clean once the cluster-wide API findings are out of view
    assert [r["status"] for r in run.task("Check version skew")] == ["skipped"]
    assert control_plane.api.requests == []
    assert "versions: skipped, no kubeconfig at %s on cp2" % missing in summaries(run)["cp2"]
    assert "cp2: nothing wrong found" in summaries(run)["cp2"]
    assert not dest.exists()
    assert node_files(lab) == before
