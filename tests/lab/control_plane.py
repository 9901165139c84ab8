"""A real kube-apiserver in the lab, run by the kubelet double from the manifest kubeadm writes.

``ControlPlaneLab`` builds one control-plane node the way ``kubeadm init`` does, with the real
kubeadm (tests/lab/kubeadm.py) and the lab's real etcd (tests/lab/etcd_cluster.py):

1. ``kubeadm init phase certs all`` and ``phase kubeconfig all`` write the PKI and kubeconfigs;
2. an EtcdLab member (real etcd, TLS) gets its certificates from kubeadm's etcd CA;
3. ``kubeadm init phase control-plane apiserver`` writes ``kube-apiserver.yaml`` (``--etcd-servers``
   points at the lab member through ``apiServer.extraArgs``: kubeadm's local etcd address is fixed);
4. an ``ApiKubelet`` (the kubelet double plus what kubelet does against the API) runs the manifest:
   the image ``registry.k8s.io/kube-apiserver:v<version>`` is the lab-built binary of that version;
   it registers its Node, posts the mirror pod and serves ``/healthz``;
5. ``kubeadm init phase mark-control-plane`` (real kubeadm, through admin.conf, which it first
   grants cluster-admin with super-admin.conf) labels the node as control plane, and
   ``init phase addon kube-proxy`` creates kube-proxy's DaemonSet (no pod: no controller runs).

Further nodes join as ``ApiKubelet`` agents only (``add_node``): each registers a Node with the
kubelet version the test gives, using a kubelet client certificate (system:node:<name>, group
system:nodes) from the cluster CA, so the Node authorizer and NodeRestriction treat it as the
kubelet of that node.

What the agents do is what kubelet does for static pods against the API
(pkg/kubelet/kubelet_node_status.go registerWithAPIServer / updateNodeStatus;
pkg/kubelet/pod/mirror_client.go CreateMirrorPod / DeleteMirrorPod): create the Node with its
``nodeInfo``, patch its status (Ready, nodeInfo, addresses, daemonEndpoints), create one mirror pod
per static pod (annotations ``kubernetes.io/config.hash``, ``config.mirror`` = the same hash,
``config.source: file``, ``config.seen``; owner reference to the Node), patch the mirror pods'
status from the double's containers, and replace a mirror pod whose static pod changed.  The hash
is the double's own content hash of the manifest (md5 of file digest + node name): kubelet's is
a deep hash of the decoded pod; both change exactly when the manifest changes, which is what
kubeadm's upgrade waits for (WaitForStaticPodHash).
"""
import base64
import datetime
import hashlib
import http.client
import json
import os
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlencode, urlsplit

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.lab import pki
from tests.lab.api_double import pod_object
from tests.lab.etcd_cluster import EtcdLab
from tests.lab.kubeadm import Kubeadm, KubeadmNode
from tests.lab.kubelet_double import KubeletDouble
from tests.lab.ports import free_port

UTC = datetime.timezone.utc


def _now():
    return datetime.datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ApiError(Exception):
    def __init__(self, method, path, status, body):
        super().__init__("%s %s -> %s: %s" % (method, path, status, body[:500]))
        self.status = status


