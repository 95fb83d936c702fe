# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The webmail role refuses a webmail_host that is not a DNS host name before it writes anything (R3.1, issue 10).

One ansible-playbook run on the controller: each inventory host is "localhost" with its own webmail_host;
the role's first task must pass the good names and stop every bad one with a message naming the variable
and the rule. The bad ones come from the issue's probe: PHP code, an nginx block serving /etc, SQL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))

GOOD = ["mail.sonla.gov.vn", "webmail-2.sonla.gov.vn", "a" * 63 + ".vn", ".".join(["a" * 62] * 4)]  # 251 chars
BAD = [
    "",
    "Mail.sonla.gov.vn",  # upper case
    "mail.sonla.gov.vn;\n    root /etc;",  # nginx directive
    "x'; system('id'); //",  # PHP
    "' OR 1=1 --",  # SQL
    "mail.sonla.gov.vn\n",  # a trailing newline
    "-mail.sonla.gov.vn",
    "mail-.sonla.gov.vn",
    "mail..sonla.gov.vn",
    "mail.sonla.gov.vn.",
    "a" * 64 + ".vn",  # a label over 63
    ".".join(["a" * 63] * 4),  # 255 characters
    "thư.sonla.gov.vn",
    "mail_1.sonla.gov.vn",
]


@pytest.fixture(scope="module")
def outcome(tmp_path_factory):
    folder = tmp_path_factory.mktemp("asserts")
    hosts = {f"h{i}": {"webmail_host": value} for i, value in enumerate(GOOD + BAD)}
    for settings in hosts.values():
        settings.update(ansible_connection="local", ansible_host="127.0.0.1", ansible_python_interpreter=sys.executable)
    (folder / "inventory.json").write_text(json.dumps({"all": {"hosts": hosts}}))
    environment = dict(
        os.environ,
        ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"),
        ANSIBLE_STDOUT_CALLBACK="json",
    )
    # Only the role's host-name check, the first task of tasks/main.yml as written, with the role's pattern:
    # the hosts that pass must not go on to install packages on this machine.
    with open(os.path.join(ROOT, "roles", "webmail", "tasks", "main.yml"), encoding="utf-8") as handle:
        first = yaml.safe_load(handle)[0]
    with open(os.path.join(ROOT, "roles", "webmail", "vars", "main.yml"), encoding="utf-8") as handle:
        role_vars = yaml.safe_load(handle)
    first["vars"] = {"__webmail_host_pattern": role_vars["__webmail_host_pattern"]}
    (folder / "first.yml").write_text(yaml.safe_dump([first], allow_unicode=True))
    (folder / "play.yml").write_text(
        f"- hosts: all\n  gather_facts: false\n  tasks:\n    - ansible.builtin.include_tasks: {folder / 'first.yml'}\n"
    )
    command = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(folder / "inventory.json"),
               str(folder / "play.yml")]
    run = subprocess.run(command, capture_output=True, text=True, env=environment, cwd=ROOT, check=False, timeout=300)
    report = json.loads(run.stdout)
    results = {}
    for play in report["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"] == first["name"]:
                results.update(task["hosts"])
    return hosts, results


def test_good_host_names_pass(outcome):
    hosts, results = outcome
    for name, settings in hosts.items():
        if settings["webmail_host"] in GOOD:
            assert not results[name].get("failed"), (settings["webmail_host"], results[name])


def test_bad_host_names_are_refused_naming_the_variable_and_rule(outcome):
    hosts, results = outcome
    refused = 0
    for name, settings in hosts.items():
        if settings["webmail_host"] in BAD:
            assert results[name].get("failed"), settings["webmail_host"]
            assert "webmail_host" in results[name]["msg"] and "(R3.1)" in results[name]["msg"]
            assert "253" in results[name]["msg"] and "63" in results[name]["msg"]
            refused += 1
    assert refused == len(BAD)
