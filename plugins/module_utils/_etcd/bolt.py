# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A read-only reader of the bbolt file format, enough to inspect an etcd snapshot.

Control-plane hosts rarely have ``etcdutl`` outside the etcd container, so the snapshot module
reads the revision and key count itself.  The numbers follow ``etcdutl snapshot status``:
``total_key`` counts the entries of every top-level bucket (etcdutl 3.5's ``totalKey``),
``live_keys`` the keys that exist at the snapshot's revision (etcdutl 3.6's ``totalKey``: it
counts the keys of the ``key`` bucket whose last revision is no tombstone, etcdutl/snapshot/
v3_snapshot.go), ``revision`` is the main revision of the last key in the ``key`` bucket.  Pages
are read with seek/read, never the whole file at once.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import struct

from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import InputError

MAGIC = 0xED0CDAED
VERSION = 2
PAGE_HEADER = struct.Struct("<QHHI")          # id, flags, count, overflow
META = struct.Struct("<IIII QQ QQQ Q")       # magic, version, page size, flags, root(pgid, seq), freelist, pgid, txid, checksum
BRANCH_ELEMENT = struct.Struct("<IIQ")        # pos, ksize, pgid
LEAF_ELEMENT = struct.Struct("<IIII")         # flags, pos, ksize, vsize
BUCKET_HEADER = struct.Struct("<QQ")          # root pgid, sequence

BRANCH_PAGE = 0x01
LEAF_PAGE = 0x02
META_PAGE = 0x04
BUCKET_LEAF = 0x01


