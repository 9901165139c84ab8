"""Auth option handling: every bad kubeconfig is an InputError naming the file, never leaking secrets."""
import os

import pytest
import yaml

from ansible_collections.cplane.kubeadm.plugins.module_utils import _k8s_client
from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import InputError

TOKEN = "abcdef.0123456789abcdefSECRETTOKENVALUE"


def kubeconfig(path, **changes):
    config = {"apiVersion": "v1", "kind": "Config",
              "clusters": [{"name": "k", "cluster": {"server": "https://10.0.0.10:6443", "insecure-skip-tls-verify": True}}],
              "contexts": [{"name": "admin@k", "context": {"cluster": "k", "user": "admin"}}],
              "current-context": "admin@k",
              "users": [{"name": "admin", "user": {"token": TOKEN}}]}
    config.update(changes)
    path.write_text(yaml.safe_dump(config))
    return str(path)


def build(**auth):
    return _k8s_client.build_configuration(**auth)


def test_a_good_kubeconfig_gives_host_and_token(tmp_path):
    config, source = build(kubeconfig=kubeconfig(tmp_path / "admin.conf"))
    assert config.host == "https://10.0.0.10:6443"
    assert config.api_key["BearerToken"] == "Bearer " + TOKEN
    assert config.retries == 0
    assert source == "kubeconfig %s (context admin@k)" % (tmp_path / "admin.conf")


def test_options_override_the_kubeconfig(tmp_path):
    ca = tmp_path / "ca.crt"
    ca.write_text("pem")
    config = build(kubeconfig=kubeconfig(tmp_path / "admin.conf"), host="https://lb:6443/", api_key="other",
                   ca_cert=str(ca), validate_certs=True)[0]
    assert (config.host, config.api_key["BearerToken"], config.ssl_ca_cert, config.verify_ssl) == (
        "https://lb:6443", "Bearer other", str(ca), True)


def test_host_alone_needs_no_kubeconfig(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    config, source = build(host="https://10.0.0.10:6443", api_key="t")
    assert (config.host, source) == ("https://10.0.0.10:6443", "the host option")


def test_missing_kubeconfig_names_the_file(tmp_path):
    with pytest.raises(InputError) as raised:
        build(kubeconfig=str(tmp_path / "nope.conf"))
    assert str(tmp_path / "nope.conf") in raised.value.msg and "does not exist" in raised.value.msg


def test_kubeconfig_env_is_used_when_no_option(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", kubeconfig(tmp_path / "env.conf") + os.pathsep + "/other")
    assert build()[1].startswith("kubeconfig %s" % (tmp_path / "env.conf"))


def test_malformed_yaml_reports_position_not_content(tmp_path):
    path = tmp_path / "broken.conf"
    path.write_text("users:\n- name: admin\n  user:\n    token: %s\n  bad: [unclosed\n" % TOKEN)
    with pytest.raises(InputError) as raised:
        build(kubeconfig=str(path))
    assert str(path) in raised.value.msg and "not valid YAML" in raised.value.msg and "line" in raised.value.msg
    assert TOKEN not in raised.value.msg


def test_not_a_kubeconfig(tmp_path):
    path = tmp_path / "list.conf"
    path.write_text("- just\n- a list\n")
    with pytest.raises(InputError) as raised:
        build(kubeconfig=str(path))
    assert "not a kubeconfig" in raised.value.msg


def test_unknown_context_lists_the_known_ones(tmp_path):
    with pytest.raises(InputError) as raised:
        build(kubeconfig=kubeconfig(tmp_path / "admin.conf"), context="prod")
    assert "no context named 'prod'" in raised.value.msg and "admin@k" in raised.value.msg


def test_context_pointing_to_a_missing_user_is_an_input_error(tmp_path):
    path = kubeconfig(tmp_path / "admin.conf", users=[{"name": "someone-else", "user": {"token": TOKEN}}])
    with pytest.raises(InputError) as raised:
        build(kubeconfig=path)
    assert path in raised.value.msg and TOKEN not in raised.value.msg


def test_bad_embedded_certificate_data_is_an_input_error(tmp_path):
    path = kubeconfig(tmp_path / "admin.conf", users=[{"name": "admin", "user": {
        "client-certificate-data": "!!notbase64", "client-key-data": "!!notbase64"}}])
    with pytest.raises(InputError) as raised:
        build(kubeconfig=path)
    assert path in raised.value.msg


def test_missing_certificate_files_are_named(tmp_path):
    with pytest.raises(InputError) as raised:
        build(host="https://10.0.0.10:6443", client_cert=str(tmp_path / "admin.crt"))
    assert "client_cert %s does not exist" % (tmp_path / "admin.crt") in raised.value.msg


def test_redact_hides_known_secrets_and_long_base64():
    text = _k8s_client.redact("token %s and data %s" % ("s3cr3t", "QUJD" * 20), ["s3cr3t"])
    assert "s3cr3t" not in text and "QUJD" not in text and text.count("<redacted>") == 2


def test_auth_spec_marks_the_token_no_log():
    spec = _k8s_client.k8s_argument_spec(extra=dict(type="str"))
    assert spec["api_key"]["no_log"] is True and "extra" in spec
    assert set(_k8s_client.auth_params({"kubeconfig": "/x", "unrelated": 1})) == set(_k8s_client.K8S_AUTH_ARGS)
