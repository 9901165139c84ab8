"""seeds/000, reproduced: kubeadm 1.12's exec liveness probe (`etcdctl get foo`) kills healthy etcd.

Three members run as static pods under kubelet doubles, time-scaled 10x (every figure below is in
manifest seconds).  Losing quorum makes the linearizable read time out, so kubelet kills the one
member still running, again and again.  The module flags the probe; with kubeadm's recommended
probes the same fault no longer restarts anything, and the cluster recovers when members return.
"""
import hashlib
import os
import time

import pytest

from tests.lab.ansible_run import run_module
from tests.lab.static_pods import KubeletEtcdLab

SCALE = 0.06


@pytest.fixture
def seed_lab(tmp_path):
    with KubeletEtcdLab(str(tmp_path / "lab"), size=3, probe="seed", time_scale=SCALE) as lab:
        yield lab


def _kills(lab, name):
    events = lab.double(name).pod(lab.pod_name(name))["containers"][0]["events"]
    return [event[1] for event in events if "Killed: liveness probe failed" in event[1]]


def test_seed_probe_kills_the_surviving_member_and_recommended_probe_does_not(seed_lab, tmp_path):
    lab = seed_lab
    backups = str(tmp_path / "backups")
    lab.etcdctl("put", "foo", "bar")
    first_pid = lab.pid("cp1")

    # The fault: two members down, quorum lost.  The survivor is healthy but cannot serve `get foo`.
    lab.remove_manifest("cp2")
    lab.remove_manifest("cp3")
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
    lab.restore_manifest("cp2")
    lab.restore_manifest("cp3")
    lab.wait_healthy(timeout=60)

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
    # ...but etcd 3.5.1 ignores serializable=true, so kubeadm's own probe still kills on quorum loss.
    assert rules["etcd-health-ignores-serializable"] == "critical"
    restarts = lab.restart_count("cp1")
    lab.remove_manifest("cp2")
    lab.remove_manifest("cp3")
    lab.double("cp1").wait_for(lambda d: lab.restart_count("cp1") > restarts, timeout=40, what="cp1 killed again")
    assert "RAFT NO LEADER" in _kills(lab, "cp1")[-1]
    lab.restore_manifest("cp2")
    lab.restore_manifest("cp3")
    lab.wait_healthy(timeout=60)

    # The seed's emergency fix for this etcd version: no liveness probe (startup probe kept).
    result = run_module("static_pod_probe", dict(manifest=path, state="absent", backup_dir=backups))
    assert result["changed"] and result["probe_spec"] is None, result
    _wait_restarted_with_new_manifest(lab, "cp1")
    lab.wait_healthy(timeout=60)

    # The same fault, for longer than the seed probe's kill window (135 s, at most 145 s): no restart, same process.
    restarts, pid = lab.restart_count("cp1"), lab.pid("cp1")
    lab.remove_manifest("cp2")
    lab.remove_manifest("cp3")
    time.sleep(200 * SCALE)
    assert lab.restart_count("cp1") == restarts
    assert lab.pid("cp1") == pid
    assert not _kills(lab, "cp1")

    # And the cluster recovers when the members return.
    lab.restore_manifest("cp2")
    lab.restore_manifest("cp3")
    lab.wait_healthy(timeout=60)
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
