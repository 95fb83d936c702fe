# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The mail user database: one SQLite file that Postfix, Dovecot and webmail read directly.

This module is the only place that knows the schema. Postfix (``sqlite:`` maps), Dovecot
(``driver = sqlite``) and the webmail password change query the ``mailbox`` table; the
``mailboxes`` module is the only writer of inventory-owned columns.

Timestamps are UTC text in SQLite's own ``YYYY-MM-DD HH:MM:SS`` form, so SQL can compare them
with ``datetime('now', '-90 days')`` directly (R6.1b, R8.1, R8.2a).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from contextlib import contextmanager
from datetime import UTC, datetime

SCHEMA_VERSION = 4

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS mailbox (
    address             TEXT PRIMARY KEY,           -- full address, lowercase ASCII (R5)
    local_part          TEXT NOT NULL,
    domain              TEXT NOT NULL,
    kind                TEXT NOT NULL CHECK (kind IN ('person', 'organization')),
    owner_id            TEXT NOT NULL,              -- inventory id of the person or organization
    display_name        TEXT NOT NULL,              -- UTF-8 Vietnamese (R3.4)
    organization        TEXT NOT NULL,              -- inventory id of the organization
    quota_mb            INTEGER NOT NULL CHECK (quota_mb > 0),   -- R9.2a
    over_quota          INTEGER NOT NULL DEFAULT 0, -- R9.2a: set and cleared by Dovecot, read by Postfix
    state               TEXT NOT NULL CHECK (state IN ('active', 'suspended')),
    password            TEXT NOT NULL,              -- '{SCHEME}hash', verified by Dovecot (R6)
    must_change         INTEGER NOT NULL DEFAULT 1, -- R6.1a, R8.3c
    created_at          TEXT NOT NULL,
    password_changed_at TEXT,                       -- R6.1b
    last_login_at       TEXT,                       -- R8.2a
    suspended_at        TEXT,                       -- R8.1
    suspended_reason    TEXT,
    suspended_by        TEXT CHECK (suspended_by IN ('inventory', 'lifecycle', 'operator')),
    request_ref         TEXT,                       -- R7.1c
    updated_at          TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS mailbox_event (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          TEXT NOT NULL,
    address     TEXT NOT NULL,
    action      TEXT NOT NULL,                      -- added, updated, suspended, restored, removed, reissued
    request_ref TEXT,
    detail      TEXT
);
CREATE INDEX IF NOT EXISTS mailbox_event_at ON mailbox_event (at);
-- R6.1b: hashes (never passwords) of an address's earlier passwords, so a change is not a return to one of
-- them (_password_change.py writes and reads it). They go with the mailbox.
CREATE TABLE IF NOT EXISTS password_history (
    address    TEXT NOT NULL,
    password   TEXT NOT NULL,                       -- '{SCHEME}hash' the address had until replaced_at
    replaced_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS password_history_address ON password_history (address, replaced_at);
CREATE TRIGGER IF NOT EXISTS mailbox_removed_forget_history AFTER DELETE ON mailbox BEGIN
    DELETE FROM password_history WHERE address = old.address;
END;
"""

# Schema 4 (issue 17: aliases and lists, the welcome mail, migration), added by _migrate as one step.
# alias_member holds final addresses (lists are expanded by _aliases.py): Postfix reads it with one query
# (roles/postfix/vars/main.yml, the "aliases" map) and gets every member of an alias, comma-separated.
ALIASES_SCHEMA = """
CREATE TABLE IF NOT EXISTS alias (
    address      TEXT PRIMARY KEY,                  -- full address; a legacy one may break R5 (kept for migration)
    kind         TEXT NOT NULL CHECK (kind IN ('role', 'list')),
    organization TEXT NOT NULL,                     -- inventory id of the organization that owns it
    display_name TEXT NOT NULL,
    legacy       INTEGER NOT NULL DEFAULT 0,
    request_ref  TEXT,                              -- R7.1c
    updated_at   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS alias_member (
    alias  TEXT NOT NULL,
    member TEXT NOT NULL,                           -- a mailbox of the domain, or an outside address
    PRIMARY KEY (alias, member)
);
CREATE INDEX IF NOT EXISTS alias_member_member ON alias_member (member);
-- A deleted or revoked mailbox leaves every list at once, so no mail to a list bounces for it (R7.2, R8.1).
CREATE TRIGGER IF NOT EXISTS mailbox_removed_leaves_lists AFTER DELETE ON mailbox BEGIN
    DELETE FROM alias_member WHERE member = old.address;
END;
-- The welcome mail goes once to each new mailbox (issue 17): sent ones are recorded here.
CREATE TABLE IF NOT EXISTS welcome_mail (
    address TEXT PRIMARY KEY,
    sent_at TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS mailbox_removed_forget_welcome AFTER DELETE ON mailbox BEGIN
    DELETE FROM welcome_mail WHERE address = old.address;
END;
-- Imports from the old mail system (sonla.mail.migrate): one row per mailbox, the last run's count.
CREATE TABLE IF NOT EXISTS migration (
    address        TEXT PRIMARY KEY,
    source         TEXT NOT NULL,                   -- user@host:port of the old account (never its password)
    runs           INTEGER NOT NULL,
    imported_total INTEGER NOT NULL,
    last_imported  INTEGER NOT NULL,
    first_at       TEXT NOT NULL,
    last_at        TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS mailbox_removed_forget_migration AFTER DELETE ON mailbox BEGIN
    DELETE FROM migration WHERE address = old.address;
END;
"""

# Columns the inventory owns: a converge compares and writes these, and only these.
INVENTORY_COLUMNS = ("kind", "owner_id", "display_name", "organization", "quota_mb", "request_ref")
# Whose mailbox it is: fixed at creation, never changed by a converge (issue 10, R5.3).
IDENTITY_COLUMNS = ("kind", "owner_id")


def utc_now() -> str:
    return format_time(datetime.now(UTC))


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def connect(path: str, upgrade: bool = True) -> sqlite3.Connection:
    """Open (creating if needed) the database with the schema in place.

    WAL lets Dovecot and Postfix keep reading while a converge writes. ``upgrade=False`` (check mode)
    reads the database as it is and changes nothing, not even an older schema.
    """
    connection = sqlite3.connect(path, isolation_level=None, timeout=30)
    connection.row_factory = sqlite3.Row
    if upgrade:
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")
        connection.executescript(SCHEMA)
        _migrate(connection)
    return connection


def _migrate(connection: sqlite3.Connection) -> None:
    """Bring a database made by an older version of this module to SCHEMA_VERSION, keeping every row."""
    columns = {row["name"] for row in connection.execute("PRAGMA table_info(mailbox)")}
    if "over_quota" not in columns:  # version 1 -> 2
        connection.execute("ALTER TABLE mailbox ADD COLUMN over_quota INTEGER NOT NULL DEFAULT 0")
    # 2 -> 3: SCHEMA's CREATE ... IF NOT EXISTS has added the empty password_history table and its trigger.
    # 3 -> 4 (issue 17): aliases, lists, the welcome mail and migration. Mailboxes older than this step are not new:
    # they are marked welcomed, so an upgrade mails nobody.
    welcomed_before = connection.execute("SELECT 1 FROM sqlite_master WHERE name = 'welcome_mail'").fetchone()
    connection.executescript(ALIASES_SCHEMA)
    if welcomed_before is None:
        connection.execute("INSERT OR IGNORE INTO welcome_mail (address, sent_at) SELECT address, ? FROM mailbox",
                           (utc_now(),))
    connection.execute(
        "INSERT INTO meta (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        " WHERE value <> excluded.value",
        (str(SCHEMA_VERSION),),
    )


def read_mailboxes(connection: sqlite3.Connection) -> dict[str, dict]:
    """Every mailbox row, keyed by address."""
    rows = connection.execute("SELECT * FROM mailbox")
    return {row["address"]: dict(row) for row in rows}


def read_mailbox(connection: sqlite3.Connection, address: str) -> dict | None:
    """One mailbox row, or None."""
    row = connection.execute("SELECT * FROM mailbox WHERE address = ?", (address,)).fetchone()
    return dict(row) if row else None


@contextmanager
def transaction(connection: sqlite3.Connection):
    """One write transaction, all of it or nothing; BEGIN IMMEDIATE takes the write lock up front."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def record_events(connection: sqlite3.Connection, events: list[tuple]) -> None:
    """Audit rows (at, address, action, request_ref, detail): what was done and on which request (R7.3, R11.2)."""
    connection.executemany("INSERT INTO mailbox_event (at, address, action, request_ref, detail) VALUES (?, ?, ?, ?, ?)", events)


HANDOFF_DETAIL = "handoff="  # 'added' and 'reissued' events name the handoff file that holds the password


def handoffs_committed(connection: sqlite3.Connection, handoff_ids: list[str]) -> list[str]:
    """Which of these handoff files' passwords were committed: their accounts exist with those passwords."""
    details = [HANDOFF_DETAIL + handoff_id for handoff_id in handoff_ids]
    found = set()
    for start in range(0, len(details), 500):  # SQLite's parameter limit
        chunk = details[start:start + 500]
        rows = connection.execute(
            f"SELECT DISTINCT detail FROM mailbox_event WHERE detail IN ({', '.join('?' * len(chunk))})", chunk)
        found.update(row["detail"][len(HANDOFF_DETAIL):] for row in rows)
    return sorted(found)


def never_used(connection: sqlite3.Connection, addresses=None) -> set[str]:
    """Accounts still on a password the tools issued: never logged in, never chose one (R6.1a).

    Issued one-time passwords are the only {SSHA512} hashes; a password a user chose is {BLF-CRYPT}.
    """
    query = "SELECT address FROM mailbox WHERE must_change = 1 AND last_login_at IS NULL AND password LIKE '{SSHA512}%'"
    return {row["address"] for row in connection.execute(query)
            if addresses is None or row["address"] in addresses}


def restores_done(connection: sqlite3.Connection) -> set[tuple[str, str]]:
    """The (address, request) pairs of restore requests already carried out (R8.3a: each applies once)."""
    rows = connection.execute(
        "SELECT address, request_ref FROM mailbox_event WHERE action = 'restored' AND request_ref IS NOT NULL")
    return {(row["address"], row["request_ref"]) for row in rows}


def _mail_dir(mail_root: str, address: str) -> tuple[str, str]:
    """The mail root (resolved) and ``<mail_root>/<domain>/<local part>``; refuses a path outside the root."""
    local_part, domain = address.split("@", 1)
    root = os.path.realpath(mail_root)
    target = os.path.realpath(os.path.join(root, domain, local_part))
    if os.path.dirname(os.path.dirname(target)) != root:
        raise ValueError(f"mail directory of {address} is outside {root}")
    return root, target


SET_ASIDE_PREFIX = ".removing-"


def set_aside_mail(mail_root: str, address: str, now: str) -> tuple[str, str] | None:
    """Move a mailbox's storage out of Dovecot's way before its row is deleted; None when it had none.

    Returns (where it went, where it was), so a failed commit can put it back and a committed one
    can delete it (R7.2): rows and mail go together or not at all.
    """
    _, target = _mail_dir(mail_root, address)
    if not os.path.isdir(target):
        return None
    stamp = now.replace(" ", "T").replace(":", "")
    aside = os.path.join(os.path.dirname(target), f"{SET_ASIDE_PREFIX}{os.path.basename(target)}-{stamp}")
    os.rename(target, aside)
    return aside, target


def purge_set_aside(mail_root: str) -> list[str]:
    """Delete the storage of removed mailboxes that a run set aside and could not delete (R7.2)."""
    purged = []
    if not os.path.isdir(mail_root):
        return purged
    for domain in os.listdir(mail_root):
        folder = os.path.join(mail_root, domain)
        if not os.path.isdir(folder) or os.path.islink(folder):
            continue
        for name in os.listdir(folder):
            if name.startswith(SET_ASIDE_PREFIX):
                shutil.rmtree(os.path.join(folder, name))
                purged.append(os.path.join(folder, name))
    return purged


def remove_mail(mail_root: str, address: str) -> bool:
    """Delete one mailbox's storage, ``<mail_root>/<domain>/<local part>`` (R7.2); False when there was none.

    Refuses any path that would leave the mail root.
    """
    _, target = _mail_dir(mail_root, address)
    if not os.path.isdir(target):
        return False
    shutil.rmtree(target)
    return True


_INSERT = """
INSERT INTO mailbox (address, local_part, domain, kind, owner_id, display_name, organization, quota_mb,
                     state, password, must_change, created_at, password_changed_at,
                     suspended_at, suspended_reason, suspended_by, request_ref, updated_at)
VALUES (:address, :local_part, :domain, :kind, :owner_id, :display_name, :organization, :quota_mb,
        :state, :password, 1, :now, :now, :suspended_at, :suspended_reason, :suspended_by, :request_ref, :now)
"""
_UPDATABLE = (frozenset(INVENTORY_COLUMNS) - frozenset(IDENTITY_COLUMNS)) | {"suspended_reason"}


def apply_plan(connection: sqlite3.Connection, plan, password_hashes: dict[str, str], now: str,
               handoff_id: str | None = None, reissue: tuple = ()) -> None:
    """Write a plan from ``_mailbox_plan.build_plan`` in one transaction: all of it or nothing.

    ``handoff_id`` names the handoff file that holds the new passwords; it is recorded with each account
    so a later run can tell whether that file's passwords were committed. ``reissue`` lists existing,
    never-used accounts that get a new one-time password from ``password_hashes``.
    """
    handoff = HANDOFF_DETAIL + handoff_id if handoff_id else None
    inserts = []
    events = []
    for mailbox in plan.added:
        address = mailbox["address"]
        local_part, domain = address.split("@", 1)
        suspended = mailbox["state"] == "suspended"
        inserts.append({
            "address": address, "local_part": local_part, "domain": domain, "kind": mailbox["kind"],
            "owner_id": mailbox["owner_id"], "display_name": mailbox["display_name"],
            "organization": mailbox["organization"], "quota_mb": mailbox["quota_mb"], "state": mailbox["state"],
            "password": password_hashes[address], "now": now, "suspended_at": now if suspended else None,
            "suspended_reason": mailbox.get("reason") if suspended else None,
            "suspended_by": "inventory" if suspended else None, "request_ref": mailbox.get("request"),
        })
        events.append((now, address, "added", mailbox.get("request"), handoff))
    with transaction(connection):
        connection.executemany(_INSERT, inserts)
        for update in plan.updated:
            changes = update["changes"]
            columns = [column for column in changes if column in _UPDATABLE]
            assignments = ", ".join(f"{column} = ?" for column in columns)
            if "quota_mb" in columns:
                # Dovecot sets the flag again at the next delivery if the mailbox is still full under the new quota.
                assignments += ", over_quota = 0"
            values = [changes[column][1] for column in columns]
            connection.execute(
                f"UPDATE mailbox SET {assignments}, updated_at = ? WHERE address = ?", (*values, now, update["address"])
            )
            events.append((now, update["address"], "updated", update.get("request"),
                           ", ".join(f"{column}: {changes[column][0]} -> {changes[column][1]}" for column in columns)))
        connection.executemany(
            "UPDATE mailbox SET state = 'suspended', suspended_at = ?, suspended_reason = ?, suspended_by = 'inventory',"
            " updated_at = ? WHERE address = ?",
            [(now, item["reason"], now, item["address"]) for item in plan.suspended],
        )
        events.extend((now, item["address"], "suspended", item["request"], item["reason"]) for item in plan.suspended)
        # R8.3c: a restored account must change its password at the first login.
        connection.executemany(
            "UPDATE mailbox SET state = 'active', must_change = 1, suspended_at = NULL, suspended_reason = NULL,"
            " suspended_by = NULL, updated_at = ? WHERE address = ?",
            [(now, item["address"]) for item in plan.restored],
        )
        events.extend((now, item["address"], "restored", item["request"], None) for item in plan.restored)
        connection.executemany("DELETE FROM mailbox WHERE address = ?", [(address,) for address in plan.removed])
        events.extend((now, address, "removed", plan.removal_requests.get(address), None) for address in plan.removed)
        # R6.1a: a lost handoff is recovered by a new one-time password, only for accounts never used.
        connection.executemany(
            "UPDATE mailbox SET password = ?, must_change = 1, password_changed_at = ?, updated_at = ?"
            " WHERE address = ? AND must_change = 1 AND last_login_at IS NULL",
            [(password_hashes[address], now, now, address) for address in reissue],
        )
        events.extend((now, address, "reissued", None, handoff) for address in reissue)
        record_events(connection, events)
