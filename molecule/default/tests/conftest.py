# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures of the end-to-end mail tests: test passwords (the container's fixtures are in molecule/shared)."""

from __future__ import annotations

import base64
import hashlib
import os

import pytest

DOMAIN = "sonla.gov.vn"
PASSWORD = "Kiem-tra#2025"  # test-only password, set below in the test container only

# Addresses pinned in molecule/default/inventory-mail/addresses.lock.yml.
ACTIVE = f"annv.skhcn@{DOMAIN}"
SMALL_QUOTA = f"binhtt.skhcn@{DOMAIN}"
SUSPENDED = f"chienlv.skhcn@{DOMAIN}"
MUST_CHANGE = f"dungct.skhcn@{DOMAIN}"


def ssha512(password: str) -> str:
    salt = os.urandom(8)
    digest = hashlib.sha512(password.encode() + salt).digest()
    return "{SSHA512}" + base64.b64encode(digest + salt).decode()


SET_PASSWORD = """
import sqlite3, sys
connection = sqlite3.connect("/var/lib/sonla-mail/users.sqlite", timeout=30)
with connection:
    changed = connection.execute(
        "UPDATE mailbox SET password = ?, must_change = ?, password_changed_at = datetime('now') WHERE address = ?",
        (sys.argv[1], int(sys.argv[2]), sys.argv[3]),
    ).rowcount
assert changed == 1, sys.argv[3]
"""


@pytest.fixture(scope="session", autouse=True)
def known_passwords(host):
    """Give the test accounts a known password.

    This simulates the password change users will make in the webmail (a later issue): the initial
    passwords of the mailboxes module go to a handoff file only. The must-change account keeps its
    flag (R6.1a), so its refusal below is about the flag and not about a wrong password.
    """
    for address, must_change in ((ACTIVE, 0), (SMALL_QUOTA, 0), (SUSPENDED, 0), (MUST_CHANGE, 1)):
        result = host.run("python3 -c %s %s %s %s", SET_PASSWORD, ssha512(PASSWORD), str(must_change), address)
        assert result.rc == 0, result.stderr
