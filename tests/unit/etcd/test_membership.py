"""etcd_member's decisions from plain member lists and states (no etcd)."""
import pytest

from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import InputError, UnsafeOperation
from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd.membership import (
    MembershipChange, find_member, initial_cluster, normalize_id)


def listed(member_id, name, peer, learner=False):
    return dict(id=member_id, name=name, peer_urls=[peer], client_urls=[peer.replace("2380", "2379")] if name else [],
                is_learner=learner)


MEMBERS = [listed(0xa1, "cp1", "https://10.0.0.1:2380"), listed(0xb2, "cp2", "https://10.0.0.2:2380"),
           listed(0xc3, "cp3", "https://10.0.0.3:2380")]


def state(member, healthy=True):
    return dict(id="%x" % member["id"], name=member["name"], is_learner=member["is_learner"], healthy=healthy,
                is_leader=False, leader_id="a1" if healthy else None, alarms=[], raft_applied_index=1,
                raft_index=1, error=None if healthy else "unreachable")


class FakeCluster(object):
    def __init__(self, members):
        self.member_list = members


def change(members=None):
    return MembershipChange(FakeCluster(list(MEMBERS if members is None else members)))


def test_initial_cluster_names_the_new_member_as_etcdctl_does():
    new = listed(0xd4, "", "https://10.0.0.4:2380", learner=True)
    value = initial_cluster(MEMBERS + [new], new_id=0xd4, new_name="cp4")
    assert value.split(",") == ["cp1=https://10.0.0.1:2380", "cp2=https://10.0.0.2:2380",
                                "cp3=https://10.0.0.3:2380", "cp4=https://10.0.0.4:2380"]


@pytest.mark.parametrize("given", ["b2", "B2", "0xb2", "00b2"])
def test_ids_are_matched_as_etcdctl_prints_them(given):
    assert find_member(MEMBERS, member_id=normalize_id(given))["name"] == "cp2"


def test_a_member_that_never_started_is_found_by_its_peer_url():
    unstarted = listed(0xd4, "", "https://10.0.0.4:2380", learner=True)
    assert find_member(MEMBERS + [unstarted], name="cp4", peer_urls=["https://10.0.0.4:2380"]) is unstarted


def test_an_id_that_is_not_hex_is_refused_clearly():
    with pytest.raises(InputError, match="not a hexadecimal etcd member id"):
        normalize_id("cp2")


def test_removing_a_healthy_voter_while_another_is_down_is_refused():
    states = [state(MEMBERS[0]), state(MEMBERS[1]), state(MEMBERS[2], healthy=False)]
    with pytest.raises(UnsafeOperation, match="quorum of 2 and only 1 are healthy"):
        change()._check_removal(MEMBERS[1], states, force=False)


def test_removing_the_dead_member_is_allowed():
    states = [state(MEMBERS[0]), state(MEMBERS[1]), state(MEMBERS[2], healthy=False)]
    change()._check_removal(MEMBERS[2], states, force=False)


def test_force_turns_the_refusal_into_a_warning():
    states = [state(MEMBERS[0]), state(MEMBERS[1]), state(MEMBERS[2], healthy=False)]
    run = change()
    run._check_removal(MEMBERS[1], states, force=True)
    assert "with force" in run.result["warnings"][0]


def test_the_last_voter_is_never_removed_without_force():
    only = MEMBERS[:1]
    with pytest.raises(UnsafeOperation, match="last voting member"):
        change(only)._check_removal(only[0], [state(only[0])], force=False)


def test_a_learner_can_go_even_when_voters_are_degraded():
    learner = listed(0xd4, "cp4", "https://10.0.0.4:2380", learner=True)
    states = [state(MEMBERS[0]), state(MEMBERS[1]), state(MEMBERS[2], healthy=False), state(learner)]
    change(MEMBERS + [learner])._check_removal(learner, states, force=False)


def test_present_refuses_peer_urls_of_another_member():
    with pytest.raises(InputError, match="already belongs to etcd member cp2"):
        change().present("cp4", ["https://10.0.0.2:2380"])
