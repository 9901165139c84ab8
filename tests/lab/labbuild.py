"""Builds the lab's real programs (etcd 3.5/3.6, kubeadm, kube-apiserver, kubectl, ..., terraform
and its ansible provider) from the Go module proxy into a cache outside the checkout.

One place for the versions: ``tests/lab/go/versions.toml``.  Each version has a build module of
its own in ``tests/lab/go/<component>-<version>/`` (go.mod + go.sum, committed): it requires the
program's module and pins each staging or sibling module to the published release, because
``go install MODULE@vX`` refuses modules whose go.mod has ``replace`` directives (k8s.io/kubernetes
replaces its staging modules by paths, etcd its sibling modules) and replace directives of a
dependency are ignored by the module that requires it
(https://go.dev/ref/mod#go-mod-file-replace).

Standard library only: ``scripts/lab-binaries`` runs this with the system Python before the
virtual environment exists; ``tests/lab/binaries.py`` imports it to find the built programs.
"""
import argparse
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib

GO_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "go")
VERSIONS_FILE = os.path.join(GO_DIR, "versions.toml")

# Where each component's programs live, and which modules hold them.
COMPONENTS = {
    "etcd": {
        "modules": ("go.etcd.io/etcd/server/v3", "go.etcd.io/etcd/etcdctl/v3",
                    "go.etcd.io/etcd/etcdutl/v3"),
        # etcd's main packages are the module roots (server/main.go, etcdctl/main.go, ...).
        "packages": {"etcd": "go.etcd.io/etcd/server/v3",
                     "etcdctl": "go.etcd.io/etcd/etcdctl/v3",
                     "etcdutl": "go.etcd.io/etcd/etcdutl/v3"},
    },
    "kubernetes": {
        "modules": ("k8s.io/kubernetes",),
        "packages": {name: "k8s.io/kubernetes/cmd/" + name for name in (
            "kubeadm", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl",
            "kubelet", "kube-proxy")},
    },
    # Terraform 1.5.x, the last release under the MPL (1.6 moved to the BUSL): one module, no
    # replace directives, main package at the module root; version/version.go carries the
    # version itself, so no -X flags are needed.
    "terraform": {
        "modules": ("github.com/hashicorp/terraform",),
        "packages": {"terraform": "github.com/hashicorp/terraform"},
    },
    # The ansible/ansible provider (registry.terraform.io/ansible/ansible); main package at the
    # module root.  Its release build (.goreleaser.yml) adds only -X main.version/commit, which
    # its main.go does not declare.
    "terraform-provider-ansible": {
        "modules": ("github.com/ansible/terraform-provider-ansible",),
        "packages": {"terraform-provider-ansible": "github.com/ansible/terraform-provider-ansible"},
    },
}


class BuildError(Exception):
    pass


def load_versions(path=VERSIONS_FILE):
    """The [[component]] tables of versions.toml, in file order."""
    with open(path, "rb") as f:
        data = tomllib.load(f)
    entries = []
    for entry in data.get("component", []):
        name, version = entry["name"], entry["version"]
        if name not in COMPONENTS:
            raise BuildError(f"{path}: unknown component {name!r} (known: {', '.join(COMPONENTS)})")
        unknown = set(entry.get("binaries", ())) | set(entry.get("extra", ()))
        unknown -= set(COMPONENTS[name]["packages"])
        if unknown:
            raise BuildError(f"{path}: {name} {version}: unknown binaries {sorted(unknown)}")
        entries.append({"name": name, "version": version,
                        "binaries": tuple(entry.get("binaries", ())),
                        "extra": tuple(entry.get("extra", ()))})
    return entries


def versions_of(component, entries=None):
    """The pinned versions of one component, oldest first (tuple of "X.Y.Z" strings)."""
    entries = load_versions() if entries is None else entries
    found = [e["version"] for e in entries if e["name"] == component]
    return tuple(sorted(found, key=lambda v: tuple(int(p) for p in v.split("."))))


def module_dir(component, version):
    return os.path.join(GO_DIR, f"{component}-{version}")


