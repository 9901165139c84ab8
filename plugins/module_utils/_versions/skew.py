# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Kubernetes version-skew policy and the upgrade path, as pure functions on plain data.

Source: https://kubernetes.io/releases/version-skew-policy/ (the rules below are its
"Supported version skew" and "Supported component upgrade order" sections).  Skew is counted in
minor versions; patch versions never matter to the policy.

An *inventory* is what _versions/cluster.py gathers::

    {"api_server": "v1.30.4",                        # /version of the server answering
     "nodes": [{"name", "roles", "ready", "kubelet", "kube_proxy", "kube_proxy_source",
                "control_plane": {component: version}}],
     "kube_proxy_daemonset": "v1.30.4" or None,
     "local": {"kubelet": ..., "kubeadm": ..., "kubectl": ...} or {}}
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
from collections import Counter

from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import InputError
from ansible_collections.cplane.kubeadm.plugins.module_utils._kubeadm import (
    APISERVER, CONTROLLER_MANAGER, ETCD, KUBECTL, KUBELET, KUBE_PROXY, SCHEDULER)

# The policy's order (kube-apiserver first); the names are kubeadm's.
CONTROL_PLANE_COMPONENTS = (APISERVER, CONTROLLER_MANAGER, SCHEDULER, ETCD)
CONTROLLERS = (CONTROLLER_MANAGER, SCHEDULER)

# The one table of skew rules: id -> what the policy says.  Docs and messages read it from here.
RULES = {
    "apiserver-skew": "the newest and oldest kube-apiserver instances must be within one minor version",
    "kubelet-newer-than-apiserver": "kubelet must not be newer than any kube-apiserver",
    "kubelet-too-old": "kubelet may be at most three minor versions older than kube-apiserver (two for kubelet < 1.25)",
    "kube-proxy-newer-than-apiserver": "kube-proxy must not be newer than any kube-apiserver",
    "kube-proxy-too-old": "kube-proxy may be at most three minor versions older than kube-apiserver (two for kube-proxy < 1.25)",
    "kube-proxy-kubelet-skew": "kube-proxy may be at most three minor versions older or newer than the kubelet on its node "
                               "(two for kube-proxy < 1.25)",
    "controller-newer-than-apiserver": "kube-controller-manager and kube-scheduler must not be newer than the kube-apiserver "
                                       "they talk to",
    "controller-too-old": "kube-controller-manager and kube-scheduler may be at most one minor version older than the "
                          "kube-apiserver they talk to",
    "kubectl-skew": "kubectl must be within one minor version (older or newer) of every kube-apiserver",
}

_VERSION = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?([-+][0-9A-Za-z.+-]*)?")


class Version(tuple):
    """(major, minor, patch) with the text it came from; compares numerically."""

    def __new__(cls, major, minor, patch, text):
        self = tuple.__new__(cls, (major, minor, patch))
        self.text = text
        return self

    major = property(lambda self: self[0])
    minor = property(lambda self: self[1])
    patch = property(lambda self: self[2])

    @property
    def minor_key(self):
        return self[0], self[1]

    @property
    def short(self):
        return "%d.%d" % (self[0], self[1])


def parse_version(text):
    """``v1.12.1``, ``1.30``, ``Kubernetes v1.30.4``, ``v1.30.4-eks-1``, ``Client Version: v1.30.4`` -> Version; else None."""
    if not text:
        return None
    match = _VERSION.search(str(text))
    if not match:
        return None
    major, minor, patch = int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)
    return Version(major, minor, patch, "v%d.%d.%d%s" % (major, minor, patch, match.group(4) or ""))


def max_older(version):
    """How many minors a kubelet/kube-proxy at ``version`` may lag kube-apiserver (policy: 3, or 2 before 1.25)."""
    return 3 if version.minor_key >= (1, 25) else 2


def _minors_between(newer, older):
    if newer.major != older.major:
        return 100 * (newer.major - older.major)
    return newer.minor - older.minor


def _violation(rule, component, node, versions, detail):
    return {"rule": rule, "component": component, "node": node, "versions": versions,
            "message": "%s: %s (%s)" % (component if node is None else "%s on %s" % (component, node), detail, RULES[rule])}


def apiserver_instances(inventory):
    """[(node, Version)] of kube-apiserver: static pods, else the version the API server reports."""
    found = [(node["name"], parse_version(node.get("control_plane", {}).get(APISERVER)))
             for node in inventory.get("nodes", [])]
    found = [(name, version) for name, version in found if version]
    if found:
        return found
    reported = parse_version(inventory.get("api_server"))
    return [(None, reported)] if reported else []


def kube_proxy_instances(inventory):
    """[(node, Version, source)]: what the node reports, else the kube-proxy DaemonSet image."""
    daemonset = parse_version(inventory.get("kube_proxy_daemonset"))
    result = []
    for node in inventory.get("nodes", []):
        version = parse_version(node.get("kube_proxy"))
        if version:
            result.append((node["name"], version, node.get("kube_proxy_source") or "node"))
        elif daemonset:
            result.append((node["name"], daemonset, "daemonset"))
    return result


