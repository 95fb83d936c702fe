# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A user's own password change, and whether an account must change before using mail (R6, R12.2).

Used on the mail server by ``sonla-mail-passwd`` (roles/webmail), which the webmail calls. The
password rules are :func:`_password.check_password` (one rule set for the whole collection); the
database is the one :mod:`_userdb` defines. Nothing here prints or exits: the CLI does.

* :func:`account_status` verifies a login and says whether the account may read mail, must change
  its password first (R6.1a, R8.3c: ``must_change``; R6.1b: older than ``max_age_days``), or neither.
* :func:`change_password` verifies the old password, checks the new one against the policy (R6.2),
  refuses control characters and any of the last ``policy.history`` passwords (R6.1b: a change, not
  an A->B->A toggle), stores it with :func:`_password.hash_chosen` (``{BLF-CRYPT}``), keeps the old
  hash in ``password_history``, clears ``must_change``, stamps ``password_changed_at`` and records a
  ``password_changed`` event.
* :class:`Throttle` counts failed verifications per address and per client in a small SQLite file of
  its own and refuses to verify at all past its limits (R10.2b); both functions take one.

Every path costs one bcrypt verification, whatever the address: an unknown address is checked against
:data:`DUMMY_HASH`, and a one-time ``{SSHA512}`` hash is followed by a dummy bcrypt check, so the time
of an answer tells nothing about whether the address exists or what its hash is.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

from ansible_collections.sonla.mail.plugins.module_utils import _userdb
from ansible_collections.sonla.mail.plugins.module_utils._password import (
    PASSWORD_HISTORY_BOUNDS,
    PasswordPolicy,
    Violation,
    check_password,
    hash_chosen,
    verify_password,
)

# Statuses of account_status().
OK = "ok"  # may log in everywhere
CHANGE_REQUIRED = "change_required"  # right password, but must change it first (R6.1a, R6.1b, R8.3c)
SUSPENDED = "suspended"  # right password, account suspended: no access anywhere (R8.1)
INVALID = "invalid"  # unknown address or wrong password (the two are not told apart)
THROTTLED = "throttled"  # too many failures for this address or client: nothing was verified (R10.2b)

# A bcrypt hash of a random secret nobody kept, at the cost hash_chosen writes: verifying against it costs
# what a real {BLF-CRYPT} check costs (issue 10: unknown addresses answered 56 ms faster).
DUMMY_HASH = "{BLF-CRYPT}$2y$10$pp2no.WUdzeKKZwxifeVhOxuTJDIMuIN.5e4iCgMN.UDVZkTz0rHC"

# Vietnam's time (UTC+7, no daylight saving) for the date shown to a suspended user.
VIETNAM = timezone(timedelta(hours=7), "ICT")

WRONG_PASSWORD = Violation(
    "R12.2",
    "wrong_password",
    "Mật khẩu hiện tại không đúng.",
    "The current password is wrong.",
)
SAME_AS_CURRENT = Violation(
    "R6.1b",
    "same_as_current",
    "Mật khẩu mới phải khác mật khẩu hiện tại.",
    "The new password must differ from the current one.",
)
TOO_MANY_ATTEMPTS = Violation(
    "R10.2b",
    "too_many_attempts",
    "Đã nhập sai mật khẩu quá nhiều lần; vui lòng thử lại sau 15 phút.",
    "Too many wrong passwords; try again in 15 minutes.",
)
ACCOUNT_SUSPENDED = Violation(
    "R8.1",
    "suspended",
    "Hộp thư đang bị tạm khóa; liên hệ Trung tâm CNTT.",
    "The mailbox is suspended; contact the IT center.",
)


def _reused(history: int) -> Violation:
    return Violation(
        "R6.1b",
        "reused",
        f"Mật khẩu mới không được trùng với {history} mật khẩu gần nhất.",
        f"The new password must differ from the last {history} passwords.",
    )


class _ChangedMeanwhile(Exception):
    """The row changed between the check and the write; nothing was written."""


@dataclass(frozen=True)
class Status:
    """The answer to a login attempt: ``status`` is one of the constants above."""

    status: str
    reason: str | None = None  # with CHANGE_REQUIRED: "must_change" or "expired"
    since: str | None = None  # with SUSPENDED: the day it was suspended, YYYY-MM-DD in Vietnam (R8.1)


@dataclass(frozen=True)
class ChangeResult:
    changed: bool
    violations: list[Violation] = field(default_factory=list)


def _row(connection: sqlite3.Connection, address: str) -> dict | None:
    row = connection.execute("SELECT * FROM mailbox WHERE address = ?", (address.strip().lower(),)).fetchone()
    return dict(row) if row else None


