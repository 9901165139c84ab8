"""The dependency helper: minimums in one place, and a clear message for a missing or too-old library."""
import os
import re
import types

import pytest

from ansible_collections.cplane.kubeadm.plugins.module_utils import _deps

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


class FailJson(Exception):
    pass


class FakeModule(object):
    def fail_json(self, **kwargs):
        raise FailJson(kwargs)


def fake_library(version):
    def importer(name):
        return types.SimpleNamespace(__version__=version, __file__="/usr/lib/python3/dist-packages/%s/__init__.py" % name)
    return importer


def test_requirements_txt_states_the_minimums_of_the_helper():
    with open(os.path.join(ROOT, "requirements.txt")) as handle:
        floors = dict(re.match(r"^([A-Za-z0-9_.-]+)>=(\S+)$", line).groups()
                      for line in handle if line.strip() and not line.startswith("#"))
    assert floors == {name: dep.minimum for name, dep in _deps.DEPENDENCIES.items()}


@pytest.mark.parametrize("fragment, names", [
    ("etcd_connection", _deps.ETCD), ("k8s_auth", _deps.K8S), ("kubeadm_pki", _deps.PKI)])
def test_doc_fragments_state_the_same_minimums(fragment, names):
    with open(os.path.join(ROOT, "plugins", "doc_fragments", fragment + ".py")) as handle:
        text = handle.read()
    for name in names:
        dep = _deps.DEPENDENCIES[name]
        assert re.search(r"- %s( \([^)]*\))? >= %s\b" % (re.escape(name), re.escape(dep.minimum)), text), (fragment, name)


def test_too_old_cryptography_names_the_package_the_version_found_and_the_version_needed():
    """Debian 12's python3-cryptography 38.0.4 lacks x509.load_pem_x509_certificates."""
    message, error = _deps.check("cryptography", importer=fake_library("38.0.4"))
    assert "too old" in message
    assert "38.0.4" in message and "cryptography >= 39.0" in message
    assert "/usr/lib/python3/dist-packages/cryptography" in message
    assert "pip install --upgrade 'cryptography>=39.0'" in message
    assert error is None


def test_too_old_kubernetes_client_is_refused_before_any_call():
    message = _deps.check("kubernetes", importer=fake_library("22.6.0"))[0]
    assert "kubernetes >= 37.0.2" in message and "22.6.0" in message


def test_versions_compare_as_versions_not_strings():
    assert _deps.check("grpcio", importer=fake_library("1.100.0")) is None
    assert _deps.check("grpcio", importer=fake_library("1.9.0")) is not None
    assert _deps.check("protobuf", importer=fake_library("4.21.1")) is None
    assert _deps.check("protobuf", importer=fake_library("3.20.3")) is not None


def test_a_library_without_a_version_is_not_taken_for_new_enough():
    def importer(name):
        return types.SimpleNamespace()
    message = _deps.check("zstandard", importer=importer)[0]
    assert "version unknown" in message and "zstandard >= 0.18" in message


def test_missing_library_is_a_missing_required_lib_message_with_the_minimum():
    def importer(name):
        raise ImportError("No module named %r" % name)
    message, error = _deps.check("etcd3", importer=importer)
    assert message.startswith("Failed to import the required Python library (etcd3 >= 0.12.0)")
    assert "pip install 'etcd3>=0.12.0'" in message
    assert "ImportError" in error


def test_assert_required_fails_on_the_first_problem_and_passes_the_installed_set():
    _deps.assert_required(FakeModule(), *(_deps.ETCD + _deps.K8S + ("zstandard",)))  # the test venv has them all
    original = _deps.check
    try:
        _deps.check = lambda name: ("%s is bad" % name, None) if name == "protobuf" else None
        with pytest.raises(FailJson) as failure:
            _deps.assert_required(FakeModule(), *_deps.ETCD)
    finally:
        _deps.check = original
    assert failure.value.args[0]["msg"] == "protobuf is bad"
