"""Benchmark: node_version_check against the Kubernetes API double serving 5,000 nodes.

Prints, for a generated cluster (3 control-plane nodes, 4,997 workers, 8 images per node as real
nodes report them, one worker on an older kubelet):
- the module process (plugins/modules/node_version_check.py run as Ansible runs it, with its
  arguments file): wall time and peak RSS (median of --runs),
- the obvious alternative in the same run: one unpaginated ``list_node()`` through the client with
  its full models (what ``kubectl get nodes -o json`` piped into a script amounts to), then the
  same evaluation: wall time, peak RSS and the ratios,
- the same module through the ``ansible`` CLI, for the Ansible overhead on top.

Targets (issue #4): module run under 3 s and under 200 MB.
Run: .venv/bin/python tests/benchmarks/node_version_check_5000.py [--nodes N] [--runs N] [--page-size N]
Not part of the test command; it asserts nothing.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
import tests.conftest  # noqa: E402,F401  (makes ansible_collections.cplane.kubeadm importable)

from tests.lab.ansible_run import run_module  # noqa: E402
from tests.lab.api_double import ApiDouble, generate  # noqa: E402
from tests.lab.pki import ClusterCAs  # noqa: E402

MODULE = os.path.join(ROOT, "plugins", "modules", "node_version_check.py")

# The alternative: everything in one call, deserialized into the client's models.
ALTERNATIVE = r"""
import sys
from kubernetes import client as k8s
from ansible_collections.cplane.kubeadm.plugins.module_utils import _k8s_client, _kubeadm
from ansible_collections.cplane.kubeadm.plugins.module_utils._versions import skew
with _k8s_client.connect(kubeconfig=sys.argv[1]) as client:
    core, apps = k8s.CoreV1Api(client.api_client), k8s.AppsV1Api(client.api_client)
    api_server = client.call("version", k8s.VersionApi(client.api_client).get_code).git_version
    items = client.call("nodes", core.list_node).items
    pods = client.call("pods", core.list_namespaced_pod, "kube-system", label_selector="tier=control-plane").items
    ds = client.call("ds", apps.read_namespaced_daemon_set, "kube-proxy", "kube-system")
nodes = {}
for n in items:
    info = n.status.node_info
    nodes[n.metadata.name] = {"name": n.metadata.name, "kubelet": info.kubelet_version, "kube_proxy": info.kube_proxy_version,
                              "kube_proxy_source": "node", "control_plane": {}, "restarts": {},
                              "roles": sorted(k[len("node-role.kubernetes.io/"):] for k in n.metadata.labels
                                              if k.startswith("node-role.kubernetes.io/"))}
for p in pods:
    nodes[p.spec.node_name]["control_plane"][p.metadata.labels["component"]] = _kubeadm.image_tag(p.spec.containers[0].image)
inventory = {"api_server": api_server, "nodes": list(nodes.values()),
             "kube_proxy_daemonset": _kubeadm.image_tag(ds.spec.template.spec.containers[0].image), "local": {}}
print(len(inventory["nodes"]), len(skew.evaluate_skew(inventory)), len(skew.find_mixed_versions(inventory)))
"""


# Peak RSS is read by the child itself (VmHWM of its own address space, written to stderr at exit):
# getrusage's ru_maxrss of a child also counts the parent's pages it was forked from.
PEAK_RSS = r"""
import atexit, runpy, sys
def _report():
    with open("/proc/self/status") as status:
        sys.stderr.write("\n" + next(line for line in status if line.startswith("VmHWM")))