def fnv64a(data):
    value = 0xcbf29ce484222325
    for byte in bytearray(data):
        value ^= byte
        value = (value * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return value


class BoltFile(object):
    """An open bbolt file; ``size`` limits reads (an etcd snapshot carries a 32-byte trailer)."""

    def __init__(self, handle, size):
        self.handle = handle
        self.size = size
        self.page_size, self.root, self.txid = self._read_meta()

    def _read_raw(self, offset, length):
        if offset < 0 or offset + length > self.size:
            raise InputError("bolt page at offset %d lies outside the file (size %d): the snapshot is truncated or corrupted"
                             % (offset, self.size))
        self.handle.seek(offset)
        data = self.handle.read(length)
        if len(data) != length:
            raise InputError("short read at offset %d: the snapshot is truncated" % offset)
        return data

    def _read_meta(self):
        metas = []
        # Page size is not known yet; both meta pages sit at 0 and page_size, try the size page 0 states.
        first = self._read_raw(0, PAGE_HEADER.size + META.size)
        candidate_sizes = [META.unpack_from(first, PAGE_HEADER.size)[2], 4096]
        for page_size in candidate_sizes:
            for index in (0, 1):
                try:
                    raw = self._read_raw(index * page_size, PAGE_HEADER.size + META.size)
                except InputError:
                    continue
                header = PAGE_HEADER.unpack_from(raw, 0)
                fields = META.unpack_from(raw, PAGE_HEADER.size)
                magic, version, size, _flags, root, _seq, _freelist, _pgid, txid, checksum = fields
                body = raw[PAGE_HEADER.size:PAGE_HEADER.size + META.size - 8]
                if header[1] & META_PAGE and magic == MAGIC and version == VERSION and fnv64a(body) == checksum:
                    metas.append((txid, size, root))
            if metas:
                break
        if not metas:
            raise InputError("no valid bolt meta page: this is not an etcd database or it is corrupted")
        txid, page_size, root = max(metas)
        return page_size, root, txid

    def page(self, pgid):
        """(flags, count, bytes of the page including overflow pages)."""
        header = PAGE_HEADER.unpack(self._read_raw(pgid * self.page_size, PAGE_HEADER.size))
        _id, flags, count, overflow = header
        data = self._read_raw(pgid * self.page_size, (overflow + 1) * self.page_size)
        return flags, count, data

    def _node_items(self, flags, count, data):
        """Leaf items of one page: (key, value, is_bucket); branch pages yield child page ids."""
        for index in range(count):
            offset = PAGE_HEADER.size + index * (BRANCH_ELEMENT.size if flags & BRANCH_PAGE else LEAF_ELEMENT.size)
            if flags & BRANCH_PAGE:
                _pos, _ksize, child = BRANCH_ELEMENT.unpack_from(data, offset)
                yield ("branch", child)
            elif flags & LEAF_PAGE:
                eflags, pos, ksize, vsize = LEAF_ELEMENT.unpack_from(data, offset)
                start = offset + pos
                if start + ksize + vsize > len(data):
                    raise InputError("leaf element beyond its page: the snapshot is corrupted")
                key = data[start:start + ksize]
                value = data[start + ksize:start + ksize + vsize]
                yield ("leaf", (key, value, bool(eflags & BUCKET_LEAF)))
            else:
                raise InputError("unexpected bolt page type 0x%x: the snapshot is corrupted" % flags)

    def items(self, root, inline=None, depth=0):
        """Every (key, value, is_bucket) below ``root`` in key order."""
        if depth > 64:
            raise InputError("bolt tree deeper than 64 levels: the snapshot is corrupted")
        if inline is not None:
            flags, count, _overflow = PAGE_HEADER.unpack_from(inline, 0)[1:]
            data = inline
        else:
            flags, count, data = self.page(root)
        for kind, item in self._node_items(flags, count, data):
            if kind == "branch":
                yield from self.items(item, depth=depth + 1)
            else:
                yield item

    def buckets(self):
        """(name, iterator of (key, value)) for every top-level bucket."""
        for name, value, is_bucket in self.items(self.root):
            if not is_bucket:
                continue
            bucket_root, _seq = BUCKET_HEADER.unpack_from(value, 0)
            inline = value[BUCKET_HEADER.size:] if bucket_root == 0 else None
            yield name, ((k, v) for k, v, _b in self.items(bucket_root, inline=inline))


# A revision key in the key bucket: 8-byte main revision, "_", 8-byte sub revision, and a
# trailing "t" when the revision deleted the key (server/storage/mvcc/revision.go).
TOMBSTONE_KEY_SIZE = 18


def _kv_key(value):
    """Field 1 (the key) of an mvccpb.KeyValue in protobuf wire format."""
    pos = 0
    while pos < len(value):
        tag, pos = _varint(value, pos)
        wire = tag & 7
        if wire == 0:
            _skip, pos = _varint(value, pos)
        elif wire == 2:
            length, pos = _varint(value, pos)
            if tag >> 3 == 1:
                return bytes(value[pos:pos + length])
            pos += length
        else:
            break
    raise InputError("a key-bucket value is not an etcd KeyValue: the snapshot is corrupted")


def _varint(data, pos):
    result = shift = 0
    while pos < len(data):
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
    raise InputError("truncated varint in a key-bucket value: the snapshot is corrupted")


def read_status(path, size=None):
    """``{"revision", "total_key", "live_keys", "total_size", "keys"}`` of the bolt file at ``path``.

    ``keys`` counts the entries of the ``key`` bucket (every stored revision of every key);
    ``size`` excludes a trailer such as the sha256 etcd appends to a streamed snapshot.
    """
    import os
    with open(path, "rb") as handle:
        bolt = BoltFile(handle, size if size is not None else os.fstat(handle.fileno()).st_size)
        revision = 0
        total = 0
        keys = 0
        live = set()
        for name, entries in bolt.buckets():
            for key, value in entries:
                total += 1
                if name == b"key":
                    keys += 1
                    if len(key) >= 8:
                        revision = struct.unpack(">Q", key[:8])[0]
                    if len(key) == TOMBSTONE_KEY_SIZE and key[-1:] == b"t":
                        live.discard(_kv_key(value))
                    else:
                        live.add(_kv_key(value))
        return {"revision": revision, "total_key": total, "live_keys": len(live), "keys": keys,
                "total_size": bolt.size}
