"""A double of systemd's ``systemctl`` on a lab node, for unit files it finds there (the kubelet).

Lab nodes have no systemd (they are namespaces, not machines).  kubeadm drives the kubelet through
``systemctl`` (cmd/kubeadm/app/util/initsystem/initsystem_unix.go: ``daemon-reload``, ``start``,
``restart``, ``stop``, ``status`` (for "Loaded: not-found"), ``is-enabled``, ``is-active``) and
Ansible's ``ansible.builtin.systemd_service`` through ``systemctl show <unit>`` (LoadState,
ActiveState), ``is-enabled``, ``enable``/``disable`` and the actions.  This double answers those
for units whose file exists in the node's ``/etc/systemd/system`` (``<unit>.service`` plus drop-ins
``<unit>.service.d/*.conf``, read in order): ``ExecStart=`` (an empty one resets), ``Environment=``,
``EnvironmentFile=`` (``-`` prefix: optional), ``Restart=`` and ``RestartSec=``; ``$VAR`` expands to
the variable's words, ``${VAR}`` inside a word to its text (systemd.service(5), "Command lines").

A started unit runs under a supervisor process (``systemctl __supervise <unit>``, detached) that
restarts the program after ``RestartSec`` when it exits and ``Restart=always`` (what makes the
kubelet crash-loop until kubeadm has written its configuration), and stops it with SIGTERM (SIGKILL
after 90 s).  State is under the node's /run/cplane-lab-node/systemd.  ``enable`` makes the
``multi-user.target.wants`` symlink as systemd does.  Everything else (other units, timers,
dependencies, ``--user``) is not modelled; unknown units are ``not-found``.
"""
import os
import re
import shlex
import signal
import subprocess
import sys
import time

UNIT_DIR = "/etc/systemd/system"
STATE_DIR = "/run/cplane-lab-node/systemd"
WANTS = os.path.join(UNIT_DIR, "multi-user.target.wants")
STOP_TIMEOUT = 90.0


def systemctl_launcher(python=None):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return ("#!%s\n# cplane lab: a double of systemctl for the kubelet unit (tests/lab/node_systemctl.py)\n"
            "import sys\nsys.path.insert(0, %r)\nfrom tests.lab.node_systemctl import main\n"
            "sys.exit(main(sys.argv[1:]))\n" % (python or sys.executable, root))


def unit_name(name):
    return name if "." in name else name + ".service"


def unit_files(unit):
    main_file = os.path.join(UNIT_DIR, unit)
    if not os.path.isfile(main_file):
        return []
    dropin = main_file + ".d"
    extra = sorted(os.path.join(dropin, f) for f in os.listdir(dropin) if f.endswith(".conf")) \
        if os.path.isdir(dropin) else []
    return [main_file] + extra


def _unquote_env(value):
    """Environment="A=b c" "D=e" -> [("A", "b c"), ("D", "e")]."""
    pairs = []
    for word in shlex.split(value):
        key, _sep, val = word.partition("=")
        pairs.append((key, val))
    return pairs


def load_unit(unit):
    """{exec_start, environment, environment_files, restart, restart_sec, files} or None."""
    files = unit_files(unit)
    if not files:
        return None
    spec = {"exec_start": None, "environment": [], "environment_files": [], "restart": "no", "restart_sec": 0.1,
            "files": files, "description": unit}
    for path in files:
        with open(path) as handle:
            for raw in handle:
                line = raw.strip()
                if not line or line.startswith(("#", ";", "[")) or "=" not in line:
                    continue
                key, _sep, value = line.partition("=")
                key, value = key.strip(), value.strip()
                if key == "ExecStart":
                    spec["exec_start"] = value or None
                elif key == "Environment":
                    spec["environment"].extend(_unquote_env(value))
                elif key == "EnvironmentFile":
                    spec["environment_files"].append(value)
                elif key == "Restart":
                    spec["restart"] = value
                elif key == "RestartSec":
                    spec["restart_sec"] = float(value.rstrip("s") or 0)
                elif key == "Description":
                    spec["description"] = value
    return spec


