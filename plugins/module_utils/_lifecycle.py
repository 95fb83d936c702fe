# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The regulation's clocks, planned from the user database without touching it (docs/lifecycle.md).

Stdlib only: the ``sonla.mail.lifecycle`` module and the daily ``sonla-mail-lifecycle`` CLI on the
mail server both import this file, so a preview (check mode) and the real run always agree.

What the plan holds, per mailbox row, at a given ``now`` (UTC):

- R8.2b, R8.2c: operator suspensions (compromised, misuse), with the reason recorded;
- R8.2a: idle suspension after more than ``inactivity_suspend_days`` calendar days without a login,
  counted from the latest of last login, creation, last restore and the end of a notified leave;
- R8.1, R7.2: revocation of a mailbox suspended by the lifecycle or an operator for
  ``revoke_after_suspended_days`` days with no restore request in the inventory. The agency is warned
  ``revoke_warning_days`` before; a revocation is never carried out sooner than that after the warning,
  and more than ``max_revocations`` fail the whole plan before anything is written;
- R6.1b: password reminders ``password_reminder_days`` before expiry, and the expiry itself
  (Dovecot refuses the login with the reason, mail is still delivered).

Each reminder, warning and expiry is recorded in ``mailbox_event`` and never sent twice.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

from ansible_collections.sonla.mail.plugins.module_utils import _notices, _regulation, _userdb
from ansible_collections.sonla.mail.plugins.module_utils._mailbox_plan import restore_applies

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
CAUSES = ("compromised", "misuse")  # R8.2b, R8.2c

# The reasons stored in mailbox.suspended_reason; Dovecot shows them at login (R8.1).
IDLE_REASON = "Không đăng nhập quá {days} ngày (R8.2a) / No login for more than {days} days"
CAUSE_REASONS = {
    "compromised": "Tài khoản bị xâm nhập (R8.2b) / Account compromised",
    "misuse": "Sử dụng sai quy định (R8.2c) / Forbidden use",
}

# Events this module writes; history of them makes every notice a once-only notice.
EVENT_ACTIONS = ("suspended", "revocation_warning", "revoked", "password_reminder", "password_expired")
_HISTORY_ACTIONS = ("restored", "revocation_warning", "password_reminder", "password_expired")


class LifecycleError(Exception):
    """The lifecycle cannot run safely; nothing may be written."""


_B = _regulation.POLICY_BOUNDS


@dataclass(frozen=True)
class Policy:
    """The lifecycle's numbers; defaults and bounds are the regulation's (``_regulation``)."""

    inactivity_suspend_days: int = _B["inactivity_suspend_days"].default  # R8.2a
    revoke_after_suspended_days: int = _B["revoke_after_suspended_days"].default  # R8.1
    revoke_warning_days: int = _B["revoke_warning_days"].default  # R8.1: warn the agency this many days before
    password_max_age_days: int = _regulation.PASSWORD_BOUNDS["max_age_days"].default  # R6.1b
    password_reminder_days: tuple[int, ...] = _regulation.DEFAULT_PASSWORD_REMINDER_DAYS  # R6.1b
    max_revocations_per_run: int = _B["max_revocations_per_run"].default  # R8.1, R7.2: cap per run
    max_idle_suspensions_per_run: int = _B["max_idle_suspensions_per_run"].default  # R8.2a: cap per run

    _KEYS = ("inactivity_suspend_days", "revoke_after_suspended_days", "revoke_warning_days",
             "max_revocations_per_run", "max_idle_suspensions_per_run")

    def __post_init__(self) -> None:
        problems = _regulation.policy_problems(self.as_inventory())
        if problems:
            raise ValueError("invalid lifecycle policy: " + "; ".join(message for _, _, message in problems))

    def as_inventory(self) -> dict:
        """The policy block these numbers come from, in ``policy.yml``'s shape (``_regulation.policy_problems``)."""
        return {**{key: getattr(self, key) for key in self._KEYS},
                "password": {"max_age_days": self.password_max_age_days},
                "password_reminder_days": list(self.password_reminder_days)}

    @classmethod
    def from_inventory(cls, policy: dict | None, **overrides) -> Policy:
        """From the ``policy`` block that ``mail_inventory`` returns (unrelated keys are ignored)."""
        policy = dict(policy or {})
        values = {key: policy[key] for key in cls._KEYS if policy.get(key) is not None}
        if (policy.get("password") or {}).get("max_age_days") is not None:
            values["password_max_age_days"] = policy["password"]["max_age_days"]
        if policy.get("password_reminder_days") is not None:
            values["password_reminder_days"] = policy["password_reminder_days"]
        values.update({key: value for key, value in overrides.items() if value is not None})
        if "password_reminder_days" in values:
            reminders = values["password_reminder_days"]
            if not isinstance(reminders, list | tuple):
                raise ValueError(f"invalid lifecycle policy: password_reminder_days must be a list, got {reminders!r}")
            values["password_reminder_days"] = tuple(reminders)
        policy = cls(**values)
        # Sorted and deduplicated only after the check, so that a repeated day is refused, not hidden.
        return replace(policy, password_reminder_days=tuple(sorted(set(policy.password_reminder_days), reverse=True)))


