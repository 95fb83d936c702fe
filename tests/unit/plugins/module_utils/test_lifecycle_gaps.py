# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lifecycle (R6.1b, R7.2, R7.3, R8.1, R8.2a-c, R11.2): behaviour the mutation run (scripts/mutation.sh,
docs/quality.md) found unguarded: the reported actions, the diff, the run's result and notices."""

from __future__ import annotations

import time

import pytest

from ansible_collections.sonla.mail.plugins.module_utils import _lifecycle, _mailbox_plan, _notices, _userdb

NOW = "2026-06-01 02:00:00"
DOMAIN = "sonla.gov.vn"


def row(local_part, **fields):
    """A ``_userdb.read_mailboxes`` row: active, created long ago, logged in and password changed recently."""
    return {"address": f"{local_part}@{DOMAIN}", "kind": "person", "owner_id": local_part,
            "display_name": f"Người {local_part}", "organization": "skhcn", "quota_mb": 2048, "state": "active",
            "must_change": 0, "created_at": "2025-01-01 08:00:00", "last_login_at": "2026-05-31 10:00:00",
            "password_changed_at": "2026-05-20 09:00:00", "suspended_at": None, "suspended_reason": None,
            "suspended_by": None, "request_ref": f"1/QĐ-{local_part}", "updated_at": "2025-01-01 08:00:00",
            **fields}


def rows_of(*items):
    return {item["address"]: item for item in items}


def addr(local_part):
    return f"{local_part}@{DOMAIN}"


def warned(at):
    return {"at": at, "action": "revocation_warning", "request": None, "detail": "revoke_on=x"}


# One plan with every kind of action, at NOW (2026-06-01), default policy (90 / 30 / 7 / 90 days).
ALL_ROWS = rows_of(
    row("a.idle", last_login_at="2026-02-01 10:00:00"),  # 120 days idle: suspended (R8.2a)
    row("b.op"),  # compromised: operator suspension (R8.2b)
    row("c.warn", state="suspended", suspended_by="lifecycle", suspended_at="2026-05-01 02:00:00",
        suspended_reason="idle"),  # 31 days suspended, never warned: warned now (R8.1)
    row("d.gone", state="suspended", suspended_by="lifecycle", suspended_at="2026-04-01 02:00:00",
        suspended_reason="idle"),  # warned on 04-24: revoked (R8.1, R7.2)
    row("e.remind", password_changed_at="2026-03-10 00:00:00"),  # expires 06-08 00:00: the 7-day reminder (R6.1b)
    row("f.expired", password_changed_at="2026-02-01 00:00:00"),  # expired 2026-05-02 (R6.1b)
    row("g.again", state="suspended", suspended_by="lifecycle", suspended_at="2026-05-30 02:00:00",
        suspended_reason="idle"),  # already suspended, now suspended by an operator for misuse (R8.2c)
)
ALL_HISTORY = {addr("d.gone"): [warned("2026-04-24 02:00:00")]}
ALL_SUSPEND = [{"address": addr("b.op"), "cause": "compromised", "reason": "Lộ mật khẩu", "request": "12/CATP"},
               {"address": addr("g.again"), "cause": "misuse", "reason": "Phát tán nội dung cấm"}]


def all_plan():
    return _lifecycle.build_plan(ALL_ROWS, NOW, history=ALL_HISTORY, suspend=ALL_SUSPEND)


# --- the actions as the module reports them ----------------------------------------------------