class ApiClient(object):
    """A minimal REST client with a client certificate: enough for a kubelet agent and test set-up."""

    def __init__(self, server, ca_file, cert_file=None, key_file=None, timeout=10, token=None):
        parts = urlsplit(server)
        self.server, self.host, self.port = server, parts.hostname, parts.port or 443
        self.context = ssl.create_default_context(cafile=ca_file)
        if cert_file:
            self.context.load_cert_chain(cert_file, key_file)
        self.token = token
        self.timeout = timeout

    @classmethod
    def from_kubeconfig(cls, path, directory):
        """Credentials embedded in a kubeconfig, written as files (0600) under ``directory``."""
        with open(path) as handle:
            config = yaml.safe_load(handle)
        cluster = config["clusters"][0]["cluster"]
        user = config["users"][0]["user"]
        os.makedirs(directory, mode=0o700, exist_ok=True)
        files = []
        for name, data in (("ca.crt", cluster["certificate-authority-data"]), ("client.crt", user["client-certificate-data"]),
                           ("client.key", user["client-key-data"])):
            target = os.path.join(directory, name)
            pki.write(target, base64.b64decode(data), 0o600)
            files.append(target)
        return cls(cluster["server"], *files)

    def request(self, method, path, body=None, content_type="application/json", query=None, expect=(200, 201)):
        if query:
            path = path + "?" + urlencode(query)
        conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=self.context)
        try:
            data = json.dumps(body).encode() if body is not None else None
            headers = {"Accept": "application/json"}
            if self.token:
                headers["Authorization"] = "Bearer " + self.token
            if data is not None:
                headers["Content-Type"] = content_type
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            raw = response.read().decode("utf-8", "replace")
        finally:
            conn.close()
        if expect and response.status not in expect:
            raise ApiError(method, path, response.status, raw)
        try:
            return response.status, json.loads(raw) if raw else None
        except ValueError:
            return response.status, raw

    def get(self, path, **query):
        return self.request("GET", path, query=query or None)[1]

    def patch_status(self, path, status):
        return self.request("PATCH", path, {"status": status}, "application/strategic-merge-patch+json")[1]


