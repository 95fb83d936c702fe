# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sending limits of authenticated users (R12.6) and the automatic suspension of a hijacked account (R8.2b).

Stdlib (and the user database's module) only: the ``sonla-mail-limits`` policy service on the mail server
imports this file. Postfix spawns one service process per policy connection (spawn(8), a unix socket in its
queue directory; an smtpd process keeps its connection across SMTP sessions) and asks it at the end of every
message submitted on 587 or 465 by an authenticated user
(``smtpd_end_of_data_restrictions``: the recipient count is known there, with DATA and with BDAT alike).
docs/limits.md tells the why of every choice below.

- ``decide`` is the whole rule, pure: too many recipients, or the hourly count reached, refuse the message
  with a 4xx reply in Vietnamese and English; past ``suspend_after_limit_refusals`` refusals within the
  hour, the account is to be suspended as compromised (R8.2b).
- ``Counter`` keeps per-minute counts of sent and refused messages per user: on one host in a small SQLite file of
  its own, never in the user database's hot tables; on several hosts in the shared PostgreSQL database, so every MX
  counts the same hour (issue 15). The last 60 minutes make the hourly window.
- ``serve`` speaks Postfix's policy protocol. Any error inside a decision answers DUNNO (the message goes
  on) and is logged: a broken brake must not stop the province's mail, and nothing is lost either way.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from ansible_collections.sonla.mail.plugins.module_utils import _regulation, _userdb

WINDOW_MINUTES = 60  # "per hour": a sliding window of 60 one-minute buckets
# PostgreSQL's advisory locks of the shared counts: (this space, a hash of the user's address), one per user.
USAGE_LOCK_SPACE = 126  # R12.6
ACCEPT = "DUNNO"  # Postfix goes on with its other restrictions; nothing is counted as refused

# Replies (SMTP text is ASCII: Vietnamese without diacritics, as the project's other Postfix replies).
TOO_MANY_RECIPIENTS = ("452 4.5.3 Qua nhieu nguoi nhan: {count}, toi da {limit} moi thu (R12.6) / "
                       "Too many recipients: {count}, at most {limit} per message")
HOURLY_LIMIT = ("450 4.7.1 Da gui {limit} thu trong mot gio, hay gui lai sau (R12.6) / "
                "Sending limit of {limit} messages per hour reached, try again later")
# A session that outlives its account's suspension (Dovecot refuses the next login, R8.1).
SUSPENDED = "450 4.7.1 Tai khoan dang bi tam khoa, lien he don vi (R8.2) / Account suspended, contact your agency"
# The detail recorded with the suspension (after _lifecycle's "Account compromised" reason).
SUSPENSION_DETAIL = ("tự động: {count} lần vượt giới hạn gửi thư trong một giờ (R12.6) / "
                     "automatic: {count} messages refused by the sending limits within one hour")


@dataclass(frozen=True)
class Limits:
    """The policy's numbers (``_regulation.POLICY_BOUNDS``); ``suspend_after_limit_refusals`` 0: never."""

    max_messages_per_hour: int = _regulation.POLICY_BOUNDS["max_messages_per_hour"].default
    max_recipients_per_message: int = _regulation.POLICY_BOUNDS["max_recipients_per_message"].default
    suspend_after_limit_refusals: int = _regulation.POLICY_BOUNDS["suspend_after_limit_refusals"].default

    _KEYS = ("max_messages_per_hour", "max_recipients_per_message", "suspend_after_limit_refusals")

    def __post_init__(self) -> None:
        problems = [message for key in self._KEYS
                    if (message := _regulation.POLICY_BOUNDS[key].problem(key, getattr(self, key)))]
        if problems:
            raise ValueError("invalid sending limits: " + "; ".join(problems))

    @classmethod
    def from_policy(cls, policy: dict | None) -> Limits:
        """From the ``policy`` block of ``mail_inventory`` (other keys are ignored, missing ones defaulted)."""
        policy = policy or {}
        return cls(**{key: policy[key] for key in cls._KEYS if policy.get(key) is not None})


@dataclass(frozen=True)
class Decision:
    """What to answer Postfix, what to count (``sent`` or ``refused``) and whether to suspend (R8.2b)."""

    action: str
    counted: str
    suspend: bool = False
    refusals: int = 0  # refusals within the hour, this one included


def decide(limits: Limits, recipients: int, sent: int, refused: int) -> Decision:
    """The rule for one message of ``recipients`` recipients, from a user who has had ``sent`` messages
    accepted and ``refused`` refused within the last hour (R12.6, R8.2b)."""
    if recipients > limits.max_recipients_per_message:
        action = TOO_MANY_RECIPIENTS.format(count=recipients, limit=limits.max_recipients_per_message)
    elif sent >= limits.max_messages_per_hour:
        action = HOURLY_LIMIT.format(limit=limits.max_messages_per_hour)
    else:
        return Decision(ACCEPT, "sent")
    refusals = refused + 1
    threshold = limits.suspend_after_limit_refusals
    return Decision(action, "refused", suspend=bool(threshold) and refusals >= threshold, refusals=refusals)