def test_every_reported_action_names_the_mailbox_and_why():
    """R8.1, R8.2a-c, R6.1b, R11.2: each action in the result carries the mailbox (address, organization,
    display name, kind), its request reference and the facts of the decision, exactly."""
    plan = all_plan()
    who = {name: {"address": addr(name), "organization": "skhcn", "display_name": f"Người {name}", "kind": "person"}
           for name in ("a.idle", "b.op", "c.warn", "d.gone", "e.remind", "f.expired", "g.again")}
    assert plan.actions == [
        {"action": "suspended", **who["b.op"], "request": "12/CATP", "by": "operator", "cause": "compromised",
         "reason": "Tài khoản bị xâm nhập (R8.2b) / Account compromised: Lộ mật khẩu", "since": NOW},
        # No operator reference: the account's own request (R11.2); the R8.1 clock keeps the first suspension.
        {"action": "suspended", **who["g.again"], "request": "1/QĐ-g.again", "by": "operator", "cause": "misuse",
         "reason": "Sử dụng sai quy định (R8.2c) / Forbidden use: Phát tán nội dung cấm",
         "since": "2026-05-30 02:00:00"},
        {"action": "suspended", **who["a.idle"], "request": "1/QĐ-a.idle", "by": "lifecycle", "cause": "inactive",
         "reason": "Không đăng nhập quá 90 ngày (R8.2a) / No login for more than 90 days", "since": NOW,
         "idle_days": 120, "last_login_at": "2026-02-01 10:00:00"},
        {"action": "revocation_warning", **who["c.warn"], "request": "1/QĐ-c.warn", "revoke_on": "2026-06-08",
         "suspended_at": "2026-05-01 02:00:00", "reason": "idle"},
        {"action": "revoked", **who["d.gone"], "request": "1/QĐ-d.gone", "suspended_at": "2026-04-01 02:00:00",
         "reason": "idle", "warned_at": "2026-04-24 02:00:00"},
        {"action": "password_reminder", **who["e.remind"], "request": "1/QĐ-e.remind", "days": 7, "days_left": 7,
         "password_changed_at": "2026-03-10 00:00:00", "expires_at": "2026-06-08 00:00:00",
         "expires_on": "2026-06-08"},
        {"action": "password_expired", **who["f.expired"], "request": "1/QĐ-f.expired", "expired_on": "2026-05-02",
         "max_age_days": 90, "password_changed_at": "2026-02-01 00:00:00", "expires_at": "2026-05-02 00:00:00",
         "expires_on": "2026-05-02"},
    ]


def test_diff_mode_shows_every_kind_of_action_line_by_line():
    """Diff mode is the operator's preview of the daily run (R8.1, R8.2, R6.1b): every action kind has
    its before and after lines; a suspension of a suspended account starts from 'state=suspended'."""
    diff = _lifecycle.diff_text(all_plan())
    assert diff["before"] == (
        f"{addr('b.op')}: state=active\n"
        f"{addr('g.again')}: state=suspended\n"
        f"{addr('a.idle')}: state=active\n"
        f"{addr('d.gone')}: suspended since 2026-04-01 02:00:00\n"
    )
    assert diff["after"] == (
        f"{addr('b.op')}: state=suspended by operator (Tài khoản bị xâm nhập (R8.2b) / Account compromised: Lộ mật khẩu)\n"
        f"{addr('g.again')}: state=suspended by operator (Sử dụng sai quy định (R8.2c) / Forbidden use: Phát tán nội dung cấm)\n"
        f"{addr('a.idle')}: state=suspended by lifecycle (Không đăng nhập quá 90 ngày (R8.2a) / No login for more than 90 days)\n"
        f"{addr('c.warn')}: agency warned, revocation on 2026-06-08\n"
        f"{addr('d.gone')}: revoked, mailbox and mail deleted (R7.2)\n"
        f"{addr('e.remind')}: reminded, password expires on 2026-06-08\n"
        f"{addr('f.expired')}: password expired on 2026-05-02\n"
    )


