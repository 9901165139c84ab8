# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What one node still needs for a kubeadm upgrade to a target version: the idempotency basis of
the cluster_upgrade role (module kubeadm_upgrade_state).

kubeadm's procedure (https://kubernetes.io/docs/tasks/administer-cluster/kubeadm/kubeadm-upgrade/):
install kubeadm of the target patch on every control-plane node; ``kubeadm upgrade apply vX.Y.Z``
on the first, ``kubeadm upgrade node`` on the others (both rewrite the static pod manifests in
/etc/kubernetes/manifests with the new image tags); then per node drain, install kubelet and
kubectl, restart kubelet, uncordon.  Each step leaves a trace this module reads back:

- ``kubeadm``: the version the installed kubeadm prints (``kubeadm version -o short``);
- ``control_plane``: the image tags of kube-apiserver, kube-controller-manager and kube-scheduler
  in the node's static pod manifests (etcd's tag is etcd's own version, and kubeadm upgrades
  etcd only when its table says so: it is reported, never required);
- ``kubelet``: the version the Node object reports (``status.nodeInfo.kubeletVersion``, what the
  running kubelet says) and the version of the installed binary;
- ``kubectl``: the installed client's version;
- ``uncordon``: ``spec.unschedulable`` of the Node (a run stopped between drain and uncordon
  leaves it cordoned; the re-run finishes it).

Versions are compared whole (``v1.37.2``), with the parsing of skew.py.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import time

from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import InputError, OperationFailed
from ansible_collections.cplane.kubeadm.plugins.module_utils._kubeadm import (
    APISERVER, CONTROLLER_MANAGER, ETCD, MANIFESTS_DIR, SCHEDULER, image_tag, manifest_file)
from ansible_collections.cplane.kubeadm.plugins.module_utils._versions import cluster
from ansible_collections.cplane.kubeadm.plugins.module_utils._versions.skew import parse_version

# The manifests kubeadm upgrade apply/node rewrite with the target's tag.
UPGRADED_COMPONENTS = (APISERVER, CONTROLLER_MANAGER, SCHEDULER)
# The steps of the procedure for one node, in order; each is done when its trace is at target.
STEPS = ("kubeadm", "control_plane", "kubelet", "kubectl", "uncordon")


def target_of(text):
    """The target as a Version with a patch (``1.37.2`` or ``v1.37.2``); InputError otherwise.

    kubeadm upgrade apply takes a full version, and packages are pinned to one: ``1.37`` is refused.
    """
    version = parse_version(text)
    if not version or str(text).strip().lstrip("v").count(".") != 2:
        raise InputError("target_version %r is not a full Kubernetes version; give major.minor.patch, e.g. 1.37.2 "
                         "(kubeadm upgrade apply and the pinned packages need the patch)." % (text,))
    return version


def same(version_text, target):
    """``version_text`` is ``target`` (major.minor.patch); None when it is unknown."""
    parsed = parse_version(version_text)
    if parsed is None:
        return None
    return tuple(parsed) == tuple(target)


def read_manifest_tags(manifests_dir=MANIFESTS_DIR, read=None):
    """{component: image tag} of kubeadm's static pod manifests in ``manifests_dir``; a missing file is left out.

    ``read(path)`` returns the parsed pod (the static_pod reader); InputError for a manifest that
    cannot be read names the file.
    """
    if read is None:
        from ansible_collections.cplane.kubeadm.plugins.module_utils._manifests.static_pod import read_manifest

        def read(path):
            return read_manifest(path)[1]
    tags = {}
    for component in UPGRADED_COMPONENTS + (ETCD,):
        path = manifest_file(component, manifests_dir)
        if not os.path.exists(path):
            continue
        pod = read(path)
        containers = (pod.get("spec") or {}).get("containers") or []
        container = next((c for c in containers if c.get("name") == component), containers[0] if containers else {})
        tags[component] = image_tag(container.get("image"))
    return tags


def free_bytes(paths):
    """{path: bytes free to an unprivileged writer} for each path (the nearest existing parent when it does not exist)."""
    result = {}
    for path in paths:
        probe = os.path.abspath(path)
        while not os.path.exists(probe) and probe != os.path.dirname(probe):
            probe = os.path.dirname(probe)
        stats = os.statvfs(probe)
        result[path] = stats.f_bavail * stats.f_frsize
    return result


