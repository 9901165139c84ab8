"""Lab nodes: Linux namespaces that play one host each, so real kubeadm runs unmodified on them.

A ``LabNode`` is a holder process (``unshare --mount --net --uts ... sleep infinity``) whose
namespaces the lab keeps:

- **network**: its own loopback (so every node has its own 127.0.0.1:2379, :10248, :10257, ...) and
  ``eth0``, one end of a veth pair whose other end is on a bridge the lab creates in the host
  namespace (``10.77.<k>.0/24``: the bridge is ``.1``, node *i* is ``.(10+i)``, default route via
  the bridge); ``net.ipv4.ip_forward=1`` inside, as kubeadm's preflight requires of a node;
- **uts**: the node's host name (kubeadm's default node name);
- **mount**: private directories of the node (under the test's work directory) bind-mounted over
  ``NODE_DIRS`` (their empty mount points are created on the host once) (/etc/kubernetes, /var/lib/etcd, /var/lib/kubelet, /usr/local/bin, ...), so
  kubeadm, the kubelet double and the collection's modules use their fixed paths and see only
  this node's files.  Everything else (the Python venv, the lab binaries in ~/.cache) is the
  host's.  Only /usr/local/bin is per node for programs: install binaries there, never in
  /usr/bin (that is the host's).

``node.run(argv)`` / ``node.popen(argv)`` run a program inside (``nsenter --target <holder>
--mount --net --uts``).  Ansible reaches a node through the lab's connection plugin
``labnode`` (tests/lab/connection_plugins/labnode.py), which does the same.

Teardown (``stop()``) kills every process in the node's network namespace, then the holder; the
bind mounts die with the mount namespace.  ``cleanup_leftovers()`` removes what a crashed run
left: every lab registers itself in ``/run/cplane-lab/<id>.json`` with the pid of the Python
process that owns it, and the cleaner removes labs whose owner is gone.
"""
import atexit
import errno
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
import weakref

STATE_DIR = "/run/cplane-lab"
PREFIX = "cpl"                  # every interface the lab creates: cplb<id> (bridge), cplv<id><i> (veth)
SUBNETS = range(100, 250)       # 10.77.<k>.0/24
# Directories each node has of its own (bind mounts inside its mount namespace).
NODE_DIRS = ("/etc/kubernetes", "/var/lib/etcd", "/var/lib/kubelet", "/etc/systemd/system", "/etc/default",
             "/etc/cni", "/opt/cni", "/usr/local/bin", "/var/lib/cplane-kubeadm", "/var/log/pods",
             "/var/log/containers", "/var/lib/cplane-lab", "/run/cplane-lab-node", "/usr/libexec/kubernetes")
# What a process inside a node finds first on its PATH: the node's own /usr/local/bin (kubeadm,
# the kubelet double's launcher, the systemctl double), then the venv (ansible's modules), then the host.
NODE_PATH = os.pathsep.join(["/usr/local/sbin", "/usr/local/bin", os.path.dirname(sys.executable),
                             "/usr/sbin", "/usr/bin", "/sbin", "/bin"])

_LIVE = weakref.WeakSet()


@atexit.register
def _stop_live():
    for lab in list(_LIVE):
        lab.stop()


def _ip(*args, check=True):
    return subprocess.run(["ip"] + list(args), capture_output=True, text=True, check=check)


def netns_id(pid):
    try:
        return os.readlink("/proc/%d/ns/net" % pid)
    except OSError:
        return None


