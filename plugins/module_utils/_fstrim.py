# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``fstrim -v`` on the filesystem that holds a directory (etcd's data directory after a defrag).

Defragmentation rewrites etcd's whole database file and frees the old one; trimming tells the
disk (SSD, thin volume, cloud disk) that those blocks are free. The maintenance guide of the
second seed runs ``fstrim`` after its nightly defrag and backup.

What util-linux's fstrim (sys-utils/fstrim.c, ``fstrim_filesystem``) does with one path: it opens
it, calls the FITRIM ioctl on its filesystem (any directory of the filesystem will do, not only the
mount point), and prints ``<path>: <size> (<bytes> bytes) trimmed`` with ``-v``. When the
filesystem or device cannot discard (EOPNOTSUPP, ENOTTY, EBADF, ENOSYS: tmpfs, overlay, many
virtual disks) it prints ``<path>: the discard operation is not supported`` and exits 1. Checked
with util-linux 2.38.1 on /proc, /dev/shm (not supported) and ext4 (trimmed). That case is logged,
not a failure: there is nothing to trim there.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import shutil
import subprocess
import time

from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import InputError, OperationFailed

TRIMMED = re.compile(r"\((\d+) bytes\) trimmed")
NOT_SUPPORTED = ("the discard operation is not supported", "not supported")
TIMEOUT = 3600


def parse_output(rc, stdout, stderr):
    """(supported, trimmed_bytes) from fstrim's exit code and output; None when it failed otherwise."""
    text = "%s\n%s" % (stdout, stderr)
    if rc == 0:
        match = TRIMMED.search(text)
        return True, int(match.group(1)) if match else 0
    if any(phrase in text.lower() for phrase in NOT_SUPPORTED):
        return False, 0
    return None


def find_fstrim(fstrim_path=None):
    path = fstrim_path or shutil.which("fstrim") or next(
        (p for p in ("/usr/sbin/fstrim", "/sbin/fstrim") if os.access(p, os.X_OK)), None)
    if not path or not os.access(path, os.X_OK):
        raise InputError("fstrim was not found%s; install util-linux or set fstrim_path"
                         % (" at %s" % fstrim_path if fstrim_path else " on PATH"))
    return path


def run_fstrim(path, fstrim_path=None, check_mode=False, runner=subprocess.run, clock=time.monotonic):
    """Trim the filesystem of ``path``. Returns the module's result (never raises for 'not supported')."""
    if not os.path.isdir(path):
        raise InputError("%s is not a directory: fstrim needs a directory on the filesystem to trim "
                         "(the etcd data directory, kubeadm's default /var/lib/etcd)" % path, path=path)
    binary = find_fstrim(fstrim_path)
    command = [binary, "-v", path]
    result = dict(path=path, command=command, changed=False, supported=None, trimmed_bytes=0, message="",
                  seconds=0.0)
    if check_mode:
        result.update(changed=True, message="would run %s" % " ".join(command))
        return result
    started = clock()
    try:
        proc = runner(command, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise OperationFailed("%s did not finish within %ss" % (" ".join(command), TIMEOUT), path=path)
    except OSError as exc:
        raise OperationFailed("cannot run %s: %s" % (binary, exc), path=path)
    result["seconds"] = round(clock() - started, 3)
    message = " ".join(part.strip() for part in (proc.stdout, proc.stderr) if part.strip())
    parsed = parse_output(proc.returncode, proc.stdout, proc.stderr)
    if parsed is None:
        raise OperationFailed("%s failed (exit %s): %s" % (" ".join(command), proc.returncode, message or "no output"),
                              path=path)
    supported, trimmed = parsed
    # Not "rc": Ansible fails any result with a non-zero rc, and exit 1 is fstrim's "not supported".
    result.update(supported=supported, trimmed_bytes=trimmed, changed=trimmed > 0, message=message)
    return result
