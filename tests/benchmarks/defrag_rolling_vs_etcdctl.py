"""Rolling, leader-aware defrag (cplane.kubeadm backend, move_leader auto, on and off) vs `etcdctl defrag --cluster`.

Four identically prepared 3-member TLS clusters, one per variant (etcd 3.5.1, lab layout): each gets FRAGMENT_MIB of
data written, deleted and compacted (free pages) plus LIVE_MIB of live data, so the backend file is
large and mostly free.  A ConcurrentWriter does sequential puts on all three endpoints while the
cluster is defragmented; per endpoint it records the longest single write (stall) and failed writes.
Variants: rolling with move_leader auto (the default: leadership moves before the leader's defrag only when
its estimated duration exceeds etcd's 7 s request timeout), rolling with move_leader on (leadership always
moves to a defragmented follower before the old leader's defrag), rolling with move_leader off (the leader
is defragmented last, in place), and `etcdctl defrag --cluster` (every member in turn, leader in place, no
pause or health gate).

Prints per variant and member: defrag duration, max write stall on its endpoint, failed and retried writes;
total wall time; ratios against etcdctl; and per variant whether the targets hold:
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


def rolling(move_leader):
    def run_rolling(lab):
        result = run_defrag(lab.endpoints, lab.ca_cert, lab.client_cert, lab.client_key, command_timeout=10,
                            min_db_size=32 * MIB, move_leader=move_leader)
        durations = dict((m["name"], m["duration_s"] or 0.0) for m in result["members"])
        return durations, result
    return run_rolling


VARIANTS = (
    ("rolling, move_leader auto (default)", rolling("auto")),
    ("rolling, move_leader on (always moves)", rolling(True)),
    ("rolling, move_leader off (leader last, in place)", rolling(False)),
    ("etcdctl defrag --cluster", "etcdctl"),
)


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
    leader_before = lab.leader()
    with ConcurrentWriter(lab.endpoints, lab.ca_cert, lab.client_cert, lab.client_key) as writer:
        time.sleep(1.0)  # writers warmed up
        started = time.monotonic()
        durations, detail = runner(lab)
        wall = time.monotonic() - started
        time.sleep(0.5)
    with lab.client() as client:
        lost = writer.mismatches(client)
    leader_after = lab.leader()
    rows = []
    for stats in writer.stats:
        name = names[stats.endpoint]
        rows.append(dict(member=name, defrag_s=durations.get(name, 0.0), max_stall_s=stats.max_stall,
                         failed=stats.failures, retried=stats.retries, puts=stats.puts,
                         role=role(name, leader_before, leader_after)))
    return dict(label=label, wall=wall, rows=rows, lost=len(lost), detail=detail, leader_before=leader_before,
                leader_after=leader_after, sum_defrag=sum(durations.values()))


def role(name, leader_before, leader_after):
    if name == leader_before and name == leader_after:
        return "leader"
    if name == leader_before:
        return "old leader"
    if name == leader_after:
        return "new leader"
    return "follower"


def targets(run):
    """(failed, worst stall above own defrag, the row it was on, wall limit) and whether each target holds."""
    failed = sum(r["failed"] for r in run["rows"])
    worst = max(run["rows"], key=lambda r: r["max_stall_s"] - r["defrag_s"])
    limit = 1.2 * run["sum_defrag"] + 5
    return dict(failed=failed, failed_ok=failed == 0 and run["lost"] == 0, worst=worst,
                excess=worst["max_stall_s"] - worst["defrag_s"],
                stall_ok=worst["max_stall_s"] - worst["defrag_s"] <= 0.5, limit=limit, wall_ok=run["wall"] <= limit)


def verdict(ok):
    return "ok" if ok else "MISSED"


def report(run, sizes_before, lab):
    print("\n== %s ==" % run["label"])
    print("%-6s %-11s %12s %12s %9s %10s %7s %8s %7s" % ("member", "role", "db before", "db after", "defrag s",
                                                         "max stall", "failed", "retried", "puts"))
    for row in run["rows"]:
        with lab.client(lab.member(row["member"])) as client:
            row["db_after"] = client.status().db_size
        row["db_before"] = sizes_before[row["member"]]
        print("%-6s %-11s %8.1f MiB %8.1f MiB %9.3f %9.3fs %7d %8d %7d" % (
            row["member"], row["role"], row["db_before"] / float(MIB), row["db_after"] / float(MIB), row["defrag_s"],
            row["max_stall_s"], row["failed"], row["retried"], row["puts"]))
    print("wall time %.2f s; sum of member defrag durations %.2f s; writes lost or changed: %d"
          % (run["wall"], run["sum_defrag"], run["lost"]))
    check = targets(run)
    print("targets: failed writes %d (target 0) -> %s; worst stall above own defrag %.2f s on %s (%s) (target <= 0.5) "
          "-> %s; wall %.2f s vs 1.2 x %.2f + 5 = %.2f s -> %s" % (
              check["failed"], verdict(check["failed_ok"]), check["excess"], check["worst"]["member"],
              check["worst"]["role"], verdict(check["stall_ok"]), run["wall"], run["sum_defrag"], check["limit"],
              verdict(check["wall_ok"])))


def summary(runs):
    """All variants side by side: every endpoint, then every variant's totals, ratios and targets."""
    baseline = runs[-1]
    worst_base = max(r["max_stall_s"] for r in baseline["rows"])
    print("\n== side by side: per endpoint ==")
    print("%-48s %-6s %-11s %9s %10s %12s %7s %8s" % (
        "variant", "member", "role", "defrag s", "max stall", "above defrag", "failed", "retried"))
    for run in runs:
        for row in sorted(run["rows"], key=lambda r: r["member"]):
            print("%-48s %-6s %-11s %9.3f %9.3fs %11.2fs %7d %8d" % (
                run["label"], row["member"], row["role"], row["defrag_s"], row["max_stall_s"],
                row["max_stall_s"] - row["defrag_s"], row["failed"], row["retried"]))
    print("\n== side by side: per variant ==")
    print("%-48s %7s %11s %12s %14s %7s %7s %7s" % (
        "variant", "wall s", "sum defrag", "wall/etcdctl", "stall/etcdctl", "failed", "stall", "wall"))
    for run in runs:
        check = targets(run)
        print("%-48s %7.2f %11.2f %12.2f %14.2f %7s %7s %7s" % (
            run["label"], run["wall"], run["sum_defrag"], run["wall"] / max(baseline["wall"], 1e-6),
            max(r["max_stall_s"] for r in run["rows"]) / max(worst_base, 1e-6),
            verdict(check["failed_ok"]), verdict(check["stall_ok"]), verdict(check["wall_ok"])))
    print("(stall/etcdctl = worst max stall of the variant / worst of etcdctl; targets: failed = 0 failed or lost "
          "writes; stall = no endpoint's max stall > its own member's defrag + 0.5 s; wall = wall <= 1.2 x sum of "
          "defrag durations + 5 s)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fragment-mib", type=int, default=200)
    parser.add_argument("--live-mib", type=int, default=64)
    args = parser.parse_args()
    print("etcd 3.5.1, 3 members with TLS on 127.0.0.1; %d MiB written+deleted+compacted, %d MiB live; "
          "one writer per endpoint" % (args.fragment_mib, args.live_mib))
    runs = []
    with tempfile.TemporaryDirectory(prefix="defrag-bench-") as tmp:
        for label, runner in VARIANTS:
            with EtcdLab(os.path.join(tmp, "lab%d" % len(runs)), size=3) as lab:
                sizes, prep = prepare(lab, args.fragment_mib, args.live_mib)
                print("[%s] prepared in %.1f s: db sizes %s MiB (leader %s)" % (
                    label, prep, dict((k, round(v / float(MIB))) for k, v in sizes.items()), lab.leader()))
                # other work on the machine shows in every figure: record it next to them
                print("load average before: %.2f %.2f %.2f (%d CPUs)" % (os.getloadavg() + (os.cpu_count(),)))
                run = measure(label, lab, run_etcdctl if runner == "etcdctl" else runner)
                print("load average after: %.2f %.2f %.2f" % os.getloadavg())
                if runner != "etcdctl":
                    result = run["detail"]
                    print("plan %s; leader %s -> %s" % (result["plan"], result["leader_before"], result["leader_after"]))
                    if result["leader_decision"]:
                        print("leader decision: %s" % result["leader_decision"]["reason"])
                report(run, sizes, lab)
                runs.append(run)
    summary(runs)


if __name__ == "__main__":
    main()
