# -*- coding: utf-8 -*-
# Copyright: cplane.kubeadm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The outcome of unattended runs (timers, schedules): one JSON state file per job.

Written by the node-local runs (etcd maintenance, certificate renewal) when they end, read by the
Prometheus metrics, so an alert can say "no successful snapshot in 26 h" even after failed runs.

File: ``<state_dir>/<job>.json`` (default state_dir ``/var/lib/cplane-kubeadm/runs``)::

    {
      "format": 1,
      "job": "etcd_maintenance",
      "host": "cp1",
      "started": 1764547200.0,          # unix seconds
      "finished": 1764547260.5,
      "success": true,                  # false: the run failed (its unit exits non-zero)
      "acted": true,                    # false: another node acted this time (not a failure)
      "reason": "local member is the leader",
      "steps": {                        # what this run did; step name -> outcome
        "defrag": {"success": true, "seconds": 12.3, "started": ..., "finished": ...},
        "snapshot": {"success": true, "seconds": 4.1, "path": "/var/backups/etcd/..."},
        "fstrim": {"success": true, "seconds": 0.2, "supported": false, "message": "..."}
      },
      "last_success": {"run": 1764547260.5, "defrag": 1764547220.0, "snapshot": 1764547260.5},
      "consecutive_failures": 0
    }

``last_success`` carries over from the previous state: a step that did not succeed this run keeps
its earlier time.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

from ansible_collections.cplane.kubeadm.plugins.module_utils._errors import InputError
from ansible_collections.cplane.kubeadm.plugins.module_utils._files import atomic_write

FORMAT = 1
DEFAULT_STATE_DIR = "/var/lib/cplane-kubeadm/runs"
JOBS = ("etcd_maintenance", "cert_renewal")


def state_path(job, state_dir=DEFAULT_STATE_DIR):
    return os.path.join(state_dir, "%s.json" % job)


def read_run_state(path):
    """The recorded state, or None when no run has recorded one yet."""
    try:
        with open(path, "r") as handle:
            text = handle.read()
    except IOError as exc:
        if getattr(exc, "errno", None) == 2:
            return None
        raise InputError("Cannot read the run state %s: %s." % (path, exc), path=path)
    try:
        state = json.loads(text)
    except ValueError as exc:
        raise InputError("The run state %s is not valid JSON (%s); delete it, the next run writes it again."
                         % (path, exc), path=path)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise InputError("The run state %s is not a format-%d cplane.kubeadm run state; delete it, the next run "
                         "writes it again." % (path, FORMAT), path=path)
    return state


def merge_run(previous, job, host, started, finished, success, acted, reason, steps):
    """The new state: this run's outcome plus the last successes carried over from ``previous``."""
    previous = previous or {}
    last_success = dict(previous.get("last_success") or {})
    for name, step in (steps or {}).items():
        if step.get("success"):
            last_success[name] = step.get("finished", finished)
    if success:
        last_success["run"] = finished
    failures = 0 if success else int(previous.get("consecutive_failures") or 0) + 1
    return {
        "format": FORMAT,
        "job": job,
        "host": host,
        "started": started,
        "finished": finished,
        "success": bool(success),
        "acted": bool(acted),
        "reason": reason,
        "steps": steps or {},
        "last_success": last_success,
        "consecutive_failures": failures,
    }


def normalize_steps(steps, finished):
    """Steps as recorded: ``success`` a bool, ``seconds`` from ``started``/``finished`` when not given.

    A step without ``finished`` (the run stopped inside it) ends at the run's ``finished``.
    """
    normalized = {}
    for name, step in (steps or {}).items():
        if not isinstance(step, dict):
            raise InputError("step %s must be a dict with success, started and finished, not %r" % (name, step))
        entry = dict(step)
        entry["success"] = bool(entry.get("success"))
        for key in ("started", "finished"):
            if entry.get(key) is not None:
                entry[key] = float(entry[key])
        if entry.get("started") is not None and entry.get("finished") is None:
            entry["finished"] = float(finished)
        if entry.get("seconds") is None and entry.get("started") is not None:
            entry["seconds"] = round(max(0.0, entry["finished"] - entry["started"]), 3)
        normalized[name] = entry
    return normalized


def record_run(path, **outcome):
    """Merge this run into the state at ``path`` and write it atomically; returns the new state."""
    state = merge_run(read_run_state(path), **outcome)
    directory = os.path.dirname(path)
    if directory and not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    atomic_write(path, (json.dumps(state, indent=2, sort_keys=True) + "\n").encode("utf-8"), mode=0o644)
    return state