@dataclass
class LifecyclePlan:
    """What a run would do. ``actions`` are applied in order; the rest is reported."""

    now: str
    actions: list[dict] = field(default_factory=list)
    on_leave: list[dict] = field(default_factory=list)  # idle but with a notified leave (R8.2a)
    restore_pending: list[dict] = field(default_factory=list)  # due for revocation, restore requested (R8.1)
    deferred: list[dict] = field(default_factory=list)  # revocations waiting for their warning to age (R8.1)
    # Actions a cap held back, by kind ("suspended", "revoked"): not done this run, listed in the alert.
    held: dict[str, list[dict]] = field(default_factory=dict)
    # One inventory entry whose data cannot be read (an impossible date): reported, never acted upon.
    problems: list[dict] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)  # what the operator must look at; logged at error level

    @property
    def changed(self) -> bool:
        return bool(self.actions)

    def of(self, kind: str) -> list[dict]:
        return [action for action in self.actions if action["action"] == kind]

    def summary(self) -> dict:
        counts = {kind: len(self.of(kind)) for kind in EVENT_ACTIONS}
        counts.update(on_leave=len(self.on_leave), restore_pending=len(self.restore_pending), deferred=len(self.deferred),
                      held=sum(len(held) for held in self.held.values()), problems=len(self.problems),
                      alerts=len(self.alerts))
        return counts


def parse_time(text: str) -> datetime:
    """``YYYY-MM-DD HH:MM:SS`` (or a bare date) as an aware UTC datetime."""
    text = text.strip().replace("T", " ").removesuffix("Z")
    if len(text) == 10:
        text += " 00:00:00"
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


def _day(text: str | None) -> date | None:
    return parse_time(text).date() if text else None


def read_history(connection) -> dict[str, list[dict]]:
    """Past events the planner needs (restores, warnings, reminders, expiries), keyed by address."""
    marks = ", ".join("?" * len(_HISTORY_ACTIONS))
    rows = connection.execute(
        f"SELECT at, address, action, request_ref, detail FROM mailbox_event WHERE action IN ({marks}) ORDER BY id",
        _HISTORY_ACTIONS,
    )
    history: dict[str, list[dict]] = {}
    for row in rows:
        history.setdefault(row[1], []).append({"at": row[0], "action": row[2], "request": row[3], "detail": row[4] or ""})
    return history


def read_revoked(connection) -> dict[str, str]:
    """Addresses revoked by the lifecycle, with the time: a converge may not create them again (R7.2)."""
    rows = connection.execute("SELECT address, max(at) FROM mailbox_event WHERE action = 'revoked' GROUP BY address")
    return {row[0]: row[1] for row in rows}


def _last(history: list[dict], action: str, since: str | None = None) -> dict | None:
    found = None
    for event in history:
        if event["action"] != action or (since and event["at"] < since):
            continue
        found = event
    return found


