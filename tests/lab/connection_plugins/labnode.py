"""Ansible connection plugin of the lab: runs tasks inside a lab node's namespaces (tests/lab/nodes.py)."""
from __future__ import annotations

DOCUMENTATION = """
    name: labnode
    short_description: run tasks inside a cplane lab node (mount, network and UTS namespaces)
    description:
        - Test-only. Runs commands and copies files inside the namespaces of a lab node's holder process
          with C(nsenter --target <pid> --mount --net --uts), the way community.docker.nsenter does for a
          container. The node sees its own /etc/kubernetes, /var/lib/etcd, /var/lib/kubelet, /usr/local/bin ...
          so the collection's roles run there unchanged.
        - Privilege escalation is accepted and ignored (the lab runs as root).
    author: cplane lab
    options:
        pid:
            description: The pid of the node's holder process.
            type: int
            required: true
            vars:
                - name: ansible_labnode_pid
        path:
            description: PATH inside the node (its own /usr/local/bin first).
            type: str
            default: /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
            vars:
                - name: ansible_labnode_path
"""

import os
import subprocess

from ansible.errors import AnsibleError, AnsibleFileNotFound
from ansible.module_utils.common.text.converters import to_bytes
from ansible.plugins.connection import ConnectionBase
from ansible.utils.display import Display

display = Display()


class Connection(ConnectionBase):
    transport = "labnode"
    has_pipelining = True

    def _connect(self):
        if not self._connected:
            pid = self.get_option("pid")
            if not os.path.exists("/proc/%d/ns/mnt" % int(pid)):
                raise AnsibleError("lab node holder %s is gone (the lab node was stopped)" % pid)
            self._connected = True
        return self

    def set_become_plugin(self, plugin):
        """The lab runs as root: become is a no-op inside a node (and sudo may not exist)."""
        self.become = None

    def _nsenter(self, argv):
        return ["nsenter", "--target", str(self.get_option("pid")), "--mount", "--net", "--uts", "--",
                "env", "PATH=" + self.get_option("path")] + argv

    def exec_command(self, cmd, in_data=None, sudoable=True):
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        display.vvv("EXEC (labnode %s) %s" % (self.get_option("pid"), cmd), host=self._play_context.remote_addr)
        proc = subprocess.Popen(self._nsenter(["/bin/sh", "-c", cmd]), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        stdout, stderr = proc.communicate(in_data)
        return proc.returncode, stdout, stderr

    def put_file(self, in_path, out_path):
        super().put_file(in_path, out_path)
        display.vvv("PUT %s TO %s" % (in_path, out_path), host=self._play_context.remote_addr)
        if not os.path.exists(to_bytes(in_path, errors="surrogate_or_strict")):
            raise AnsibleFileNotFound("file or module does not exist: %s" % in_path)
        with open(in_path, "rb") as source:
            proc = subprocess.run(self._nsenter(["/bin/sh", "-c", 'cat > "$1"', "sh", out_path]), stdin=source,
                                  capture_output=True, check=False)
        if proc.returncode != 0:
            raise AnsibleError("failed to transfer %s to %s in the lab node: %s" % (in_path, out_path, proc.stderr))

    def fetch_file(self, in_path, out_path):
        super().fetch_file(in_path, out_path)
        display.vvv("FETCH %s TO %s" % (in_path, out_path), host=self._play_context.remote_addr)
        with open(out_path, "wb") as target:
            proc = subprocess.run(self._nsenter(["cat", in_path]), stdout=target, stderr=subprocess.PIPE, check=False)
        if proc.returncode != 0:
            raise AnsibleError("failed to fetch %s from the lab node: %s" % (in_path, proc.stderr))

    def reset(self):
        pass

    def close(self):
        self._connected = False
