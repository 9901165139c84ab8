"""examples/terraform/*: the real terraform 1.5.7 and ansible/ansible provider (built by scripts/lab-binaries)
run init (filesystem mirror, no network), validate, apply and destroy against a lab control plane:
3 real etcd members run as static pods by kubelet doubles (tests/lab/static_pods.KubeletEtcdLab)."""
import glob
import json
import os
import re
import stat
import subprocess
import tarfile

import pytest

from tests.lab import terraform as tf
from tests.lab.ansible_run import ROOT
from tests.lab.static_pods import KubeletEtcdLab

EXAMPLES = os.path.join(ROOT, "examples", "terraform")
HOSTS = ["cp1", "cp2", "cp3"]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with KubeletEtcdLab(str(tmp_path_factory.mktemp("tflab")), size=3, time_scale=0.2) as running:
        yield running


@pytest.fixture(scope="module")
def cli_config(tmp_path_factory):
    return tf.write_mirror(str(tmp_path_factory.mktemp("tfmirror")))


def workspace(example, lab, cli_config, tmp_path, **extra_vars):
    """A copy of the example with the lab's nodes in terraform.tfvars.json, and terraform for it."""
    workdir = tf.copy_example(os.path.join(EXAMPLES, example), str(tmp_path))
    variables = tf.lab_variables(lab, str(tmp_path))
    variables.update(extra_vars)
    with open(os.path.join(workdir, "terraform.tfvars.json"), "w") as handle:
        json.dump(variables, handle)
    return tf.Terraform(workdir, tf.environment(cli_config))


def bundle_members(path):
    with tarfile.open(path) as tar:
        names = tar.getnames()
        report = json.loads(tar.extractfile("cp1/documents/report.json").read())
    return names, report


def snapshots(tmp_path):
    """Snapshot files per node (the sidecar .json beside each marks it as etcd_snapshot's)."""
    found = {}
    for host in HOSTS:
        found[host] = sorted(os.path.basename(p) for p in glob.glob(str(tmp_path / "snapshots" / host / "*.json")))
    return found


def assert_bundle_after_destroy(evidence_dir, destroyed_output):
    bundles = glob.glob(os.path.join(evidence_dir, "cplane-evidence-*.tar.gz"))
    assert len(bundles) == 1, (os.listdir(evidence_dir) if os.path.isdir(evidence_dir) else "no %s" % evidence_dir,
                               destroyed_output[-4000:])
    assert stat.S_IMODE(os.stat(bundles[0]).st_mode) == 0o600
    names, report = bundle_members(bundles[0])
    for host in HOSTS:
        assert "%s/documents/report.json" % host in names, (host, names)
        assert "%s/manifests/etcd.yaml" % host in names, (host, names)
    assert report["etcd"]["has_quorum"] is True
    # the evidence run came before the other resources were destroyed
    lines = destroyed_output.splitlines()
    first = [i for i, line in enumerate(lines) if "Destroying..." in line]
    evidence = [i for i, line in enumerate(lines) if "terraform_data.evidence_before_destroy: Destroying..." in line]
    assert evidence and evidence[0] == first[0], destroyed_output[-4000:]


def test_local_exec_example_reports_maintains_and_keeps_evidence_at_destroy(lab, cli_config, tmp_path):
    terraform = workspace("local-exec", lab, cli_config, tmp_path)
    init = terraform.run("init", "-input=false")
    assert "Terraform has been successfully initialized" in init.stdout
    assert json.loads(terraform.run("validate", "-json").stdout)["valid"]

    apply = terraform.run("apply", "-auto-approve", "-input=false")
    out = terraform.output()
    assert out["inventory"] and set(json.loads(out["inventory"])["kube_control_plane"]["hosts"]) == set(HOSTS)
    with open(out["report"]) as handle:
        report = json.load(handle)
    assert sorted(report) == HOSTS, report.keys()
    assert report["cp1"]["etcd"]["has_quorum"] is True
    # etcd_maintenance took a verified snapshot on every node, one after another
    taken = snapshots(tmp_path)
    assert all(len(files) == 1 for files in taken.values()), (taken, apply.stdout[-4000:])
    assert not os.path.exists(out["evidence_dir"]), "no bundle before destroy"

    destroy = terraform.run("destroy", "-auto-approve", "-input=false")
    assert_bundle_after_destroy(out["evidence_dir"], destroy.stdout)
    assert "Destroy complete! Resources: 3 destroyed." in destroy.stdout


