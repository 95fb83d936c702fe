# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures of the lifecycle walk-through: the molecule inventory (the container's are in molecule/shared)."""

from __future__ import annotations

import pytest
from sonla_molecule import write_test_inventory


def pytest_addoption(parser):
    parser.addoption("--scenario", required=True, help="the scenario folder (converge.yml, inventory-mail/)")


@pytest.fixture(scope="session")
def ansible_inventory(container, scenario, tmp_path_factory) -> str:
    """An inventory for the ansible-playbook runs of the tests: the same hosts and variables as molecule.yml."""
    return write_test_inventory(tmp_path_factory.mktemp("ansible"), container, scenario)


@pytest.fixture(scope="session")
def scenario(request) -> str:
    return request.config.getoption("--scenario")
