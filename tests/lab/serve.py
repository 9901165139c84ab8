"""Start and stop an etcd lab that outlives this process (for molecule and manual exploring).

    python -m tests.lab.serve start --dir DIR [--size 3] [--fragment-mib 16]
    python -m tests.lab.serve stop --dir DIR

``start`` writes ``DIR/vars.yml``: the role variables to reach the lab (etcd_maintenance_*
connection settings) plus ``cplane_lab_db_sizes`` (each member's database size after
fragmenting), and ``DIR/lab.json`` with the member processes.  ``stop`` ends exactly those
processes (it checks each pid still runs etcd) and is safe to run twice.
"""
import argparse
import json
import os
import signal
import sys
import time

import yaml

# makes ansible_collections.cplane.kubeadm importable
import tests.conftest  # noqa: F401  pylint: disable=unused-import
from tests.lab.etcd_cluster import EtcdLab

STATE = "lab.json"


def start(directory, size, fragment_mib):
    directory = os.path.abspath(directory)
    if os.path.exists(os.path.join(directory, STATE)):
        stop(directory)
    lab = EtcdLab(os.path.join(directory, "lab"), size=size)
    try:
        lab.start()
        client = lab.client()
        for i in range(100):
            client.put("/registry/lab/key-%03d" % i, "value-%03d" % i)
        client.close()
        if fragment_mib:
            from tests.lab.workload import fragment
            fragment(lab, fragment_mib)
        role_vars = {"etcd_maintenance_%s" % k: v for k, v in lab.connection_args().items()}
        role_vars["cplane_lab_db_sizes"] = lab.db_sizes()
        state = dict(pids=[m.process.pid for m in lab.members], members=[m.name for m in lab.members],
                     endpoints=lab.endpoints)
        with open(os.path.join(directory, STATE), "w") as handle:
            json.dump(state, handle)
        with open(os.path.join(directory, "vars.yml"), "w") as handle:
            yaml.safe_dump(role_vars, handle, default_flow_style=False)
    except BaseException:
        lab.stop()
        raise
    print("lab running: %s (vars in %s)" % (", ".join(lab.endpoints), os.path.join(directory, "vars.yml")))


def _is_etcd(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            return b"etcd" in handle.read().split(b"\0")[0]
    except OSError:
        return False


def stop(directory, timeout=10):
    path = os.path.join(os.path.abspath(directory), STATE)
    if not os.path.exists(path):
        print("no lab in %s" % directory)
        return
    with open(path) as handle:
        pids = [pid for pid in json.load(handle)["pids"] if _is_etcd(pid)]
    for pid in pids:
        for sig in (signal.SIGCONT, signal.SIGTERM):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_is_etcd(pid) for pid in pids):
        time.sleep(0.1)
    for pid in pids:
        if _is_etcd(pid):
            os.kill(pid, signal.SIGKILL)
    os.unlink(path)
    print("lab stopped (%d processes)" % len(pids))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("--dir", required=True)
    parser.add_argument("--size", type=int, default=3)
    parser.add_argument("--fragment-mib", type=int, default=16)
    options = parser.parse_args(argv)
    if options.action == "start":
        start(options.dir, options.size, options.fragment_mib)
    else:
        stop(options.dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