def _verified(row: dict | None, password: str) -> bool:
    """Whether ``password`` is the row's, at the cost of one bcrypt check whatever the row (see the module doc)."""
    stored = row["password"] if row is not None else DUMMY_HASH
    try:
        right = verify_password(password, stored)
    except ValueError:
        # A malformed or foreign hash never lets anyone in; the operator resets it.
        right = False
    if not stored.upper().startswith("{BLF-CRYPT}"):
        verify_password(password, DUMMY_HASH)  # the one bcrypt check this path did not make
    return right and row is not None


def change_reason(row: dict, policy: PasswordPolicy, now: datetime) -> str | None:
    """Why the account must change its password before reading mail, or None.

    ``must_change`` is set on issue (R6.1a) and on restoration (R8.3c); a password stamped more than
    ``max_age_days`` ago (or never) has expired (R6.1b). Dovecot applies the same two tests in SQL.
    """
    if row["must_change"]:
        return "must_change"
    stamp = row.get("password_changed_at")
    if not stamp:
        return "expired"
    changed_at = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=now.tzinfo)
    if changed_at < now - timedelta(days=policy.max_age_days):
        return "expired"
    return None


def account_status(
    connection: sqlite3.Connection,
    address: str,
    password: str,
    policy: PasswordPolicy,
    now: datetime,
    throttle: Throttle | None = None,
    client: str = "",
) -> Status:
    """Verify ``password`` for ``address`` and say what the account may do (R6.1, R8.1, R8.3c).

    Nothing but INVALID (or THROTTLED, before any check) is said until the password is verified: a wrong
    password on a must-change or suspended account looks exactly like one on an unknown address.
    """
    if throttle is not None and not throttle.attempt(address, client, now):
        return Status(THROTTLED)
    row = _row(connection, address)
    if not _verified(row, password):
        return Status(INVALID)
    if throttle is not None:
        throttle.succeeded(address, client)
    if row["state"] != "active":
        return Status(SUSPENDED, since=suspended_since(row))
    reason = change_reason(row, policy, now)
    if reason:
        return Status(CHANGE_REQUIRED, reason)
    return Status(OK)


def suspended_since(row: dict) -> str | None:
    """The day (Vietnam's calendar) a suspended row was suspended, or None when the stamp is missing (R8.1)."""
    stamp = row.get("suspended_at")
    if not stamp:
        return None
    moment = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    return moment.astimezone(VIETNAM).strftime("%Y-%m-%d")


def _history(connection: sqlite3.Connection, address: str, count: int) -> list[str]:
    """The ``count`` most recent earlier hashes of ``address``, newest first."""
    if count <= 0:
        return []
    rows = connection.execute(
        "SELECT password FROM password_history WHERE address = ? ORDER BY replaced_at DESC, password DESC LIMIT ?",
        (address, count),
    )
    return [row["password"] for row in rows]


def _matches_any(password: str, hashes: list[str]) -> bool:
    found = False
    for stored in hashes:
        try:
            found = verify_password(password, stored) or found  # no early exit: the time does not tell which
        except ValueError:
            continue
    return found


