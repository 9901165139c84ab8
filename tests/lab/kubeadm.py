"""The real kubeadm (built from the Go module proxy by scripts/lab-binaries) on lab node trees.

A node tree is a directory that plays a control-plane node's ``/``: ``etc/kubernetes/pki``,
``etc/kubernetes/*.conf``, ``etc/kubernetes/manifests``.  kubeadm hard-codes ``/etc/kubernetes``
for the kubeconfig files of ``certs renew`` and ``certs check-expiration`` (their ``kdir`` is
constants.KubernetesDir, cmd/kubeadm/app/cmd/certs.go) and for the static pod manifests of
``init phase etcd local`` / ``control-plane`` (constants.GetStaticPodDirectory), so every call runs
with kubeadm's own ``--rootfs <tree>`` (cmd/kubeadm/app/cmd/cmd.go: chroot before the command
runs).  Inside the tree kubeadm then sees exactly the paths of a real node, and the manifests it
writes name the real paths (``/etc/kubernetes/pki/...``) that the kubelet double maps back into
the tree through the pods' hostPath volumes.  chroot needs root: the test machines run as root.

Every kubeadm call gets ``--config`` (an InitConfiguration + ClusterConfiguration in the API
version this kubeadm prints as its default), so nothing looks for a cluster or the network:
``kubernetesVersion`` is pinned (no lookup of the stable version on dl.k8s.io), ``criSocket`` is
given (no detection of a container runtime), the advertise address is given (no route lookup in
/proc, absent inside the tree).
"""
import functools
import json
import os
import socket
import subprocess

import yaml

CONFIG_IN_NODE = "/etc/kubernetes/kubeadm-config.yaml"
BUILD_HINT = "run scripts/lab-binaries (it builds the lab's kubeadm, kube-apiserver and kubectl)"


class LabBinaryMissing(RuntimeError):
    pass


class KubeadmFailed(RuntimeError):
    def __init__(self, argv, proc):
        super().__init__("%s failed (rc=%d):\n%s\n%s"
                         % (" ".join(argv), proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:]))
        self.proc = proc


def k8s_versions():
    """The Kubernetes versions scripts/lab-binaries builds, older first ("1.36.3", ...)."""
    from tests.lab import binaries
    return tuple(binaries.K8S_VERSIONS)


def newest():
    return k8s_versions()[-1]


def real_binary(name, version=None):
    """Path of the lab-built ``name`` at ``version`` (default: the newer minor); fails naming the build script."""
    from tests.lab import binaries
    version = (version or newest()).lstrip("v")
    try:
        path = binaries.lab_binary(name, version)
    except Exception as exc:  # the cache lookup says why (not built, unknown version)
        raise LabBinaryMissing(str(exc) if "lab-binaries" in str(exc) else "%s %s is not available (%s): %s"
                               % (name, version, exc, BUILD_HINT))
    if not path or not os.access(path, os.X_OK):
        raise LabBinaryMissing("%s %s is not built (%s): %s" % (name, version, path, BUILD_HINT))
    return path


def host_address():
    """The address of the interface that holds the default route (what kubeadm itself would choose).

    kubeadm translates a loopback advertise address into this one anyway
    (SetAPIEndpointDynamicDefaults); giving it explicitly keeps kubeadm out of /proc/net/route,
    which does not exist inside a node tree.
    """
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.254", 9))   # no packet is sent for a UDP connect
        address = probe.getsockname()[0]
    except OSError:
        address = None
    finally:
        probe.close()
    if not address or address.startswith("127."):
        raise RuntimeError("this machine has no non-loopback IPv4 address with a route; kubeadm needs one to "
                           "advertise the API server")
    return address


class Kubeadm(object):
    """One kubeadm binary."""

    def __init__(self, version=None):
        self.version = (version or newest()).lstrip("v")
        self.path = real_binary("kubeadm", self.version)

    def run(self, *args, rootfs=None, check=True, timeout=180):
        if rootfs is not None and os.geteuid() != 0:
            raise RuntimeError("kubeadm --rootfs chroots into the node tree and needs root; run the tests as root")
        argv = [self.path] + (["--rootfs", rootfs] if rootfs is not None else []) + [str(a) for a in args]
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": rootfs or os.environ.get("HOME", "/root")}
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, check=False)
        if check and proc.returncode != 0:
            raise KubeadmFailed(argv, proc)
        return proc

    @functools.cached_property
    def api_version(self):
        """The kubeadm config API version this kubeadm writes by default (kubeadm.k8s.io/v1beta4, ...)."""
        out = self.run("config", "print", "init-defaults").stdout
        for doc in yaml.safe_load_all(out):
            if isinstance(doc, dict) and doc.get("kind") == "InitConfiguration":
                return doc["apiVersion"]
        raise RuntimeError("kubeadm %s printed no InitConfiguration:\n%s" % (self.version, out))


