"""Benchmark: the upgrade playbook vs the same kubeadm upgrade typed by hand, on lab clusters.

Two lab clusters of 3 control planes + 1 worker, kubeadm 1.36.3, are built one after the other.
The first is upgraded to 1.37.2 by ``playbooks/upgrade.yml``; the second by the sequence an
operator types from kubeadm's documentation (install kubeadm; ``kubeadm upgrade plan`` and ``apply``
on the first control plane; ``kubeadm upgrade node`` on the others; per node drain, kubelet and
kubectl, restart, wait Ready, uncordon), run straight into the nodes with no checks in between.

Printed: wall time in total and per node, kubeadm's own time apart (``kubeadm upgrade plan/apply/
node``), the playbook's preflight and postflight, and the ratio playbook / by hand.

    .venv/bin/python -m tests.benchmarks.upgrade [--workdir DIR] [--only playbook|hand]
"""
import argparse
import json
import os
import sys
import tempfile
import time

from tests.lab.ansible_run import ROOT, run_playbook
from tests.lab.binaries import lab_binary

FROM, TO = "1.36.3", "1.37.2"
# What the lab's kubeadm init ignores (no container runtime, the test machine's kernel) and CreateJob.
IGNORE = ["CRI", "ContainerRuntimeVersion", "ImagePull", "SystemVerification", "CreateJob"]
KUBEADM_TASKS = ("Apply | kubeadm upgrade plan", "Apply | kubeadm upgrade apply", "Node | kubeadm upgrade node",
                 "Kubelet | kubeadm upgrade node on a worker")


def timings(results):
    """kubeadm's own seconds, each node's seconds (its kubelet part, from drain to uncordon, plus kubeadm
    upgrade node), and the preflight and postflight, from record_results' task start and end times."""
    results = [r for r in results if r.get("start")]
    kubeadm = sum(r["time"] - r["start"] for r in results if r["task"] in KUBEADM_TASKS and r["status"] == "ok")
    per_node = {}
    for r in results:
        # A node's own part: from its drain to its uncordon (the "Kubelet |" tasks and what they include).
        if r["task"].startswith("Kubelet |") and r["status"] != "skipped":
            first, last = per_node.get(r["host"], (r["start"], r["time"]))
            per_node[r["host"]] = (min(first, r["start"]), max(last, r["time"]))
    kubeadm_by_task = {}
    for r in results:
        if r["task"] in KUBEADM_TASKS and r["status"] == "ok":
            kubeadm_by_task["%s %s" % (r["task"].split("| ")[1], r["host"])] = r["time"] - r["start"]
    phases = {}
    for prefix in ("Preflight", "Postflight"):
        mine = [r for r in results if r["task"].startswith(prefix + " |")]
        phases[prefix.lower()] = max(r["time"] for r in mine) - min(r["start"] for r in mine) if mine else 0
    return dict(phases, kubeadm_s=kubeadm, kubeadm_by_task_s=kubeadm_by_task, per_node_s=dict((host, last - first) for host, (first, last) in per_node.items()))


def build(workdir):
    from tests.lab.cluster import LabCluster
    started = time.monotonic()
    cluster = LabCluster(workdir, control_planes=3, workers=1, version=FROM).start()
    cluster.kubeadm_bootstrap()
    return cluster, time.monotonic() - started


def binaries(workdir):
    from tests.lab.cluster import LabCluster
    kubelet = LabCluster.kubelet_file(os.path.join(workdir, "kubelet-" + TO), TO)
    return {"kubeadm": lab_binary("kubeadm", TO), "kubectl": lab_binary("kubectl", TO), "kubelet": kubelet}


def with_playbook(workdir):
    cluster, bootstrap = build(os.path.join(workdir, "playbook"))
    try:
        extra = {"cluster_upgrade_become": False, "cluster_upgrade_target_version": TO, "cluster_upgrade_install_method": "binaries",
                 "cluster_upgrade_binaries": binaries(workdir), "cluster_upgrade_ignore_preflight_errors": IGNORE,
                 "cluster_upgrade_snapshot_dir": os.path.join(workdir, "snapshots"), "cluster_upgrade_min_free_mb": 64}
        started = time.monotonic()
        run = run_playbook(os.path.join(ROOT, "playbooks", "upgrade.yml"), extra, inventory=cluster.write_inventory(os.path.join(workdir, "inventory.yml")),
                           timeout=7200)
        total = time.monotonic() - started
        if run.rc != 0:
            sys.exit("the playbook failed:\n" + run.output[-5000:])
        return dict(timings(run.results), bootstrap_s=bootstrap, total_s=total)
    finally:
        cluster.stop()


