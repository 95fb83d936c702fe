# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""scripts/with-mitogen (docs/pipeline.md, issue 19) hands its command Mitogen's strategy and where to find it."""

from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def test_the_command_runs_with_mitogens_strategy():
    # ansible-playbook of this interpreter's environment: the one scripts/setup.sh installs with Mitogen.
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    env.pop("ANSIBLE_COLLECTIONS_SCAN_SYS_PATH", None)
    out = subprocess.run([os.path.join(ROOT, "scripts", "with-mitogen"), "env"], env=env, check=True,
                         capture_output=True, text=True).stdout
    settings = dict(line.split("=", 1) for line in out.splitlines() if line.startswith("ANSIBLE_"))
    assert settings["ANSIBLE_STRATEGY"] == "mitogen_linear"
    assert os.path.isfile(os.path.join(settings["ANSIBLE_STRATEGY_PLUGINS"], "mitogen_linear.py"))
    assert settings["ANSIBLE_COLLECTIONS_SCAN_SYS_PATH"] == "False"  # Python's packages not listed at each task


def test_a_command_may_still_ask_for_pythons_collections():
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
               ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="True")
    out = subprocess.run([os.path.join(ROOT, "scripts", "with-mitogen"), "env"], env=env, check=True,
                         capture_output=True, text=True).stdout
    assert "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=True" in out.splitlines()
