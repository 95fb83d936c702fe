# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark helper: write each task's wall time (seconds) to the JSON file named by $BENCH_TIMINGS, and each task's
action (module) to the one named by $BENCH_ACTIONS when it is set."""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: bench_timer
type: aggregate
short_description: Task wall times for bench/run.py
description:
  - Writes the wall time in seconds of every finished task and handler, by task name, to the JSON file named by E(BENCH_TIMINGS).
  - Writes each task's action, by task name, to the JSON file named by E(BENCH_ACTIONS) when it is set.
requirements: [enable in configuration]
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_timer"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._started: dict[str, float] = {}
        self._times: dict[str, float] = {}
        self._actions: dict[str, str] = {}

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._started[task._uuid] = time.monotonic()

    def v2_playbook_on_handler_task_start(self, task):
        self._started[task._uuid] = time.monotonic()

    def _done(self, result, **_):  # v2_runner_on_failed also passes ignore_errors
        task = result._task
        start = self._started.get(task._uuid)
        if start is not None:
            name = task.get_name()
            self._times[name] = self._times.get(name, 0.0) + time.monotonic() - start
            self._actions[name] = task.action

    v2_runner_on_ok = v2_runner_on_failed = v2_runner_on_skipped = _done

    def v2_playbook_on_stats(self, stats):
        for variable, record in (("BENCH_TIMINGS", self._times), ("BENCH_ACTIONS", self._actions)):
            path = os.environ.get(variable)
            if path:
                with open(path, "w", encoding="utf-8") as stream:
                    json.dump(record, stream)
