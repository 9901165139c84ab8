"""A missing or too-old library, met by a real module run: a clear message, never a traceback."""
import os

from tests.lab.ansible_run import run_module


def shadow_library(directory, name, version):
    """A stand-in package ``name`` that reports ``version`` and has nothing else (a double of an old install)."""
    package = os.path.join(str(directory), name)
    os.makedirs(package)
    with open(os.path.join(package, "__init__.py"), "w") as handle:
        handle.write("__version__ = %r\n" % version)
    return {"PYTHONPATH": str(directory)}


def assert_clean(result):
    assert result["failed"], result
    assert "Traceback" not in result["_stdout"] and "MODULE FAILURE" not in result["_stdout"]


def test_cert_info_with_debian12_cryptography_names_the_version_needed(tmp_path):
    """cryptography 38.0.4 (Debian 12) used to end in "not a PEM certificate" for a valid CA."""
    result = run_module("kubeadm_cert_info", {"pki_dir": str(tmp_path / "pki")},
                        env=shadow_library(tmp_path / "lib", "cryptography", "38.0.4"))
    assert_clean(result)
    assert "cryptography" in result["msg"] and "38.0.4" in result["msg"] and "too old" in result["msg"]
    assert "cryptography >= 39.0" in result["msg"]


def test_node_version_check_with_an_old_kubernetes_client_names_the_version_needed(tmp_path):
    """kubernetes 36 lacks ApiClient.param_serialize: an AttributeError traceback before."""
    result = run_module("node_version_check", {"host": "https://127.0.0.1:1"},
                        env=shadow_library(tmp_path / "lib", "kubernetes", "36.0.0"))
    assert_clean(result)
    assert "kubernetes >= 37.0.2" in result["msg"] and "36.0.0" in result["msg"]


def test_etcd_module_without_etcd3_is_a_missing_library_message(tmp_path):
    broken = tmp_path / "lib" / "etcd3"
    os.makedirs(str(broken))
    (broken / "__init__.py").write_text("raise ImportError('No module named etcd3 (test double of an absent library)')\n")
    result = run_module("etcd_member_info", {"endpoints": ["https://127.0.0.1:1"]}, env={"PYTHONPATH": str(tmp_path / "lib")})
    assert_clean(result)
    assert result["msg"].startswith("Failed to import the required Python library (etcd3 >= 0.12.0)")


def test_kubelet_csr_approve_with_debian12_cryptography_names_the_version_needed(tmp_path):
    """The CSR checks parse requests with cryptography: an old one is refused before any API call."""
    result = run_module("kubelet_csr_approve", {"host": "https://127.0.0.1:1"},
                        env=shadow_library(tmp_path / "lib", "cryptography", "38.0.4"))
    assert_clean(result)
    assert "cryptography >= 39.0" in result["msg"] and "38.0.4" in result["msg"]
