"""Offline stand-in for pip's get-pip.py bootstrap script, used by ansible-test.

ansible-test downloads get-pip.py from a host these machines cannot reach; it uses a cached copy
when one exists.  This stand-in installs pip from the interpreter's bundled wheel (ensurepip) and
then the requested packages from the configured index.  ensurepip runs as a separate process
because, called in-process, it sets PIP_CONFIG_FILE=/dev/null and the later pip call would lose
the machine's index and certificate settings.
"""
import subprocess
import sys

GET_PIP_ONLY_FLAGS = {"--no-setuptools", "--no-wheel"}


def main():
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade"])
    args = [a for a in sys.argv[1:] if a not in GET_PIP_ONLY_FLAGS]
    if args:
        subprocess.check_call([sys.executable, "-m", "pip", "install"] + args)


if __name__ == "__main__":
    main()
