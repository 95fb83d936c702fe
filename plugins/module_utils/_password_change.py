# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A user's own password change, and whether an account must change before using mail (R6, R12.2).

Used on the mail server by ``sonla-mail-passwd`` (roles/webmail), which the webmail calls. The
password rules are :func:`_password.check_password` (one rule set for the whole collection); the
database is the one :mod:`_userdb` defines. Nothing here prints or exits: the CLI does.

* :func:`account_status` verifies a login and says whether the account may read mail, must change
  its password first (R6.1a, R8.3c: ``must_change``; R6.1b: older than ``max_age_days``), or neither.
* :func:`change_password` verifies the old password, checks the new one against the policy (R6.2)
  and against the current one, stores it with :func:`_password.hash_chosen` (``{BLF-CRYPT}``),
  clears ``must_change``, stamps ``password_changed_at`` and records a ``password_changed`` event.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ansible_collections.sonla.mail.plugins.module_utils import _userdb
from ansible_collections.sonla.mail.plugins.module_utils._password import (
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
ACCOUNT_SUSPENDED = Violation(
    "R8.1",
    "suspended",
    "Hộp thư đang bị tạm khóa; liên hệ Trung tâm CNTT.",
    "The mailbox is suspended; contact the IT center.",
)


class _ChangedMeanwhile(Exception):
    """The row changed between the check and the write; nothing was written."""


@dataclass(frozen=True)
class Status:
    """The answer to a login attempt: ``status`` is one of the constants above."""

    status: str
    reason: str | None = None  # with CHANGE_REQUIRED: "must_change" or "expired"


@dataclass(frozen=True)
class ChangeResult:
    changed: bool
    violations: list[Violation] = field(default_factory=list)


def _row(connection: sqlite3.Connection, address: str) -> dict | None:
    row = connection.execute("SELECT * FROM mailbox WHERE address = ?", (address.strip().lower(),)).fetchone()
    return dict(row) if row else None


def _verified(row: dict | None, password: str) -> bool:
    if row is None:
        return False
    try:
        return verify_password(password, row["password"])
    except ValueError:
        # A malformed or foreign hash never lets anyone in; the operator resets it.
        return False


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
    connection: sqlite3.Connection, address: str, password: str, policy: PasswordPolicy, now: datetime
) -> Status:
    """Verify ``password`` for ``address`` and say what the account may do (R6.1, R8.1, R8.3c)."""
    row = _row(connection, address)
    if not _verified(row, password):
        return Status(INVALID)
    if row["state"] != "active":
        return Status(SUSPENDED)
    reason = change_reason(row, policy, now)
    if reason:
        return Status(CHANGE_REQUIRED, reason)
    return Status(OK)


def change_password(
    connection: sqlite3.Connection,
    address: str,
    old_password: str,
    new_password: str,
    policy: PasswordPolicy,
    now: datetime,
    source: str = "webmail",
) -> ChangeResult:
    """Change the password of ``address`` when every rule allows it; all rules are checked first.

    Refused, with the broken rules: a wrong old password (R12.2), a suspended account (R8.1), a new
    password that breaks the policy (R6.2) or equals the current one (R6.1b). Accepted: the new
    ``{BLF-CRYPT}`` hash, ``must_change = 0`` and ``password_changed_at = now`` are written with a
    ``password_changed`` event in one transaction.
    """
    row = _row(connection, address)
    if not _verified(row, old_password):
        return ChangeResult(False, [WRONG_PASSWORD])
    if row["state"] != "active":
        return ChangeResult(False, [ACCOUNT_SUSPENDED])
    violations = list(check_password(new_password, policy))
    if new_password == old_password or _verified(row, new_password):
        violations.append(SAME_AS_CURRENT)
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
            _userdb.record_events(connection, [(stamp, row["address"], "password_changed", None, f"by the user via {source}")])
    except _ChangedMeanwhile:
        return ChangeResult(False, [WRONG_PASSWORD])
    return ChangeResult(True)
