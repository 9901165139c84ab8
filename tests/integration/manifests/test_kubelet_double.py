"""The kubelet double does what kubelet does with a manifests directory."""
import os
import shutil

import yaml

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
