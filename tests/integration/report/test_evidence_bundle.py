"""control_plane_report with bundle=true: one tarball per run on the controller, per host the evidence,
never a private key or a kubeconfig credential."""
import glob
import json
import os
import stat
import tarfile

from tests.lab.ansible_run import ROOT, run_playbook

PLAYBOOK = os.path.join(ROOT, "playbooks", "control_plane_report.yml")


def test_bundle_holds_each_hosts_evidence_and_no_secret(control_plane, tmp_path):
    lab = control_plane.lab
    cp1 = lab.member("cp1")
    # an operator's key dropped into the manifests directory, and a dot-file that is evidence
    with open(os.path.join(cp1.pki_dir, "etcd", "server.key"), "rb") as handle:
        key_pem = handle.read()
    with open(os.path.join(cp1.manifests_dir, ".server.key.copy"), "wb") as handle:
        handle.write(key_pem)
    with open(os.path.join(cp1.manifests_dir, ".etcd.yaml.swp"), "w") as handle:
        handle.write("an editor's swap file\n")
    bundles = tmp_path / "bundles"
    inventory = control_plane.inventory(control_plane_report_kubeconfig=control_plane.api.kubeconfig,
                                        control_plane_report_bundle_node_dir=str(tmp_path / "node-evidence"))
    run = run_playbook(PLAYBOOK, {"control_plane_report_become": False, "control_plane_report_bundle": True,
                                  "control_plane_report_bundle_dir": str(bundles)}, inventory=inventory)
    assert run.rc == 0, run.output[-4000:]
    made = glob.glob(str(bundles / "cplane-evidence-*.tar.gz"))
    assert len(made) == 1, os.listdir(str(bundles))
    assert "evidence bundle: %s" % made[0] in run.output
    assert stat.S_IMODE(os.stat(made[0]).st_mode) == 0o600
    assert os.listdir(str(bundles)) == [os.path.basename(made[0])]        # parts removed
    assert not os.listdir(str(tmp_path / "node-evidence"))                 # nodes' copies removed

    with tarfile.open(made[0]) as tar:
        names = tar.getnames()
        contents = {name: tar.extractfile(name).read() for name in names}
    for host in ("cp1", "cp2", "cp3"):
        for doc in ("report", "etcd", "certificates", "probes"):
            assert "%s/documents/%s.json" % (host, doc) in names, (host, doc)
        assert "%s/filesystem/etcd-data.json" % host in names
        assert "%s/MANIFEST.json" % host in names
    report = json.loads(contents["cp1/documents/report.json"])
    assert report["etcd"]["has_quorum"] is True
    etcd_doc = json.loads(contents["cp2/documents/etcd.json"])
    assert len(etcd_doc["members"]) == 3
    # every manifest, dot-files too; the key is not there, and listed as skipped
    assert "cp1/manifests/etcd.yaml" in names and "cp1/manifests/kube-apiserver.yaml.bak" in names
    assert "cp1/manifests/.etcd.yaml.swp" in names
    assert "cp1/manifests/.server.key.copy" not in names
    manifest = json.loads(contents["cp1/MANIFEST.json"])
    assert [s["reason"] for s in manifest["skipped"]] == ["holds a PEM private key"]
    # no private key, no kubeconfig credential anywhere in the bundle
    body = key_pem.split(b"-----")[2].strip().splitlines()[0]
    for name, data in contents.items():
        assert b"PRIVATE KEY" not in data, name
        assert body not in data, name
        assert b"client-key-data" not in data, name


def test_check_mode_writes_no_bundle(control_plane, tmp_path):
    bundles = tmp_path / "bundles"
    inventory = control_plane.inventory(control_plane_report_kubeconfig=control_plane.api.kubeconfig,
                                        control_plane_report_bundle_node_dir=str(tmp_path / "node-evidence"))
    run = run_playbook(PLAYBOOK, {"control_plane_report_become": False, "control_plane_report_bundle": True,
                                  "control_plane_report_bundle_dir": str(bundles)}, inventory=inventory, check=True)
    assert run.rc == 0, run.output[-4000:]
    assert not bundles.exists() or not os.listdir(str(bundles))
    assert not (tmp_path / "node-evidence").exists()
