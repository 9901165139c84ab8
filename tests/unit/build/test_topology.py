"""The topology rules the build refuses on and the report names (plugins/module_utils/_topology.py)."""
import pytest

from ansible_collections.cplane.kubeadm.plugins.module_utils import _topology as t
from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd.members import quorum_of


@pytest.mark.parametrize("voters,quorum,tolerated", [(1, 1, 0), (2, 2, 0), (3, 2, 1), (4, 3, 1), (5, 3, 2), (6, 4, 2), (7, 4, 3)])
def test_quorum_is_a_majority_and_an_even_count_tolerates_no_more_than_the_odd_one_below(voters, quorum, tolerated):
    assert t.quorum(voters) == quorum == quorum_of(voters)
    assert t.failures_tolerated(voters) == tolerated
    if voters % 2 == 0:
        assert t.failures_tolerated(voters) == t.failures_tolerated(voters - 1)


def test_three_control_planes_pass():
    verdict = t.evaluate(["cp1", "cp2", "cp3"], ["w1"])
    assert verdict["refused"] is None and verdict["findings"] == []
    assert (verdict["etcd_members"], verdict["quorum"], verdict["failures_tolerated"]) == (3, 2, 1)


def test_single_control_plane_is_refused_saying_why_and_how_to_opt_in():
    verdict = t.evaluate(["cp1"], [])
    assert verdict["refused"].startswith("refusing to build: a single control-plane node (one etcd member) is a single "
                                         "point of failure")
    assert "cluster_build_allow_single_control_plane=true" in verdict["refused"]
    assert t.evaluate(["cp1"], [], allow_single=True)["refused"] is None
    # the even opt-in does not cover a single node
    assert t.evaluate(["cp1"], [], allow_even=True)["refused"]


@pytest.mark.parametrize("count", [2, 4])
def test_even_etcd_is_refused_with_the_quorum_arithmetic(count):
    verdict = t.evaluate(["cp%d" % i for i in range(count)], [])
    assert "%d etcd members" % count in verdict["refused"]
    assert "tolerate %d failure(s), no more than %d members do" % (t.failures_tolerated(count), count - 1) in verdict["refused"]
    assert "cluster_build_allow_even_etcd=true" in verdict["refused"]
    allowed = t.evaluate(["cp%d" % i for i in range(count)], [], allow_even=True)
    assert allowed["refused"] is None and [f["rule"] for f in allowed["findings"]] == ["even-etcd-members"]


def test_no_control_plane_and_a_host_in_both_groups_cannot_be_opted_into():
    assert "no control-plane node" in t.evaluate([], ["w1"], True, True)["refused"]
    assert "cp1 in both" in t.evaluate(["cp1", "cp2", "cp3"], ["cp1"], True, True)["refused"]


def test_report_findings_name_the_single_point_of_failure_and_even_counts_only():
    assert t.report_findings(1)[0].startswith("topology: single point of failure: ")
    assert t.report_findings(2)[0].startswith("topology: even number of etcd members: 2 etcd members")
    assert t.report_findings(3) == [] and t.report_findings(5) == [] and t.report_findings(0) == []
