"""Run the collection's modules and playbooks for real, through ``ansible`` / ``ansible-playbook``.

Results come back as Python dicts: ad-hoc runs use the built-in ``tree`` output; playbook runs use
the test-only ``record_results`` callback (one JSON line per task result).
"""
import json
import os
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


def run_module(name, args=None, check=False, diff=False, env=None, timeout=900):
    """Run ``cplane.kubeadm.<name>`` on localhost; return its result dict (``failed`` on failure)."""
    fqcn = name if "." in name else "cplane.kubeadm." + name
    with tempfile.TemporaryDirectory() as tmp:
        results = os.path.join(tmp, "results.jsonl")
        cmd = [os.path.join(BIN, "ansible"), "localhost", "-c", "local", "-i", "localhost,",
               "-m", fqcn]
        if args:
            cmd += ["-a", json.dumps(args)]
        if check:
            cmd.append("--check")
        if diff:
            cmd.append("--diff")
        run_env = ansible_env(env)
        run_env.update(CPLANE_RESULTS=results, ANSIBLE_LOAD_CALLBACK_PLUGINS="1")
        proc = subprocess.run(cmd, capture_output=True, text=True, env=run_env, timeout=timeout, check=False)
        if not os.path.exists(results):
            raise AssertionError("no result from %s (rc=%s)\nstdout:\n%s\nstderr:\n%s"
                                 % (fqcn, proc.returncode, proc.stdout, proc.stderr))
        with open(results) as handle:
            entry = json.loads(handle.readline())
        result = entry["result"]
        result["failed"] = entry["status"] == "failed"
    result["_stdout"] = proc.stdout + proc.stderr
    return result


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
