"""The kubelet double as a program on a lab node: what ``/usr/local/bin/kubelet`` runs there.

A lab node's ``kubelet`` is a small launcher (written by ``kubelet_launcher(version)``) that calls
``main(argv, version)``.  It behaves as kubelet does toward kubeadm, the API server and systemd:

- ``kubelet --version`` prints ``Kubernetes v<version>``: the version of the launcher file
  installed, so installing a newer launcher (an upgrade) changes what the node reports.
- Flags as the systemd drop-in of the kubeadm packages passes them (``--config``,
  ``--kubeconfig``, ``--bootstrap-kubeconfig``, plus ``$KUBELET_KUBEADM_ARGS`` from
  /var/lib/kubelet/kubeadm-flags.env, where ``--hostname-override`` and ``--node-ip`` count).
  Without the ``--config`` file it exits with status 1, as kubelet does (systemd restarts it:
  the crash loop of a node kubeadm has not set up yet).
- From the KubeletConfiguration (/var/lib/kubelet/config.yaml): ``staticPodPath`` (its static
  pods run under the kubelet double, tests/lab/kubelet_double.py, with the real binaries behind
  the images), ``healthzBindAddress``/``healthzPort`` (kubelet's ``/healthz``, 127.0.0.1:10248
  by default: kubeadm waits for it), ``rotateCertificates``.
- Credentials as kubelet gets them (pkg/kubelet/certificate/bootstrap/bootstrap.go
  LoadClientCert, pkg/kubelet/certificate/kubelet.go, client-go util/certificate): with a
  usable ``--kubeconfig`` it uses it, and with rotation on and the client certificate embedded
  it stores that certificate as ``<cert-dir>/kubelet-client-current.pem`` (what kubeadm's
  ``kubelet-finalize`` phase looks for); with only ``--bootstrap-kubeconfig`` (kubeadm join) it
  makes an ECDSA P-256 key and a CSR (signer ``kubernetes.io/kube-apiserver-client-kubelet``,
  CN ``system:node:<name>``, O ``system:nodes``, usages digital signature + client auth),
  waits until the real kube-controller-manager approves and signs it (csrapproving + csrsigning,
  from kubeadm's manifest), writes ``kubelet-client-<time>.pem`` with the symlink
  ``kubelet-client-current.pem`` and the kubeconfig pointing at it (user ``default-auth``).
- Then what ApiKubelet does (tests/lab/control_plane.py): Node registration, node status every
  10 s (kubelet's nodeStatusUpdateFrequency), mirror pods of its static pods and their status.
- Pods the scheduler binds to the node (coredns, kube-proxy, a drained workload) are **not run**:
  they stay Pending.  When one gets a ``deletionTimestamp`` (eviction, ``kubectl drain``,
  ``kubectl delete``) the double finishes the deletion as kubelet does once the containers are
  gone: ``DELETE`` with ``gracePeriodSeconds: 0`` and the pod's UID as precondition
  (pkg/kubelet/status/status_manager.go). So drains complete.
- SIGTERM (``systemctl stop/restart kubelet``) leaves the static pods' processes running, as
  stopping kubelet leaves containers running in the container runtime; the next kubelet double
  takes them over (same manifest content: same pod UID), so ``kubeadm init``'s kubelet-finalize
  restart or an upgrade's kubelet restart does not restart etcd or the API server.
"""
import base64
import datetime
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.lab.control_plane import ApiClient, ApiError, ApiKubelet
from tests.lab.kubelet_double import AdoptedProcess, _proc_start_time

LAB_DIR = "/var/lib/cplane-lab"            # the node's own (a bind mount): credentials as files, state
STATE_FILE = os.path.join(LAB_DIR, "kubelet-containers.json")
SIGNER = "kubernetes.io/kube-apiserver-client-kubelet"
NODE_STATUS_EVERY = 10.0
BOUND_PODS_EVERY = 2.0


