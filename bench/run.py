#!/usr/bin/env python3
# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Converge benchmark: lint, converges and memory at several inventory sizes, next to a per-item loop.

    python bench/run.py                          # 1,000, 10,000 and 50,000 people, 3 runs each
    python bench/run.py --sizes 1000 --runs 3    # one size
    python bench/run.py --mail                   # and the mail figures (bench/mail.sh, needs podman)
    python bench/run.py --engine postgresql      # the user database in PostgreSQL (issue 15), not SQLite

Every figure is the median of ``--runs`` runs and is printed in one table at the end (also written
to ``WORK/results.json``). Method, machine and the latest figures: docs/benchmarks.md.

Per run and size, on a copy of the generated inventory and a new SQLite database under ``--work``, or with
``--engine postgresql`` a new database in a throwaway PostgreSQL cluster (bench/postgres.py), reached through
its Unix socket (the target is this machine, ``connection: local``):

* lint: ``scripts/lint-inventory`` on the inventory, a whole process;
* the playbook ``bench/playbooks/converge.yml`` (mail_inventory, then roles/mailboxes reading its resolved file, as
  playbooks/site.yml does) four times:
  first converge (empty database), no-op re-converge, one person added, 1 % of quotas changed.
  For each: the whole ``ansible-playbook`` wall time, the wall time of the task "Converge every
  mailbox in one call" (the module call as the playbook sees it, action plugin included), the
  controller's peak memory and the target's;