def test_the_summary_counts_every_list():
    """R7.3: the Department's summary counts each list the run reports, the held, problems and alerts too."""
    rows = rows_of(
        row("leave", last_login_at="2026-01-01 10:00:00"),  # idle, on leave
        row("pending", state="suspended", suspended_by="lifecycle", suspended_at="2026-04-01 02:00:00",
            suspended_reason="idle"),  # restore requested
        row("wait", state="suspended", suspended_by="lifecycle", suspended_at="2026-04-20 02:00:00",
            suspended_reason="idle"),  # warned yesterday: deferred
        row("bad", state="suspended", suspended_by="lifecycle", suspended_at="2026-04-01 02:00:00",
            suspended_reason="idle"),  # unreadable restore date: a problem
    )
    plan = _lifecycle.build_plan(
        rows, NOW, leave={addr("leave"): "2026-12-31"},
        restores={addr("pending"): {"request": "9/QĐ", "date": "2026-05-15"},
                  addr("bad"): {"request": "9/QĐ", "date": "2026-02-30"}},
        history={addr("wait"): [warned("2026-05-31 02:00:00")]})
    assert plan.summary() == {"suspended": 0, "revocation_warning": 0, "revoked": 0, "password_reminder": 0,
                              "password_expired": 0, "on_leave": 1, "restore_pending": 1, "deferred": 1, "held": 0,
                              "problems": 1, "alerts": 1}
    assert plan.deferred == [{"address": addr("wait"), "revoke_on": "2026-06-07"}]


# --- idle suspensions and leave (R8.2a) ---------------------------------------------------------

def test_an_account_on_leave_or_with_an_unreadable_leave_still_gets_its_password_notices():
    """R8.2a holds only the idle suspension; R6.1b still applies to an account on leave or whose
    leave date cannot be read: its expired password is reported."""
    rows = rows_of(row("leave", last_login_at="2026-01-01 10:00:00", password_changed_at="2026-02-01 00:00:00"),
                   row("typo", last_login_at="2026-01-01 10:00:00", password_changed_at="2026-02-01 00:00:00"))
    plan = _lifecycle.build_plan(rows, NOW, leave={addr("leave"): "2026-12-31", addr("typo"): "2026-02-30"})
    assert [a["address"] for a in plan.of("password_expired")] == [addr("leave"), addr("typo")]
    assert plan.of("suspended") == []


def test_the_idle_reason_names_the_policys_days():
    """R8.2a, R8.1: the reason Dovecot shows at login names the agency's own limit."""
    policy = _lifecycle.Policy(inactivity_suspend_days=60)
    plan = _lifecycle.build_plan(rows_of(row("idle", last_login_at="2026-03-01 10:00:00")), NOW, policy)
    (action,) = plan.of("suspended")
    assert action["reason"] == "Không đăng nhập quá 60 ngày (R8.2a) / No login for more than 60 days"
    assert action["idle_days"] == 92


# --- operator suspensions (R8.2b, R8.2c) ----------------------------------------------------------

@pytest.mark.parametrize(("request_", "message"), [
    ({"cause": "misuse", "reason": "x"}, "suspend: mailbox (empty) is not in the user database"),
    ({"address": "  ", "cause": "misuse", "reason": "x"}, "suspend: mailbox (empty) is not in the user database"),
    ({"address": addr("b.op"), "cause": "misuse"}, f"suspend {addr('b.op')}: a reason is required (R8.2b, R8.2c)"),
])
def test_an_incomplete_operator_suspension_is_refused_with_its_message(request_, message):
    """R8.2b, R8.2c: a suspension needs a known mailbox and a reason; the message says which is missing."""
    with pytest.raises(_lifecycle.LifecycleError) as error:
        _lifecycle.build_plan(ALL_ROWS, NOW, suspend=[request_])
    assert str(error.value) == message


def test_a_mailbox_listed_twice_for_suspension_is_refused():
    """R8.2b, R8.2c: two requests for one mailbox (whatever the case) are an operator error, not two events."""
    suspend = [{"address": addr("b.op"), "cause": "misuse", "reason": "x"},
               {"address": addr("B.OP"), "cause": "compromised", "reason": "y"}]
    with pytest.raises(_lifecycle.LifecycleError) as error:
        _lifecycle.build_plan(ALL_ROWS, NOW, suspend=suspend)
    assert str(error.value) == f"suspend: mailbox {addr('b.op')} is listed twice"