def build_plan(
    rows: dict[str, dict],
    now: str,
    policy: Policy | None = None,
    leave: dict[str, str] | None = None,
    restores: dict[str, dict] | None = None,
    history: dict[str, list[dict]] | None = None,
    suspend: list[dict] | None = None,
    max_revocations: int | None = None,
    max_idle_suspensions: int | None = None,
) -> LifecyclePlan:
    """Plan one run. ``rows`` are ``_userdb.read_mailboxes``; ``leave`` maps address to the end date of a
    notified absence; ``restores`` maps address to the inventory's ``restore`` entry ({request, date});
    ``suspend`` lists operator suspensions ({address, reason, cause, request}).

    The caps (``max_revocations``, ``max_idle_suspensions``; None takes the policy's) each hold back only
    their own kind of action when exceeded, with an alert; the rest of the plan goes ahead. An inventory
    entry with an unreadable date is reported and that entry alone is left as it is."""
    policy = policy or Policy()
    leave = leave or {}
    restores = restores or {}
    history = history or {}
    moment = parse_time(now)
    now = format_time(moment)
    today = moment.date()
    plan = LifecyclePlan(now=now)

    operator = _operator_suspensions(rows, suspend or [], plan)
    for address in sorted(rows):
        row = rows[address]
        events = history.get(address, [])
        if address in operator:
            continue
        if row["state"] == "active":
            if _plan_idle(plan, row, events, today, policy, leave.get(address)):
                continue
            _plan_password(plan, row, events, moment, policy)
        elif row["suspended_by"] in ("lifecycle", "operator"):
            # An inventory suspension is the agency's own written request: it decides deletion
            # itself with state: absent (R7.1a), so only Art. 8.2 suspensions run the R8.1 clock.
            _plan_revocation(plan, row, events, moment, policy, restores.get(address))

    caps = {
        # kind: (cap, which actions of that kind it counts, what the alert calls them)
        "revoked": (policy.max_revocations_per_run if max_revocations is None else max_revocations,
                    lambda action: True, "revocations", "max_revocations_per_run"),
        "suspended": (policy.max_idle_suspensions_per_run if max_idle_suspensions is None else max_idle_suspensions,
                      lambda action: action["by"] == "lifecycle", "idle suspensions (R8.2a)",
                      "max_idle_suspensions_per_run"),
    }
    for kind, (cap, counted, name, key) in caps.items():
        due = [action for action in plan.of(kind) if counted(action)]
        if len(due) <= cap:
            continue
        # The cap stops only its own kind of action: a broken last-login hook or a bad restore must not
        # suspend or delete en masse, and must not stop reminders, warnings and the other kind either.
        plan.held[kind] = due
        plan.actions = [action for action in plan.actions if not (action["action"] == kind and counted(action))]
        plan.alerts.append(
            f"{len(due)} {name} due, more than {key}={cap}: none done this run "
            f"(first: {', '.join(action['address'] for action in due[:5])}); check the cause, then raise the cap "
            f"for one run (sonla-mail-lifecycle --{key.removesuffix('_per_run').replace('_', '-')})"
        )
    if plan.problems:
        plan.alerts.append(f"{len(plan.problems)} inventory entries have unreadable data and were left as they are: "
                           + "; ".join(f"{p['address']} {p['field']}={p['value']!r}" for p in plan.problems[:5]))
    return plan


def _action(kind: str, row: dict, **details) -> dict:
    """One planned action. ``request`` is the reference recorded with its event (R11.2, R7.1c): the
    operator's own for an operator suspension, otherwise the request the account is held under."""
    return {
        "action": kind, "address": row["address"], "organization": row["organization"],
        "display_name": row["display_name"], "kind": row["kind"], "request": row.get("request_ref"), **details,
    }


