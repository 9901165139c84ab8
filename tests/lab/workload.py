"""Workloads for etcd labs: fragment a database fast, and write continuously while something runs.

``fragment()`` fills the keyspace with large values in multi-put transactions from several threads,
deletes them and compacts physically, so the backend file stays large while little of it is in use
(dbSize >> dbSizeInUse) - the state defragmentation exists for.

``ConcurrentWriter`` is the client-side view of an operation: one thread per endpoint doing
sequential puts of unique keys, recording every put's latency and failure, and every value written
so the test can read all of them back afterwards.
"""
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd.client import connect

MIB = 1024 * 1024
# Errors etcd returns for a proposal that was not committed (dropped during a leader change, or
# timed out waiting for one).  Like a real client the writer retries the same put: every key and
# value is unique, so a retry can never overwrite anything but its own earlier attempt.
RETRYABLE = ("raft proposal dropped", "leader changed", "request timed out", "no leader")
MAX_ATTEMPTS = 5
# etcd's default --max-request-bytes is 1.5 MiB and --max-txn-ops 128: stay below both.
TXN_BYTES = 1 * MIB
TXN_MAX_OPS = 128


def _client_of(target, timeout=60):
    """An etcd3 client from an EtcdLab, or the client itself."""
    if hasattr(target, "client") and hasattr(target, "members"):
        return target.client(timeout=timeout), True
    return target, False


def fill(target, mib, value_size=64 * 1024, threads=4, prefix="/fill/"):
    """Write ``mib`` MiB of live data under ``prefix`` in multi-put transactions from several threads."""
    client, own = _client_of(target)
    try:
        _write_batches(client, mib, value_size, threads, prefix)
    finally:
        if own:
            client.close()


def _write_batches(client, mib, value_size, threads, prefix):
    per_txn = max(1, min(TXN_MAX_OPS, TXN_BYTES // value_size))
    total = max(1, (mib * MIB) // value_size)
    batches = [range(start, min(total, start + per_txn)) for start in range(0, total, per_txn)]
    value = os.urandom(value_size)

    def write(batch):
        ops = [client.transactions.put("%s%08d" % (prefix, i), value) for i in batch]
        client.transaction(compare=[], success=ops, failure=[])

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(write, batches))
    return total


def fragment(target, mib, value_size=64 * 1024, threads=4, prefix="/fragment/"):
    """Write ``mib`` MiB under ``prefix``, delete it, compact to the current revision (physical).

    Returns dict(written_bytes, compacted_revision, seconds).
    """
    client, own = _client_of(target)
    started = time.monotonic()
    try:
        total = _write_batches(client, mib, value_size, threads, prefix)
        client.delete_prefix(prefix)
        revision = client.get_response("/").header.revision
        client.compact(revision, physical=True)
        _wait_pages_freed(target, client, mib * MIB // 2)
        return dict(written_bytes=total * value_size, compacted_revision=revision,
                    seconds=round(time.monotonic() - started, 2))
    finally:
        if own:
            client.close()


def _wait_pages_freed(target, client, threshold, timeout=60):
    """Compaction frees pages only at the next backend commit of each member: write until every
    member reports at least ``threshold`` bytes free (db_size - db_size_in_use)."""
    from etcd3 import etcdrpc

    from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd.client import parse_status

    clients = [target.client(m) for m in target.members] if hasattr(target, "members") else [client]
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            client.put("/fragment-commit", str(time.monotonic()))
            statuses = [parse_status(c.maintenancestub.Status(etcdrpc.StatusRequest(), timeout=10)) for c in clients]
            free = [s["db_size"] - (s["db_size_in_use"] or s["db_size"]) for s in statuses]
            if all(f >= threshold for f in free):
                return
            time.sleep(0.2)
        raise RuntimeError("compacted pages were not freed within %ss: free bytes %s" % (timeout, free))
    finally:
        for other in clients:
            if other is not client:
                other.close()


class EndpointStats(object):
    def __init__(self, endpoint):
        self.endpoint = endpoint
        self.latencies = []
        self.failures = 0
        self.retries = 0
        self.errors = []
        self.written = {}

    @property
    def max_stall(self):
        """Longest single put (successful or not), in seconds."""
        return max(self.latencies) if self.latencies else 0.0

    @property
    def puts(self):
        return len(self.latencies)


class ConcurrentWriter(object):
    """One writer thread per endpoint, each doing sequential puts of unique keys until stopped.

    Use as a context manager around the operation under test::

        with ConcurrentWriter(lab.endpoints, lab.ca_cert, lab.client_cert, lab.client_key) as writer:
            run_module(...)
        assert writer.failures == 0
    """

    def __init__(self, endpoints, ca_cert, client_cert, client_key, prefix="/writer/", value_size=256,
                 request_timeout=60, interval=0.0):
        self.endpoints = list(endpoints)
        self.tls = (ca_cert, client_cert, client_key)
        self.prefix = prefix
        self.value_size = value_size
        self.request_timeout = request_timeout
        self.interval = interval
        self.stats = [EndpointStats(e) for e in self.endpoints]
        self._stop = threading.Event()
        self._threads = []

    def _run(self, index, stats):
        client = connect(stats.endpoint, *self.tls, timeout=self.request_timeout)
        try:
            seq = 0
            while not self._stop.is_set():
                key = "%s%d/%08d" % (self.prefix, index, seq)
                value = "%s:%d:%s" % (stats.endpoint, seq, os.urandom(8).hex())
                value = value + "x" * max(0, self.value_size - len(value))
                started = time.monotonic()
                if self._put(client, key, value, stats):
                    stats.written[key] = value
                stats.latencies.append(time.monotonic() - started)
                seq += 1
                if self.interval:
                    self._stop.wait(self.interval)
        finally:
            client.close()

    @staticmethod
    def _put(client, key, value, stats):
        """One logical write; True when it succeeded (possibly after retrying a not-committed error)."""
        for attempt in range(MAX_ATTEMPTS):
            try:
                client.put(key, value)
                return True
            except Exception as err:  # pylint: disable=broad-except
                text = "%s %s" % (err, getattr(err, "details", lambda: "")())
                if attempt + 1 < MAX_ATTEMPTS and (any(r in text for r in RETRYABLE)
                                                   or type(err).__name__ == "ConnectionFailedError"):
                    stats.retries += 1
                    time.sleep(0.01)
                    continue
                stats.failures += 1
                stats.errors.append("%s: %s" % (key, text.strip() or type(err).__name__))
                return False
        return False

    def start(self):
        for index, stats in enumerate(self.stats):
            thread = threading.Thread(target=self._run, args=(index, stats), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self):
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.request_timeout + 5)
        self._threads = []

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- results ------------------------------------------------------------------------------------
    @property
    def failures(self):
        return sum(s.failures for s in self.stats)

    @property
    def written(self):
        merged = {}
        for stats in self.stats:
            merged.update(stats.written)
        return merged

    def max_stall(self, endpoint):
        return next(s for s in self.stats if s.endpoint == endpoint).max_stall

    def mismatches(self, client):
        """Keys whose stored value differs from what was written (or is missing)."""
        # One read per writer thread: all of them at once can exceed gRPC's 4 MiB message limit.
        stored = {}
        for index in range(len(self.endpoints)):
            stored.update((meta.key.decode(), value.decode())
                          for value, meta in client.get_prefix("%s%d/" % (self.prefix, index)))
        return sorted(k for k, v in self.written.items() if stored.get(k) != v)