def kubelet_launcher(version, python=None):
    """The text of a lab node's ``/usr/local/bin/kubelet`` for kubelet ``version`` ("1.36.3")."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return ("#!%s\n# cplane lab: the kubelet double (tests/lab/node_kubelet.py), kubelet v%s\n"
            "import sys\nsys.path[:0] = [%r, %r]\n"
            "from tests.lab.node_kubelet import main\nsys.exit(main(sys.argv[1:], %r))\n"
            % (python or sys.executable, version, root, _collections_root(), version))


def _collections_root():
    from tests.conftest import COLLECTIONS_ROOT
    return COLLECTIONS_ROOT


def parse_flags(argv):
    flags, rest = {}, []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            if not eq:
                if i + 1 < len(argv) and not argv[i + 1].startswith("--") and name not in ("version",):
                    value = argv[i + 1]
                    i += 1
                else:
                    value = "true"
            flags[name] = value
        else:
            rest.append(arg)
        i += 1
    return flags, rest


def _load_kubeconfig(path):
    with open(path) as handle:
        config = yaml.safe_load(handle) or {}
    contexts = {c["name"]: c["context"] for c in config.get("contexts") or []}
    context = contexts.get(config.get("current-context")) or (list(contexts.values()) or [{}])[0]
    clusters = {c["name"]: c["cluster"] for c in config.get("clusters") or []}
    users = {u["name"]: u["user"] for u in config.get("users") or []}
    cluster = clusters.get(context.get("cluster")) or (list(clusters.values()) or [None])[0]
    user = users.get(context.get("user")) or (list(users.values()) or [{}])[0]
    if not cluster or not cluster.get("server"):
        raise ValueError("%s: no cluster server" % path)
    return cluster, user or {}


def _write(path, data, mode=0o600):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data if isinstance(data, bytes) else data.encode())
    os.replace(tmp, path)


def _ca_file(cluster, name):
    if cluster.get("certificate-authority-data"):
        path = os.path.join(LAB_DIR, "credentials", name + "-ca.crt")
        _write(path, base64.b64decode(cluster["certificate-authority-data"]), 0o644)
        return path
    return cluster.get("certificate-authority")


class NodeKubelet(ApiKubelet):
    """ApiKubelet that gets its credentials as kubelet does and outlives its own restarts."""

    def __init__(self, node_name, address, version, kubeconfig, bootstrap_kubeconfig, cert_dir, rotate,
                 static_pod_path, healthz_port):
        super().__init__(node_name, "/", None, "v" + version, address=address, healthz_port=healthz_port,
                         manifests_dir=static_pod_path or "/etc/kubernetes/manifests")
        self.kubeconfig = kubeconfig
        self.bootstrap_kubeconfig = bootstrap_kubeconfig
        self.cert_dir = cert_dir
        self.rotate = rotate
        self._adopt = self._load_state()
        self._last_status = 0.0
        self._last_bound = 0.0
        self.deleted_pods = []

    # -- containers of the previous kubelet ------------------------------------------------------
    @staticmethod
    def _load_state():
        try:
            with open(STATE_FILE) as handle:
                return json.load(handle)
        except (OSError, ValueError):
            return {}

    def adoptable(self, container):
        entry = self._adopt.pop("%s/%s" % (container.pod.uid, container.name), None)
        if not entry or _proc_start_time(entry["pid"]) != entry["start_time"]:
            return None
        container.restart_count = entry["restart_count"]
        return AdoptedProcess(entry["pid"], entry["start_time"]), entry["started_at"]

    def save_state(self):
        state = {}
        with self._lock:
            pods = list(self._pods.values())
        for pod in pods:
            for container in pod.containers:
                proc = container.proc
                if proc is not None and proc.poll() is None:
                    state["%s/%s" % (pod.uid, container.name)] = {
                        "pid": proc.pid, "start_time": _proc_start_time(proc.pid),
                        "restart_count": container.restart_count, "started_at": container.started_at_wall}
        _write(STATE_FILE, json.dumps(state))

    # -- credentials -------------------------------------------------------------------------------
    def credentials(self):
        """An ApiClient for this node's kubelet identity, bootstrapping one if needed."""
        if os.path.exists(self.kubeconfig):
            cluster, user = _load_kubeconfig(self.kubeconfig)
            ca = _ca_file(cluster, "kubelet")
            if user.get("client-certificate-data"):
                cert = base64.b64decode(user["client-certificate-data"])
                key = base64.b64decode(user["client-key-data"])
                current = os.path.join(self.cert_dir, "kubelet-client-current.pem")
                if self.rotate and not os.path.exists(current):
                    # client-go's certificate manager stores the initial certificate (getCurrentCertificateOrBootstrap)
                    self._store(cert, key)
                cert_file = os.path.join(LAB_DIR, "credentials", "kubelet.crt")
                key_file = os.path.join(LAB_DIR, "credentials", "kubelet.key")
                _write(cert_file, cert)
                _write(key_file, key)
                return ApiClient(cluster["server"], ca, cert_file, key_file)
            return ApiClient(cluster["server"], ca, user.get("client-certificate"), user.get("client-key"))
        if not os.path.exists(self.bootstrap_kubeconfig):
            raise RuntimeError("unable to load bootstrap kubeconfig: stat %s: no such file or directory"
                               % self.bootstrap_kubeconfig)
        return self.tls_bootstrap()

    def _store(self, cert_pem, key_pem):
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d-%H-%M-%S")
        target = os.path.join(self.cert_dir, "kubelet-client-%s.pem" % stamp)
        _write(target, cert_pem + key_pem)
        link = os.path.join(self.cert_dir, "kubelet-client-current.pem")
        tmp = link + ".tmp"
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(target, tmp)
        os.replace(tmp, link)
        return link

    def tls_bootstrap(self):
        cluster, user = _load_kubeconfig(self.bootstrap_kubeconfig)
        ca = _ca_file(cluster, "bootstrap")
        client = ApiClient(cluster["server"], ca, user.get("client-certificate"), user.get("client-key"),
                           token=user.get("token"))
        key = ec.generate_private_key(ec.SECP256R1())
        csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
            x509.NameAttribute(NameOID.COMMON_NAME, "system:node:%s" % self.node_name)])).sign(key, hashes.SHA256())
        body = {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
                "metadata": {"generateName": "csr-"},
                "spec": {"request": base64.b64encode(csr.public_bytes(serialization.Encoding.PEM)).decode(),
                         "signerName": SIGNER, "usages": ["digital signature", "client auth"]}}
        _status, created = client.request("POST", "/apis/certificates.k8s.io/v1/certificatesigningrequests", body)
        name = created["metadata"]["name"]
        self.record_event("bootstrap: posted CSR %s" % name)
        while not self._agent_stop.is_set():
            got = client.get("/apis/certificates.k8s.io/v1/certificatesigningrequests/%s" % name)
            conditions = {c["type"]: c for c in (got.get("status") or {}).get("conditions") or []}
            for bad in ("Denied", "Failed"):
                if bad in conditions:
                    raise RuntimeError("CSR %s %s: %s" % (name, bad, conditions[bad].get("message")))
            if (got.get("status") or {}).get("certificate"):
                cert = base64.b64decode(got["status"]["certificate"])
                break
            self._agent_stop.wait(1.0)
        else:
            raise RuntimeError("stopped during TLS bootstrap")
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                    serialization.NoEncryption())
        current = self._store(cert, key_pem)
        with open(ca, "rb") as handle:
            ca_data = base64.b64encode(handle.read()).decode()
        config = {"apiVersion": "v1", "kind": "Config",
                  "clusters": [{"name": "default-cluster",
                                "cluster": {"server": cluster["server"], "certificate-authority-data": ca_data}}],
                  "contexts": [{"name": "default-context",
                                "context": {"cluster": "default-cluster", "namespace": "default", "user": "default-auth"}}],
                  "current-context": "default-context",
                  "users": [{"name": "default-auth", "user": {"client-certificate": current, "client-key": current}}]}
        _write(self.kubeconfig, yaml.safe_dump(config, default_flow_style=False))
        self.record_event("bootstrap: CSR %s signed, wrote %s" % (name, self.kubeconfig))
        return ApiClient(cluster["server"], ca, current, current)

    def record_event(self, message):
        print("%s %s" % (time.strftime("%H:%M:%S"), message), flush=True)

    # -- the agent loop: credentials, registration, status, mirror pods, bound pods ---------------
    def _agent_loop(self):
        while not self._agent_stop.is_set():
            try:
                if self.api is None:
                    self.api = self.credentials()
                if not self.registered.is_set():
                    self.register()
                    self.record_event("registered node %s" % self.node_name)
                now = time.monotonic()
                if now - self._last_status >= NODE_STATUS_EVERY:
                    self.api.patch_status("/api/v1/nodes/%s/status" % self.node_name, self.node_status())
                    self._last_status = now
                self.sync_mirror_pods()
                if now - self._last_bound >= BOUND_PODS_EVERY:
                    self.finish_deletions()
                    self._last_bound = now
            except Exception as exc:  # the API server is starting or restarting: kubelet retries
                self.agent_errors.append("%.1f %r" % (time.monotonic() - self.t0, exc))
                del self.agent_errors[:-50]
                self.record_event("agent: %r" % (exc,))
            self._agent_stop.wait(1.0)

    def finish_deletions(self):
        """Pods bound here that are being deleted: finish it (the double runs no containers for them)."""
        pods = self.api.get("/api/v1/pods", fieldSelector="spec.nodeName=%s" % self.node_name)
        for pod in pods.get("items") or []:
            meta = pod["metadata"]
            if not meta.get("deletionTimestamp") or "kubernetes.io/config.mirror" in (meta.get("annotations") or {}):
                continue
            options = {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0,
                       "preconditions": {"uid": meta["uid"]}}
            try:
                self.api.request("DELETE", "/api/v1/namespaces/%s/pods/%s" % (meta["namespace"], meta["name"]),
                                 options, expect=(200, 202, 404, 409))
                self.deleted_pods.append("%s/%s" % (meta["namespace"], meta["name"]))
                self.record_event("deleted terminating pod %s/%s" % (meta["namespace"], meta["name"]))
            except ApiError as exc:
                self.record_event("delete %s/%s: %s" % (meta["namespace"], meta["name"], exc))


