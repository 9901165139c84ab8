"""The bbolt reader on files built page by page (branch pages, inline buckets, corrupt meta pages).

Layout per go.etcd.io/bbolt page.go (page header: id u64, flags u16, count u16, overflow u32;
branchPageElement: pos u32, ksize u32, pgid u64; leafPageElement: flags u32, pos u32, ksize u32,
vsize u32, ``pos`` counted from the element itself) and db.go (meta: magic, version, pageSize,
flags u32; root bucket {root pgid, sequence u64}; freelist, pgid, txid, checksum u64 - FNV-64a of
the fields before the checksum; meta pages 0 and 1, the valid one with the higher txid wins).
Buckets (bucket.go): a bucket value is {root pgid, sequence u64}; root 0 means inline, with a leaf
page (header included) right after it.  etcd's ``key`` bucket keys are revisions: 8-byte big-endian
main revision, ``_``, 8-byte sub revision (server/mvcc/revision.go).
"""
import struct

import pytest

from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import InputError
from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd import bolt

PAGE = 4096


def revision_key(main, sub=0):
    return struct.pack(">Q", main) + b"_" + struct.pack(">Q", sub)


def kv(rev):
    """A key-bucket value: an mvccpb.KeyValue holding only field 1, the key (what live_keys reads)."""
    key = b"/k/%d" % rev
    return b"\x0a" + bytes([len(key)]) + key


def leaf_page(pgid, items, page_size=PAGE):
    """A leaf page: items are (key, value, is_bucket)."""
    header = bolt.PAGE_HEADER.pack(pgid, bolt.LEAF_PAGE, len(items), 0)
    elements, payload = b"", b""
    data_start = bolt.PAGE_HEADER.size + len(items) * bolt.LEAF_ELEMENT.size
    for index, (key, value, is_bucket) in enumerate(items):
        element_offset = bolt.PAGE_HEADER.size + index * bolt.LEAF_ELEMENT.size
        pos = data_start + len(payload) - element_offset
        elements += bolt.LEAF_ELEMENT.pack(bolt.BUCKET_LEAF if is_bucket else 0, pos, len(key), len(value))
        payload += key + value
    page = header + elements + payload
    return page if page_size is None else page.ljust(page_size, b"\0")


def branch_page(pgid, children):
    """A branch page: children are (first key, child pgid)."""
    header = bolt.PAGE_HEADER.pack(pgid, bolt.BRANCH_PAGE, len(children), 0)
    elements, payload = b"", b""
    data_start = bolt.PAGE_HEADER.size + len(children) * bolt.BRANCH_ELEMENT.size
    for index, (key, child) in enumerate(children):
        element_offset = bolt.PAGE_HEADER.size + index * bolt.BRANCH_ELEMENT.size
        elements += bolt.BRANCH_ELEMENT.pack(data_start + len(payload) - element_offset, len(key), child)
        payload += key
    return (header + elements + payload).ljust(PAGE, b"\0")


def meta_page(pgid, root, txid, corrupt=None):
    fields = [bolt.MAGIC, bolt.VERSION, PAGE, 0, root, 0, 2, 16, txid]
    if corrupt == "magic":
        fields[0] = 0xDEADBEEF
    body = struct.pack("<IIII QQ QQQ", *fields)
    checksum = bolt.fnv64a(body) ^ (1 if corrupt == "checksum" else 0)
    return (bolt.PAGE_HEADER.pack(pgid, bolt.META_PAGE, 0, 0) + body + struct.pack("<Q", checksum)).ljust(PAGE, b"\0")


def bucket(root, inline_items=None):
    value = bolt.BUCKET_HEADER.pack(root, 0)
    return value + (leaf_page(0, inline_items, page_size=None) if inline_items is not None else b"")


