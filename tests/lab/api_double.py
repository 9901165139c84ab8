"""Kubernetes API double: an HTTPS server speaking the real API JSON, for the real ``kubernetes`` client.

What it serves is what the collection's API modules read (see docs/test-doubles.md):
``/version``, ``/livez``, ``/readyz``, ``/healthz``; nodes (list with ``limit``/``continue``,
``labelSelector``; get); pods (kube-system static control-plane pods, list with ``labelSelector``,
``fieldSelector=spec.nodeName=...``, ``limit``/``continue``; get); DaemonSets (list; get
``kube-proxy``).  Objects are complete enough for the strict (pydantic) models of kubernetes 37.

Authentication is real TLS: the server certificate is issued by the lab's cluster CA, and the client
must present a certificate signed by that CA (``admin.conf`` from tests/lab/pki.py).  A client with
no certificate or one from another CA fails the handshake.  With ``tokens`` set, a client may
instead send ``Authorization: Bearer <token>`` (others get a 401 Status).

Cluster content is a ``Cluster`` (from a YAML fixture in tests/fixtures/clusters/ or ``generate()``).
Pods come from the fixture unless ``kubelets`` are attached: objects with a ``pods()`` method (or
callables) returning ``[{name, namespace, node, image, containers: [{name, image, restart_count,
ready, ...}], phase}]`` (tests/lab/kubelet_double.py), read live on every request.
"""
import base64
import hashlib
import json
import os
import ssl
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import yaml

from tests.lab import pki
from tests.lab.ports import free_port

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(os.path.dirname(HERE), "fixtures", "clusters")

CONTROL_PLANE_COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd")
CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"
# kubeadm < 1.20 labelled control-plane nodes "master" only (the seed's 1.12 cluster).
LEGACY_MASTER_LABEL = "node-role.kubernetes.io/master"
TIMESTAMP = "2024-01-01T00:00:00Z"
DEFAULT_ETCD = "3.5.15-0"


def _uid(*parts):
    return str(uuid.UUID(hashlib.md5("/".join(parts).encode()).hexdigest()))


def _minor(version):
    core = version.lstrip("v").split("-")[0].split("+")[0]
    major, minor = core.split(".")[:2]
    return int(major), int(minor)


# --------------------------------------------------------------------------------------------------
# Cluster content
# --------------------------------------------------------------------------------------------------

