#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: evidence_bundle
short_description: Merge the nodes' evidence tarballs into one timestamped bundle
version_added: 0.1.0
description:
  - Merges the C(<host>.tar.gz) files written by M(cplane.kubeadm.evidence_collect) (and fetched to the
    controller) into C(<dest_dir>/cplane-evidence-<timestamp>.tar.gz), mode 0600, written atomically,
    then removes the parts.
  - Run it on the controller (with delegate_to localhost and run_once).
author: cplane.kubeadm contributors (@cplane)
extends_documentation_fragment:
  - cplane.kubeadm.attributes
attributes:
  check_mode:
    support: full
    details:
      - Writes nothing and returns the path it would write.
  diff_mode:
    support: none
options:
  parts:
    description: The hosts' tarballs.
    type: list
    elements: path
    required: true
  dest_dir:
    description: Directory to write the bundle to (created 0700).
    type: path
    required: true
  stamp:
    description: Timestamp in the name; default the current UTC time (C(YYYYMMDDTHHMMSSZ)).
    type: str
"""

EXAMPLES = r"""
- name: One bundle per run on the controller
  cplane.kubeadm.evidence_bundle:
    parts: "{{ ansible_play_hosts | map('regex_replace', '^(.*)$', '/tmp/evidence/\\1.tar.gz') | list }}"
    dest_dir: "{{ playbook_dir }}/evidence"
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
path:
  description: The bundle.
  returned: always
  type: str
members:
  description: Files in the bundle (C(<host>/...)).
  returned: success, not in check mode
  type: list
  elements: str
size_bytes:
  description: Size of the bundle.
  returned: success, not in check mode
  type: int
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cplane.kubeadm.plugins.module_utils import _files
from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import CplaneError, fail_from
from ansible_collections.cplane.kubeadm.plugins.module_utils._evidence import combine_bundles


def main():
    module = AnsibleModule(
        argument_spec=dict(
            parts=dict(type="list", elements="path", required=True),
            dest_dir=dict(type="path", required=True),
            stamp=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    stamp = module.params["stamp"] or _files.timestamp()
    if module.check_mode:
        module.exit_json(changed=False, path=os.path.join(module.params["dest_dir"], "cplane-evidence-%s.tar.gz" % stamp))
    try:
        result = combine_bundles(module.params["parts"], module.params["dest_dir"], stamp)
    except CplaneError as err:
        fail_from(module, err, changed=False)
    module.exit_json(changed=True, **result)


if __name__ == "__main__":
    main()