def etcd_like_db(meta0=None, meta1=None):
    """Pages: 0/1 meta, 2 freelist, 3 root (newest), 4 branch of ``key``, 5/6 its leaves, 7 an older root."""
    key_leaves = [[(revision_key(rev), kv(rev), False) for rev in range(2, 12)],
                  [(revision_key(rev), kv(rev), False) for rev in range(12, 31)]]
    root = leaf_page(3, [
        (b"key", bucket(4), True),
        (b"lease", bucket(0, []), True),                                           # inline, empty
        (b"members", bucket(0, [(b"8e9e05c52164694d", b'{"id":1}', False),
                                (b"91bc3c398fb3c146", b'{"id":2}', False)]), True),  # inline, two entries
        (b"meta", bucket(0, [(b"consistent_index", struct.pack(">Q", 42), False)]), True),
    ])
    old_root = leaf_page(7, [(b"key", bucket(0, [(revision_key(1), kv(1), False)]), True)])
    pages = [meta0 or meta_page(0, 7, txid=1), meta1 or meta_page(1, 3, txid=2),
             bolt.PAGE_HEADER.pack(2, 0x10, 0, 0).ljust(PAGE, b"\0"), root,
             branch_page(4, [(revision_key(2), 5), (revision_key(12), 6)]),
             leaf_page(5, key_leaves[0]), leaf_page(6, key_leaves[1]), old_root]
    return b"".join(pages)


def write(tmp_path, data, trailer=b""):
    path = tmp_path / "member.db"
    path.write_bytes(data + trailer)
    return str(path)


def test_branch_pages_and_inline_buckets_are_walked_like_etcdutl_counts(tmp_path):
    status = bolt.read_status(write(tmp_path, etcd_like_db()))
    # key bucket: 10 + 19 revisions over two leaves under a branch page; inline buckets 0 + 2 + 1
    assert status["keys"] == 29
    assert status["total_key"] == 29 + 0 + 2 + 1
    assert status["revision"] == 30          # main revision of the last key in the key bucket
    assert status["total_size"] == 8 * PAGE


def test_a_trailer_beyond_size_is_not_read(tmp_path):
    data = etcd_like_db()
    path = write(tmp_path, data, trailer=b"\xff" * 32)
    assert bolt.read_status(path, size=len(data))["total_key"] == 32


def test_a_corrupt_newest_meta_page_falls_back_to_the_other(tmp_path):
    # meta 1 (txid 2, root page 3) has a bad checksum: the reader uses meta 0 (txid 1, root page 7)
    status = bolt.read_status(write(tmp_path, etcd_like_db(meta1=meta_page(1, 3, txid=2, corrupt="checksum"))))
    assert (status["keys"], status["total_key"], status["revision"]) == (1, 1, 1)


@pytest.mark.parametrize("corrupt", ["checksum", "magic"])
def test_no_valid_meta_page_is_refused(tmp_path, corrupt):
    data = etcd_like_db(meta0=meta_page(0, 7, txid=1, corrupt=corrupt), meta1=meta_page(1, 3, txid=2, corrupt=corrupt))
    with pytest.raises(InputError, match="no valid bolt meta page"):
        bolt.read_status(write(tmp_path, data))


def test_a_page_beyond_the_end_of_the_file_is_refused(tmp_path):
    data = etcd_like_db()[:6 * PAGE]        # leaf page 6 (and 7) cut off
    with pytest.raises(InputError, match="outside the file"):
        bolt.read_status(write(tmp_path, data))


def test_a_leaf_element_pointing_past_its_page_is_refused(tmp_path):
    data = bytearray(etcd_like_db())
    # first element of leaf page 5: make its vsize run off the page
    offset = 5 * PAGE + bolt.PAGE_HEADER.size
    flags, pos, ksize, _vsize = bolt.LEAF_ELEMENT.unpack_from(data, offset)
    bolt.LEAF_ELEMENT.pack_into(data, offset, flags, pos, ksize, PAGE * 2)
    with pytest.raises(InputError, match="beyond its page"):
        bolt.read_status(write(tmp_path, bytes(data)))


def test_an_unknown_page_type_in_the_tree_is_refused(tmp_path):
    data = bytearray(etcd_like_db())
    struct.pack_into("<H", data, 6 * PAGE + 8, 0x20)   # page 6's flags
    with pytest.raises(InputError, match="unexpected bolt page type 0x20"):
        bolt.read_status(write(tmp_path, bytes(data)))