def go_command():
    found = shutil.which("go")
    if found:
        return found
    if os.access("/usr/local/go/bin/go", os.X_OK):
        return "/usr/local/go/bin/go"
    raise BuildError("go is not installed (not on PATH, not in /usr/local/go/bin)")


def go_env():
    env = dict(os.environ)
    # Never download another toolchain because a go.mod asks for a newer one: the cache is keyed
    # by the Go version that really builds.
    env["GOTOOLCHAIN"] = "local"
    env["CGO_ENABLED"] = "0"
    env["GOWORK"] = "off"
    return env


@functools.lru_cache(maxsize=None)
def go_version():
    """Version of the local Go toolchain, e.g. "go1.26.8" (the cache key)."""
    out = subprocess.run([go_command(), "env", "GOVERSION"], env=go_env(), check=True,
                         capture_output=True, text=True).stdout.strip()
    return out


def cache_root():
    if os.environ.get("LAB_BINARIES_CACHE"):
        return os.environ["LAB_BINARIES_CACHE"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "cplane-kubeadm", "lab-binaries")


def binary_path(component, version, binary):
    return os.path.join(cache_root(), go_version(), f"{component}-{version}", binary)


def ldflags(component, version):
    flags = ["-s", "-w"]
    if component == "kubernetes":
        # What hack/lib/version.sh sets in a release build: without it the programs report
        # v0.0.0-master and kubeadm refuses to work with a control plane of its own version.
        major, minor = version.split(".")[:2]
        for key, value in (("gitVersion", "v" + version), ("gitMajor", major),
                           ("gitMinor", minor), ("gitTreeState", "clean"),
                           ("buildDate", module_time(component, version))):
            for pkg in ("k8s.io/client-go/pkg/version", "k8s.io/component-base/version"):
                flags.append(f"-X {pkg}.{key}={value}")
    return " ".join(flags)


def module_time(component, version):
    """Release time of the program's module as the proxy reports it (a reproducible buildDate)."""
    module = COMPONENTS[component]["modules"][0]
    out = _go(["list", "-m", "-json", f"{module}@v{version}"], cwd=module_dir(component, version),
              what=f"{module}@v{version}")
    return json.loads(out).get("Time", "1970-01-01T00:00:00Z")


def build_tags(component):
    # Kubernetes' release builds use these tags (hack/lib/golang.sh); etcd's use none.
    return "selinux,notest,grpcnotrace" if component == "kubernetes" else ""


