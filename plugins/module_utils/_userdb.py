# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The mail user database: one SQLite file on a single host, or one PostgreSQL database for several (issue 15).

This module is the only place that knows the schema. Postfix (``sqlite:``/``pgsql:`` maps), Dovecot
(``driver = sqlite``/``pgsql``) and the webmail password change query the ``mailbox`` table; the
``mailboxes`` module is the only writer of inventory-owned columns.

Both engines get the same schema (PostgreSQL's DDL is derived from ``SCHEMA``) and the same SQL: every
query here is written in SQLite's dialect, and ``PostgresConnection`` translates its placeholders, so
there is one plan/apply path, not two.

Timestamps are UTC text in SQLite's own ``YYYY-MM-DD HH:MM:SS`` form, so SQL can compare them
with ``datetime('now', '-90 days')`` directly (R6.1b, R8.1, R8.2a); text of that form orders the same
in PostgreSQL.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime

try:
    import psycopg
except ImportError:  # only hosts that use PostgreSQL need it (Debian's python3-psycopg)
    psycopg = None

# 4: issue 15, mailbox.host; 5: issue 17, the delegation table; 6: issue 16, event columns; 7: issue 17, aliases,
# lists, the welcome mail and migration; 8: issue 15, moving a mailbox to another mailstore; 9: issue 15, the mail the
# mailstores still have to erase; 10: issue 15, the sending limits' counts every MX shares (PostgreSQL only).
SCHEMA_VERSION = 10

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
    updated_at          TEXT NOT NULL,
    host                TEXT                        -- issue 15: the mailstore holding it; NULL on a single host
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
CREATE INDEX IF NOT EXISTS mailbox_event_address ON mailbox_event (address);
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
-- Issue 17, agency mailboxes by delegation: who may open an organization's mailbox with their own login.
-- Dovecot gives a delegate the ACL group of each such mailbox (userdb acl_groups) and Postfix lets them send
-- as its address (smtpd_sender_login_maps), both by querying this table with the mailboxes' states:
-- withdrawing a pair, or suspending or revoking the delegate, takes effect at the next lookup.
CREATE TABLE IF NOT EXISTS delegation (
    mailbox  TEXT NOT NULL,                          -- the organization's mailbox
    delegate TEXT NOT NULL,                          -- a person's mailbox
    PRIMARY KEY (mailbox, delegate)
);
CREATE INDEX IF NOT EXISTS delegation_delegate ON delegation (delegate);
CREATE TRIGGER IF NOT EXISTS mailbox_removed_forget_delegation AFTER DELETE ON mailbox BEGIN
    DELETE FROM delegation WHERE mailbox = old.address OR delegate = old.address;
END;
"""

# Schema 7 (issue 17: aliases and lists, the welcome mail, migration), added by _migrate as one step.
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

# Schema 8 (issue 15: moving a mailbox to another mailstore), added by _migrate as one step. The converge records
# a move here; the mail is copied with doveadm sync, then the mailbox's host switches (switched_at), a final sync
# runs, and only then is the mail removed from the source and the row deleted (docs/architecture.md).
MOVES_SCHEMA = """
CREATE TABLE IF NOT EXISTS mailbox_move (
    address     TEXT PRIMARY KEY,
    source      TEXT NOT NULL,                      -- the mailstore that held the mail (mailbox.host before)
    target      TEXT NOT NULL,                      -- the mailstore the inventory names (store:)
    planned_at  TEXT NOT NULL,
    switched_at TEXT                                -- when mailbox.host became the target; NULL while copying
);
CREATE TRIGGER IF NOT EXISTS mailbox_removed_forget_move AFTER DELETE ON mailbox BEGIN
    DELETE FROM mailbox_move WHERE address = old.address;
END;
"""

# Schema 9 (issue 15, R7.2): on several hosts the db host deletes a mailbox's row and holds none of its mail; the row's
# deletion records here each mailstore that still holds it (its host, and both ends of a move under way). The store
# erases the folder, then this row (erase_deleted_mail); until then the planner does not create the address again,
# which would hand the old mail to the new mailbox. A single host (host NULL) erases at once and records nothing.
# The trigger's name sorts before mailbox_removed_forget_move: PostgreSQL fires a table's triggers by name, and SQLite
# fires the newest first; either way the move is still there to read.
ERASURE_SCHEMA = """
CREATE TABLE IF NOT EXISTS mail_erasure (
    address TEXT NOT NULL,
    host    TEXT NOT NULL,                              -- the mailstore that holds the mail
    since   TEXT NOT NULL,
    PRIMARY KEY (address, host)
);
CREATE TRIGGER IF NOT EXISTS mailbox_removed_erase_mail AFTER DELETE ON mailbox BEGIN
    INSERT INTO mail_erasure (address, host, since)
    SELECT old.address, old.host, datetime('now') WHERE old.host IS NOT NULL
    UNION SELECT address, source, datetime('now') FROM mailbox_move WHERE address = old.address
    UNION SELECT address, target, datetime('now') FROM mailbox_move WHERE address = old.address
    ON CONFLICT DO NOTHING;
END;
"""

# The sending limits' counts (R12.6, docs/limits.md), per user and minute; the last 60 minutes make the hour. One host
# counts in a SQLite file of its own, away from this database's hot tables (_sending_limits.Counter.local). On several
# hosts every MX counts in this table of the shared PostgreSQL database, so a user's hour is the same whichever MX takes
# the message (issue 15): schema 10 makes it there only.
SENDING_USAGE_SCHEMA = """
CREATE TABLE IF NOT EXISTS sending_usage (
    address TEXT NOT NULL,
    kind    TEXT NOT NULL CHECK (kind IN ('sent', 'refused')),
    minute  INTEGER NOT NULL,                           -- Unix time // 60
    count   INTEGER NOT NULL,
    PRIMARY KEY (address, kind, minute)
);
"""

# Columns the inventory owns: a converge compares and writes these, and only these.
INVENTORY_COLUMNS = ("kind", "owner_id", "display_name", "organization", "quota_mb", "request_ref")
# Whose mailbox it is: fixed at creation, never changed by a converge (issue 10, R5.3).
IDENTITY_COLUMNS = ("kind", "owner_id")


def utc_now() -> str:
    return format_time(datetime.now(UTC))


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def connect(database: str, upgrade: bool = True):
    """Open the database with the schema in place: a SQLite file (created if needed) or a PostgreSQL URI.

    SQLite: WAL lets Dovecot and Postfix keep reading while a converge writes. PostgreSQL: see
    ``connect_postgres``. ``upgrade=False`` (check mode) reads the database as it is and changes nothing,
    not even an older schema.
    """
    if is_postgres(database):
        return connect_postgres(database, upgrade)
    connection = sqlite3.connect(database, isolation_level=None, timeout=30)
    connection.row_factory = sqlite3.Row
    if upgrade:
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")
        connection.executescript(SCHEMA)
        _migrate(connection)
    return connection


def _migrate(connection) -> None:
    """Bring a database made by an older version of this module to SCHEMA_VERSION, keeping every row."""
    columns = table_columns(connection, "mailbox")
    if "over_quota" not in columns:  # version 1 -> 2
        connection.execute("ALTER TABLE mailbox ADD COLUMN over_quota INTEGER NOT NULL DEFAULT 0")
    # 2 -> 3: SCHEMA's CREATE ... IF NOT EXISTS has added the empty password_history table and its trigger.
    # Issue 15 (scale-out), 3 -> 4: the mailstore that holds each mailbox; NULL on a single host.
    if "host" not in columns:
        connection.execute("ALTER TABLE mailbox ADD COLUMN host TEXT")
    # Issue 17, 4 -> 5: SCHEMA's CREATE ... IF NOT EXISTS has added the empty delegation table and its trigger.
    # Issue 16, 5 -> 6: the columns of mailbox_event that durable notices, reports and restore times need.
    _migrate_event_columns(connection)
    # Issue 17, 6 -> 7: aliases, lists, the welcome mail and migration. Mailboxes older than this step are not new:
    # they are marked welcomed, so an upgrade mails nobody.
    welcomed_before = bool(table_columns(connection, "welcome_mail"))
    connection.executescript(postgres_schema(ALIASES_SCHEMA) if is_postgres_connection(connection) else ALIASES_SCHEMA)
    if not welcomed_before:
        connection.execute("INSERT INTO welcome_mail (address, sent_at) SELECT address, ? FROM mailbox", (utc_now(),))
    # Issue 15, 7 -> 8: the mailboxes moving to another mailstore.
    connection.executescript(postgres_schema(MOVES_SCHEMA) if is_postgres_connection(connection) else MOVES_SCHEMA)
    # Issue 15, 8 -> 9: the mail the mailstores still have to erase. Mailboxes deleted before it are erased by no one:
    # none was, on a single host, and several hosts came with this version's tests only.
    connection.executescript(postgres_schema(ERASURE_SCHEMA) if is_postgres_connection(connection) else ERASURE_SCHEMA)
    # Issue 15, 9 -> 10: the sending limits' counts every MX shares; one host keeps them in a file of their own.
    if is_postgres_connection(connection):
        connection.executescript(postgres_schema(SENDING_USAGE_SCHEMA))
    connection.execute(
        "INSERT INTO meta (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        " WHERE meta.value <> excluded.value",
        (str(SCHEMA_VERSION),),
    )


# Issue 16 (durable notices R7.3, reports R11.3, restore times R8.3b): columns of mailbox_event.
#   notified_at   when the converge's result notice named the event; NULL while a converge notice is owed
#   organization  the mailbox's organization when the event happened, so a report and a notice still know the
#                 agency of a removed or revoked mailbox
#   requested_at  the date of the agency's written restore request, on 'restored' events (R8.3b)
EVENT_COLUMNS = {"notified_at": "TEXT", "organization": "TEXT", "requested_at": "TEXT"}


def _migrate_event_columns(connection) -> None:
    """Add the issue-16 columns of mailbox_event; the events already there were notified by their own run."""
    missing = [name for name in EVENT_COLUMNS if name not in table_columns(connection, "mailbox_event")]
    if not missing:
        return
    # connect_postgres migrates inside its own transaction; SQLite's connect does not.
    with nullcontext() if is_postgres_connection(connection) else transaction(connection):
        for name in missing:
            connection.execute(f"ALTER TABLE mailbox_event ADD COLUMN {name} {EVENT_COLUMNS[name]}")
        if "notified_at" in missing:
            connection.execute("UPDATE mailbox_event SET notified_at = at")
        if "organization" in missing:
            connection.execute("UPDATE mailbox_event SET organization ="
                               " (SELECT organization FROM mailbox WHERE mailbox.address = mailbox_event.address)")


def table_columns(connection, table: str) -> set[str]:
    if is_postgres_connection(connection):
        return set(_postgres_columns(connection, table))
    return {row["name"] for row in connection.execute(f"PRAGMA table_info({table})")}


def _postgres_columns(connection, table: str) -> list[str]:
    """A PostgreSQL table's columns in their order; none when the table is not there."""
    rows = connection.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema()"
                              " AND table_name = ? ORDER BY ordinal_position", (table,))
    return [row[0] for row in rows]


