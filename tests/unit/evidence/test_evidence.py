"""Evidence collection on plain files: what goes in, what never does."""
import json
import os
import tarfile

from ansible_collections.cplane.kubeadm.plugins.module_utils._evidence import (
    collect_host_evidence, combine_bundles, secret_reason)


def test_secret_markers():
    assert secret_reason(b"-----BEGIN EC PRIVATE KEY-----\nabc") == "holds a PEM private key"
    assert secret_reason(b"users:\n- user:\n    client-key-data: AAA") == "holds a kubeconfig client key"
    assert secret_reason(b"users:\n- user:\n    token: abc.def") == "holds a token"
    assert secret_reason(b"apiVersion: v1\nkind: Pod\n") is None
    assert secret_reason(b"- --token-auth-file=/etc/kubernetes/tokens.csv") is None


def test_collect_and_combine(tmp_path):
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "etcd.yaml").write_text("kind: Pod\n")
    (manifests / ".etcd.yaml.bak").write_text("kind: Pod\n# old\n")
    (manifests / "admin.conf").write_text("users:\n- user:\n    client-key-data: QUFB\n")
    parts = []
    for host in ("cp1", "cp2"):
        result = collect_host_evidence(host, str(tmp_path / "node"), str(manifests), str(tmp_path / "nodata"),
                                       documents={"report": {"host": host}}, journal_units=["kubelet"],
                                       crictl_path="/nonexistent/crictl", journalctl_path="/nonexistent/journalctl")
        assert oct(os.stat(result["path"]).st_mode & 0o777) == "0o600"
        assert [s["reason"] for s in result["skipped"]] == ["holds a kubeconfig client key"]
        assert any("crictl" in note for note in result["notes"])
        parts.append(result["path"])
    bundle = combine_bundles(parts, str(tmp_path / "out"), stamp="20261201T000000Z")
    assert bundle["path"].endswith("cplane-evidence-20261201T000000Z.tar.gz")
    assert not any(os.path.exists(p) for p in parts)
    with tarfile.open(bundle["path"]) as tar:
        names = set(tar.getnames())
        assert {"cp1/manifests/etcd.yaml", "cp1/manifests/.etcd.yaml.bak", "cp2/documents/report.json"} <= names
        assert not [n for n in names if n.endswith("admin.conf")]
        assert json.loads(tar.extractfile("cp2/documents/report.json").read()) == {"host": "cp2"}
        free = json.loads(tar.extractfile("cp1/filesystem/etcd-data.json").read())
        assert free["free_bytes"] > 0 and free["path"] == str(tmp_path)
