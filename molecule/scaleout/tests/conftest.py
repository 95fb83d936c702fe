# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options of the scale-out tests (the container's are in molecule/shared): the scenario folder and molecule's
inventory, for the converge the move test runs with a changed mail inventory."""

from __future__ import annotations

import pytest


def pytest_addoption(parser):
    parser.addoption("--scenario", required=True, help="the scenario folder (inventory-mail/)")
    parser.addoption("--ansible-inventory", required=True, help="molecule's inventory of the scenario's hosts")


@pytest.fixture(scope="session")
def scenario(request) -> str:
    return request.config.getoption("--scenario")


@pytest.fixture(scope="session")
def ansible_inventory(request) -> str:
    return request.config.getoption("--ansible-inventory")