# --- PostgreSQL (issue 15) -------------------------------------------------------------------------------

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
# What a suspension reads of a mailbox (_lifecycle's planner, its notice and its event): no password, no login time.
SUSPENSION_COLUMNS = ("address", "organization", "display_name", "kind", "state", "suspended_at", "suspended_reason",
                      "suspended_by", "request_ref")
# What each tier's database role may read and write; nothing else is granted. The MX never sees a password
# hash; only the webmail changes passwords; the mailstores record logins and the quota flag (R6, R8.2a, R9.2a).
TIER_GRANTS = {
    # Every tier that authenticates or checks a sender reads the delegations (issue 17).
    # The MX also expands aliases and lists (issue 17).
    "mx": ("GRANT SELECT (address, domain, state, over_quota) ON mailbox", "GRANT SELECT (mailbox, delegate) ON delegation",
           "GRANT SELECT (alias, member) ON alias_member"),
    # The proxy and the mailstores check passwords and refuse blocked accounts with the reason (R6.1, R8.1).
    "proxy": (
        ("GRANT SELECT (address, password, state, must_change, password_changed_at, suspended_reason, host)"
         " ON mailbox"),
        "GRANT SELECT ON delegation",
    ),
    # A mailstore's delegation script also reads which of its mailboxes are organizations' (kind, issue 17).
    "mailstore": (
        ("GRANT SELECT (address, local_part, domain, kind, quota_mb, over_quota, state, password, must_change,"
         " password_changed_at, suspended_reason, host, last_login_at) ON mailbox"),
        "GRANT UPDATE (last_login_at, over_quota) ON mailbox",
        "GRANT SELECT ON delegation",
        # Its erasure of deleted mailboxes' mail reads and clears what it still holds (R7.2).
        "GRANT SELECT, DELETE ON mail_erasure",
    ),
    # The MX's sending limits (R12.6, R8.2b): the policy service reads a sender's state and suspends an account
    # that keeps meeting them as compromised, with its event (_lifecycle.suspend_automatically), never a hash.
    "limits": (
        f"GRANT SELECT ({', '.join(SUSPENSION_COLUMNS)}) ON mailbox",
        "GRANT UPDATE (state, suspended_at, suspended_reason, suspended_by, updated_at) ON mailbox",
        "GRANT SELECT (id, address, organization) ON mailbox_event",
        "GRANT INSERT ON mailbox_event",
        # Every MX counts each user's hour here (issue 15).
        "GRANT SELECT, INSERT, UPDATE, DELETE ON sending_usage",
    ),
    # A mailstore's backup (R7.2, R7.3): it reads the deletions, and records its purge of them, with the agency.
    # Its restore onto a new host brings back the mailboxes pinned to it (host).
    "backup": (
        "GRANT SELECT (address, organization, host) ON mailbox",
        "GRANT SELECT (id, at, address, action, request_ref, detail, organization) ON mailbox_event",
        "GRANT INSERT ON mailbox_event",
    ),
    # The log search of a host that is not the db host (R9.1, R7.2): it purges the deleted mailboxes from its index,
    # reading their deletions and nothing of a mailbox (docs/logs.md).
    "logsearch": ("GRANT SELECT (id, at, address, action, detail) ON mailbox_event",),
    # The webmail's password check and change (R6, R12.2) and its address book (issue 17), with the change's event.
    "webmail": (
        "GRANT SELECT ON mailbox, password_history, delegation",
        "GRANT UPDATE (password, must_change, password_changed_at, updated_at) ON mailbox",
        "GRANT INSERT, DELETE ON password_history",
        "GRANT SELECT (id, address, organization) ON mailbox_event",
        "GRANT INSERT ON mailbox_event",
    ),
}
TIER_ROLE_PREFIX = "sonla_mail_"  # the group role of a tier: sonla_mail_mx, ...; login roles are its members