class _HealthzHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 - http.server's naming
        healthy = self.path.split("?")[0] == "/healthz"
        body = b"ok" if healthy else b"404 page not found\n"
        self.send_response(200 if healthy else 404)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class ApiKubelet(KubeletDouble):
    """The kubelet double plus kubelet's API side: Node registration, status, mirror pods, /healthz.

    ``api``: an ApiClient with this node's kubelet credentials.  ``kubelet_version`` is what the
    Node reports in ``status.nodeInfo.kubeletVersion`` (``v1.37.2``); kubeProxyVersion stays
    empty as kubelet leaves it since 1.31.
    """

    def __init__(self, node_name, node_root, api, kubelet_version, address="127.0.0.1", sync_interval=1.0,
                 healthz_port=None, **kwargs):
        super().__init__(node_name, node_root, **kwargs)
        self.api = api
        self.kubelet_version = kubelet_version
        self.address = address
        self.sync_interval = sync_interval
        self.healthz_port = healthz_port or free_port()
        self.node_uid = None
        self.registered = threading.Event()
        self.agent_errors = []
        self._mirrors = {}      # mirror pod name -> config hash posted
        self._posted = {}       # mirror pod name -> status last patched (patched again only when it changes)
        self._agent_stop = threading.Event()
        self._agent = None
        self._healthz = None

    def start(self):
        self._healthz = ThreadingHTTPServer(("127.0.0.1", self.healthz_port), _HealthzHandler)
        self._healthz.daemon_threads = True
        threading.Thread(target=self._healthz.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True,
                         name="healthz-%s" % self.node_name).start()
        super().start()
        self._agent_stop.clear()
        self._agent = threading.Thread(target=self._agent_loop, daemon=True, name="kubelet-api-%s" % self.node_name)
        self._agent.start()
        return self

    def stop(self):
        self._agent_stop.set()
        if self._agent is not None:
            self._agent.join(timeout=30)
            self._agent = None
        super().stop()
        if self._healthz is not None:
            self._healthz.shutdown()
            self._healthz.server_close()
            self._healthz = None

    # -- what kubelet sends ----------------------------------------------------------------------
    def node_status(self):
        now = _now()
        conditions = [{"type": kind, "status": "False", "reason": "KubeletHasSufficient" + kind.replace("Pressure", ""),
                       "message": "kubelet has sufficient resources", "lastHeartbeatTime": now, "lastTransitionTime": now}
                      for kind in ("MemoryPressure", "DiskPressure", "PIDPressure")]
        conditions.append({"type": "Ready", "status": "True", "reason": "KubeletReady",
                           "message": "kubelet is posting ready status", "lastHeartbeatTime": now,
                           "lastTransitionTime": now})
        resources = {"cpu": "2", "memory": "4Gi", "pods": "110", "ephemeral-storage": "20Gi"}
        return {
            "conditions": conditions,
            "addresses": [{"type": "InternalIP", "address": self.address}, {"type": "Hostname", "address": self.node_name}],
            "capacity": resources, "allocatable": resources,
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.healthz_port}},
            "nodeInfo": {
                "machineID": hashlib.md5(("machine" + self.node_name).encode()).hexdigest(),
                "systemUUID": hashlib.md5(("system" + self.node_name).encode()).hexdigest(),
                "bootID": hashlib.md5(("boot%s%f" % (self.node_name, self.t0)).encode()).hexdigest(),
                "kernelVersion": os.uname().release, "osImage": "cplane lab", "operatingSystem": "linux",
                "architecture": "amd64", "containerRuntimeVersion": "cplane-kubelet-double://1",
                "kubeletVersion": self.kubelet_version, "kubeProxyVersion": "",
            },
        }

    def register(self):
        labels = {"kubernetes.io/hostname": self.node_name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                  "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64"}
        node = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.node_name, "labels": labels,
                             "annotations": {"volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
                "spec": {}, "status": self.node_status()}
        status, body = self.api.request("POST", "/api/v1/nodes", node, expect=(201, 409))
        if status == 409:  # registered before (a restarted agent): kubelet then updates it
            body = self.api.get("/api/v1/nodes/%s" % self.node_name)
        self.node_uid = body["metadata"]["uid"]
        self.registered.set()

    @staticmethod
    def config_hash(pod):
        return hashlib.md5((pod.digest + pod.double.node_name).encode()).hexdigest()

    def mirror_pod(self, pod, config_hash):
        manifest = pod.manifest
        meta = manifest.get("metadata") or {}
        annotations = dict(meta.get("annotations") or {})
        annotations.update({"kubernetes.io/config.hash": config_hash, "kubernetes.io/config.mirror": config_hash,
                            "kubernetes.io/config.source": "file", "kubernetes.io/config.seen": _now()})
        spec = dict(manifest.get("spec") or {})
        spec["nodeName"] = self.node_name
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": pod.name, "namespace": pod.namespace, "labels": dict(meta.get("labels") or {}),
                             "annotations": annotations,
                             "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": self.node_name,
                                                  "uid": self.node_uid, "controller": True}]},
                "spec": spec}

    def _delete_mirror(self, namespace, name):
        self.api.request("DELETE", "/api/v1/namespaces/%s/pods/%s" % (namespace, name),
                         {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0}, expect=(200, 202, 404))

    def sync_mirror_pods(self):
        with self._lock:
            pods = list(self._pods.values())
        desired = {}
        for pod in pods:
            desired[(pod.namespace, pod.name)] = pod
            wanted = self.config_hash(pod)
            if self._mirrors.get((pod.namespace, pod.name)) != wanted:
                if (pod.namespace, pod.name) in self._mirrors:
                    self._delete_mirror(pod.namespace, pod.name)
                path = "/api/v1/namespaces/%s/pods" % pod.namespace
                status, _body = self.api.request("POST", path, self.mirror_pod(pod, wanted), expect=(201, 409))
                if status == 409 and self._existing_hash(pod) != wanted:
                    # a mirror pod of an older manifest: kubelet deletes and recreates it (one of the
                    # same manifest, posted before this kubelet restarted, is kept)
                    self._delete_mirror(pod.namespace, pod.name)
                    self.api.request("POST", path, self.mirror_pod(pod, wanted), expect=(201,))
                self._mirrors[(pod.namespace, pod.name)] = wanted
                self._posted.pop((pod.namespace, pod.name), None)
            status = pod.status()
            labels = (pod.manifest.get("metadata") or {}).get("labels")
            if labels:
                status["labels"] = labels
            body = dict(pod_object(status)["status"], hostIP=self.address, podIP=self.address)
            if self._posted.get((pod.namespace, pod.name)) != body:
                self.api.patch_status("/api/v1/namespaces/%s/pods/%s/status" % (pod.namespace, pod.name), body)
                self._posted[(pod.namespace, pod.name)] = body
        for key in [k for k in self._mirrors if k not in desired]:
            self._delete_mirror(*key)
            self._mirrors.pop(key)
            self._posted.pop(key, None)

    def _existing_hash(self, pod):
        status, body = self.api.request("GET", "/api/v1/namespaces/%s/pods/%s" % (pod.namespace, pod.name),
                                        expect=(200, 404))
        if status != 200:
            return None
        return ((body.get("metadata") or {}).get("annotations") or {}).get("kubernetes.io/config.hash")

    def _agent_loop(self):
        while not self._agent_stop.is_set():
            try:
                if not self.registered.is_set():
                    self.register()
                self.api.patch_status("/api/v1/nodes/%s/status" % self.node_name, self.node_status())
                self.sync_mirror_pods()
            except Exception as exc:  # the API server is starting, or restarting: kubelet retries
                self.agent_errors.append("%.1f %r" % (time.monotonic() - self.t0, exc))
                del self.agent_errors[:-50]
            self._agent_stop.wait(self.sync_interval)

    def mirror_pods(self):
        return dict(self._mirrors)


