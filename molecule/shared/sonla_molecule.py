# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pytest plugin of every molecule scenario's tests: the container under test and how to reach it.

Each scenario's verify.yml loads it with ``-p sonla_molecule`` and this folder on PYTHONPATH.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest
import testinfra


def pytest_addoption(parser):
    parser.addoption("--container", required=True, help="name of the podman container under test")


@pytest.fixture(scope="session")
def container(request) -> str:
    return request.config.getoption("--container")


@pytest.fixture(scope="session")
def host(container):
    return testinfra.get_host(f"podman://{container}")


@pytest.fixture(scope="session")
def server_ip(container) -> str:
    """The container's address: the tests connect from the host, outside the server's mynetworks."""
    out = subprocess.run(["podman", "inspect", "--format", "{{json .NetworkSettings}}", container],
                         check=True, capture_output=True, text=True).stdout
    settings = json.loads(out)
    address = settings.get("IPAddress") or next(
        (net["IPAddress"] for net in (settings.get("Networks") or {}).values() if net.get("IPAddress")), "")
    assert address, f"no IP address for {container}: {out}"
    return address


def wait_for(predicate, what: str, timeout: float = 30, interval: float = 0.5):
    """The first true result of ``predicate()``, polled until ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")
