"""control_plane_metrics role: the timer's units and settings, then state=absent removing them and the file.

The role's idempotence is not re-checked here: every task but the metrics write is a file or template
task, and the metrics write changes the file on every run by design (docs/monitoring.md)."""
import os

import yaml

from tests.conftest import ROOT
from tests.lab.ansible_run import run_playbook

PLAYBOOK = os.path.join(ROOT, "playbooks", "control_plane_metrics.yml")


def test_timer_is_rendered_with_the_run_settings_and_absent_removes_everything(tmp_path):
    units, config, textfiles = tmp_path / "units", tmp_path / "etc", tmp_path / "textfile"
    settings = {
        "target": "localhost", "control_plane_metrics_become": False,
        "control_plane_metrics_textfile_dir": str(textfiles), "control_plane_metrics_collectors": ["runs"],
        "control_plane_metrics_state_dir": str(tmp_path / "runs"),
        "control_plane_metrics_timer": True, "control_plane_metrics_timer_systemctl": False,
        "control_plane_metrics_timer_unit_dir": str(units), "control_plane_metrics_timer_config_dir": str(config),
        "control_plane_metrics_timer_on_calendar": "*:0/2",
    }
    run = run_playbook(PLAYBOOK, settings)
    assert run.rc == 0, run.output[-4000:]
    assert os.path.isfile(str(textfiles / "cplane_kubeadm.prom"))
    service = (units / "cplane-kubeadm-metrics.service").read_text()
    timer = (units / "cplane-kubeadm-metrics.timer").read_text()
    assert "cplane.kubeadm.control_plane_metrics" in service
    assert "-e @%s/cplane-kubeadm-metrics.yml" % config in service
    assert "OnCalendar=*:0/2" in timer and "Unit=cplane-kubeadm-metrics.service" in timer
    assert os.stat(str(config)).st_mode & 0o777 == 0o700
    local = yaml.safe_load((config / "cplane-kubeadm-metrics.yml").read_text())
    # The timer's run writes the file with the same settings and installs nothing.
    assert local["control_plane_metrics_textfile_dir"] == str(textfiles)
    assert local["control_plane_metrics_collectors"] == ["runs"]
    assert local["control_plane_metrics_timer"] is False and local["control_plane_metrics_become"] is False
    assert not [key for key in local if key.startswith("control_plane_metrics_timer_")]

    removed = run_playbook(PLAYBOOK, dict(settings, control_plane_metrics_state="absent"))
    assert removed.rc == 0, removed.output[-4000:]
    assert os.listdir(str(units)) == [] and os.listdir(str(config)) == [] and os.listdir(str(textfiles)) == []
