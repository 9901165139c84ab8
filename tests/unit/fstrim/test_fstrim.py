"""_fstrim: util-linux fstrim's answers, parsed; the real program on this machine's filesystems."""
import os
import subprocess

import pytest

from ansible_collections.cplane.kubeadm.plugins.module_utils import _fstrim
from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import InputError, OperationFailed

HAVE_FSTRIM = bool(_fstrim.shutil.which("fstrim") or os.access("/usr/sbin/fstrim", os.X_OK))


def fake(rc, stdout="", stderr=""):
    def runner(command, **kwargs):
        return subprocess.CompletedProcess(command, rc, stdout, stderr)
    return runner


# Output of util-linux 2.38.1 on ext4 and on /proc, /dev/shm (captured on this machine).
def test_parse_trimmed_and_not_supported():
    assert _fstrim.parse_output(0, "/var/lib/etcd: 38.5 GiB (41348415488 bytes) trimmed\n", "") == (True, 41348415488)
    assert _fstrim.parse_output(1, "", "fstrim: /dev/shm: the discard operation is not supported\n") == (False, 0)
    assert _fstrim.parse_output(1, "", "fstrim: /x: FITRIM ioctl failed: Input/output error\n") is None


def test_not_supported_is_a_result_not_a_failure(tmp_path):
    result = _fstrim.run_fstrim(str(tmp_path), fstrim_path=_true(), runner=fake(
        1, stderr="fstrim: %s: the discard operation is not supported\n" % tmp_path))
    assert result["supported"] is False and result["changed"] is False
    assert "not supported" in result["message"]


def test_other_errors_fail_with_fstrims_message(tmp_path):
    with pytest.raises(OperationFailed, match="exit 1.*Input/output error"):
        _fstrim.run_fstrim(str(tmp_path), fstrim_path=_true(), runner=fake(
            1, stderr="fstrim: %s: FITRIM ioctl failed: Input/output error\n" % tmp_path))


def test_a_missing_directory_or_program_is_refused(tmp_path):
    with pytest.raises(InputError, match="is not a directory.*etcd data directory"):
        _fstrim.run_fstrim(str(tmp_path / "absent"))
    with pytest.raises(InputError, match="fstrim was not found at"):
        _fstrim.run_fstrim(str(tmp_path), fstrim_path=str(tmp_path / "no-fstrim"))


def test_check_mode_runs_nothing(tmp_path):
    result = _fstrim.run_fstrim(str(tmp_path), fstrim_path=_true(), check_mode=True, runner=None)
    assert result["changed"] is True and result["message"].startswith("would run ")


@pytest.mark.skipif(not HAVE_FSTRIM or os.geteuid() != 0, reason="needs util-linux fstrim and root (FITRIM)")
def test_the_real_fstrim_on_tmpfs_says_not_supported():
    if not os.path.isdir("/dev/shm"):
        pytest.skip("no /dev/shm")
    result = _fstrim.run_fstrim("/dev/shm")
    assert result["supported"] is False and "the discard operation is not supported" in result["message"]


def _true():
    return "/bin/true" if os.access("/bin/true", os.X_OK) else "/usr/bin/true"
