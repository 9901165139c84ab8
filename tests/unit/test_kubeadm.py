"""_kubeadm: the one place for kubeadm's names, files, ports, probe table and image versions."""
import pytest

from ansible_collections.cplane.kubeadm.plugins.module_utils import _kubeadm
from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import InputError
from ansible_collections.cplane.kubeadm.plugins.module_utils._manifests import probe_state, probes
from ansible_collections.cplane.kubeadm.plugins.module_utils._versions import cluster


@pytest.mark.parametrize("image,repository,tag,version", [
    ("registry.k8s.io/kube-apiserver:v1.30.4", "kube-apiserver", "v1.30.4", (1, 30, 4)),
    ("my-registry:5000/k8s/kube-apiserver:v1.30.4@sha256:abcd", "kube-apiserver", "v1.30.4", (1, 30, 4)),
    ("my-registry:5000/k8s/kube-apiserver", "kube-apiserver", None, None),
    ("registry.k8s.io/etcd:3.5.12-0", "etcd", "3.5.12-0", (3, 5, 12)),
    ("k8s.gcr.io/etcd:3.2.24", "etcd", "3.2.24", (3, 2, 24)),
    ("k8s.gcr.io/etcd:3.4", "etcd", "3.4", (3, 4, 0)),
    ("localhost:5000/etcd", "etcd", None, None),
    ("registry.k8s.io/etcd:latest", "etcd", "latest", None),
    (None, "", None, None),
])
def test_image_reference_parsing(image, repository, tag, version):
    assert _kubeadm.image_repository(image) == repository
    assert _kubeadm.image_tag(image) == tag
    assert _kubeadm.image_version(image) == version


def test_one_definition_is_used_everywhere():
    # the manifests audit and the version inventory read images through the same functions
    assert probes.component_of is _kubeadm.component_of
    assert cluster.image_tag is _kubeadm.image_tag
    assert probes.KINDS is _kubeadm.PROBE_KINDS and probes.FIELD is _kubeadm.PROBE_FIELD


def test_manifest_files_and_components():
    assert _kubeadm.manifest_file("etcd") == "/etc/kubernetes/manifests/etcd.yaml"
    assert probe_state.manifest_path(name="kube-apiserver", manifest_dir="/m") == "/m/kube-apiserver.yaml"
    assert _kubeadm.component_of({"image": "registry.k8s.io/kube-scheduler:v1.30.4", "name": "x"}) == "kube-scheduler"
    assert _kubeadm.component_of({"image": "busybox", "name": "etcd-cp1"}) == "etcd"
    assert _kubeadm.component_of({"image": "busybox", "name": "app"}) is None


def test_probe_table_per_version():
    assert _kubeadm.probe_paths("etcd", (3, 5, 11))["liveness"] == "/livez"
    assert _kubeadm.probe_paths("etcd", (3, 5, 10)) == {"liveness": "/health?exclude=NOSPACE&serializable=true",
                                                        "readiness": None, "startup": "/health?serializable=false"}
    assert _kubeadm.probe_paths("kube-controller-manager", (1, 30, 0))["liveness"] == "/healthz"
    with pytest.raises(InputError, match="predates"):
        _kubeadm.probe_paths("etcd", (3, 3, 0))
    with pytest.raises(InputError, match="cannot tell the etcd version"):
        _kubeadm.probe_paths("etcd", None)
    probe = _kubeadm.http_probe("liveness", "HTTP", "127.0.0.1", _kubeadm.ETCD_METRICS_PORT, "/livez")
    assert list(probe) == sorted(probe)   # Go's key order
    assert (probe["initialDelaySeconds"], probe["timeoutSeconds"], probe["failureThreshold"],
            probe["periodSeconds"]) == (10, 15, 8, 10)
    assert _kubeadm.PROBE_TIMING["startup"][2] == 24
