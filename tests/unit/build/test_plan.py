"""The build plan (plugins/module_utils/_build/plan.py) and its filter."""
from ansible.errors import AnsibleFilterError
import pytest

from ansible_collections.cplane.kubeadm.plugins.filter.cluster_build_plan import cluster_build_plan
from ansible_collections.cplane.kubeadm.plugins.module_utils._build.plan import plan_build

CPS, WORKERS = ["cp1", "cp2", "cp3"], ["w1"]


def states(**given):
    out = {h: {"state": "not_member", "present": [], "missing": []} for h in CPS + WORKERS}
    for host, state in given.items():
        out[host] = {"state": state, "present": ["kubelet.conf"] if state != "not_member" else [],
                     "missing": ["etcd member"] if state == "half_joined" else []}
    return out


def test_fresh_nodes_init_on_the_first_control_plane_then_join_control_planes_before_workers():
    plan = plan_build(CPS, WORKERS, states())
    assert plan["refused"] is None and not plan["cluster_exists"]
    assert (plan["init_host"], plan["issuer"]) == ("cp1", "cp1")
    assert plan["join_control_planes"] == ["cp2", "cp3"] and plan["join_workers"] == ["w1"]
    assert plan["build"] == ["cp1", "cp2", "cp3", "w1"]
    assert "new cluster, kubeadm init on cp1" in plan["summary"]


def test_an_existing_cluster_is_never_initialised_again_and_joined_nodes_are_left_alone():
    plan = plan_build(CPS, WORKERS, states(cp2="control_plane", w1="worker"))
    assert plan["cluster_exists"] and plan["init_host"] is None and plan["issuer"] == "cp2"
    assert plan["join_control_planes"] == ["cp1", "cp3"] and plan["join_workers"] == []
    built = plan_build(CPS, WORKERS, states(cp1="control_plane", cp2="control_plane", cp3="control_plane", w1="worker"))
    assert built["build"] == [] and built["joined"] == CPS + WORKERS


def test_a_half_joined_node_is_refused_with_what_to_do_unless_reset_is_opted_into():
    plan = plan_build(CPS, WORKERS, states(cp1="control_plane", cp2="control_plane", cp3="half_joined"))
    assert plan["refused"].startswith("refusing to build: half-joined node(s): cp3 has kubelet.conf but not etcd member")
    assert "kubeadm reset -f' on cp3" in plan["refused"] and "cluster_build_reset_half_joined=true" in plan["refused"]
    assert plan["build"] == []
    reset = plan_build(CPS, WORKERS, states(cp1="control_plane", cp2="control_plane", cp3="half_joined"),
                       reset_half_joined=True)
    assert reset["refused"] is None and reset["reset"] == ["cp3"] and reset["join_control_planes"] == ["cp3"]


def test_a_half_initialised_first_control_plane_is_reset_and_initialised_again():
    plan = plan_build(CPS, WORKERS, states(cp1="half_joined"), reset_half_joined=True)
    assert plan["reset"] == ["cp1"] and plan["init_host"] == "cp1"


def test_nodes_of_the_other_kind_are_refused():
    assert "cp2 is in the control-plane group but is a joined worker" in plan_build(CPS, WORKERS, states(cp2="worker"))["refused"]
    assert "w1 is in the worker group but is a joined control plane" in plan_build(
        CPS, WORKERS, states(cp1="control_plane", w1="control_plane"))["refused"]


def test_topology_refusal_comes_before_any_node_state_and_a_missing_state_is_refused():
    assert plan_build(["cp1"], [], None)["refused"].startswith("refusing to build: a single control-plane node")
    topology_only = plan_build(CPS, WORKERS, None)
    assert topology_only["refused"] is None and topology_only["build"] == []
    assert "no node state for w1" in plan_build(CPS, WORKERS, {h: {"state": "not_member"} for h in CPS})["refused"]


def test_filter_checks_its_input():
    assert cluster_build_plan(None, CPS, WORKERS)["refused"] is None
    with pytest.raises(AnsibleFilterError):
        cluster_build_plan([], CPS, WORKERS)
    with pytest.raises(AnsibleFilterError):
        cluster_build_plan(None, "cp1", WORKERS)
