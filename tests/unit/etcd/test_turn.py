"""Whose turn it is: the pure decision of _etcd/turn.py (the lab tests run it against real etcd)."""
import pytest

from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import InputError
from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd import turn


def member(name, member_id, *urls):
    return dict(name=name, id=member_id, client_urls=list(urls))


CP1 = member("cp1", "a1", "https://10.0.0.1:2379")
CP2 = member("cp2", "b2", "https://10.0.0.2:2379", "https://cp2.example:2379/")
STATES = [CP1, CP2]


def test_url_key_ignores_case_trailing_slash_and_the_default_port():
    assert turn.url_key("HTTPS://CP2.example:2379/") == turn.url_key("https://cp2.example")
    assert turn.url_key("10.0.0.1:2379") == ("https", "10.0.0.1", 2379)
    assert turn.url_key("https://10.0.0.1:2379") != turn.url_key("http://10.0.0.1:2379")


def test_the_local_member_is_the_one_whose_client_url_is_the_endpoint():
    assert turn.match_by_url(STATES, "https://cp2.example:2379") is CP2
    assert turn.match_by_url(STATES, "https://10.0.0.1:2379/") is CP1
    # kubeadm's node endpoint is not advertised: found by asking the endpoint instead (lab tests).
    assert turn.match_by_url(STATES, "https://127.0.0.1:2379") is None


def test_the_leaders_node_is_the_only_candidate():
    assert turn.decide(CP1, "its client URL is x", CP1) == (
        True, "leader", "the local member cp1 is the leader (its client URL is x)")
    candidate, basis, reason = turn.decide(CP2, "its client URL is y", CP1)
    assert (candidate, basis) == (False, "leader")
    assert reason == "member cp1 is the leader, so its node acts; the local member cp2 (its client URL is y) is a follower"


@pytest.mark.parametrize("local, leader, phrase", [
    (None, CP1, "the local member is not known (endpoint down)"),
    (CP2, None, "the members agree on no leader"),
])
def test_without_a_local_member_or_a_leader_the_first_claim_decides(local, leader, phrase):
    candidate, basis, reason = turn.decide(local, "endpoint down", leader)
    assert (candidate, basis) == (True, "claim")
    assert reason.startswith(phrase) and "claims the turn first acts" in reason


def test_a_claim_says_who_took_the_turn():
    claim = turn.describe_claim(dict(key="/t/1", value='{"node": "cp3", "member": "m3", "claimed": "T", "basis": "leader"}'))
    assert turn.claim_phrase(claim) == "node cp3 (member m3) took tonight's turn at T"
    assert turn.describe_claim(dict(key="/t/2", value=""))["node"] is None   # an etcdctl lock holder


@pytest.mark.parametrize("name, ttl, node, words", [
    ("/", 3600, "cp1", "turn_name"),
    ("/t", 2, "cp1", "turn_ttl 2 is out of range"),
    ("/t", 86400, "cp1", "turn_ttl 86400 is out of range"),
    ("/t", 3600, "", "node must name this node"),
])
def test_bad_requests_are_refused_with_what_to_do(name, ttl, node, words):
    with pytest.raises(InputError, match=words):
        turn.check_request(name, ttl, node)
