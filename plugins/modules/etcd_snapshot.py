#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: etcd_snapshot
short_description: Take a verified, compressed etcd snapshot and keep the newest N
version_added: 0.1.0
description:
  - Streams a snapshot from one healthy etcd member (a follower when there is one, so the leader
    keeps its full capacity for writes) into a hidden temp file in O(dest). Nothing is held in memory.
  - Verifies it before keeping it. etcd 3.5 appends the sha256 of the database to the snapshot
    stream; the module checks it. It then opens the bolt database with a built-in pure-Python reader
    to read the revision and key count (the same numbers as C(etcdutl snapshot status)). When
    C(etcdutl) is found (O(etcdutl_path) or E(PATH)) it also runs C(etcdutl snapshot status), which
    walks every page of the database, and fails if the two readings disagree.
  - Compresses it (xz or zstd), fsyncs it and renames it into place with mode 0600 as
    C(<name_prefix>-<UTC timestamp>.db[.xz|.zst]).
  - Writes C(<snapshot>.json) next to each snapshot (who wrote it, size, sha256, revision, member).
  - Keeps the newest O(retention) snapshots. Only files this module wrote are ever deleted, that is
    the name must match the pattern for O(name_prefix) and the C(.json) sidecar must vouch for the
    file's size and sha256. An operator's own C(etcdctl snapshot save) under a matching name is kept (see
    RV(kept_foreign)); other files in O(dest) are left alone.
  - Each run holds an exclusive C(flock) on its own lock file in O(dest) while it has temp files
    there. Temp files of a run that died (SIGKILL, out of disk) are recognised by their unlocked lock
    file and removed at the start of the next run.
  - A snapshot is a new file on every run, so the module always reports C(changed=true) when it
    takes one (it is not idempotent by nature).
author: cplane.kubeadm contributors (@cplane)
extends_documentation_fragment:
  - cplane.kubeadm.etcd_connection
  - cplane.kubeadm.attributes
attributes:
  check_mode:
    support: full
    details:
      - Discovers the members and reports the path it would write, the member it would stream from
        and the files retention would delete. Writes and deletes nothing.
  diff_mode:
    support: none
  idempotent:
    description: When run again with the same parameters, the module reports no change.
    support: none
    details:
      - Every run that is not in check mode writes a new snapshot.
options:
  state:
    description: Only V(present) (take a snapshot) is supported.
    type: str
    choices: [present]
    default: present
  dest:
    description:
      - Directory for the snapshots; created with mode 0700 when missing.
      - Must not be inside C(/etc/kubernetes/manifests), where kubelet would treat files as static pods.
    type: path
    required: true
  name_prefix:
    description:
      - Start of the file names, e.g. the cluster name. Letters, digits, C(.), C(_) and C(-).
      - Retention only considers files with this prefix.
    type: str
    default: etcd-snapshot
  compression:
    description: How to compress the snapshot. V(zstd) is many times faster than V(xz) at a similar size.
    type: str
    choices: [xz, zstd, none]
    default: xz
  compression_level:
    description:
      - xz preset (0-9, default 1) or zstd level (1-19, default 3). Ignored for O(compression=none).
      - Higher levels save little on etcd data and cost much CPU time on the control-plane host;
        see docs/etcd_snapshot.md for measured figures.
    type: int
  retention:
    description:
      - Number of snapshots (with this O(name_prefix), written by this module) to keep in O(dest),
        counting the new one.
      - V(0) keeps every snapshot.
    type: int
    default: 7
  member:
    description:
      - Name of the member to stream from. By default a healthy follower, or the leader if it is the only healthy member.
    type: str
  etcdutl_path:
    description:
      - Path of C(etcdutl) for the extra C(etcdutl snapshot status) check. By default it is searched
        on E(PATH); when it is not found, only the built-in checks run.
    type: path
  snapshot_timeout:
    description: Seconds the whole snapshot stream may take.
    type: int
    default: 600
requirements:
  - zstandard >= 0.18 (only for O(compression=zstd))
seealso:
  - module: cplane.kubeadm.etcd_defrag
  - module: cplane.kubeadm.etcd_member_info
notes:
  - Restore with C(etcdutl snapshot restore) after decompressing (C(xz -d) or C(zstd -d)); the file
    keeps etcd's sha256 trailer, so the restore checks it again.
"""

EXAMPLES = r"""
- name: Nightly snapshot of the local kubeadm etcd, keep a week
  cplane.kubeadm.etcd_snapshot:
    dest: /var/backups/etcd
    name_prefix: "etcd-snapshot-{{ cluster_name }}"