def evaluate_skew(inventory):
    """Every violation of the version-skew policy in ``inventory``, as a list of plain dicts."""
    violations = []
    apiservers = apiserver_instances(inventory)
    if not apiservers:
        return violations
    oldest = min(version for name, version in apiservers)
    newest = max(version for name, version in apiservers)
    for node, version in apiservers:
        if _minors_between(newest, version) > 1:
            violations.append(_violation("apiserver-skew", APISERVER, node, {APISERVER: version.text, "newest " + APISERVER: newest.text},
                                         "%s is %d minor versions older than the newest kube-apiserver %s"
                                         % (version.text, _minors_between(newest, version), newest.text)))
    kubelets = {}
    for node in inventory.get("nodes", []):
        version = parse_version(node.get(KUBELET))
        if not version:
            continue
        kubelets[node["name"]] = version
        violations.extend(_lagging(KUBELET, node["name"], version, oldest, newest))
    daemonset_reported = set()
    for node, version, source in kube_proxy_instances(inventory):
        key = (version, source)
        if source != "daemonset" or key not in daemonset_reported:
            daemonset_reported.add(key)
            violations.extend(_lagging(KUBE_PROXY, None if source == "daemonset" else node, version, oldest, newest))
        kubelet = kubelets.get(node)
        if kubelet:
            gap = abs(_minors_between(version, kubelet))
            if gap > max_older(version):
                violations.append(_violation("kube-proxy-kubelet-skew", KUBE_PROXY, node,
                                             {KUBE_PROXY: version.text, KUBELET: kubelet.text},
                                             "%s is %d minor versions away from the kubelet %s"
                                             % (version.text, gap, kubelet.text)))
    local_apiserver = dict((name, version) for name, version in apiservers if name)
    for node in inventory.get("nodes", []):
        for component in CONTROLLERS:
            version = parse_version(node.get("control_plane", {}).get(component))
            if not version:
                continue
            # kubeadm points kube-controller-manager and kube-scheduler at the API server on their own node.
            mine = local_apiserver.get(node["name"])
            floor, ceiling = (mine, mine) if mine else (oldest, newest)
            if version.minor_key > floor.minor_key:
                violations.append(_violation("controller-newer-than-apiserver", component, node["name"],
                                             {component: version.text, APISERVER: floor.text},
                                             "%s is newer than kube-apiserver %s" % (version.text, floor.text)))
            elif _minors_between(ceiling, version) > 1:
                violations.append(_violation("controller-too-old", component, node["name"],
                                             {component: version.text, APISERVER: ceiling.text},
                                             "%s is %d minor versions older than kube-apiserver %s"
                                             % (version.text, _minors_between(ceiling, version), ceiling.text)))
    kubectl = parse_version((inventory.get("local") or {}).get(KUBECTL))
    if kubectl:
        far = max((abs(_minors_between(kubectl, version)), version) for name, version in apiservers)
        if far[0] > 1:
            violations.append(_violation("kubectl-skew", KUBECTL, None, {KUBECTL: kubectl.text, APISERVER: far[1].text},
                                         "%s is %d minor versions away from kube-apiserver %s"
                                         % (kubectl.text, far[0], far[1].text)))
    return violations


def _lagging(component, node, version, oldest, newest):
    prefix = component  # rule ids: kubelet-... / kube-proxy-...
    if version.minor_key > oldest.minor_key:
        return [_violation(prefix + "-newer-than-apiserver", component, node, {component: version.text, APISERVER: oldest.text},
                           "%s is newer than kube-apiserver %s" % (version.text, oldest.text))]
    gap = _minors_between(newest, version)
    if gap > max_older(version):
        return [_violation(prefix + "-too-old", component, node, {component: version.text, APISERVER: newest.text},
                           "%s is %d minor versions older than kube-apiserver %s (at most %d allowed)"
                           % (version.text, gap, newest.text, max_older(version)))]
    return []


def _majority(versions):
    """The most common version; a tie goes to the newest (the direction an upgrade moves)."""
    counts = Counter(versions)
    return max(counts, key=lambda text: (counts[text], parse_version(text) or ()))


def find_mixed_versions(inventory):
    """Instances whose version differs from the majority of their component, allowed by policy or not."""
    groups = {}
    for node in inventory.get("nodes", []):
        version = parse_version(node.get(KUBELET))
        if version:
            groups.setdefault(KUBELET, []).append((node["name"], version.text))
        for component, raw in sorted((node.get("control_plane") or {}).items()):
            parsed = parse_version(raw)
            if parsed:
                # etcd tags (3.5.15-0) are not Kubernetes versions: compare them as they are.
                groups.setdefault(component, []).append((node["name"], raw if component == ETCD else parsed.text))
    for node, version, source in kube_proxy_instances(inventory):
        if source != "daemonset":
            groups.setdefault(KUBE_PROXY, []).append((node, version.text))
    mixed = []
    for component in sorted(groups):
        members = groups[component]
        if len(members) < 2:
            continue
        majority = _majority([version for name, version in members])
        for node, version in members:
            if version != majority:
                mixed.append({"component": component, "node": node, "version": version, "majority_version": majority,
                              "message": "%s on %s is %s; the rest of the cluster runs %s" % (component, node, version, majority)})
    return mixed


