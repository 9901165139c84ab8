import json

import pytest

from ansible_collections.cplane.kubeadm.plugins.module_utils import _runstate
from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import InputError


def _record(path, success, steps, finished):
    return _runstate.record_run(path, job="etcd_maintenance", host="cp1", started=finished - 10,
                                finished=finished, success=success, acted=True, reason="leader", steps=steps)


def test_a_failed_run_keeps_the_last_successful_snapshot_time(tmp_path):
    path = str(tmp_path / "runs" / "etcd_maintenance.json")
    _record(path, True, {"defrag": {"success": True, "finished": 95.0}, "snapshot": {"success": True}}, 100.0)
    state = _record(path, False, {"defrag": {"success": True, "finished": 195.0},
                                  "snapshot": {"success": False}}, 200.0)
    assert state["last_success"] == {"defrag": 195.0, "snapshot": 100.0, "run": 100.0}
    assert state["consecutive_failures"] == 1
    assert json.loads(open(path).read()) == state


def test_missing_state_reads_as_none_and_garbage_names_the_file(tmp_path):
    assert _runstate.read_run_state(str(tmp_path / "absent.json")) is None
    bad = tmp_path / "etcd_maintenance.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match=str(bad)):
        _runstate.read_run_state(str(bad))


def test_steps_get_their_seconds_and_a_step_cut_short_ends_with_the_run():
    steps = _runstate.normalize_steps({
        "defrag": {"success": True, "started": "100.5", "finished": 112.75, "defragmented": ["cp2", "cp1"]},
        "snapshot": {"success": False, "started": 113.0, "error": "killed"},
    }, finished=120.0)
    assert steps["defrag"] == {"success": True, "started": 100.5, "finished": 112.75, "seconds": 12.25,
                               "defragmented": ["cp2", "cp1"]}
    assert steps["snapshot"]["finished"] == 120.0 and steps["snapshot"]["seconds"] == 7.0
    with pytest.raises(InputError, match="step fstrim must be a dict"):
        _runstate.normalize_steps({"fstrim": "ok"}, finished=1.0)
