# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures of the backup scenario: the molecule inventory and the SFTP repository's key (the container's
fixtures are in molecule/shared)."""

from __future__ import annotations

import os

import pytest
from sonla_molecule import write_test_inventory

PASSPHRASE = "molecule-only-passphrase-not-secret"  # as in molecule.yml


def pytest_addoption(parser):
    parser.addoption("--scenario", required=True, help="the scenario folder (converge.yml, inventory-mail/)")
    parser.addoption("--ephemeral", required=True, help="molecule's ephemeral folder (prepare.yml's SSH key)")
    parser.addoption("--artifacts", required=True, help="folder for the report's page and screenshot")


@pytest.fixture(scope="session")
def ansible_inventory(container, scenario, request, tmp_path_factory) -> str:
    """An inventory for the ansible-playbook runs of the tests: the same hosts and variables as molecule.yml."""
    keys = os.path.join(request.config.getoption("--ephemeral"), "backup-ssh")
    made = {}
    for name in ("id_ed25519", "known_hosts", "address"):
        with open(os.path.join(keys, name), encoding="ascii") as stream:
            made[name] = stream.read().strip()
    return write_test_inventory(
        tmp_path_factory.mktemp("ansible"), container, scenario, backup_password=PASSPHRASE,
        backup_repository=f"sftp:restic@{made['address']}:/srv/restic/sonla-mail", backup_notify=["skhcn@sonla.gov.vn"],
        backup_ssh_key=made["id_ed25519"] + "\n", backup_ssh_known_hosts=[made["known_hosts"]])


@pytest.fixture(scope="session")
def scenario(request) -> str:
    return request.config.getoption("--scenario")


@pytest.fixture(scope="session")
def artifacts(request) -> str:
    path = request.config.getoption("--artifacts")
    os.makedirs(path, exist_ok=True)
    return path
