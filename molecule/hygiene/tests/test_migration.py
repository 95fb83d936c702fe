# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Migration from the old system (issue 17, docs/migration.md), against the converged server and the old one.

The sonla-hygiene-legacy container plays the old server: a plain Dovecot 2.3 whose account em.dang holds 300
messages in four folders (prepare.yml, files/legacy-mail.py). The inventory's test-0005 names it in
``migrate_from``; site.yml has run twice (converge, idempotence) before these tests.
"""

from __future__ import annotations

import imaplib
import re

import pytest
from conftest import DOMAIN, PASSWORD, SET_PASSWORD, copies, imap_login, message, smtp_send, ssha512
from sonla_molecule import container_ip, sql, wait_for

MIGRATED = f"emdv.skhcn@{DOMAIN}"
LEGACY_ADDRESS = f"dang_van_em@{DOMAIN}"  # the old address, kept as an alias
LEGACY_USER, LEGACY_PASSWORD = "em.dang", "Mat-khau-cu#2019"  # prepare.yml; files/legacy-credentials.vault
LEGACY_MESSAGES = 300
_LIST = re.compile(rb'^\((?P<flags>[^)]*)\) (?:"(?P<sep>[^"]*)"|NIL) (?P<name>.+)$')


def folders(imap: imaplib.IMAP4) -> dict[str, bytes]:
    """Every selectable folder: {name with '/' as separator: name as the server spells it}."""
    _, lines = imap.list()
    found = {}
    for line in lines:
        match = _LIST.match(line)
        if match and b"\\Noselect" not in match["flags"]:
            name = match["name"].strip(b'"')
            separator = match["sep"] or b"/"
            found[name.replace(separator, b"/").decode("ascii")] = name
    return found


def old_messages(imap: imaplib.IMAP4) -> dict[str, list[bytes]]:
    """{folder: sorted raw messages} of the old system's mail (Message-ID at old.sonla.gov.vn) in every folder."""
    found = {}
    for folder, name in folders(imap).items():
        _, exists = imap.select(b'"' + name + b'"', readonly=True)
        if not int(exists[0]):
            continue
        _, data = imap.fetch(b"1:*", "(BODY.PEEK[])")
        raws = [part[1] for part in data if isinstance(part, tuple)]
        raws = [raw for raw in raws if re.search(rb"^Message-ID: <legacy-\d+@old\.sonla\.gov\.vn>", raw, re.MULTILINE)]
        if raws:
            found[folder] = sorted(raws)
    return found


@pytest.fixture(scope="module")
def migrated_password(host):
    result = host.run("python3 -c %s %s %s", SET_PASSWORD, ssha512(PASSWORD), MIGRATED)
    assert result.rc == 0, result.stderr


def test_every_old_message_is_in_the_new_mailbox_byte_for_byte(migrated_password, server_ip):
    legacy = imaplib.IMAP4(container_ip("sonla-hygiene-legacy"), 143, timeout=30)
    legacy.login(LEGACY_USER, LEGACY_PASSWORD)
    try:
        before = old_messages(legacy)
    finally:
        legacy.logout()
    assert sum(len(raws) for raws in before.values()) == LEGACY_MESSAGES
    assert {"INBOX", "Sent", "Archive/2024"} <= set(before) and len(before) == 4  # and the Vietnamese-named one
    new = imap_login(server_ip, MIGRATED)
    try:
        after = old_messages(new)
    finally:
        new.logout()
    assert after.keys() == before.keys()
    for folder in before:
        assert after[folder] == before[folder], folder


def test_the_second_run_imported_nothing(host):
    [row] = sql(host, "SELECT runs, imported_total, last_imported, source FROM migration WHERE address = ?", MIGRATED)
    assert row == {"runs": 2, "imported_total": LEGACY_MESSAGES, "last_imported": 0,
                   "source": "em.dang@legacy.test.invalid:143"}
    events = sql(host, "SELECT detail FROM mailbox_event WHERE address = ? AND action = 'migrated'", MIGRATED)
    assert events == [{"detail": f"{LEGACY_MESSAGES} messages from em.dang@legacy.test.invalid:143"}]


def test_the_old_address_still_reaches_the_person(host, server_ip, unique):
    msg = message(LEGACY_ADDRESS, f"Gửi địa chỉ cũ {unique}")
    code, reply = smtp_send(server_ip, msg)
    assert code == 250, (code, reply)
    wait_for(lambda: copies(host, MIGRATED, "header", "Message-ID", msg["Message-ID"]), "the message at the new mailbox")


def test_the_legacy_password_is_nowhere_on_the_server(host):
    """It reached doveadm in a temporary file only (R10.2b): nothing is left in /tmp, the logs or the database."""
    found = host.run("grep -rlF %s /tmp /var/tmp /var/log /var/lib/sonla-mail /etc/dovecot", LEGACY_PASSWORD)
    assert found.rc == 1 and found.stdout == "", found.stdout