def is_postgres(database: str) -> bool:
    return database.startswith(POSTGRES_SCHEMES)


def is_postgres_connection(connection) -> bool:
    return isinstance(connection, PostgresConnection)


# The SQLite functions the servers' queries use (Dovecot's password age and blocked-password, the last-login
# hook, the delegates' ACL groups of Dovecot's userdb, issue 17), so those queries run unchanged on both engines:
# datetime('now', '-90 days') gives the same text, group_concat(x, ',') the same list (NULL for no row).
POSTGRES_SQLITE_FUNCTIONS = """
CREATE OR REPLACE FUNCTION datetime(moment text, modifier text DEFAULT '0 days') RETURNS text LANGUAGE sql STABLE AS $$
    SELECT to_char((CASE WHEN moment = 'now' THEN now() AT TIME ZONE 'UTC' ELSE moment::timestamp END)
                   + modifier::interval, 'YYYY-MM-DD HH24:MI:SS') $$;
CREATE OR REPLACE FUNCTION randomblob(size integer) RETURNS bytea LANGUAGE sql VOLATILE AS $$
    SELECT substring(decode(replace(gen_random_uuid()::text || gen_random_uuid()::text
                                    || gen_random_uuid()::text, '-', ''), 'hex') FROM 1 FOR size) $$;
CREATE OR REPLACE FUNCTION hex(bytes bytea) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT upper(encode(bytes, 'hex')) $$;
CREATE OR REPLACE FUNCTION sonla_group_concat_step(joined text, value text, separator text) RETURNS text
    LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN value IS NULL THEN joined WHEN joined IS NULL THEN value ELSE joined || separator || value END $$;
CREATE OR REPLACE AGGREGATE group_concat(text, text) (SFUNC = sonla_group_concat_step, STYPE = text);
"""


