"""The shared client against the API double: TLS and credential failures become typed, clear errors."""
import datetime

import pytest
import yaml

from ansible_collections.cplane.kubeadm.plugins.module_utils import _k8s_client
from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import ConnectionFailure, InputError
from ansible_collections.cplane.kubeadm.plugins.module_utils._versions import cluster
from tests.lab import pki


def gather(**auth):
    with _k8s_client.connect(**auth) as client:
        return cluster.gather_cluster(client, page_size=2)


def test_gathers_through_a_real_kubeconfig(api_for):
    inventory = gather(kubeconfig=api_for("seed").kubeconfig)
    assert inventory["api_server"] == "v1.12.1" and inventory["kube_proxy_daemonset"] == "v1.12.1"
    assert [n["name"] for n in inventory["nodes"]][-1] == "antidote-worker-gt5t"
    assert inventory["images"]["etcd"] == {"antidote-controller-4m3j": "k8s.gcr.io/etcd:3.2.24"}


def test_expired_client_certificate(api_for, lab_cas, tmp_path):
    api = api_for("clean")
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=400)
    expired = pki.issue(lab_cas.ca, "kubernetes-admin", "kubeadm:cluster-admins", not_before=past,
                        not_after=past + datetime.timedelta(days=365), key_type="ecdsa")
    path = tmp_path / "expired.conf"
    path.write_text(yaml.safe_dump(pki.kubeconfig(api.url, lab_cas.ca, "kubernetes-admin", expired)))
    with pytest.raises(ConnectionFailure) as raised:
        gather(kubeconfig=str(path))
    assert api.url in raised.value.msg and "expired" in raised.value.msg and "kubeadm certs renew" in raised.value.msg
    assert expired.key_pem.decode().splitlines()[1] not in raised.value.msg


def test_ca_file_that_is_not_pem(api_for, tmp_path):
    api = api_for("clean")
    bogus = tmp_path / "ca.crt"
    bogus.write_text("not a certificate\n")
    with pytest.raises(InputError) as raised:
        gather(kubeconfig=api.kubeconfig, ca_cert=str(bogus))
    assert "holds no PEM certificate" in raised.value.msg


def test_client_key_that_does_not_match(api_for, lab_cas, tmp_path):
    api = api_for("clean")
    other = pki.issue(lab_cas.ca, "someone", key_type="ecdsa")
    key = tmp_path / "other.key"
    key.write_bytes(other.key_pem)
    with pytest.raises(InputError) as raised:
        gather(kubeconfig=api.kubeconfig, client_cert=api.client_cert, client_key=str(key))
    assert "could not be loaded" in raised.value.msg


def test_unhealthy_status_codes_are_operation_failures(api_for):
    from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import OperationFailed
    api = api_for("clean")
    with _k8s_client.connect(kubeconfig=api.kubeconfig) as client:
        with pytest.raises(OperationFailed) as raised:
            client.get("reading a node", "/api/v1/nodes/nope")
    assert 'answered 404' in raised.value.msg and 'nodes "nope" not found' in raised.value.msg


def test_expired_continue_token_restarts_the_list_once(api_for):
    from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import OperationFailed
    api = api_for("seed")
    api.expire_continue_tokens = 1
    names = [n["name"] for n in gather(kubeconfig=api.kubeconfig)["nodes"]]
    assert names == ["antidote-controller-4m3j", "antidote-worker-3m7f", "antidote-worker-3mcj", "antidote-worker-gt5t"]
    assert api.count("/api/v1/nodes") == 4  # page 1, 410 on page 2, then pages 1 and 2 again
    api.expire_continue_tokens = 2
    with pytest.raises(OperationFailed) as raised:
        gather(kubeconfig=api.kubeconfig)
    assert "after the continue token expired" in raised.value.msg and "410" in raised.value.msg
