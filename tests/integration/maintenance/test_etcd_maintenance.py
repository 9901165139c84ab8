"""playbooks/etcd_maintenance.yml and the etcd_maintenance role against a real 3-member TLS etcd."""
import os
import stat
import subprocess
import sys

import pytest
import yaml

from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd.snapshot import verify_snapshot
from ansible_collections.cplane.kubeadm.plugins.module_utils._runstate import read_run_state, state_path
from tests.conftest import COLLECTIONS_ROOT, ROOT
from tests.lab.ansible_run import run_playbook, service_exec
from tests.lab.binaries import etcd_binary
from tests.lab.etcd_cluster import EtcdLab
from tests.lab.workload import fragment

PLAYBOOK = os.path.join(ROOT, "playbooks", "etcd_maintenance.yml")


def role_vars(lab, **extra):
    values = {"etcd_maintenance_%s" % k: v for k, v in lab.connection_args().items()}
    # The lab's databases are MiB, not the 100 MiB a real cluster would need to be worth it.
    values.update(etcd_maintenance_become=False)
    values.update(etcd_maintenance_min_db_size=1024 * 1024, etcd_maintenance_pause_seconds=0.2,
                  etcd_maintenance_etcdutl_path=etcd_binary("etcdutl"))
    values.update(extra)
    return values


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with EtcdLab(str(tmp_path_factory.mktemp("mlab")), size=3) as cluster:
        client = cluster.client()
        for i in range(100):
            client.put("/registry/keep/%03d" % i, "v%03d" % i)
        client.close()
        yield cluster


def test_check_mode_changes_nothing(lab, tmp_path):
    fragment(lab, 16)
    before = lab.db_sizes()
    extra = role_vars(lab, target="localhost", etcd_maintenance_snapshot_dir=str(tmp_path / "snaps"),
                      etcd_maintenance_timer=True, etcd_maintenance_timer_systemctl=False,
                      etcd_maintenance_timer_unit_dir=str(tmp_path / "units"),
                      etcd_maintenance_timer_config_dir=str(tmp_path / "conf"))
    run = run_playbook(PLAYBOOK, extra, check=True)
    assert run.rc == 0, run.output
    assert run.task("Defragment etcd members")[0]["result"].get("plan"), run.task("Defragment etcd members")[0]["result"]
    assert lab.db_sizes() == before
    assert os.listdir(str(tmp_path)) == []


def test_playbook_defragments_once_then_snapshots_on_every_host(lab, tmp_path):
    fragment(lab, 16)
    before = lab.db_sizes()
    inventory = tmp_path / "hosts.yml"
    hosts = {}
    for member in lab.members:
        hosts[member.name] = dict(ansible_connection="local", ansible_python_interpreter=sys.executable,
                                  etcd_maintenance_endpoints=[member.client_url],
                                  etcd_maintenance_snapshot_dir=str(tmp_path / member.name / "backups"))
    inventory.write_text(yaml.safe_dump({"kube_control_plane": {"hosts": hosts}}))
    extra = role_vars(lab)
    extra.pop("etcd_maintenance_endpoints")
    run = run_playbook(PLAYBOOK, extra, inventory=str(inventory))
    assert run.rc == 0, run.output

    defrags = run.task("Defragment etcd members")
    assert [(r["host"], r["status"]) for r in defrags] == [("cp1", "ok"), ("cp2", "skipped"), ("cp3", "skipped")]
    result = defrags[0]["result"]
    assert result["changed"] and result["plan"][-1] == result["leader_before"], "leader last"
    after = lab.db_sizes()
    for name in before:
        assert after[name] < before[name] / 2, (name, before[name], after[name])

    snaps = run.task("Take a verified etcd snapshot")
    assert [r["host"] for r in snaps] == ["cp1", "cp2", "cp3"]
    for entry in snaps:
        snap = entry["result"]
        assert entry["status"] == "ok" and snap["changed"]
        assert snap["status_source"] == "etcdutl"
        files = os.listdir(str(tmp_path / entry["host"] / "backups"))
        name = os.path.basename(snap["path"])
        assert sorted(files) == [name, name + ".json"]   # the snapshot and the sidecar that marks it ours
        assert stat.S_IMODE(os.stat(snap["path"]).st_mode) == 0o600
        assert verify_snapshot(snap["path"])["revision"] == snap["revision"]
        assert snap["key_count"] >= 100


