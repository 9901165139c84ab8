"""Summaries of API objects and of local binaries' output (plain dicts; no API)."""
from ansible_collections.cplane.kubeadm.plugins.module_utils._versions import cluster, local

from tests.lab.api_double import Node, pod_object


def test_summarize_node_reads_versions_roles_and_readiness():
    api_node = Node("cp1", "v1.30.4", control_plane=True, ready=False).to_api()
    assert cluster.summarize_node(api_node) == {
        "name": "cp1", "roles": ["control-plane"], "ready": False, "kubelet": "v1.30.4", "kube_proxy": "v1.30.4",
        "kube_proxy_source": "node", "control_plane": {}, "restarts": {}}


def test_summarize_node_without_kube_proxy_version():
    summary = cluster.summarize_node(Node("w1", "v1.31.2", kube_proxy="").to_api())
    assert (summary["kube_proxy"], summary["kube_proxy_source"], summary["roles"]) == (None, None, [])


def test_summarize_static_pod():
    pod = pod_object({"name": "etcd-cp1", "namespace": "kube-system", "node": "cp1", "phase": "Running",
                      "containers": [{"name": "etcd", "image": "registry.k8s.io/etcd:3.5.15-0", "restart_count": 183}]})
    assert cluster.summarize_static_pod(pod) == ("cp1", "etcd", "3.5.15-0", "registry.k8s.io/etcd:3.5.15-0", 183)
    other = pod_object({"name": "coredns-1", "node": "cp1", "containers": [{"name": "coredns", "image": "coredns:v1.11.1"}]})
    assert cluster.summarize_static_pod(other) is None


def test_local_binaries_missing_are_not_found_not_failures():
    outputs = {"/usr/bin/kubelet": (0, "Kubernetes v1.30.4\n", ""),
               "/usr/bin/kubectl": (1, "", "error: unknown flag: --client")}
    calls = []

    def run(argv):
        calls.append(argv)
        return outputs[argv[0]]

    found = local.gather_local({"kubelet": "/usr/bin/kubelet", "kubectl": "/usr/bin/kubectl"}.get, run)
    assert found["kubelet"] == {"found": True, "path": "/usr/bin/kubelet", "version": "v1.30.4", "error": None}
    assert found["kubeadm"] == {"found": False, "path": None, "version": None, "error": None}
    assert found["kubectl"]["version"] is None and "unknown flag" in found["kubectl"]["error"]
    assert ["/usr/bin/kubelet", "--version"] in calls
    assert local.local_versions(found) == {"kubelet": "v1.30.4"}
