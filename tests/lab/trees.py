"""Fingerprints of directory trees, for "byte-identical after check mode / a second run" assertions."""
import hashlib
import os


def tree_digest(root):
    """{relative path: (sha256, mode)} of every file below ``root``."""
    result = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as handle:
                digest = hashlib.sha256(handle.read()).hexdigest()
            result[os.path.relpath(path, root)] = (digest, os.stat(path).st_mode & 0o7777)
    return result