class Node(object):
    """One node as the fixture describes it; ``to_api()`` renders the complete v1 Node."""

    def __init__(self, name, kubelet, kube_proxy=None, control_plane=False, versions=None, restarts=None,
                 ready=True, roles=None, ip="10.0.0.1", images=0, image_repository="registry.k8s.io",
                 etcd_version=DEFAULT_ETCD):
        self.name = name
        self.kubelet = kubelet
        # None: the kubelet reports its own version (pre-1.31 behaviour); "" : field left empty (1.31+).
        self.kube_proxy = kubelet if kube_proxy is None else kube_proxy
        self.control_plane = control_plane
        self.versions = dict(versions or {})
        self.restarts = dict(restarts or {})
        self.ready = ready
        self.roles = roles
        self.ip = ip
        self.images = images
        self.image_repository = image_repository
        self.etcd_version = etcd_version

    def role_labels(self):
        if self.roles is not None:
            return {"node-role.kubernetes.io/%s" % role: "" for role in self.roles}
        if not self.control_plane:
            return {}
        if _minor(self.kubelet) < (1, 20):
            return {LEGACY_MASTER_LABEL: ""}
        return {CONTROL_PLANE_LABEL: ""}

    def component_image(self, component):
        if component == "etcd":
            return "%s/etcd:%s" % (self.image_repository, self.versions.get("etcd", self.etcd_version))
        return "%s/%s:%s" % (self.image_repository, component, self.versions.get(component, self.kubelet))

    def to_api(self, index=0):
        labels = {"kubernetes.io/hostname": self.name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                  "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64"}
        labels.update(self.role_labels())
        condition = {"type": "Ready", "status": "True" if self.ready else "False",
                     "lastHeartbeatTime": TIMESTAMP, "lastTransitionTime": TIMESTAMP,
                     "reason": "KubeletReady" if self.ready else "KubeletNotReady",
                     "message": "kubelet is posting ready status" if self.ready else "container runtime is down"}
        pressure = [{"type": kind, "status": "False", "lastHeartbeatTime": TIMESTAMP, "lastTransitionTime": TIMESTAMP,
                     "reason": "KubeletHasSufficient" + kind.replace("Pressure", ""), "message": "ok"}
                    for kind in ("MemoryPressure", "DiskPressure", "PIDPressure")]
        spec = {"podCIDR": "10.244.%d.0/24" % (index % 256), "podCIDRs": ["10.244.%d.0/24" % (index % 256)]}
        if self.control_plane:
            spec["taints"] = [{"key": CONTROL_PLANE_LABEL, "effect": "NoSchedule"}]
        images = [{"names": ["%s/app-%d@sha256:%s" % (self.image_repository, i, hashlib.sha256(b"%d" % i).hexdigest()),
                             "%s/app-%d:v%d" % (self.image_repository, i, i)], "sizeBytes": 10000000 + i}
                  for i in range(self.images)]
        return {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": self.name, "uid": _uid("node", self.name), "resourceVersion": str(1000 + index),
                         "creationTimestamp": TIMESTAMP, "labels": labels,
                         "annotations": {"kubeadm.alpha.kubernetes.io/cri-socket": "unix:///run/containerd/containerd.sock",
                                         "node.alpha.kubernetes.io/ttl": "0"}},
            "spec": spec,
            "status": {
                "capacity": {"cpu": "4", "memory": "16393244Ki", "pods": "110", "ephemeral-storage": "101430960Ki"},
                "allocatable": {"cpu": "4", "memory": "16290844Ki", "pods": "110", "ephemeral-storage": "93478772582"},
                "conditions": pressure + [condition],
                "addresses": [{"type": "InternalIP", "address": self.ip}, {"type": "Hostname", "address": self.name}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "nodeInfo": {
                    "machineID": hashlib.md5(("machine" + self.name).encode()).hexdigest(),
                    "systemUUID": _uid("system", self.name),
                    "bootID": _uid("boot", self.name),
                    "kernelVersion": "6.1.0-18-amd64",
                    "osImage": "Debian GNU/Linux 12 (bookworm)",
                    "containerRuntimeVersion": "containerd://1.7.13",
                    "kubeletVersion": self.kubelet,
                    "kubeProxyVersion": self.kube_proxy,
                    "operatingSystem": "linux",
                    "architecture": "amd64",
                },
                "images": images,
            },
        }

    def static_pods(self):
        """The fixture's static control-plane pods of this node, in the kubelet double's pods() shape."""
        if not self.control_plane:
            return []
        pods = []
        for component in CONTROL_PLANE_COMPONENTS:
            if self.versions.get(component, "present") is None:
                continue  # fixture says: no such static pod on this node
            image = self.component_image(component)
            pods.append({"name": "%s-%s" % (component, self.name), "namespace": "kube-system", "node": self.name,
                         "image": image, "phase": "Running",
                         "containers": [{"name": component, "image": image, "ready": True,
                                         "restart_count": int(self.restarts.get(component, 0))}]})
        return pods


