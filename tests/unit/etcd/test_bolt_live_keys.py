"""The key of an mvccpb.KeyValue, as etcdutl 3.6 reads it to count live keys (bolt._kv_key)."""
from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd import bolt


def test_key_is_field_one_after_any_varint_fields():
    # create_revision (field 2, varint 300) before the key; real etcd writes the key first.
    value = b"\x10\xac\x02" + b"\x0a\x05/a/bc" + b"\x2a\x01v"
    assert bolt._kv_key(value) == b"/a/bc"


def test_values_that_are_no_keyvalue_leave_the_count_unknown():
    assert bolt._kv_key(b"") is None
    assert bolt._kv_key(b"\x0a\x09short") is None          # length beyond the value
    assert bolt._kv_key(b"\xff\xff") is None                # truncated varint
    assert bolt._kv_key(b"\x0d\x00\x00\x00\x00") is None    # fixed32: not a KeyValue field type
