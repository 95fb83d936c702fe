# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the tests of site.yml's servers play share: the play as written, and a run of some of its tasks with its own
variables on the controller, for hosts placed in the inventory's groups as an operator would."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def servers_play() -> dict:
    """site.yml's play of the mail servers."""
    with open(os.path.join(ROOT, "playbooks", "site.yml"), encoding="utf-8") as handle:
        return next(play for play in yaml.safe_load(handle) if play.get("hosts") == "mail_servers")


def run_tasks(folder, variables: dict, tasks: list[dict], hosts: dict[str, tuple[list[str], dict]],
              *options: str) -> list[dict]:
    """Run ``tasks`` with the play's ``variables`` for ``hosts`` (name: its groups besides mail_servers, its
    variables), each on the controller; returns the JSON callback's tasks."""
    (folder / "play.yml").write_text(yaml.safe_dump(
        [{"hosts": "mail_servers", "gather_facts": False, "vars": variables, "tasks": tasks}], allow_unicode=True))
    inventory: dict = {"all": {"children": {}}}
    for name, (groups, settings) in hosts.items():
        host = {**settings, "ansible_connection": "local", "ansible_python_interpreter": sys.executable}
        for group in ["mail_servers", *groups]:
            inventory["all"]["children"].setdefault(group, {"hosts": {}})["hosts"][name] = host
    (folder / "inventory.json").write_text(json.dumps(inventory))
    environment = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="json",
                       ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"))
    command = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(folder / "inventory.json"),
               str(folder / "play.yml"), *options]
    run = subprocess.run(command, capture_output=True, text=True, env=environment, cwd=ROOT, check=False, timeout=300)
    return [task for play in json.loads(run.stdout)["plays"] for task in play["tasks"]]
