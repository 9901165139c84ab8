"""Run the collection's modules and playbooks for real, through ``ansible`` / ``ansible-playbook``.

Results come back as Python dicts: ad-hoc runs use the built-in ``tree`` output; playbook runs use
the test-only ``record_results`` callback (one JSON line per task result).
"""
import glob
import json
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BIN = os.path.dirname(sys.executable)


def ansible_env(extra=None):
    env = dict(os.environ)
    env.update({
        "ANSIBLE_CALLBACK_PLUGINS": os.path.join(HERE, "callback_plugins"),
        # the lab's ``labnode`` connection (tests/lab/connection_plugins): tasks inside a lab node
        "ANSIBLE_CONNECTION_PLUGINS": os.path.join(HERE, "connection_plugins"),
        "ANSIBLE_CALLBACKS_ENABLED": "record_results",
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "ANSIBLE_LOCALHOST_WARNING": "False",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False",
        "ANSIBLE_ROLES_PATH": os.path.join(ROOT, "roles"),
        "PATH": BIN + os.pathsep + env.get("PATH", ""),
    })
    # Modules must cope without it (they set it themselves); tests prove that.
    env.pop("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", None)
    env.update(extra or {})
    return env


class ModuleRun(object):
    """One ``ansible`` ad-hoc run of a module, started in the background.

    ``wait()`` returns the result dict as run_module does; ``kill()`` signals the whole process tree
    (the ansible controller, its worker and the module process), as a crash of the node would.
    """

    def __init__(self, name, args=None, check=False, diff=False, env=None):
        self.fqcn = name if "." in name else "cplane.kubeadm." + name
        self._tmp = tempfile.TemporaryDirectory()
        self.results = os.path.join(self._tmp.name, "results.jsonl")
        cmd = [os.path.join(BIN, "ansible"), "localhost", "-c", "local", "-i", "localhost,", "-m", self.fqcn]
        if args:
            cmd += ["-a", json.dumps(args)]
        if check:
            cmd.append("--check")
        if diff:
            cmd.append("--diff")
        run_env = ansible_env(env)
        run_env.update(CPLANE_RESULTS=self.results, ANSIBLE_LOAD_CALLBACK_PLUGINS="1")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=run_env,
                                     start_new_session=True)

    def kill(self, sig=signal.SIGKILL):
        """Signal the controller and every process below it. ansible's worker calls setsid(), so the
        module runs in a session of its own: the controller's process group does not reach it."""
        for pid in [self.proc.pid] + descendants(self.proc.pid):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def wait(self, timeout=900):
        try:
            stdout, stderr = self.proc.communicate(timeout=timeout)
            if not os.path.exists(self.results):
                raise AssertionError("no result from %s (rc=%s)\nstdout:\n%s\nstderr:\n%s"
                                     % (self.fqcn, self.proc.returncode, stdout, stderr))
            with open(self.results) as handle:
                entry = json.loads(handle.readline())
        finally:
            if self.proc.poll() is None:
                self.kill()
                self.proc.wait()
            self._tmp.cleanup()
        result = entry["result"]
        result["failed"] = entry["status"] == "failed"
        result["_stdout"] = stdout + stderr
        return result


def descendants(pid):
    """Every process below ``pid`` (from /proc), children before grandchildren."""
    found, queue = [], [pid]
    while queue:
        parent = queue.pop(0)
        for task in glob.glob("/proc/%d/task/*/children" % parent):
            try:
                with open(task) as handle:
                    children = [int(c) for c in handle.read().split()]
            except OSError:
                continue
            found.extend(children)
            queue.extend(children)
    return found


def start_module(name, args=None, check=False, diff=False, env=None):
    """Start ``cplane.kubeadm.<name>`` on localhost in the background; ``.wait()`` gives its result."""
    return ModuleRun(name, args, check, diff, env)


def run_module(name, args=None, check=False, diff=False, env=None, timeout=900):
    """Run ``cplane.kubeadm.<name>`` on localhost; return its result dict (``failed`` on failure)."""
    return start_module(name, args, check, diff, env).wait(timeout)


@dataclass
class PlaybookRun:
    rc: int
    output: str
    results: list

    def task(self, name):
        """Results of the tasks whose name contains ``name``."""
        return [r for r in self.results if name in (r["task"] or "")]


def run_playbook(playbook, extra_vars=None, check=False, diff=False, inventory="localhost,", env=None,
                 limit=None, timeout=1800):
    with tempfile.TemporaryDirectory() as tmp:
        results = os.path.join(tmp, "results.jsonl")
        cmd = [os.path.join(BIN, "ansible-playbook"), "-i", inventory, playbook,
               "-e", json.dumps(extra_vars or {})]
        if inventory == "localhost,":
            cmd += ["-c", "local"]
        if check:
            cmd.append("--check")
        if diff:
            cmd.append("--diff")
        if limit:
            cmd += ["--limit", limit]
        run_env = ansible_env(env)
        run_env["CPLANE_RESULTS"] = results
        proc = subprocess.run(cmd, capture_output=True, text=True, env=run_env, timeout=timeout, check=False)
        entries = []
        if os.path.exists(results):
            with open(results) as handle:
                entries = [json.loads(line) for line in handle if line.strip()]
    return PlaybookRun(proc.returncode, proc.stdout + proc.stderr, entries)