def minute_of(epoch_seconds: float) -> int:
    """The one-minute bucket a moment falls in."""
    return int(epoch_seconds // 60)


def window_start(minute: int) -> int:
    """The oldest bucket still inside the hour that ends with ``minute``."""
    return minute - WINDOW_MINUTES + 1


class Counter:
    """Per-user, per-minute counts (``_userdb.SENDING_USAGE_SCHEMA``): one host's in a SQLite file of their own
    (``local``), several hosts' in the shared PostgreSQL database (``shared``, issue 15). ``begin(address)`` opens a
    decision's write transaction, holding what keeps another process from deciding for the same user meanwhile."""

    def __init__(self, connection, begin: Callable[[str], None]):
        self.connection = connection
        self._begin = begin

    @classmethod
    def local(cls, path: str, timeout: float = 5) -> Counter:
        """The counts of one host's processes, in a SQLite file (WAL) shared by every process of the service."""
        connection = sqlite3.connect(path, isolation_level=None, timeout=timeout)
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")
        connection.execute("DROP TABLE IF EXISTS usage")  # the table's name before issue 15: an hour's counts at most
        connection.executescript(_userdb.SENDING_USAGE_SCHEMA)
        return cls(connection, lambda address: connection.execute("BEGIN IMMEDIATE"))

    @classmethod
    def shared(cls, connection, timeout: float = 5) -> Counter:
        """The counts of every MX, in PostgreSQL; ``connection`` is a ``_userdb.PostgresConnection`` as the limits
        role. A decision holds its user's advisory lock until it commits, so two MX hosts cannot both take the last
        message of that user's hour; past ``timeout`` waiting for it, the decision fails (and the message goes on)."""
        connection.execute(f"SET lock_timeout = '{int(timeout * 1000)}ms'")

        def begin(address: str) -> None:
            connection.execute("BEGIN")
            try:
                connection.execute("SELECT pg_advisory_xact_lock(?, hashtext(?))", (USAGE_LOCK_SPACE, address))
            except BaseException:
                connection.execute("ROLLBACK")
                raise

        return cls(connection, begin)

    def decide(self, limits: Limits, address: str, recipients: int, minute: int) -> Decision:
        """Read the user's hour, decide and count, in one write transaction: two connections of the same
        user cannot both take the last message of the hour."""
        start = window_start(minute)
        self._begin(address)
        try:
            # Old buckets of this user go as they leave the window; other users' with forget_before().
            self.connection.execute("DELETE FROM sending_usage WHERE address = ? AND minute < ?", (address, start))
            totals = dict(self.connection.execute(
                "SELECT kind, sum(count) FROM sending_usage WHERE address = ? GROUP BY kind", (address,)).fetchall())
            decision = decide(limits, recipients, totals.get("sent", 0), totals.get("refused", 0))
            self.connection.execute(
                "INSERT INTO sending_usage (address, kind, minute, count) VALUES (?, ?, ?, 1)"
                " ON CONFLICT (address, kind, minute) DO UPDATE SET count = sending_usage.count + 1",
                (address, decision.counted, minute))
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise
        self.connection.execute("COMMIT")
        return decision

    def forget(self, address: str) -> None:
        """A suspended user starts afresh once restored: refusals before the suspension no longer count."""
        self.connection.execute("DELETE FROM sending_usage WHERE address = ?", (address,))

    def forget_before(self, minute: int) -> None:
        """Drop every bucket older than the hour ending with ``minute`` (users who stopped sending)."""
        self.connection.execute("DELETE FROM sending_usage WHERE minute < ?", (window_start(minute),))


def read_request(stream) -> dict[str, str] | None:
    """One policy request (``name=value`` lines up to an empty line); None at the end of the stream."""
    request: dict[str, str] = {}
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            return request
        name, _, value = line.partition("=")
        request[name] = value
    return None


Handler = Callable[[dict[str, str]], tuple[str, Callable[[], None] | None]]


def serve(reader, writer, handle: Handler, log_error: Callable[[str], None]) -> None:
    """Answer every request of one Postfix connection until it closes.

    ``handle`` returns the action and, optionally, work to do once Postfix has its answer (the suspension
    and its notices): the client's reply never waits for them. An exception in either is logged; the
    request gets DUNNO, so no message is refused or lost for a fault of this service."""
    while (request := read_request(reader)) is not None:
        after = None
        try:
            action, after = handle(request)
        except Exception as error:  # any fault: the message goes on, the operator is told
            log_error(f"sending limits: {type(error).__name__}: {error}; answered {ACCEPT}")
            action = ACCEPT
        writer.write(f"action={action}\n\n".encode())
        writer.flush()
        if after is not None:
            try:
                after()
            except Exception as error:
                log_error(f"sending limits: after the answer: {type(error).__name__}: {error}")


class Service:
    """The decisions of one service process: ``handle`` is ``serve``'s handler.

    ``is_suspended(address)`` reads the user database; ``suspend(address, refusals)`` suspends the account
    as compromised and notifies (``_lifecycle.suspend_automatically``), True when it did. Automatic
    suspension is off when the policy's ``suspend_after_limit_refusals`` is 0. ``clock`` gives Unix time."""

    def __init__(self, limits: Limits, counter: Counter, is_suspended: Callable[[str], bool],
                 suspend: Callable[[str, int], bool], clock: Callable[[], float]):
        self.limits = limits
        self.counter = counter
        self.is_suspended = is_suspended
        self.suspend = suspend
        self.clock = clock

    def handle(self, request: dict[str, str]) -> tuple[str, Callable[[], None] | None]:
        address = request.get("sasl_username", "").strip().lower()
        # Only authenticated submissions, at the end of a message, are this service's business.
        if not address or request.get("protocol_state", "").upper() != "END-OF-MESSAGE":
            return ACCEPT, None
        if self.is_suspended(address):
            return SUSPENDED, None  # suspended during this connection: no more mail from it
        recipients = int(request.get("recipient_count") or 0)
        decision = self.counter.decide(self.limits, address, recipients, minute_of(self.clock()))
        if not decision.suspend:
            return decision.action, None

        def suspend_and_forget() -> None:
            if self.suspend(address, decision.refusals):
                self.counter.forget(address)

        return decision.action, suspend_and_forget
