"""A lab that hosts a real kubeadm cluster: ``LabCluster`` = lab nodes + a load balancer.

```python
from tests.lab.cluster import LabCluster
with LabCluster(workdir, control_planes=3, workers=1, version="1.36.3") as cluster:
    cluster.kubeadm_bootstrap()          # real kubeadm init + joins (or run the build role instead)
    cluster.kubectl("get", "nodes")      # admin.conf of the first control plane, through the load balancer
    cluster.write_inventory(path)        # groups kube_control_plane, kube_node; connection labnode
```

Each node (tests/lab/nodes.py) has, in its own /usr/local/bin: ``kubeadm`` (the lab-built binary
of ``version``), the kubelet double's launcher ``kubelet`` (tests/lab/node_kubelet.py) and
``systemctl`` (tests/lab/node_systemctl.py); in /etc/systemd/system the kubelet unit and
``kubelet.service.d/10-kubeadm.conf`` as the kubeadm packages install them (ExecStart
``/usr/local/bin/kubelet``), enabled, not started: the state of a node after the packages are
installed.  ``kubectl`` is installed too when the lab has built it for ``version``.
"""
import atexit
import hashlib
import json
import os
import secrets
import sys
import time
import weakref

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.lab import binaries, nodes
from tests.lab.node_kubelet import kubelet_launcher
from tests.lab.node_systemctl import systemctl_launcher

# What cannot exist in the lab, so kubeadm's preflight must not insist on it (and why):
IGNORE_PREFLIGHT = (
    "CRI",                      # no container runtime: the kubelet double runs static pods as processes
    "ContainerRuntimeVersion",  # same: no CRI socket to ask for its version
    "ImagePull",                # no runtime to pull into; the double runs the lab-built binary of each image tag
    "SystemVerification",       # kernel config / cgroup checks of a real host: a lab node shares the test machine's kernel
)
KUBELET_UNIT = """[Unit]
Description=kubelet: The Kubernetes Node Agent
Documentation=https://kubernetes.io/docs/
Wants=network-online.target
After=network-online.target

[Service]
ExecStart=/usr/local/bin/kubelet
Restart=always
StartLimitInterval=0
RestartSec=10

[Install]
WantedBy=multi-user.target
"""
# The drop-in of the kubeadm packages (kubernetes/release: cmd/krel/templates/latest/kubeadm/10-kubeadm.conf)
KUBEADM_DROPIN = """# Note: This dropin only works with kubeadm and kubelet v1.11+
[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
# This is a file that "kubeadm init" and "kubeadm join" generates at runtime, populating the KUBELET_KUBEADM_ARGS variable dynamically
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
# This is a file that the user can use for overrides of the kubelet args as a last resort.
EnvironmentFile=-/etc/default/kubelet
ExecStart=
ExecStart=/usr/local/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
"""
CRI_SOCKET = "unix:///var/run/containerd/containerd.sock"
# kubeadm's own etcd tag for 1.36/1.37 is 3.6.8-0; the lab runs the etcd it built (tests/lab/binaries.py).
ETCD_IMAGE_TAG = "3.6.16-0"
# Generous: 2 cores shared by many test runs.
KUBEADM_TIMEOUTS = {"controlPlaneComponentHealthCheck": "10m0s", "kubeletHealthCheck": "10m0s",
                    "kubernetesAPICall": "1m0s", "etcdAPICall": "5m0s", "tlsBootstrap": "10m0s",
                    "discovery": "10m0s", "upgradeManifests": "10m0s"}

_LIVE = weakref.WeakSet()