def test_timer_units_render_and_their_command_runs_the_maintenance(lab, tmp_path):
    units, conf = tmp_path / "units", tmp_path / "conf"
    extra = role_vars(lab, target="localhost", etcd_maintenance_run=False, etcd_maintenance_timer=True,
                      etcd_maintenance_timer_systemctl=False, etcd_maintenance_timer_unit_dir=str(units),
                      etcd_maintenance_timer_config_dir=str(conf),
                      etcd_maintenance_snapshot_dir=str(tmp_path / "nightly"),
                      # The timer's run acts on the leader's node only (test_unattended.py): be that node.
                      etcd_maintenance_local_endpoint=lab.member(lab.leader()).client_url,
                      etcd_maintenance_state_dir=str(tmp_path / "runs"),
                      etcd_maintenance_fstrim=False,   # test_unattended.py runs it
                      etcd_maintenance_timer_ansible_playbook=os.path.join(os.path.dirname(sys.executable),
                                                                           "ansible-playbook"),
                      etcd_maintenance_timer_collections_path=COLLECTIONS_ROOT)
    units.mkdir()
    first = run_playbook(PLAYBOOK, extra)
    assert first.rc == 0, first.output
    assert not (tmp_path / "nightly").exists(), "etcd_maintenance_run=false only installs the timer"
    timer = (units / "cplane-etcd-maintenance.timer").read_text()
    service = (units / "cplane-etcd-maintenance.service").read_text()
    assert "OnCalendar=*-*-* 02:30:00\n" in timer
    assert "RandomizedDelaySec=30min\n" in timer and "Persistent=true\n" in timer
    assert "Unit=cplane-etcd-maintenance.service\n" in timer and "WantedBy=timers.target" in timer
    settings_path = conf / "cplane-etcd-maintenance.yml"
    assert stat.S_IMODE(os.stat(str(settings_path)).st_mode) == 0o600
    settings = yaml.safe_load(settings_path.read_text())
    assert settings["etcd_maintenance_timer"] is False
    assert settings["etcd_maintenance_endpoints"] == lab.endpoints

    second = run_playbook(PLAYBOOK, extra)
    assert second.rc == 0 and not any(r["result"].get("changed") for r in second.results), "idempotent"

    # What systemd would run: the Environment= lines and ExecStart of the rendered service.
    command, env = service_exec(service)
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    nightly = os.listdir(str(tmp_path / "nightly"))
    snapshots = [n for n in nightly if n.endswith(".db.xz")]
    assert len(snapshots) == 1 and sorted(nightly) == [snapshots[0], snapshots[0] + ".json"]
    assert sorted(os.listdir(str(units))) == ["cplane-etcd-maintenance.service", "cplane-etcd-maintenance.timer"]
    assert read_run_state(state_path("etcd_maintenance", str(tmp_path / "runs")))["acted"] is True

    custom = run_playbook(PLAYBOOK, dict(extra, etcd_maintenance_timer_randomized_delay="5min",
                                         etcd_maintenance_timer_on_calendar="Sun *-*-* 03:00:00"), check=True)
    assert custom.rc == 0
    assert (units / "cplane-etcd-maintenance.timer").read_text() == timer, "check mode leaves the unit as it was"
    applied = run_playbook(PLAYBOOK, dict(extra, etcd_maintenance_timer_randomized_delay="5min",
                                          etcd_maintenance_timer_on_calendar="Sun *-*-* 03:00:00"))
    assert applied.rc == 0
    timer = (units / "cplane-etcd-maintenance.timer").read_text()
    assert "OnCalendar=Sun *-*-* 03:00:00\n" in timer and "RandomizedDelaySec=5min\n" in timer
