"""The install routes of docs/install.md, followed as written: collections/requirements.yml with a git URL
and with a tarball, ``ansible-galaxy collection install`` into a clean path, then a playbook by FQCN from
that path only (no test collections path, no roles path), against the lab control plane.
"""
import json
import os
import subprocess

import pytest

from tests.lab.ansible_run import BIN, ROOT
from tests.lab.collection_repo import build_tarball, clean_env, git_repo, install


@pytest.fixture(scope="module")
def tarball(tmp_path_factory):
    return build_tarball(str(tmp_path_factory.mktemp("build")))


def installed_version(collections_path):
    manifest = os.path.join(collections_path, "ansible_collections", "cplane", "kubeadm", "MANIFEST.json")
    with open(manifest) as handle:
        return json.load(handle)["collection_info"]["version"]


def test_git_url_in_requirements_yml(tmp_path):
    url = git_repo(str(tmp_path / "kubeadm.git"))
    requirements = tmp_path / "requirements.yml"
    requirements.write_text("collections:\n  - name: %s\n    type: git\n    version: main\n" % url)
    dest = str(tmp_path / "collections")
    proc = install(str(requirements), dest)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert installed_version(dest) == "0.1.0"
    root = os.path.join(dest, "ansible_collections", "cplane", "kubeadm")
    for name in ("roles/python_env/tasks/main.yml", "playbooks/control_plane_report.yml", "requirements.txt",
                 "plugins/filter/module_python.py", "meta/execution-environment.yml"):
        assert os.path.isfile(os.path.join(root, name)), name
    # The role reads the requirements from the installed collection: the file is there, beside the roles.
    assert open(os.path.join(root, "requirements.txt")).read() == open(os.path.join(ROOT, "requirements.txt")).read()


def test_tarball_in_requirements_yml_then_playbook_by_fqcn(tmp_path, tarball, control_plane):
    requirements = tmp_path / "requirements.yml"
    requirements.write_text("collections:\n  - name: %s\n    type: file\n" % tarball)
    dest = str(tmp_path / "collections")
    proc = install(str(requirements), dest)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert installed_version(dest) == "0.1.0"

    # Only the clean path: the collection is found there and nowhere else.
    env = clean_env(dest)
    listing = subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "list", "cplane.kubeadm"],
                             capture_output=True, text=True, env=env, check=False).stdout
    assert dest in listing and ROOT not in listing

    report = tmp_path / "report.json"
    inventory = control_plane.inventory(control_plane_report_kubeconfig=control_plane.api.kubeconfig)
    proc = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", inventory, "cplane.kubeadm.control_plane_report",
                           "-e", "target=kube_control_plane", "-e", "control_plane_report_become=false",
                           "-e", "control_plane_report_dest=%s" % report],
                          capture_output=True, text=True, env=env, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    result = json.loads(report.read_text())
    assert sorted(result) == ["cp1", "cp2", "cp3"]
    assert all(host["etcd"]["has_quorum"] for host in result.values())


def test_tarball_installs_with_ansible_galaxy_directly(tmp_path, tarball):
    dest = str(tmp_path / "collections")
    proc = subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "install", tarball, "-p", dest],
                          capture_output=True, text=True, env=clean_env(dest), timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = subprocess.run([os.path.join(BIN, "ansible-doc"), "-t", "role", "cplane.kubeadm.python_env"],
                         capture_output=True, text=True, env=clean_env(dest), check=False)
    assert doc.returncode == 0 and "python_env_wheelhouse" in doc.stdout, doc.stderr