def _operator_suspensions(rows: dict[str, dict], suspend: list[dict], plan: LifecyclePlan,
                          by: str = "operator") -> set[str]:
    """R8.2b, R8.2c: validate every request first, then plan them; returns the addresses handled.
    ``by`` is who decided: an operator, or the system itself (``suspend_automatically``)."""
    handled: set[str] = set()
    for request in suspend:
        address = (request.get("address") or "").strip().lower()
        cause = request.get("cause")
        reason = (request.get("reason") or "").strip()
        if address not in rows:
            raise LifecycleError(f"suspend: mailbox {address or '(empty)'} is not in the user database")
        if cause not in CAUSES:
            raise LifecycleError(f"suspend {address}: cause must be one of {', '.join(CAUSES)}, got {cause!r}")
        if not reason:
            raise LifecycleError(f"suspend {address}: a reason is required (R8.2b, R8.2c)")
        if address in handled:
            raise LifecycleError(f"suspend: mailbox {address} is listed twice")
        handled.add(address)
    for request in suspend:
        address = request["address"].strip().lower()
        row = rows[address]
        stored = f"{CAUSE_REASONS[request['cause']]}: {request['reason'].strip()}"
        if row["state"] == "suspended" and row["suspended_by"] == "operator" and row["suspended_reason"] == stored:
            continue  # already done: a re-run changes nothing
        reference = (request.get("request") or "").strip() or row.get("request_ref")
        plan.actions.append(_action(
            "suspended", row, by=by, cause=request["cause"], reason=stored, request=reference,
            # R8.1: the revocation clock keeps counting from the first suspension.
            since=row["suspended_at"] if row["state"] == "suspended" else plan.now,
        ))
    return handled


def _plan_idle(plan: LifecyclePlan, row: dict, events: list[dict], today: date, policy: Policy, leave_until: str | None) -> bool:
    """R8.2a. Returns True when the mailbox is suspended by this plan."""
    restored = _last(events, "restored")
    starts = [_day(row["last_login_at"]), _day(row["created_at"]), _day(restored and restored["at"])]
    idle_since = max(day for day in starts if day is not None)
    idle_days = (today - idle_since).days
    if idle_days <= policy.inactivity_suspend_days:
        return False
    if leave_until:
        try:
            end = _day(str(leave_until))
        except ValueError:
            # An impossible date (2027-02-30, month 13, year 0): this entry alone is reported and left active.
            # The safe side: a suspension on unreadable data would cut off someone who did notify a leave,
            # while a day's delay costs nothing; the alert makes the operator fix the entry (issue 10 item 5).
            plan.problems.append({"address": row["address"], "field": "leave_until", "value": str(leave_until),
                                  "message": "not a valid date YYYY-MM-DD; idle suspension held until it is fixed"})
            return False
        if end >= today or (today - end).days <= policy.inactivity_suspend_days:
            # A notified absence (R8.2a): no suspension during it, and the clock restarts when it ends.
            plan.on_leave.append({"address": row["address"], "leave_until": leave_until, "idle_days": idle_days})
            return False
    reason = IDLE_REASON.format(days=policy.inactivity_suspend_days)
    plan.actions.append(_action("suspended", row, by="lifecycle", cause="inactive", reason=reason,
                                since=plan.now, idle_days=idle_days, last_login_at=row["last_login_at"]))
    return True


def _plan_password(plan: LifecyclePlan, row: dict, events: list[dict], moment: datetime, policy: Policy) -> None:
    """R6.1b: reminders before the expiry day, then the expiry. Accounts that must change their
    password anyway (R6.1a, R8.3c) are already refused at login and get neither."""
    if row["must_change"]:
        return
    changed_at = row["password_changed_at"] or row["created_at"]
    # R6.1b: expiry is _regulation's one definition; reminders are derived from it.
    expires_at = _regulation.password_expires_at(parse_time(changed_at), policy.password_max_age_days)
    details = {"password_changed_at": changed_at, "expires_at": format_time(expires_at),
               "expires_on": expires_at.date().isoformat()}
    if moment >= expires_at:
        if not _last(events, "password_expired", since=changed_at):
            plan.actions.append(_action("password_expired", row, expired_on=details["expires_on"],
                                        max_age_days=policy.password_max_age_days, **details))
        return
    threshold = _regulation.due_reminder(parse_time(changed_at), policy.password_max_age_days,
                                         policy.password_reminder_days, moment)
    if threshold is None:
        return
    # One reminder per threshold per password; a missed day sends the most urgent one only.
    sent = [int(event["detail"].split("=", 1)[1].split(";", 1)[0]) for event in events
            if event["action"] == "password_reminder" and event["at"] >= changed_at and event["detail"].startswith("days=")]
    if any(days <= threshold for days in sent):
        return
    days_left = (expires_at.date() - moment.date()).days
    plan.actions.append(_action("password_reminder", row, days=threshold, days_left=days_left, **details))