atexit.register(_report)
"""
RUN_MODULE = PEAK_RSS + "sys.argv = sys.argv[1:]\nrunpy.run_path(sys.argv[0], run_name='__main__')\n"


def run_child(argv, env):
    """Run ``argv``: (wall s, peak RSS MiB, stdout, CPU s); CPU from wait4 (this child's own rusage)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    # Read stdout fully before reaping, so the pipe never blocks the child.
    out = proc.stdout.read()
    err = proc.stderr.read()
    status, usage = os.wait4(proc.pid, 0)[1:]
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit("%s failed (%s):\n%s" % (argv[1], proc.returncode, (err or out).decode()[-3000:]))
    peak_kib = int(err.decode().rsplit("VmHWM:", 1)[1].split()[0])
    return wall, peak_kib / 1024.0, out, usage.ru_utime + usage.ru_stime


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--page-size", type=int, default=500)
    options = parser.parse_args()
    env = dict(os.environ, PYTHONPATH=tests.conftest.COLLECTIONS_ROOT)
    cluster = generate(nodes=options.nodes, control_planes=3, version="v1.30.4", odd={options.nodes - 1: "v1.29.8"})
    with tempfile.TemporaryDirectory() as tmp, ApiDouble(os.path.join(tmp, "api"), cluster,
                                                         cas=ClusterCAs.create(key_type="ecdsa")) as api:
        args_file = os.path.join(tmp, "args.json")
        with open(args_file, "w") as handle:
            json.dump({"ANSIBLE_MODULE_ARGS": {"kubeconfig": api.kubeconfig, "page_size": options.page_size}}, handle)
        module, alternative = [], []
        for run in range(options.runs):  # pylint: disable=unused-variable
            wall, rss, out, cpu = run_child([sys.executable, "-c", RUN_MODULE, MODULE, args_file], env)
            result, out_module = json.loads(out), out
            assert len(result["nodes"]) == options.nodes, "module saw %d nodes" % len(result["nodes"])
            module.append((wall, rss, cpu))
            wall, rss, out, cpu = run_child([sys.executable, "-c", PEAK_RSS + ALTERNATIVE, api.kubeconfig], env)
            alternative.append((wall, rss, cpu))
        alt_summary = out.decode().split()
        start = time.perf_counter()
        adhoc = run_module("node_version_check", {"kubeconfig": api.kubeconfig, "page_size": options.page_size})
        adhoc_wall = time.perf_counter() - start
        requests = api.count("/api/v1/nodes")

    def median(rows, index):
        return statistics.median(row[index] for row in rows)

    m_wall, m_rss, m_cpu = median(module, 0), median(module, 1), median(module, 2)
    a_wall, a_rss, a_cpu = median(alternative, 0), median(alternative, 1), median(alternative, 2)
    print("node_version_check benchmark: %d nodes (8 images each), page_size %d, %d runs, median"
          % (options.nodes, options.page_size, options.runs))
    print("  machine: %d CPUs, load average %.1f at the end (the API double runs in this process)"
          % (os.cpu_count(), os.getloadavg()[0]))
    print("  module process (paginated, plain JSON):   wall %6.2f s   CPU %6.2f s   peak RSS %6.1f MiB   (%d violations, %d mixed)"
          % (m_wall, m_cpu, m_rss, len(result["violations"]), len(result["mixed_versions"])))
    print("  alternative (one list_node(), models):    wall %6.2f s   CPU %6.2f s   peak RSS %6.1f MiB   (nodes, violations, mixed = %s)"
          % (a_wall, a_cpu, a_rss, ", ".join(alt_summary)))
    print("  ratio alternative/module:                 wall %6.2fx    CPU %6.2fx    peak RSS %6.2fx"
          % (a_wall / m_wall, a_cpu / m_cpu, a_rss / m_rss))
    print("  module through the ansible CLI:           wall %6.2f s   (Ansible overhead %.2f s; failed=%s)"
          % (adhoc_wall, adhoc_wall - m_wall, adhoc["failed"]))
    print("  node list requests served in total:       %d;  module result %.1f MiB of JSON (%d bytes per node)"
          % (requests, len(out_module) / 1048576.0, len(json.dumps(result["nodes"])) // options.nodes))
    print("  targets: wall < 3 s -> %s; peak RSS < 200 MiB -> %s"
          % ("met" if m_wall < 3 else "NOT met", "met" if m_rss < 200 else "NOT met"))


if __name__ == "__main__":
    main()
