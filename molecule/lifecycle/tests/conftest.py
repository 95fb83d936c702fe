# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures of the lifecycle walk-through: the molecule inventory (the container's are in molecule/shared)."""

from __future__ import annotations

import json
import sys

import pytest


def pytest_addoption(parser):
    parser.addoption("--scenario", required=True, help="the scenario folder (converge.yml, inventory-mail/)")


@pytest.fixture(scope="session")
def ansible_inventory(container, scenario, tmp_path_factory) -> str:
    """An inventory for the ansible-playbook runs of the tests: the same hosts and variables as molecule.yml."""
    folder = tmp_path_factory.mktemp("ansible")
    inventory = {
        "all": {
            "hosts": {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                                    "sonla_mail_inventory_path": f"{scenario}/inventory-mail"}},
            "children": {"mail_servers": {
                "hosts": {container: {"ansible_connection": "containers.podman.podman"}},
                "vars": {"ansible_python_interpreter": "/usr/bin/python3", "postfix_tls_selfsigned": True,
                         "dovecot_tls_selfsigned": True, "webmail_tls_selfsigned": True,
                         "mailboxes_handoff_dir": str(folder / "handoff"), "sonla_mail_filter_enabled": False},
            }},
        },
    }
    path = folder / "hosts.yml"
    path.write_text(json.dumps(inventory), encoding="utf-8")  # JSON is YAML
    return str(path)


@pytest.fixture(scope="session")
def scenario(request) -> str:
    return request.config.getoption("--scenario")