class Cluster(object):
    """What the API double serves: nodes, static pods, the kube-proxy DaemonSet, /version."""

    def __init__(self, nodes, api_version=None, kube_proxy_image=None, healthy=True, name="lab", expect=None,
                 image_repository="registry.k8s.io"):
        self.name = name
        self.nodes = list(nodes)
        apiservers = [n.versions.get("kube-apiserver", n.kubelet) for n in self.nodes if n.control_plane]
        self.api_version = api_version or (apiservers[0] if apiservers else self.nodes[0].kubelet)
        self.kube_proxy_image = kube_proxy_image
        if self.kube_proxy_image is None:
            self.kube_proxy_image = "%s/kube-proxy:%s" % (image_repository, self.api_version)
        self.healthy = healthy
        self.expect = expect or {}
        # Output of binaries on the host running the module ({name: stdout}); tests install them as scripts.
        self.host_binaries = {}

    @classmethod
    def from_dict(cls, data, name="lab"):
        version = data.get("version", "v1.30.4")
        repo = data.get("image_repository", "registry.k8s.io")
        nodes = []
        for i, spec in enumerate(data["nodes"]):
            spec = dict(spec)
            nodes.append(Node(
                name=spec.pop("name"), kubelet=spec.pop("kubelet", version), kube_proxy=spec.pop("kube_proxy", None),
                control_plane=spec.pop("control_plane", False), versions=spec.pop("versions", None),
                restarts=spec.pop("restarts", None), ready=spec.pop("ready", True), roles=spec.pop("roles", None),
                ip=spec.pop("ip", "10.0.%d.%d" % (i // 250, i % 250 + 1)), image_repository=repo,
                etcd_version=data.get("etcd_version", DEFAULT_ETCD)))
            if spec:
                raise ValueError("fixture %s: unknown node keys %s" % (name, sorted(spec)))
        cluster = cls(nodes, api_version=data.get("api_version"), kube_proxy_image=data.get("kube_proxy_image"),
                      healthy=data.get("healthy", True), name=name, expect=data.get("expect"), image_repository=repo)
        cluster.host_binaries = dict(data.get("host_binaries") or {})
        return cluster

    @classmethod
    def load(cls, name_or_path):
        path = name_or_path
        if not os.path.exists(path):
            path = os.path.join(FIXTURES, name_or_path if name_or_path.endswith(".yaml") else name_or_path + ".yaml")
        with open(path) as handle:
            data = yaml.safe_load(handle)
        return cls.from_dict(data, name=os.path.splitext(os.path.basename(path))[0])

    def node(self, name):
        return next(n for n in self.nodes if n.name == name)

    def static_pods(self):
        return [pod for node in self.nodes for pod in node.static_pods()]


def generate(nodes=5000, control_planes=3, version="v1.30.4", odd=None, images=8):
    """A cluster of ``nodes`` nodes (the first ``control_planes`` run the control plane).

    ``odd``: {node index: kubelet version} for nodes that differ from the rest.
    """
    odd = odd or {}
    members = []
    for i in range(nodes):
        control_plane = i < control_planes
        name = ("cp%d" % (i + 1)) if control_plane else "worker-%05d" % i
        members.append(Node(name, kubelet=odd.get(i, version), control_plane=control_plane,
                            ip="10.%d.%d.%d" % (i // 65536, (i // 256) % 256, i % 256), images=images))
    return Cluster(members, api_version=version, name="generated-%d" % nodes)


def fixture_names():
    return sorted(os.path.splitext(f)[0] for f in os.listdir(FIXTURES) if f.endswith(".yaml"))


# --------------------------------------------------------------------------------------------------
# API objects
# --------------------------------------------------------------------------------------------------

def version_info(git_version):
    major, minor = _minor(git_version)
    return {"major": str(major), "minor": str(minor), "gitVersion": git_version,
            "gitCommit": hashlib.sha1(git_version.encode()).hexdigest(), "gitTreeState": "clean",
            "buildDate": "2024-01-01T00:00:00Z", "goVersion": "go1.22.5", "compiler": "gc",
            "platform": "linux/amd64"}


def pod_object(pod):
    """A kubelet-double pod ({name, namespace, node, image, containers, phase}) as a complete v1 Pod."""
    containers = pod.get("containers") or [{"name": pod["name"], "image": pod.get("image", "")}]
    component = pod.get("labels", {}).get("component", containers[0]["name"])
    labels = dict(pod.get("labels") or {"component": component})
    if component in CONTROL_PLANE_COMPONENTS:
        labels.setdefault("tier", "control-plane")
    statuses = []
    for c in containers:
        ready = bool(c.get("ready", pod.get("phase") == "Running"))
        # The kubelet double says "running"/"waiting"/"terminated"; fixtures only say ready or not.
        kind = c.get("state") or ("running" if ready else "waiting")
        if kind == "running":
            state = {"running": {"startedAt": TIMESTAMP}}
        elif kind == "terminated":
            state = {"terminated": {"exitCode": int(c.get("exit_code") or 0), "reason": c.get("reason") or "Error",
                                    "startedAt": TIMESTAMP, "finishedAt": TIMESTAMP}}
        else:
            state = {"waiting": {"reason": c.get("reason") or "CrashLoopBackOff", "message": c.get("message") or "back-off"}}
        statuses.append({"name": c["name"], "image": c.get("image", pod.get("image", "")),
                         "imageID": c.get("image_id") or "%s@sha256:%s" % (
                             c.get("image", "").split(":")[0], hashlib.sha256(c.get("image", "").encode()).hexdigest()),
                         "ready": ready, "started": bool(c.get("started", ready)),
                         "restartCount": int(c.get("restart_count", 0)),
                         "state": state, "containerID": "containerd://" + hashlib.sha256(
                             (pod["name"] + c["name"]).encode()).hexdigest()})
    phase = pod.get("phase", "Running")
    ready = all(s["ready"] for s in statuses) and phase == "Running"
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": pod["name"], "namespace": pod.get("namespace", "kube-system"),
                     "uid": _uid("pod", pod["name"]), "resourceVersion": "1", "creationTimestamp": TIMESTAMP,
                     "labels": labels,
                     "annotations": {"kubernetes.io/config.source": "file", "kubernetes.io/config.seen": TIMESTAMP},
                     "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": pod["node"],
                                          "uid": _uid("node", pod["node"]), "controller": True}]},
        "spec": {"nodeName": pod["node"], "hostNetwork": True, "priorityClassName": "system-node-critical",
                 "priority": 2000001000, "restartPolicy": "Always",
                 "containers": [{"name": c["name"], "image": c.get("image", pod.get("image", "")),
                                 "imagePullPolicy": "IfNotPresent"} for c in containers]},
        "status": {"phase": phase, "hostIP": "127.0.0.1", "podIP": "127.0.0.1", "startTime": TIMESTAMP,
                   "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                   "lastTransitionTime": TIMESTAMP}],
                   "containerStatuses": statuses},
    }


def kube_proxy_daemonset(image, scheduled):
    labels = {"k8s-app": "kube-proxy"}
    return {
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "kube-proxy", "namespace": "kube-system", "uid": _uid("ds", "kube-proxy"),
                     "resourceVersion": "1", "generation": 1, "creationTimestamp": TIMESTAMP, "labels": labels},
        "spec": {"selector": {"matchLabels": labels}, "revisionHistoryLimit": 10,
                 "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"priorityClassName": "system-node-critical", "hostNetwork": True,
                                       "serviceAccountName": "kube-proxy",
                                       "containers": [{"name": "kube-proxy", "image": image,
                                                       "command": ["/usr/local/bin/kube-proxy",
                                                                   "--config=/var/lib/kube-proxy/config.conf",
                                                                   "--hostname-override=$(NODE_NAME)"]}]}}},
        "status": {"currentNumberScheduled": scheduled, "desiredNumberScheduled": scheduled, "numberMisscheduled": 0,
                   "numberReady": scheduled, "numberAvailable": scheduled, "updatedNumberScheduled": scheduled,
                   "observedGeneration": 1},
    }


