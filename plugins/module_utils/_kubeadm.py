# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What is kubeadm's, in one place: component names, ports, manifest files, health paths, the
probes kubeadm writes per version, and reading versions from image references.

Sources (kubernetes/kubernetes): cmd/kubeadm/app/constants/constants.go (names, ports,
directories), cmd/kubeadm/app/util/staticpod/utils.go (LivenessProbe, ReadinessProbe,
StartupProbe, GetEtcdProbeEndpoint), cmd/kubeadm/app/phases/etcd/local.go and
cmd/kubeadm/app/phases/controlplane/manifests.go (which probe each component gets).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math
import os
import re

from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import InputError

# -- components, files, ports -------------------------------------------------------------------
ETCD = "etcd"
APISERVER = "kube-apiserver"
CONTROLLER_MANAGER = "kube-controller-manager"
SCHEDULER = "kube-scheduler"
KUBELET = "kubelet"
KUBE_PROXY = "kube-proxy"
KUBECTL = "kubectl"
# The static pods kubeadm writes, in the order they can be restarted safely (etcd first).
CONTROL_PLANE_COMPONENTS = (ETCD, APISERVER, CONTROLLER_MANAGER, SCHEDULER)

# kubelet starts a static pod for every file in this directory whose name does not start with a
# dot (constants.ManifestsSubDirName under the kubernetes directory).
MANIFESTS_DIR = "/etc/kubernetes/manifests"
PKI_DIR = "/etc/kubernetes/pki"


def manifest_file(component, manifests_dir=MANIFESTS_DIR):
    """kubeadm's manifest for ``component``: ``<manifests_dir>/<component>.yaml``."""
    return os.path.join(manifests_dir, component + ".yaml")


ETCD_CLIENT_PORT = 2379
ETCD_PEER_PORT = 2380
ETCD_METRICS_PORT = 2381
APISERVER_PORT = 6443
CONTROLLER_MANAGER_PORT = 10257
SCHEDULER_PORT = 10259
# (scheme, port) each component's probes go to by default.
PROBE_ENDPOINT = {
    ETCD: ("HTTP", ETCD_METRICS_PORT),
    APISERVER: ("HTTPS", APISERVER_PORT),
    CONTROLLER_MANAGER: ("HTTPS", CONTROLLER_MANAGER_PORT),
    SCHEDULER: ("HTTPS", SCHEDULER_PORT),
}

# -- the probes kubeadm writes ------------------------------------------------------------------
PROBE_KINDS = ("liveness", "readiness", "startup")
PROBE_FIELD = dict(liveness="livenessProbe", readiness="readinessProbe", startup="startupProbe")
# (initialDelaySeconds, timeoutSeconds, failureThreshold, periodSeconds).
# Startup: failureThreshold = ceil(ControlPlaneComponentHealthCheck timeout (4 min) / period).
PROBE_TIMING = dict(
    liveness=(10, 15, 8, 10),
    readiness=(0, 15, 3, 1),
    startup=(10, 15, int(math.ceil(240 / 10.0)), 10),
)
# etcd grew /livez and /readyz in 3.5.11; kubeadm probes them from then on.
ETCD_LIVEZ_SINCE = (3, 5, 11)
# /health honours serializable=true only from 3.5.3 (etcd PR 13706); older members answer
# "RAFT NO LEADER" without quorum whatever the query says (measured on 3.5.1 in the lab).
ETCD_SERIALIZABLE_HEALTH_SINCE = (3, 5, 3)
# kubeadm 1.34+ probes a named container port (kubernetes PR 132776, CHANGELOG-1.34: "started using a
# named port 'probe-port' for all probes"); older manifests carry the number in the probe itself.
NAMED_PROBE_PORT = "probe-port"
# kube-scheduler: /livez (liveness, startup) and /readyz (readiness) from kubeadm 1.32 (kubernetes PR
# 126945, CHANGELOG-1.32); /healthz and no readiness probe before.
SCHEDULER_LIVEZ_SINCE = (1, 32)


def probe_paths(component, version):
    """{kind: HTTP path or None} kubeadm probes for ``component`` at ``version`` (the image tag's).

    None for a kind: kubeadm writes no such probe.  Raises InputError when kubeadm's choice
    depends on a version that is unknown or older than any kubeadm probe.
    """
    if component == ETCD:
        if version is None:
            raise InputError("cannot tell the etcd version from the image: give the probe as spec")
        if tuple(version) >= ETCD_LIVEZ_SINCE:
            return dict(liveness="/livez", readiness="/readyz", startup="/readyz")
        if tuple(version) >= (3, 4, 0):
            return dict(liveness="/health?exclude=NOSPACE&serializable=true", readiness=None,
                        startup="/health?serializable=false")
        raise InputError("etcd %s predates the /health parameters kubeadm probes (3.4+); give the probe as spec"
                         % ".".join(str(v) for v in version))
    if component == APISERVER:
        return dict(liveness="/livez", readiness="/readyz", startup="/livez")
    if component == SCHEDULER and (version is None or tuple(version)[:2] >= SCHEDULER_LIVEZ_SINCE):
        return dict(liveness="/livez", readiness="/readyz", startup="/livez")
    if component in (CONTROLLER_MANAGER, SCHEDULER):
        return dict(liveness="/healthz", readiness=None, startup="/healthz")
    raise InputError("%r is not a kubeadm control-plane component (%s)" % (component, ", ".join(CONTROL_PLANE_COMPONENTS)))


def http_probe(kind, scheme, host, port, path):
    """A probe of ``kind`` as kubeadm writes it, keys in Go's sorted order (so it diffs cleanly)."""
    delay, timeout, failures, period = PROBE_TIMING[kind]
    probe = {
        "failureThreshold": failures,
        "httpGet": {"host": host, "path": path, "port": port, "scheme": scheme},
        "initialDelaySeconds": delay,
        "periodSeconds": period,
        "timeoutSeconds": timeout,
    }
    if not delay:
        # kubeadm's manifests omit zero values (Go's omitempty): its readiness probe has no initialDelaySeconds.
        del probe["initialDelaySeconds"]
    return probe


# -- image references ---------------------------------------------------------------------------
_TAG_VERSION = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?")


def split_image(image):
    """``my-registry:5000/k8s/etcd:3.5.1-0@sha256:...`` -> (``etcd``, ``3.5.1-0``); tag None if none."""
    name = (image or "").split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" not in last:
        return last, None
    repository, tag = last.split(":", 1)
    return repository, tag


def image_repository(image):
    """The image's last path element without tag: ``registry.k8s.io/etcd:3.5.1-0`` -> ``etcd``."""
    return split_image(image)[0]


def image_tag(image):
    """The tag text: ``registry:5000/kube-apiserver:v1.30.4@sha256:...`` -> ``v1.30.4``; None without one."""
    return split_image(image)[1] if image else None


def image_version(image):
    """The tag as numbers: ``etcd:3.5.12-0`` -> (3, 5, 12); ``kube-apiserver:v1.30.2`` -> (1, 30, 2); else None.

    etcd images carry etcd's version, the other components Kubernetes' version.
    """
    match = _TAG_VERSION.match(image_tag(image) or "")
    if not match:
        return None
    return tuple(int(part or 0) for part in match.groups())


def component_of(container):
    """Which kubeadm component a container runs, from its image repository or its name."""
    for candidate in (image_repository(container.get("image")), container.get("name") or ""):
        for component in CONTROL_PLANE_COMPONENTS:
            if candidate == component or candidate.startswith(component + "-"):
                return component
    return None