def test_a_suspension_already_done_does_not_stop_the_next_one():
    """R8.2b: a re-run skips the suspension already in place and still plans the new one after it."""
    done = row("done", state="suspended", suspended_by="operator", suspended_at="2026-05-30 02:00:00",
               suspended_reason="Tài khoản bị xâm nhập (R8.2b) / Account compromised: Lộ mật khẩu")
    suspend = [{"address": addr("done"), "cause": "compromised", "reason": "Lộ mật khẩu"},
               {"address": addr("new"), "cause": "compromised", "reason": "Lộ mật khẩu"}]
    plan = _lifecycle.build_plan(rows_of(done, row("new")), NOW, suspend=suspend)
    assert [(a["address"], a["since"]) for a in plan.of("suspended")] == [(addr("new"), NOW)]


def test_an_operator_suspension_is_written_with_its_time(tmp_path):
    """R8.1: an operator suspension of an active account starts the revocation clock at the run's time."""
    connection = _userdb.connect(str(tmp_path / "users.sqlite"))
    desired = [{"address": addr("annv"), "kind": "person", "owner_id": "annv", "display_name": "An", "organization": "skhcn",
                "quota_mb": 2048, "state": "active", "reason": None, "request": "1/QĐ", "leave_until": None}]
    plan = _mailbox_plan.build_plan(desired, {})
    _userdb.apply_plan(connection, plan, {addr("annv"): "{SSHA512}x"}, "2026-05-01 08:00:00")
    suspend = [{"address": addr("annv"), "cause": "misuse", "reason": "Thư rác"}]
    _lifecycle.apply_plan(connection, _lifecycle.build_plan(_userdb.read_mailboxes(connection), NOW, suspend=suspend))
    stored = _userdb.read_mailboxes(connection)[addr("annv")]
    assert (stored["state"], stored["suspended_at"], stored["suspended_by"]) == ("suspended", NOW, "operator")
    connection.close()


# --- revocation (R8.1, R7.2) ----------------------------------------------------------------------

def test_an_operator_suspension_runs_the_revocation_clock():
    """R8.1: a mailbox suspended by an operator (R8.2b, R8.2c) is warned and revoked like an idle one."""
    suspended = {"state": "suspended", "suspended_by": "operator", "suspended_reason": "x"}
    rows = rows_of(row("warn", suspended_at="2026-05-01 02:00:00", **suspended),
                   row("gone", suspended_at="2026-04-01 02:00:00", **suspended))
    plan = _lifecycle.build_plan(rows, NOW, history={addr("gone"): [warned("2026-04-24 02:00:00")]})
    assert [a["address"] for a in plan.of("revocation_warning")] == [addr("warn")]
    assert [a["address"] for a in plan.of("revoked")] == [addr("gone")]


def test_a_later_update_does_not_restart_the_revocation_clock():
    """R8.1: the clock counts from suspended_at, not from the row's last update (say a quota change)."""
    rows = rows_of(row("gone", state="suspended", suspended_by="lifecycle", suspended_reason="idle",
                       suspended_at="2026-04-01 02:00:00", updated_at="2026-05-31 09:00:00"))
    plan = _lifecycle.build_plan(rows, NOW, history={addr("gone"): [warned("2026-04-24 02:00:00")]})
    assert [a["address"] for a in plan.of("revoked")] == [addr("gone")]


def test_a_suspended_row_without_its_time_counts_from_its_last_update():
    """R8.1: a row of an older database with no suspended_at falls back to updated_at, never fails."""
    rows = rows_of(row("old", state="suspended", suspended_by="lifecycle", suspended_reason="idle",
                       suspended_at=None, updated_at="2026-05-01 02:00:00"))
    (warning,) = _lifecycle.build_plan(rows, NOW).of("revocation_warning")
    assert (warning["suspended_at"], warning["revoke_on"]) == ("2026-05-01 02:00:00", "2026-06-08")


def test_a_warning_of_an_earlier_suspension_does_not_count():
    """R8.1: suspended, warned, restored and suspended again: the new suspension gets its own warning."""
    rows = rows_of(row("again", state="suspended", suspended_by="lifecycle", suspended_reason="idle",
                       suspended_at="2026-04-01 02:00:00"))
    history = {addr("again"): [warned("2025-12-24 02:00:00"),
                               {"at": "2026-01-10 08:00:00", "action": "restored", "request": "5/QĐ", "detail": ""}]}
    plan = _lifecycle.build_plan(rows, NOW, history=history)
    assert plan.of("revoked") == []
    assert [a["revoke_on"] for a in plan.of("revocation_warning")] == ["2026-06-08"]


