"""The nightly timer's run on three lab "nodes" at once: exactly one acts, every run is recorded.

Each member of a real 3-member TLS etcd lab stands for a control-plane node whose local endpoint
is its own client URL. The role installs the timer on the three nodes (one inventory, per-node unit,
settings, snapshot and state directories); the tests then run exactly the ExecStart command line
of each node's rendered service, as systemd would, all at the same moment.
"""
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import yaml

from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd.snapshot import verify_snapshot
from ansible_collections.cplane.kubeadm.plugins.module_utils._runstate import read_run_state, state_path
from tests.conftest import COLLECTIONS_ROOT, ROOT
from tests.lab.ansible_run import descendants, run_module, run_playbook, service_exec
from tests.lab.binaries import etcd_binary
from tests.lab.etcd_cluster import EtcdLab
from tests.lab.workload import fragment

PLAYBOOK = os.path.join(ROOT, "playbooks", "etcd_maintenance.yml")
TURN = "/cplane.kubeadm/turns/test-unattended"
# Short enough that "the next night" (the claim expired) comes within seconds; the leader never
# moves in these runs (move_leader false), so no second node becomes a candidate meanwhile.
TURN_TTL = 8
DEFRAG_LOCK = "/cplane.kubeadm/locks/etcd_defrag"
SHM = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


class Node(object):
    def __init__(self, root, member):
        self.name = member.name
        self.member = member
        self.root = root
        self.units = os.path.join(root, "units")
        self.conf = os.path.join(root, "conf")
        self.snapshots = os.path.join(root, "backups")
        self.state_dir = os.path.join(root, "runs")
        # fstrim of the member's data directory would trim this machine's whole root filesystem (seconds of
        # I/O per run on a shared disk); a directory on tmpfs gets util-linux's real "the discard operation
        # is not supported", the case that must be logged, not failed (tests/unit/fstrim parses a real trim).
        self.fstrim_dir = os.path.join(SHM, os.path.basename(os.path.dirname(root)) + "-" + member.name) \
            if SHM else member.data_dir

    @property
    def state(self):
        return read_run_state(state_path("etcd_maintenance", self.state_dir))

    def service(self):
        with open(os.path.join(self.units, "cplane-etcd-maintenance.service")) as handle:
            return handle.read()

    def start(self):
        """The rendered service's ExecStart with its Environment= lines, as systemd runs it."""
        command, env = service_exec(self.service())
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                start_new_session=True)

    def snapshot_files(self):
        return sorted(glob.glob(os.path.join(self.snapshots, "*.db.xz")))


def install_vars(lab, **extra):
    values = {"etcd_maintenance_%s" % k: v for k, v in lab.connection_args().items()}
    values.update(
        etcd_maintenance_become=False, etcd_maintenance_run=False, etcd_maintenance_timer=True,
        etcd_maintenance_timer_systemctl=False,
        etcd_maintenance_timer_ansible_playbook=os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
        etcd_maintenance_timer_collections_path=COLLECTIONS_ROOT,
        # The lab's databases are MiB, not the 100 MiB a real cluster would need to be worth it.
        etcd_maintenance_min_db_size=1024 * 1024, etcd_maintenance_move_leader=False,
        # A pause between members leaves the kill test a window while the defrag lock is held.
        etcd_maintenance_pause_seconds=2, etcd_maintenance_lock_ttl=5,
        etcd_maintenance_etcdutl_path=etcd_binary("etcdutl"),
        etcd_maintenance_turn_name=TURN, etcd_maintenance_turn_ttl=TURN_TTL)
    values.pop("etcd_maintenance_endpoints")
    values.update(extra)
    return values


def inventory(tmp_path, nodes):
    path = tmp_path / "hosts.yml"
    hosts = {}
    for node in nodes:
        hosts[node.name] = dict(
            ansible_connection="local", ansible_python_interpreter=sys.executable,
            # A node's endpoint is its own member, as https://127.0.0.1:2379 is on a kubeadm node.
            etcd_maintenance_endpoints=[node.member.client_url],
            etcd_maintenance_data_dir=node.fstrim_dir,
            etcd_maintenance_timer_unit_dir=node.units, etcd_maintenance_timer_config_dir=node.conf,
            etcd_maintenance_snapshot_dir=node.snapshots, etcd_maintenance_state_dir=node.state_dir)
    path.write_text(yaml.safe_dump({"kube_control_plane": {"hosts": hosts}}))
    return str(path)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("unattended")
    with EtcdLab(str(root / "lab"), size=3) as lab:
        client = lab.client()
        for i in range(50):
            client.put("/registry/keep/%03d" % i, "v%03d" % i)
        client.close()
        nodes = [Node(str(root / member.name), member) for member in lab.members]
        for node in nodes:
            os.makedirs(node.fstrim_dir, exist_ok=True)
        hosts = inventory(root, nodes)
        run = run_playbook(PLAYBOOK, install_vars(lab), inventory=hosts)
        assert run.rc == 0, run.output[-4000:]
        try:
            yield lab, nodes, hosts
        finally:
            for node in nodes:
                if SHM:
                    shutil.rmtree(node.fstrim_dir, ignore_errors=True)


