"""The demo behind ``scripts/demo``: a real etcd lab, fragmented, then maintained by the playbook.

The demo is a list of steps (``STEPS``).  Each step is a function taking the shared ``Demo``
context and returning lines to print; later features append their own steps (or build their own
list) without touching the lab handling.  The lab is torn down whatever happens.

    python -m tests.lab.demo [--keep-dir DIR] [--fragment-mib N]
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

from tests.conftest import ROOT  # noqa: F401  (makes ansible_collections.cplane.kubeadm importable)
from tests.lab.ansible_run import run_playbook
from tests.lab.binaries import etcd_binary
from tests.lab.etcd_cluster import EtcdLab

MIB = 1024.0 * 1024.0


def mib(size):
    size = size or 0
    if size < MIB:
        return "%.0f KiB" % (size / 1024.0)
    return "%.1f MiB" % (size / MIB)


class Demo(object):
    """What the steps share: the lab, a scratch directory, options and results by step name."""

    def __init__(self, workdir, options):
        self.workdir = workdir
        self.options = options
        self.lab = None
        self.results = {}

    def role_vars(self, **extra):
        values = {"etcd_maintenance_%s" % k: v for k, v in self.lab.connection_args().items()}
        values.update(extra)
        return values


def table(headers, rows):
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    line = "  ".join("%-*s" % (w, h) for w, h in zip(widths, headers))
    out = [line.rstrip(), "  ".join("-" * w for w in widths)]
    out += ["  ".join("%-*s" % (w, c) for w, c in zip(widths, row)).rstrip() for row in rows]
    return out


# -- steps ------------------------------------------------------------------------------------
def start_lab(demo):
    demo.lab = EtcdLab(os.path.join(demo.workdir, "lab"), size=3).start()
    client = demo.lab.client()
    for i in range(500):
        client.put("/registry/demo/key-%04d" % i, "value-%04d" % i)
    client.close()
    return ["3 members with client and peer TLS (kubeadm layout): %s" % ", ".join(demo.lab.endpoints),
            "leader: %s; 500 keys under /registry/demo/" % demo.lab.leader()]


def fragment_lab(demo):
    from tests.lab.workload import fragment
    stats = fragment(demo.lab, demo.options.fragment_mib)
    demo.results["sizes_fragmented"] = member_sizes(demo.lab)
    return ["wrote %s of values, deleted them and compacted (revision %d) in %.1fs"
            % (mib(stats["written_bytes"]), stats["compacted_revision"], stats["seconds"]),
            "database files now: %s" % ", ".join("%s %s" % (n, mib(s)) for n, s in sorted(demo.results["sizes_fragmented"].items()))]


def member_sizes(lab):
    import json
    out = lab.etcdctl("endpoint", "status", "-w", "json").stdout
    by_port = {int(e["Endpoint"].rsplit(":", 1)[1]): e["Status"]["dbSize"] for e in json.loads(out)}
    return {m.name: by_port[m.client_port] for m in lab.members}


def run_maintenance(demo):
    snapshots = os.path.join(demo.workdir, "backups")
    extra = demo.role_vars(
        target="localhost",
        etcd_maintenance_snapshot_dir=snapshots,
        etcd_maintenance_snapshot_prefix="etcd-snapshot-demo",
        etcd_maintenance_etcdutl_path=etcd_binary("etcdutl"),
        # the lab's database is tens of MiB; a real cluster's threshold is 100 MiB
        etcd_maintenance_min_db_size=int(MIB),
        etcd_maintenance_pause_seconds=0.5,
    )
    started = time.monotonic()
    run = run_playbook(os.path.join(ROOT, "playbooks", "etcd_maintenance.yml"), extra)
    seconds = time.monotonic() - started
    if run.rc != 0:
        raise RuntimeError("ansible-playbook failed (rc=%d):\n%s" % (run.rc, run.output[-4000:]))
    defrag = run.task("Defragment etcd members")[0]["result"]
    snap = run.task("Take a verified etcd snapshot")[0]["result"]
    demo.results.update(defrag=defrag, snapshot=snap, playbook_seconds=seconds)
    return ["ansible-playbook playbooks/etcd_maintenance.yml -e target=localhost (+ the lab's connection vars): "
            "rc=0 in %.1fs" % seconds]


def report(demo):
    defrag, snap = demo.results["defrag"], demo.results["snapshot"]
    rows = []
    for member in defrag["members"]:
        leader = ""
        if member["name"] == defrag["leader_before"]:
            leader = "leader (handed to %s, defragmented last)" % defrag["leader_after"] \
                if defrag["leader_after"] != defrag["leader_before"] else "leader"
        elif member["name"] == defrag["leader_after"]:
            leader = "new leader"
        rows.append([member["name"], leader or "follower", member["action"],
                     "%s -> %s" % (mib(member["db_size_before"]), mib(member["db_size_after"])),
                     "%.2fs" % (member["duration_s"] or 0)])
    lines = table(["member", "role", "action", "db size before -> after", "duration"], rows)
    kept = "" if demo.options.keep_dir else " (removed with the lab; --keep-dir DIR keeps it)"
    lines += ["", "snapshot: %s%s" % (snap["path"], kept),
              "  from %s (%s), %s compressed from %s, revision %d, %d keys, checked by %s, mode %s, %.2fs"
              % (snap["member"], "leader" if snap["member_was_leader"] else "follower", mib(snap["size"]),
                 mib(snap["db_size"]), snap["revision"], snap["key_count"], snap["status_source"],
                 snap.get("mode", "0600"), snap["duration_s"])]
    return lines


STEPS = [
    ("Start a 3-member TLS etcd 3.5 lab", start_lab),
    ("Fragment the database (write, delete, compact)", fragment_lab),
    ("Run the etcd_maintenance playbook (defrag once, leader last; then snapshot)", run_maintenance),
    ("Result", report),
]


def run(steps, options):
    workdir = options.keep_dir or tempfile.mkdtemp(prefix="cplane-demo-")
    os.makedirs(workdir, exist_ok=True)
    demo = Demo(workdir, options)
    started = time.monotonic()
    try:
        for number, (title, step) in enumerate(steps, 1):
            print("\n[%d/%d] %s" % (number, len(steps), title), flush=True)
            step_started = time.monotonic()
            for line in step(demo) or []:
                print(("    " + line).rstrip())
            print("    (%.1fs)" % (time.monotonic() - step_started), flush=True)
    finally:
        if demo.lab is not None:
            demo.lab.stop()
        if not options.keep_dir:
            shutil.rmtree(workdir, ignore_errors=True)
        print("\nlab stopped%s; demo took %.1fs" % ("" if options.keep_dir else " and removed", time.monotonic() - started))
    return demo


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep-dir", help="work in DIR and keep it (snapshots, lab logs) afterwards")
    parser.add_argument("--fragment-mib", type=int, default=64, help="MiB written and deleted to fragment the lab")
    options = parser.parse_args(argv)
    try:
        run(STEPS, options)
    except Exception as err:  # a demo prints what failed, not a traceback
        print("\ndemo failed: %s" % err, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