# --- restore requests (R8.1, R8.3a) -----------------------------------------------------------------

SUSPENDED = row("held", state="suspended", suspended_by="lifecycle", suspended_reason="idle",
                suspended_at="2026-04-01 02:00:00")
WARNED = {addr("held"): [warned("2026-04-24 02:00:00")]}


def test_a_restore_request_dated_today_counts():
    """R8.1: a restore request dated the day of the run stops the revocation."""
    plan = _lifecycle.build_plan(rows_of(SUSPENDED), NOW, history=WARNED,
                                 restores={addr("held"): {"request": "9/QĐ", "date": "2026-06-01"}})
    assert plan.of("revoked") == [] and plan.restore_pending == [
        {"address": addr("held"), "request": "9/QĐ", "date": "2026-06-01"}]


def test_an_earlier_restore_under_another_request_does_not_spend_a_new_one():
    """R8.3a: only the same request, already used by a restore, is spent; an earlier restore under another
    request (or another event under this one) does not stop a new request from counting."""
    history = {addr("held"): [
        {"at": "2026-01-10 08:00:00", "action": "restored", "request": "5/QĐ", "detail": ""},
        {"at": "2026-01-11 08:00:00", "action": "password_reminder", "request": "9/QĐ", "detail": "days=7; x"},
        *WARNED[addr("held")]]}
    plan = _lifecycle.build_plan(rows_of(SUSPENDED), NOW, history=history,
                                 restores={addr("held"): {"request": "9/QĐ", "date": "2026-05-15"}})
    assert plan.of("revoked") == [] and [p["request"] for p in plan.restore_pending] == ["9/QĐ"]


def test_an_unreadable_restore_date_is_reported_exactly():
    """R8.1: the problem names the entry, the field, the value as written and what is held."""
    plan = _lifecycle.build_plan(rows_of(SUSPENDED), NOW, history=WARNED,
                                 restores={addr("held"): {"request": "9/QĐ", "date": "2026-02-30"}})
    assert plan.problems == [{"address": addr("held"), "field": "restore.date", "value": "2026-02-30",
                              "message": "not a valid date YYYY-MM-DD; revocation held until it is fixed"}]
    alert = f"1 inventory entries have unreadable data and were left as they are: {addr('held')} restore.date='2026-02-30'"
    assert plan.alerts == [alert]


def test_the_problems_alert_names_the_first_five():
    """The alert stays one line: the count, then the first five entries, separated by '; '."""
    rows = rows_of(*(row(f"p{number}", last_login_at="2026-01-01 10:00:00") for number in range(7)))
    plan = _lifecycle.build_plan(rows, NOW, leave={address: "2026-13-01" for address in rows})
    named = "; ".join(f"{addr(f'p{number}')} leave_until='2026-13-01'" for number in range(5))
    assert plan.alerts == [f"7 inventory entries have unreadable data and were left as they are: {named}"]


# --- caps (R8.1, R8.2a) -----------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "option", "flag", "name"), [
    ("suspended", "max_idle_suspensions", "--max-idle-suspensions", "idle suspensions (R8.2a)"),
    ("revoked", "max_revocations", "--max-revocations", "revocations"),
])
def test_a_cap_alert_names_the_first_five_and_the_cli_flag(kind, option, flag, name):
    """R8.1, R8.2a: the alert gives the count, the first five addresses and the exact CLI option to raise the cap."""
    if kind == "suspended":
        rows = rows_of(*(row(f"p{number}", last_login_at="2026-01-01 10:00:00") for number in range(7)))
        history = {}
    else:
        rows = rows_of(*(row(f"p{number}", state="suspended", suspended_by="lifecycle", suspended_reason="idle",
                             suspended_at="2026-04-01 02:00:00") for number in range(7)))
        history = {address: [warned("2026-04-24 02:00:00")] for address in rows}
    plan = _lifecycle.build_plan(rows, NOW, history=history, **{option: 2})
    first = ", ".join(addr(f"p{number}") for number in range(5))
    key = f"{option}_per_run"
    alert = (f"7 {name} due, more than {key}=2: none done this run (first: {first}); check the cause, "
             f"then raise the cap for one run (sonla-mail-lifecycle {flag})")
    assert plan.alerts == [alert]


