# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Versions of the Kubernetes binaries installed on the target host (kubelet, kubeadm, kubectl)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.cplane.kubeadm.plugins.module_utils._versions.skew import parse_version

# How each binary reports its own version without talking to a cluster.
VERSION_COMMANDS = (
    ("kubelet", ["--version"]),               # Kubernetes v1.30.4
    ("kubeadm", ["version", "-o", "short"]),  # v1.30.4
    ("kubectl", ["version", "--client"]),     # Client Version: v1.30.4 (older: version.Info{... GitVersion:"v1.12.1" ...})
)


def gather_local(find_binary, run):
    """{name: {found, path, version, error}} for each binary.

    ``find_binary(name)`` returns a path or None; ``run(argv)`` returns (rc, stdout, stderr).  A
    missing binary is reported as not found: worker-only or client-less hosts are normal.
    """
    result = {}
    for name, args in VERSION_COMMANDS:
        path = find_binary(name)
        entry = {"found": bool(path), "path": path, "version": None, "error": None}
        if path:
            rc, out, err = run([path] + args)
            version = parse_version(out) if rc == 0 else None
            if version:
                entry["version"] = version.text
            else:
                entry["error"] = "'%s %s' exited %s: %s" % (name, " ".join(args), rc, (err or out or "").strip()[:200])
        result[name] = entry
    return result


def local_versions(gathered):
    """The {name: version} part of gather_local()'s result, as the inventory's ``local``."""
    return dict((name, entry["version"]) for name, entry in gathered.items() if entry["version"])
