"""scripts/lab-binaries (tests/lab/labbuild.py): versions in one file, build modules pinned, a cache
keyed by version and Go version, failures that name the module."""
import os
import re
import stat
import subprocess

import pytest

from tests.lab import binaries, labbuild

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SCRIPT = os.path.join(ROOT, "scripts", "lab-binaries")


def test_every_version_has_a_build_module_pinned_to_it():
    entries = labbuild.load_versions()
    assert {(e["name"], e["version"]) for e in entries} >= {("etcd", binaries.latest_etcd("3.5")),
                                                            ("etcd", binaries.latest_etcd("3.6"))}
    for entry in entries:
        mdir = labbuild.module_dir(entry["name"], entry["version"])
        with open(os.path.join(mdir, "go.mod")) as handle:
            gomod = handle.read()
        assert os.path.getsize(os.path.join(mdir, "go.sum")) > 0
        for module in labbuild.COMPONENTS[entry["name"]]["modules"]:
            assert re.search(r"^\t%s v%s( // indirect)?$" % (re.escape(module), re.escape(entry["version"])), gomod,
                             re.M), module
        for binary in entry["binaries"] + entry["extra"]:
            # in a tool block, or "tool PKG" when it is the only one (go mod tidy writes it so)
            pkg = labbuild.COMPONENTS[entry["name"]]["packages"][binary]
            assert re.search(r"^(\t|tool )%s$" % re.escape(pkg), gomod, re.M), binary


def test_kubernetes_staging_modules_are_pinned_to_the_published_release():
    for version in binaries.K8S_VERSIONS:
        with open(os.path.join(labbuild.module_dir("kubernetes", version), "go.mod")) as handle:
            gomod = handle.read()
        staging = "v0." + version.split(".", 1)[1]
        pins = re.findall(r"^\t(k8s\.io/\S+) => (\S+) (\S+)$", gomod, re.M)
        assert len(pins) > 25 and all(a == b and v == staging for a, b, v in pins), pins
        assert "./staging" not in gomod


def test_version_lists_are_oldest_first_without_v():
    assert binaries.K8S_VERSIONS == tuple(sorted(binaries.K8S_VERSIONS, key=lambda v: [int(p) for p in v.split(".")]))
    assert len(binaries.K8S_VERSIONS) == 2 and not any(v.startswith("v") for v in binaries.K8S_VERSIONS)
    minors = [int(v.split(".")[1]) for v in binaries.K8S_VERSIONS]
    assert minors[1] == minors[0] + 1   # two consecutive minors, for the upgrade work
    assert binaries.ETCD_VERSIONS[0] == binaries.WHEEL_ETCD_VERSION


def test_replace_lines_map_path_replaces_to_the_required_release():
    gomod = ("module go.etcd.io/etcd/server/v3\n\nrequire (\n\tgo.etcd.io/etcd/api/v3 v3.6.16\n"
             "\tgithub.com/x/y v1.0.0 // indirect\n)\n\nreplace (\n\tgo.etcd.io/etcd/api/v3 => ../api\n"
             "\tgo.etcd.io/etcd/unrequired/v3 => ../unrequired\n\tgithub.com/x/y => github.com/x/y v1.0.1\n)\n")
    assert labbuild._replace_lines(gomod, lambda m, v: v) == [
        "\tgo.etcd.io/etcd/api/v3 => go.etcd.io/etcd/api/v3 v3.6.16"]