# --- passwords (R6.1b) ------------------------------------------------------------------------------

def test_a_password_never_changed_counts_from_the_accounts_creation():
    """R6.1b: without password_changed_at the 90 days run from the account's creation."""
    rows = rows_of(row("new", password_changed_at=None, created_at="2026-03-10 00:00:00"))
    (reminder,) = _lifecycle.build_plan(rows, NOW).of("password_reminder")
    assert (reminder["password_changed_at"], reminder["expires_on"]) == ("2026-03-10 00:00:00", "2026-06-08")


def test_a_second_expiry_after_a_new_password_is_reported_again():
    """R6.1b: each password's expiry is reported once; the expiry of an earlier password does not hide
    the expiry of the one that replaced it."""
    rows = rows_of(row("late", password_changed_at="2026-02-01 00:00:00"))
    history = {addr("late"): [{"at": "2026-01-01 02:00:00", "action": "password_expired", "request": None,
                               "detail": "expired_on=2025-12-31"}]}
    assert [a["expired_on"] for a in _lifecycle.build_plan(rows, NOW, history=history).of("password_expired")] == [
        "2026-05-02"]


# --- the time and the policy ------------------------------------------------------------------------

def test_times_in_iso_8601_form_are_read():
    """A playbook passes ansible_date_time.iso8601 ('2026-06-01T02:00:00Z') as ``now``."""
    assert _lifecycle.format_time(_lifecycle.parse_time("2026-06-01T02:00:00Z")) == NOW
    assert _lifecycle.format_time(_lifecycle.parse_time(" 2026-06-01 ")) == "2026-06-01 00:00:00"


def test_times_are_written_in_utc_whatever_the_servers_zone(monkeypatch):
    """The database holds UTC (docs/lifecycle.md): a server set to Vietnam's time (UTC+7) writes the same."""
    moment = _lifecycle.parse_time(NOW)
    monkeypatch.setenv("TZ", "ICT-7")
    time.tzset()
    try:
        assert _lifecycle.format_time(moment) == NOW
    finally:
        monkeypatch.undo()
        time.tzset()


def test_policy_messages_and_overrides():
    """R8.1, R8.2a, R6.1b: every problem of a policy is named in one message; a non-list of reminder days
    is refused; a value given for one run (the CLI's options) overrides the inventory's."""
    with pytest.raises(ValueError) as error:
        _lifecycle.Policy(inactivity_suspend_days=120, revoke_after_suspended_days=10)
    assert str(error.value) == ("invalid lifecycle policy: 'inactivity_suspend_days' must be 1-90 (R8.2a), got 120; "
                                "'revoke_after_suspended_days' must be 30-3650 (R8.1), got 10")
    with pytest.raises(ValueError) as error:
        _lifecycle.Policy.from_inventory({"password_reminder_days": 7})
    assert str(error.value) == "invalid lifecycle policy: password_reminder_days must be a list, got 7"
    policy = _lifecycle.Policy.from_inventory({"inactivity_suspend_days": 60}, inactivity_suspend_days=30,
                                              max_revocations_per_run=None)
    assert policy.inactivity_suspend_days == 30
    assert policy.max_revocations_per_run == _lifecycle.Policy().max_revocations_per_run


def test_inventory_maps_reads_leave_and_restore():
    """R8.2a, R8.1: the inventory's leave_until and restore entries, by address; empty ones are ignored."""
    mailboxes = [{"address": addr("a"), "leave_until": "2026-12-31"},
                 {"address": addr("b"), "restore": {"request": "9/QĐ", "date": "2026-05-15"}},
                 {"address": addr("c"), "leave_until": None, "restore": None}]
    assert _lifecycle.inventory_maps(mailboxes) == (
        {addr("a"): "2026-12-31"}, {addr("b"): {"request": "9/QĐ", "date": "2026-05-15"}})
    assert _lifecycle.inventory_maps(None) == ({}, {})


