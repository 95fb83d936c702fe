# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The benchmarks' task timer (bench/callback_plugins/bench_timer.py): a task's wall time on several hosts is from its
start to its last host's result, not the sum of each host's wait (bench/site.py --layout several, issue 19)."""

from __future__ import annotations

import importlib.util
import json
import os
from types import SimpleNamespace

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
_spec = importlib.util.spec_from_file_location(
    "bench_timer", os.path.join(ROOT, "bench", "callback_plugins", "bench_timer.py"))
bench_timer = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_timer)


def task(uuid: str, name: str, action: str = "ansible.builtin.command") -> SimpleNamespace:
    return SimpleNamespace(_uuid=uuid, get_name=lambda: name, action=action)


def timings(monkeypatch, tmp_path, events) -> dict:
    """Replay (second, callback, argument) events; returns the times written."""
    clock = iter(second for second, _, _ in events)
    monkeypatch.setattr(bench_timer.time, "monotonic", lambda: next(clock))
    monkeypatch.setenv("BENCH_TIMINGS", str(tmp_path / "timings.json"))
    monkeypatch.delenv("BENCH_ACTIONS", raising=False)
    timer = bench_timer.CallbackModule()
    for _, callback, argument in events:
        getattr(timer, callback)(*argument)
    timer.v2_playbook_on_stats(None)
    return json.loads((tmp_path / "timings.json").read_text())


def test_hosts_side_by_side_count_once(monkeypatch, tmp_path):
    write = task("1", "Write main.cf")
    events = [(10.0, "v2_playbook_on_task_start", (write, False)),
              (11.0, "v2_runner_on_ok", (SimpleNamespace(_task=write),)),
              (12.5, "v2_runner_on_skipped", (SimpleNamespace(_task=write),)),
              (13.0, "v2_runner_on_ok", (SimpleNamespace(_task=write),))]
    assert timings(monkeypatch, tmp_path, events) == {"Write main.cf": 3.0}


def test_a_handler_run_at_two_flushes_counts_both(monkeypatch, tmp_path):
    reload = task("2", "Reload Postfix", "ansible.builtin.service")
    events = [(0.0, "v2_playbook_on_handler_task_start", (reload,)),
              (0.5, "v2_runner_on_ok", (SimpleNamespace(_task=reload),)),
              (9.0, "v2_playbook_on_handler_task_start", (reload,)),
              (9.25, "v2_runner_on_ok", (SimpleNamespace(_task=reload),))]
    assert timings(monkeypatch, tmp_path, events) == {"Reload Postfix": 0.75}


def test_its_documentation_is_yaml_ansible_loads():
    assert yaml.safe_load(bench_timer.DOCUMENTATION)["name"] == "bench_timer"
