"""Running the build playbook on a LabCluster (tests/lab/cluster.py): inventory, the lab's variables,
a background run that a test can kill, and the figures a run leaves in its recorded task results."""
import json
import os
import signal
import subprocess
import tempfile
import time

from tests.lab.ansible_run import BIN, ROOT, PlaybookRun, ansible_env, descendants

PLAYBOOK = os.path.join(ROOT, "playbooks", "build.yml")
# What the lab cannot have (tests/lab/cluster.py): no container runtime, no package repository, and a
# node's network namespace owns neither the host's kernel modules, /etc/sysctl.d nor its swap.
LAB_SKIPS = ["containerd", "package_repository", "kernel_modules", "sysctl", "swap"]


def lab_cluster(workdir, control_planes, workers):
    """Start a LabCluster of bare nodes in ``workdir`` (no kubeadm, kubelet or unit installed: the role's
    ``binaries`` method installs them); yields (cluster, inventory path, the role's lab variables), then stops it."""
    from tests.lab.cluster import LabCluster
    cluster = LabCluster(str(workdir), control_planes=control_planes, workers=workers, packages=False).start()
    try:
        yield cluster, cluster.write_inventory(os.path.join(str(workdir), "inventory.yml")), lab_vars(cluster)
    finally:
        cluster.stop()


def lab_vars(cluster):
    """The role's variables for the lab: its endpoint, CRI socket, preflight exceptions, etcd tag,
    kubeadm timeouts sized for a loaded 2-core machine, and the binaries to install (lab kubeadm and
    kubectl, the kubelet double's launcher: LabCluster.binary_sources)."""
    from tests.lab.cluster import CRI_SOCKET, ETCD_IMAGE_TAG, IGNORE_PREFLIGHT, KUBEADM_TIMEOUTS
    found = cluster.binary_sources()
    return {
        "cluster_build_become": False,
        "cluster_build_kubernetes_version": cluster.version,
        "cluster_build_control_plane_endpoint": cluster.endpoint,
        "cluster_build_cri_socket": CRI_SOCKET,
        "cluster_build_ignore_preflight_errors": list(IGNORE_PREFLIGHT),
        "cluster_build_cluster_configuration": {"etcd": {"local": {"imageTag": ETCD_IMAGE_TAG}}},
        "cluster_build_init_configuration": {"timeouts": KUBEADM_TIMEOUTS},
        "cluster_build_join_configuration": {"timeouts": KUBEADM_TIMEOUTS},
        "cluster_build_install_method": "binaries",
        "cluster_build_binaries": found,
        "cluster_build_skip_prerequisites": list(LAB_SKIPS),
        "cluster_build_kubeadm_timeout": 1500,
        "control_plane_report_become": False,
    }


class BackgroundPlaybook(object):
    """ansible-playbook in a session of its own; ``kill()`` ends it and everything below it."""

    def __init__(self, inventory, extra_vars, check=False, playbook=PLAYBOOK):
        self._tmp = tempfile.TemporaryDirectory()
        self.results_path = os.path.join(self._tmp.name, "results.jsonl")
        cmd = [os.path.join(BIN, "ansible-playbook"), "-i", inventory, playbook, "-e", json.dumps(extra_vars)]
        if check:
            cmd.append("--check")
        env = ansible_env({"CPLANE_RESULTS": self.results_path})
        self.started = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                     start_new_session=True)
        self.seconds = None

    def kill(self):
        for pid in [self.proc.pid] + descendants(self.proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def wait(self, timeout=3600):
        try:
            output = self.proc.communicate(timeout=timeout)[0]
        finally:
            if self.proc.poll() is None:
                self.kill()
                self.proc.wait()
        self.seconds = time.monotonic() - self.started
        entries = []
        if os.path.exists(self.results_path):
            with open(self.results_path) as handle:
                entries = [json.loads(line) for line in handle if line.strip()]
        self._tmp.cleanup()
        return PlaybookRun(self.proc.returncode, output, entries)


def run_build(inventory, extra_vars, check=False, timeout=3600):
    run = BackgroundPlaybook(inventory, extra_vars, check)
    result = run.wait(timeout)
    result.seconds = run.seconds
    return result


def kubeadm_seconds(run):
    """Seconds kubeadm processes ran in a recorded run: kubeadm_bootstrap's own measure, plus the
    ``delta`` of the command tasks that ran kubeadm (certificate key, token, reset)."""
    total = 0.0
    for entry in run.results:
        result = entry["result"]
        if entry["action"].endswith("kubeadm_bootstrap"):
            total += float(result.get("kubeadm_seconds") or 0)
        elif entry["action"].endswith("command") and "kubeadm" in json.dumps(result.get("cmd", "")) and result.get("delta"):
            h, m, s = result["delta"].split(":")
            total += int(h) * 3600 + int(m) * 60 + float(s)
    return total


def changed(run):
    return [(r["host"], r["task"]) for r in run.results if r["result"].get("changed")]