def local_state(manifest_tags, binaries, control_plane):
    """What this host has installed: {manifests: {component: tag}, kubeadm, kubelet, kubectl, control_plane}."""
    return {"control_plane": bool(control_plane), "manifests": dict(manifest_tags),
            "kubeadm": binaries.get("kubeadm"), "kubelet": binaries.get("kubelet"), "kubectl": binaries.get("kubectl")}


def read_node(client, node_name):
    """{name, found, kubelet, ready, unschedulable, control_plane: {component: version}} of one Node via the API."""
    node = None
    try:
        node = client.get("reading node %s" % node_name, "/api/v1/nodes/%s" % node_name)
    except OperationFailed as error:
        if getattr(error, "status", None) != 404:
            raise
    if node is None:
        return {"name": node_name, "found": False, "kubelet": None, "ready": False, "unschedulable": None,
                "control_plane": {}}
    summary = cluster.summarize_node(node)
    pods = cluster.collect(client, "listing control-plane pods on %s" % node_name,
                           "/api/v1/namespaces/%s/pods" % cluster.NAMESPACE, 500, cluster.summarize_static_pod,
                           labelSelector=cluster.CONTROL_PLANE_SELECTOR, fieldSelector="spec.nodeName=%s" % node_name)
    versions = dict((found[1], found[2]) for found in pods if found and found[0] == node_name)
    return {"name": node_name, "found": True, "kubelet": summary["kubelet"], "ready": summary["ready"],
            "unschedulable": bool((node.get("spec") or {}).get("unschedulable")), "control_plane": versions}


def evaluate(target, local, node):
    """Per step: at target (True/False), or None when it does not apply; plus the steps still to do.

    ``local`` is local_state() of the node's host (None when not read), ``node`` read_node() (None
    when not read).
    """
    at_target = dict((step, None) for step in STEPS)
    if local is not None:
        if local["control_plane"] or local.get("kubeadm") is not None:
            # Control planes must have it; workers joined with kubeadm run kubeadm upgrade node too.
            at_target["kubeadm"] = bool(same(local.get("kubeadm"), target))
        if local["control_plane"]:
            tags = local.get("manifests") or {}
            at_target["control_plane"] = all(same(tags.get(component), target) for component in UPGRADED_COMPONENTS)
        at_target["kubectl"] = None if local.get("kubectl") is None else bool(same(local["kubectl"], target))
    kubelet_ok = []
    if local is not None and local.get("kubelet") is not None:
        kubelet_ok.append(bool(same(local["kubelet"], target)))
    if node is not None:
        kubelet_ok.append(bool(node["found"] and same(node.get("kubelet"), target) and node.get("ready")))
        at_target["uncordon"] = bool(node["found"] and not node.get("unschedulable"))
    if kubelet_ok:
        at_target["kubelet"] = all(kubelet_ok)
    pending = [step for step in STEPS if at_target[step] is False]
    return at_target, pending


def wait_ready(read, target, timeout, interval=2.0, clock=time.monotonic, sleep=time.sleep):
    """Poll ``read()`` (read_node) until the node is Ready with kubelet ``target``; (node, seconds waited).

    OperationFailed after ``timeout`` seconds, naming what the node last reported and what to do.
    API errors while polling are retried (the API server may be restarting on this very node).
    """
    start = clock()
    last, last_error = None, None
    while True:
        try:
            last = read()
            last_error = None
            if last["found"] and last["ready"] and same(last["kubelet"], target):
                return last, clock() - start
        except OperationFailed as error:
            last_error = error
        except Exception as error:  # pylint: disable=broad-except  # connection failures while kube-apiserver restarts
            last_error = error
        if clock() - start >= timeout:
            break
        sleep(interval)
    if last is None:
        seen = "could not be read (%s)" % last_error
    elif not last["found"]:
        seen = "does not exist"
    else:
        seen = "reports kubelet %s, Ready=%s" % (last["kubelet"], last["ready"])
    name = last["name"] if last else "the node"
    raise OperationFailed(
        "node %s did not come back Ready with kubelet %s within %d s: it %s. The run stops here; nodes after it were "
        "not touched. On the node, check 'systemctl status kubelet' and 'journalctl -u kubelet', and that "
        "'kubelet --version' prints %s; once it is Ready again, run the playbook again: nodes already upgraded are "
        "skipped and this node is finished (kubelet checked, then uncordoned)."
        % (name, target.text, timeout, seen, target.text))