def read_env_file(path):
    env = {}
    with open(path) as handle:
        for raw in handle:
            line = raw.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            key, _sep, value = line.partition("=")
            words = shlex.split(value)
            env[key.strip()] = " ".join(words) if len(words) != 1 else words[0]
    return env


def command_line(spec):
    """The argv and environment of ExecStart, variables expanded as systemd does."""
    env = dict(spec["environment"])
    for entry in spec["environment_files"]:
        optional = entry.startswith("-")
        path = entry.lstrip("-")
        try:
            env.update(read_env_file(path))
        except OSError:
            if not optional:
                raise
    argv = []
    for word in shlex.split(spec["exec_start"] or ""):
        whole = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
        if whole:
            argv.extend(env.get(whole.group(1), "").split())
            continue
        argv.append(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: env.get(m.group(1), ""), word))
    if argv and argv[0][:1] in "-@+!":
        argv[0] = argv[0].lstrip("-@+!")
    return argv, env


# -- state -------------------------------------------------------------------------------------
def _state(unit, name):
    return os.path.join(STATE_DIR, "%s.%s" % (unit, name))


def _read_int(path):
    try:
        with open(path) as handle:
            return int(handle.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def _write_text(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as handle:
        handle.write(text)
    os.replace(path + ".tmp", path)


def _alive(pid):
    if not pid:
        return False
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def supervisor_pid(unit):
    pid = _read_int(_state(unit, "supervisor"))
    return pid if _alive(pid) else 0


def main_pid(unit):
    pid = _read_int(_state(unit, "main"))
    return pid if _alive(pid) and supervisor_pid(unit) else 0


def active_state(unit):
    if not supervisor_pid(unit):
        return "inactive", "dead"
    if main_pid(unit):
        return "active", "running"
    return "activating", "auto-restart"


def enabled(unit):
    return os.path.lexists(os.path.join(WANTS, unit))


# -- actions -----------------------------------------------------------------------------------
def start(unit):
    if supervisor_pid(unit):
        return 0
    if load_unit(unit) is None:
        print("Failed to start %s: Unit %s not found." % (unit, unit), file=sys.stderr)
        return 5
    os.makedirs(STATE_DIR, exist_ok=True)
    with open(_state(unit, "log"), "ab") as log:
        proc = subprocess.Popen([sys.executable, os.path.abspath(sys.argv[0]), "__supervise", unit],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True)
    _write_text(_state(unit, "supervisor"), str(proc.pid))
    # Type=simple: start returns once the main process is forked
    deadline = time.monotonic() + 30
    while not main_pid(unit) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    return 0


def stop(unit):
    pid = supervisor_pid(unit)
    if not pid:
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return 0


def supervise(unit):
    stopping = []

    def on_term(_signum, _frame):
        stopping.append(True)

    signal.signal(signal.SIGTERM, on_term)
    restarts = 0
    while not stopping:
        spec = load_unit(unit)
        argv, env = command_line(spec)
        # systemd starts services with a clean environment plus the unit's
        clean = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
                 "HOME": "/root"}
        child = subprocess.Popen(argv, env=dict(clean, **env), stdin=subprocess.DEVNULL)
        _write_text(_state(unit, "main"), str(child.pid))
        print("%s started %s (pid %d): %s" % (time.strftime("%H:%M:%S"), unit, child.pid, " ".join(argv)), flush=True)
        while child.poll() is None and not stopping:
            time.sleep(0.1)
        if stopping:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            break
        print("%s %s exited with %s" % (time.strftime("%H:%M:%S"), unit, child.returncode), flush=True)
        _write_text(_state(unit, "main"), "0")
        if spec["restart"] not in ("always", "on-failure") or (spec["restart"] == "on-failure" and child.returncode == 0):
            break
        deadline = time.monotonic() + spec["restart_sec"]
        while time.monotonic() < deadline and not stopping:
            time.sleep(0.1)
        restarts += 1
        _write_text(_state(unit, "restarts"), str(restarts))
    _write_text(_state(unit, "main"), "0")
    return 0


def show(unit):
    spec = load_unit(unit)
    active, sub = active_state(unit)
    props = {"Id": unit, "Names": unit, "Type": "simple", "Restart": spec["restart"] if spec else "no",
             "LoadState": "loaded" if spec else "not-found", "ActiveState": active, "SubState": sub,
             "MainPID": str(main_pid(unit)), "ExecMainPID": str(main_pid(unit)),
             "NRestarts": str(_read_int(_state(unit, "restarts"))),
             "UnitFileState": ("enabled" if enabled(unit) else "disabled") if spec else "",
             "FragmentPath": spec["files"][0] if spec else "", "DropInPaths": " ".join(spec["files"][1:]) if spec else "",
             "Description": spec["description"] if spec else unit}
    print("\n".join("%s=%s" % item for item in props.items()))
    return 0


def status(unit):
    spec = load_unit(unit)
    if spec is None:
        print("Unit %s could not be found." % unit, file=sys.stderr)
        return 4
    active, sub = active_state(unit)
    print("* %s - %s\n     Loaded: loaded (%s; %s)\n     Active: %s (%s)\n   Main PID: %s"
          % (unit, spec["description"], spec["files"][0], "enabled" if enabled(unit) else "disabled", active, sub,
             main_pid(unit)))
    return 0 if active == "active" else 3


def main(argv):
    if "--version" in argv:
        print("systemd 252 (cplane lab double)")
        return 0
    args = [a for a in argv if not a.startswith("-")]
    now = "--now" in argv
    if not args:
        print("lab systemctl double: no command", file=sys.stderr)
        return 1
    verb, units = args[0], [unit_name(u) for u in args[1:]]
    if verb == "__supervise":
        return supervise(units[0])
    if verb in ("daemon-reload", "daemon-reexec"):
        return 0
    rc = 0
    for unit in units:
        if verb == "start":
            rc = start(unit) or rc
        elif verb == "stop":
            rc = stop(unit) or rc
        elif verb in ("restart", "reload-or-restart", "try-restart", "reload"):
            if verb == "try-restart" and not supervisor_pid(unit):
                continue
            stop(unit)
            rc = start(unit) or rc
        elif verb == "is-active":
            state = active_state(unit)[0] if load_unit(unit) else "inactive"
            print(state)
            rc = rc or (0 if state == "active" else 3)
        elif verb == "is-enabled":
            if load_unit(unit) is None:
                print("Failed to get unit file state for %s: No such file or directory" % unit, file=sys.stderr)
                rc = 1
            else:
                print("enabled" if enabled(unit) else "disabled")
                rc = rc or (0 if enabled(unit) else 1)
        elif verb in ("enable", "disable"):
            if load_unit(unit) is None:
                print("Failed to %s unit: Unit file %s does not exist." % (verb, unit), file=sys.stderr)
                return 1
            link = os.path.join(WANTS, unit)
            if verb == "enable" and not os.path.lexists(link):
                os.makedirs(WANTS, exist_ok=True)
                os.symlink(os.path.join(UNIT_DIR, unit), link)
                print("Created symlink %s -> %s." % (link, os.path.join(UNIT_DIR, unit)))
            elif verb == "disable" and os.path.lexists(link):
                os.unlink(link)
                print("Removed %s." % link)
            if now:
                rc = (start(unit) if verb == "enable" else stop(unit)) or rc
        elif verb == "show":
            rc = show(unit) or rc
        elif verb == "status":
            rc = status(unit) or rc
        elif verb == "list-unit-files":
            pattern = re.compile("^" + re.escape(args[1 + units.index(unit)].split("*")[0]))
            found = [u for u in sorted(os.listdir(UNIT_DIR)) if u.endswith(".service") and pattern.match(u)] \
                if os.path.isdir(UNIT_DIR) else []
            for name in found:
                print("%s %s" % (name, "enabled" if enabled(name) else "disabled"))
            print("\n%d unit files listed." % len(found))
            rc = rc or (0 if found else 1)
        else:
            print("Unknown command verb %s (the lab's systemctl double knows only the kubelet's)." % verb,
                  file=sys.stderr)
            return 1
    return rc
