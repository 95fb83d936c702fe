# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The regulation's numbers and bounds, each written once (shared/regulation/REQUIREMENTS.md).

Stdlib only: the controller (inventory, filters), the modules and the daily lifecycle job on the mail
server all import this file. Everything else reads its numbers from here, never restates them.

API
---
``Bound(default, low, high, rule)``
    A frozen dataclass: the value used when the policy says nothing, the inclusive bounds, and the
    requirement ID that sets them. ``bound.problem(key, value)`` returns a message or None.
``POLICY_BOUNDS``: dict[str, Bound]
    The whole-number keys at the top of ``policy.yml``'s ``policy`` block.
``PASSWORD_BOUNDS``: dict[str, Bound]
    The whole-number keys of ``policy.password``: ``min_length``, ``max_age_days``, ``history``.
``SPECIAL_CHARACTERS``
    R6.2's set of special characters, exactly ``!@#%$*&``.
``DEFAULT_PASSWORD_REMINDER_DAYS``, ``DEFAULT_QUOTA_WARNING_PERCENT``
    Tuples of the list-valued keys' defaults (R6.1b, R9.2d).
``table() -> dict``
    Every bound as plain data (``{key: {default, low, high, rule}}``, password keys as ``password.<key>``),
    for the roles' filter plugin and the docs.
``password_expires_at(password_changed_at, max_age_days) -> datetime``
    THE definition of expiry (R6.1b): the moment from which the password is refused. A password is
    expired when ``now >= password_expires_at(...)``. ``password_expired`` says just that.
``due_reminder(password_changed_at, max_age_days, reminder_days, now) -> int | None``
    The most urgent reminder threshold (days before expiry) whose moment has come, derived from
    ``password_expires_at``; None when none is due or the password has already expired.
``policy_problems(policy: dict) -> list[tuple[str, str, str]]``
    THE cross-field check of a ``policy`` block as written in ``policy.yml`` (nested ``password``):
    every bound above plus the rules between keys. Returns ``(key, rule, message)`` triples, empty when
    the policy is sound. Missing keys take their defaults; unknown keys are not this function's business.
``resolve(policy: dict) -> dict``
    The same block with every missing key set to its default (``password`` included).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True)
class Bound:
    """One number of the regulation: its default, its inclusive bounds and the rule that sets them."""

    default: int
    low: int
    high: int
    rule: str

    def problem(self, key: str, value) -> str | None:
        """A message when ``value`` is not a whole number within the bounds, else None."""
        if isinstance(value, bool) or not isinstance(value, int):
            return f"'{key}' must be a whole number, got {value!r}"
        if not self.low <= value <= self.high:
            return f"'{key}' must be {self.low}-{self.high} ({self.rule}), got {value}"
        return None


POLICY_BOUNDS = {
    "default_quota_mb": Bound(2048, 1, 1_048_576, "R9.2a"),
    "max_attachment_mb": Bound(25, 1, 1024, "R9.2b"),
    "inactivity_suspend_days": Bound(90, 1, 90, "R8.2a"),  # suspend after at most 90 idle days
    "revoke_after_suspended_days": Bound(30, 30, 3650, "R8.1"),  # never revoke before 30 days
    # R9.1: "at least 6 months"; the longest 6 consecutive calendar months (July-December) hold 184 days.
    "log_retention_days": Bound(184, 184, 3650, "R9.1"),
    "revoke_warning_days": Bound(7, 1, 29, "R8.1"),  # the agency is warned this many days before a revocation
    # Caps per lifecycle run: a cap that is hit holds back its own kind of action and raises an alert
    # (docs/lifecycle.md). 10 revocations: a revocation deletes mail for good (R7.2). 50 idle suspensions:
    # normal churn is a few a day; a broken last-login hook would otherwise suspend everyone on day 91.
    "max_revocations_per_run": Bound(10, 0, 100_000, "R8.1"),
    "max_idle_suspensions_per_run": Bound(50, 0, 100_000, "R8.2a"),
    # Sending limits of an authenticated user (R12.6: no mass mailing), enforced by Postfix's policy service
    # (docs/limits.md). Defaults a busy office never reaches: a secretary sending a circular one by one to
    # every agency of the province (about 100) still stays under 300 an hour, and one message may go to
    # 500 people at once; Postfix's own smtpd_recipient_limit (1000) caps the highest value.
    "max_messages_per_hour": Bound(300, 1, 100_000, "R12.6"),
    "max_recipients_per_message": Bound(500, 1, 1000, "R12.6"),
    # R8.2b: this many refusals by the limits within one hour suspend the account as compromised; a person
    # who meets a limit stops after a few tries, a spamming script keeps going. 0 switches it off.
    "suspend_after_limit_refusals": Bound(20, 0, 10_000, "R8.2b"),
    # The inbound filter's spam scores, in rspamd's points (R4.2, docs/filter.md): from spam_junk_score on a
    # message is filed in Junk, from spam_reject_score on it is refused; spam_junk_score < spam_reject_score.
    # Under 3 points one or two small penalties (a missing Message-Id, HTML only) would file ordinary mail in
    # Junk; over 50 points for a refusal, spam (R4.2) would be delivered, as only the test string scores so high.
    "spam_junk_score": Bound(6, 3, 30, "R4.2"),
    "spam_reject_score": Bound(15, 6, 50, "R4.2"),
}

PASSWORD_BOUNDS = {
    "min_length": Bound(8, 8, 72, "R6.2"),  # 72: the longest password BLF-CRYPT reads
    "max_age_days": Bound(90, 1, 90, "R6.1b"),  # every 3 months
    # A new password may not be any of the last N, the current one included: 2 is the least that stops an
    # A->B->A toggle, since R6.1b asks for a change; 24 hashes are kept per account.
    "history": Bound(5, 2, 24, "R6.1b"),
}