class LabCluster(object):
    def __init__(self, workdir, control_planes=3, workers=1, version=None, kubelet_version=None):
        self.workdir = os.path.abspath(str(workdir))
        self.version = (version or binaries.K8S_VERSIONS[0]).lstrip("v")
        self.kubelet_version = (kubelet_version or self.version).lstrip("v")
        self.network = None
        self.nodes = []
        names = ["cp%d" % (i + 1) for i in range(control_planes)] + ["w%d" % (i + 1) for i in range(workers)]
        self._names = names
        self.control_plane_names = names[:control_planes]
        self.worker_names = names[control_planes:]
        self.lb = None
        self.timings = {}
        self.token = None
        self.certificate_key = None

    # -- lifecycle -------------------------------------------------------------------------------
    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        started = time.monotonic()
        os.makedirs(self.workdir, exist_ok=True)
        _LIVE.add(self)
        self.network = nodes.LabNetwork().create()
        try:
            for index, name in enumerate(self._names, start=1):
                node = nodes.LabNode(self.network, index, name, os.path.join(self.workdir, "nodes", name)).start()
                self.nodes.append(node)
                self.prepare(node)
            backends = ["%s:6443" % n.address for n in self.control_planes]
            self.lb = nodes.start_helper(self.network, [sys.executable, "-m", "tests.lab.lab_lb", self.endpoint]
                                         + backends, os.path.join(self.workdir, "lb.log"))
        except BaseException:
            self.stop()
            raise
        self.timings["nodes"] = round(time.monotonic() - started, 2)
        return self

    def stop(self):
        for node in self.nodes:
            try:
                node.stop()
            except Exception:  # keep removing the others
                pass
        if self.lb is not None:
            self.lb.kill()
            self.lb.wait()
            self.lb = None
        if self.network is not None:
            self.network.destroy()
            self.network = None
        _LIVE.discard(self)

    def prepare(self, node):
        """A node as the packages leave it: kubeadm, kubelet (the double), kubectl, the kubelet unit enabled."""
        node.install(binaries.lab_binary("kubeadm", self.version), "kubeadm")
        try:
            node.install(binaries.lab_binary("kubectl", self.version), "kubectl")
        except (LookupError, FileNotFoundError):
            pass
        self.install_kubelet(node, self.kubelet_version)
        self._write(node, "/usr/local/bin/systemctl", systemctl_launcher(), 0o755)
        self._write(node, "/etc/systemd/system/kubelet.service", KUBELET_UNIT)
        self._write(node, "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf", KUBEADM_DROPIN)
        node.run(["systemctl", "enable", "kubelet"])

    def install_kubelet(self, node, version):
        """Install the kubelet double's launcher for ``version`` as the node's /usr/local/bin/kubelet."""
        self._write(node, "/usr/local/bin/kubelet", kubelet_launcher(version.lstrip("v")), 0o755)

    @staticmethod
    def kubelet_file(path, version):
        """Write a kubelet launcher for ``version`` at ``path`` (a "binary" to install with Ansible)."""
        with open(path, "w") as handle:
            handle.write(kubelet_launcher(version.lstrip("v")))
        os.chmod(path, 0o755)
        return path

    @staticmethod
    def _write(node, path, text, mode=0o644):
        target = node.host_path(path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w") as handle:
            handle.write(text)
        os.chmod(target, mode)

    # -- what tests read ---------------------------------------------------------------------------
    @property
    def endpoint(self):
        """controlPlaneEndpoint: the load balancer on the bridge."""
        return "%s:6443" % self.network.gateway

    @property
    def control_planes(self):
        return [n for n in self.nodes if n.name in self.control_plane_names]

    @property
    def workers(self):
        return [n for n in self.nodes if n.name in self.worker_names]

    def node(self, name):
        return next(n for n in self.nodes if n.name == name)

    @property
    def admin_kubeconfig(self):
        """admin.conf of the first control plane (a host path; its server is the load balancer)."""
        return self.control_planes[0].host_path("/etc/kubernetes/admin.conf")

    def kubectl(self, *args, node=None, check=True, timeout=120):
        """kubectl with admin.conf, run inside ``node`` (default: the first control plane)."""
        node = node or self.control_planes[0]
        proc = node.run(["kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf"] + list(args), check=False,
                        timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError("kubectl %s failed (rc=%d): %s%s" % (" ".join(args), proc.returncode, proc.stdout,
                                                                       proc.stderr))
        return proc.stdout

    def memory(self):
        """{node: {process name: RSS KiB}}, plus the load balancer under "lb"."""
        usage = {node.name: node.memory() for node in self.nodes}
        if self.lb is not None:
            usage["lb"] = {"lab_lb": nodes.rss_kib(self.lb.pid)}
        return usage

    def write_inventory(self, path, groups=None, extra_vars=None):
        """An Ansible inventory (YAML) of the nodes, reached with the lab's ``labnode`` connection.

        ``groups``: {group: [node names]}; default kube_control_plane (control planes) and
        kube_node (workers).  Host variables: ansible_connection=labnode, ansible_labnode_pid (the
        holder), ansible_host and lab_node_address (the node's address), ansible_python_interpreter.
        Group ``all`` vars: lab_control_plane_endpoint, lab_kubernetes_version, lab_cri_socket,
        lab_etcd_image_tag, lab_ignore_preflight_errors.
        """
        groups = groups or {"kube_control_plane": self.control_plane_names, "kube_node": self.worker_names}
        hostvars = {n.name: {"ansible_connection": "labnode", "ansible_labnode_pid": n.holder.pid,
                             "ansible_host": n.address, "lab_node_address": n.address,
                             "ansible_python_interpreter": sys.executable} for n in self.nodes}
        inventory = {"all": {"vars": dict({"lab_control_plane_endpoint": self.endpoint,
                                           "lab_kubernetes_version": self.version,
                                           "lab_cri_socket": CRI_SOCKET, "lab_etcd_image_tag": ETCD_IMAGE_TAG,
                                           "lab_ignore_preflight_errors": list(IGNORE_PREFLIGHT)},
                                          **(extra_vars or {})),
                             "hosts": hostvars,
                             "children": {g: {"hosts": {h: {} for h in members}} for g, members in groups.items()}}}
        with open(path, "w") as handle:
            yaml.safe_dump(inventory, handle, default_flow_style=False)
        return path

    # -- kubeadm, as an operator runs it -----------------------------------------------------------
    def kubeadm_config(self, node):
        init = {"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "InitConfiguration",
                "bootstrapTokens": [{"token": self.token, "ttl": "4h0m0s",
                                     "groups": ["system:bootstrappers:kubeadm:default-node-token"],
                                     "usages": ["signing", "authentication"]}],
                "certificateKey": self.certificate_key,
                "localAPIEndpoint": {"advertiseAddress": node.address, "bindPort": 6443},
                "nodeRegistration": {"name": node.name, "criSocket": CRI_SOCKET,
                                     "ignorePreflightErrors": list(IGNORE_PREFLIGHT)},
                "timeouts": KUBEADM_TIMEOUTS}
        cluster = {"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "ClusterConfiguration",
                   "kubernetesVersion": "v" + self.version, "controlPlaneEndpoint": self.endpoint,
                   "etcd": {"local": {"imageTag": ETCD_IMAGE_TAG}},
                   "networking": {"serviceSubnet": "10.96.0.0/16", "podSubnet": "10.244.0.0/16"}}
        return yaml.safe_dump_all([init, cluster], default_flow_style=False)

    def join_config(self, node, control_plane):
        join = {"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "JoinConfiguration",
                "discovery": {"bootstrapToken": {"apiServerEndpoint": self.endpoint, "token": self.token,
                                                 "caCertHashes": [self.ca_cert_hash()]}},
                "nodeRegistration": {"name": node.name, "criSocket": CRI_SOCKET,
                                     "ignorePreflightErrors": list(IGNORE_PREFLIGHT)},
                "timeouts": KUBEADM_TIMEOUTS}
        if control_plane:
            join["controlPlane"] = {"localAPIEndpoint": {"advertiseAddress": node.address, "bindPort": 6443},
                                    "certificateKey": self.certificate_key}
        return yaml.safe_dump(join, default_flow_style=False)

    def ca_cert_hash(self):
        """sha256:<hex> of the cluster CA's public key (kubeadm's --discovery-token-ca-cert-hash)."""
        with open(self.control_planes[0].host_path("/etc/kubernetes/pki/ca.crt"), "rb") as handle:
            cert = x509.load_pem_x509_certificate(handle.read())
        spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                              serialization.PublicFormat.SubjectPublicKeyInfo)
        return "sha256:" + hashlib.sha256(spki).hexdigest()

    def kubeadm(self, node, *args, timeout=1200):
        """Run the node's kubeadm inside it; raise with its output on failure."""
        started = time.monotonic()
        proc = node.run(["kubeadm"] + list(args), check=False, timeout=timeout)
        log = os.path.join(self.workdir, "kubeadm-%s.log" % node.name)
        with open(log, "a") as handle:
            handle.write("$ kubeadm %s (%.1fs, rc=%d)\n%s\n%s\n" % (" ".join(args), time.monotonic() - started,
                                                                    proc.returncode, proc.stdout, proc.stderr))
        if proc.returncode != 0:
            raise AssertionError("kubeadm %s on %s failed (rc=%d):\n%s\n%s\n%s" % (
                " ".join(args), node.name, proc.returncode, proc.stdout[-4000:], proc.stderr[-4000:],
                self.diagnostics(node)))
        return proc

    def diagnostics(self, node):
        """The tail of the node's kubelet double log, for failure messages."""
        text = []
        for path in ("/run/cplane-lab-node/systemd/kubelet.service.log",):
            try:
                with open(node.host_path(path), errors="replace") as handle:
                    text.append("--- %s:%s\n%s" % (node.name, path, handle.read()[-3000:]))
            except OSError:
                pass
        return "\n".join(text)

    def kubeadm_bootstrap(self, verbosity=None):
        """``kubeadm init`` on the first control plane, then joins one at a time: control planes
        (``--control-plane`` with the uploaded certificates' key), then workers.  Timings in
        ``self.timings`` (seconds)."""
        self.token = "%s.%s" % (secrets.token_hex(3), secrets.token_hex(8))
        self.certificate_key = secrets.token_hex(32)
        extra = ["--v=%d" % verbosity] if verbosity is not None else []
        first = self.control_planes[0]
        started = time.monotonic()
        self._write(first, "/var/lib/cplane-lab/kubeadm-init.yaml", self.kubeadm_config(first), 0o600)
        self.kubeadm(first, "init", "--config", "/var/lib/cplane-lab/kubeadm-init.yaml", "--upload-certs", *extra)
        self.timings["init"] = round(time.monotonic() - started, 2)
        for node in self.control_planes[1:] + self.workers:
            step = time.monotonic()
            control_plane = node.name in self.control_plane_names
            self._write(node, "/var/lib/cplane-lab/kubeadm-join.yaml", self.join_config(node, control_plane), 0o600)
            self.kubeadm(node, "join", "--config", "/var/lib/cplane-lab/kubeadm-join.yaml", *extra)
            self.timings["join_" + node.name] = round(time.monotonic() - step, 2)
        self.timings["bootstrap"] = round(time.monotonic() - started, 2)
        return self

    # -- checks ------------------------------------------------------------------------------------
    def etcd_members(self, node=None):
        """``etcdctl member list`` through the node's own etcd client certificate (healthcheck-client)."""
        node = node or self.control_planes[0]
        etcdctl = binaries.etcd_binary("etcdctl", ETCD_IMAGE_TAG.split("-")[0])
        proc = node.run([etcdctl, "--endpoints=https://127.0.0.1:2379", "--cacert=/etc/kubernetes/pki/etcd/ca.crt",
                         "--cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt",
                         "--key=/etc/kubernetes/pki/etcd/healthcheck-client.key", "member", "list", "-w", "json"])
        return json.loads(proc.stdout)["members"]

    def readyz(self, node):
        """(status, body) of GET https://<node address>:6443/readyz, with admin.conf."""
        proc = node.run(["kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", "--server",
                         "https://%s:6443" % node.address, "get", "--raw", "/readyz"], check=False)
        return proc.returncode, (proc.stdout + proc.stderr).strip()


@atexit.register
def _stop_live():
    for cluster in list(_LIVE):
        cluster.stop()
