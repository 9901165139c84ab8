"""Terraform for the lab: the built terraform, a filesystem mirror of the ansible/ansible provider,
the CLI configuration that installs providers from it only, and lab nodes as Terraform variables.

``terraform init`` then needs no network: the CLI configuration has a ``filesystem_mirror`` and no
``direct`` block, so Terraform looks nowhere else (Terraform's CLI configuration docs,
"Provider Installation": with an explicit ``provider_installation`` block, only the listed
methods are used).  The mirror uses the unpacked layout,
``HOSTNAME/NAMESPACE/TYPE/VERSION/TARGET/terraform-provider-TYPE_vVERSION``
(internal/getproviders/filesystem_search.go in hashicorp/terraform v1.5.7).

Used by tests/integration/terraform (docs/terraform.md).
"""
import json
import os
import platform
import shutil
import subprocess
import sys

from tests.lab import labbuild
from tests.lab.ansible_run import ansible_env
from tests.lab.binaries import etcd_binary, lab_binary

PROVIDER_SOURCE = "registry.terraform.io/ansible/ansible"
TERRAFORM_VERSION = labbuild.versions_of("terraform")[-1]
PROVIDER_VERSION = labbuild.versions_of("terraform-provider-ansible")[-1]
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def terraform_binary():
    return lab_binary("terraform", TERRAFORM_VERSION)


def target_platform():
    """Terraform's name of this machine's platform, e.g. ``linux_amd64``."""
    return "%s_%s" % (sys.platform, _ARCH.get(platform.machine(), platform.machine()))


def write_mirror(directory):
    """A filesystem mirror holding the built provider, and a CLI configuration that installs from it
    only.  Returns the CLI configuration's path (for ``TF_CLI_CONFIG_FILE``)."""
    mirror = os.path.join(directory, "providers")
    target = os.path.join(mirror, PROVIDER_SOURCE, PROVIDER_VERSION, target_platform())
    os.makedirs(target, exist_ok=True)
    # Copied, not linked: Terraform links the package directory into .terraform/providers and
    # hashes what it finds there for .terraform.lock.hcl.
    shutil.copy2(lab_binary("terraform-provider-ansible", PROVIDER_VERSION),
                 os.path.join(target, "terraform-provider-ansible_v%s" % PROVIDER_VERSION))
    config = os.path.join(directory, "terraform.rc")
    with open(config, "w") as handle:
        handle.write(cli_config(mirror))
    return config


def cli_config(mirror):
    """The CLI configuration of an air-gapped site (docs/terraform.md shows the same)."""
    return ("disable_checkpoint = true\n\n"
            "provider_installation {\n"
            "  filesystem_mirror {\n"
            "    path    = %s\n"
            "    include = [\"%s\"]\n"
            "  }\n"
            "}\n") % (json.dumps(mirror), PROVIDER_SOURCE)


def environment(cli_config_file, extra=None):
    """What Terraform runs with: the CLI configuration, no update check, no colours, Ansible's test
    settings (the collection through ANSIBLE_COLLECTIONS_PATH), and a proxy where nothing listens,
    so any attempt to reach the network fails instead of succeeding quietly."""
    env = ansible_env(extra)
    env.pop("TF_PLUGIN_CACHE_DIR", None)
    env.update({
        "TF_CLI_CONFIG_FILE": cli_config_file,
        "TF_IN_AUTOMATION": "1",
        "TF_INPUT": "0",
        "CHECKPOINT_DISABLE": "1",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "",
    })
    # Plain text (Terraform 1.5 ignores NO_COLOR); TF_CLI_ARGS_<command> per command, since not
    # every command accepts -no-color.
    for command in ("init", "validate", "plan", "apply", "destroy", "output", "show"):
        env["TF_CLI_ARGS_" + command] = "-no-color"
    return env


class Terraform(object):
    """``terraform`` in one working directory (a copy of an example)."""

    def __init__(self, workdir, env, timeout=900):
        self.workdir = workdir
        self.env = env
        self.timeout = timeout

    def run(self, *args, check=True):
        proc = subprocess.run([terraform_binary(), *args], cwd=self.workdir, env=self.env,
                              capture_output=True, text=True, timeout=self.timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError("terraform %s failed (rc=%s)\nstdout:\n%s\nstderr:\n%s"
                                 % (" ".join(args), proc.returncode, proc.stdout[-6000:], proc.stderr[-6000:]))
        return proc

    def output(self):
        return {k: v["value"] for k, v in json.loads(self.run("output", "-json").stdout).items()}


def copy_example(example_dir, directory):
    """The example with its shared script beside it, as a user copies it (state stays out of the tree)."""
    dest = os.path.join(directory, os.path.basename(example_dir))
    shutil.copytree(example_dir, dest)
    script = os.path.join(os.path.dirname(example_dir), "run-playbook.sh")
    shutil.copy2(script, os.path.join(directory, "run-playbook.sh"))
    return dest


def host_vars(member, directory):
    """One lab node's variables for control_plane_report and etcd_maintenance, all strings (the
    provider passes host variables as extra_vars, a map of string)."""
    etcd_pki = os.path.join(member.pki_dir, "etcd")
    tls = {"ca_cert": os.path.join(etcd_pki, "ca.crt"),
           "client_cert": os.path.join(etcd_pki, "healthcheck-client.crt"),
           "client_key": os.path.join(etcd_pki, "healthcheck-client.key")}
    values = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "control_plane_report_etcd_endpoints": member.client_url,
        "control_plane_report_manifests_dir": member.manifests_dir,
        "control_plane_report_pki_dir": member.pki_dir,
        "control_plane_report_kubeconfig_dir": os.path.join(member.root, "etc/kubernetes"),
        "control_plane_report_kubelet_pki_dir": os.path.join(member.root, "var/lib/kubelet/pki"),
        "control_plane_report_etcd_data_dir": member.data_dir,
        "control_plane_report_bundle_node_dir": os.path.join(directory, "node-evidence", member.name),
        "etcd_maintenance_endpoints": member.client_url,
        "etcd_maintenance_snapshot_dir": os.path.join(directory, "snapshots", member.name),
    }
    for key, path in tls.items():
        values["control_plane_report_etcd_" + key] = path
        values["etcd_maintenance_" + key] = path
    return values


def lab_variables(lab, directory):
    """``control_plane_hosts`` and ``playbook_vars`` of the examples for a lab's nodes."""
    return {
        "control_plane_hosts": {m.name: host_vars(m, directory) for m in lab.members},
        "playbook_vars": {
            # the lab runs as the test's user, without an API server
            "control_plane_report_become": "false",
            "etcd_maintenance_become": "false",
            "control_plane_report_versions": "false",
            "etcd_maintenance_etcdutl_path": etcd_binary("etcdutl", lab.etcd_version),
        },
    }