def claim_keys(lab):
    out = lab.etcdctl("get", "--prefix", "--keys-only", TURN + "/").stdout
    return [line for line in out.splitlines() if line.strip()]


def wait_claim_expired(lab, timeout=60):
    """'The next night': the claim's lease has run out (etcd deleted its key)."""
    deadline = time.monotonic() + timeout
    while claim_keys(lab):
        assert time.monotonic() < deadline, "the night's claim did not expire: %s" % claim_keys(lab)
        time.sleep(0.5)


def run_all(nodes, timeout=600):
    procs = [(node, node.start()) for node in nodes]
    outputs = {}
    for node, proc in procs:
        out = proc.communicate(timeout=timeout)[0]
        outputs[node.name] = (proc.returncode, out)
    return outputs


def assert_all_succeeded(nodes, outputs):
    failed = {n.name: (outputs[n.name][1][-1500:], n.state and n.state["reason"]) for n in nodes if outputs[n.name][0]}
    assert not failed, failed


def kill_tree(proc):
    """SIGKILL the run's process group and everything below it (ansible's worker calls setsid)."""
    pids = [proc.pid] + descendants(proc.pid)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.communicate(timeout=60)


def test_installed_settings_make_each_node_an_unattended_run(cluster):
    lab, nodes = cluster[:2]
    for node in nodes:
        with open(os.path.join(node.conf, "cplane-etcd-maintenance.yml")) as handle:
            settings = yaml.safe_load(handle)
        assert settings["etcd_maintenance_unattended"] is True
        assert settings["etcd_maintenance_node_name"] == node.name
        assert settings["etcd_maintenance_local_endpoint"] == node.member.client_url
        assert settings["etcd_maintenance_data_dir"] == node.fstrim_dir
        assert "etcd_maintenance_timer_state" not in settings
        assert node.state is None, "installing runs nothing"


def acted_since(nodes, since):
    return [n for n in nodes if n.state and n.state["acted"] and n.state["started"] >= since]


def test_three_nodes_at_once_exactly_the_leaders_node_acts(cluster):
    lab, nodes = cluster[:2]
    fragment(lab, 12)
    before = lab.db_sizes()
    leader_before = lab.leader()
    started = time.time()

    outputs = run_all(nodes)

    assert_all_succeeded(nodes, outputs)
    states = {node.name: node.state for node in nodes}
    acting = [n.name for n in acted_since(nodes, started - 1)]
    assert len(acting) == 1, states
    leader = acting[0]
    if lab.leader() == leader_before:   # no election under load meanwhile: the leader's node acted
        assert leader == leader_before
    for node in nodes:
        state = states[node.name]
        assert state["success"] is True and state["job"] == "etcd_maintenance" and state["host"] == node.name
        assert state["started"] >= started - 1 and state["finished"] >= state["started"]
        assert state["last_success"]["run"] == state["finished"]
        if node.name == leader:
            assert "the local member %s is the leader" % leader in state["reason"]
            assert "This node (%s) acts tonight" % leader in outputs[node.name][1]
            steps = state["steps"]
            assert sorted(steps) == ["defrag", "fstrim", "snapshot"]
            assert all(step["success"] and step["seconds"] >= 0 for step in steps.values()), steps
            assert steps["defrag"]["started"] <= steps["snapshot"]["started"] <= steps["fstrim"]["started"]
            assert steps["defrag"]["defragmented"][-1] == steps["defrag"]["leader_before"], "leader last"
            assert sorted(steps["defrag"]["defragmented"]) == sorted(before)
            assert [steps["snapshot"]["path"]] == node.snapshot_files()
            assert verify_snapshot(steps["snapshot"]["path"])["revision"] == steps["snapshot"]["revision"]
            if SHM:   # util-linux's own answer on tmpfs, logged and recorded, not a failure
                assert steps["fstrim"]["supported"] is False
                assert "the discard operation is not supported" in steps["fstrim"]["message"]
            else:
                assert steps["fstrim"]["supported"] in (True, False) and steps["fstrim"]["message"]
            assert set(state["last_success"]) == {"run", "defrag", "snapshot", "fstrim"}
        else:
            # The others say who acts and why, and did nothing.
            assert ("member %s is the leader, so its node acts" % leader in state["reason"]
                    or "node %s (member %s) took tonight's turn" % (leader, leader) in state["reason"]), state["reason"]
            assert "does not act tonight" in outputs[node.name][1]
            assert state["steps"] == {} and node.snapshot_files() == []
    after = lab.db_sizes()
    for name in before:
        assert after[name] < before[name] / 2, (name, before[name], after[name])