* the same four steps by the module alone (``bench/module_call.py``: one Python process running the
  module's main(), on its own database), wall time of the process;
* the baseline: ``bench/playbooks/loop.yml``, ``ansible.builtin.lineinfile`` in a loop, one task per
  mailbox, over ``--loop-items`` mailboxes; its per-item cost times the number of mailboxes gives
  what it would take at each size.

Memory: the controller figure is the peak, sampled every 50 ms, of the summed proportional set size
(PSS, so pages the forked workers share are counted once) of ``ansible-playbook`` and all its
descendants except the target's module processes; the target figure is the peak RSS of the module
processes, taken by GNU time around the target interpreter.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import generate
from postgres import ThrowawayPostgres

generate._import_collection()
from ansible_collections.sonla.mail.plugins.module_utils import _password
from ansible_collections.sonla.mail.plugins.module_utils._inventory import load_inventory, resolve

CONVERGE_TASK = "Converge every mailbox in one call"
LOOP_TASK = "One task per mailbox"
STEPS = ("first", "noop", "add", "quota")
STEP_TITLES = {
    "first": "first converge",
    "noop": "no-op re-converge",
    "add": "one person added",
    "quota": "1% of quotas changed",
}
TARGET_SIZE = 50000


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as stream:
        return stream.read()


# --- processes and memory -------------------------------------------------------------------------

def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", encoding="ascii", errors="replace") as stream:
                ppid = int(stream.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        tree.setdefault(ppid, []).append(int(name))
    return tree


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/environ", "rb") as stream:
            if b"BENCH_TARGET=1" in stream.read():
                return 0  # the target's module process: measured by GNU time instead
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as stream:
            for line in stream:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


class TreeSampler(threading.Thread):
    """Peak summed PSS of a process and its descendants, sampled every ``interval`` seconds."""

    def __init__(self, pid: int, interval: float = 0.05):
        super().__init__(daemon=True)
        self.pid, self.interval, self.peak_kb = pid, interval, 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            tree, pids, total = _children(), [self.pid], 0
            while pids:
                pid = pids.pop()
                total += _pss_kb(pid)
                pids.extend(tree.get(pid, ()))
            self.peak_kb = max(self.peak_kb, total)
            self.stopped.wait(self.interval)


def run_timed(command: list[str], env: dict | None = None, log: str | None = None) -> tuple[float, int]:
    """Run ``command``; returns wall seconds and the peak PSS (KiB) of its process tree."""
    with open(log or os.devnull, "w", encoding="utf-8") as output:
        start = time.monotonic()
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT, cwd=ROOT)
        sampler = TreeSampler(process.pid)
        sampler.start()
        code = process.wait()
        seconds = time.monotonic() - start
        sampler.stopped.set()
        sampler.join()
    if code != 0:
        tail = _read(log)[-3000:] if log else ""
        raise SystemExit(f"bench: {' '.join(command[:3])} ... failed ({code}):\n{tail}")
    return seconds, sampler.peak_kb


# --- the scenario ---------------------------------------------------------------------------------

class Workspace:
    def __init__(self, work: str, python: str, postgres=None):
        self.work = work
        self.python = python
        self.postgres = postgres  # a started bench/postgres.py cluster, or None for SQLite
        os.makedirs(work, exist_ok=True)
        self.target_python = os.path.join(work, "target", "python3")
        os.makedirs(os.path.dirname(self.target_python), exist_ok=True)
        self.rss_log = os.path.join(work, "target", "rss.log")
        with open(self.target_python, "w", encoding="utf-8") as stream:
            stream.write("#!/bin/sh\n# The target's interpreter under GNU time: peak RSS of each module process.\n"
                         f'BENCH_TARGET=1 exec /usr/bin/time -a -o "{self.rss_log}" -f "%M" "{python}" "$@"\n')
        os.chmod(self.target_python, 0o755)

    def env(self, timings: str) -> dict:
        env = dict(os.environ)
        env.update({
            "ANSIBLE_CONFIG": os.path.join(ROOT, "ansible.cfg"),
            "ANSIBLE_COLLECTIONS_PATH": os.path.join(ROOT, ".collections"),
            "ANSIBLE_CALLBACK_PLUGINS": os.path.join(HERE, "callback_plugins"),
            "ANSIBLE_CALLBACKS_ENABLED": "bench_timer",
            "ANSIBLE_NOCOLOR": "1",
            "BENCH_TIMINGS": timings,
        })
        return env

    def playbook(self, name: str, extra: dict, log: str) -> dict:
        """One ansible-playbook run: wall, per-task times, controller and target peak memory."""
        timings = log + ".timings.json"
        if os.path.exists(self.rss_log):
            os.unlink(self.rss_log)
        command = [os.path.join(os.path.dirname(self.python), "ansible-playbook"), "-i", "localhost,",
                   os.path.join(HERE, "playbooks", name), "-e", json.dumps(extra)]
        wall, controller_kb = run_timed(command, self.env(timings), log)
        with open(timings, encoding="utf-8") as stream:
            tasks = json.load(stream)
        target_kb = 0
        if os.path.exists(self.rss_log):
            with open(self.rss_log, encoding="ascii") as stream:
                target_kb = max((int(line) for line in stream if line.strip().isdigit()), default=0)
        return {"wall": wall, "tasks": tasks, "controller_mb": controller_kb / 1024, "target_mb": target_kb / 1024,
                "load": float(_read("/proc/loadavg").split()[0])}

    def database(self, folder: str) -> str:
        """A new, empty user database: a SQLite file in ``folder`` (created by whoever opens it), or a PostgreSQL URI."""
        if self.postgres is None:
            return os.path.join(folder, "users.sqlite")
        return self.postgres.uri(self.postgres.new_database())

    def module_call(self, args: dict, path: str) -> dict:
        with open(path, "w", encoding="utf-8") as stream:
            json.dump(args, stream)
        start = time.monotonic()
        done = subprocess.run([self.python, os.path.join(HERE, "module_call.py"), path],
                              capture_output=True, text=True, cwd=ROOT, check=False)
        wall = time.monotonic() - start
        report = json.loads(done.stderr.strip().splitlines()[-1]) if done.stderr.strip() else {}
        if done.returncode != 0:
            raise SystemExit(f"bench: module call failed: {report.get('msg') or done.stderr[-2000:]}")
        return {"wall": wall, "main": report["seconds"], "target_mb": report["maxrss_kb"] / 1024,
                "summary": report["summary"]}


def _people(size: int, seed: int):
    rng = random.Random(seed)
    orgs = generate.organizations(rng)
    return orgs, generate.people(rng, orgs, size)


def _write_people(mail: str, staff: dict) -> None:
    for agency_id, entries in staff.items():
        with open(os.path.join(mail, "people", f"{agency_id}.yml"), "w", encoding="utf-8") as stream:
            stream.write(generate.render_people(entries))


def _desired(mail: str) -> list[dict]:
    inventory = load_inventory(mail)
    if inventory.problems:
        raise SystemExit(f"bench: inventory problems: {inventory.problems[:3]}")
    return resolve(inventory).mailboxes


def one_run(ws: Workspace, size: int, seed: int, run: int, pristine: str) -> dict:
    """Lint, the four playbook steps and the four module-alone steps, on fresh copies."""
    base = os.path.join(ws.work, str(size), f"run{run}")
    shutil.rmtree(base, ignore_errors=True)
    inventory = os.path.join(base, "inv")
    shutil.copytree(pristine, inventory)
    mail = os.path.join(inventory, "mail")
    figures: dict = {}

    lint_wall, lint_kb = run_timed([ws.python, os.path.join(ROOT, "scripts", "lint-inventory"), inventory])
    figures["lint"] = {"wall": lint_wall, "controller_mb": lint_kb / 1024}

    # The inventory of each step, and the desired set the module gets at each step.
    _, staff = _people(size, seed)
    stages = {"first": None, "noop": None}
    staff_add = copy.deepcopy(staff)
    newcomer = {"id": f"skhcn-9{run:04d}", "name": "Nguyễn Văn An", "organization": "skhcn",
                "request": "999/QĐ-SKHCN"}
    staff_add["skhcn"].append(newcomer)
    staff_quota = copy.deepcopy(staff_add)
    everyone = [p for entries in staff_quota.values() for p in entries if p.get("state") != "absent"]
    rng = random.Random(seed * 1000 + run)
    for person in rng.sample(everyone, max(1, len(everyone) // 100)):
        person["quota_mb"] = 3072 + 1024 * run  # a new value in every run
    stages["add"], stages["quota"] = staff_add, staff_quota

    extra = {
        "bench_inventory": mail, "bench_database": ws.database(os.path.join(base, "db")),
        "bench_mail_root": os.path.join(base, "vmail"), "bench_handoff_dir": os.path.join(base, "handoff"),
        "bench_target_python": ws.target_python,
    }
    desired = {}
    for step in STEPS:
        if stages[step] is not None:
            _write_people(mail, stages[step])
        desired[step] = _desired(mail)  # before the playbook pins the new address, as the module sees it
        figures[step] = ws.playbook("converge.yml", extra, os.path.join(base, f"{step}.log"))
        figures[step]["mailboxes"] = len(desired[step])

    # The module alone, on its own database: same four steps.
    os.makedirs(os.path.join(base, "db-module"))
    database = ws.database(os.path.join(base, "db-module"))
    known: set[str] = set()
    for step in STEPS:
        # The desired set in a file, as the action plugin hands it over (no per-element argument processing).
        args = {"database": database, "mailboxes_file": os.path.join(base, f"{step}-desired.json"),
                "mail_root": os.path.join(base, "vmail")}
        with open(args["mailboxes_file"], "w", encoding="utf-8") as stream:
            json.dump(desired[step], stream)
        new = [m["address"] for m in desired[step] if m["address"] not in known and m["state"] != "absent"]
        if new:
            hashes = {address: _password.hash_initial(_password.generate_password()) for address in new}
            args["initial_password_file"] = os.path.join(base, f"{step}-hashes.json")
            with open(args["initial_password_file"], "w", encoding="utf-8") as stream:
                json.dump(hashes, stream)
        known.update(new)
        figures[f"module_{step}"] = ws.module_call(args, os.path.join(base, f"{step}-args.json"))
    shutil.rmtree(base, ignore_errors=True)
    return figures


def loop_baseline(ws: Workspace, pristine: str, items: int, runs: int) -> dict:
    """Per-item cost of the stock-module loop: first run (empty file) and no-op re-run."""
    samples: dict[str, list] = {"first": [], "noop": []}
    for run in range(runs):
        base = os.path.join(ws.work, "loop", f"run{run}")
        shutil.rmtree(base, ignore_errors=True)
        os.makedirs(base)
        extra = {"bench_inventory": os.path.join(pristine, "mail"), "bench_loop_items": items,
                 "bench_passwd_file": os.path.join(base, "passwd")}
        for step in ("first", "noop"):
            result = ws.playbook("loop.yml", extra, os.path.join(base, f"{step}.log"))
            samples[step].append({"wall": result["wall"], "task": _task(result, LOOP_TASK),
                                  "controller_mb": result["controller_mb"]})
        shutil.rmtree(base, ignore_errors=True)
    return {step: {key: statistics.median(s[key] for s in values) for key in values[0]}
            for step, values in samples.items()}


# --- the table ------------------------------------------------------------------------------------

def _task(result: dict, name: str) -> float:
    """A task's time; tasks of a role are named ``<role> : <task>``."""
    return next(seconds for task, seconds in result["tasks"].items() if task.split(" : ")[-1] == name)


def median(values) -> float:
    return statistics.median(values)


def summarise(runs: list[dict]) -> dict:
    out = {"lint": median(r["lint"]["wall"] for r in runs),
           "loadavg": median(r[step].get("load", 0.0) for r in runs for step in STEPS)}
    for step in STEPS:
        out[step] = {
            "wall": median(r[step]["wall"] for r in runs),
            "task": median(_task(r[step], CONVERGE_TASK) for r in runs),
            "load": median(_task(r[step], "Load the mail inventory") for r in runs),
            "module": median(r[f"module_{step}"]["wall"] for r in runs),
            "controller_mb": max(r[step]["controller_mb"] for r in runs),
            "target_mb": max(r[step]["target_mb"] for r in runs),
            "module_target_mb": max(r[f"module_{step}"]["target_mb"] for r in runs),
            "mailboxes": runs[0][step]["mailboxes"],
        }
    return out


def _s(value: float) -> str:
    return f"{value:.2f} s" if value < 100 else f"{value:,.0f} s"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def table(results: dict, loop: dict | None, items: int, runs: int) -> str:
    sizes = sorted(results)
    rows: list[tuple[str, ...]] = [(f"figure (median of {runs} runs)", *(f"{s:,} people" for s in sizes))]
    rows.append(("mailboxes (people + organizations)", *(f"{results[s]['first']['mailboxes']:,}" for s in sizes)))
    rows.append(("lint (scripts/lint-inventory)", *(_s(results[s]["lint"]) for s in sizes)))
    for step in STEPS:
        title = STEP_TITLES[step]
        rows.append((f"{title}: whole playbook", *(_s(results[s][step]["wall"]) for s in sizes)))
        rows.append((f"{title}: module task", *(_s(results[s][step]["task"]) for s in sizes)))
        rows.append((f"{title}: module alone", *(_s(results[s][step]["module"]) for s in sizes)))
    rows.append(("load inventory task (no-op run)", *(_s(results[s]["noop"]["load"]) for s in sizes)))
    rows.append(("peak memory, controller (PSS, any step)",
                 *(f"{max(results[s][st]['controller_mb'] for st in STEPS):.0f} MB" for s in sizes)))
    rows.append(("peak memory, target module (RSS, any step)",
                 *(f"{max(results[s][st]['target_mb'] for st in STEPS):.0f} MB" for s in sizes)))
    rows.append(("1-minute load average after each playbook (median)", *(f"{results[s]['loadavg']:.1f}" for s in sizes)))
    if loop:
        per_first = loop["first"]["task"] / items
        per_noop = loop["noop"]["task"] / items
        rows.append((f"per-item loop, first run ({per_first * 1000:.0f} ms/item x mailboxes)",
                     *(_duration(per_first * results[s]["first"]["mailboxes"]) for s in sizes)))
        rows.append((f"per-item loop, no-op ({per_noop * 1000:.0f} ms/item x mailboxes)",
                     *(_duration(per_noop * results[s]["noop"]["mailboxes"]) for s in sizes)))
        for step, per in (("first", per_first), ("noop", per_noop), ("add", per_noop), ("quota", per_noop)):
            rows.append((f"ratio loop / ours, {STEP_TITLES[step]} (module task | playbook)", *(
                f"{per * results[s][step]['mailboxes'] / results[s][step]['task']:,.0f}x | "
                f"{per * results[s][step]['mailboxes'] / results[s][step]['wall']:,.0f}x" for s in sizes)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for number, row in enumerate(rows):
        lines.append("| " + " | ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
                                       for i, cell in enumerate(row)) + " |")
        if number == 0:
            lines.append("|" + "|".join("-" * (w + 2) if i == 0 else "-" * (w + 1) + ":" for i, w in enumerate(widths)) + "|")
    return "\n".join(lines)


def targets(results: dict) -> list[str]:
    """The issue's targets at 50,000 people, met or missed."""
    if TARGET_SIZE not in results:
        return [f"targets: not checked ({TARGET_SIZE:,} people not run)"]
    r = results[TARGET_SIZE]
    checks = [
        ("lint", r["lint"], 2),
        ("no-op re-converge, module task", r["noop"]["task"], 5),
        ("no-op re-converge, whole playbook", r["noop"]["wall"], 15),
        ("first converge, whole playbook", r["first"]["wall"], 60),
        ("one person added, module task", r["add"]["task"], 5),
        ("controller memory (MB)", max(r[s]["controller_mb"] for s in STEPS), 500),
        ("target memory (MB)", max(r[s]["target_mb"] for s in STEPS), 500),
    ]
    return [f"target {name}: {value:.2f} <= {limit}: {'met' if value <= limit else 'MISSED by %.2f' % (value - limit)}"
            for name, value, limit in checks]


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), "?")
    memory = next((int(line.split()[1]) for line in _read("/proc/meminfo").splitlines() if line.startswith("MemTotal")), 0)
    return (f"{os.cpu_count()} CPU ({cpu}), {memory / 1024 / 1024:.1f} GiB RAM, {platform.platform()}, "
            f"Python {platform.python_version()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,50000", help="comma-separated numbers of people")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure; the median is reported (default 3)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--loop-items", type=int, default=150, help="mailboxes the per-item baseline loops over")
    parser.add_argument("--no-loop", action="store_true", help="skip the per-item baseline")
    parser.add_argument("--work", default="/tmp/sonla-bench", help="scratch folder (inventories, databases)")
    parser.add_argument("--python", default=sys.executable, help="Python of the venv with ansible-core")
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), default="sqlite", help="the user database's engine")
    args = parser.parse_args()
    postgres = ThrowawayPostgres().start() if args.engine == "postgresql" else None
    try:
        return bench(args, postgres)
    finally:
        if postgres is not None:
            postgres.stop()


