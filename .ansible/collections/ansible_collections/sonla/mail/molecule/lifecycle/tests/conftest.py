# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures of the lifecycle walk-through: the container, its address, the molecule inventory."""

from __future__ import annotations

import json
import subprocess

import pytest
import testinfra


def pytest_addoption(parser):
    parser.addoption("--container", required=True, help="name of the podman container under test")
    parser.addoption("--inventory", required=True, help="molecule's Ansible inventory (for ansible-playbook runs)")
    parser.addoption("--scenario", required=True, help="the scenario folder (converge.yml, inventory-mail/)")


@pytest.fixture(scope="session")
def container(request) -> str:
    return request.config.getoption("--container")


@pytest.fixture(scope="session")
def ansible_inventory(request) -> str:
    return request.config.getoption("--inventory")


@pytest.fixture(scope="session")
def scenario(request) -> str:
    return request.config.getoption("--scenario")


@pytest.fixture(scope="session")
def host(container):
    return testinfra.get_host(f"podman://{container}")


@pytest.fixture(scope="session")
def server_ip(container) -> str:
    """The container's address: the clients connect from the host, outside the server's mynetworks."""
    out = subprocess.run(["podman", "inspect", "--format", "{{json .NetworkSettings}}", container],
                         check=True, capture_output=True, text=True).stdout
    settings = json.loads(out)
    address = settings.get("IPAddress") or next(
        (net["IPAddress"] for net in (settings.get("Networks") or {}).values() if net.get("IPAddress")), "")
    assert address, f"no IP address for {container}: {out}"
    return address