def processes_in_netns(ns):
    """Pids whose network namespace is ``ns`` (a readlink of /proc/<pid>/ns/net)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and netns_id(int(entry)) == ns:
            found.append(int(entry))
    return found


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def command_name(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            argv = handle.read().split(b"\0")
    except OSError:
        return "?"
    names = [os.path.basename(a.decode("utf-8", "replace")) for a in argv[:3] if a]
    # python launchers: name them by their script (kubelet, systemctl, lab_lb ...)
    if names and names[0].startswith("python") and len(names) > 1:
        return names[2] if names[1] == "-m" and len(names) > 2 else names[1]
    return names[0] if names else "?"


def _kill_netns(ns, holder=None):
    """SIGKILL every process of a network namespace (and the holder last), wait until gone."""
    for _ in range(50):
        pids = [p for p in processes_in_netns(ns) if p != holder]
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)
    if holder:
        try:
            os.kill(holder, signal.SIGKILL)
        except ProcessLookupError:
            pass


class _Registry(object):
    """/run/cplane-lab/<id>.json per live lab, under a lock: subnets in use, owners, holders."""

    def __init__(self):
        os.makedirs(STATE_DIR, exist_ok=True)
        self.lock_path = os.path.join(STATE_DIR, "lock")

    def __enter__(self):
        self._fd = os.open(self.lock_path, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)

    @staticmethod
    def entries():
        found = {}
        for name in os.listdir(STATE_DIR):
            if name.endswith(".json"):
                try:
                    with open(os.path.join(STATE_DIR, name)) as handle:
                        found[name[:-5]] = json.load(handle)
                except (OSError, ValueError):
                    continue
        return found

    @staticmethod
    def write(lab_id, data):
        path = os.path.join(STATE_DIR, lab_id + ".json")
        with open(path + ".tmp", "w") as handle:
            json.dump(data, handle)
        os.replace(path + ".tmp", path)

    @staticmethod
    def remove(lab_id):
        try:
            os.unlink(os.path.join(STATE_DIR, lab_id + ".json"))
        except FileNotFoundError:
            pass


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_lab(lab_id, entry):
    for holder in entry.get("holders", []):
        if _pid_alive(holder) and entry.get("netns", {}).get(str(holder)) == netns_id(holder):
            _kill_netns(netns_id(holder), holder)
    for pid in entry.get("helpers", []):     # the load balancer and other host-side processes
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _ip("link", "delete", entry["bridge"], check=False)
    _Registry.remove(lab_id)


def cleanup_leftovers():
    """Remove the namespaces, processes and bridges of labs whose owning process is gone."""
    removed = []
    with _Registry() as registry:
        for lab_id, entry in registry.entries().items():
            if not _pid_alive(entry.get("owner", 0)) or entry.get("owner_start") != _start_time(entry.get("owner", 0)):
                _remove_lab(lab_id, entry)
                removed.append(lab_id)
    return removed


def _start_time(pid):
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return handle.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


class LabNetwork(object):
    """One bridge in the host namespace with a /24 of the lab's own: 10.77.<k>.0/24, bridge .1."""

    def __init__(self):
        self.id = uuid.uuid4().hex[:6]
        self.bridge = "%sb%s" % (PREFIX, self.id)
        self.subnet = None
        self.holders = []
        self.netns = {}
        self.helpers = []

    @property
    def gateway(self):
        return "10.77.%d.1" % self.subnet

    def address(self, index):
        return "10.77.%d.%d" % (self.subnet, 10 + index)

    def _save(self):
        _Registry.write(self.id, {"owner": os.getpid(), "owner_start": _start_time(os.getpid()),
                                  "bridge": self.bridge, "subnet": self.subnet, "holders": self.holders,
                                  "netns": self.netns, "helpers": self.helpers})

    def create(self):
        cleanup_leftovers()
        with _Registry() as registry:
            used = {e.get("subnet") for e in registry.entries().values()}
            addresses = _ip("-o", "-4", "addr", "show").stdout
            free = [k for k in SUBNETS if k not in used and " 10.77.%d." % k not in addresses]
            if not free:
                raise RuntimeError("no free 10.77.x.0/24 for a lab network (%s holds them)" % STATE_DIR)
            self.subnet = free[0]
            self._save()
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", self.gateway + "/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        return self

    def register_holder(self, pid):
        self.holders.append(pid)
        self.netns[str(pid)] = netns_id(pid)
        self._save()

    def register_helper(self, pid):
        self.helpers.append(pid)
        self._save()

    def destroy(self):
        _ip("link", "delete", self.bridge, check=False)
        _Registry.remove(self.id)


