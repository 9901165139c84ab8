"""The collection as a user gets it: a git repository of the checkout, a built tarball, an installation.

``git_repo`` copies the checkout's files (tracked and new, not ignored: the working tree under test,
not only the last commit) into a fresh repository and commits them, so ``git+file://`` installs see
exactly what is tested, with no network.
"""
import glob
import os
import shutil
import subprocess

from tests.lab.ansible_run import BIN, ROOT

GIT_ENV = {"GIT_AUTHOR_NAME": "lab", "GIT_AUTHOR_EMAIL": "lab@example.invalid", "GIT_COMMITTER_NAME": "lab",
           "GIT_COMMITTER_EMAIL": "lab@example.invalid"}


def clean_env(collections_path=None):
    """The environment of a user's shell: no test collections path, roles path or callbacks."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env["PATH"] = BIN + os.pathsep + env.get("PATH", "")
    env["ANSIBLE_COLLECTIONS_SCAN_SYS_PATH"] = "False"
    if collections_path:
        env["ANSIBLE_COLLECTIONS_PATH"] = collections_path
    return env


def git_repo(dest):
    """A git repository at ``dest`` holding the checkout's current files; returns its git+file URL."""
    files = subprocess.run(["git", "-C", ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        src = os.path.join(ROOT, name)
        if not os.path.lexists(src) or os.path.isdir(src) or name.split("/")[0] in (".venv", ".venv-floors"):
            continue   # deleted in the working tree, or a submodule/link to a directory
        target = os.path.join(dest, name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(src, target, follow_symlinks=False)
    env = dict(os.environ, **GIT_ENV)
    for cmd in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "snapshot of the checkout"]):
        subprocess.run(["git", "-C", dest] + cmd, check=True, env=env, capture_output=True)
    return "git+file://" + os.path.abspath(dest)


def build_tarball(dest_dir):
    """``ansible-galaxy collection build`` of the checkout; returns the tarball's path."""
    subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--force", "--output-path", dest_dir,
                    ROOT], check=True, capture_output=True, text=True, env=clean_env(), timeout=600)
    return glob.glob(os.path.join(dest_dir, "cplane-kubeadm-*.tar.gz"))[0]


def install(requirements, collections_path, timeout=600):
    """``ansible-galaxy collection install -r requirements -p collections_path``; returns the process."""
    return subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "install", "-r", requirements,
                           "-p", collections_path], capture_output=True, text=True, env=clean_env(collections_path),
                          timeout=timeout,
                          check=False)
