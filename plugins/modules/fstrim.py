#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: fstrim
short_description: Discard the unused blocks of the filesystem that holds a directory (fstrim -v)
version_added: 0.1.0
description:
  - Runs util-linux's C(fstrim -v) on O(path), e.g. the etcd data directory after a defragmentation freed
    the old database file.
  - A filesystem or disk that cannot discard (C(the discard operation is not supported), e.g. tmpfs or a
    virtual disk without discard) is not a failure; RV(supported) is then false and RV(message) says so.
author: cplane.kubeadm contributors (@cplane)
extends_documentation_fragment:
  - cplane.kubeadm.attributes
attributes:
  check_mode:
    support: full
    details:
      - Checks the directory and finds fstrim, but does not run it.
  diff_mode:
    support: N/A
    details:
      - No file changes.
  idempotent:
    description: When run again with the same parameters, the module reports no change.
    support: partial
    details:
      - C(changed) is true when fstrim reported trimmed bytes; filesystems differ in whether they report
        the same free space again.
options:
  path:
    description: A directory on the filesystem to trim (any directory of it, not only its mount point).
    type: path
    required: true
  fstrim_path:
    description: The fstrim executable; searched on E(PATH), C(/usr/sbin) and C(/sbin) when unset.
    type: path
notes:
  - Needs root (the FITRIM ioctl needs CAP_SYS_ADMIN).
"""

EXAMPLES = r"""
- name: Trim the etcd data filesystem after defragmentation
  cplane.kubeadm.fstrim:
    path: /var/lib/etcd
"""

RETURN = r"""
path:
  description: O(path).
  returned: always
  type: str
command:
  description: The command run (or that would run in check mode).
  returned: always
  type: list
  elements: str
supported:
  description: Whether the filesystem accepted the discard; null in check mode.
  returned: always
  type: bool
trimmed_bytes:
  description: Bytes fstrim reported as trimmed.
  returned: always
  type: int
message:
  description: fstrim's own output (or what check mode would run).
  returned: always
  type: str
  sample: "/var/lib/etcd: 1.2 GiB (1288490188 bytes) trimmed"
seconds:
  description: How long fstrim ran.
  returned: always
  type: float
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import CplaneError, fail_from
from ansible_collections.cplane.kubeadm.plugins.module_utils._fstrim import run_fstrim


def main():
    module = AnsibleModule(
        argument_spec=dict(path=dict(type="path", required=True), fstrim_path=dict(type="path")),
        supports_check_mode=True,
    )
    try:
        result = run_fstrim(module.params["path"], module.params["fstrim_path"], check_mode=module.check_mode)
    except CplaneError as err:
        fail_from(module, err, changed=False)
    if result["supported"] is False:
        module.warn("%s: nothing trimmed, the filesystem does not support discard (%s)"
                    % (result["path"], result["message"]))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
