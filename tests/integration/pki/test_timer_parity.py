"""The run a systemd timer starts behaves like the interactive run that installed it.

For every role with a timer (cert_renewal, control_plane_metrics, etcd_maintenance): every option of the role's argument
spec is given a value that differs from its default; the values a run of the role sees are recorded
(a tagged task after the role, with the role's own defaults and argument validation in effect) for the
interactive run and for the command line the installed service runs.  They must be equal for every
option except the one-shot overrides and the timer's own installation settings."""
import json
import os
import shlex
import subprocess
import tempfile

import pytest
import yaml

from tests.lab.ansible_run import BIN, ROOT, ansible_env

ROLES = {
    "control_plane_metrics": {
        # The timer's run always writes the file (the installing run may only install, or remove).
        "not_inherited": {"control_plane_metrics_state", "control_plane_metrics_run"},
        "timer_prefix": "control_plane_metrics_timer",
        "install": lambda d: {"control_plane_metrics_timer_systemctl": False,
                              "control_plane_metrics_timer_unit_dir": d + "/units",
                              "control_plane_metrics_timer_config_dir": d + "/conf"},
        "service": "units/cplane-kubeadm-metrics.service",
    },
    "cert_renewal": {
        "not_inherited": {"cert_renewal_force", "cert_renewal_force_restart", "cert_renewal_unattended"},
        "timer_prefix": "cert_renewal_timer_",
        "install": lambda d: {"cert_renewal_timer_manage_systemd": False, "cert_renewal_timer_unit_dir": d + "/units",
                              "cert_renewal_timer_config_dir": d + "/conf"},
        "service": "units/cplane-cert-renewal.service",
    },
    "etcd_maintenance": {
        # The timer's run always runs (the installing run may only install), from its own host alone, unattended.
        "not_inherited": {"etcd_maintenance_force", "etcd_maintenance_force_unhealthy", "etcd_maintenance_run",
                          "etcd_maintenance_defrag_once", "etcd_maintenance_unattended"},
        "timer_prefix": "etcd_maintenance_timer",
        "install": lambda d: {"etcd_maintenance_timer_systemctl": False, "etcd_maintenance_timer_unit_dir": d + "/units",
                              "etcd_maintenance_timer_config_dir": d + "/conf"},
        "service": "units/cplane-etcd-maintenance.service",
    },
}


def argument_spec(role):
    with open(os.path.join(ROOT, "roles", role, "meta/argument_specs.yml")) as handle:
        return yaml.safe_load(handle)["argument_specs"]["main"]["options"]


def templated_defaults(role):
    with open(os.path.join(ROOT, "roles", role, "defaults/main.yml")) as handle:
        defaults = yaml.safe_load(handle)
    return {k for k, v in defaults.items() if "{{" in json.dumps(v)}


def non_default(name, spec):
    """A valid value that differs from the option's default."""
    default, kind = spec.get("default"), spec.get("type", "str")
    if spec.get("choices"):
        return next(c for c in reversed(spec["choices"]) if c != default)
    if kind == "bool":
        return not default
    if kind == "int":
        return (default or 0) + 7
    if kind == "float":
        return round((default or 0) + 0.05, 2)
    if kind == "path":
        return "/srv/parity/" + name
    if kind == "list":
        return ["parity-" + name]
    if kind == "dict":
        return {"parity": name}
    return "parity-" + name


def inherited(role):
    conf = ROLES[role]
    return sorted(n for n in argument_spec(role) if n not in conf["not_inherited"] and not n.startswith(conf["timer_prefix"]))


def playbook(directory, role, body):
    path = os.path.join(directory, "%s-%d.yml" % (role, len(os.listdir(directory))))
    with open(path, "w") as handle:
        yaml.safe_dump([dict({"hosts": "localhost", "gather_facts": False}, **body)], handle)
    return path


def ansible_playbook(args, tags=None):
    with tempfile.TemporaryDirectory() as tmp:
        results = os.path.join(tmp, "results.jsonl")
        env = ansible_env({"CPLANE_RESULTS": results})
        if tags:
            env["ANSIBLE_RUN_TAGS"] = tags
        proc = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", "localhost,", "-c", "local"] + args,
                              capture_output=True, text=True, env=env, timeout=600, check=False)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        with open(results) as handle:
            return [json.loads(line) for line in handle if line.strip()]


def recorded_values(directory, role, extra_args):
    """The value of every inherited option as a run of the role sees it (defaults, then extra vars)."""
    names = inherited(role)
    book = playbook(directory, role, {"roles": ["cplane.kubeadm." + role], "tasks": [{
        "name": "Record the role's settings", "tags": ["record"],
        "ansible.builtin.debug": {"msg": "{{ dict(names | zip(query('ansible.builtin.vars', *names))) }}"},
        "vars": {"names": names}}]})
    results = ansible_playbook([book] + extra_args, tags="record")
    return next(r["result"]["msg"] for r in results if r["task"] == "Record the role's settings")


@pytest.mark.parametrize("role", sorted(ROLES))
def test_the_timer_run_sees_the_values_of_the_run_that_installed_it(tmp_path, role):
    directory = str(tmp_path)
    derived = templated_defaults(role)
    spec = argument_spec(role)
    values = {n: non_default(n, spec[n]) for n in inherited(role) if n not in derived}
    interactive = recorded_values(directory, role, ["-e", json.dumps(values)])
    assert all(interactive[n] == v for n, v in values.items())

    install = playbook(directory, role, {"tasks": [{"ansible.builtin.include_role": {
        "name": "cplane.kubeadm." + role, "tasks_from": "timer.yml"}}]})
    assert not os.path.exists(os.path.join(directory, "units"))
    ansible_playbook([install, "-e", json.dumps(dict(values, **ROLES[role]["install"](directory)))])
    assert os.path.isdir(os.path.join(directory, "units")), "the role creates its unit directory"

    with open(os.path.join(directory, ROLES[role]["service"])) as handle:
        exec_start = next(line for line in handle.read().splitlines() if line.startswith("ExecStart="))
    command = shlex.split(exec_start[len("ExecStart="):])
    extra_args = []
    for index, arg in enumerate(command):
        if arg == "-e":
            extra_args += ["-e", command[index + 1]]
    assert any(a.startswith("@") for a in extra_args), exec_start
    timer = recorded_values(directory, role, extra_args)

    differing = sorted(n for n in interactive if interactive[n] != timer.get(n))
    assert differing == [], {n: (interactive[n], timer.get(n)) for n in differing}
    assert len(interactive) >= 20


def test_every_playbook_becomes_root_with_the_same_off_switch():
    books = sorted(f for f in os.listdir(os.path.join(ROOT, "playbooks")) if f.endswith(".yml"))
    assert books
    for book in books:
        with open(os.path.join(ROOT, "playbooks", book)) as handle:
            plays = yaml.safe_load(handle)
        for play in plays:
            if play.get("roles"):
                role = play["roles"][0]["role"].split(".")[-1]
            else:  # a play that includes the role's tasks (e.g. build's report play)
                role = next(task["ansible.builtin.include_role"]["name"] for task in play["tasks"]
                            if "ansible.builtin.include_role" in task).split(".")[-1]
            assert play.get("become") == "{{ %s_become | default(true) }}" % role, (book, play.get("become"))
    with open(os.path.join(ROOT, "README.md")) as handle:
        usage = [line for line in handle if line.startswith("ansible-playbook ")]
    assert usage and all(" -i " in line for line in usage), usage
    assert {line.split()[3] for line in usage} == {"cplane.kubeadm." + b[:-len(".yml")] for b in books}