# --- run(): the result and the notices (R7.3) -------------------------------------------------------

ORGANIZATIONS = [{"id": "skhcn", "name": "Sở Khoa học và Công nghệ", "kind": "department", "parent": None,
                  "address": f"skhcn@{DOMAIN}"}]


def desired(local_part, **fields):
    return {"address": addr(local_part), "kind": "person", "owner_id": local_part, "display_name": f"Người {local_part}",
            "organization": "skhcn", "quota_mb": 2048, "state": "active", "reason": None, "request": "1/QĐ",
            "leave_until": None, **fields}


@pytest.fixture
def database(tmp_path):
    """Created 2026-01-05; 'idle' last logged in then, the others on 2026-05-31; passwords set 2026-03-10."""
    path = str(tmp_path / "users.sqlite")
    connection = _userdb.connect(path)
    plan = _mailbox_plan.build_plan([desired(name) for name in ("idle", "gone", "pending", "wait", "busy")], {})
    _userdb.apply_plan(connection, plan, {m["address"]: "{SSHA512}x" for m in plan.added}, "2026-01-05 08:00:00")
    connection.execute("UPDATE mailbox SET must_change = 0, last_login_at = '2026-05-31 10:00:00',"
                       " password_changed_at = '2026-03-10 00:00:00'")
    connection.execute("UPDATE mailbox SET last_login_at = '2026-01-05 09:00:00' WHERE address = ?", (addr("idle"),))
    for name, since in (("gone", "2026-04-01 02:00:00"), ("pending", "2026-04-01 02:00:00"),
                        ("wait", "2026-04-20 02:00:00")):
        connection.execute("UPDATE mailbox SET state = 'suspended', suspended_by = 'lifecycle', suspended_reason = 'idle',"
                           " suspended_at = ? WHERE address = ?", (since, addr(name)))
    connection.executemany("INSERT INTO mailbox_event (at, address, action, detail) VALUES (?, ?, 'revocation_warning', '')",
                           [("2026-04-24 02:00:00", addr("gone")), ("2026-04-24 02:00:00", addr("pending")),
                            ("2026-05-31 02:00:00", addr("wait"))])
    connection.close()
    return path


@pytest.fixture
def outbox(monkeypatch):
    """What run() hands to Postfix, and where; Postfix refuses one message."""
    calls = []

    def send(messages, host, port, timeout=30):
        calls.append({"messages": list(messages), "host": host, "port": port})
        return ["refused: one"] if messages else []

    monkeypatch.setattr(_notices, "send", send)
    return calls


def run_at(database, **options):
    mailboxes = [desired("pending", state="suspended", restore={"request": "9/QĐ", "date": "2026-05-15"}),
                 desired("idle"), desired("busy"), desired("gone"), desired("wait")]
    options = {"now": "2026-06-01T02:00:00Z", "mailboxes": mailboxes, "organizations": ORGANIZATIONS,
               "department": "skhcn", **options}
    return _lifecycle.run(database, **options)


def test_run_reports_every_list_and_writes_by_default(database, outbox, tmp_path):
    """R8.1, R8.2a, R6.1b, R7.3: run() without ``check`` writes; its result has the run's time, each list,
    the restore requests it honoured, the revocations deferred, what Postfix refused (notice_errors)."""
    result = run_at(database, mail_root=str(tmp_path / "vmail"))
    assert result["now"] == NOW and result["changed"]
    assert [a["address"] for a in result["suspended"]] == [addr("idle")]
    assert result["revoked"] == [addr("gone")]
    assert result["restore_pending"] == [{"address": addr("pending"), "request": "9/QĐ", "date": "2026-05-15"}]
    assert result["deferred"] == [{"address": addr("wait"), "revoke_on": "2026-06-07"}]
    assert [(a["address"], a["days"]) for a in result["password_reminders"]] == [(addr("busy"), 7)]
    assert result["held"] == {"suspended": [], "revoked": []}
    assert result["problems"] == [] and result["mail_errors"] == []
    assert result["notice_errors"] == ["refused: one"]
    assert result["summary"]["restore_pending"] == 1 and result["summary"]["deferred"] == 1
    assert [(call["host"], call["port"]) for call in outbox] == [(_notices.SMTP_HOST, _notices.SMTP_PORT)]
    stored = rows_after(database)
    assert addr("gone") not in stored and stored[addr("idle")]["state"] == "suspended"