def bench(args, postgres) -> int:
    sizes = [int(size) for size in args.sizes.split(",")]
    ws = Workspace(os.path.abspath(args.work), args.python, postgres)
    print(f"bench: {machine()}, user database: {args.engine}", flush=True)

    results: dict[int, dict] = {}
    raw: dict = {}
    pristines = {}
    for size in sizes:
        pristine = os.path.join(ws.work, str(size), "pristine")
        generate.generate(size, args.seed, pristine)
        pristines[size] = pristine
        runs = []
        for run in range(args.runs):
            started = time.monotonic()
            runs.append(one_run(ws, size, args.seed, run, pristine))
            print(f"bench: {size:,} people, run {run + 1}/{args.runs}: {time.monotonic() - started:.0f} s", flush=True)
        raw[size] = runs
        results[size] = summarise(runs)

    loop = None
    if not args.no_loop:
        loop = loop_baseline(ws, pristines[min(sizes)], args.loop_items, args.runs)
        print(f"bench: per-item loop over {args.loop_items} mailboxes: first {loop['first']['task']:.1f} s, "
              f"no-op {loop['noop']['task']:.1f} s (task); playbook {loop['first']['wall']:.1f} s / "
              f"{loop['noop']['wall']:.1f} s", flush=True)

    with open(os.path.join(ws.work, "results.json"), "w", encoding="utf-8") as stream:
        json.dump({"machine": machine(), "results": results, "loop": loop, "loop_items": args.loop_items,
                   "raw": raw}, stream, indent=1, default=str)
    print()
    print(f"Converge benchmark, {machine()}")
    print(table(results, loop, args.loop_items, args.runs))
    print()
    for line in targets(results):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
