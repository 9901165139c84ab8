"""static_pod_probe through the real ansible CLI on filesystems that refuse writes, and on symlinks.

The read-only and full filesystems are real mounts (tmpfs), so the module meets the errno the
kernel gives, not a simulation; they need root with CAP_SYS_ADMIN (the lab's CI runs as root).
"""
import os
import subprocess

import pytest

from tests.lab.ansible_run import run_module

MANIFEST = (b"apiVersion: v1\nkind: Pod\nmetadata:\n  name: etcd\n  namespace: kube-system\nspec:\n  containers:\n"
            b"  - image: registry.k8s.io/etcd:3.5.12-0\n    livenessProbe:\n      failureThreshold: 8\n"
            b"      httpGet:\n        host: 127.0.0.1\n        path: /health\n        port: 2381\n"
            b"        scheme: HTTP\n      initialDelaySeconds: 10\n      periodSeconds: 10\n"
            b"      timeoutSeconds: 15\n    name: etcd\n")


@pytest.fixture
def tmpfs(tmp_path):
    mounts = []

    def mount(path, options):
        os.makedirs(path, exist_ok=True)
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", path], capture_output=True, check=False)
        if proc.returncode != 0:
            pytest.skip("cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN): %s" % proc.stderr.decode().strip())
        mounts.append(path)
        return path
    yield mount
    for path in reversed(mounts):
        subprocess.run(["umount", "-l", path], check=False)


def _assert_clean_failure(result, path, reason):
    assert result["failed"], result
    assert "MODULE FAILURE" not in result["_stdout"] and "Traceback" not in result["_stdout"], result["_stdout"]
    assert result["msg"].startswith("cannot write %s: %s." % (path, reason)), result["msg"]


def test_read_only_filesystem_fails_with_a_message_and_makes_no_backup(tmp_path, tmpfs):
    manifests = tmpfs(str(tmp_path / "manifests"), "size=1m")
    path = os.path.join(manifests, "etcd.yaml")
    with open(path, "wb") as handle:
        handle.write(MANIFEST)
    subprocess.run(["mount", "-o", "remount,ro", manifests], check=True)
    backups = tmp_path / "backups"
    result = run_module("static_pod_probe", dict(manifest=path, state="absent", backup_dir=str(backups)))
    _assert_clean_failure(result, path, "Read-only file system")
    assert "remount it read-write" in result["msg"]
    assert open(path, "rb").read() == MANIFEST
    # A backup stands for a change that happened; none did.
    assert not backups.exists() or not [f for _d, _s, files in os.walk(str(backups)) for f in files]


def test_full_filesystem_fails_with_a_message_and_leaves_no_temp_file(tmp_path, tmpfs):
    manifests = tmpfs(str(tmp_path / "manifests"), "size=64k")
    path = os.path.join(manifests, "etcd.yaml")
    with open(path, "wb") as handle:
        handle.write(MANIFEST)
    fd = os.open(os.path.join(manifests, ".filler"), os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    backups = tmp_path / "backups"
    result = run_module("static_pod_probe", dict(manifest=path, state="absent", backup_dir=str(backups)))
    _assert_clean_failure(result, path, "No space left on device")
    assert sorted(os.listdir(manifests)) == [".filler", "etcd.yaml"]
    assert open(path, "rb").read() == MANIFEST
    assert not [f for _d, _s, files in os.walk(str(backups)) for f in files]


@pytest.mark.parametrize("kind", ["absolute", "relative"])
def test_a_symlinked_manifest_keeps_its_link_and_the_target_changes(tmp_path, kind):
    store = tmp_path / "store"
    store.mkdir()
    target = store / "etcd.yaml"
    target.write_bytes(MANIFEST)
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    link = manifests / "etcd.yaml"
    os.symlink(str(target) if kind == "absolute" else "../store/etcd.yaml", str(link))
    result = run_module("static_pod_probe", dict(manifest=str(link), state="absent", backup_dir=str(tmp_path / "b")))
    assert result["changed"] and not result.get("failed"), result
    assert os.path.islink(str(link)) and os.path.realpath(str(link)) == str(target)
    assert b"livenessProbe" not in target.read_bytes()
    assert open(result["backup_file"], "rb").read() == MANIFEST
    assert sorted(os.listdir(str(manifests))) == ["etcd.yaml"]
