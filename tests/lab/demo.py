"""The demo behind ``scripts/demo``: each module family, run for real on a lab, in under a minute.

Sections (``SECTIONS``, in order; ``--only NAME`` runs one or more of them):

- ``etcd``: a real 3-member TLS etcd lab, fragmented, then maintained by the playbook;
- ``probe``: the seed's 183-restarts etcd liveness probe audited and fixed by static_pod_probe;
- ``versions``: the seed cluster (one node fat-fingered to v1.11.3) served by the API double,
  checked by node_version_check with an upgrade plan;
- ``certs``: a kubeadm PKI with certificates near expiry, read by kubeadm_cert_info and renewed
  by kubeadm_cert_renew;
- ``recover``: etcd members as static pods lose one member, then quorum; the recover playbook
  brings the cluster back in place and says where its evidence bundle is.

A section is a list of steps.  Each step is a function taking the shared ``Demo`` context and
returning lines to print.  Whatever happens, the lab and every double are stopped and the scratch
directory is removed (unless ``--keep-dir``).

    python -m tests.lab.demo [--only SECTION ...] [--keep-dir DIR] [--fragment-mib N]
"""
import argparse
import datetime
import os
import shutil
import sys
import tempfile
import time

from tests.conftest import ROOT  # noqa: F401  (makes ansible_collections.cplane.kubeadm importable)
from tests.lab.ansible_run import run_module, run_playbook
from tests.lab.binaries import etcd_binary
from tests.lab.etcd_cluster import EtcdLab, Member

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
        self.cleanups = []   # (what, callable), run in reverse order when the demo ends

    def on_exit(self, what, stop):
        self.cleanups.append((what, stop))

    def module(self, name, args, **kwargs):
        """Run a collection module for real; a failed run stops the demo with the module's message."""
        result = run_module(name, args, **kwargs)
        if result.get("failed"):
            raise RuntimeError("%s failed: %s" % (name, result.get("msg") or result.get("_stdout", "")[-2000:]))
        return result

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
    demo.results["sizes_fragmented"] = demo.lab.db_sizes()
    return ["wrote %s of values, deleted them and compacted (revision %d) in %.1fs"
            % (mib(stats["written_bytes"]), stats["compacted_revision"], stats["seconds"]),
            "database files now: %s" % ", ".join("%s %s" % (n, mib(s)) for n, s in sorted(demo.results["sizes_fragmented"].items()))]