def test_provider_example_runs_the_playbooks_through_ansible_playbook_resources(lab, cli_config, tmp_path):
    settings = tmp_path / "settings.yml"
    settings.write_text("etcd_maintenance_snapshot_retention: 3\n")     # typed settings through var_files
    terraform = workspace("provider", lab, cli_config, tmp_path, var_files=[str(settings)])
    init = terraform.run("init", "-input=false")
    # from the filesystem mirror: the proxy in the environment answers nothing
    assert re.search(r"Installing ansible/ansible v%s" % re.escape(tf.PROVIDER_VERSION), init.stdout), init.stdout
    with open(os.path.join(terraform.workdir, ".terraform.lock.hcl")) as handle:
        assert 'provider "registry.terraform.io/ansible/ansible"' in handle.read()
    assert json.loads(terraform.run("validate", "-json").stdout)["valid"]

    apply = terraform.run("apply", "-auto-approve", "-input=false")
    out = terraform.output()
    for host in HOSTS:
        with open(out["reports"][host]) as handle:
            report = json.load(handle)
        assert list(report) == [host], report.keys()
        assert report[host]["etcd"]["has_quorum"] is True
    taken = snapshots(tmp_path)
    assert all(len(files) == 1 for files in taken.values()), (taken, apply.stdout[-4000:])
    state = json.loads(terraform.run("show", "-json").stdout)
    runs = {r["address"]: r["values"] for r in state["values"]["root_module"]["resources"]
            if r["type"] == "ansible_playbook"}
    # the typed settings went in as a variable file of every run, before the extra variables
    for address, values in runs.items():
        assert "@" + str(settings) in values["args"], (address, values["args"])
    defrag = runs["ansible_playbook.etcd_defrag"]
    assert defrag["name"] == "cp1" and "Defragment etcd members" in defrag["ansible_playbook_stdout"]
    assert "failed=0" in defrag["ansible_playbook_stdout"]

    destroy = terraform.run("destroy", "-auto-approve", "-input=false")
    assert_bundle_after_destroy(out["evidence_dir"], destroy.stdout)


def test_a_failed_evidence_run_stops_the_destroy(lab, cli_config, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    terraform = workspace("local-exec", lab, cli_config, tmp_path, etcd_maintenance=False,
                          evidence_dir=str(blocker / "evidence"))
    terraform.run("init", "-input=false")
    terraform.run("apply", "-auto-approve", "-input=false")
    destroy = terraform.run("destroy", "-auto-approve", "-input=false", check=False)
    assert destroy.returncode != 0, destroy.stdout[-3000:]
    assert "local-exec provisioner error" in destroy.stderr, destroy.stderr[-3000:]
    # nothing was destroyed: the report run and the evidence resource are still in the state
    listed = terraform.run("state", "list").stdout.split()
    assert listed == ["terraform_data.control_plane_report", "terraform_data.evidence_before_destroy"], listed


def test_init_without_the_mirror_cannot_reach_a_registry(tmp_path):
    """The proof that the other tests' init used the mirror: the same environment without it fails."""
    empty = tmp_path / "empty.rc"
    empty.write_text("disable_checkpoint = true\n")
    workdir = tf.copy_example(os.path.join(EXAMPLES, "provider"), str(tmp_path))
    init = tf.Terraform(workdir, tf.environment(str(empty)), timeout=300).run("init", "-input=false", check=False)
    assert init.returncode != 0, init.stdout
    assert "could not connect to registry.terraform.io" in " ".join(init.stderr.split()), init.stderr[-3000:]
    assert "dial tcp 127.0.0.1:9" in init.stderr, init.stderr[-3000:]


def test_examples_are_formatted():
    proc = subprocess.run([tf.terraform_binary(), "fmt", "-check", "-diff", "-recursive", EXAMPLES],
                          env=tf.environment(os.devnull), capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
