"""The Kubernetes API double answers the real ``kubernetes`` client as kube-apiserver would."""
import socket
import ssl
import time
import urllib.request

import kubernetes
import pytest
import urllib3

from tests.lab.api_double import Cluster, generate
from tests.lab.pki import ClusterCAs


def client_for(kubeconfig):
    client = kubernetes.config.new_client_from_config(kubeconfig, persist_config=False)
    client.configuration.retries = 0
    return client


def test_serves_complete_objects_to_the_strict_client(api_for):
    api = api_for("seed")
    client = client_for(api.kubeconfig)
    assert kubernetes.client.VersionApi(client).get_code().git_version == "v1.12.1"
    nodes = kubernetes.client.CoreV1Api(client).list_node().items
    versions = {n.metadata.name: n.status.node_info.kubelet_version for n in nodes}
    assert versions["antidote-worker-gt5t"] == "v1.11.3"
    assert sorted(set(versions.values())) == ["v1.11.3", "v1.12.1"]
    master = next(n for n in nodes if n.metadata.name == "antidote-controller-4m3j")
    assert "node-role.kubernetes.io/master" in master.metadata.labels  # 1.12 labels control planes "master"
    pods = kubernetes.client.CoreV1Api(client).list_namespaced_pod("kube-system", label_selector="tier=control-plane")
    by_name = {p.metadata.name: p for p in pods.items}
    assert by_name["etcd-antidote-controller-4m3j"].status.container_statuses[0].restart_count == 183
    assert by_name["kube-apiserver-antidote-controller-4m3j"].spec.containers[0].image == "k8s.gcr.io/kube-apiserver:v1.12.1"
    assert by_name["kube-scheduler-antidote-controller-4m3j"].spec.node_name == "antidote-controller-4m3j"
    ds = kubernetes.client.AppsV1Api(client).read_namespaced_daemon_set("kube-proxy", "kube-system")
    assert ds.spec.template.spec.containers[0].image == "k8s.gcr.io/kube-proxy:v1.12.1"


def test_lists_nodes_in_pages(api_for):
    api = api_for(generate(nodes=23, control_planes=1, images=0))
    core = kubernetes.client.CoreV1Api(client_for(api.kubeconfig))
    names, token, pages = [], None, 0
    while True:
        page = core.list_node(limit=5, _continue=token)
        pages += 1
        names += [n.metadata.name for n in page.items]
        token = page.metadata._continue
        if not token:
            break
    assert pages == 5 and len(names) == 23 == len(set(names))
    assert api.count("/api/v1/nodes") == 5


def test_health_endpoints_follow_the_cluster(api_for):
    api = api_for("clean")
    client = client_for(api.kubeconfig)
    body = client.call_api("GET", api.url + "/readyz").read()
    assert body == b"ok"
    api.cluster.healthy = False
    assert client.call_api("GET", api.url + "/livez").status == 500


def test_live_pods_from_an_attached_kubelet(api_for):
    class Kubelet:
        restarts = 0

        def pods(self):
            return [{"name": "etcd-cp1", "namespace": "kube-system", "node": "cp1", "image": "registry.k8s.io/etcd:3.5.15-0",
                     "phase": "Running", "containers": [{"name": "etcd", "image": "registry.k8s.io/etcd:3.5.15-0",
                                                         "restart_count": self.restarts, "ready": self.restarts < 3}]}]

    kubelet = Kubelet()
    api = api_for("clean", kubelets=[kubelet])
    core = kubernetes.client.CoreV1Api(client_for(api.kubeconfig))
    assert core.read_namespaced_pod("etcd-cp1", "kube-system").status.container_statuses[0].restart_count == 0
    kubelet.restarts = 5
    status = core.read_namespaced_pod("etcd-cp1", "kube-system").status.container_statuses[0]
    assert (status.restart_count, status.ready) == (5, False)
    assert status.state.waiting.reason == "CrashLoopBackOff"


def test_rejects_clients_without_a_certificate_or_from_another_ca(api_for, tmp_path):
    api = api_for("clean")
    context = ssl.create_default_context(cafile=api.ca_cert)
    with pytest.raises((ssl.SSLError, ConnectionError, urllib.error.URLError)):
        urllib.request.urlopen(api.url + "/version", context=context, timeout=5).read()
    wrong = api.write_kubeconfig(tmp_path / "wrong.conf", cas=ClusterCAs.create(key_type="ecdsa"))
    with pytest.raises(urllib3.exceptions.MaxRetryError) as raised:
        kubernetes.client.VersionApi(client_for(wrong)).get_code()
    assert "CERTIFICATE_VERIFY_FAILED" in str(raised.value)
    deadline = time.monotonic() + 5  # the server thread records the failed handshake after the client gave up
    while len(api.rejected) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(api.rejected) >= 2  # both handshakes failed on the server side too


def test_bearer_tokens_when_configured(api_for):
    api = api_for("clean", tokens={"abcdef.0123456789abcdef"})
    config = kubernetes.client.Configuration()
    config.host, config.ssl_ca_cert, config.retries = api.url, api.ca_cert, 0
    config.api_key = {"authorization": "Bearer abcdef.0123456789abcdef"}
    assert kubernetes.client.VersionApi(kubernetes.client.ApiClient(config)).get_code().minor == "30"
    config.api_key = {"authorization": "Bearer wrong"}
    with pytest.raises(kubernetes.client.exceptions.ApiException) as raised:
        kubernetes.client.VersionApi(kubernetes.client.ApiClient(config)).get_code()
    assert raised.value.status == 401


def test_shuts_down_and_frees_the_port(api_for):
    api = api_for(Cluster.load("clean"))
    port = api.port
    api.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