def claim_holder(lab, procs, timeout=300):
    """The node named in the night's claim, once a run has claimed it."""
    deadline = time.monotonic() + timeout
    while True:
        lines = lab.etcdctl("get", "--prefix", TURN + "/").stdout.splitlines()
        if len(lines) >= 2:
            return json.loads(lines[1])["node"]
        assert all(proc.poll() is None for proc in procs), "a run ended before anyone claimed the turn"
        assert time.monotonic() < deadline, "no run claimed the turn"
        time.sleep(0.05)


def test_a_killed_run_leaves_the_next_night_free(cluster):
    lab, nodes = cluster[:2]
    wait_claim_expired(lab)
    fragment(lab, 12)
    previous = {n.name: n.state for n in nodes}
    procs = {n.name: n.start() for n in nodes}
    killed = claim_holder(lab, list(procs.values()))
    acting = procs[killed]
    # Mid-run: the acting run holds the defrag lock (it defragments with pauses between members).
    deadline = time.monotonic() + 300
    while not lab.etcdctl("get", "--prefix", "--keys-only", DEFRAG_LOCK + "/").stdout.strip():
        assert acting.poll() is None, acting.communicate()[0][-3000:]
        assert time.monotonic() < deadline, "the acting run never took the defrag lock"
        time.sleep(0.05)
    kill_tree(acting)
    assert acting.returncode == -signal.SIGKILL
    for n in nodes:
        if n.name != killed:
            out = procs[n.name].communicate(timeout=600)[0]
            assert procs[n.name].returncode == 0, out[-3000:]
            assert n.state["acted"] is False and n.state["success"] is True
    killed_node = next(n for n in nodes if n.name == killed)
    assert killed_node.state == previous[killed], "a killed run records nothing (systemd shows the kill)"

    wait_claim_expired(lab)
    started = time.time()
    outputs = run_all(nodes)
    assert_all_succeeded(nodes, outputs)
    acted = acted_since(nodes, started - 1)
    assert len(acted) == 1, {n.name: n.state for n in nodes}
    state = acted[0].state
    assert state["success"] is True and state["steps"]["defrag"]["success"] and state["steps"]["snapshot"]["success"]
    # It waited out the killed run's defrag lock (lease TTL 5 s) and defragmented.
    assert state["steps"]["defrag"]["defragmented"], state["steps"]["defrag"]
    assert state["steps"]["snapshot"]["path"] in acted[0].snapshot_files()


def test_a_failing_run_exits_non_zero_and_keeps_the_last_success(cluster):
    lab, nodes = cluster[:2]
    leader = lab.leader()
    node = next(n for n in nodes if n.name != leader)
    previous = node.state
    assert previous["success"] is True
    lab.kill(node.name)   # this node's own etcd is down: its endpoint does not answer
    try:
        proc = node.start()
        out = proc.communicate(timeout=600)[0]
    finally:
        lab.restart(node.name)
    assert proc.returncode != 0, out[-3000:]
    assert "The unattended etcd maintenance failed" in out
    state = node.state
    assert state["success"] is False and state["acted"] is False
    assert state["consecutive_failures"] == 1
    assert state["last_success"] == previous["last_success"]
    assert "Decide whether this node takes tonight's turn" in state["reason"]
    assert node.member.client_url in state["reason"]


def test_check_mode_decides_without_claiming(cluster):
    lab, nodes = cluster[:2]
    wait_claim_expired(lab)
    leader = lab.leader()
    node = next(n for n in nodes if n.name == leader)
    args = dict(lab.connection_args(endpoints=[node.member.client_url]), node=node.name, turn_name=TURN,
                turn_ttl=TURN_TTL)
    result = run_module("etcd_maintenance_turn", args, check=True)
    assert not result["failed"], result
    assert result["act"] is True and result["basis"] == "leader" and result["local_member"] == leader
    assert result["reason"].endswith("would claim tonight's turn") and result["claim"] is None
    assert claim_keys(lab) == [], "check mode claims nothing"


def test_timer_state_absent_removes_units_and_settings(cluster):
    lab, nodes, hosts = cluster
    extra = install_vars(lab, etcd_maintenance_timer=False, etcd_maintenance_timer_state="absent")
    node, other = nodes[0], nodes[1]
    checked = run_playbook(PLAYBOOK, extra, inventory=hosts, check=True, limit=node.name)
    assert checked.rc == 0, checked.output[-3000:]
    assert os.listdir(node.units) and os.listdir(node.conf), "check mode removes nothing"
    removed = run_playbook(PLAYBOOK, extra, inventory=hosts, limit=node.name)
    assert removed.rc == 0, removed.output[-3000:]
    assert os.listdir(node.units) == [] and os.listdir(node.conf) == []
    assert node.state is not None, "the run state stays for the metrics"
    assert sorted(os.listdir(other.units)) == ["cplane-etcd-maintenance.service", "cplane-etcd-maintenance.timer"]
    again = run_playbook(PLAYBOOK, extra, inventory=hosts, limit=node.name)
    assert again.rc == 0 and not [r for r in again.results if r["result"].get("changed")]