def status_object(code, reason, message):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}


def _matches_labels(obj, selector):
    if not selector:
        return True
    labels = obj["metadata"].get("labels") or {}
    for term in selector.split(","):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.strip() and term.strip() not in labels:
            return False
    return True


def _matches_fields(obj, selector):
    if not selector:
        return True
    for term in selector.split(","):
        key, value = term.split("=", 1)
        if key == "spec.nodeName" and obj["spec"].get("nodeName") != value:
            return False
        if key == "metadata.name" and obj["metadata"]["name"] != value:
            return False
        if key == "metadata.namespace" and obj["metadata"].get("namespace") != value:
            return False
    return True


# --------------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------------

class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, handler, context, double):
        self.context = context
        self.double = double
        super().__init__(address, handler)

    def process_request_thread(self, request, client_address):
        # The TLS handshake runs in the request's thread, so a client that stalls or fails it never
        # blocks the accept loop.
        try:
            request.settimeout(30)
            request = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as error:
            self.double.rejected.append(str(error))
            try:
                request.close()
            except OSError:
                pass
            return
        super().process_request_thread(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the client's urllib3 pool reuses one TLS connection

    def log_message(self, *args):
        pass

    def _send(self, code, body, content_type="application/json"):
        data = body if isinstance(body, bytes) else (
            body.encode() if isinstance(body, str) else json.dumps(body, separators=(",", ":")).encode())
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802 - http.server's naming
        double = self.server.double
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        with double.lock:
            double.requests.append((url.path, query))
        if not double.authorized(self):
            self._send(401, status_object(401, "Unauthorized", "Unauthorized"))
            return
        try:
            code, body, content_type = double.route(url.path, query)
        except _ApiError as error:
            code, body, content_type = error.code, status_object(error.code, error.reason, error.message), "application/json"
        self._send(code, body, content_type)


class _ApiError(Exception):
    def __init__(self, code, reason, message):
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


class ApiDouble(object):
    """The API double as a context manager: ``with ApiDouble(workdir, cluster) as api: api.kubeconfig``.

    Attributes: ``url``, ``kubeconfig`` (admin.conf for this server), ``ca_cert``, ``client_cert``,
    ``client_key`` (the same credentials as files), ``cas`` (the lab CAs), ``requests`` (list of
    (path, query) served), ``rejected`` (TLS handshakes refused), ``cluster`` (mutable: tests may
    change versions between calls).
    """

    def __init__(self, workdir, cluster, cas=None, kubelets=None, tokens=None, host="127.0.0.1"):
        self.workdir = str(workdir)
        self.cluster = Cluster.load(cluster) if isinstance(cluster, str) else cluster
        self.cas = cas or pki.ClusterCAs.create()
        self.kubelets = list(kubelets or [])
        self.tokens = set(tokens or ())
        self.host = host
        self.requests = []
        self.rejected = []
        self.lock = threading.Lock()
        self._server = None
        self._thread = None
        self._node_cache = None
        # Continue tokens to answer with 410 Gone (as after an etcd compaction); tests set it.
        self.expire_continue_tokens = 0

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self):
        os.makedirs(self.workdir, exist_ok=True)
        server_dir = os.path.join(self.workdir, "apiserver")
        serving = pki.issue(self.cas.ca, "kube-apiserver", eku=(pki.table.SERVER_AUTH,),
                            dns=("localhost", "kubernetes", "kubernetes.default"), ips=("127.0.0.1",))
        pki.write_pair(server_dir, "apiserver.crt", "apiserver.key", serving)
        pki.write(os.path.join(server_dir, "ca.crt"), self.cas.ca.cert_pem, 0o644)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(os.path.join(server_dir, "apiserver.crt"), os.path.join(server_dir, "apiserver.key"))
        context.load_verify_locations(os.path.join(server_dir, "ca.crt"))
        context.verify_mode = ssl.CERT_OPTIONAL if self.tokens else ssl.CERT_REQUIRED
        self._server = _Server((self.host, 0), _Handler, context, self)
        self.port = self._server.server_address[1]
        self.url = "https://%s:%d" % (self.host, self.port)
        node = pki.build_node_pki(os.path.join(self.workdir, "client"), self.cas, node="admin", names=["admin.conf"],
                                  api_server=self.url, with_ca_keys=False)
        self.kubeconfig = node.path("admin.conf")
        self.ca_cert = os.path.join(node.pki_dir, "ca.crt")
        admin = node.issued["admin.conf"]
        self.client_cert = os.path.join(node.pki_dir, "admin.crt")
        self.client_key = os.path.join(node.pki_dir, "admin.key")
        pki.write_pair(node.pki_dir, "admin.crt", "admin.key", admin)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="api-double", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=10)
            self._server = None

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc):
        self.stop()
        return False

    # -- helpers for tests -------------------------------------------------------------------------

    def write_kubeconfig(self, path, cas=None, server=None, context_name=None):
        """A kubeconfig whose client certificate (and trusted CA) come from ``cas`` (default: this cluster's)."""
        cas = cas or self.cas
        issued = pki.issue(cas.ca, "kubernetes-admin", "kubeadm:cluster-admins")
        config = pki.kubeconfig(server or self.url, cas.ca, "kubernetes-admin", issued)
        if context_name:
            config["contexts"][0]["name"] = context_name
            config["current-context"] = context_name
        pki.write(str(path), yaml.safe_dump(config, sort_keys=False).encode(), 0o600)
        return str(path)

    def count(self, path):
        """How many requests were served for ``path``."""
        return sum(1 for served, query in self.requests if served == path)

    def invalidate(self):
        """Forget rendered nodes after changing ``cluster``."""
        self._node_cache = None

    # -- request handling --------------------------------------------------------------------------

    def authorized(self, handler):
        if handler.connection.getpeercert():
            return True
        header = handler.headers.get("Authorization", "")
        return header.startswith("Bearer ") and header[len("Bearer "):] in self.tokens

    def _nodes(self):
        if self._node_cache is None:
            self._node_cache = [n.to_api(i) for i, n in enumerate(self.cluster.nodes)]
        return self._node_cache

    def pods(self):
        """Every pod the double knows: live from attached kubelets, else from the fixture."""
        raw = []
        if self.kubelets:
            for kubelet in self.kubelets:
                raw.extend(kubelet() if callable(kubelet) and not hasattr(kubelet, "pods") else kubelet.pods())
        else:
            raw = self.cluster.static_pods()
        return [pod_object(p) for p in raw]

    def _page(self, kind, items, query, api_version="v1"):
        items = [i for i in items if _matches_labels(i, query.get("labelSelector"))
                 and _matches_fields(i, query.get("fieldSelector"))]
        start = 0
        with self.lock:
            expire = bool(query.get("continue")) and self.expire_continue_tokens > 0
            self.expire_continue_tokens -= 1 if expire else 0
        if expire:
            raise _ApiError(410, "Expired", "The provided continue parameter is too old to display a consistent list result. "
                                            "You can start a new list without the continue parameter.")
        if query.get("continue"):
            try:
                token = json.loads(base64.urlsafe_b64decode(query["continue"].encode()))
                start = int(token["start"])
            except (ValueError, KeyError, TypeError):
                raise _ApiError(400, "BadRequest", "continue key is not valid: %s" % query["continue"])
        limit = int(query.get("limit") or 0)
        end = start + limit if limit > 0 else len(items)
        metadata = {"resourceVersion": "5000"}
        if end < len(items):
            metadata["continue"] = base64.urlsafe_b64encode(json.dumps({"start": end}).encode()).decode()
            metadata["remainingItemCount"] = len(items) - end
        return {"apiVersion": api_version, "kind": kind, "metadata": metadata, "items": items[start:end]}

    def route(self, path, query):
        cluster = self.cluster
        path = path.rstrip("/") or "/"
        parts = [p for p in path.split("/") if p]
        if path in ("/livez", "/readyz", "/healthz"):
            return (200, "ok", "text/plain") if cluster.healthy else (
                500, "[-]etcd failed: reason withheld\n%s check failed" % path[1:], "text/plain")
        if path == "/version":
            return 200, version_info(cluster.api_version), "application/json"
        if parts[:2] == ["api", "v1"]:
            rest = parts[2:]
            if rest == ["nodes"]:
                return 200, self._page("NodeList", self._nodes(), query), "application/json"
            if len(rest) == 2 and rest[0] == "nodes":
                for node in self._nodes():
                    if node["metadata"]["name"] == rest[1]:
                        return 200, node, "application/json"
                raise _ApiError(404, "NotFound", 'nodes "%s" not found' % rest[1])
            if rest == ["pods"]:
                return 200, self._page("PodList", self.pods(), query), "application/json"
            if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] == "pods":
                pods = [p for p in self.pods() if p["metadata"]["namespace"] == rest[1]]
                if len(rest) == 3:
                    return 200, self._page("PodList", pods, query), "application/json"
                for pod in pods:
                    if pod["metadata"]["name"] == rest[3]:
                        return 200, pod, "application/json"
                raise _ApiError(404, "NotFound", 'pods "%s" not found' % rest[3])
        if parts[:3] == ["apis", "apps", "v1"]:
            rest = parts[3:]
            if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] == "daemonsets":
                sets = []
                if rest[1] == "kube-system" and cluster.kube_proxy_image:
                    sets.append(kube_proxy_daemonset(cluster.kube_proxy_image, len(cluster.nodes)))
                if len(rest) == 3:
                    return 200, self._page("DaemonSetList", sets, query, "apps/v1"), "application/json"
                for ds in sets:
                    if ds["metadata"]["name"] == rest[3]:
                        return 200, ds, "application/json"
                raise _ApiError(404, "NotFound", 'daemonsets.apps "%s" not found' % rest[3])
        raise _ApiError(404, "NotFound", "the server could not find the requested resource")


def unused_address():
    """An https URL on 127.0.0.1 where nothing listens (for 'API unreachable' tests)."""
    return "https://127.0.0.1:%d" % free_port()