def component_summary(inventory):
    """Control-plane instances per node, and version counts of kubelet and kube-proxy."""
    summary = dict((component, []) for component in CONTROL_PLANE_COMPONENTS)
    kubelets, proxies = Counter(), Counter()
    for node in inventory.get("nodes", []):
        for component, version in sorted((node.get("control_plane") or {}).items()):
            image = (inventory.get("images") or {}).get(component, {}).get(node["name"])
            summary.setdefault(component, []).append({"node": node["name"], "version": version, "image": image})
        if node.get(KUBELET):
            kubelets[node[KUBELET]] += 1
    for name, version, source in kube_proxy_instances(inventory):
        proxies[version.text] += 1
    summary[KUBELET] = dict(kubelets)
    summary[KUBE_PROXY] = dict(proxies)
    summary["kube_proxy_daemonset"] = inventory.get("kube_proxy_daemonset")
    summary["api_server_reported"] = inventory.get("api_server")
    summary["local"] = dict(inventory.get("local") or {})
    return summary


def plan_upgrade(inventory, target_version):
    """The one-minor-at-a-time path from the cluster's oldest kube-apiserver to ``target_version``.

    Each step lists what must be upgraded *before* it (kubelets/kube-proxies that would fall out of
    the supported window, controllers more than one minor behind) and the kubeadm order for it.
    ``blocking`` holds the current violations: the policy's upgrade order assumes a supported start.
    """
    target = parse_version(target_version)
    if not target:
        raise InputError("target_version %r is not a Kubernetes version; use e.g. v1.30 or 1.30.4." % (target_version,))
    apiservers = apiserver_instances(inventory)
    if not apiservers:
        raise InputError("target_version given, but no kube-apiserver version could be found to plan from.")
    current = min(version for name, version in apiservers)
    if target.major != current.major:
        raise InputError("target_version %s changes the major version from %s; kubeadm cannot plan that." % (target.text, current.text))
    if target.minor_key < current.minor_key:
        raise InputError("target_version %s is older than kube-apiserver %s; kubeadm does not downgrade a control plane."
                         % (target.text, current.text))
    kubelets = {}
    proxies = {}
    controllers = []
    for node in inventory.get("nodes", []):
        version = parse_version(node.get(KUBELET))
        if version:
            kubelets[node["name"]] = version
        for component in CONTROLLERS:
            version = parse_version((node.get("control_plane") or {}).get(component))
            if version:
                controllers.append([component, node["name"], version])
    for node, version, source in kube_proxy_instances(inventory):
        proxies[node if source != "daemonset" else None] = version
    steps = []
    for minor in range(current.minor + 1, target.minor + 1):
        before = Version(current.major, minor - 1, 0, "v%d.%d" % (current.major, minor - 1))
        after = Version(current.major, minor, 0, "v%d.%d" % (current.major, minor))
        first = []
        for node, version in sorted(kubelets.items()):
            if _minors_between(after, version) > max_older(version):
                first.append({"component": KUBELET, "node": node, "version": version.text, "upgrade_to": before.short,
                              "reason": "kubelet %s would be %d minors behind kube-apiserver %s"
                                        % (version.text, _minors_between(after, version), after.short)})
                kubelets[node] = before
        for node, version in sorted(proxies.items(), key=lambda item: item[0] or ""):
            if _minors_between(after, version) > max_older(version):
                first.append({"component": KUBE_PROXY, "node": node, "version": version.text, "upgrade_to": before.short,
                              "reason": "kube-proxy %s would be %d minors behind kube-apiserver %s"
                                        % (version.text, _minors_between(after, version), after.short)})
        for entry in controllers:
            component, node, version = entry
            if _minors_between(after, version) > 1:
                first.append({"component": component, "node": node, "version": version.text, "upgrade_to": before.short,
                              "reason": "%s %s must be at %s before kube-apiserver moves to %s"
                                        % (component, version.text, before.short, after.short)})
            entry[2] = after  # kubeadm upgrades it with the API server on its node
        for node in list(proxies):
            proxies[node] = max(proxies[node], after)  # kubeadm upgrade apply rolls the kube-proxy DaemonSet
        steps.append({
            "from": before.short, "to": after.short, "upgrade_first": first,
            "order": [
                "install kubeadm %s on every control-plane node" % after.short,
                "kubeadm upgrade apply v%s.x on one control-plane node (kube-apiserver, kube-controller-manager, "
                "kube-scheduler, etcd, kube-proxy DaemonSet)" % after.short,
                "kubeadm upgrade node on each other control-plane node, one at a time",
                "kubelet on each node (drain, upgrade kubelet and kubectl, restart, uncordon); may lag up to %d minors"
                % max_older(after),
            ]})
    return {"from": current.text, "to": target.text, "steps": steps, "blocking": evaluate_skew(inventory)}
