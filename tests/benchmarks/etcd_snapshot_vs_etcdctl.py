"""etcd_snapshot backend vs `etcdctl snapshot save` (+ xz), and the pure-Python bolt reader vs etcdutl.

A 3-member TLS lab (etcd 3.5.1) gets LIVE_MIB of live, Kubernetes-like (compressible) values.  Then,
in one run:
- `etcdctl snapshot save` (the obvious alternative: raw file, no retention) and the same followed
  by `xz -6` as a separate step;
- take_snapshot() with compression none / zstd / xz: wall time, file size, ratio to etcdctl;
- verification: bolt.read_status (pure Python) vs `etcdutl snapshot status`;
- memory: peak RSS of a fresh process doing one streamed take_snapshot(), vs one doing
  python-etcd3's client.snapshot() into a BytesIO (holding the snapshot in memory).

Values are JSON with random hex fields (hard to compress: a pessimistic case for the compressors).
Run: .venv/bin/python tests/benchmarks/etcd_snapshot_vs_etcdctl.py [--live-mib 64] [--xz-presets 1,6]
Not part of the test command; it asserts nothing.
"""
import argparse
import io
import json
import lzma
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
import tests.conftest  # noqa: E402,F401  pylint: disable=unused-import

from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd import bolt, snapshot  # noqa: E402
from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd.members import Cluster  # noqa: E402
from tests.lab.binaries import etcd_binary  # noqa: E402
from tests.lab.etcd_cluster import EtcdLab  # noqa: E402

MIB = 1024 * 1024


def peak_rss_mib():
    """VmHWM (peak RSS) of this process in MiB."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def reset_peak_rss():
    """Linux: writing 5 to clear_refs resets VmHWM to the current RSS."""
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")


def fill(lab, live_mib, value_size=16 * 1024):
    """Kubernetes-like objects: JSON with repeated field names and some random ids."""
    client = lab.client(timeout=60)
    count = live_mib * MIB // value_size
    for batch in range(0, count, 64):
        ops = []
        for i in range(batch, min(count, batch + 64)):
            body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                               "metadata": {"name": "cm-%06d" % i, "namespace": "bench", "uid": os.urandom(16).hex()},
                               "data": {"k%03d" % j: os.urandom(24).hex() for j in range(value_size // 80)}})
            ops.append(client.transactions.put("/registry/configmaps/bench/cm-%06d" % i, body[:value_size]))
        client.transaction(compare=[], success=ops, failure=[])
    client.close()


def child(mode, endpoint, ca, cert, key, dest):
    """Run in a fresh process: one snapshot, then print the peak RSS in MiB."""
    from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd.client import connect
    with Cluster([endpoint], ca, cert, key) as cluster:
        source = snapshot.choose_source(cluster)
        client = connect(endpoint, ca, cert, key, 600)
        client.status()
        reset_peak_rss()
        before = peak_rss_mib()
        if mode == "streamed":
            snapshot.take_snapshot(source, dest, compression="none")
        else:
            buffer = io.BytesIO()
            client.snapshot(buffer)
            with open(os.path.join(dest, "in-memory.db"), "wb") as handle:
                handle.write(buffer.getbuffer())
    print("%.1f" % (peak_rss_mib() - before))


def rss_of(mode, lab, dest):
    os.makedirs(dest, exist_ok=True)
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", mode, lab.endpoints[0], lab.ca_cert,
                          lab.client_cert, lab.client_key, dest], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def timed(func):
    start = time.perf_counter()
    value = func()
    return time.perf_counter() - start, value


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--live-mib", type=int, default=64)
    parser.add_argument("--xz-presets", default="1,6", help="xz presets to time (6 is slow: minutes per 50 MiB)")
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        child(*options.child)
        return
    work = tempfile.mkdtemp(prefix="bench-snapshot-")
    try:
        with EtcdLab(os.path.join(work, "lab"), size=3) as lab:
            seconds = timed(lambda: fill(lab, options.live_mib))[0]
            print("lab: 3 members, %d MiB of live values written in %.1fs" % (options.live_mib, seconds))
            rows = []
            raw = os.path.join(work, "etcdctl.db")
            follower = next(m for m in lab.members if m.name != lab.leader())
            t_ctl = timed(lambda: lab.etcdctl("snapshot", "save", raw, endpoints=[follower.client_url], timeout=600))[0]
            rows.append(("etcdctl snapshot save (raw)", t_ctl, os.path.getsize(raw)))

            def ctl_then_xz():
                with open(raw, "rb") as src, lzma.open(raw + ".xz", "wb", preset=6) as dst:
                    shutil.copyfileobj(src, dst, 1024 * 1024)
            presets = [int(p) for p in options.xz_presets.split(",") if p]
            if 6 in presets:
                t_xz = timed(ctl_then_xz)[0]
                rows.append(("etcdctl save + xz -6 (two steps)", t_ctl + t_xz, os.path.getsize(raw + ".xz")))

            runs = [("none", None), ("zstd", 3), ("zstd", 10)] + [("xz", p) for p in presets]
            with Cluster(lab.endpoints, lab.ca_cert, lab.client_cert, lab.client_key) as cluster:
                for compression, level in runs:
                    dest = os.path.join(work, "%s-%s" % (compression, level))
                    source = snapshot.choose_source(cluster)
                    t, result = timed(lambda: snapshot.take_snapshot(source, dest, compression=compression,
                                                                     compression_level=level,
                                                                     etcdutl_path=etcd_binary("etcdutl")))
                    label = "take_snapshot %s%s (verified)" % (compression, "" if level is None else " level %d" % level)
                    rows.append((label, t, result["size"]))

            print("\n%-44s %9s %11s %14s" % ("method", "seconds", "size MiB", "time vs etcdctl"))
            for name, t, size in rows:
                print("%-44s %9.2f %11.2f %13.2fx" % (name, t, size / float(MIB), t / t_ctl))

            t_py, status = timed(lambda: bolt.read_status(raw, os.path.getsize(raw) - 32))
            t_utl, proc = timed(lambda: subprocess.run(
                [etcd_binary("etcdutl"), "snapshot", "status", "-w", "json", raw], capture_output=True, text=True, check=True))
            utl = json.loads(proc.stdout)
            print("\nverification of the %.1f MiB database:" % (os.path.getsize(raw) / float(MIB)))
            print("  bolt.read_status (pure Python): %.2fs  revision %d, totalKey %d" % (t_py, status["revision"], status["total_key"]))
            print("  etcdutl snapshot status:        %.2fs  revision %d, totalKey %d" % (t_utl, utl["revision"], utl["totalKey"]))
            print("  ratio python/etcdutl: %.2fx; figures agree: %s"
                  % (t_py / t_utl, (status["revision"], status["total_key"]) == (utl["revision"], utl["totalKey"])))

            streamed = rss_of("streamed", lab, os.path.join(work, "rss-streamed"))
            in_memory = rss_of("memory", lab, os.path.join(work, "rss-memory"))
            print("\npeak RSS growth while taking one snapshot: streamed take_snapshot +%.1f MiB, "
                  "python-etcd3 into BytesIO +%.1f MiB (database %.1f MiB)"
                  % (streamed, in_memory, os.path.getsize(raw) / float(MIB)))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