def _go(args, cwd, what, env=None):
    proc = subprocess.run([go_command(), *args], cwd=cwd, env=env or go_env(),
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BuildError(f"{what}: go {' '.join(args[:2])} failed in {cwd}:\n"
                         f"{proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def build(component, version, binary, log=None):
    """Builds one binary into the cache unless it is there; returns its path."""
    dest = binary_path(component, version, binary)
    if os.access(dest, os.X_OK):
        return dest
    mdir = module_dir(component, version)
    if not os.path.exists(os.path.join(mdir, "go.mod")):
        raise BuildError(f"{component} {version}: no build module {mdir} "
                         f"(create it: scripts/lab-binaries --new-module {component} {version})")
    pkg = COMPONENTS[component]["packages"][binary]
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    start = time.monotonic()
    if log:
        log(f"lab-binaries: building {binary} {version} ({pkg})")
    # Built beside its final name, then renamed: a killed build never leaves a half binary that
    # the next run would take as built.
    fd, tmp = tempfile.mkstemp(prefix=f".{binary}.", dir=os.path.dirname(dest))
    os.close(fd)
    try:
        args = ["build", "-trimpath", "-ldflags", ldflags(component, version), "-o", tmp]
        if build_tags(component):
            args += ["-tags", build_tags(component)]
        _go(args + [pkg], cwd=mdir, what=f"{binary} {version} (module {pkg}@v{version})")
        os.chmod(tmp, 0o755)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    if log:
        log(f"lab-binaries: built {binary} {version} in {time.monotonic() - start:.0f}s")
    return dest


def wanted(entries, everything):
    for entry in entries:
        names = entry["binaries"] + (entry["extra"] if everything else ())
        for binary in names:
            yield entry["name"], entry["version"], binary


def _replace_lines(gomod_text, version_for):
    """``M => M vX`` for each path replace of a program's go.mod whose module it requires."""
    required = dict(re.findall(r"^\s*(?:require\s+)?(\S+)\s+(v\S+)(?:\s*//.*)?$", gomod_text,
                               re.MULTILINE))
    lines = []
    for module, target in re.findall(r"^\s*(?:replace\s+)?(\S+)\s+=>\s+(\.\.?/\S*)\s*$",
                                     gomod_text, re.MULTILINE):
        if module in required:
            lines.append(f"\t{module} => {module} {version_for(module, required[module])}")
    return lines


def new_module(component, version, log=print):
    """Writes tests/lab/go/<component>-<version>/go.mod and resolves go.sum (go mod tidy)."""
    spec = COMPONENTS[component]
    mdir = module_dir(component, version)
    os.makedirs(mdir, exist_ok=True)
    tag = "v" + version
    if component == "kubernetes":
        # Staging modules are published as v0.<minor>.<patch> for kubernetes v1.<minor>.<patch>.
        staging = "v0." + version.split(".", 1)[1]

        def version_for(module, required):
            return staging if required == "v0.0.0" else required
    else:
        def version_for(module, required):
            return required
    replaces = set()
    for module in spec["modules"]:
        info = json.loads(_go(["mod", "download", "-json", f"{module}@{tag}"], cwd=mdir,
                              what=f"{module}@{tag}"))
        if info.get("Error"):
            raise BuildError(f"{module}@{tag}: {info['Error']}")
        with open(info["GoMod"], encoding="utf-8") as f:
            replaces.update(_replace_lines(f.read(), version_for))
    tools = "\n".join(f"\t{pkg}" for pkg in sorted(set(spec["packages"].values())))
    requires = "\n".join(f"\t{module} {tag}" for module in spec["modules"])
    text = (f"// Build module for {component} {version}: written by scripts/lab-binaries"
            f" --new-module, pinned by go.sum.\nmodule cplane.kubeadm/lab/{component}\n\n"
            f"go 1.24\n\ntool (\n{tools}\n)\n\nrequire (\n{requires}\n)\n\n"
            f"replace (\n" + "\n".join(sorted(replaces)) + "\n)\n")
    with open(os.path.join(mdir, "go.mod"), "w", encoding="utf-8") as f:
        f.write(text)
    log(f"lab-binaries: resolving {mdir} (go mod tidy)")
    _go(["mod", "tidy"], cwd=mdir, what=f"{component} {version}")
    return mdir


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="scripts/lab-binaries",
        description="Build the lab's real programs (versions: tests/lab/go/versions.toml) into "
                    f"{cache_root()}/<go version>/; builds only what is missing.")
    parser.add_argument("--list", action="store_true",
                        help="print one line per binary: NAME VERSION PATH")
    parser.add_argument("--all", action="store_true",
                        help="also build the 'extra' binaries (not used by the tests)")
    parser.add_argument("--new-module", nargs=2, metavar=("COMPONENT", "VERSION"),
                        help="write the build module (go.mod, go.sum) for a new version")
    parser.add_argument("only", nargs="*", metavar="COMPONENT[-VERSION]",
                        help="build only these (e.g. etcd, kubernetes-1.37.2); default: all")
    args = parser.parse_args(argv)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    try:
        if args.new_module:
            new_module(*args.new_module, log=log)
            return 0
        entries = [e for e in load_versions()
                   if not args.only or {e["name"], f"{e['name']}-{e['version']}"} & set(args.only)]
        if args.only and not entries:
            raise BuildError(f"nothing in {VERSIONS_FILE} matches {' '.join(args.only)}")
        start = time.monotonic()
        built = []
        for component, version, binary in wanted(entries, args.all):
            before = os.access(binary_path(component, version, binary), os.X_OK)
            path = build(component, version, binary, log=log)
            if not before:
                built.append(binary)
            if args.list:
                print(f"{binary} {version} {path}", flush=True)
        log(f"lab-binaries: {len(built)} built, go {go_version()}, "
            f"{time.monotonic() - start:.0f}s, cache {cache_root()}")
    except BuildError as exc:
        log(f"lab-binaries: FAILED: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