def _plan_revocation(plan: LifecyclePlan, row: dict, events: list[dict], moment: datetime, policy: Policy,
                     restore: dict | None) -> None:
    """R8.1, R7.2: warn, then revoke, unless the inventory carries a restore request newer than the suspension."""
    suspended_at = row["suspended_at"] or row["updated_at"]
    today = moment.date()
    revoke_on = _day(suspended_at) + timedelta(days=policy.revoke_after_suspended_days)
    warn_on = revoke_on - timedelta(days=policy.revoke_warning_days)
    if today < warn_on:
        return
    if restore:
        counts = _restore_counts(plan, row, events, restore, suspended_at, today)
        if counts is None:
            return  # unreadable: never revoke on bad data, the alert names the entry
        if counts:
            plan.restore_pending.append({"address": row["address"], "request": restore["request"],
                                         "date": str(restore["date"])})
            return
    warning = _last(events, "revocation_warning", since=suspended_at)
    if warning is None:
        # Never revoke without the warning: a late first run warns now and revokes later.
        revoke_on = max(revoke_on, today + timedelta(days=policy.revoke_warning_days))
        plan.actions.append(_action("revocation_warning", row, revoke_on=revoke_on.isoformat(),
                                    suspended_at=suspended_at, reason=row["suspended_reason"]))
        return
    revoke_on = max(revoke_on, _day(warning["at"]) + timedelta(days=policy.revoke_warning_days))
    if today < revoke_on:
        plan.deferred.append({"address": row["address"], "revoke_on": revoke_on.isoformat()})
        return
    plan.actions.append(_action("revoked", row, suspended_at=suspended_at, reason=row["suspended_reason"],
                                warned_at=warning["at"]))


def _restore_counts(plan: LifecyclePlan, row: dict, events: list[dict], restore: dict, suspended_at: str,
                    today: date) -> bool | None:
    """R8.1, R8.3a: does the inventory's restore request stop this revocation? Only a request dated on or
    after the suspension, no later than today, and not already used by an earlier restore (it applies
    once). None when its date cannot be read: the entry is reported and nothing irreversible is done."""
    try:
        dated = _day(str(restore.get("date") or ""))
    except ValueError:
        dated = None
    if dated is None:
        plan.problems.append({"address": row["address"], "field": "restore.date", "value": str(restore.get("date")),
                              "message": "not a valid date YYYY-MM-DD; revocation held until it is fixed"})
        return None
    if dated > today:
        return False  # a request dated in the future is not yet a request
    if any(event["action"] == "restored" and event["request"] == restore.get("request") for event in events):
        return False  # already used for an earlier suspension
    return restore_applies(restore, suspended_at)


def diff_text(plan: LifecyclePlan) -> dict:
    """Before/after text for diff mode."""
    before: list[str] = []
    after: list[str] = []
    for action in plan.actions:
        address = action["address"]
        kind = action["action"]
        if kind == "suspended":
            before.append(f"{address}: state=active" if action["since"] == plan.now else f"{address}: state=suspended")
            after.append(f"{address}: state=suspended by {action['by']} ({action['reason']})")
        elif kind == "revoked":
            before.append(f"{address}: suspended since {action['suspended_at']}")
            after.append(f"{address}: revoked, mailbox and mail deleted (R7.2)")
        elif kind == "revocation_warning":
            after.append(f"{address}: agency warned, revocation on {action['revoke_on']}")
        elif kind == "password_reminder":
            after.append(f"{address}: reminded, password expires on {action['expires_on']}")
        elif kind == "password_expired":
            after.append(f"{address}: password expired on {action['expired_on']}")
    return {"before": "".join(f"{line}\n" for line in before), "after": "".join(f"{line}\n" for line in after)}


