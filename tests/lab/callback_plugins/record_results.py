"""Test-only callback: appends every task result to the JSON-lines file in $CPLANE_RESULTS."""
from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: record_results
type: aggregate
short_description: write task results to a JSON-lines file (tests only)
description: Appends one line per task result to the file named by CPLANE_RESULTS.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "record_results"
    CALLBACK_NEEDS_ENABLED = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._started = {}

    def v2_runner_on_start(self, host, task):
        # When each host's task began: "time" is when its result came back.
        self._started[(host.get_name(), task._uuid)] = time.time()

    def _record(self, result, status):
        path = os.environ.get("CPLANE_RESULTS")
        if not path:
            return
        entry = {"task": result.task_name if hasattr(result, "task_name") else result._task.get_name(),
                 "action": result._task.action, "host": result._host.get_name(), "status": status,
                 "result": result._result, "time": time.time(),
                 "start": self._started.pop((result._host.get_name(), result._task._uuid), None)}
        with open(path, "a") as handle:
            handle.write(json.dumps(entry, default=str) + "\n")

    def v2_runner_on_ok(self, result):
        self._record(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, "failed")

    def v2_runner_on_skipped(self, result):
        self._record(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._record(result, "unreachable")
