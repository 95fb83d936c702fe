# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The postfix role's DANE check, as Ansible runs it (docs/tls.md): named resolvers must be all /etc/resolv.conf asks.

One ansible-playbook run on the controller: the role's two tasks as written, with only the slurped path moved
from /etc/resolv.conf to a file per host, so each host stands for a server with its own resolver list.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
TASKS = ("Read the resolvers Postfix asks", "Check that only the named DNSSEC-validating resolvers are asked")
CASES = {
    "none_named": ([], "nameserver 8.8.8.8\n", "skipped"),
    "local_unbound": (["127.0.0.1"], "nameserver 127.0.0.1\noptions trust-ad\n", "passed"),
    "two_named": (["10.0.0.53", "10.0.1.53"], "nameserver 10.0.1.53\nnameserver 10.0.0.53\n", "passed"),
    "public_fallback": (["127.0.0.1"], "nameserver 127.0.0.1\nnameserver 8.8.8.8\n", "failed"),
    "no_nameserver": (["127.0.0.1"], "search sonla.gov.vn\n", "failed"),
}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dane")
    hosts = {}
    for name, (named, resolv_conf, _) in CASES.items():
        (folder / name).write_text(resolv_conf)
        hosts[name] = {"postfix_dnssec_resolvers": named, "resolv_conf_path": str(folder / name),
                       "ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    (folder / "inventory.json").write_text(json.dumps({"all": {"hosts": hosts}}))
    with open(os.path.join(ROOT, "roles", "postfix", "tasks", "main.yml"), encoding="utf-8") as handle:
        tasks = [task for task in yaml.safe_load(handle) if task.get("name") in TASKS]
    assert [task["name"] for task in tasks] == list(TASKS)
    assert tasks[0]["ansible.builtin.slurp"]["src"] == "/etc/resolv.conf"
    tasks[0]["ansible.builtin.slurp"]["src"] = "{{ resolv_conf_path }}"
    (folder / "tasks.yml").write_text(yaml.safe_dump(tasks))
    (folder / "play.yml").write_text(
        f"- hosts: all\n  gather_facts: false\n  tasks:\n    - ansible.builtin.include_tasks: {folder / 'tasks.yml'}\n")
    environment = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
                       ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"), ANSIBLE_STDOUT_CALLBACK="json")
    run = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i",
                          str(folder / "inventory.json"), str(folder / "play.yml")],
                         capture_output=True, text=True, env=environment, cwd=ROOT, check=False, timeout=300)
    report = json.loads(run.stdout)
    outcome = {}
    for task in report["plays"][0]["tasks"]:
        if task["task"]["name"] == TASKS[1]:
            outcome.update(task["hosts"])
    return outcome


@pytest.mark.parametrize("case", CASES)
def test_dane_only_with_the_named_resolvers_alone(results, case):
    expected = CASES[case][2]
    result = results[case]
    if expected == "skipped":
        assert result.get("skipped"), result
    elif expected == "passed":
        assert not result.get("failed") and not result.get("skipped"), result
    else:
        assert result.get("failed"), result
        assert "postfix_dnssec_resolvers" in result["msg"] and "/etc/resolv.conf" in result["msg"], result["msg"]
        assert ("8.8.8.8" if case == "public_fallback" else "no nameserver") in result["msg"], result["msg"]
