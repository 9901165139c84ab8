"""kubeadm-style static pod manifests for lab etcd members, and an EtcdLab run by kubelet doubles.

``write_etcd_manifest`` writes the ``etcd.yaml`` kubeadm would write for a member (same layout,
flags from ``etcd_cluster.etcd_command`` seen from inside the container, hostPath volumes
etcd-certs and etcd-data), with the probes kubeadm ships for the image's etcd version - or the
exec probe of the 2018 outage (``probe="seed"``), none, or any probes given.

``KubeletEtcdLab`` is an ``EtcdLab`` whose members run as static pods under one kubelet double per
node: the same API (endpoints, etcdctl, client, leader, pause/resume, kill), plus the manifest
operations operators use (move a manifest out to stop the pod, back to start it).
"""
import os
import shutil
import signal
from dataclasses import dataclass, field

import yaml

from ansible_collections.cplane.kubeadm.plugins.module_utils import _kubeadm
from ansible_collections.cplane.kubeadm.plugins.module_utils._manifests import probes as probe_rules
from tests.lab.binaries import WHEEL_ETCD_VERSION
from tests.lab.etcd_cluster import EtcdLab, etcd_command
from tests.lab.kubelet_double import KubeletDouble

ETCD_VERSION = WHEEL_ETCD_VERSION   # the image tag of the lab's manifests unless a test picks another
CERTS_DIR = "/etc/kubernetes/pki/etcd"
DATA_DIR = "/var/lib/etcd"


def seed_probe(member):
    """The exec liveness probe kubeadm 1.12 shipped (the outage in seeds/000): a linearizable get."""
    return {
        "exec": {"command": [
            "/bin/sh", "-ec",
            "ETCDCTL_API=3 etcdctl --endpoints=https://[127.0.0.1]:%d --cacert=%s/ca.crt "
            "--cert=%s/healthcheck-client.crt --key=%s/healthcheck-client.key get foo"
            % (member.client_port, CERTS_DIR, CERTS_DIR, CERTS_DIR)]},
        "failureThreshold": 8,
        "initialDelaySeconds": 15,
        "timeoutSeconds": 15,
    }


def container_command(member, lab, state="new", initial_cluster=None):
    """kubeadm's etcd command for ``member`` with the paths the container sees."""
    host_cmd = etcd_command(member, initial_cluster or lab.initial_cluster(lab.members), state,
                            lab.quota_backend_bytes, lab.extra_args, lab.etcd_version)
    root = member.root.rstrip("/")
    flags = sorted(arg.replace(root + "/", "/") for arg in host_cmd[1:])   # kubeadm sorts its flags
    return ["etcd"] + flags


def etcd_pod(member, lab, probe="kubeadm", version=ETCD_VERSION, state="new", initial_cluster=None, name="etcd"):
    """The Pod object kubeadm's GetEtcdPodSpec builds, as a dict in kubeadm's key order."""
    container = {
        "command": container_command(member, lab, state, initial_cluster),
        "image": "registry.k8s.io/etcd:%s-0" % version,
        "imagePullPolicy": "IfNotPresent",
    }
    if probe == "kubeadm":
        version_tuple = _kubeadm.image_version(container["image"])
        probes = {_kubeadm.PROBE_FIELD[kind]: p for kind, p in
                  probe_rules.recommended_probes(_kubeadm.ETCD, version_tuple, container).items() if p}
    elif probe == "seed":
        probes = {"livenessProbe": seed_probe(member)}
    elif probe is None:
        probes = {}
    else:
        probes = dict(probe)
    container.update(probes)
    container["name"] = "etcd"
    container["resources"] = {"requests": {"cpu": "100m", "memory": "100Mi"}}
    container["volumeMounts"] = [{"mountPath": DATA_DIR, "name": "etcd-data"},
                                 {"mountPath": CERTS_DIR, "name": "etcd-certs"}]
    container = {key: container[key] for key in sorted(container)}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "annotations": {"kubeadm.kubernetes.io/etcd.advertise-client-urls": member.client_url},
            "creationTimestamp": None,
            "labels": {"component": "etcd", "tier": "control-plane"},
            "name": name,
            "namespace": "kube-system",
        },
        "spec": {
            "containers": [container],
            "hostNetwork": True,
            "priority": 2000001000,
            "priorityClassName": "system-node-critical",
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "volumes": [
                {"hostPath": {"path": CERTS_DIR, "type": "DirectoryOrCreate"}, "name": "etcd-certs"},
                {"hostPath": {"path": DATA_DIR, "type": "DirectoryOrCreate"}, "name": "etcd-data"},
            ],
        },
        "status": {},
    }


