"""Role python_env on a lab node (local connection) from a wheelhouse, with the package index unreachable.

The index is a recording HTTP server on 127.0.0.1 (PIP_INDEX_URL): any request pip made to it would be
recorded, so "no index was used" is checked, not assumed. The node's Python is Debian's /usr/bin/python3
when it is the same minor version as the tests' (the wheelhouse's wheels are built for that version).
"""
import http.server
import json
import os
import subprocess
import sys
import threading
import time

import pytest
import yaml

from tests.lab.ansible_run import ROOT, run_module, run_playbook
from tests.lab.wheelhouse import wheelhouse

PLAYBOOK = os.path.join(ROOT, "playbooks", "python_env.yml")
LIBRARIES = ("etcd3", "grpcio", "protobuf", "cryptography", "kubernetes", "PyYAML", "zstandard")


def node_python():
    system = "/usr/bin/python3"
    if os.path.exists(system):
        version = subprocess.run([system, "-c", "import sys, venv; print(sys.version_info[:2])"],
                                 capture_output=True, text=True, check=False).stdout.strip()
        if version == str(tuple(sys.version_info[:2])):
            return system
    return getattr(sys, "_base_executable", sys.executable)


class RecordingIndex(object):
    """An HTTP 'package index' that answers 404 to everything and records what was asked."""

    def __init__(self):
        requests = self.requests = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):   # noqa: N802 (http.server's name)
                requests.append(self.path)
                self.send_error(404)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/simple/" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def index():
    served = RecordingIndex()
    yield served
    served.close()


@pytest.fixture(scope="module")
def node(tmp_path_factory, index):
    """A lab node whose venv goes under a temporary /opt; the first run of the role, timed."""
    tmp = tmp_path_factory.mktemp("python_env")
    wheels = wheelhouse()
    venv = str(tmp / "opt" / "cplane-kubeadm" / "venv")
    inventory = str(tmp / "inventory.yml")
    with open(inventory, "w") as handle:
        yaml.safe_dump({"kube_control_plane": {"hosts": {"node1": {
            "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
            "python_env_path": venv, "python_env_python": node_python(),
            "python_env_wheelhouse": wheels}}}}, handle)
    env = {"PIP_INDEX_URL": index.url, "PIP_CONFIG_FILE": os.devnull}
    started = time.monotonic()
    first = run_playbook(PLAYBOOK, {"python_env_become": False}, inventory=inventory, env=env)
    seconds = time.monotonic() - started
    print("python_env first run (venv + install from the wheelhouse): %.1f s" % seconds)
    return {"tmp": tmp, "venv": venv, "inventory": inventory, "env": env, "first": first, "seconds": seconds,
            "wheels": wheels}


def installed(python):
    code = ("import json, importlib.metadata as m; print(json.dumps({n: m.version(n) for n in %r}))" % (LIBRARIES,))
    return json.loads(subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout)


def changed(run):
    return [r["task"] for r in run.results if r["result"].get("changed")]


def test_first_run_installs_from_the_wheelhouse_without_the_index(node, index):
    run = node["first"]
    assert run.rc == 0, run.output[-4000:]
    assert index.requests == []
    python = os.path.join(node["venv"], "bin", "python")
    assert "Install the requirements with pip" in changed(run)
    fact = run.task("Use the environment for the collection's modules")[0]["result"]["ansible_facts"]
    assert fact == {"cplane_kubeadm_python": python}
    # Every requirement is installed, at the version of the wheel in the wheelhouse, above its floor.
    versions = installed(python)
    wheels = os.listdir(node["wheels"])
    for name, version in versions.items():
        prefix = "%s-%s-" % (name.lower().replace("-", "_"), version)
        assert any(w.lower().startswith(prefix) for w in wheels), (name, version)
    from ansible_collections.cplane.kubeadm.plugins.module_utils._deps import DEPENDENCIES
    from ansible.module_utils.compat.version import LooseVersion
    for name, dep in DEPENDENCIES.items():
        assert LooseVersion(versions[name]) >= LooseVersion(dep.minimum), name
    stamp = json.load(open(os.path.join(node["venv"], "cplane-kubeadm-stamp.json")))
    assert stamp["wheelhouse"] == node["wheels"] and "kubernetes>=" in stamp["requirements"]
    # The node's system Python is left alone: the venv is its own.
    assert not os.path.exists(os.path.join(node["venv"], "lib", "python3", "dist-packages"))


def test_second_run_changes_nothing(node, index):
    started = time.monotonic()
    again = run_playbook(PLAYBOOK, {"python_env_become": False}, inventory=node["inventory"], env=node["env"])
    print("python_env second run: %.1f s" % (time.monotonic() - started))
    assert again.rc == 0, again.output[-4000:]
    assert changed(again) == []
    assert [r["status"] for r in again.task("Install the requirements with pip")] == ["skipped"]
    assert index.requests == []