def apply_plan(connection, plan: LifecyclePlan) -> None:
    """Write the plan in one transaction: all of it or nothing. Mail storage is removed afterwards
    (``_userdb.remove_mail``), once the rows are gone and Postfix refuses new mail for them."""
    now = plan.now
    events = []
    with _userdb.transaction(connection):
        for action in plan.actions:
            address = action["address"]
            kind = action["action"]
            ref = action.get("request")  # R11.2: every event carries its request reference where one exists
            if kind == "suspended":
                connection.execute(
                    "UPDATE mailbox SET state = 'suspended', suspended_at = ?, suspended_reason = ?, suspended_by = ?,"
                    " updated_at = ? WHERE address = ?",
                    (action["since"], action["reason"], action["by"], now, address),
                )
                detail = f"by={action['by']}; cause={action['cause']}; {action['reason']}"
                events.append((now, address, "suspended", ref, detail))
            elif kind == "revoked":
                connection.execute("DELETE FROM mailbox WHERE address = ?", (address,))
                events.append((now, address, "revoked", ref, f"suspended_at={action['suspended_at']}; {action['reason']}"))
            elif kind == "revocation_warning":
                events.append((now, address, "revocation_warning", ref, f"revoke_on={action['revoke_on']}"))
            elif kind == "password_reminder":
                events.append((now, address, "password_reminder", ref,
                               f"days={action['days']}; expires_on={action['expires_on']}"))
            elif kind == "password_expired":
                events.append((now, address, "password_expired", ref, f"expired_on={action['expired_on']}"))
        _userdb.record_events(connection, events)


# PostgreSQL's advisory lock of the lifecycle runs (issue 15); the schema upgrade holds key 15.
POSTGRES_LOCK_KEY = 82