def test_cache_path_is_keyed_by_go_version_and_component_version(monkeypatch, tmp_path):
    monkeypatch.setenv("LAB_BINARIES_CACHE", str(tmp_path))
    monkeypatch.setattr(labbuild, "go_version", lambda: "go1.99.1")
    assert labbuild.binary_path("etcd", "3.6.16", "etcdutl") == str(tmp_path / "go1.99.1" / "etcd-3.6.16" / "etcdutl")
    monkeypatch.delenv("LAB_BINARIES_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert labbuild.cache_root() == str(tmp_path / "xdg" / "cplane-kubeadm" / "lab-binaries")


def test_lab_binary_names_the_script_when_not_built(monkeypatch, tmp_path):
    monkeypatch.setenv("LAB_BINARIES_CACHE", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="kubeadm %s is not built .*run scripts/lab-binaries"
                       % re.escape(binaries.K8S_VERSIONS[-1])):
        binaries.lab_binary("kubeadm", binaries.K8S_VERSIONS[-1])
    with pytest.raises(LookupError, match="versions.toml"):
        binaries.lab_binary("kubeadm", "1.2.3")
    assert binaries.lab_binary("etcdctl", "3.5.1") == binaries.etcd_binary("etcdctl")


def test_image_tags_pick_the_built_etcd_else_the_wheel():
    latest = binaries.latest_etcd("3.6")
    assert binaries.etcd_version_of_image("registry.k8s.io/etcd:%s-0" % latest) == latest
    assert binaries.etcd_version_of_image("registry.k8s.io/etcd:3.5.15-0") == "3.5.1"
    assert binaries.etcd_version_of_image(None) == "3.5.1"


def _fake_go(tmp_path, build_exit):
    """A `go` that answers `env GOVERSION` and fails (or succeeds) at `build`."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    go = bindir / "go"
    go.write_text("#!/bin/sh\n"
                  "case \"$1\" in\n"
                  "  env) echo go1.99.1 ;;\n"
                  "  list) echo '{\"Version\":\"v1.37.2\",\"Time\":\"2026-10-27T12:01:04Z\"}' ;;\n"
                  "  build) echo \"$*\" >> %s/calls\n"
                  "         if [ %d -ne 0 ]; then echo 'cannot find module providing package' >&2; exit %d; fi\n"
                  "         while [ \"$1\" != -o ]; do shift; done; printf bin > \"$2\" ;;\n"
                  "esac\n" % (tmp_path, build_exit, build_exit))
    go.chmod(go.stat().st_mode | stat.S_IXUSR)
    env = dict(os.environ, PATH="%s:%s" % (bindir, os.environ["PATH"]), LAB_BINARIES_CACHE=str(tmp_path / "cache"))
    return env


def test_a_failed_build_names_the_module_and_the_error_and_exits_non_zero(tmp_path):
    env = _fake_go(tmp_path, build_exit=1)
    proc = subprocess.run([SCRIPT, "--list", "etcd-%s" % binaries.latest_etcd("3.6")], env=env, check=False,
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert "FAILED: etcd %s (module go.etcd.io/etcd/server/v3@v%s)" % ((binaries.latest_etcd("3.6"),) * 2) in proc.stderr
    assert "cannot find module providing package" in proc.stderr
    assert proc.stdout == ""
    assert not os.listdir(tmp_path / "cache" / "go1.99.1" / ("etcd-" + binaries.latest_etcd("3.6")))


def test_second_run_builds_nothing_and_list_prints_name_version_path(tmp_path):
    env = _fake_go(tmp_path, build_exit=0)
    version = binaries.K8S_VERSIONS[-1]
    first = subprocess.run([SCRIPT, "--list", "kubernetes-" + version], env=env, capture_output=True, text=True, check=False)
    assert first.returncode == 0, first.stderr
    lines = [line.split(" ") for line in first.stdout.splitlines()]
    names = [entry["binaries"] for entry in labbuild.load_versions()
             if entry["name"] == "kubernetes" and entry["version"] == version][0]
    assert [line[0] for line in lines] == list(names)
    for name, ver, path in lines:
        assert ver == version and path == str(tmp_path / "cache" / "go1.99.1" / ("kubernetes-" + version) / name)
        assert os.access(path, os.X_OK)
    assert "building kubeadm %s" % version in first.stderr
    with open(tmp_path / "calls") as handle:
        calls = handle.read().splitlines()
    assert len(calls) == len(names)
    assert "-X k8s.io/component-base/version.gitVersion=v%s" % version in calls[0]
    second = subprocess.run([SCRIPT, "--list", "kubernetes-" + version], env=env, capture_output=True, text=True, check=False)
    assert second.returncode == 0 and second.stdout == first.stdout
    assert "0 built" in second.stderr and "building" not in second.stderr
    with open(tmp_path / "calls") as handle:
        assert len(handle.read().splitlines()) == len(names)
