"""etcd_member against real TLS etcd clusters: add a learner, start it, promote it, remove members."""
import json

from tests.lab.ansible_run import run_module


def member_names(lab):
    return sorted(m.get("name", "") for m in json.loads(lab.etcdctl("member", "list", "-w", "json").stdout)["members"])


def voters_and_learners(lab):
    members = json.loads(lab.etcdctl("member", "list", "-w", "json").stdout)["members"]
    return (sorted(m.get("name", "") for m in members if not m.get("isLearner")),
            sorted(m.get("name", "") for m in members if m.get("isLearner")))


def test_replace_a_member_learner_first_then_promote(etcd3_cluster):
    lab = etcd3_cluster
    # The node of cp3 is lost; removing its member leaves 2 healthy of 2 voters: allowed.
    lab.kill("cp3")
    removed = run_module("etcd_member", lab.connection_args(endpoints=lab.endpoints[:2], name="cp3", state="absent"))
    assert not removed["failed"], removed["msg"]
    assert removed["changed"] is True and removed["action"] == "remove"
    assert sorted(m["name"] for m in removed["members_before"]) == ["cp1", "cp2", "cp3"]
    assert sorted(m["name"] for m in removed["members_after"]) == ["cp1", "cp2"]
    lab.members = [m for m in lab.members if m.name != "cp3"]
    assert member_names(lab) == ["cp1", "cp2"]
    again = run_module("etcd_member", lab.connection_args(name="cp3", state="absent"))
    assert not again["failed"] and again["changed"] is False and again["member"] is None

    # A replacement node joins as a learner, with the settings the module returns.
    new = lab._new_member(3)
    args = lab.connection_args(name=new.name, peer_urls=[new.peer_url])
    planned = run_module("etcd_member", args, check=True)
    assert planned["changed"] is True and planned["action"] == "add_learner"
    assert member_names(lab) == ["cp1", "cp2"]
    added = run_module("etcd_member", args)
    assert not added["failed"], added["msg"]
    assert added["changed"] is True and added["member"]["is_learner"] is True
    assert added["initial_cluster_state"] == "existing"
    assert "%s=%s" % (new.name, new.peer_url) in added["initial_cluster"].split(",")
    assert voters_and_learners(lab) == (["cp1", "cp2"], [""])  # a learner; no name until it starts
    assert len(json.loads(lab.etcdctl("member", "list", "-w", "json").stdout)["members"]) == 3
    same = run_module("etcd_member", args)
    assert same["changed"] is False and same["action"] == "none"

    lab.members.append(new)
    lab.launch(new, added["initial_cluster"], "existing")
    lab.wait_healthy([new])
    assert voters_and_learners(lab) == (["cp1", "cp2"], [new.name])

    promoted = run_module("etcd_member", lab.connection_args(name=new.name, state="promoted", promote_timeout=60))
    assert not promoted["failed"], promoted["msg"]
    assert promoted["changed"] is True and promoted["member"]["is_learner"] is False
    assert voters_and_learners(lab) == (sorted(["cp1", "cp2", new.name]), [])
    lab.etcdctl("put", "after-promotion", "1", endpoints=[new.client_url])
    twice = run_module("etcd_member", lab.connection_args(name=new.name, state="promoted"))
    assert twice["changed"] is False


def test_refuses_a_removal_that_breaks_quorum_and_changes_nothing(etcd3_cluster):
    lab = etcd3_cluster
    lab.kill("cp3")
    before = member_names(lab)
    # Removing healthy cp2 would leave cp1 + dead cp3: 1 healthy of 2, quorum 2.
    refused = run_module("etcd_member", lab.connection_args(endpoints=lab.endpoints[:2], name="cp2", state="absent"))
    assert refused["failed"] is True
    assert "refusing to remove etcd member cp2" in refused["msg"] and "quorum of 2" in refused["msg"]
    assert "Traceback" not in refused["_stdout"]
    assert member_names(lab) == before
    planned = run_module("etcd_member", lab.connection_args(endpoints=lab.endpoints[:2], name="cp2",
                                                            state="absent"), check=True)
    assert planned["failed"] is True and member_names(lab) == before


def test_refuses_removing_the_last_member(etcd1_cluster):
    lab = etcd1_cluster
    refused = run_module("etcd_member", lab.connection_args(name="cp1", state="absent"))
    assert refused["failed"] is True and "last voting member" in refused["msg"]
    assert member_names(lab) == ["cp1"]


def test_promote_times_out_clearly_for_a_learner_that_never_started(etcd3_cluster):
    lab = etcd3_cluster
    new = lab._new_member(3)
    added = run_module("etcd_member", lab.connection_args(name=new.name, peer_urls=[new.peer_url]))
    assert added["changed"] is True
    result = run_module("etcd_member", lab.connection_args(id=added["member"]["id"], state="promoted",
                                                           promote_timeout=3))
    assert result["failed"] is True and "never started" in result["msg"]
    # The member can be taken back out by id (a learner does not count towards quorum).
    removed = run_module("etcd_member", lab.connection_args(id="0x" + added["member"]["id"], state="absent"))
    assert not removed["failed"] and removed["changed"] is True
    assert len(json.loads(lab.etcdctl("member", "list", "-w", "json").stdout)["members"]) == 3