class LabNode(object):
    """One host: a holder process with its own mount, network and UTS namespaces."""

    def __init__(self, network, index, name, workdir):
        self.network = network
        self.index = index
        self.name = name
        self.address = network.address(index)
        self.root = os.path.abspath(workdir)        # backing directories: <root>/<dir without leading />
        self.holder = None
        self.netns = None
        self.veth = "%sv%s%d" % (PREFIX, network.id, index)

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self):
        for directory in NODE_DIRS:
            os.makedirs(self.host_path(directory), exist_ok=True)
        env = dict(os.environ, CPLANE_LAB_NODE="%s/%s" % (self.network.id, self.name))
        # unshare(1) without --fork execs sleep itself: the holder's pid is the namespaces' anchor.
        self.holder = subprocess.Popen(
            ["unshare", "--mount", "--net", "--uts", "--propagation", "private", "sleep", "infinity"],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        mine = netns_id(os.getpid())
        deadline = time.monotonic() + 10
        while netns_id(self.holder.pid) in (None, mine):
            if self.holder.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("unshare did not create the namespaces of node %s" % self.name)
            time.sleep(0.01)
        self.netns = netns_id(self.holder.pid)
        self.network.register_holder(self.holder.pid)
        # A bind mount needs its mount point: the (empty) directory is created on the host once
        # (mkdir -p); what the node writes there lands in its own backing directory.
        mounts = " && ".join("mkdir -p %s && mount --bind %s %s" % (d, self.host_path(d), d) for d in NODE_DIRS)
        self.run(["sh", "-ec", "hostname %s && %s && ip link set lo up && sysctl -qw net.ipv4.ip_forward=1"
                  % (self.name, mounts)])
        peer = self.veth + "p"
        _ip("link", "add", self.veth, "type", "veth", "peer", "name", peer)
        _ip("link", "set", peer, "netns", str(self.holder.pid))
        _ip("link", "set", self.veth, "master", self.network.bridge)
        _ip("link", "set", self.veth, "up")
        self.run(["sh", "-ec", "ip link set %s name eth0 && ip addr add %s/24 dev eth0 && ip link set eth0 up && "
                  "ip route add default via %s" % (peer, self.address, self.network.gateway)])
        return self

    def stop(self):
        if self.holder is None:
            return
        _kill_netns(self.netns, self.holder.pid)
        self.holder.wait(timeout=30)
        self.holder = None
        _ip("link", "delete", self.veth, check=False)   # gone with the namespace; this is belt and braces

    # -- inside the node ---------------------------------------------------------------------------
    def host_path(self, path):
        """Where a node path lives on the host (only for paths under NODE_DIRS)."""
        return os.path.join(self.root, path.lstrip("/"))

    def nsenter(self, argv):
        return ["nsenter", "--target", str(self.holder.pid), "--mount", "--net", "--uts", "--",
                "env", "PATH=" + NODE_PATH] + [str(a) for a in argv]

    def run(self, argv, check=True, timeout=600, input=None, env=None):  # noqa: A002 - subprocess's name
        proc = subprocess.run(self.nsenter(argv), capture_output=True, text=True, timeout=timeout, input=input,
                              env=env, check=False)
        if check and proc.returncode != 0:
            raise subprocess.CalledProcessError(proc.returncode, argv, proc.stdout, proc.stderr)
        return proc

    def popen(self, argv, **kwargs):
        return subprocess.Popen(self.nsenter(argv), **kwargs)

    def processes(self):
        """Pids of every process inside the node but its holder."""
        return [p for p in processes_in_netns(self.netns) if self.holder is None or p != self.holder.pid]

    def memory(self):
        """{command name: RSS KiB} summed over the node's processes."""
        usage = {}
        for pid in self.processes():
            name = command_name(pid)
            usage[name] = usage.get(name, 0) + rss_kib(pid)
        return usage

    def install(self, source, name, mode=0o755):
        """Put a program into the node's /usr/local/bin (a copy, as a package or the build role would)."""
        target = self.host_path(os.path.join("/usr/local/bin", name))
        tmp = target + ".tmp"
        try:
            os.link(source, tmp)       # same file system: no copy of a 100 MB binary
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
                raise
            shutil.copyfile(source, tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
        return target


def start_helper(network, argv, log_path):
    """A host-side lab process (the load balancer) registered for the leftover cleaner."""
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    network.register_helper(proc.pid)
    return proc


def leftovers():
    """What a lab may leave behind: interfaces named cpl*, holders and lab registrations."""
    links = [line.split(":")[1].strip().split("@")[0] for line in _ip("-o", "link", "show").stdout.splitlines()
             if line.split(":")[1].strip().startswith(PREFIX)]
    holders = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/environ" % entry, "rb") as handle:
                    if b"CPLANE_LAB_NODE=" in handle.read():
                        holders.append(int(entry))
            except OSError:
                continue
    return {"links": links, "holders": holders,
            "registrations": sorted(_Registry.entries()) if os.path.isdir(STATE_DIR) else []}
