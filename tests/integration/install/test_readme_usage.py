"""README's "Using the collection", run as written: the fenced commands are read from README.md and run
in a clone of the repository, with the collection installed into a clean collections path, against the lab
control plane. The inventory is the README's, with the lab's hosts and paths (and the virtual environment
under a temporary directory instead of /opt). python_env (from the cached wheelhouse, index unreachable)
and control_plane_report run for real; etcd_maintenance, cert_renewal, recover, build, upgrade,
control_plane_metrics and kubelet_serving_certs change the cluster and need more lab than this test
builds (their own tests run them), so here they get --syntax-check.
"""
import os
import re
import shlex
import subprocess
import sys

import yaml

from tests.integration.python_env.test_python_env import node_python
from tests.lab.ansible_run import ROOT
from tests.lab.collection_repo import clean_env, git_repo
from tests.lab.wheelhouse import wheelhouse

CHANGING = ("cplane.kubeadm.etcd_maintenance", "cplane.kubeadm.cert_renewal", "cplane.kubeadm.recover",
            "cplane.kubeadm.build", "cplane.kubeadm.upgrade", "cplane.kubeadm.control_plane_metrics",
            "cplane.kubeadm.kubelet_serving_certs")


def usage_blocks():
    text = open(os.path.join(ROOT, "README.md")).read()
    section = text[text.index("## Using the collection"):]
    section = section[:section.index("\n## ", 3)]
    blocks = re.findall(r"```(\w+)\n(.*?)```", section, re.S)
    inventory = next(body for lang, body in blocks if lang == "yaml")
    commands = [line.split("  #")[0].strip() for lang, body in blocks if lang == "bash"
                for line in body.splitlines() if line.strip()]
    return yaml.safe_load(inventory), commands


def test_readme_inventory_matches_the_role_default():
    inventory = usage_blocks()[0]
    defaults = yaml.safe_load(open(os.path.join(ROOT, "roles", "python_env", "defaults", "main.yml")))
    assert inventory["kube_control_plane"]["vars"]["cplane_kubeadm_python"] == defaults["python_env_path"] + "/bin/python"


def test_readme_usage_commands_work_as_written(tmp_path, control_plane):
    inventory, commands = usage_blocks()
    assert commands[0].startswith("ansible-galaxy collection build")
    assert any("cplane.kubeadm.python_env" in c for c in commands)
    clone = tmp_path / "clone"
    git_repo(str(clone))
    collections = str(tmp_path / "collections")
    env = clean_env(collections)
    env["PIP_INDEX_URL"] = "http://127.0.0.1:9/simple/"   # nothing listens there: the wheelhouse only

    venv = str(tmp_path / "opt" / "cplane-kubeadm" / "venv")
    group = inventory["kube_control_plane"]
    lab_hosts = {}
    for member in control_plane.lab.members:
        host = control_plane.host_vars(member)
        host.update(ansible_python_interpreter=sys.executable, control_plane_report_become=False,
                    python_env_become=False, python_env_path=venv + "-" + member.name, python_env_python=node_python(),
                    python_env_wheelhouse=wheelhouse(), control_plane_report_kubeconfig=control_plane.api.kubeconfig,
                    control_plane_report_dest=str(tmp_path / "report.json"))
        # One venv per lab host, as each real node has its own /opt: the hosts share this machine's
        # file system, and three pip runs into one directory at once would race.
        host["cplane_kubeadm_python"] = host["python_env_path"] + "/bin/python"
        lab_hosts[member.name] = host
    group["hosts"] = lab_hosts
    group["vars"]["cplane_kubeadm_python"] = venv + "/bin/python"
    with open(str(clone / "inventory.yml"), "w") as handle:
        yaml.safe_dump(inventory, handle)

    for command in commands:
        argv = shlex.split(command)
        if argv[0] == "ansible-playbook" and any(name in argv for name in CHANGING):
            argv.append("--syntax-check")
        proc = subprocess.run(argv, cwd=str(clone), capture_output=True, text=True, env=env, timeout=1200,
                              check=False)
        assert proc.returncode == 0, (command, proc.stdout[-4000:], proc.stderr[-2000:])
    assert os.path.isdir(os.path.join(collections, "ansible_collections", "cplane", "kubeadm"))
    for member in control_plane.lab.members:
        assert os.path.isfile(venv + "-" + member.name + "/bin/python")
    report = yaml.safe_load(open(str(tmp_path / "report.json")))
    assert sorted(report) == ["cp1", "cp2", "cp3"] and all(h["etcd"]["has_quorum"] for h in report.values())
