"""Reading, validating and rewriting manifests (files on disk, no processes)."""
import os

import pytest

from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import InputError
from ansible_collections.cplane.kubeadm.plugins.module_utils._manifests import probe_state, prober, static_pod

MANIFEST = b"""apiVersion: v1
kind: Pod
metadata:
  creationTimestamp: null
  labels:
    component: etcd
  name: etcd
  namespace: kube-system
spec:
  containers:
  - command:
    - etcd
    - --listen-metrics-urls=http://127.0.0.1:2381
    image: registry.k8s.io/etcd:3.5.12-0
    imagePullPolicy: IfNotPresent
    name: etcd
    resources:
      requests:
        cpu: 100m
  hostNetwork: true
status: {}
"""


@pytest.fixture
def node(tmp_path):
    manifests = tmp_path / "etc/kubernetes/manifests"
    manifests.mkdir(parents=True)
    path = manifests / "etcd.yaml"
    path.write_bytes(MANIFEST)
    return dict(path=str(path), dir=str(manifests), backups=str(tmp_path / "backups"))


def test_adding_a_probe_changes_only_its_lines_and_backs_up_outside(node):
    result = probe_state.manage_probe(node["path"], "liveness", state="present", recommended=True,
                                      backup_dir=node["backups"])
    assert result["changed"]
    new = open(node["path"], "rb").read()
    removed = [line for line in MANIFEST.splitlines() if line not in new.splitlines()]
    assert removed == []
    assert new.index(b"livenessProbe") > new.index(b"imagePullPolicy") and new.index(b"livenessProbe") < new.index(b"    name: etcd")
    assert open(result["backup_file"], "rb").read() == MANIFEST
    assert not result["backup_file"].startswith(node["dir"])
    again = probe_state.manage_probe(node["path"], "liveness", state="present", recommended=True,
                                     backup_dir=node["backups"])
    assert not again["changed"] and open(node["path"], "rb").read() == new


def test_unchanged_round_trip_is_byte_identical(node):
    data, doc = static_pod.read_manifest(node["path"])
    assert static_pod.dump_manifest(doc) == MANIFEST


def test_check_mode_writes_nothing(node):
    result = probe_state.manage_probe(node["path"], "startup", state="present", recommended=True,
                                      backup_dir=node["backups"], check_mode=True)
    assert result["changed"] and "startupProbe" in result["diff"]["after"]
    assert open(node["path"], "rb").read() == MANIFEST
    assert not os.path.exists(node["backups"])


@pytest.mark.parametrize("content, message", [
    (b"apiVersion: v1\nkind: Pod\nspec: [unclosed\n", "not valid YAML"),
    (b"- just\n- a list\n", "not a Kubernetes object"),
    (b"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n", "not a static pod"),
    (b"apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: {}\n", "no spec.containers"),
    (b"apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: {containers: [{name: c}]}\n", "needs a name and an image"),
])
def test_bad_manifests_fail_clearly_and_stay_untouched(node, content, message):
    with open(node["path"], "wb") as handle:
        handle.write(content)
    with pytest.raises(InputError, match=message) as err:
        probe_state.manage_probe(node["path"], "liveness", state="absent", backup_dir=node["backups"])
    assert node["path"] in err.value.msg
    assert open(node["path"], "rb").read() == content


def test_bad_selection_and_spec(node):
    with pytest.raises(InputError, match="no container 'nope'; it has etcd"):
        probe_state.manage_probe(node["path"], "liveness", container_name="nope")
    with pytest.raises(InputError, match="cannot read manifest"):
        probe_state.manage_probe(node["path"] + ".missing", "liveness")
    with pytest.raises(InputError, match="exactly one of"):
        probe_state.manage_probe(node["path"], "liveness", state="present", spec={"periodSeconds": 10},
                                 backup_dir=node["backups"])
    with pytest.raises(InputError, match="successThreshold must be 1"):
        probe_state.manage_probe(node["path"], "liveness", state="present", backup_dir=node["backups"],
                                 spec={"tcpSocket": {"port": 2381}, "successThreshold": 2})
    with pytest.raises(InputError, match="inside"):
        probe_state.manage_probe(node["path"], "liveness", state="present", recommended=True,
                                 backup_dir=os.path.join(node["dir"], "backups"))
    assert open(node["path"], "rb").read() == MANIFEST


def test_prober_judges_like_kubelet():
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response({"/ok": 200, "/moved": 302}.get(self.path, 503))
            self.end_headers()
            self.wfile.write(b"body")

        def log_message(self, *args):
            pass
    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        container = {"ports": [{"name": "metrics", "containerPort": port}]}
        ok = prober.run_network_probe({"httpGet": {"path": "/ok", "port": "metrics"}}, container=container)
        moved = prober.run_network_probe({"httpGet": {"path": "/moved", "port": port}})
        bad = prober.run_network_probe({"httpGet": {"path": "/bad", "port": port}})
        tcp = prober.run_network_probe({"tcpSocket": {"port": port}})
    finally:
        server.shutdown()
        server.server_close()
    closed = prober.run_network_probe({"tcpSocket": {"port": port}}, timeout=1)
    assert ok.success and moved.success and tcp.success
    assert not bad.success and "503" in bad.detail
    assert not closed.success
