"""One kubeconfig reader (context -> cluster -> user) behind the certificate modules and the API client:
the same file gets the same answer, and the same message, from both."""
import pytest
import yaml

from ansible_collections.cplane.kubeadm.plugins.module_utils import _k8s_client
from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import InputError
from ansible_collections.cplane.kubeadm.plugins.module_utils._pki import kubeconfig

CERT = "Y2VydA=="
KEY = "a2V5"


def config(**changes):
    base = {"apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "k", "cluster": {"server": "https://10.0.0.10:6443"}}],
            "contexts": [{"name": "admin@k", "context": {"cluster": "k", "user": "admin"}},
                         {"name": "other@k", "context": {"cluster": "k", "user": "other"}}],
            "users": [{"name": "admin", "user": {"client-certificate-data": CERT, "client-key-data": KEY}},
                      {"name": "other", "user": {"client-certificate-data": "b3RoZXI=", "client-key-data": KEY}}],
            "current-context": "admin@k"}
    base.update(changes)
    return base


BROKEN = {
    "unknown current-context": config(**{"current-context": "prod"}),
    "context names a missing user": config(users=[{"name": "nobody", "user": {}}]),
    "context names a missing cluster": config(clusters=[{"name": "elsewhere", "cluster": {}}]),
    "no current-context, two users": config(**{"current-context": None}),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_both_readers_refuse_a_broken_file_with_the_same_message(tmp_path, case):
    path = tmp_path / "admin.conf"
    path.write_text(yaml.safe_dump(BROKEN[case]))
    with pytest.raises(InputError) as pki_error:
        kubeconfig.load(str(path))
    with pytest.raises(InputError) as client_error:
        _k8s_client.build_configuration(kubeconfig=str(path))
    assert pki_error.value.msg == client_error.value.msg
    assert str(path) in pki_error.value.msg and KEY not in pki_error.value.msg


def test_the_current_context_picks_cluster_and_user():
    resolved = kubeconfig.resolve(config(), "admin.conf")
    assert (resolved["context"], resolved["cluster_name"], resolved["user_name"]) == ("admin@k", "k", "admin")
    assert resolved["cluster"]["server"] == "https://10.0.0.10:6443"
    other = kubeconfig.resolve(config(), "admin.conf", context="other@k")
    assert other["user"]["client-certificate-data"] == "b3RoZXI="


def test_a_sole_user_without_context_is_accepted_only_when_asked():
    single = config(**{"current-context": None})
    single["users"] = single["users"][:1]
    assert kubeconfig.resolve(single, "x", sole_user=True)["user_name"] == "admin"
    with pytest.raises(InputError):
        kubeconfig.resolve(single, "x")
