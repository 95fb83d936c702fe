# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The benchmark's inventory generator: reproducible from its seed, and lint-clean."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _generator():
    spec = importlib.util.spec_from_file_location("bench_generate", os.path.join(ROOT, "bench", "generate.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _files(folder: str) -> dict[str, bytes]:
    found = {}
    for directory, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(directory, name)
            with open(path, "rb") as stream:
                found[os.path.relpath(path, folder)] = stream.read()
    return found


def test_same_seed_same_inventory(tmp_path):
    generate = _generator()
    generate.generate(200, 7, str(tmp_path / "a"))
    generate.generate(200, 7, str(tmp_path / "b"))
    generate.generate(200, 8, str(tmp_path / "c"))
    first = _files(str(tmp_path / "a"))
    assert first == _files(str(tmp_path / "b"))
    assert first != _files(str(tmp_path / "c"))


def test_inventory_shape(tmp_path):
    generate = _generator()
    mail = generate.generate(200, 1, str(tmp_path))
    files = _files(mail)
    assert {"policy.yml", "organizations.yml", "addresses.lock.yml"} <= set(files)
    people = [name for name in files if name.startswith("people" + os.sep)]
    assert len(people) > 100  # one file per department, commune and ward
    assert sum(files[name].count(b"\n  - id: ") for name in people) == 200
    assert 550 <= files["organizations.yml"].count(b"\n  - id: ") <= 700


def test_lint_clean(tmp_path):
    _generator().generate(200, 1, str(tmp_path))
    done = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "lint-inventory"), str(tmp_path)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == ""
