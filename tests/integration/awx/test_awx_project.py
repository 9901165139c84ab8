"""examples/awx as AWX runs it: the project's collections/requirements.yml installed as AWX's project update
does, then ``ansible-runner run`` on a private data directory laid out as AWX writes it (project/,
inventory/, env/extravars, env/envvars with the K8S_AUTH_* variables AWX's Kubernetes credential injects),
against the lab control plane (3 real etcd members, kubeadm PKI, the API double answering bearer tokens).
The job's artifacts are checked: status, job events, set_stats (the report's summary per host, the bundle's
path) and the bundle kept on the first node.
"""
import glob
import json
import os
import shutil
import subprocess

import pytest
import yaml

from tests.lab.ansible_run import BIN, ROOT
from tests.lab.api_double import ApiDouble
from tests.lab.collection_repo import clean_env, git_repo, install

PROJECT = os.path.join(ROOT, "examples", "awx")
TOKEN = "awx-credential-token"


@pytest.fixture
def lab_with_token_api(control_plane, tmp_path):
    """The report fixture's control plane plus a second API double that accepts AWX's bearer token."""
    with ApiDouble(str(tmp_path / "api-token"), "seed", cas=control_plane.lab.cas, tokens=[TOKEN]) as api:
        yield control_plane, api


@pytest.fixture
def project(tmp_path):
    """The AWX project: examples/awx with its requirements pointing at a git clone of the checkout, and the
    collections installed the way AWX's project update does (ansible-galaxy collection install -r)."""
    url = git_repo(str(tmp_path / "kubeadm.git"))
    pdd = tmp_path / "job"
    shutil.copytree(PROJECT, str(pdd / "project"))
    requirements = pdd / "project" / "collections" / "requirements.yml"
    data = yaml.safe_load(requirements.read_text())
    assert data["collections"][0]["type"] == "git"
    data["collections"][0]["name"] = url
    requirements.write_text(yaml.safe_dump(data))
    collections = str(tmp_path / "requirements_collections")
    proc = install(str(requirements), collections)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return pdd, collections


def test_syntax_check_of_every_project_playbook(project):
    pdd, collections = project
    for playbook in sorted(glob.glob(str(pdd / "project" / "*.yml"))):
        proc = subprocess.run([os.path.join(BIN, "ansible-playbook"), "--syntax-check", "-i",
                               str(pdd / "project" / "inventory" / "hosts.yml"), playbook],
                              capture_output=True, text=True, env=clean_env(collections), check=False)
        assert proc.returncode == 0, (playbook, proc.stdout, proc.stderr)


def test_ansible_runner_job_of_the_report(project, lab_with_token_api, tmp_path):
    pdd, collections = project
    control_plane, token_api = lab_with_token_api
    lab = control_plane.lab
    # inventory/ as AWX writes it (here the lab's hosts; their paths are the lab's, not kubeadm's defaults).
    inventory = control_plane.inventory(control_plane_report_kubeconfig=control_plane.api.kubeconfig)
    os.makedirs(str(pdd / "inventory"))
    shutil.copy(inventory, str(pdd / "inventory" / "hosts.yml"))
    kept = tmp_path / "node-evidence"
    kept.mkdir()
    bundles = tmp_path / "ee-home" / "cplane-evidence"
    os.makedirs(str(pdd / "env"))
    (pdd / "env" / "extravars").write_text(yaml.safe_dump({
        "target": "kube_control_plane", "control_plane_report_become": False, "control_plane_report_bundle": True,
        "control_plane_report_bundle_dir": str(bundles), "control_plane_report_bundle_journal_units": [],
        "awx_evidence_dir": str(kept)}))
    # What AWX's "OpenShift or Kubernetes API Bearer Token" credential injects into the EE, plus the
    # collections path of the project update.
    (pdd / "env" / "envvars").write_text(yaml.safe_dump({
        "K8S_AUTH_HOST": token_api.url, "K8S_AUTH_API_KEY": TOKEN, "K8S_AUTH_VERIFY_SSL": "True",
        "K8S_AUTH_SSL_CA_CERT": token_api.ca_cert, "ANSIBLE_COLLECTIONS_PATH": collections}))

    proc = subprocess.run([os.path.join(BIN, "ansible-runner"), "run", str(pdd), "-p", "control_plane_report.yml",
                           "--ident", "job1"], capture_output=True, text=True, env=clean_env(), timeout=1200,
                          check=False)
    artifacts = pdd / "artifacts" / "job1"
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
    assert (artifacts / "status").read_text() == "successful"
    assert (artifacts / "rc").read_text() == "0"

    events = [json.load(open(path)) for path in sorted(glob.glob(str(artifacts / "job_events" / "*.json")))]
    ok = [e for e in events if e["event"] == "runner_on_ok"]
    assert {e["event_data"]["host"] for e in ok if e["event_data"]["task_action"] == "cplane.kubeadm.etcd_member_info"} \
        == {"cp1", "cp2", "cp3"}
    # The token was used from the EE's environment and is never in the events.
    versions = [e for e in ok if e["event_data"]["task_action"] == "cplane.kubeadm.node_version_check"
                and e["event_data"]["host"] == "localhost"]
    assert versions and versions[0]["event_data"]["res"]["api_server_version"] == "v1.12.1"
    # (The lab's "nodes" are local connections and inherit the EE's environment too; over SSH they would not.)
    assert token_api.count("/version") >= 1
    assert not any(TOKEN in open(path).read() for path in glob.glob(str(artifacts / "job_events" / "*.json")))

    stats = [e for e in events if e["event"] == "playbook_on_stats"]
    assert len(stats) == 1
    data = stats[0]["event_data"]["artifact_data"]
    assert sorted(data["cplane_kubeadm_report"]) == ["cp1", "cp2", "cp3"]
    assert any("linearizable-etcd-read" in f for f in data["cplane_kubeadm_report"]["cp1"]["findings"])
    assert data["cplane_kubeadm_report"]["cp1"]["summary"]
    bundle = data["cplane_kubeadm_evidence_bundle"]
    assert os.path.dirname(bundle) == str(bundles) and os.path.isfile(bundle)
    # Kept on the first node, where it outlives the job's container.
    host, path = data["cplane_kubeadm_evidence_kept"].split(":", 1)
    assert host == "cp1" and path == os.path.join(str(kept), os.path.basename(bundle))
    assert open(path, "rb").read() == open(bundle, "rb").read()
    assert data["cplane_kubeadm_versions"]["mixed_versions"]
    assert lab.leader()
