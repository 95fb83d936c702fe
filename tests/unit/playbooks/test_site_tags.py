# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""site.yml's inventory tag (issue 19, docs/pipeline.md): a change of people or aliases converges the mailboxes, the
aliases, the notices, the welcome mails and the lifecycle's configuration, not the server's setup that an untagged run
proves. Listed by ansible-playbook itself, as a run with those tags would select them."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
# What an inventory change touches: these run under --tags inventory.
INVENTORY_TASKS = (
    "sonla.mail.mailboxes : Converge every mailbox in one call",
    "sonla.mail.mailboxes : Converge every alias and list in one call, and export the directory (R10.1b)",
    "sonla.mail.lifecycle : Check the lifecycle policy against the regulation (R6.1b, R8.1, R8.2a, R8.2b, R12.6)",
    "sonla.mail.lifecycle : Install the lifecycle, the sending limits' policy service, the log search and their clocks",
    "Send the result notices of this converge (R7.3)",
    "Welcome each new mailbox, once",
)
# The server's setup: only an untagged run (or the role's own tag) converges it.
SETUP_TASKS = (
    "sonla.mail.mailboxes : Create the group of the services that read the user database",
    "sonla.mail.mailboxes : Install what the server-side tools need",
    "sonla.mail.mailboxes : Install the collection's Python library and its stamp on the server",
    "sonla.mail.mailboxes : Create the user database folder",
    "sonla.mail.lifecycle : Create the user of the sending limits",
    "sonla.mail.lifecycle : Install cron",
    "sonla.mail.lifecycle : Start cron",
    "sonla.mail.postfix : Write main.cf, master.cf, the DH group of the TLS profile's DHE suites and the log rotation",
)


def listed(*options: str) -> set[str]:
    environment = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
                       ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"))
    out = subprocess.run(["ansible-playbook", "-i", os.path.join(ROOT, "inventories", "demo"),
                          os.path.join(ROOT, "playbooks", "site.yml"), "--list-tasks", *options],
                         cwd=ROOT, env=environment, check=True, capture_output=True, text=True).stdout
    return {match.group(1) for match in re.finditer(r"^ {6}(.+?)\tTAGS: ", out, re.MULTILINE)}


@pytest.fixture(scope="module")
def untagged() -> set[str]:
    return listed()


@pytest.fixture(scope="module")
def inventory_tagged() -> set[str]:
    return listed("--tags", "inventory")


def test_an_inventory_change_converges_what_it_touches(inventory_tagged):
    assert set(INVENTORY_TASKS) <= inventory_tagged, set(INVENTORY_TASKS) - inventory_tagged


def test_an_inventory_change_leaves_the_servers_setup_alone(inventory_tagged):
    assert not set(SETUP_TASKS) & inventory_tagged


def test_an_untagged_run_converges_both(untagged):
    assert set(INVENTORY_TASKS) | set(SETUP_TASKS) <= untagged, (set(INVENTORY_TASKS) | set(SETUP_TASKS)) - untagged
