"""seeds/000, reproduced: kubeadm 1.12's exec liveness probe (`etcdctl get foo`) kills healthy etcd.

Three members run as static pods under kubelet doubles, time-scaled 10x (every figure below is in
manifest seconds).  Losing quorum makes the linearizable read time out, so kubelet kills the one
member still running, again and again.  The module flags the probe.  kubeadm's recommended probes
still kill etcd 3.5.1 (it ignores serializable=true); on etcd 3.5.latest (built by
scripts/lab-binaries) they never kill the survivor, however long quorum stays lost.
"""
import hashlib
import os
import time

import pytest

from tests.lab.ansible_run import run_module
from tests.lab.binaries import latest_etcd
from tests.lab.static_pods import KubeletEtcdLab

SCALE = 0.06


@pytest.fixture
def seed_lab(tmp_path):
    with KubeletEtcdLab(str(tmp_path / "lab"), size=3, probe="seed", time_scale=SCALE) as lab:
        yield lab


def _kills(lab, name):
    events = lab.double(name).pod(lab.pod_name(name))["containers"][0]["events"]
    return [event[1] for event in events if "Killed: liveness probe failed" in event[1]]


def _lose_quorum(lab):
    """Two of the three members stopped (manifests moved out): cp1 runs on without quorum."""
    lab.remove_manifest("cp2")
    lab.remove_manifest("cp3")


def _regain_quorum(lab):
    lab.restore_manifest("cp2")
    lab.restore_manifest("cp3")
    lab.wait_healthy(timeout=60)


def test_seed_probe_kills_the_surviving_member_and_recommended_probe_does_not(seed_lab, tmp_path):
    lab = seed_lab
    backups = str(tmp_path / "backups")
    lab.etcdctl("put", "foo", "bar")
    first_pid = lab.pid("cp1")

    # The fault: two members down, quorum lost.  The survivor is healthy but cannot serve `get foo`.
    _lose_quorum(lab)
    lab.double("cp1").wait_for(lambda d: lab.restart_count("cp1") >= 2, timeout=60, what="cp1 restarted twice")
    assert lab.pid("cp1") != first_pid
    kills = _kills(lab, "cp1")
    assert len(kills) >= 2 and "timed out" in kills[0]

    # The audit names the cause.
    audit = run_module("static_pod_probe", dict(manifest=lab.manifest_path("cp1")))
    assert not audit["failed"] and not audit["changed"], audit
    critical = {f["rule"] for f in audit["findings"] if f["severity"] == "critical"}
    assert "linearizable-etcd-read" in critical
    assert audit["kill_window"]["hung_seconds"] == 135  # 15 + 8 x 15: timed-out checks follow each other at once

    # Members return; the cluster recovers even with the bad probe.
    _regain_quorum(lab)

    # kubeadm's probes for the etcd in the image (3.5.1) on the survivor: no linearizable read any more...
    path = lab.manifest_path("cp1")
    for probe in ("startup", "liveness"):
        result = run_module("static_pod_probe", dict(manifest=path, probe=probe, state="present",
                                                     recommended=True, backup_dir=backups))
        assert not result["failed"] and result["changed"], result
        assert result["backup_file"].startswith(backups + os.sep)
        _wait_restarted_with_new_manifest(lab, "cp1")
    assert not any(name != "etcd.yaml" for name in os.listdir(lab.member("cp1").manifests_dir))
    after = run_module("static_pod_probe", dict(manifest=path))
    assert after["probe_spec"]["httpGet"]["path"] == "/health?exclude=NOSPACE&serializable=true"
    rules = {f["rule"]: f["severity"] for f in after["findings"]}
    assert "linearizable-etcd-read" not in rules and "no-startup-probe" not in rules
    # ...but etcd 3.5.1 ignores serializable=true, so kubeadm's own probe still kills on quorum loss
    # (on 3.5.11+ it does not: the test below).
    assert rules["etcd-health-ignores-serializable"] == "critical"
    restarts = lab.restart_count("cp1")
    _lose_quorum(lab)
    lab.double("cp1").wait_for(lambda d: lab.restart_count("cp1") > restarts, timeout=40, what="cp1 killed again")
    assert "RAFT NO LEADER" in _kills(lab, "cp1")[-1]
    _regain_quorum(lab)

    # The seed's emergency fix for this etcd version: no liveness probe (startup probe kept).
    result = run_module("static_pod_probe", dict(manifest=path, state="absent", backup_dir=backups))
    assert result["changed"] and result["probe_spec"] is None, result
    _wait_restarted_with_new_manifest(lab, "cp1")
    lab.wait_healthy(timeout=60)

    # The same fault, for longer than the seed probe's kill window (135 s, at most 145 s): no restart, same process.
    restarts, pid = lab.restart_count("cp1"), lab.pid("cp1")
    _lose_quorum(lab)
    time.sleep(200 * SCALE)
    assert lab.restart_count("cp1") == restarts
    assert lab.pid("cp1") == pid
    assert not _kills(lab, "cp1")

    # And the cluster recovers when the members return.
    _regain_quorum(lab)
    lab.etcdctl("put", "after", "recovery")
    assert lab.etcdctl("get", "after", "--print-value-only").stdout.strip() == "recovery"


