"""Quorum-loss recovery: the `recover` playbook against a hand-run `etcdutl snapshot restore` + start.

Two identically prepared 3-member TLS clusters (etcd members as static pods under kubelet doubles,
lab layout), each filled with LIVE_MIB of live data and snapshotted; then two of three members are
destroyed (WAL gone, database overwritten), so the cluster has no quorum.
  - playbook: `ansible-playbook recover.yml` (evidence bundle, diagnosis, check-mode restore on every
    host, stop, restore with the old data moved aside, manifests pointed at the existing cluster, start,
    health gate, revision check). Phases come from the task results' timestamps.
  - by hand: what a runbook does with the same binaries: move every etcd.yaml out, `etcdutl snapshot
    restore` on each member one after the other into a fresh directory (old one moved aside), move the
    manifests back, wait until every member answers health.
Prints, per variant, the restore phase, the start-up phase (manifests back -> every member healthy)
and the total wall time, and the ratio playbook / by hand.

Run: .venv/bin/python tests/benchmarks/recovery_quorum.py [--live-mib 200]
Not part of the test command; never asserts.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

import tests.conftest  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import
from tests.lab.recovery import PLAYBOOK, destroy, write_inventory  # noqa: E402
from tests.lab.ansible_run import ansible_env  # noqa: E402
from tests.lab.binaries import etcd_binary  # noqa: E402
from tests.lab.static_pods import KubeletEtcdLab  # noqa: E402
from tests.lab.workload import fill  # noqa: E402


def prepare(workdir, live_mib):
    lab = KubeletEtcdLab(os.path.join(workdir, "lab"), size=3, time_scale=0.2,
                         quota_backend_bytes=4 * 1024 * 1024 * 1024).__enter__()
    fill(lab, live_mib)
    snapshots = os.path.join(workdir, "snapshots")
    os.makedirs(snapshots)
    snap = os.path.join(snapshots, "etcd-snapshot-20261201T000000Z.db")
    lab.etcdctl("snapshot", "save", snap, endpoints=lab.endpoints[:1], timeout=600)
    destroy(lab, "cp2")
    destroy(lab, "cp3")
    return lab, snap


def by_playbook(lab, workdir):
    from pathlib import Path
    inventory = write_inventory(lab, Path(workdir), control_plane_recovery_bump_revision=0)
    results = os.path.join(workdir, "results.jsonl")
    started = time.time()
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", inventory,
                           PLAYBOOK], env=ansible_env({"CPLANE_RESULTS": results}), capture_output=True, text=True,
                          check=False)
    total = time.time() - started
    if proc.returncode != 0:
        print(proc.stdout[-3000:])
        raise SystemExit("the playbook failed")
    entries = [json.loads(line) for line in open(results) if line.strip()]

    def last(name):
        return max(e["time"] for e in entries if name in (e["task"] or ""))

    def first(name):
        return min(e["time"] for e in entries if name in (e["task"] or ""))
    restore = last("Quorum | restore the snapshot") - last("Stop static pod | wait until its port closes")
    startup = last("Quorum | health gate") - first("Start static pod | move the manifest back")
    return dict(total=total, restore=restore, startup=startup,
                before_restore=last("Stop static pod | wait until its port closes") - started)


def by_hand(lab, snap):
    etcdutl = etcd_binary("etcdutl")
    initial = lab.initial_cluster(lab.members)
    started = time.time()
    for member in lab.members:
        lab.remove_manifest(member.name, wait=120) if lab.double(member.name).pod(lab.pod_name(member.name)) \
            else shutil.move(lab.manifest_path(member.name), lab._held(member.name))  # crash-looping pods
    stopped = time.time()
    for member in lab.members:
        shutil.move(member.data_dir, member.data_dir + ".by-hand")
        subprocess.run([etcdutl, "snapshot", "restore", snap, "--data-dir", member.data_dir, "--name", member.name,
                        "--initial-cluster", initial, "--initial-advertise-peer-urls", member.peer_url,
                        "--initial-cluster-token", "by-hand"], check=True, capture_output=True)
    restored = time.time()
    for member in lab.members:
        shutil.move(lab._held(member.name), lab.manifest_path(member.name))
    lab.wait_healthy(timeout=600)
    healthy = time.time()
    return dict(total=healthy - started, restore=restored - stopped, startup=healthy - restored,
                before_restore=stopped - started)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--live-mib", type=int, default=200)
    args = parser.parse_args()
    rows = {}
    for variant in ("playbook", "by hand"):
        workdir = tempfile.mkdtemp(prefix="cplane-bench-recovery-")
        lab, snap = prepare(workdir, args.live_mib)
        try:
            print("%s: snapshot %.1f MiB" % (variant, os.path.getsize(snap) / 1048576.0), flush=True)
            rows[variant] = by_playbook(lab, workdir) if variant == "playbook" else by_hand(lab, snap)
        finally:
            lab.__exit__(None, None, None)
            shutil.rmtree(workdir, ignore_errors=True)
    print("\n%-10s %14s %10s %10s %10s" % ("variant", "before restore", "restore", "start-up", "total"))
    for variant, row in rows.items():
        figures = (variant, row["before_restore"], row["restore"], row["startup"], row["total"])
        print("%-10s %13.1fs %9.1fs %9.1fs %9.1fs" % figures)
    print("\nratio playbook / by hand: total %.2f, restore %.2f, start-up %.2f" % (
        rows["playbook"]["total"] / rows["by hand"]["total"], rows["playbook"]["restore"] / rows["by hand"]["restore"],
        rows["playbook"]["startup"] / rows["by hand"]["startup"]))


if __name__ == "__main__":
    main()
