"""The demo and the molecule lab CLI work end to end and leave no process behind."""
import argparse
import os

import yaml

from tests.lab import demo, serve


def etcd_running(pid):
    return serve._is_etcd(pid)


def test_demo_steps_shrink_the_lab_and_tear_it_down(tmp_path, capsys):
    options = argparse.Namespace(keep_dir=str(tmp_path / "demo"), fragment_mib=16)
    ran = demo.run(demo.STEPS, options)
    out = capsys.readouterr().out
    members = ran.results["defrag"]["members"]
    assert len(members) == 3
    for member in members:
        assert member["action"] == "defragmented"
        assert member["db_size_after"] < member["db_size_before"] / 2
        assert "%s " % member["name"] in out
    assert os.path.exists(ran.results["snapshot"]["path"]), "--keep-dir keeps the snapshot"
    assert "lab stopped" in out
    assert not any(m.process.poll() is None for m in ran.lab.members)


def test_serve_starts_a_lab_that_outlives_it_and_stops_it(tmp_path):
    lab_dir = str(tmp_path / "lab")
    serve.start(lab_dir, size=3, fragment_mib=4)
    state = yaml.safe_load(open(os.path.join(lab_dir, "lab.json")))
    settings = yaml.safe_load(open(os.path.join(lab_dir, "vars.yml")))
    try:
        assert all(etcd_running(pid) for pid in state["pids"])
        assert settings["etcd_maintenance_endpoints"] == state["endpoints"]
        assert set(settings["cplane_lab_db_sizes"]) == {"cp1", "cp2", "cp3"}
        assert min(settings["cplane_lab_db_sizes"].values()) > 4 * 1024 * 1024
    finally:
        serve.stop(lab_dir)
    assert not any(etcd_running(pid) for pid in state["pids"])
    serve.stop(lab_dir)  # a second stop is harmless
