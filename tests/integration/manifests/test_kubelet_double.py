"""The kubelet double does what kubelet does with a manifests directory."""
import os
import shutil

import pytest
import yaml

from ansible_collections.cplane.kubeadm.plugins.module_utils._manifests import probes
from tests.lab.kubelet_double import KubeletDouble
from tests.lab.static_pods import dump


def _edit(path, change):
    with open(path) as handle:
        pod = yaml.safe_load(handle)
    change(pod)
    tmp = os.path.join(os.path.dirname(path), ".edit.tmp")
    with open(tmp, "wb") as handle:
        handle.write(dump(pod))
    return tmp


def test_manifest_removed_stops_pod_and_readded_starts_it(kubelet_etcd1):
    lab = kubelet_etcd1
    double = lab.double("cp1")
    first_pid = lab.pid("cp1")
    assert double.pod("etcd-cp1")["containers"][0]["state"] == "running"
    lab.remove_manifest("cp1")
    assert double.pods() == []
    assert not lab.members[0].healthy()
    lab.restore_manifest("cp1")
    assert lab.pid("cp1") not in (None, first_pid)
    assert lab.restart_count("cp1") == 0  # a new pod, not a restarted container


def test_changed_manifest_replaces_the_pod(kubelet_etcd1):
    lab = kubelet_etcd1
    double = lab.double("cp1")
    old_uid = double.pod("etcd-cp1")["uid"]
    old_pid = lab.pid("cp1")
    path = lab.manifest_path("cp1")
    os.rename(_edit(path, lambda pod: pod["metadata"]["annotations"].update({"lab/edited": "1"})), path)
    double.wait_for(lambda d: d.pod("etcd-cp1") and d.pod("etcd-cp1")["uid"] != old_uid
                    and d.pod("etcd-cp1")["containers"][0]["pid"], timeout=30, what="new pod")
    assert lab.pid("cp1") != old_pid
    lab.wait_healthy(timeout=30)


def test_killed_container_is_restarted_and_counted(kubelet_etcd1):
    lab = kubelet_etcd1
    old_pid = lab.pid("cp1")
    lab.kill("cp1")
    lab.double("cp1").wait_for(lambda d: lab.restart_count("cp1") == 1 and lab.pid("cp1") not in (None, old_pid),
                               timeout=30, what="restart")
    lab.wait_healthy(timeout=30)


def test_bak_file_with_same_pod_name_replaces_the_real_manifest(kubelet_etcd1):
    """kubelet keys file pods by namespace/name: etcd.yaml.bak (read after etcd.yaml) wins."""
    lab = kubelet_etcd1
    double = lab.double("cp1")
    path = lab.manifest_path("cp1")
    bak = path + ".bak"
    os.rename(_edit(path, lambda pod: pod["metadata"]["annotations"].update({"lab/stale-copy": "1"})), bak)
    double.wait_for(lambda d: (d.pod("etcd-cp1") or {}).get("manifest_file") == bak, timeout=30,
                    what="etcd.yaml.bak running")
    assert double.shadowed() == {path: ("kube-system", "etcd")}
    assert len(double.pods()) == 1


def test_bak_file_with_another_pod_name_runs_as_a_second_pod(kubelet_etcd1):
    lab = kubelet_etcd1
    double = lab.double("cp1")
    path = lab.manifest_path("cp1")
    shutil.copy(_edit(path, lambda pod: pod["metadata"].update(name="etcd-old")), path + ".bak")
    os.unlink(os.path.join(os.path.dirname(path), ".edit.tmp"))
    # The copy's etcd cannot bind the member's ports: it crash-loops next to the real member.
    double.wait_for(lambda d: d.pod("etcd-old-cp1") is not None and d.restart_count("etcd-old-cp1") >= 2,
                    timeout=40, what="second pod crash-looping")
    assert {p["name"] for p in double.pods()} == {"etcd-cp1", "etcd-old-cp1"}
    assert lab.members[0].healthy()
    os.unlink(path + ".bak")
    double.wait_for(lambda d: d.pod("etcd-old-cp1") is None, timeout=30, what="second pod gone")


def _hung_probe_pod(timing):
    """A pod whose liveness check hangs (an etcdctl stuck on a lost quorum does the same)."""
    probe = dict(timing, exec={"command": ["sleep", "3600"]})
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "hung", "namespace": "kube-system"},
            "spec": {"containers": [{"name": "etcd", "image": "registry.k8s.io/etcd:3.5.1-0",
                                     "command": ["sleep", "3600"], "livenessProbe": probe}],
                     "terminationGracePeriodSeconds": 1}}


@pytest.mark.parametrize("timing", [
    dict(initialDelaySeconds=10, periodSeconds=10, timeoutSeconds=15, failureThreshold=8),   # kubeadm's liveness
    dict(initialDelaySeconds=15, periodSeconds=10, timeoutSeconds=15, failureThreshold=8),   # the first seed's
])
def test_a_hung_probe_is_killed_when_the_kill_window_says(tmp_path, timing):
    scale = 0.05
    window = probes.kill_window(dict(timing, exec={"command": ["true"]}))
    expected, latest = window["hung_seconds"], window["hung_seconds_latest"]
    root = tmp_path / "node"
    manifests = root / "etc/kubernetes/manifests"
    manifests.mkdir(parents=True)
    (manifests / "hung.yaml").write_bytes(dump(_hung_probe_pod(timing)))
    with KubeletDouble("cp1", str(root), time_scale=scale) as double:
        double.wait_for(lambda d: any("kill requested" in e[1] for e in _events(d)), timeout=expected * scale * 3,
                        what="the liveness kill")
        events = _events(double)
    started = next(at for at, message in events if message.startswith("started"))
    killed = next(at for at, message in events if message.startswith("kill requested"))
    failures = [at for at, message in events if message.startswith("liveness probe failed")]
    measured = killed - started
    # The first probe waits for the ticker's first tick after initialDelaySeconds (at most a period
    # later); each probe costs a process start and kill on top of its timeout (under 1 s in manifest
    # units, 50 ms real, on a loaded 2-core machine).
    assert expected <= measured <= latest + 8 * 1.0, (measured, expected, latest, events)
    # after the first, timed-out probes follow each other every max(period, timeout) = 15 s, not 20 s
    gaps = [b - a for a, b in zip(failures, failures[1:])]
    assert len(gaps) == 7 and all(14.9 <= gap <= 16.5 for gap in gaps), (gaps, events)


def _events(double):
    pod = double.pod("hung-cp1")
    return pod["containers"][0]["events"] if pod else []