def postgres_schema(schema: str = SCHEMA) -> str:
    """``SCHEMA`` in PostgreSQL's DDL: an identity column for AUTOINCREMENT, a trigger function for a trigger, and
    the SQLite functions the servers' queries call."""
    ddl = POSTGRES_SQLITE_FUNCTIONS + schema.replace(
        "INTEGER PRIMARY KEY AUTOINCREMENT", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY")
    return re.sub(
        r"CREATE TRIGGER IF NOT EXISTS (\w+) AFTER DELETE ON (\w+) BEGIN\s*(.*?;)\s*END;",
        r"CREATE OR REPLACE FUNCTION \1() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \3 RETURN NULL; END $$;"
        r" CREATE OR REPLACE TRIGGER \1 AFTER DELETE ON \2 FOR EACH ROW EXECUTE FUNCTION \1();",
        ddl, flags=re.DOTALL,
    )


_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def postgres_sql(sql: str, named: bool) -> str:
    """A query of this module (SQLite's ``?`` or ``:name`` placeholders) in psycopg's ``%s``/``%(name)s``."""
    sql = sql.replace("%", "%%")
    return _NAMED.sub(r"%(\1)s", sql) if named else sql.replace("?", "%s")


class Row(tuple):
    """A result row read by position or by column name, as ``sqlite3.Row`` is."""

    def __new__(cls, index: dict[str, int], values):
        row = super().__new__(cls, values)
        row._index = index
        return row

    def __getitem__(self, key):
        return super().__getitem__(self._index[key] if isinstance(key, str) else key)

    def keys(self):
        return list(self._index)


def _row_factory(cursor):
    index = {column.name: number for number, column in enumerate(cursor.description or ())}
    return lambda values: Row(index, values)


class PostgresConnection:
    """A psycopg connection with sqlite3's calls (execute, executemany, executescript) and placeholders.

    It runs in autocommit, as the SQLite connections do (isolation_level=None); ``transaction`` opens
    the write transactions.
    """

    def __init__(self, raw):
        self.raw = raw

    def execute(self, sql: str, parameters=None):
        cursor = self.raw.cursor()
        if parameters is None:
            cursor.execute(sql)
        else:
            cursor.execute(postgres_sql(sql, isinstance(parameters, dict)), parameters)
        return cursor

    def executemany(self, sql: str, rows):
        rows = list(rows)
        cursor = self.raw.cursor()
        if rows:
            cursor.executemany(postgres_sql(sql, isinstance(rows[0], dict)), rows)
        return cursor

    def executescript(self, script: str) -> None:
        self.raw.execute(script)

    def close(self) -> None:
        self.raw.close()


def connect_postgres(uri: str, upgrade: bool = True) -> PostgresConnection:
    """Open a PostgreSQL database from a libpq URI; the password, if any, comes from a pgpass file, never the URI.

    With ``upgrade`` the schema is created or brought up to date, and each tier's group role that exists
    gets exactly its ``TIER_GRANTS``.
    """
    if psycopg is None:
        raise DatabaseUnavailable("the PostgreSQL user database needs psycopg 3 (Debian: python3-psycopg)")
    connection = PostgresConnection(psycopg.connect(uri, autocommit=True, row_factory=_row_factory))
    if upgrade:
        with transaction(connection):
            connection.execute("SELECT pg_advisory_xact_lock(15)")  # two first converges do not race
            connection.executescript(postgres_schema())
            _migrate(connection)
            grant_tiers(connection)
    return connection


@contextmanager
def postgres_lock(uri: str, key: int):
    """Hold PostgreSQL's session advisory lock ``key`` on a connection of its own: one holder at a time among every
    host that reaches the database (issue 15), released when the block ends or the process dies."""
    connection = connect_postgres(uri, upgrade=False)
    try:
        connection.execute("SELECT pg_advisory_lock(?)", (key,))
        try:
            yield
        finally:
            # Released at once: the server ends a closed session's locks only some time after the client has gone.
            connection.execute("SELECT pg_advisory_unlock(?)", (key,))
    finally:
        connection.close()


def grant_tiers(connection: PostgresConnection) -> list[str]:
    """Give each existing tier group role its rights, after taking every right away; returns the tiers granted."""
    existing = {row[0] for row in connection.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE 'sonla\\_mail\\_%'")}
    granted = []
    for tier, grants in TIER_GRANTS.items():
        role = TIER_ROLE_PREFIX + tier
        if role not in existing:
            continue
        connection.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}")
        for grant in grants:
            connection.execute(f"{grant} TO {role}")
        granted.append(tier)
    return granted


class MigrationError(Exception):
    """A SQLite database cannot be copied into this PostgreSQL database without losing or mixing rows."""


def sqlite_tables(connection: sqlite3.Connection) -> list[str]:
    return [row[0] for row in connection.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]


def copy_to_postgres(source: sqlite3.Connection, target: PostgresConnection) -> dict[str, int]:
    """Copy every row of a SQLite user database into an empty PostgreSQL one, in one transaction (issue 15).

    Every table and column goes over as it is: hashes, flags, timestamps, the events with their ids
    (so the revoked list, R7.2, and the handoff records stay), the password history (R6.1b). The source
    must be at the current schema (open it with ``connect`` first) and the target must hold no mailbox,
    event or history row. Returns the rows copied per table; refuses (MigrationError) before writing.
    """
    plan = []
    for table in sqlite_tables(source):
        columns = [row["name"] for row in source.execute(f"PRAGMA table_info({table})")]
        missing = sorted(set(columns) - table_columns(target, table))
        if missing:
            raise MigrationError(f"table {table}: the PostgreSQL database has no column {', '.join(missing)}")
        if table != "meta" and target.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone():
            raise MigrationError(f"table {table} of the PostgreSQL database is not empty; nothing was copied")
        plan.append((table, columns))
    copied = {}
    with transaction(target):
        for table, columns in plan:
            rows = [tuple(row) for row in source.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY rowid")]
            target.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
                + (" ON CONFLICT (key) DO NOTHING" if table == "meta" else ""), rows)
            copied[table] = len(rows)
        # Events keep their ids; new ones continue after the highest.
        target.execute("SELECT setval(pg_get_serial_sequence('mailbox_event', 'id'),"
                       " coalesce((SELECT max(id) FROM mailbox_event), 0) + 1, false)")
    return copied


class DatabaseUnavailable(Exception):
    """The database cannot be opened with what this host has."""


DatabaseError = (sqlite3.Error, DatabaseUnavailable) + ((psycopg.Error,) if psycopg else ())


def read_mailboxes(connection) -> dict[str, dict]:
    """Every mailbox row, keyed by address."""
    if is_postgres_connection(connection):
        # One JSON value for the whole table: psycopg's pure-Python row loading (Debian's python3-psycopg) costs
        # about 8 s for 50,000 rows of 21 columns, the JSON text 0.3 s. JSON keeps the same ints, texts and NULLs.
        # One array per row, not an object: 19 MB instead of 32 MB at 50,000 rows, the query 0.35 s instead of 0.75 s.
        columns = _postgres_columns(connection, "mailbox")
        text = connection.execute(f"SELECT coalesce(json_agg(json_build_array({', '.join(columns)})), '[]')::text"
                                  " FROM mailbox").fetchone()[0]
        rows = (dict(zip(columns, values, strict=True)) for values in json.loads(text))
        return {row["address"]: row for row in rows}
    # Plain tuples zipped with the column names: sqlite3.Row turned into dicts took 0.5 s at 50,000 rows, this 0.35 s.
    cursor = connection.cursor()
    cursor.row_factory = None
    cursor.execute("SELECT * FROM mailbox")
    columns = [description[0] for description in cursor.description]
    address = columns.index("address")
    return {row[address]: dict(zip(columns, row, strict=True)) for row in cursor}


def read_delegations(connection) -> set[tuple[str, str]]:
    """Every (organization mailbox, delegate) pair; none when the table is not there yet (check mode)."""
    if not table_columns(connection, "delegation"):
        return set()
    return {(row["mailbox"], row["delegate"]) for row in connection.execute("SELECT mailbox, delegate FROM delegation")}


def read_moves(connection) -> dict[str, dict]:
    """The mailbox moves under way (issue 15), keyed by address; none when the table is not there yet (check mode)."""
    if not table_columns(connection, "mailbox_move"):
        return {}
    rows = connection.execute("SELECT address, source, target, switched_at FROM mailbox_move ORDER BY address")
    return {row["address"]: dict(row) for row in rows}


def switch_moves(connection, addresses: list[str], now: str) -> list[str]:
    """Route these moving mailboxes to their target store, once their mail was copied there (issue 15); returns the
    addresses switched now. The proxy reads ``mailbox.host`` at each login and delivery, so it takes effect at once."""
    moves = read_moves(connection)
    switching = [address for address in addresses if address in moves and moves[address]["switched_at"] is None]
    with transaction(connection):
        connection.executemany(
            "UPDATE mailbox SET host = ?, updated_at = ? WHERE address = ?",
            [(moves[address]["target"], now, address) for address in switching])
        connection.executemany("UPDATE mailbox_move SET switched_at = ? WHERE address = ?",
                               [(now, address) for address in switching])
        record_events(connection, [(now, address, "move_switched", None,
                                    f"host: {moves[address]['source']} -> {moves[address]['target']}")
                                   for address in switching])
    return switching


def finish_moves(connection, addresses: list[str], now: str) -> list[str]:
    """Forget these moves: switched, finally synced, their mail removed from the source (issue 15); returns them."""
    moves = read_moves(connection)
    finished = [address for address in addresses if address in moves and moves[address]["switched_at"] is not None]
    with transaction(connection):
        connection.executemany("DELETE FROM mailbox_move WHERE address = ?", [(address,) for address in finished])
        record_events(connection, [(now, address, "move_finished", None, f"mail removed from {moves[address]['source']}")
                                   for address in finished])
    return finished


def read_mailbox(connection, address: str, columns: tuple[str, ...] = ("*",)) -> dict | None:
    """One mailbox row, or None; ``columns`` for a role that may read only those (``TIER_GRANTS``)."""
    row = connection.execute(f"SELECT {', '.join(columns)} FROM mailbox WHERE address = ?", (address,)).fetchone()
    return dict(row) if row else None


@contextmanager
def transaction(connection):
    """One write transaction, all of it or nothing; SQLite's BEGIN IMMEDIATE takes the write lock up front."""
    connection.execute("BEGIN" if is_postgres_connection(connection) else "BEGIN IMMEDIATE")
    try:
        yield connection
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


_INSERT_EVENT = """
INSERT INTO mailbox_event (at, address, action, request_ref, detail, requested_at, notified_at, organization)
VALUES (:at, :address, :action, :request_ref, :detail, :requested_at, :notified_at, COALESCE(
    (SELECT organization FROM mailbox WHERE address = :address),
    (SELECT organization FROM mailbox_event WHERE address = :address AND organization IS NOT NULL
     ORDER BY id DESC LIMIT 1)))
"""


def record_events(connection, events: list[tuple], notice_owed: bool = False) -> None:
    """Audit rows (at, address, action, request_ref, detail[, requested_at]): what was done and on which request
    (R7.3, R11.2), with the mailbox's organization (from its row, or from its earlier events once it is gone).

    ``notice_owed`` marks them for the converge's result notice (``sonla.mail.notices``), which sends and then
    marks them (R7.3); other writers send their own notices in the same run, so their events are born notified."""
    connection.executemany(_INSERT_EVENT, [
        {"at": at, "address": address, "action": action, "request_ref": ref, "detail": detail,
         "requested_at": rest[0] if rest else None, "notified_at": None if notice_owed else at}
        for at, address, action, ref, detail, *rest in events])


def held_request(connection, address: str) -> str | None:
    """The request reference a mailbox is held under (its inventory entry's), which what is done to the account
    without a request of its own, such as a reissue or an import, carries (R11.2)."""
    return (read_mailbox(connection, address) or {}).get("request_ref")


def deletion_request(connection, address: str) -> str | None:
    """The request reference of a mailbox's deletion (its latest removal or revocation), which what follows from
    the deletion, such as the purge of its backups, carries too (R11.2)."""
    row = connection.execute("SELECT request_ref FROM mailbox_event WHERE address = ? AND action IN ('removed', 'revoked')"
                             " ORDER BY at DESC, id DESC LIMIT 1", (address,)).fetchone()
    return row[0] if row else None


NOTICE_ACTIONS = ("added", "updated", "suspended", "restored", "removed")


def pending_notices(connection) -> list[dict]:
    """The converge events no result notice has named yet (R7.3), oldest first, with the mailbox's current name
    and quota where it still exists."""
    # Check mode on a database the converge has not upgraded yet: none owed.
    if "notified_at" not in table_columns(connection, "mailbox_event"):
        return []
    marks = ", ".join("?" * len(NOTICE_ACTIONS))
    rows = connection.execute(
        "SELECT e.id, e.at, e.address, e.action, e.request_ref, e.detail, e.organization, m.display_name, m.quota_mb"
        f" FROM mailbox_event e LEFT JOIN mailbox m ON m.address = e.address"
        f" WHERE e.notified_at IS NULL AND e.action IN ({marks}) ORDER BY e.id", NOTICE_ACTIONS)
    return [dict(row) for row in rows]


def mark_notified(connection, event_ids: list[int], now: str) -> None:
    """The result notice naming these events was taken by Postfix: never send them again (R7.3)."""
    with transaction(connection):
        connection.executemany("UPDATE mailbox_event SET notified_at = ? WHERE id = ?", [(now, i) for i in event_ids])


HANDOFF_DETAIL = "handoff="  # 'added' and 'reissued' events name the handoff file that holds the password


def handoffs_committed(connection, handoff_ids: list[str]) -> dict[str, list[str]]:
    """Which of these handoff files' passwords were committed, each with the accounts that got one of them."""
    details = [HANDOFF_DETAIL + handoff_id for handoff_id in handoff_ids]
    found: dict[str, set[str]] = {}
    for start in range(0, len(details), 500):  # SQLite's parameter limit
        chunk = details[start:start + 500]
        rows = connection.execute(
            f"SELECT detail, address FROM mailbox_event WHERE detail IN ({', '.join('?' * len(chunk))})", chunk)
        for row in rows:
            found.setdefault(row["detail"][len(HANDOFF_DETAIL):], set()).add(row["address"])
    return {handoff_id: sorted(addresses) for handoff_id, addresses in sorted(found.items())}


def never_used(connection, addresses=None) -> set[str]:
    """Accounts still on a password the tools issued: never logged in, never chose one (R6.1a).

    Issued one-time passwords are the only {SSHA512} hashes; a password a user chose is {BLF-CRYPT}.
    """
    query = "SELECT address FROM mailbox WHERE must_change = 1 AND last_login_at IS NULL AND password LIKE '{SSHA512}%'"
    return {row["address"] for row in connection.execute(query)
            if addresses is None or row["address"] in addresses}


def restores_done(connection) -> set[tuple[str, str]]:
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


def read_pending_erasures(connection) -> dict[str, list[str]]:
    """The deleted mailboxes whose mail a mailstore still holds (issue 15): address -> those stores; empty when the
    table is not there yet (check mode)."""
    if not table_columns(connection, "mail_erasure"):
        return {}
    pending: dict[str, list[str]] = {}
    for row in connection.execute("SELECT address, host FROM mail_erasure ORDER BY address, host"):
        pending.setdefault(row[0], []).append(row[1])
    return pending


def erase_deleted_mail(connection, mail_root: str, check: bool, store: str) -> list[str]:
    """R7.2 on several hosts (issue 15): erase the mail ``store`` still holds for deleted mailboxes.

    The db host deletes the row and holds no mail; the deletion records each store that holds the mail
    (``mail_erasure``). Each mailstore runs this against the shared database with its own role: it erases the folder,
    then that record, after which the address may be created again. Returns the addresses whose folder was erased, or
    in check mode would be, which changes nothing. An address whose folder would leave the mail root has none.
    """
    erased = []
    pending = [row[0] for row in connection.execute("SELECT address FROM mail_erasure WHERE host = ? ORDER BY address",
                                                    (store,))]
    for address in pending:
        try:
            held = os.path.isdir(_mail_dir(mail_root, address)[1]) if check else remove_mail(mail_root, address)
        except ValueError:
            held = False
        if held:
            erased.append(address)
        if not check:
            connection.execute("DELETE FROM mail_erasure WHERE address = ? AND host = ?", (address, store))
    return erased


_INSERT = """
INSERT INTO mailbox (address, local_part, domain, kind, owner_id, display_name, organization, quota_mb,
                     state, password, must_change, created_at, password_changed_at,
                     suspended_at, suspended_reason, suspended_by, request_ref, updated_at, host)
VALUES (:address, :local_part, :domain, :kind, :owner_id, :display_name, :organization, :quota_mb,
        :state, :password, 1, :now, :now, :suspended_at, :suspended_reason, :suspended_by, :request_ref, :now, :host)
"""
# host: a mailbox made before there were several mailstores is pinned to one (issue 15, _mailbox_plan.place_mailboxes).
_UPDATABLE = (frozenset(INVENTORY_COLUMNS) - frozenset(IDENTITY_COLUMNS)) | {"suspended_reason", "host"}


def apply_plan(connection, plan, password_hashes: dict[str, str], now: str,
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
            "host": plan.placement.get(address),
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
        events.extend((now, item["address"], "restored", item["request"], None, item.get("requested"))
                      for item in plan.restored)  # R8.3b: the request's date, for the time to restore
        connection.executemany("DELETE FROM mailbox WHERE address = ?", [(address,) for address in plan.removed])
        events.extend((now, address, "removed", plan.removal_requests.get(address), None) for address in plan.removed)
        # R6.1a: a lost handoff is recovered by a new one-time password, only for accounts never used.
        connection.executemany(
            "UPDATE mailbox SET password = ?, must_change = 1, password_changed_at = ?, updated_at = ?"
            " WHERE address = ? AND must_change = 1 AND last_login_at IS NULL",
            [(password_hashes[address], now, now, address) for address in reissue],
        )
        record_events(connection, events, notice_owed=True)  # R7.3: sonla.mail.notices names them, then marks them
        # Issue 17: after the inserts and deletions above, so every pair joins two rows that exist.
        connection.executemany("DELETE FROM delegation WHERE mailbox = ? AND delegate = ?", plan.undelegated)
        connection.executemany("INSERT INTO delegation (mailbox, delegate) VALUES (?, ?)", plan.delegated)
        # Issue 15: a move is recorded; its mail is copied by the mover (sonla.mail.mailbox_move) before the host switches.
        connection.executemany(
            "INSERT INTO mailbox_move (address, source, target, planned_at) VALUES (?, ?, ?, ?)",
            [(move["address"], move["source"], move["target"], now) for move in plan.moved])
        # R11.2: a reissue hands over the account again under the request it is held under (its entry's, as the
        # lifecycle's events); a delegation is a change of the organization's entry. A move is the operators'
        # decision (store is not a requested field), made under no request.
        record_events(connection, [(now, move["address"], "move_planned", None,
                                    f"host: {move['source']} -> {move['target']}") for move in plan.moved]
                      + [(now, address, "reissued", held_request(connection, address), handoff)
                         for address in reissue]
                      + [(now, mailbox, "delegated", plan.delegation_requests.get(mailbox), f"delegate={delegate}")
                         for mailbox, delegate in plan.delegated]
                      + [(now, mailbox, "undelegated", plan.delegation_requests.get(mailbox), f"delegate={delegate}")
                         for mailbox, delegate in plan.undelegated])