def run_maintenance(demo):
    snapshots = os.path.join(demo.workdir, "backups")
    extra = demo.role_vars(
        target="localhost",
        etcd_maintenance_become=False,
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
                if defrag["leader_after"] != defrag["leader_before"] else "leader (defragmented last, in place)"
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


ETCD_STEPS = [
    ("Start a 3-member TLS etcd 3.5 lab", start_lab),
    ("Fragment the database (write, delete, compact)", fragment_lab),
    ("Run the etcd_maintenance playbook (defrag once, leader last; then snapshot)", run_maintenance),
    ("Result", report),
]


# -- the 183-restarts probe (issue #4, seeds/000) -------------------------------------------------
PROBE_ETCD_VERSION = "3.5.15"


def node_root(demo, name):
    return os.path.join(demo.workdir, "nodes", name)


def describe_probe(probe):
    """One line for a probe: what it runs and kubelet's timing (kubelet's defaults where unset)."""
    if not probe:
        return "none"
    if "exec" in probe:
        words = probe["exec"]["command"][-1].split()
        action = "exec: %s" % " ".join(words if len(words) <= 5 else words[:3] + ["..."] + words[-2:])
    elif "httpGet" in probe:
        get = probe["httpGet"]
        action = "httpGet %s://%s:%s%s" % (get.get("scheme", "HTTP").lower(), get.get("host", "<pod IP>"),
                                           get.get("port"), get.get("path", "/"))
    else:
        action = ", ".join(sorted(k for k in probe if not k.endswith(("Seconds", "Threshold"))))
    return "%s (delay %ss, period %ss, timeout %ss, %d failures)" % (
        action, probe.get("initialDelaySeconds", 0), probe.get("periodSeconds", 10), probe.get("timeoutSeconds", 1),
        probe.get("failureThreshold", 3))


def describe_window(window):
    if not window:
        return "no probe, nothing kills the pod"
    # kubelet's ticker keeps the tick a slow probe misses: timed-out checks repeat every max(period, timeout)
    text = ("killed %ss after it stops answering; %ss when each check hangs into its timeout (one every %ss, "
            "up to %ss with kubelet's first tick)")
    return text % (window["fast_failure_seconds"], window["hung_seconds"], window["hung_probe_interval_seconds"],
                   window["hung_seconds_latest"])


def first_sentence(text, width=90):
    sentence = text.split(". ")[0].rstrip(".") + "."
    if len(sentence) <= width:
        return sentence
    return sentence[:width - 4].rsplit(" ", 1)[0] + " ..."


def finding_rows(findings):
    rows = [[f["severity"], f["rule"], first_sentence(f["message"])] for f in findings]
    return table(["severity", "rule", "why (first sentence)"], rows) if rows else ["no findings"]


def audit_seed_probe(demo):
    from tests.lab.static_pods import write_etcd_manifest
    # kubeadm's default ports and paths on a node that is only a directory: the module reads files, nothing runs
    # (tests/integration/manifests/test_seed_probe_outage.py runs the seed probe under the kubelet double)
    member = Member("antidote-controller-4m3j", node_root(demo, "antidote-controller-4m3j"), 2379, 2380, 2381)
    cluster = EtcdLab(os.path.join(demo.workdir, "nodes"), size=1, members=[member])   # settings only, never started
    manifest = write_etcd_manifest(member, cluster, probe="seed", version=PROBE_ETCD_VERSION)
    with open(os.path.join(member.manifests_dir, "kube-apiserver.yaml.bak"), "w") as handle:
        handle.write("apiVersion: v1\nkind: Pod\nmetadata: {name: kube-apiserver, namespace: kube-system}\n"
                     "spec: {containers: [{name: kube-apiserver, image: 'registry.k8s.io/kube-apiserver:v1.30.4'}]}\n")
    audit = demo.module("static_pod_probe", dict(name="etcd", manifest_dir=member.manifests_dir))
    demo.results.update(probe_manifest=manifest, probe_node=member, probe_audit=audit)
    return (["%s: kubeadm's etcd.yaml (image etcd:%s) with the 2018 exec probe, and a stray kube-apiserver.yaml.bak"
             % (member.manifests_dir, PROBE_ETCD_VERSION),
             "static_pod_probe state=audited (changes nothing):",
             "  liveness probe: %s" % describe_probe(audit["probe_spec"]),
             "  kill window:    %s" % describe_window(audit["kill_window"]), ""]
            + finding_rows(audit["findings"]))


def fix_seed_probe(demo):
    node = demo.results["probe_node"]
    manifests = node.manifests_dir
    backups = os.path.join(node.root, "var/backups/cplane-kubeadm")
    lines = []
    fixed = {}
    for probe in ("liveness", "startup"):
        result = demo.module("static_pod_probe", dict(name="etcd", manifest_dir=manifests, probe=probe, state="present",
                                                      recommended=True, backup_dir=backups), diff=True)
        fixed[probe] = result
        changed = [line for line in unified_probe_diff(result) if line[:1] in "+-"]
        stamp = os.path.relpath(result["backup_file"], backups).split(os.sep)[0]
        lines += ["%s probe (%d lines of etcd.yaml changed, every other line kept):" % (probe, len(changed)),
                  "  before: %s" % describe_probe(result["before"]),
                  "  after:  %s" % describe_probe(result["probe_spec"]),
                  "  backup: %s/%s/<the manifest's full path>" % (backups, stamp)]
    after = demo.module("static_pod_probe", dict(name="etcd", manifest_dir=manifests))
    demo.results.update(probe_fixed=fixed, probe_after=after)
    lines += ["backups are outside the manifests dir, which still holds only: %s" % ", ".join(sorted(os.listdir(manifests))),
              "", "re-audit: liveness %s" % describe_window(after["kill_window"]), ""]
    return lines + finding_rows(after["findings"]) + [
        "(the module reports the stray .bak and never deletes it: move it out, or kubelet runs it as a pod)"]


def unified_probe_diff(result):
    import difflib
    diff = result.get("diff") or {}
    return [line for line in difflib.unified_diff(diff.get("before", "").splitlines(), diff.get("after", "").splitlines(),
                                                  lineterm="", n=0) if not line.startswith(("---", "+++", "@@"))]


PROBE_STEPS = [
    ("The 183-restarts probe (issue #4): audit the seed's etcd.yaml", audit_seed_probe),
    ("The 183-restarts probe: write kubeadm's recommended probes (state=present recommended=true, diff)", fix_seed_probe),
]


# -- a node fat-fingered to an older kubelet (seeds/000) ------------------------------------------
VERSIONS_TARGET = "v1.14"


def check_seed_versions(demo):
    from tests.lab.api_double import ApiDouble
    api = ApiDouble(os.path.join(demo.workdir, "api"), "seed")
    demo.on_exit("API double", api.stop)
    api.start()
    result = demo.module("node_version_check", dict(kubeconfig=api.kubeconfig, target_version=VERSIONS_TARGET))
    demo.results.update(versions=result, api_url=api.url)
    rows = []
    for node in result["nodes"]:
        plane = node["control_plane"]
        rows.append([node["name"], ",".join(node["roles"]) or "-", node["kubelet"], node["kube_proxy"] or "-",
                     plane.get("kube-apiserver", "-"), plane.get("etcd", "-"),
                     ", ".join("%s %d" % (short(c), n) for c, n in sorted(node["restarts"].items()) if n) or "-"])
    lines = ["API double at %s serving tests/fixtures/clusters/seed.yaml; node_version_check target_version=%s"
             % (api.url, VERSIONS_TARGET), "api server: %s" % result["api_server_version"], ""]
    lines += table(["node", "roles", "kubelet", "kube-proxy", "apiserver", "etcd", "static pod restarts"], rows)
    lines += ["", "violations: %s" % (", ".join(v["message"] for v in result["violations"])
                                      or "none (a kubelet may be 2 minors older than kube-apiserver before 1.25)"),
              "mixed versions:"]
    lines += ["  %s" % m["message"] for m in result["mixed_versions"]] or ["  none"]
    path = result["upgrade_path"]
    lines += ["upgrade path %s -> %s:" % (path["from"], path["to"])]
    for step in path["steps"]:
        first = "; ".join("%s on %s %s -> %s (%s)" % (u["component"], u["node"], u["version"], u["upgrade_to"], u["reason"])
                          for u in step["upgrade_first"])
        lines.append("  %s -> %s: upgrade first: %s" % (step["from"], step["to"], first or "nothing"))
    return lines


def short(component):
    return component.replace("kube-", "", 1)


VERSION_STEPS = [
    ("A node fat-fingered to an older kubelet: node_version_check against the API double", check_seed_versions),
]


# -- certificates ---------------------------------------------------------------------------------
NEAR_EXPIRY_DAYS = {"etcd-server": 3, "apiserver": 12, "admin.conf": 25}


def read_certificates(demo):
    from tests.lab import pki
    now = pki.now()
    node = pki.build_node_pki(node_root(demo, "cp1"), pki.ClusterCAs.create(), node="cp1", not_after={
        name: now + datetime.timedelta(days=days, minutes=5) for name, days in NEAR_EXPIRY_DAYS.items()})
    demo.results["pki"] = node
    info = demo.module("kubeadm_cert_info", dict(pki_dir=node.pki_dir, kubeconfig_dir=node.kubeconfig_dir,
                                                 kubelet_pki_dir=os.path.join(node.root, "var/lib/kubelet/pki")))
    demo.results["cert_info"] = info
    rows = [[c["name"], c["ca"], c["not_after"], c["residual_time"], "yes" if c["name"] in info["expiring"] else ""]
            for c in info["certificates"] if not c["missing"]]
    return (["%s: kubeadm PKI of cp1, 3 CAs and %d certificates; %s issued to expire in %s days"
             % (node.root, len(rows), ", ".join(NEAR_EXPIRY_DAYS), ", ".join(str(d) for d in NEAR_EXPIRY_DAYS.values())),
             "kubeadm_cert_info (warn_days 30):", ""]
            + table(["certificate", "CA", "notAfter", "left", "expiring"], rows))


def renew_certificates(demo):
    node = demo.results["pki"]
    args = dict(pki_dir=node.pki_dir, kubeconfig_dir=node.kubeconfig_dir, renew_before_days=30,
                backup_dir=os.path.join(node.root, "var/backups/cplane-kubeadm"))
    renew = demo.module("kubeadm_cert_renew", args, diff=True)
    again = demo.module("kubeadm_cert_renew", args)
    demo.results.update(cert_renew=renew, cert_renew_again=again)
    rows = [[r["name"], "%s -> %s" % (r["old_not_after"], r["new_not_after"]), ", ".join(r["restart"]) or "-"]
            for r in renew["renewed"]]
    return (["kubeadm_cert_renew renew_before_days=30: renewed %d of %d, the rest are not due"
             % (len(renew["renewed"]), len(renew["certificates"])), ""]
            + table(["renewed", "notAfter old -> new", "restart"], rows)
            + ["", "restart_required (in this order): %s" % ", ".join(renew["restart_required"]),
               "backups (keys stay 0600): %s" % os.path.join(renew["backup_dir"], renew["backup_stamp"]),
               "second run: changed=%s, renewed %d (idempotent)" % (again["changed"], len(again["renewed"]))])


CERT_STEPS = [
    ("Certificates: kubeadm_cert_info on a PKI with three certificates near expiry", read_certificates),
    ("Certificates: kubeadm_cert_renew what expires within 30 days", renew_certificates),
]


def start_recovery_lab(demo):
    import pathlib
    from tests.lab.static_pods import KubeletEtcdLab
    lab = KubeletEtcdLab(os.path.join(demo.workdir, "recovery"), size=3, time_scale=0.2)
    demo.on_exit("recovery lab", lab.stop)
    lab.start()
    for i in range(100):
        lab.etcdctl("put", "/demo/%03d" % i, "value-%d" % i)
    demo.results["recovery_lab"] = lab
    demo.results["recovery_dir"] = pathlib.Path(demo.workdir)
    return ["3 etcd members as static pods under kubelet doubles (etcd 3.5.1), 100 keys written"]


def recovery_summary(demo, run):
    lab = demo.results["recovery_lab"]
    plan = next((r["result"]["msg"] for r in run.task("Show the recovery plan")), "no plan")
    bundle = next((r["result"]["msg"] for r in run.task("Evidence | where the bundle is")), "no bundle")
    members = lab.etcdctl("member", "list", "-w", "table").stdout.strip().splitlines()
    keys = len(lab.etcdctl("get", "/demo/", "--prefix", "--keys-only").stdout.split())
    changed = len([r for r in run.results if r["result"].get("changed")])
    return ["%s (%d tasks changed something)" % (plan, changed), bundle, "keys under /demo/: %d" % keys, ""] + members


def recover_lost_member(demo):
    from tests.lab.recovery import PLAYBOOK, destroy, write_inventory
    lab = demo.results["recovery_lab"]
    destroy(lab, "cp2")
    deadline = time.monotonic() + 60
    while lab.member("cp2").healthy() and time.monotonic() < deadline:
        time.sleep(0.5)
    run = run_playbook(PLAYBOOK, inventory=write_inventory(lab, demo.results["recovery_dir"]))
    if run.rc != 0:
        raise RuntimeError("recover failed:\n%s" % run.output[-2000:])
    lab.wait_healthy()
    return ["cp2's etcd killed, its WAL removed and its database overwritten; ansible-playbook cplane.kubeadm.recover:"] \
        + recovery_summary(demo, run)


def recover_lost_quorum(demo):
    from tests.lab.recovery import PLAYBOOK, destroy, write_inventory
    lab = demo.results["recovery_lab"]
    snapshots = demo.results["recovery_dir"] / "snapshots"
    snapshots.mkdir(exist_ok=True)
    lab.etcdctl("snapshot", "save", str(snapshots / "etcd-snapshot-20261201T000000Z.db"), endpoints=lab.endpoints[:1])
    lab.etcdctl("put", "/after-snapshot", "lost with quorum")
    destroy(lab, "cp2")
    destroy(lab, "cp3")
    run = run_playbook(PLAYBOOK, inventory=write_inventory(lab, demo.results["recovery_dir"],
                                                           control_plane_recovery_bump_revision=0))
    if run.rc != 0:
        raise RuntimeError("recover failed:\n%s" % run.output[-2000:])
    lab.wait_healthy()
    parent = os.path.dirname(lab.member("cp1").data_dir)
    aside = sorted(n for n in os.listdir(parent) if n.startswith("etcd.") and os.path.isdir(os.path.join(parent, n)))
    return (["snapshot taken, one more write, then cp2 and cp3 destroyed: no quorum; ansible-playbook "
             "cplane.kubeadm.recover:"] + recovery_summary(demo, run)
            + ["", "cp1's data before the restore is kept aside, not deleted: %s" % ", ".join(aside)])


RECOVERY_STEPS = [
    ("Recovery: a 3-member etcd as static pods", start_recovery_lab),
    ("Recovery: one member's data destroyed -> recover replaces it learner-first, in place", recover_lost_member),
    ("Recovery: two of three destroyed (quorum lost) -> recover restores the snapshot on every member", recover_lost_quorum),
]

SECTIONS = {"etcd": ETCD_STEPS, "probe": PROBE_STEPS, "versions": VERSION_STEPS, "certs": CERT_STEPS,
            "recover": RECOVERY_STEPS}
STEPS = [step for steps in SECTIONS.values() for step in steps]


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
            demo.on_exit("etcd lab", demo.lab.stop)
        stopped = []
        for what, stop in reversed(demo.cleanups):
            try:
                stop()
                stopped.append(what)
            except Exception as err:  # stop the rest anyway
                print("could not stop %s: %s" % (what, err), file=sys.stderr)
        if not options.keep_dir:
            shutil.rmtree(workdir, ignore_errors=True)
        what = " (%s)" % ", ".join(stopped) if stopped else ""
        removed = "" if options.keep_dir else " and removed"
        print("\nlab stopped%s%s; demo took %.1fs" % (what, removed, time.monotonic() - started))
    return demo


def selected_steps(only):
    return [step for name in SECTIONS if name in (only or SECTIONS) for step in SECTIONS[name]]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep-dir", help="work in DIR and keep it (snapshots, lab logs) afterwards")
    parser.add_argument("--fragment-mib", type=int, default=64, help="MiB written and deleted to fragment the lab")
    parser.add_argument("--only", action="append", choices=list(SECTIONS), metavar="SECTION",
                        help="run only this section (%s); may be repeated" % ", ".join(SECTIONS))
    options = parser.parse_args(argv)
    try:
        run(selected_steps(options.only), options)
    except Exception as err:  # a demo prints what failed, not a traceback
        print("\ndemo failed: %s" % err, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