def dump(pod):
    return yaml.safe_dump(pod, sort_keys=False, default_flow_style=False, width=4096).encode()


def write_etcd_manifest(member, lab, probe="kubeadm", version=ETCD_VERSION, state="new", initial_cluster=None,
                        path=None):
    """Write ``<node root>/etc/kubernetes/manifests/etcd.yaml`` (or ``path``); return its path."""
    path = path or os.path.join(member.manifests_dir, "etcd.yaml")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    data = dump(etcd_pod(member, lab, probe, version, state, initial_cluster))
    tmp = os.path.join(os.path.dirname(path), ".%s.tmp" % os.path.basename(path))
    with open(tmp, "wb") as handle:
        handle.write(data)
    os.rename(tmp, path)   # kubelet must never read half a manifest
    return path


@dataclass
class KubeletEtcdLab(EtcdLab):
    """An EtcdLab whose members are static pods under kubelet doubles (one per node)."""
    probe: object = "kubeadm"
    time_scale: float = 1.0
    etcd_version: str = ETCD_VERSION
    doubles: dict = field(default_factory=dict)

    def launch(self, member, initial_cluster, state):
        os.makedirs(member.data_dir, mode=0o700, exist_ok=True)
        write_etcd_manifest(member, self, self.probe, self.etcd_version, state, initial_cluster)
        if member.name not in self.doubles:
            self.doubles[member.name] = KubeletDouble(member.name, member.root, time_scale=self.time_scale).start()

    def stop(self):
        for double in self.doubles.values():
            double.stop()
        self.doubles = {}

    # -- per-member views -------------------------------------------------------------------------
    def double(self, name):
        return self.doubles[name]

    def manifest_path(self, name):
        return os.path.join(self.member(name).manifests_dir, "etcd.yaml")

    @staticmethod
    def pod_name(name):
        return "etcd-%s" % name

    def restart_count(self, name):
        return self.doubles[name].restart_count(self.pod_name(name))

    def pid(self, name):
        pod = self.doubles[name].pod(self.pod_name(name))
        return pod["containers"][0]["pid"] if pod else None

    # -- what operators do to a static pod --------------------------------------------------------
    def _held(self, name):
        return os.path.join(self.member(name).root, "var/lib/cplane-lab/held-manifests/etcd.yaml")

    def remove_manifest(self, name, wait=30):
        """Move etcd.yaml out of the manifests directory; kubelet stops the pod."""
        held = self._held(name)
        os.makedirs(os.path.dirname(held), exist_ok=True)
        shutil.move(self.manifest_path(name), held)
        self.doubles[name].wait_for(lambda d: d.pod(self.pod_name(name)) is None, timeout=wait,
                                    what="pod %s gone" % self.pod_name(name))

    def restore_manifest(self, name, wait=60):
        """Move etcd.yaml back; kubelet starts the pod and the member rejoins."""
        shutil.move(self._held(name), self.manifest_path(name))
        self.wait_healthy([self.member(name)], timeout=wait)

    # -- faults, on the container's current process ----------------------------------------------
    def kill(self, name, sig=signal.SIGKILL):
        os.kill(self.pid(name), sig)

    def pause(self, name):
        os.kill(self.pid(name), signal.SIGSTOP)

    def resume(self, name):
        os.kill(self.pid(name), signal.SIGCONT)

    def restart(self, name, wait=60):
        self.remove_manifest(name)
        self.restore_manifest(name, wait)

    def add_learner(self, wait=60):
        raise NotImplementedError("add_learner under kubelet doubles is not supported yet; use EtcdLab")