def by_hand(workdir):
    cluster, bootstrap = build(os.path.join(workdir, "hand"))
    files = binaries(workdir)
    kubectl = ["kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf"]
    flags = ["--ignore-preflight-errors=" + ",".join(IGNORE)]
    try:
        first = cluster.control_planes[0]
        kubeadm_s, per_node = 0.0, {}
        started = time.monotonic()

        def timed(node, argv):
            began = time.monotonic()
            node.run(argv, timeout=1800)
            return time.monotonic() - began

        for node in cluster.control_planes:
            node.install(files["kubeadm"], "kubeadm")
        kubeadm_s += timed(first, ["kubeadm", "upgrade", "plan", "v" + TO] + flags)
        kubeadm_s += timed(first, ["kubeadm", "upgrade", "apply", "v" + TO, "--yes"] + flags)
        for node in cluster.control_planes[1:]:
            kubeadm_s += timed(node, ["kubeadm", "upgrade", "node"] + flags)
        for node in list(cluster.control_planes) + list(cluster.workers):
            began = time.monotonic()
            if node not in cluster.control_planes:
                node.install(files["kubeadm"], "kubeadm")
                kubeadm_s += timed(node, ["kubeadm", "upgrade", "node"] + flags)
            first.run(kubectl + ["drain", node.name, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=300s"])
            node.install(files["kubelet"], "kubelet")
            node.install(files["kubectl"], "kubectl")
            node.run(["systemctl", "daemon-reload"])
            node.run(["systemctl", "restart", "kubelet"])
            deadline = time.monotonic() + 600
            while True:
                out = first.run(kubectl + ["get", "node", node.name, "-o", "json"], check=False)
                if out.returncode == 0:
                    status = json.loads(out.stdout)["status"]
                    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in status["conditions"])
                    if ready and status["nodeInfo"]["kubeletVersion"] == "v" + TO:
                        break
                if time.monotonic() > deadline:
                    sys.exit("%s did not come back by hand" % node.name)
                time.sleep(1)
            first.run(kubectl + ["uncordon", node.name])
            per_node[node.name] = time.monotonic() - began
        return {"bootstrap_s": bootstrap, "total_s": time.monotonic() - started, "kubeadm_s": kubeadm_s,
                "per_node_s": per_node}
    finally:
        cluster.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--workdir")
    parser.add_argument("--only", choices=["playbook", "hand"])
    parser.add_argument("--from-results", nargs="+", metavar="JSONL",
                        help="only print the figures of recorded playbook runs (record_results' files)")
    args = parser.parse_args()
    if args.from_results:
        for path in args.from_results:
            with open(path) as handle:
                results = [json.loads(line) for line in handle if line.strip()]
            span = max(r["time"] for r in results) - min(r.get("start") or r["time"] for r in results)
            print(path, json.dumps(dict(timings(results), total_s=span), default=round, indent=1))
        return
    workdir = args.workdir or tempfile.mkdtemp(prefix="cplane-upgrade-bench-")
    figures = {}
    if args.only != "hand":
        figures["playbook"] = with_playbook(workdir)
    if args.only != "playbook":
        figures["hand"] = by_hand(workdir)
    load = os.getloadavg()
    print("upgrade %s -> %s, 3 control planes + 1 worker, load average %.1f/%.1f/%.1f" % ((FROM, TO) + load))
    for name, fig in figures.items():
        nodes = ", ".join("%s %.0f s" % item for item in sorted(fig["per_node_s"].items()))
        rest = fig["total_s"] - fig["kubeadm_s"]
        print("%-9s total %6.0f s  kubeadm %5.0f s  rest %5.0f s  per node: %s%s" % (
            name, fig["total_s"], fig["kubeadm_s"], rest, nodes,
            "  (preflight %.0f s, postflight %.0f s)" % (fig["preflight"], fig["postflight"]) if "preflight" in fig else ""))
    if len(figures) == 2:
        print("ratio playbook / by hand: total %.2f; outside kubeadm %.2f" % (
            figures["playbook"]["total_s"] / figures["hand"]["total_s"],
            (figures["playbook"]["total_s"] - figures["playbook"]["kubeadm_s"])
            / max(1.0, figures["hand"]["total_s"] - figures["hand"]["kubeadm_s"])))
    print(json.dumps(figures, indent=1, default=round))


if __name__ == "__main__":
    main()
