"""Helpers for snapshot tests: restore a snapshot with etcdutl and serve it from a fresh etcd."""
import contextlib
import lzma
import os
import shutil
import subprocess
import time
import urllib.request

import pytest

from tests.lab.binaries import etcd_binary
from tests.lab.ports import free_port


def decompress(path, out_path):
    """The raw snapshot (.db with etcd's sha256 trailer) of a .db/.db.xz/.db.zst file."""
    if path.endswith(".xz"):
        with lzma.open(path, "rb") as src, open(out_path, "wb") as dst:
            shutil.copyfileobj(src, dst)
    elif path.endswith(".zst"):
        import zstandard
        with open(path, "rb") as src, open(out_path, "wb") as dst:
            zstandard.ZstdDecompressor().copy_stream(src, dst)
    else:
        shutil.copyfile(path, out_path)
    return out_path


def etcdutl_status(raw, version):
    import json
    out = subprocess.run([etcd_binary("etcdutl", version), "snapshot", "status", "-w", "json", raw],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


@contextlib.contextmanager
def restored_etcd(raw, workdir, version):
    """``etcdutl snapshot restore`` into a new data dir, then a plain-HTTP single etcd serving it
    (both of ``version``)."""
    data_dir = os.path.join(workdir, "restored")
    peer, client = free_port(), free_port()
    subprocess.run([etcd_binary("etcdutl", version), "snapshot", "restore", raw, "--data-dir", data_dir,
                    "--name", "restored", "--initial-cluster", "restored=http://127.0.0.1:%d" % peer,
                    "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % peer],
                   capture_output=True, text=True, check=True)
    log = open(os.path.join(workdir, "restored.log"), "wb")
    proc = subprocess.Popen([etcd_binary("etcd", version), "--name", "restored", "--data-dir", data_dir,
                             "--listen-client-urls", "http://127.0.0.1:%d" % client,
                             "--advertise-client-urls", "http://127.0.0.1:%d" % client,
                             "--listen-peer-urls", "http://127.0.0.1:%d" % peer,
                             "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % peer,
                             "--initial-cluster", "restored=http://127.0.0.1:%d" % peer,
                             "--log-level", "warn"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    endpoint = "http://127.0.0.1:%d" % client
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(endpoint + "/health", timeout=1) as resp:
                    if b'"health":"true"' in resp.read():
                        break
            except Exception:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("restored etcd did not become healthy")
            time.sleep(0.2)
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def etcdctl_get(endpoint, version, *args):
    return subprocess.run([etcd_binary("etcdctl", version), "--endpoints", endpoint, "get"] + list(args),
                          capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def lab(tmp_path_factory, etcd_version):
    """One 3-member TLS cluster with known keys, shared by the tests of a module (they only read)."""
    from tests.lab.etcd_cluster import EtcdLab
    with EtcdLab(str(tmp_path_factory.mktemp("snaplab")), size=3, etcd_version=etcd_version) as cluster:
        client = cluster.client()
        for i in range(200):
            client.put("/registry/demo/key-%03d" % i, "value-%03d" % i)
        client.close()
        yield cluster
