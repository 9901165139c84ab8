"""The demo and the molecule lab CLI work end to end and leave no process behind."""
import argparse
import os
import socket
import stat

import pytest
import yaml

from tests.lab import demo, serve


def etcd_running(pid):
    return serve._is_etcd(pid)


def test_demo_steps_shrink_the_lab_and_tear_it_down(tmp_path, capsys):
    options = argparse.Namespace(keep_dir=str(tmp_path / "demo"), fragment_mib=16, only=None)
    ran = demo.run(demo.STEPS, options)
    out = capsys.readouterr().out
    members = ran.results["defrag"]["members"]
    assert len(members) == 3
    for member in members:
        assert member["action"] == "defragmented"
        assert member["db_size_after"] < member["db_size_before"] / 2
        assert "%s " % member["name"] in out
    assert os.path.exists(ran.results["snapshot"]["path"]), "--keep-dir keeps the snapshot"
    assert "lab stopped" in out
    assert not any(m.process.poll() is None for m in ran.lab.members)
    _assert_probe_section(ran, out)
    _assert_versions_section(ran, out)
    _assert_certs_section(ran, out)
    _assert_recovery_section(ran, out)


def _assert_recovery_section(ran, out):
    """recover brings a lost member back, then a lost quorum, in place, and names its evidence bundles."""
    assert "recovery: member (cp2:" in out and "targets: cp2" in out
    assert "recovery: quorum (quorum lost" in out and "targets: cp1, cp2, cp3" in out
    assert out.count("keys under /demo/: 100") == 2
    assert out.count("evidence bundle: ") == 2
    lab = ran.results["recovery_lab"]
    assert not any(m.healthy() for m in lab.members), "the recovery lab's etcd members are stopped"


def _assert_probe_section(ran, out):
    """The seed's exec probe is flagged, replaced by kubeadm's HTTP probe, and backed up outside the manifests dir."""
    audit, fixed = ran.results["probe_audit"], ran.results["probe_fixed"]["liveness"]
    rules = {f["rule"]: f["severity"] for f in audit["findings"]}
    assert rules["linearizable-etcd-read"] == "critical" and "stray-manifest-file" in rules
    assert audit["kill_window"]["hung_seconds"] == 135      # 15 + 8 failures x max(10s period, 15s timeout)
    assert "critical  linearizable-etcd-read" in out and "135s when each check hangs" in out
    assert "exec" in fixed["before"] and fixed["probe_spec"]["httpGet"]["path"] == "/livez"
    manifests = ran.results["probe_node"].manifests_dir
    text = open(os.path.join(manifests, "etcd.yaml")).read()
    assert "etcdctl" not in text and "/livez" in text and "/readyz" in text
    assert sorted(os.listdir(manifests)) == ["etcd.yaml", "kube-apiserver.yaml.bak"]
    backup = fixed["backup_file"]
    assert not backup.startswith(manifests + os.sep) and "etcdctl" in open(backup).read()
    assert "after:  httpGet http://127.0.0.1:2381/livez" in out
    assert "linearizable-etcd-read" not in {f["rule"] for f in ran.results["probe_after"]["findings"]}


def _assert_versions_section(ran, out):
    result = ran.results["versions"]
    assert result["violations"] == []
    assert [(m["component"], m["node"], m["version"]) for m in result["mixed_versions"] if m["component"] == "kubelet"] \
        == [("kubelet", "antidote-worker-gt5t", "v1.11.3")]
    assert "kubelet on antidote-worker-gt5t is v1.11.3; the rest of the cluster runs v1.12.1" in out
    assert "etcd 183, apiserver 183" in out
    assert "1.13 -> 1.14: upgrade first: kubelet on antidote-worker-gt5t v1.11.3 -> 1.13" in out


def _assert_certs_section(ran, out):
    info, renew = ran.results["cert_info"], ran.results["cert_renew"]
    assert set(info["expiring"]) == set(demo.NEAR_EXPIRY_DAYS)
    renewed = {r["name"]: r for r in renew["renewed"]}
    assert set(renewed) == set(demo.NEAR_EXPIRY_DAYS)
    for name, entry in renewed.items():
        assert entry["new_not_after"] > entry["old_not_after"]
        assert "%s  %s -> %s" % (name.ljust(11), entry["old_not_after"], entry["new_not_after"]) in out
    assert renew["restart_required"] == ["etcd", "kube-apiserver"]
    assert "restart_required (in this order): etcd, kube-apiserver" in out
    key_backup = next(b for b in renewed["etcd-server"]["backups"] if b.endswith(".key"))
    assert stat.S_IMODE(os.stat(key_backup).st_mode) == 0o600
    assert ran.results["cert_renew_again"]["renewed"] == [] and "second run: changed=False, renewed 0" in out


def _port_open(url):
    host, port = url.rsplit("/", 1)[-1].rsplit(":", 1)
    with socket.socket() as probe:
        return probe.connect_ex((host, int(port))) == 0


def test_demo_only_runs_one_section_and_cleans_up_when_a_step_fails(capsys):
    seen = {}

    def remember_and_fail(state):
        seen["demo"] = state
        assert _port_open(state.results["api_url"]), "the API double serves while the demo runs"
        raise RuntimeError("a step failed")

    steps = demo.selected_steps(["versions"])
    assert steps == demo.VERSION_STEPS
    options = argparse.Namespace(keep_dir=None, fragment_mib=16, only=["versions"])
    with pytest.raises(RuntimeError, match="a step failed"):
        demo.run(steps + [("fail", remember_and_fail)], options)
    out = capsys.readouterr().out
    ran = seen["demo"]
    assert "lab stopped (API double) and removed" in out and "[1/2] A node fat-fingered" in out
    assert ran.lab is None, "--only versions starts no etcd lab"
    assert not os.path.exists(ran.workdir), "the scratch dir is removed even when a step fails"
    assert not _port_open(ran.results["api_url"]), "the API double is stopped even when a step fails"


def test_serve_starts_a_lab_that_outlives_it_and_stops_it(tmp_path):
    lab_dir = str(tmp_path / "lab")
    serve.start(lab_dir, size=3, fragment_mib=4)
    state = yaml.safe_load(open(os.path.join(lab_dir, "lab.json")))
    settings = yaml.safe_load(open(os.path.join(lab_dir, "vars.yml")))
    try:
        assert all(etcd_running(pid) for pid in state["pids"])
        assert settings["etcd_maintenance_endpoints"] == state["endpoints"]
        assert set(settings["cplane_lab_db_sizes"]) == {"cp1", "cp2", "cp3"}
        assert min(settings["cplane_lab_db_sizes"].values()) > 4 * 1024 * 1024
    finally:
        serve.stop(lab_dir)
    assert not any(etcd_running(pid) for pid in state["pids"])
    serve.stop(lab_dir)  # a second stop is harmless