class KubeadmNode(object):
    """A node tree that kubeadm initialises and maintains, with one --config file inside it."""

    def __init__(self, root, kubeadm=None, node_name="cp1", advertise_address=None, bind_port=6443,
                 control_plane_endpoint=None, etcd_servers=None, apiserver_args=None, cert_sans=()):
        self.root = os.path.abspath(str(root))
        self.kubeadm = kubeadm or Kubeadm()
        self.node_name = node_name
        self.advertise_address = advertise_address or host_address()
        self.bind_port = bind_port
        self.control_plane_endpoint = control_plane_endpoint
        self.etcd_servers = etcd_servers
        self.apiserver_args = dict(apiserver_args or {})
        self.cert_sans = list(cert_sans)
        os.makedirs(os.path.join(self.root, "etc/kubernetes"), exist_ok=True)
        self.write_config()

    # -- paths as the host sees them --------------------------------------------------------------
    @property
    def kubeconfig_dir(self):
        return os.path.join(self.root, "etc/kubernetes")

    @property
    def pki_dir(self):
        return os.path.join(self.root, "etc/kubernetes/pki")

    @property
    def manifests_dir(self):
        return os.path.join(self.root, "etc/kubernetes/manifests")

    @property
    def config_path(self):
        return os.path.join(self.root, CONFIG_IN_NODE.lstrip("/"))

    def manifest(self, component):
        with open(os.path.join(self.manifests_dir, component + ".yaml")) as handle:
            return yaml.safe_load(handle)

    # -- the configuration ------------------------------------------------------------------------
    def config_documents(self, certificates_dir="/etc/kubernetes/pki"):
        api_version = self.kubeadm.api_version
        if not api_version.endswith(("/v1beta4", "/v1")):
            raise RuntimeError("the lab writes kubeadm configuration v1beta4/v1 (list-style extraArgs); kubeadm %s "
                               "defaults to %s" % (self.kubeadm.version, api_version))
        init = {
            "apiVersion": api_version, "kind": "InitConfiguration",
            "localAPIEndpoint": {"advertiseAddress": self.advertise_address, "bindPort": self.bind_port},
            "nodeRegistration": {"name": self.node_name, "criSocket": "unix:///var/run/containerd/containerd.sock",
                                 "imagePullPolicy": "IfNotPresent", "taints": []},
        }
        api_server = {"certSANs": ["127.0.0.1", "localhost"] + self.cert_sans}
        args = dict(self.apiserver_args)
        if self.etcd_servers:
            # kubeadm's local etcd is https://127.0.0.1:2379 (fixed); the lab's members listen elsewhere.
            args["etcd-servers"] = ",".join(self.etcd_servers)
        if args:
            api_server["extraArgs"] = [{"name": k, "value": str(v)} for k, v in sorted(args.items())]
        cluster = {
            "apiVersion": api_version, "kind": "ClusterConfiguration",
            "kubernetesVersion": "v" + self.kubeadm.version,
            "clusterName": "kubernetes",
            "certificatesDir": certificates_dir,
            "imageRepository": "registry.k8s.io",
            "networking": {"serviceSubnet": "10.96.0.0/12", "dnsDomain": "cluster.local"},
            "etcd": {"local": {"dataDir": "/var/lib/etcd"}},
            "apiServer": api_server,
        }
        if self.control_plane_endpoint:
            cluster["controlPlaneEndpoint"] = self.control_plane_endpoint
        return [init, cluster]

    def write_config(self):
        with open(self.config_path, "w") as handle:
            yaml.safe_dump_all(self.config_documents(), handle, sort_keys=False)

    def write_host_config(self, path):
        """The same configuration seen from the host (certificatesDir = the tree's PKI), for kubeadm without --rootfs."""
        with open(str(path), "w") as handle:
            yaml.safe_dump_all(self.config_documents(certificates_dir=self.pki_dir), handle, sort_keys=False)
        return str(path)

    # -- kubeadm commands ---------------------------------------------------------------------------
    def run(self, *args, check=True, timeout=180):
        """``kubeadm --rootfs <tree> ARGS --config /etc/kubernetes/kubeadm-config.yaml``."""
        return self.kubeadm.run(*(list(args) + ["--config", CONFIG_IN_NODE]), rootfs=self.root, check=check,
                                timeout=timeout)

    def init_phase(self, *phase):
        return self.run("init", "phase", *phase)

    def init_pki(self):
        """``init phase certs all`` and ``init phase kubeconfig all`` (existing CAs in the tree are used)."""
        self.init_phase("certs", "all")
        self.init_phase("kubeconfig", "all")
        return self

    def write_manifests(self, etcd=True):
        """``init phase etcd local`` (optional) and ``init phase control-plane all`` into etc/kubernetes/manifests."""
        if etcd:
            self.init_phase("etcd", "local")
        self.init_phase("control-plane", "all")
        return self

    def check_expiration(self):
        """``kubeadm certs check-expiration -o json``, parsed: {name: entry} for certificates and CAs."""
        info = json.loads(self.run("certs", "check-expiration", "-o", "json").stdout)
        return ({c["name"]: c for c in info.get("certificates") or []},
                {c["name"]: c for c in info.get("certificateAuthorities") or []})

    def renew(self, name):
        return self.run("certs", "renew", name)
