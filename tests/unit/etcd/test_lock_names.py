"""The etcd lock's key layout and holder descriptions (no etcd; the lock itself is tested on real etcd)."""
import json

from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd.lock import (
    describe_holder, holder_identity, prefix_end)


def test_prefix_end_covers_exactly_the_keys_under_the_prefix():
    # etcd's GetPrefixRangeEnd: the prefix with its last byte below 0xff incremented
    assert prefix_end(b"/locks/defrag/") == b"/locks/defrag0"
    assert prefix_end(b"a\xff") == b"b"
    assert prefix_end(b"\xff\xff") == b"\0"


def test_holder_is_named_by_host_pid_and_start_time():
    identity = holder_identity("etcd_defrag")
    kv = dict(key="/l/694d", value=json.dumps(identity), lease=0x694d, create_revision=5)
    text = describe_holder(kv)
    assert text.startswith("etcd_defrag on host %s (pid %d, started %s" % (
        identity["host"], identity["pid"], identity["started"]))
    assert "key /l/694d" in text


def test_an_etcdctl_lock_holder_is_reported_as_such():
    # etcdctl lock writes an empty value
    text = describe_holder(dict(key="/l/694d", value="", lease=0x694d, create_revision=5))
    assert "did not say who it is" in text and "etcdctl lock" in text and "lease 694d" in text