def change_password(
    connection: sqlite3.Connection,
    address: str,
    old_password: str,
    new_password: str,
    policy: PasswordPolicy,
    now: datetime,
    source: str = "webmail",
    throttle: Throttle | None = None,
    client: str = "",
) -> ChangeResult:
    """Change the password of ``address`` when every rule allows it; all rules are checked first.

    Refused, with the broken rules: too many failures (R10.2b, nothing verified), a wrong old password
    (R12.2), a suspended account (R8.1), a new password that breaks the policy (R6.2), holds control
    characters (R10.2b), or is one of the last ``policy.history`` passwords, the current one included
    (R6.1b). Accepted: the new ``{BLF-CRYPT}`` hash, ``must_change = 0``, ``password_changed_at = now``,
    the old hash in ``password_history`` and a ``password_changed`` event, in one transaction.
    """
    if throttle is not None and not throttle.attempt(address, client, now):
        return ChangeResult(False, [TOO_MANY_ATTEMPTS])
    row = _row(connection, address)
    if not _verified(row, old_password):
        return ChangeResult(False, [WRONG_PASSWORD])
    if throttle is not None:
        throttle.succeeded(address, client)
    if row["state"] != "active":
        return ChangeResult(False, [ACCOUNT_SUSPENDED])
    violations = list(check_password(new_password, policy))  # R6.2, and no control characters (R10.2b)
    if new_password == old_password or _verified(row, new_password):
        violations.append(SAME_AS_CURRENT)
    elif _matches_any(new_password, _history(connection, row["address"], policy.history - 1)):
        violations.append(_reused(policy.history))
    if violations:
        return ChangeResult(False, violations)
    stored = hash_chosen(new_password)
    stamp = _userdb.format_time(now)
    try:
        with _userdb.transaction(connection):
            # Only the row whose password was verified: a concurrent change makes this a no-op.
            cursor = connection.execute(
                "UPDATE mailbox SET password = ?, must_change = 0, password_changed_at = ?, updated_at = ?"
                " WHERE address = ? AND password = ? AND state = 'active'",
                (stored, stamp, stamp, row["address"], row["password"]),
            )
            if cursor.rowcount != 1:
                raise _ChangedMeanwhile
            # R6.1b: the replaced hash joins the history; no more than the policy's bound is kept per address. A row
            # is its (replaced_at, password): no rowid, which PostgreSQL has not (issue 15).
            connection.execute(
                "INSERT INTO password_history (address, password, replaced_at) VALUES (?, ?, ?)",
                (row["address"], row["password"], stamp),
            )
            connection.execute(
                "DELETE FROM password_history WHERE address = ? AND (replaced_at, password) NOT IN ("
                "SELECT replaced_at, password FROM password_history WHERE address = ?"
                " ORDER BY replaced_at DESC, password DESC LIMIT ?)",
                (row["address"], row["address"], PASSWORD_HISTORY_BOUNDS[1]),
            )
            _userdb.record_events(connection, [(stamp, row["address"], "password_changed", None, f"by the user via {source}")])
    except _ChangedMeanwhile:
        return ChangeResult(False, [WRONG_PASSWORD])
    return ChangeResult(True)


# --- the rate limit (R10.2b) --------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """Failed verifications allowed per address and per client within ``window_seconds``; the file's bound."""

    per_address: int = 5
    per_client: int = 20
    window_seconds: int = 900
    max_rows: int = 10_000


class Throttle:
    """Failure counts per address and per client, in their own small SQLite file (root only).

    An attempt is counted as a failure *before* the password is checked, in one write transaction with the
    test of the limits, and forgiven only when the password was right: parallel guesses are counted as they
    start, not after. Keys are hashes (an attacker's addresses are not stored as given). Rows older than the
    window are dropped at every attempt, and never more than ``max_rows`` are kept, the oldest going first.
    """

    _SCHEMA = (
        "CREATE TABLE IF NOT EXISTS failure (key TEXT NOT NULL, at REAL NOT NULL);"
        " CREATE INDEX IF NOT EXISTS failure_key ON failure (key, at);"
    )

    def __init__(self, connection: sqlite3.Connection, limits: Limits | None = None):
        self.connection = connection
        self.limits = limits or Limits()
        self.connection.executescript(self._SCHEMA)
        self._pending: list[int] = []

    @classmethod
    def open(cls, path: str, limits: Limits | None = None) -> Throttle:
        return cls(sqlite3.connect(path, isolation_level=None, timeout=10), limits)

    def close(self) -> None:
        self.connection.close()

    @staticmethod
    def _key(kind: str, value: str) -> str:
        if kind == "address":
            value = value.strip().lower()
        return kind + ":" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]

    def attempt(self, address: str, client: str, now: datetime) -> bool:
        """Count one attempt; False (nothing counted) when the address or client is already at its limit."""
        moment = now.timestamp()
        keys = ((self._key("address", address), self.limits.per_address), (self._key("client", client), self.limits.per_client))
        with _userdb.transaction(self.connection):
            self.connection.execute("DELETE FROM failure WHERE at <= ?", (moment - self.limits.window_seconds,))
            for key, limit in keys:
                (count,) = self.connection.execute("SELECT count(*) FROM failure WHERE key = ?", (key,)).fetchone()
                if count >= limit:
                    return False
            self._pending = []
            for key, _ in keys:
                cursor = self.connection.execute("INSERT INTO failure (key, at) VALUES (?, ?)", (key, moment))
                self._pending.append(cursor.lastrowid)
            self.connection.execute(
                "DELETE FROM failure WHERE rowid NOT IN (SELECT rowid FROM failure ORDER BY at DESC, rowid DESC LIMIT ?)",
                (self.limits.max_rows,),
            )
        return True

    def succeeded(self, address: str, client: str) -> None:
        """The password was right: the attempt just counted is forgiven, and the address's earlier failures too."""
        with _userdb.transaction(self.connection):
            self.connection.executemany("DELETE FROM failure WHERE rowid = ?", [(rowid,) for rowid in self._pending])
            self.connection.execute("DELETE FROM failure WHERE key = ?", (self._key("address", address),))
        self._pending = []
