"""_files: atomic writes through symlinks and operating-system errors told as messages."""
import errno
import os

import pytest

from ansible_collections.cplane.kubeadm.plugins.module_utils import _files
from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import CplaneError, InputError


def _tree(tmp_path):
    real = tmp_path / "versions" / "v1"
    real.mkdir(parents=True)
    (real / "etcd.yaml").write_bytes(b"old\n")
    os.chmod(real / "etcd.yaml", 0o640)
    links = tmp_path / "manifests"
    links.mkdir()
    return real / "etcd.yaml", links / "etcd.yaml"


@pytest.mark.parametrize("kind", ["absolute", "relative"])
def test_atomic_write_writes_through_a_symlink_and_keeps_it(tmp_path, kind):
    target, link = _tree(tmp_path)
    os.symlink(str(target) if kind == "absolute" else os.path.join("..", "versions", "v1", "etcd.yaml"), str(link))
    before = os.readlink(str(link))
    written = _files.atomic_write(str(link), b"new\n")
    assert os.path.islink(str(link)) and os.readlink(str(link)) == before
    assert target.read_bytes() == b"new\n" and link.read_bytes() == b"new\n"
    assert written == str(target)
    assert os.stat(str(target)).st_mode & 0o7777 == 0o640  # the target's mode, not the link's
    assert sorted(os.listdir(str(link.parent))) == ["etcd.yaml"]  # no temp file left beside the link
    assert sorted(os.listdir(str(target.parent))) == ["etcd.yaml"]


def test_atomic_write_follows_a_chain_of_links(tmp_path):
    target, link = _tree(tmp_path)
    os.symlink("v1", str(tmp_path / "versions" / "current"))
    os.symlink(os.path.join("..", "versions", "current", "etcd.yaml"), str(link))
    _files.atomic_write(str(link), b"new\n")
    assert os.path.islink(str(link)) and target.read_bytes() == b"new\n"


def test_atomic_write_refuses_a_dangling_link(tmp_path):
    _target, link = _tree(tmp_path)
    os.symlink("../versions/v2/etcd.yaml", str(link))
    with pytest.raises(InputError) as err:
        _files.atomic_write(str(link), b"new\n")
    assert str(link) in err.value.msg and "does not exist" in err.value.msg
    assert os.path.islink(str(link)) and not os.path.exists(str(tmp_path / "versions" / "v2"))


@pytest.mark.parametrize("code,words", [(errno.EROFS, "read-only"), (errno.ENOSPC, "full"),
                                        (errno.EACCES, "become: true")])
def test_os_errors_become_a_message_naming_the_path_and_leave_nothing(tmp_path, monkeypatch, code, words):
    path = tmp_path / "etcd.yaml"
    path.write_bytes(b"old\n")

    def failing_rename(src, dst):
        raise OSError(code, os.strerror(code), dst)
    monkeypatch.setattr(_files.os, "rename", failing_rename)
    with pytest.raises(CplaneError) as err:
        _files.atomic_write(str(path), b"new\n")
    assert err.value.msg.startswith("cannot write %s: %s." % (path, os.strerror(code)))
    assert words in err.value.msg
    assert path.read_bytes() == b"old\n" and os.listdir(str(tmp_path)) == ["etcd.yaml"]


def test_backup_into_a_path_that_is_not_a_directory_fails_clearly(tmp_path):
    path = tmp_path / "etcd.yaml"
    path.write_bytes(b"old\n")
    (tmp_path / "backups").write_bytes(b"a file where a directory should be")
    with pytest.raises(CplaneError) as err:
        _files.backup_file(str(path), str(tmp_path / "backups"))
    assert "cannot back up %s to %s" % (path, tmp_path / "backups") in err.value.msg
    assert "Not a directory" in err.value.msg


def test_two_backups_of_one_file_in_the_same_second_keep_both(tmp_path):
    from ansible_collections.cplane.kubeadm.plugins.module_utils import _files
    manifest = tmp_path / "etc" / "etcd.yaml"
    manifest.parent.mkdir()
    manifest.write_text("original\n")
    first = _files.backup_file(str(manifest), str(tmp_path / "backups"), forbidden_dirs=(), stamp="20261201T000000Z")
    manifest.write_text("after the first change\n")
    second = _files.backup_file(str(manifest), str(tmp_path / "backups"), forbidden_dirs=(), stamp="20261201T000000Z")
    assert first != second and "20261201T000000Z.1" in second
    assert open(first).read() == "original\n" and open(second).read() == "after the first change\n"
