"""Rendering kubeadm's documents, reading a join command, redacting secrets (no kubeadm run)."""
import json

import pytest

from ansible_collections.cplane.kubeadm.plugins.module_utils._build import kubeadm_config as kc
from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import InputError

TOKEN = "q1w2e3.r4t5y6u7i8o9p0a1"
HASH = "sha256:" + "ab" * 32
KEY = "cd" * 32
JOIN = "kubeadm join 10.0.0.100:6443 --token %s --discovery-token-ca-cert-hash %s \n" % (TOKEN, HASH)
PARAMS = dict(kubernetes_version="1.37.2", control_plane_endpoint="lb.example:6443", advertise_address="10.0.0.12",
              node_name="cp2", cert_sans=["lb.example", "10.0.0.100"], pod_subnet="10.244.0.0/16",
              service_subnet="10.96.0.0/12", etcd_data_dir="/var/lib/etcd", cri_socket="unix:///run/x.sock",
              kubelet_extra_args={"fail-swap-on": "false"})


def test_api_version_follows_the_release():
    assert kc.api_version_for("1.37.2") == kc.api_version_for("v1.31.0") == kc.V1BETA4
    assert kc.api_version_for("1.30.9") == kc.V1BETA3
    with pytest.raises(InputError):
        kc.api_version_for("latest")


def test_join_command_is_read_and_a_wrong_one_refused():
    assert kc.parse_join_command("some banner\n" + JOIN) == dict(endpoint="10.0.0.100:6443", token=TOKEN, ca_cert_hashes=[HASH])
    with pytest.raises(InputError, match="print-join-command"):
        kc.parse_join_command("kubeadm join 10.0.0.100:6443 --token %s" % TOKEN)


def test_init_documents_carry_endpoint_sans_local_etcd_and_the_certificate_key():
    init, cluster = kc.documents("init", kc.V1BETA4, PARAMS, certificate_key=KEY)
    assert init["kind"] == "InitConfiguration" and init["certificateKey"] == KEY
    assert init["localAPIEndpoint"] == {"advertiseAddress": "10.0.0.12", "bindPort": 6443}
    assert init["nodeRegistration"]["kubeletExtraArgs"] == [{"name": "fail-swap-on", "value": "false"}]
    assert cluster["controlPlaneEndpoint"] == "lb.example:6443" and cluster["kubernetesVersion"] == "v1.37.2"
    assert cluster["apiServer"]["certSANs"] == ["lb.example", "10.0.0.100"]
    assert cluster["etcd"] == {"local": {"dataDir": "/var/lib/etcd"}}
    assert cluster["networking"] == {"podSubnet": "10.244.0.0/16", "serviceSubnet": "10.96.0.0/12"}


def test_v1beta3_extra_args_are_a_map():
    init, _cluster = kc.documents("init", kc.V1BETA3, PARAMS)
    assert init["nodeRegistration"]["kubeletExtraArgs"] == {"fail-swap-on": "false"}


def test_join_documents_discover_through_the_endpoint_with_the_token_and_hash():
    params = dict(PARAMS, control_plane=True)
    (join,) = kc.documents("join", kc.V1BETA4, params, join=kc.parse_join_command(JOIN), certificate_key=KEY)
    assert join["discovery"]["bootstrapToken"] == {"apiServerEndpoint": "lb.example:6443", "token": TOKEN,
                                                   "caCertHashes": [HASH]}
    assert join["controlPlane"] == {"localAPIEndpoint": {"advertiseAddress": "10.0.0.12", "bindPort": 6443},
                                    "certificateKey": KEY}
    (worker,) = kc.documents("join", kc.V1BETA4, PARAMS, join=kc.parse_join_command(JOIN))
    assert "controlPlane" not in worker


def test_extra_documents_merge_deeply():
    params = dict(PARAMS, cluster_configuration={"networking": {"dnsDomain": "lab.local"}, "apiServer": {"extraArgs": []}})
    _init, cluster = kc.documents("init", kc.V1BETA4, params)
    assert cluster["networking"]["podSubnet"] == "10.244.0.0/16" and cluster["networking"]["dnsDomain"] == "lab.local"
    assert cluster["apiServer"] == {"certSANs": ["lb.example", "10.0.0.100"], "extraArgs": []}


def test_secrets_never_leave_redacted():
    docs = kc.documents("join", kc.V1BETA4, dict(PARAMS, control_plane=True), join=kc.parse_join_command(JOIN),
                        certificate_key=KEY)
    shown = json.dumps(kc.redacted_documents(docs, [TOKEN, KEY]))
    assert TOKEN not in shown and KEY not in shown and HASH in shown
    text = kc.redact("You can now join: kubeadm join lb:6443 --token %s --certificate-key %s and another token "
                     "zz99yy.0123456789abcdef" % (TOKEN, KEY))
    assert TOKEN not in text and KEY not in text and "zz99yy" not in text


def test_missing_inputs_name_what_is_needed():
    with pytest.raises(InputError, match="kubernetes_version"):
        kc.documents("init", kc.V1BETA4, dict(PARAMS, kubernetes_version=None))
    with pytest.raises(InputError, match="advertise_address"):
        kc.documents("init", kc.V1BETA4, dict(PARAMS, advertise_address=None))
    with pytest.raises(InputError, match="not supported"):
        kc.documents("init", "kubeadm.k8s.io/v1beta2", PARAMS)


def test_the_config_file_is_private_and_gone_afterwards(tmp_path):
    import os
    import stat
    with kc.ConfigFile("secret: 1\n", str(tmp_path)) as path:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    assert not os.path.exists(path) and os.listdir(str(tmp_path)) == []
