# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Gathering component versions through the Kubernetes API into the inventory skew.py evaluates.

Nodes and pods are listed in pages (``limit``/``continue``) and read as plain JSON: a check needs
five fields of each Node, and building the client's full models for thousands of nodes costs
about twice the time and memory (docs/benchmarks/node_version_check.md).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import OperationFailed
from ansible_collections.cplane.kubeadm.plugins.module_utils._kubeadm import image_tag
from ansible_collections.cplane.kubeadm.plugins.module_utils._versions.skew import CONTROL_PLANE_COMPONENTS, KUBE_PROXY

NAMESPACE = "kube-system"
ROLE_PREFIX = "node-role.kubernetes.io/"
# kubeadm labels its static pods component=<name>, tier=control-plane.
CONTROL_PLANE_SELECTOR = "tier=control-plane"


def list_pages(client, what, path, page_size, **query):
    """Every item of a paginated list, one page in memory at a time."""
    token = None
    while True:
        page = client.get(what, path, limit=page_size, **dict(query, **{"continue": token}))
        yield from page.get("items") or []
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return


def collect(client, what, path, page_size, summarize, **query):
    """``summarize`` applied to every item of a paginated list.

    A continue token expires after a few minutes or when etcd compacts (410 Gone); the list is
    then read again from the start, once, as the API conventions advise for a consistent list.
    """
    try:
        return [summarize(item) for item in list_pages(client, what, path, page_size, **query)]
    except OperationFailed as error:
        if getattr(error, "status", None) != 410:
            raise
        return [summarize(item) for item in list_pages(client, what + " (again, after the continue token expired)", path,
                                                       page_size, **query)]


def summarize_node(node):
    """The few fields of a v1 Node the skew check needs."""
    metadata = node.get("metadata") or {}
    status = node.get("status") or {}
    info = status.get("nodeInfo") or {}
    labels = metadata.get("labels") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    return {
        "name": metadata.get("name"),
        "roles": sorted(key[len(ROLE_PREFIX):] for key in labels if key.startswith(ROLE_PREFIX)),
        "ready": ready,
        "kubelet": info.get("kubeletVersion") or None,
        # Reported by the kubelet, deprecated and left empty since 1.31: then the DaemonSet image counts.
        "kube_proxy": info.get("kubeProxyVersion") or None,
        "kube_proxy_source": "node" if info.get("kubeProxyVersion") else None,
        "control_plane": {},
        "restarts": {},
    }


def summarize_static_pod(pod):
    """(node, component, version, image, restarts) of a kubeadm static pod, or None for other pods."""
    metadata = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    containers = spec.get("containers") or []
    component = (metadata.get("labels") or {}).get("component") or (containers[0].get("name") if containers else None)
    if component not in CONTROL_PLANE_COMPONENTS:
        return None
    image = next((c.get("image") for c in containers if c.get("name") == component), None) or \
        (containers[0].get("image") if containers else None)
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    running = next((s for s in statuses if s.get("name") == component), None)
    restarts = int(running.get("restartCount", 0)) if running else 0
    return spec.get("nodeName"), component, image_tag(image), image, restarts


def gather_cluster(client, page_size=500):
    """The inventory of a cluster: /version, every node, the static control-plane pods, the kube-proxy DaemonSet."""
    api_server = client.get("reading the API server version", "/version").get("gitVersion")
    nodes = collect(client, "listing nodes", "/api/v1/nodes", page_size, summarize_node)
    by_name = dict((node["name"], node) for node in nodes)
    images = {}
    for found in collect(client, "listing control-plane pods in %s" % NAMESPACE, "/api/v1/namespaces/%s/pods" % NAMESPACE,
                         page_size, summarize_static_pod, labelSelector=CONTROL_PLANE_SELECTOR):
        if not found or found[0] not in by_name:
            continue
        node, component, version, image, restarts = found
        by_name[node]["control_plane"][component] = version
        by_name[node]["restarts"][component] = restarts
        images.setdefault(component, {})[node] = image
    daemonsets = client.get("reading the %s DaemonSet" % KUBE_PROXY, "/apis/apps/v1/namespaces/%s/daemonsets" % NAMESPACE,
                            fieldSelector="metadata.name=%s" % KUBE_PROXY).get("items") or []
    daemonset_version = None
    if daemonsets:
        containers = (((daemonsets[0].get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
        image = next((c.get("image") for c in containers if c.get("name") == KUBE_PROXY), None)
        daemonset_version = image_tag(image)
    return {"api_server": api_server, "nodes": nodes, "kube_proxy_daemonset": daemonset_version, "local": {},
            "images": images}