def _wait_restarted_with_new_manifest(lab, name):
    """Wait until the pod runs the manifest now on disk and its container has started."""
    with open(lab.manifest_path(name), "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()

    def running(double):
        pod = double.pod(lab.pod_name(name)) or {}
        return pod.get("manifest_sha256") == digest and pod["containers"][0]["started"]
    lab.double(name).wait_for(running, timeout=60, what="%s running its new manifest" % name)


def test_on_etcd_3_5_latest_kubeadms_probes_outlive_quorum_loss_and_the_seed_probe_does_not(tmp_path):
    """#4's requirement, on an etcd that honours it: 3.5.11+ serves /livez (no raft-leader check)
    and /readyz; kubeadm (1.36, 1.37: cmd/kubeadm/app/phases/etcd/local.go) probes those.  The
    survivor of a quorum loss is reported not ready but is never killed, however long it lasts."""
    version = latest_etcd("3.5")
    with KubeletEtcdLab(str(tmp_path / "lab"), size=3, probe="seed", time_scale=SCALE, etcd_version=version) as lab:
        assert lab.etcdctl("version").stdout.startswith("etcdctl version: %s" % version)
        lab.etcdctl("put", "foo", "bar")

        # The seed's exec probe kills the survivor on this etcd too.
        first_pid = lab.pid("cp1")
        _lose_quorum(lab)
        lab.double("cp1").wait_for(lambda d: lab.restart_count("cp1") >= 1, timeout=60, what="cp1 killed")
        assert lab.pid("cp1") != first_pid
        assert "timed out" in _kills(lab, "cp1")[0]
        _regain_quorum(lab)

        # kubeadm's probes for the image's etcd, written by the module.
        path = lab.manifest_path("cp1")
        for probe in ("startup", "liveness", "readiness"):
            result = run_module("static_pod_probe", dict(manifest=path, probe=probe, state="present",
                                                         recommended=True, backup_dir=str(tmp_path / "backups")))
            assert not result["failed"] and result["changed"], result
            _wait_restarted_with_new_manifest(lab, "cp1")
        after = run_module("static_pod_probe", dict(manifest=path))
        assert after["probe_spec"]["httpGet"]["path"] == "/livez"
        assert not [f for f in after["findings"] if f["severity"] == "critical"], after["findings"]
        lab.double("cp1").wait_for(lambda d: d.pod(lab.pod_name("cp1"))["containers"][0]["ready"],
                                   timeout=60, what="cp1 ready")

        # Quorum lost for longer than the seed probe's kill window (170 s): /readyz fails, so the
        # member is reported not ready, but /livez passes: no kill, same process.
        restarts, pid = lab.restart_count("cp1"), lab.pid("cp1")
        _lose_quorum(lab)
        time.sleep(200 * SCALE)
        container = lab.double("cp1").pod(lab.pod_name("cp1"))["containers"][0]
        assert not container["ready"]
        assert any("readiness probe failed" in event[1] for event in container["events"])
        assert not any("liveness probe failed" in event[1] for event in container["events"])
        assert lab.restart_count("cp1") == restarts and lab.pid("cp1") == pid
        assert not _kills(lab, "cp1")

        _regain_quorum(lab)
        lab.etcdctl("put", "after", "recovery")
        assert lab.etcdctl("get", "after", "--print-value-only").stdout.strip() == "recovery"