def load_cas(pki_dir):
    """The three CAs kubeadm wrote, as the lab's ClusterCAs (certificate and key)."""
    def load(cert_name, key_name):
        with open(os.path.join(pki_dir, cert_name), "rb") as c, open(os.path.join(pki_dir, key_name), "rb") as k:
            return pki.Issued(x509.load_pem_x509_certificate(c.read()), serialization.load_pem_private_key(k.read(), None))
    return pki.ClusterCAs(load("ca.crt", "ca.key"), load("etcd/ca.crt", "etcd/ca.key"),
                          load("front-proxy-ca.crt", "front-proxy-ca.key"))


def process_rss_kib(pid):
    with open("/proc/%d/status" % pid) as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


class ControlPlaneLab(object):
    """One kubeadm control-plane node with a real kube-apiserver on a real etcd member.  Context manager.

    Attributes after start: ``node`` (KubeadmNode), ``etcd`` (EtcdLab), ``kubelet`` (ApiKubelet of
    the control-plane node), ``url``, ``admin_kubeconfig`` (kubeadm's admin.conf), ``admin``
    (ApiClient as kubernetes-admin), ``version`` ("1.37.2"), ``timings`` (seconds per start-up step).
    """

    def __init__(self, workdir, version=None, node_name="cp1", kubelet_version=None):
        self.workdir = os.path.abspath(str(workdir))
        self.kubeadm = Kubeadm(version)
        self.version = self.kubeadm.version
        self.node_name = node_name
        self.kubelet_version = kubelet_version or "v" + self.version
        self.timings = {}
        self.etcd = None
        self.kubelet = None
        self.agents = {}

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc):
        self.stop()

    def _step(self, name, started):
        self.timings[name] = round(time.monotonic() - started, 2)

    def start(self, timeout=240):
        started = time.monotonic()
        self.port = free_port()
        self.node = KubeadmNode(os.path.join(self.workdir, self.node_name), self.kubeadm, node_name=self.node_name,
                                bind_port=self.port)
        self.node.init_pki()
        self._step("kubeadm_pki", started)
        self.cas = load_cas(self.node.pki_dir)
        self.etcd = EtcdLab(os.path.join(self.workdir, "etcd"), size=1, cas=self.cas)
        self.etcd.start()
        self._step("etcd", started)
        self.node.etcd_servers = self.etcd.endpoints
        self.node.write_config()
        self.node.init_phase("control-plane", "apiserver")
        self.url = "https://%s:%d" % (self.node.advertise_address, self.port)
        self.admin_kubeconfig = os.path.join(self.node.kubeconfig_dir, "admin.conf")
        credentials = os.path.join(self.workdir, "credentials")
        super_admin = ApiClient.from_kubeconfig(os.path.join(self.node.kubeconfig_dir, "super-admin.conf"),
                                                os.path.join(credentials, "super-admin"))
        kubelet_api = ApiClient.from_kubeconfig(os.path.join(self.node.kubeconfig_dir, "kubelet.conf"),
                                                os.path.join(credentials, "kubelet-" + self.node_name))
        self.kubelet = ApiKubelet(self.node_name, self.node.root, kubelet_api, self.kubelet_version,
                                  address=self.node.advertise_address)
        launched = time.monotonic()
        self.kubelet.start()
        self._wait(lambda: self._ready(super_admin), timeout, "kube-apiserver /readyz")
        self.timings["apiserver_ready_after_launch"] = round(time.monotonic() - launched, 2)
        # As kubeadm's wait-control-plane phase: the static pod runs and its probes pass (the startup probe's
        # initialDelaySeconds alone is 10 s), and the API shows it ready through the mirror pod.
        self._wait(lambda: self._mirror_ready(super_admin), timeout, "a ready kube-apiserver mirror pod")
        self.timings["apiserver_pod_ready_after_launch"] = round(time.monotonic() - launched, 2)
        self.node.init_phase("mark-control-plane")
        # kube-proxy's DaemonSet, as kubeadm init applies it (no controller manager runs here, so it
        # schedules no pod: the object is what node_version_check reads for kube-proxy since 1.31).
        self.node.init_phase("addon", "kube-proxy")
        self.admin = ApiClient.from_kubeconfig(self.admin_kubeconfig, os.path.join(credentials, "admin"))
        self._step("total", started)
        return self

    @staticmethod
    def _ready(client):
        try:
            return client.request("GET", "/readyz", expect=None)[0] == 200
        except (OSError, http.client.HTTPException):   # not listening yet, or closing the connection
            return False

    def _mirror_ready(self, client):
        try:
            pod = client.get("/api/v1/namespaces/kube-system/pods/kube-apiserver-%s" % self.node_name)
        except (OSError, http.client.HTTPException, ApiError):
            return False
        return all(s.get("ready") for s in (pod.get("status") or {}).get("containerStatuses") or [{}])

    def _wait(self, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.5)
        raise AssertionError("%s not reached within %ss; kubelet pods: %r; agent errors: %r; apiserver log: %s"
                             % (what, timeout, self.kubelet.pods() if self.kubelet else None,
                                self.kubelet.agent_errors[-5:] if self.kubelet else None, self.apiserver_log()[-3000:]))

    def apiserver_log(self):
        directory = os.path.join(self.node.root, "var/log/pods")
        text = ""
        for dirpath, _dirs, files in os.walk(directory):
            for name in sorted(files):
                if "kube-apiserver" in dirpath:
                    with open(os.path.join(dirpath, name), "rb") as handle:
                        text += handle.read()[-20000:].decode("utf-8", "replace")
        return text

    def apiserver_pid(self):
        pod = self.kubelet.pod("kube-apiserver-%s" % self.node_name)
        return pod["containers"][0]["pid"] if pod else None

    def apiserver_rss_kib(self):
        pid = self.apiserver_pid()
        return process_rss_kib(pid) if pid else None

    # -- more nodes --------------------------------------------------------------------------------
    def kubelet_client(self, name):
        """An ApiClient with a kubelet client certificate for node ``name`` (system:node:<name>)."""
        directory = os.path.join(self.workdir, "credentials", "kubelet-" + name)
        issued = pki.issue(self.cas.ca, "system:node:%s" % name, "system:nodes")
        pki.write_pair(directory, "client.crt", "client.key", issued)
        pki.write(os.path.join(directory, "ca.crt"), self.cas.ca.cert_pem, 0o644)
        return ApiClient(self.url, os.path.join(directory, "ca.crt"), os.path.join(directory, "client.crt"),
                         os.path.join(directory, "client.key"))

    def add_node(self, name, kubelet_version, timeout=60):
        """Start a kubelet agent for node ``name`` (no static pods) and wait until its Node is registered."""
        agent = ApiKubelet(name, os.path.join(self.workdir, "nodes", name), self.kubelet_client(name), kubelet_version)
        self.agents[name] = agent.start()
        if not agent.registered.wait(timeout):
            raise AssertionError("node %s did not register within %ss: %r" % (name, timeout, agent.agent_errors[-5:]))
        return agent

    def remove_node(self, name):
        """Stop the node's kubelet agent and delete its Node (as ``kubectl delete node`` does)."""
        agent = self.agents.pop(name)
        agent.stop()
        self.admin.request("DELETE", "/api/v1/nodes/%s" % name, expect=(200, 404))

    def stop(self):
        for name in list(self.agents):
            self.agents.pop(name).stop()
        if self.kubelet is not None:
            self.kubelet.stop()
        if self.etcd is not None:
            self.etcd.stop()