def rows_after(database):
    connection = _userdb.connect(database, upgrade=False)
    try:
        return _userdb.read_mailboxes(connection)
    finally:
        connection.close()


def test_run_notices_use_the_domain_sender_webmail_and_policy(database, outbox):
    """R7.3, R6.1b: the notices come from postmaster of the mail domain unless a sender is given, link the
    webmail given, name the lifecycle run, and the expiry mail names the policy's password age."""
    run_at(database)
    (call,) = outbox
    assert {message["From"].addresses[0].addr_spec for message in call["messages"]} == {f"postmaster@{DOMAIN}"}
    summary = [m for m in call["messages"] if "Tổng hợp" in str(m["Subject"])]
    assert summary and "Summary of the lifecycle run of 2026-06-01" in summary[0].get_content()
    assert f"Webmail: https://mail.{DOMAIN}" in summary[0].get_content()

    outbox.clear()
    policy = _lifecycle.Policy(password_max_age_days=60, password_reminder_days=(14, 7, 1))
    run_at(database, policy=policy, sender=f"ops@{DOMAIN}", webmail_url="https://thu.sonla.gov.vn",
           smtp_host="relay.local", smtp_port=2525)
    (call,) = outbox
    assert (call["host"], call["port"]) == ("relay.local", 2525)
    assert {message["From"].addresses[0].addr_spec for message in call["messages"]} == {f"ops@{DOMAIN}"}
    expired = [m for m in call["messages"] if m["To"].addresses[0].addr_spec == addr("busy")]
    assert expired and "quá hạn 60 ngày" in expired[0].get_content()
    assert "https://thu.sonla.gov.vn" in expired[0].get_content()


def test_run_with_notify_off_sends_nothing(database, outbox):
    """R7.3 is the default; ``notify: false`` (a rehearsal) plans and writes without any mail."""
    result = run_at(database, notify=False)
    assert result["notices"] == [] and result["notice_errors"] == []
    assert [message for call in outbox for message in call["messages"]] == []
    assert result["suspended"] and rows_after(database)[addr("idle")]["state"] == "suspended"


def test_run_passes_the_idle_cap(database, outbox):
    """R8.2a: the cap given for one run reaches the planner; what it holds is listed by address."""
    result = run_at(database, max_idle_suspensions=0, check=True)
    assert result["held"] == {"suspended": [addr("idle")], "revoked": []} and result["suspended"] == []


def test_run_reports_mail_that_could_not_be_removed(database, outbox, tmp_path, monkeypatch):
    """R7.2: a revoked mailbox whose mail cannot be deleted is named with the error; the run completes."""
    def refuse(root, address):
        raise OSError("read-only file system")

    monkeypatch.setattr(_userdb, "remove_mail", refuse)
    result = run_at(database, mail_root=str(tmp_path / "vmail"))
    assert result["mail_errors"] == [f"{addr('gone')}: read-only file system"]
    assert addr("gone") not in rows_after(database)


def test_check_mode_does_not_upgrade_an_older_database_and_a_run_does(database, outbox):
    """Check mode changes nothing, not even an older schema (``_userdb.connect``); a real run upgrades it."""
    connection = _userdb.connect(database)
    connection.execute("DELETE FROM meta WHERE key = 'schema_version'")
    connection.close()

    def version():
        connection = _userdb.connect(database, upgrade=False)
        try:
            found = connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            return found and found[0]
        finally:
            connection.close()

    run_at(database, check=True)
    assert version() is None
    run_at(database, notify=False)
    assert version() == str(_userdb.SCHEMA_VERSION)