def _node_address():
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True,
                         check=False).stdout
    for line in out.splitlines():
        return line.split()[3].split("/")[0]
    return "127.0.0.1"


def main(argv, version):
    flags, _rest = parse_flags(argv)
    if flags.get("version") not in (None, "false"):
        print("Kubernetes v%s" % version)
        return 0
    config_path = flags.get("config")
    config = {}
    if config_path:
        try:
            with open(config_path) as handle:
                config = yaml.safe_load(handle) or {}
        except OSError as exc:
            print('E "command failed" err="failed to load kubelet config file, path: %s, error: %s"'
                  % (config_path, exc), file=sys.stderr)
            return 1
    name = (flags.get("hostname-override") or socket.gethostname()).lower()
    kubelet = NodeKubelet(
        name, flags.get("node-ip") or _node_address(), version,
        kubeconfig=flags.get("kubeconfig", "/etc/kubernetes/kubelet.conf"),
        bootstrap_kubeconfig=flags.get("bootstrap-kubeconfig", "/etc/kubernetes/bootstrap-kubelet.conf"),
        cert_dir=flags.get("cert-dir", "/var/lib/kubelet/pki"), rotate=config.get("rotateCertificates", False),
        static_pod_path=config.get("staticPodPath"), healthz_port=int(config.get("healthzPort", 10248)))
    print("%s kubelet double v%s for node %s (%s) flags %s" % (time.strftime("%H:%M:%S"), version, name,
                                                                kubelet.address, " ".join(argv)), flush=True)
    done = threading.Event()

    def on_term(_signum, _frame):
        # kubelet stops; the containers keep running (the next kubelet double takes them over)
        kubelet.save_state()
        os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    kubelet.start()
    kubelet.save_state()
    while not done.wait(5):
        kubelet.save_state()
    return 0
