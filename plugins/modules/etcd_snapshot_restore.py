#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: etcd_snapshot_restore
short_description: Restore an etcd snapshot into a member's data directory, keeping the old one aside
version_added: 0.1.0
description:
  - Verifies the snapshot first (etcd's sha256 trailer and the bolt database's pages; for a snapshot of
    M(cplane.kubeadm.etcd_snapshot), its sidecar's sha256, revision and cluster id; C(.db.xz) and
    C(.db.zst) files of M(cplane.kubeadm.etcd_snapshot) are decompressed next to O(data_dir)) and refuses
    a bad one before anything is touched.
  - Refuses while an etcd process holds the database lock of O(data_dir) (stop its static pod first), and
    when the filesystem of O(data_dir) has no room for the restore.
  - Runs C(etcdutl snapshot restore) into a new directory beside O(data_dir), then moves an existing
    O(data_dir) aside to C(<data_dir>.<timestamp>) (RV(moved_aside)) and renames the new directory into
    place. Nothing is deleted. A journal beside O(data_dir) lets a run killed at any point be finished by
    the next run; a record of the restore makes a second run with the same snapshot change nothing.
  - With O(bump_revision) (default 1,000,000,000) and O(mark_compacted), the restored store's revision
    jumps ahead and is marked compacted, as C(etcdutl snapshot restore --bump-revision --mark-compacted)
    does, so that watchers and informers see a compaction error instead of time going backwards.
    That needs etcdutl 3.5.10 or newer; the module fails clearly with an older one unless O(bump_revision=0).
author: cplane.kubeadm contributors (@cplane)
extends_documentation_fragment:
  - cplane.kubeadm.attributes
attributes:
  check_mode:
    support: full
    details:
      - Verifies the snapshot and every precondition, returns what it would do, and writes nothing
        (a compressed snapshot is decompressed into a temp file that is removed).
  diff_mode:
    support: none
options:
  src:
    description:
      - The snapshot. A C(.db), C(.db.xz) or C(.db.zst) file of M(cplane.kubeadm.etcd_snapshot), or a plain
        C(etcdctl snapshot save) file.
    type: path
    required: true
  data_dir:
    description: The member's etcd data directory (kubeadm C(/var/lib/etcd)).
    type: path
    default: /var/lib/etcd
  name:
    description: The member's name (C(--name); kubeadm uses the node name).
    type: str
    required: true
  initial_cluster:
    description: Every member as C(name=peer-url), comma-separated, the same on every member.
    type: str
    required: true
  initial_advertise_peer_urls:
    description: This member's peer URL(s).
    type: str
    required: true
  initial_cluster_token:
    description: Token of the restored cluster; use a new one so old members cannot join it by mistake.
    type: str
    default: etcd-cluster
  bump_revision:
    description:
      - How far the restored revision jumps ahead; 0 restores the snapshot's own revision.
    type: int
    default: 1000000000
  mark_compacted:
    description: Mark the restored revision as compacted, so that watches from older revisions fail.
    type: bool
    default: true
  etcdutl_path:
    description: The etcdutl binary; default the first C(etcdutl) on C(PATH).
    type: path
  skip_hash_check:
    description:
      - Skip the sha256 check; only for a database file copied from a data directory (it has no trailer).
    type: bool
    default: false
  expected_cluster_id:
    description:
      - Id in hex of the cluster the snapshot must come from (RV(cplane.kubeadm.etcd_member_info#module:members[].cluster_id)).
        A snapshot whose C(.json) sidecar (written by M(cplane.kubeadm.etcd_snapshot)) records another cluster is
        refused; a snapshot without a sidecar is restored with a warning.
    type: str
  force:
    description: Restore again even when O(data_dir) was already restored from this very snapshot.
    type: bool
    default: false
seealso:
  - module: cplane.kubeadm.etcd_snapshot
  - module: cplane.kubeadm.etcd_member
  - name: Restoring an etcd cluster
    description: etcd's disaster recovery guide.
    link: https://etcd.io/docs/v3.5/op-guide/recovery/
"""

EXAMPLES = r"""
- name: Restore the newest verified snapshot on every member (etcd static pods stopped)
  cplane.kubeadm.etcd_snapshot_restore:
    src: /var/backups/etcd/etcd-snapshot-20261201T023000Z.db.xz
    name: "{{ inventory_hostname }}"
    initial_cluster: "cp1=https://10.0.0.11:2380,cp2=https://10.0.0.12:2380,cp3=https://10.0.0.13:2380"
    initial_advertise_peer_urls: "https://{{ ansible_default_ipv4.address }}:2380"
    initial_cluster_token: restored-20261201
  register: restored
"""

RETURN = r"""
data_dir:
  description: The data directory restored into.
  returned: always
  type: str
src:
  description: The snapshot restored from.
  returned: always
  type: str
moved_aside:
  description: Where the previous data directory was moved; null when there was none.
  returned: always
  type: str
  sample: /var/lib/etcd.20261201T101500Z
revision:
  description: The snapshot's revision.
  returned: always
  type: int
bumped_to:
  description: The revision the restored store starts from (revision + bump_revision); null when not bumped.
  returned: always
  type: int
keys:
  description: Entries in the snapshot's key bucket (every stored revision of every key).
  returned: always
  type: int
snapshot_sha256:
  description: sha256 of the database (null with O(skip_hash_check)).
  returned: always
  type: str
cluster_id:
  description: Cluster id recorded in the snapshot's sidecar; null for a snapshot without one.
  returned: always
  type: str
resumed:
  description: Whether this run finished a restore an earlier run was interrupted in.
  returned: always
  type: bool
msg:
  description: What was done.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cplane.kubeadm.plugins.module_utils import _deps
from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import CplaneError, fail_from
from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd.restore import DEFAULT_BUMP_REVISION, restore_snapshot


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type="path", required=True),
            data_dir=dict(type="path", default="/var/lib/etcd"),
            name=dict(type="str", required=True),
            initial_cluster=dict(type="str", required=True),
            initial_advertise_peer_urls=dict(type="str", required=True),
            initial_cluster_token=dict(type="str", default="etcd-cluster", no_log=False),
            bump_revision=dict(type="int", default=DEFAULT_BUMP_REVISION),
            mark_compacted=dict(type="bool", default=True),
            etcdutl_path=dict(type="path"),
            skip_hash_check=dict(type="bool", default=False),
            expected_cluster_id=dict(type="str"),
            force=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    if module.params["src"].endswith(".zst"):
        _deps.assert_required(module, "zstandard")
    params = dict(module.params, check_mode=module.check_mode)
    try:
        result = restore_snapshot(**params)
    except CplaneError as err:
        fail_from(module, err, changed=False)
    for warning in result.pop("warnings"):
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
