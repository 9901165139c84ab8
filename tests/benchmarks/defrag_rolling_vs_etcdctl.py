"""Rolling, leader-aware defrag (cplane.kubeadm backend) vs `etcdctl defrag --cluster`, side by side.

Two identically prepared 3-member TLS clusters (etcd 3.5.1, lab layout): each gets FRAGMENT_MIB of
data written, deleted and compacted (free pages) plus LIVE_MIB of live data, so the backend file is
large and mostly free.  A ConcurrentWriter does sequential puts on all three endpoints while the
cluster is defragmented; per endpoint it records the longest single write (stall) and failed writes.

Prints per member: defrag duration, max write stall on its endpoint, failed and retried writes;
total wall time; ratios; and whether the targets hold:
  - 0 failed writes
  - no endpoint's max stall more than 0.5 s above its own member's defrag duration
  - rolling wall time <= 1.2 x sum of member defrag durations + 5 s

Run: .venv/bin/python tests/benchmarks/defrag_rolling_vs_etcdctl.py [--fragment-mib 200] [--live-mib 64]
Not part of the test command; never asserts.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

import tests.conftest  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import
from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd.defrag import run_defrag  # noqa: E402
from tests.lab.binaries import etcd_binary  # noqa: E402
from tests.lab.etcd_cluster import EtcdLab  # noqa: E402
from tests.lab.workload import ConcurrentWriter, fill, fragment  # noqa: E402

MIB = 1024 * 1024


def prepare(lab, fragment_mib, live_mib):
    started = time.monotonic()
    fragment(lab, fragment_mib, threads=4)
    fill(lab, live_mib, threads=4)
    sizes = {}
    for member in lab.members:
        with lab.client(member) as client:
            sizes[member.name] = client.status().db_size
    return sizes, time.monotonic() - started


def run_rolling(lab):
    result = run_defrag(lab.endpoints, lab.ca_cert, lab.client_cert, lab.client_key, command_timeout=10,
                        min_db_size=32 * MIB)
    durations = dict((m["name"], m["duration_s"] or 0.0) for m in result["members"])
    return durations, result


def run_etcdctl(lab):
    """`etcdctl defrag --cluster`; per-member durations from the time each 'Finished' line appears."""
    cmd = [etcd_binary("etcdctl"), "--endpoints=%s" % lab.endpoints[0], "--cacert=%s" % lab.ca_cert,
           "--cert=%s" % lab.client_cert, "--key=%s" % lab.client_key, "--command-timeout=600s",
           "defrag", "--cluster"]
    by_url = dict((m.client_url, m.name) for m in lab.members)
    durations = {}
    started = last = time.monotonic()
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        for line in proc.stdout:
            now = time.monotonic()
            for url, name in by_url.items():
                if url in line and "Finished" in line:
                    durations[name] = round(now - last, 3)
            last = now
        proc.wait()
    return durations, dict(rc=proc.returncode, wall=time.monotonic() - started)


def measure(label, lab, runner):
    names = dict((m.client_url, m.name) for m in lab.members)
    with ConcurrentWriter(lab.endpoints, lab.ca_cert, lab.client_cert, lab.client_key) as writer:
        time.sleep(1.0)  # writers warmed up
        started = time.monotonic()
        durations, detail = runner(lab)
        wall = time.monotonic() - started
        time.sleep(0.5)
    with lab.client() as client:
        lost = writer.mismatches(client)
    rows = []
    for stats in writer.stats:
        name = names[stats.endpoint]
        rows.append(dict(member=name, defrag_s=durations.get(name, 0.0), max_stall_s=stats.max_stall,
                         failed=stats.failures, retried=stats.retries, puts=stats.puts))
    return dict(label=label, wall=wall, rows=rows, lost=len(lost), detail=detail,
                sum_defrag=sum(durations.values()))


def report(run, sizes_before, lab):
    print("\n== %s ==" % run["label"])
    print("%-6s %12s %12s %12s %10s %8s %8s" % ("member", "db before", "db after", "defrag s", "max stall", "failed",
                                                "retried"))
    for row in run["rows"]:
        with lab.client(lab.member(row["member"])) as client:
            after = client.status().db_size
        print("%-6s %9.1f MiB %9.1f MiB %12.3f %9.3fs %8d %8d" % (
            row["member"], sizes_before[row["member"]] / float(MIB), after / float(MIB), row["defrag_s"],
            row["max_stall_s"], row["failed"], row["retried"]))
    print("wall time %.2f s; sum of member defrag durations %.2f s; writes lost or changed: %d"
          % (run["wall"], run["sum_defrag"], run["lost"]))
    failed = sum(r["failed"] for r in run["rows"])
    worst = max(r["max_stall_s"] - r["defrag_s"] for r in run["rows"])
    print("targets: failed writes %d (target 0) -> %s; worst stall above own defrag %.2f s (target <= 0.5) -> %s; "
          "wall %.2f s vs 1.2 x %.2f + 5 = %.2f s -> %s" % (
              failed, "ok" if failed == 0 else "MISSED", worst, "ok" if worst <= 0.5 else "MISSED", run["wall"],
              run["sum_defrag"], 1.2 * run["sum_defrag"] + 5, "ok" if run["wall"] <= 1.2 * run["sum_defrag"] + 5
              else "MISSED"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fragment-mib", type=int, default=200)
    parser.add_argument("--live-mib", type=int, default=64)
    args = parser.parse_args()
    print("etcd 3.5.1, 3 members with TLS on 127.0.0.1; %d MiB written+deleted+compacted, %d MiB live; "
          "one writer per endpoint" % (args.fragment_mib, args.live_mib))
    runs = []
    with tempfile.TemporaryDirectory(prefix="defrag-bench-") as tmp:
        for label, runner in (("rolling (cplane.kubeadm.etcd_defrag backend)", run_rolling),
                              ("etcdctl defrag --cluster", run_etcdctl)):
            with EtcdLab(os.path.join(tmp, "lab%d" % len(runs)), size=3) as lab:
                sizes, prep = prepare(lab, args.fragment_mib, args.live_mib)
                print("[%s] prepared in %.1f s: db sizes %s MiB (leader %s)" % (
                    label, prep, dict((k, round(v / float(MIB))) for k, v in sizes.items()), lab.leader()))
                run = measure(label, lab, runner)
                if label.startswith("rolling"):
                    result = run["detail"]
                    print("plan %s; leader %s -> %s" % (result["plan"], result["leader_before"], result["leader_after"]))
                report(run, sizes, lab)
                runs.append(run)
    rolling, etcdctl = runs
    print("\nratio wall time rolling / etcdctl: %.2f" % (rolling["wall"] / max(etcdctl["wall"], 1e-6)))
    print("ratio worst max stall rolling / etcdctl: %.2f" % (
        max(r["max_stall_s"] for r in rolling["rows"]) / max(max(r["max_stall_s"] for r in etcdctl["rows"]), 1e-6)))


if __name__ == "__main__":
    main()