- name: Fast zstd snapshot with explicit endpoints, keep 30
  cplane.kubeadm.etcd_snapshot:
    dest: /var/backups/etcd
    compression: zstd
    retention: 30
    endpoints:
      - https://10.0.0.11:2379
      - https://10.0.0.12:2379
"""

RETURN = r"""
path:
  description: The snapshot written (in check mode, the one that would be written).
  returned: always
  type: str
  sample: /var/backups/etcd/etcd-snapshot-20260101T023012Z.db.xz
size:
  description: Size in bytes of the file written.
  returned: when a snapshot was taken
  type: int
  sample: 1048576
db_size:
  description: Size in bytes of the uncompressed database (without etcd's checksum trailer).
  returned: when a snapshot was taken
  type: int
revision:
  description: Latest revision in the snapshot.
  returned: when a snapshot was taken
  type: int
  sample: 123456
key_count:
  description: Entries in all bolt buckets, as C(etcdutl snapshot status) of etcd 3.5 reports C(totalKey) (etcdutl 3.6 reports the live keys instead).
  returned: when a snapshot was taken
  type: int
sha256:
  description: sha256 of the file written (compressed bytes).
  returned: when a snapshot was taken
  type: str
db_sha256:
  description: sha256 of the database, the checksum etcd appended to the stream.
  returned: when a snapshot was taken
  type: str
cluster_id:
  description:
    - Id in hex of the cluster the snapshot was taken from, also recorded in the snapshot's C(.json) sidecar, so
      that M(cplane.kubeadm.etcd_snapshot_restore) can refuse a snapshot of another cluster.
  returned: always
  type: str
status_source:
  description: V(etcdutl) when C(etcdutl snapshot status) confirmed the figures, else V(python).
  returned: when a snapshot was taken
  type: str
duration_s:
  description: Seconds taken to stream, verify, compress and write.
  returned: when a snapshot was taken
  type: float
member:
  description: Name of the member the snapshot was (or would be) streamed from.
  returned: always
  type: str
member_was_leader:
  description: Whether that member was the leader (only when no follower was healthy, or O(member) named it).
  returned: always
  type: bool
skipped_members:
  description: Members passed over and why (learner, unreachable, unhealthy).
  returned: always
  type: list
  elements: str
removed:
  description:
    - Older snapshots deleted by retention (in check mode, those that would be), with their C(.json)
      sidecars, and the hidden temp files of earlier runs that died (killed, out of disk); those are
      removed at the start of the run.
  returned: always
  type: list
  elements: str
kept_foreign:
  description:
    - Files in O(dest) whose names fit the snapshot pattern but that this module did not write (no
      C(<snapshot>.json) sidecar vouching for their size and sha256, e.g. an operator's own
      C(etcdctl snapshot save)). Retention never deletes or counts them; a warning lists them.
  returned: always
  type: list
  elements: str
compression:
  description: The compression used.
  returned: always
  type: str
compression_level:
  description: The xz preset or zstd level used (null for V(none)).
  returned: always
  type: int
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cplane.kubeadm.plugins.module_utils import _deps
from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import CplaneError, fail_from
from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd.args import connection_params, etcd_argument_spec
from ansible_collections.cplane.kubeadm.plugins.module_utils._etcd.snapshot import run_snapshot


def main():
    module = AnsibleModule(
        argument_spec=etcd_argument_spec(
            state=dict(type="str", choices=["present"], default="present"),
            dest=dict(type="path", required=True),
            name_prefix=dict(type="str", default="etcd-snapshot"),
            compression=dict(type="str", choices=["xz", "zstd", "none"], default="xz"),
            compression_level=dict(type="int"),
            retention=dict(type="int", default=7),
            member=dict(type="str"),
            etcdutl_path=dict(type="path"),
            snapshot_timeout=dict(type="int", default=600),
        ),
        supports_check_mode=True,
    )
    _deps.assert_required(module, *_deps.ETCD + (("zstandard",) if module.params["compression"] == "zstd" else ()))
    options = dict((k, v) for k, v in module.params.items() if k not in connection_params(module.params) and k != "state")
    try:
        result = run_snapshot(check_mode=module.check_mode, **dict(connection_params(module.params), **options))
    except CplaneError as err:
        fail_from(module, err, changed=False)
    for warning in result.pop("warnings"):
        module.warn(warning)
    module.exit_json(changed=True, **result)


if __name__ == "__main__":
    main()