def test_a_changed_requirement_reinstalls(node, tmp_path):
    """Another requirements file (here: the same plus a comment) changes the stamp: pip runs again."""
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(open(os.path.join(ROOT, "requirements.txt")).read() + "# pinned by site policy\n")
    run = run_playbook(PLAYBOOK, {"python_env_become": False, "python_env_requirements": str(requirements)},
                       inventory=node["inventory"], env=node["env"])
    assert run.rc == 0, run.output[-4000:]
    assert "Record what was installed" in changed(run)
    # Nothing new to install: pip reports no change of the installed packages.
    assert not run.task("Install the requirements with pip")[0]["result"]["changed"]
    assert "# pinned by site policy" in open(os.path.join(node["venv"], "cplane-kubeadm-stamp.json")).read()
    # (The tests after this one use the venv's interpreter, not its stamp: no need to switch back.)


def test_check_mode_creates_nothing(node, tmp_path):
    venv = str(tmp_path / "elsewhere" / "venv")
    run = run_playbook(PLAYBOOK, {"python_env_become": False, "python_env_path": venv},
                       inventory=node["inventory"], env=node["env"], check=True)
    assert run.rc == 0, run.output[-4000:]
    assert "Create the virtual environment" in changed(run)
    assert not os.path.exists(os.path.dirname(venv))


def test_os_packages_where_they_suffice(node, index, tmp_path):
    """--system-site-packages on Debian 12's Python: its python3-six (new enough for the kubernetes client)
    is used from the OS; its python3-cryptography 38.0.4 and python3-yaml 6.0 are below
    the floors, so pip installs newer ones into the venv, where they shadow the OS copies."""
    dist = "/usr/lib/python3/dist-packages"
    if node_python() != "/usr/bin/python3" or not all(
            os.path.exists(os.path.join(dist, name)) for name in ("six.py", "cryptography", "yaml")):
        pytest.skip("needs Debian's python3 with python3-six, -cryptography and -yaml installed")
    venv = str(tmp_path / "venv")
    run = run_playbook(PLAYBOOK, {"python_env_become": False, "python_env_path": venv,
                                  "python_env_system_site_packages": True},
                       inventory=node["inventory"], env=node["env"])
    assert run.rc == 0, run.output[-4000:]
    assert index.requests == []
    code = ("import json, six, cryptography, yaml; print(json.dumps({m.__name__: [m.__file__, "
            "getattr(m, '__version__', '')] for m in (six, cryptography, yaml)}))")
    where = json.loads(subprocess.run([venv + "/bin/python", "-c", code], capture_output=True, text=True,
                                      check=True).stdout)
    assert where["six"][0].startswith(dist)
    assert where["cryptography"][0].startswith(venv) and where["yaml"][0].startswith(venv)
    from ansible.module_utils.compat.version import LooseVersion
    assert LooseVersion(where["cryptography"][1]) >= LooseVersion("39.0")
    again = run_playbook(PLAYBOOK, {"python_env_become": False, "python_env_path": venv,
                                    "python_env_system_site_packages": True},
                         inventory=node["inventory"], env=node["env"])
    assert again.rc == 0 and changed(again) == []


def test_modules_run_with_the_venv_interpreter(node, etcd3_cluster):
    """etcd_member_info against the real lab etcd, run with the venv's Python as the interpreter."""
    python = os.path.join(node["venv"], "bin", "python")
    result = run_module("etcd_member_info", etcd3_cluster.connection_args(), env={"ANSIBLE_PYTHON_INTERPRETER": python})
    assert not result["failed"], result
    assert result["healthy_voting_members"] == 3


def test_roles_use_cplane_kubeadm_python_for_their_modules(node, control_plane, tmp_path):
    """control_plane_report with cplane_kubeadm_python: the venv works; a bare venv is what the modules
    ran with (their missing-library message names it), so the roles really use the variable."""
    report = os.path.join(ROOT, "playbooks", "control_plane_report.yml")
    python = os.path.join(node["venv"], "bin", "python")
    dest = tmp_path / "report.json"
    run = run_playbook(report, {"control_plane_report_become": False, "control_plane_report_dest": str(dest),
                                "cplane_kubeadm_python": python},
                       inventory=control_plane.inventory(control_plane_report_kubeconfig=control_plane.api.kubeconfig))
    assert run.rc == 0, run.output[-4000:]
    result = json.loads(dest.read_text())
    assert all(host["etcd"]["has_quorum"] for host in result.values())
    assert result["cp1"]["versions"]["api_server_version"] == "v1.12.1"

    bare = str(tmp_path / "bare")
    subprocess.run([node_python(), "-m", "venv", "--without-pip", bare], check=True)
    run = run_playbook(report, {"control_plane_report_become": False, "cplane_kubeadm_python": bare + "/bin/python"},
                       inventory=control_plane.inventory())
    etcd = run.task("Read etcd health")
    assert len(etcd) == 3, run.output[-4000:]
    for r in etcd:   # failed_when: false in the role: the failure is in the result
        assert "Failed to import the required Python library (etcd3" in r["result"]["msg"], r
        assert bare + "/bin/python" in r["result"]["msg"], r