@contextmanager
def run_lock(database: str):
    """One lifecycle run at a time (the daily job and an operator's playbook): a lock file beside the SQLite file, or
    on several hosts PostgreSQL's advisory lock, which every host reaching the database shares (issue 15)."""
    if _userdb.is_postgres(database):
        with _userdb.postgres_lock(database, POSTGRES_LOCK_KEY):
            yield
        return
    with open(database + ".lifecycle.lock", "a", encoding="utf-8") as stream:
        fcntl.flock(stream, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(stream, fcntl.LOCK_UN)


def inventory_maps(mailboxes: list[dict] | None) -> tuple[dict[str, str], dict[str, dict]]:
    """The leave and restore maps from the desired set of ``mail_inventory``."""
    leave: dict[str, str] = {}
    restores: dict[str, dict] = {}
    for mailbox in mailboxes or ():
        if mailbox.get("leave_until"):
            leave[mailbox["address"]] = str(mailbox["leave_until"])
        if mailbox.get("restore"):
            restores[mailbox["address"]] = mailbox["restore"]
    return leave, restores


RESULT_LISTS = {
    "suspended": "suspended", "revocation_warnings": "revocation_warning", "revoked": "revoked",
    "password_reminders": "password_reminder", "password_expired": "password_expired",
}


def run(database: str, *, now: str | None = None, policy: Policy | None = None, mailboxes: list[dict] | None = None,
        organizations: list[dict] | None = None, department: str | None = None, domain: str | None = None,
        suspend: list[dict] | None = None, max_revocations: int | None = None, max_idle_suspensions: int | None = None,
        notify: bool = True, mail_root: str | None = None,
        check: bool = False, smtp_host: str = _notices.SMTP_HOST, smtp_port: int = _notices.SMTP_PORT,
        sender: str | None = None, webmail_url: str | None = None) -> dict:
    """One lifecycle run, shared by the module and the daily CLI: plan, then (unless ``check``) write,
    delete revoked mail and send the notices (R7.3). Raises LifecycleError before writing anything.

    ``result["alerts"]`` lists what a monitor must raise (a cap hit, an unreadable inventory entry); the
    callers log each at error level and the Department's summary carries them. The rest of the run is done."""
    now = format_time(parse_time(now)) if now else _userdb.utc_now()
    if check and not _userdb.is_postgres(database) and not os.path.exists(database):
        rows, history = {}, {}
    else:
        connection = _userdb.connect(database, upgrade=not check)
        rows, history = _userdb.read_mailboxes(connection), read_history(connection)
    leave, restores = inventory_maps(mailboxes)
    policy = policy or Policy()
    plan = build_plan(rows, now, policy, leave, restores, history, suspend, max_revocations, max_idle_suspensions)

    directory = _notices.Directory(organizations, department, mailboxes)
    domain = domain or next((address.split("@", 1)[1] for address in rows), "sonla.gov.vn")
    messages = _notices.render(_notices.lifecycle_items(plan.actions, directory), directory, now, "lifecycle", domain,
                               sender, webmail_url, alerts=plan.alerts,
                               max_age_days=policy.password_max_age_days) if notify else []
    result = {
        "changed": plan.changed, "now": now,
        **{name: plan.of(kind) for name, kind in RESULT_LISTS.items()},
        "on_leave": plan.on_leave, "restore_pending": plan.restore_pending, "deferred": plan.deferred,
        "held": {name: [action["address"] for action in plan.held.get(kind, ())] for name, kind in
                 (("suspended", "suspended"), ("revoked", "revoked"))},
        "problems": plan.problems, "alerts": plan.alerts,
        "notices": _notices.preview(messages), "notice_errors": [], "mail_errors": [], "summary": plan.summary(),
        "plan": plan,
    }
    result["revoked"] = [action["address"] for action in result["revoked"]]
    if check or not (plan.changed or messages):
        return result
    if plan.changed:
        apply_plan(connection, plan)
    if mail_root:
        for address in result["revoked"]:
            try:
                _userdb.remove_mail(mail_root, address)
            except (OSError, ValueError) as error:
                result["mail_errors"].append(f"{address}: {error}")
    result["notice_errors"] = _notices.send(messages, smtp_host, smtp_port)
    return result


AUTOMATIC_ALERT = ("{address}: tạm khóa tự động vì nghi bị xâm nhập (R8.2b), khôi phục bằng văn bản đề nghị (restore, "
                   "R8.3) / suspended automatically as compromised: {detail}")


def suspend_automatically(database: str, address: str, cause: str, detail: str, *, organizations: list[dict] | None,
                          department: str | None, domain: str, webmail_url: str | None = None, notify: bool = True,
                          sender: str | None = None, smtp_host: str = _notices.SMTP_HOST,
                          smtp_port: int = _notices.SMTP_PORT, now: str | None = None) -> dict | None:
    """R8.2b: a suspension the system decides itself (the sending limits), written and notified exactly as
    an operator's (same reason, event and agency notice), recorded ``by=lifecycle``; the Department's summary
    carries it as an alert for the operators. Only an active account is suspended: None otherwise.
    It is lifted like any Art. 8.2 suspension, by the inventory's ``restore`` (R8.3a, R8.3c)."""
    now = now or _userdb.utc_now()
    connection = _userdb.connect(database, upgrade=False)
    try:
        row = _userdb.read_mailbox(connection, address, _userdb.SUSPENSION_COLUMNS)  # the MX's limits role reads no more
        if row is None or row["state"] != "active":
            return None
        plan = LifecyclePlan(now=now)
        _operator_suspensions({address: row}, [{"address": address, "cause": cause, "reason": detail}], plan,
                              by="lifecycle")
        plan.alerts.append(AUTOMATIC_ALERT.format(address=address, detail=detail))
        apply_plan(connection, plan)
    finally:
        connection.close()
    directory = _notices.Directory(organizations, department)
    messages = _notices.render(_notices.lifecycle_items(plan.actions, directory), directory, now, "lifecycle", domain,
                               sender, webmail_url, alerts=plan.alerts) if notify else []
    return {"suspended": plan.actions, "alerts": plan.alerts, "notices": _notices.preview(messages),
            "notice_errors": _notices.send(messages, smtp_host, smtp_port)}