SPECIAL_CHARACTERS = "!@#%$*&"  # R6.2: "ký tự đặc biệt (!, @, #, %, $, *, &)", exactly these seven
DEFAULT_PASSWORD_REMINDER_DAYS = (14, 7, 1)  # R6.1b: reminder mails this many days before expiry
DEFAULT_QUOTA_WARNING_PERCENT = (80, 95)  # R9.2d: warnings into the mailbox as it nears its quota


def table() -> dict:
    """Every bound as plain data: ``{key: {default, low, high, rule}}``, password keys as ``password.<key>``."""
    rows = {key: asdict(bound) for key, bound in POLICY_BOUNDS.items()}
    rows.update({f"password.{key}": asdict(bound) for key, bound in PASSWORD_BOUNDS.items()})
    return rows


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def password_expires_at(password_changed_at: datetime, max_age_days: int) -> datetime:
    """R6.1b: the moment from which a password set at ``password_changed_at`` is refused (naive means UTC)."""
    return _aware(password_changed_at) + timedelta(days=max_age_days)


def password_expired(password_changed_at: datetime, max_age_days: int, now: datetime) -> bool:
    """R6.1b: expired from ``password_expires_at`` on."""
    return _aware(now) >= password_expires_at(password_changed_at, max_age_days)


def due_reminder(password_changed_at: datetime, max_age_days: int, reminder_days, now: datetime) -> int | None:
    """R6.1b: the smallest threshold N of ``reminder_days`` with ``now >= expiry - N days``, or None
    when no reminder is due yet or the password has already expired."""
    expires_at = password_expires_at(password_changed_at, max_age_days)
    now = _aware(now)
    if now >= expires_at:
        return None
    due = [days for days in reminder_days if now >= expires_at - timedelta(days=days)]
    return min(due) if due else None


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _whole_days(value, low: int, high: int) -> bool:
    return (isinstance(value, list | tuple) and all(
        isinstance(item, int) and not isinstance(item, bool) and low <= item <= high for item in value))


def policy_problems(policy: dict | None) -> list[tuple[str, str, str]]:
    """Every bound and every rule between keys of a ``policy`` block, as ``(key, rule, message)``."""
    policy = policy if isinstance(policy, dict) else {}
    problems: list[tuple[str, str, str]] = []
    values = {}
    for key, bound in POLICY_BOUNDS.items():
        value = policy.get(key, bound.default)
        message = bound.problem(key, value)
        if message:
            problems.append((key, bound.rule, message))
        values[key] = value if _whole(value) else bound.default  # cross-field rules judge what was written
    password = policy.get("password") or {}
    if not isinstance(password, dict):
        problems.append(("password", "R6.2", f"'password' must be a mapping, got {type(password).__name__}"))
        password = {}
    for key, bound in PASSWORD_BOUNDS.items():
        value = password.get(key, bound.default)
        message = bound.problem(f"password.{key}", value)
        if message:
            problems.append((f"password.{key}", bound.rule, message))
        values[f"password.{key}"] = value if _whole(value) else bound.default

    max_age = values["password.max_age_days"]
    reminders = policy.get("password_reminder_days", list(DEFAULT_PASSWORD_REMINDER_DAYS))
    if not _whole_days(reminders, 1, max_age - 1) or len(set(reminders)) != len(reminders):
        message = (f"'password_reminder_days' must be distinct whole days 1-{max_age - 1}, before the expiry "
                   f"after password.max_age_days={max_age}, got {reminders!r}")
        problems.append(("password_reminder_days", "R6.1b", message))
    warnings = policy.get("quota_warning_percent", list(DEFAULT_QUOTA_WARNING_PERCENT))
    if not warnings or not _whole_days(warnings, 1, 99) or list(warnings) != sorted(set(warnings)):
        message = f"'quota_warning_percent' must be ascending whole percentages 1-99, got {warnings!r}"
        problems.append(("quota_warning_percent", "R9.2d", message))
    if values["revoke_warning_days"] >= values["revoke_after_suspended_days"]:
        message = (f"'revoke_warning_days' ({values['revoke_warning_days']}) must be less than "
                   f"'revoke_after_suspended_days' ({values['revoke_after_suspended_days']})")
        problems.append(("revoke_warning_days", "R8.1", message))
    if values["spam_junk_score"] >= values["spam_reject_score"]:
        message = (f"'spam_junk_score' ({values['spam_junk_score']}) must be less than "
                   f"'spam_reject_score' ({values['spam_reject_score']}): spam between the two is filed in Junk")
        problems.append(("spam_junk_score", "R4.2", message))
    return problems


def resolve(policy: dict | None) -> dict:
    """The ``policy`` block with every missing key set to its default."""
    policy = dict(policy or {})
    resolved = {key: policy.get(key, bound.default) for key, bound in POLICY_BOUNDS.items()}
    password = dict(policy.get("password") or {})
    resolved["password"] = {"special_characters": SPECIAL_CHARACTERS, **password,
                            **{key: password.get(key, bound.default) for key, bound in PASSWORD_BOUNDS.items()}}
    resolved["password_reminder_days"] = list(policy.get("password_reminder_days", DEFAULT_PASSWORD_REMINDER_DAYS))
    resolved["quota_warning_percent"] = list(policy.get("quota_warning_percent", DEFAULT_QUOTA_WARNING_PERCENT))
    return {**policy, **resolved}
