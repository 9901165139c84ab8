"""One control plane on a lab node: refused without the opt-in (run and check mode, nothing on the node
changes), built with it, and the report after the build names the single point of failure."""
import hashlib
import os

import pytest

from tests.integration.build.lab_build import lab_cluster, run_build

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]
pytest.importorskip("tests.lab.cluster", reason="lab nodes (tests/lab/cluster.py) not in this tree")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from lab_cluster(tmp_path_factory.mktemp("build-lab-single"), 1, 0)


def digest(root):
    out = {}
    for sub in ("etc/kubernetes", "var/lib/etcd", "var/lib/kubelet", "usr/local/bin"):
        base = os.path.join(root, sub)
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                path = os.path.join(dirpath, name)
                with open(path, "rb") as handle:
                    out[os.path.relpath(path, root)] = hashlib.sha256(handle.read()).hexdigest()
    return out


@pytest.mark.parametrize("check", [True, False], ids=["check", "run"])
def test_a_single_control_plane_is_refused_and_nothing_on_the_node_changes(cluster, check):
    lab, inventory, extra = cluster
    node = lab.node("cp1")
    before = digest(node.host_path("/"))
    run = run_build(inventory, extra, check=check)
    assert run.rc != 0
    refusal = run.task("Refuse an unsafe topology")
    assert refusal and refusal[0]["status"] == "failed"
    assert "single point of failure" in refusal[0]["result"]["msg"]
    assert [r["task"] for r in run.results if r["status"] != "skipped"][-1].endswith("Refuse an unsafe topology")
    assert digest(node.host_path("/")) == before


def test_with_the_opt_in_it_builds_and_the_report_names_the_single_point_of_failure(cluster):
    lab, inventory, extra = cluster
    run = run_build(inventory, dict(extra, cluster_build_allow_single_control_plane=True))
    assert run.rc == 0, run.output[-6000:]
    assert [m["name"] for m in lab.etcd_members()] == ["cp1"]
    findings = [f for r in run.task("Keep the findings")
                for f in r["result"].get("ansible_facts", {}).get("control_plane_report_findings", [])]
    assert len(findings) == 1 and findings[0].startswith("topology: single point of failure: a single control-plane node")
    assert "opted in: a single control-plane node" in run.task("Show the plan")[0]["result"]["msg"]
