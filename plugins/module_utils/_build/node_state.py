# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a node stands with kubeadm, read from the files kubeadm leaves (read-only).

What kubeadm writes, in the order its phases run (kubernetes/kubernetes cmd/kubeadm/app/cmd/init.go and
join.go; file names from cmd/kubeadm/app/constants/constants.go):

- init: certs (``pki/ca.crt``, ``pki/ca.key``, ...), kubeconfig (``admin.conf``, ``super-admin.conf``,
  ``kubelet.conf``, ``controller-manager.conf``, ``scheduler.conf``), etcd (``manifests/etcd.yaml``),
  control-plane (the other three manifests), kubelet-start (``/var/lib/kubelet/config.yaml``,
  ``kubeadm-flags.env``), then waits for the control plane; etcd writes ``<data dir>/member``.
- join (worker): kubelet-start writes ``bootstrap-kubelet.conf``, ``pki/ca.crt`` and the kubelet's
  files; the kubelet's TLS bootstrap writes ``kubelet.conf``, and kubeadm then deletes
  ``bootstrap-kubelet.conf`` (cmd/kubeadm/app/cmd/phases/join/kubelet.go).
- join (control plane): control-plane-prepare downloads the certificates (``pki/ca.key`` among them)
  and writes the kubeconfig files and manifests of the API server, controller-manager and
  scheduler; kubelet-start as for a worker; control-plane-join adds the etcd member and writes
  ``manifests/etcd.yaml``.

A node with every file of its kind is joined; a node with none is not a member; anything between
is half-joined: kubeadm stopped (or was killed) part way, and the way back is ``kubeadm reset``
on that node, then the build again (kubeadm's own advice when init or join fails).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.cplane.kubeadm.plugins.module_utils import _kubeadm

NOT_MEMBER = "not_member"
CONTROL_PLANE = "control_plane"
WORKER = "worker"
HALF_JOINED = "half_joined"
STATES = (NOT_MEMBER, CONTROL_PLANE, WORKER, HALF_JOINED)

RESET_HINT = ("run 'kubeadm reset -f' on %s (it removes what this attempt wrote, and the node's etcd member when "
              "its etcd manifest exists), then run the build again; or run the build with "
              "cluster_build_reset_half_joined=true to have it do exactly that on the half-joined nodes only")


def footprint(kubernetes_dir="/etc/kubernetes", kubelet_dir="/var/lib/kubelet", etcd_data_dir="/var/lib/etcd"):
    """{label: path} of every file kubeadm (or etcd under kubeadm) leaves on a node."""
    manifests = os.path.join(kubernetes_dir, "manifests")
    paths = {
        "ca.crt": os.path.join(kubernetes_dir, "pki", "ca.crt"),
        "ca.key": os.path.join(kubernetes_dir, "pki", "ca.key"),
        "admin.conf": os.path.join(kubernetes_dir, "admin.conf"),
        "kubelet.conf": os.path.join(kubernetes_dir, "kubelet.conf"),
        "bootstrap-kubelet.conf": os.path.join(kubernetes_dir, "bootstrap-kubelet.conf"),
        "controller-manager.conf": os.path.join(kubernetes_dir, "controller-manager.conf"),
        "scheduler.conf": os.path.join(kubernetes_dir, "scheduler.conf"),
        "kubelet config.yaml": os.path.join(kubelet_dir, "config.yaml"),
        "kubeadm-flags.env": os.path.join(kubelet_dir, "kubeadm-flags.env"),
        "etcd member": os.path.join(etcd_data_dir, "member"),
    }
    for component in _kubeadm.CONTROL_PLANE_COMPONENTS:
        paths[component + ".yaml"] = _kubeadm.manifest_file(component, manifests)
    return paths


CONTROL_PLANE_FILES = ("ca.crt", "ca.key", "admin.conf", "kubelet.conf", "controller-manager.conf",
                       "scheduler.conf", "kubelet config.yaml", "etcd member") + tuple(
    c + ".yaml" for c in _kubeadm.CONTROL_PLANE_COMPONENTS)
WORKER_FILES = ("ca.crt", "kubelet.conf", "kubelet config.yaml")
# Files a finished node of that kind does not have.
NOT_ON_WORKER = ("ca.key", "admin.conf", "bootstrap-kubelet.conf", "controller-manager.conf", "scheduler.conf",
                 "etcd member") + tuple(c + ".yaml" for c in _kubeadm.CONTROL_PLANE_COMPONENTS)
NOT_ON_CONTROL_PLANE = ("bootstrap-kubelet.conf",)


def node_state(host="this node", **dirs):
    """{state, present, missing, files, hint} of this node; ``dirs`` as in :func:`footprint`.

    ``missing`` names what a joined node of the kind the present files point to would have;
    ``hint`` says what to do for a half-joined node (None otherwise).
    """
    paths = footprint(**dirs)
    present = sorted(label for label, path in paths.items() if os.path.lexists(path))
    looks_control_plane = any(label in present for label in ("ca.key", "etcd member", "admin.conf")) or any(
        c + ".yaml" in present for c in _kubeadm.CONTROL_PLANE_COMPONENTS)
    if not present:
        state, missing = NOT_MEMBER, []
    elif looks_control_plane:
        missing = [label for label in CONTROL_PLANE_FILES if label not in present]
        extra = [label for label in NOT_ON_CONTROL_PLANE if label in present]
        state = CONTROL_PLANE if not missing and not extra else HALF_JOINED
    else:
        missing = [label for label in WORKER_FILES if label not in present]
        extra = [label for label in NOT_ON_WORKER if label in present]
        state = WORKER if not missing and not extra else HALF_JOINED
    return dict(state=state, present=present, missing=missing,
                kind=None if state == NOT_MEMBER else (CONTROL_PLANE if looks_control_plane else WORKER),
                files=dict((label, paths[label]) for label in present),
                hint=RESET_HINT % host if state == HALF_JOINED else None)
