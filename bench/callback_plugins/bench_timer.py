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
  - Writes the wall time in seconds of every finished task and handler, from its start to its last host's result, by
    task name, to the JSON file named by E(BENCH_TIMINGS).
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
        # A task's run: [its start, its last host's result so far, name, action], by the task's uuid.
        self._running: dict[str, list] = {}
        self._times: dict[str, float] = {}
        self._actions: dict[str, str] = {}

    def _start(self, task):
        self._finish(task._uuid)  # a handler may run again at a later flush
        self._running[task._uuid] = [time.monotonic(), None, task.get_name(), task.action]

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._start(task)

    def v2_playbook_on_handler_task_start(self, task):
        self._start(task)

    def _done(self, result, **_):  # v2_runner_on_failed also passes ignore_errors
        run = self._running.get(result._task._uuid)
        if run is not None:
            run[1] = time.monotonic()

    v2_runner_on_ok = v2_runner_on_failed = v2_runner_on_skipped = _done

    def _finish(self, uuid: str) -> None:
        """Add a task's run, from its start to its last host's result (hosts run a task side by side), to its name's
        time."""
        run = self._running.pop(uuid, None)
        if run is not None and run[1] is not None:
            started, ended, name, action = run
            self._times[name] = self._times.get(name, 0.0) + ended - started
            self._actions[name] = action

    def v2_playbook_on_stats(self, stats):
        for uuid in list(self._running):
            self._finish(uuid)
        for variable, record in (("BENCH_TIMINGS", self._times), ("BENCH_ACTIONS", self._actions)):
            path = os.environ.get(variable)
            if path:
                with open(path, "w", encoding="utf-8") as stream:
                    json.dump(record, stream)
