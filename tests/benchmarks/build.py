"""The build playbook for 3 control planes + 1 worker on lab nodes, against a hand-run kubeadm sequence.

Two identical fresh LabClusters (tests/lab/cluster.py: 3 control-plane nodes, 1 worker, real kubeadm,
kube-apiserver, etcd, kube-controller-manager and kube-scheduler, the kubelet double):
  - playbook: `ansible-playbook build.yml` (topology check, node states, plan, binaries copied,
    configuration validated by kubeadm on every node, init, certificate key and token, joins one at a
    time), first without the report play (`cluster_build_report=false`, what the ratio compares), then
    the report play alone on the built cluster (a second, no-change run of build.yml with the report).
    kubeadm's own time is what the kubeadm processes ran: kubeadm_bootstrap's `kubeadm_seconds` (validate,
    init, joins; measured around each kubeadm process) plus the `delta` of the command tasks that ran
    kubeadm and are not no_log; the collection's overhead is the rest of the wall time.
  - by hand: what an operator types, with the same binaries and settings: `kubeadm init --config
    --upload-certs` on cp1, then `kubeadm join --config` on cp2, cp3, w1, one after the other
    (LabCluster.kubeadm_bootstrap).
Prints the figures and the ratio playbook / by hand.

Run: .venv/bin/python tests/benchmarks/build.py [--version 1.37.2]
Not part of the test command; never asserts.
"""
import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

import tests.conftest  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import
from tests.lab.cluster import LabCluster  # noqa: E402
from tests.integration.build.lab_build import changed, kubeadm_seconds, lab_vars, run_build  # noqa: E402


def playbook(workdir, version):
    with LabCluster(os.path.join(workdir, "playbook"), control_planes=3, workers=1, version=version) as lab:
        inventory = lab.write_inventory(os.path.join(workdir, "inventory.yml"))
        extra = lab_vars(lab)
        run = run_build(inventory, dict(extra, cluster_build_report=False))
        if run.rc != 0:
            raise SystemExit("build failed:\n" + run.output[-5000:])
        kubeadm = kubeadm_seconds(run)
        per_task = {}
        for entry in run.results:
            if entry["action"].endswith("kubeadm_bootstrap") and entry["result"].get("kubeadm_seconds"):
                key = "%s %s" % (entry["result"].get("action"), entry["host"])
                per_task[key] = entry["result"]["kubeadm_seconds"]
        report = run_build(inventory, extra)
        return dict(wall=run.seconds, kubeadm=kubeadm, per_task=per_task, report_run=report.seconds,
                    report_rc=report.rc, report_changed=len(changed(report)), memory=lab.memory())


def by_hand(workdir, version):
    with LabCluster(os.path.join(workdir, "hand"), control_planes=3, workers=1, version=version) as lab:
        started = time.monotonic()
        lab.kubeadm_bootstrap()
        return dict(wall=time.monotonic() - started, timings=dict(lab.timings))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--version", default=None, help="Kubernetes version of the lab (default: the lab's)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cplane-build-bench-") as workdir:
        hand = by_hand(workdir, args.version)
        book = playbook(workdir, args.version)
    overhead = book["wall"] - book["kubeadm"]
    print("build playbook, 3 control planes + 1 worker (report play off):")
    print("  wall time                     %8.1f s" % book["wall"])
    print("  kubeadm processes             %8.1f s" % book["kubeadm"])
    for key, seconds in sorted(book["per_task"].items()):
        print("    %-26s %8.1f s" % (key, seconds))
    print("  collection overhead           %8.1f s (%.0f%% of the wall time)" % (overhead, 100.0 * overhead / book["wall"]))
    print("second run with the report play: %.1f s, rc=%s, %d changed results" % (
        book["report_run"], book["report_rc"], book["report_changed"]))
    print("by hand (kubeadm init + 3 joins, one after the other): %.1f s  %s" % (hand["wall"], hand["timings"]))
    print("ratio playbook / by hand: %.2f" % (book["wall"] / hand["wall"]))


if __name__ == "__main__":
    main()
