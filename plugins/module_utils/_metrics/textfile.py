# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The metrics_textfile backend: collect, then replace node_exporter's ``*.prom`` file atomically.

node_exporter's textfile collector reads every ``*.prom`` file of its directory on each scrape
(node_exporter collector/textfile.go); a file written in place could be read half-written.  So the
content goes to a temp file in the same directory whose name does not end in ``.prom`` (atomic_write's
``.<name>.<random>.tmp``) and is renamed over the file, as node_exporter's README asks.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import InputError
from ansible_collections.cplane.kubeadm.plugins.module_utils._files import atomic_write, os_error
from ansible_collections.cplane.kubeadm.plugins.module_utils._metrics import collect as collectors

DEFAULT_TEXTFILE = "/var/lib/prometheus/node-exporter/cplane_kubeadm.prom"


def check_path(path, check_mode=False):
    """InputError for a name node_exporter would not read or a directory that is not there (check mode:
    the role creates the directory in the same run, so its absence is only a change to come)."""
    if not path.endswith(".prom"):
        raise InputError("path %s must end in .prom: node_exporter's textfile collector reads only *.prom files." % path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory) and not check_mode:
        raise InputError("the textfile directory %s does not exist; create it (it is node_exporter's "
                         "--collector.textfile.directory) or set path." % directory)


def read_current(path):
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", "replace")
    except (IOError, OSError) as exc:
        if getattr(exc, "errno", None) == 2:
            return None
        raise os_error("read", exc, path)


def write_metrics(path, settings, collectors_enabled=collectors.COLLECTORS, check_mode=False, mode=0o644):
    """Collect and write ``path``; the module result (changed, collectors, samples, diff)."""
    check_path(path, check_mode)
    content, outcome = collectors.collect(settings, collectors_enabled)
    before = read_current(path)
    changed = before != content
    if changed and not check_mode:
        atomic_write(path, content.encode("utf-8"), mode=mode)
    samples = len([line for line in content.splitlines() if line and not line.startswith("#")])
    return dict(changed=changed, path=path, collectors=outcome, samples=samples,
                failed_collectors=sorted(name for name, result in outcome.items() if not result["success"]),
                diff=dict(before=before or "", after=content, before_header=path, after_header=path))
