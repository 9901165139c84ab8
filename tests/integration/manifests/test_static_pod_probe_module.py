"""cplane.kubeadm.static_pod_probe through the real ansible CLI, on manifests kubelet doubles run."""
import os
import shutil

from tests.lab.ansible_run import run_module


def _snapshot(directory):
    return {name: open(os.path.join(directory, name), "rb").read() for name in sorted(os.listdir(directory))}


def test_bak_files_are_reported_and_backups_never_land_in_the_manifests_dir(kubelet_etcd1, tmp_path):
    lab = kubelet_etcd1
    manifests = lab.member("cp1").manifests_dir
    with open(os.path.join(manifests, "kube-apiserver.yaml.bak"), "w") as handle:
        handle.write("apiVersion: v1\nkind: Pod\nmetadata: {name: kube-apiserver, namespace: kube-system}\n"
                     "spec: {containers: [{name: kube-apiserver, image: 'registry.k8s.io/kube-apiserver:v1.30.2'}]}\n")
    audit = run_module("static_pod_probe", dict(name="etcd", manifest_dir=manifests))
    stray = [f for f in audit["findings"] if f["rule"] == "stray-manifest-file"]
    assert len(stray) == 1 and "kube-apiserver.yaml.bak" in stray[0]["message"], audit
    # ... and the double, like kubelet, runs it (as a pod it cannot start: no apiserver binary here).
    lab.double("cp1").wait_for(lambda d: d.pod("kube-apiserver-cp1") is not None, timeout=10, what="bak pod")

    refused = run_module("static_pod_probe", dict(name="etcd", manifest_dir=manifests, state="present",
                                                  probe="startup", recommended=True,
                                                  backup_dir=os.path.join(manifests, "backups")))
    assert refused["failed"] and "kubelet runs every file there" in refused["msg"]
    backups = str(tmp_path / "backups")
    before = _snapshot(manifests)
    changed = run_module("static_pod_probe", dict(name="etcd", manifest_dir=manifests, state="absent",
                                                  probe="startup", backup_dir=backups))
    assert changed["changed"] and changed["backup_file"].startswith(backups + os.sep)
    assert sorted(os.listdir(manifests)) == sorted(before)  # nothing new where kubelet looks
    assert open(changed["backup_file"], "rb").read() == before["etcd.yaml"]


def test_check_mode_and_second_run_leave_the_manifest_byte_identical(kubelet_etcd1, tmp_path):
    lab = kubelet_etcd1
    path = lab.manifest_path("cp1")
    original = open(path, "rb").read()
    spec = {"httpGet": {"host": "127.0.0.1", "path": "/health?exclude=NOSPACE", "port": lab.members[0].metrics_port,
                        "scheme": "HTTP"}, "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 3}
    args = dict(manifest=path, state="present", spec=spec, backup_dir=str(tmp_path / "b"))
    check = run_module("static_pod_probe", args, check=True, diff=True)
    assert check["changed"] and "/health?exclude=NOSPACE" in check["diff"]["after"], check
    assert open(path, "rb").read() == original and not os.path.exists(str(tmp_path / "b"))
    first = run_module("static_pod_probe", args)
    assert first["changed"]
    written = open(path, "rb").read()
    second = run_module("static_pod_probe", args)
    assert not second["changed"] and "backup_file" not in second
    assert open(path, "rb").read() == written
    again_check = run_module("static_pod_probe", args, check=True)
    assert not again_check["changed"]


def test_measure_runs_the_http_probe_like_kubelet_and_skips_exec_without_crictl(kubelet_etcd1, tmp_path):
    lab = kubelet_etcd1
    result = run_module("static_pod_probe", dict(manifest=lab.manifest_path("cp1"), probe="startup", measure=5))
    m = result["measurements"]
    assert m["runs"] == 5 and m["failures"] == 0 and len(m["latencies"]) == 5
    assert 0 < m["latency_max"] < m["timeout_seconds"]
    # A probe aimed where nothing listens fails every run, each counted against its timeout.
    from tests.lab.ports import free_port
    from tests.lab.static_pods import dump, etcd_pod
    closed = str(tmp_path / "closed.yaml")
    with open(closed, "wb") as handle:
        handle.write(dump(etcd_pod(lab.members[0], lab, probe={"livenessProbe": {
            "tcpSocket": {"host": "127.0.0.1", "port": free_port()}, "timeoutSeconds": 1}})))
    refused = run_module("static_pod_probe", dict(manifest=closed, measure=3))
    assert refused["measurements"]["failures"] == 3, refused["measurements"]
    seed = str(tmp_path / "seed.yaml")
    with open(seed, "wb") as handle:
        handle.write(dump(etcd_pod(lab.members[0], lab, probe="seed")))
    skipped = run_module("static_pod_probe", dict(manifest=seed, measure=3),
                         env={"PATH": os.path.dirname(shutil.which("ansible") or "/usr/bin") + ":/usr/bin:/bin"})
    assert skipped["measurements"]["skipped"] and "crictl" in skipped["measurements"]["reason"]


def test_bad_input_fails_with_a_message_and_touches_nothing(tmp_path):
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    cases = {
        "broken.yaml": (b"apiVersion: v1\nkind: Pod\nspec: [oops\n", "not valid YAML"),
        "deploy.yaml": (b"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n", "not a static pod"),
        "two.yaml": (b"apiVersion: v1\nkind: Pod\nmetadata: {name: two}\nspec:\n  containers:\n"
                     b"  - {name: a, image: 'registry.k8s.io/etcd:3.5.12-0'}\n  - {name: b, image: busybox}\n",
                     "has 2 containers"),
    }
    for name, (content, message) in cases.items():
        (manifests / name).write_bytes(content)
        result = run_module("static_pod_probe", dict(manifest=str(manifests / name), state="absent",
                                                     backup_dir=str(tmp_path / "b")))
        assert result["failed"] and message in result["msg"] and str(manifests / name) in result["msg"], result
        assert "Traceback" not in result["_stdout"]
        assert (manifests / name).read_bytes() == content
    missing = run_module("static_pod_probe", dict(manifest=str(manifests / "none.yaml")))
    assert missing["failed"] and "cannot read manifest" in missing["msg"]
    no_container = run_module("static_pod_probe", dict(manifest=str(manifests / "two.yaml"), container="c"))
    assert no_container["failed"] and "no container 'c'" in no_container["msg"]
    unreadable = manifests / "two.yaml"
    os.chmod(unreadable, 0)
    try:
        if os.geteuid() != 0:
            result = run_module("static_pod_probe", dict(manifest=str(unreadable)))
            assert result["failed"] and "cannot read manifest" in result["msg"]
    finally:
        os.chmod(unreadable, 0o600)
    assert not (tmp_path / "b").exists()
