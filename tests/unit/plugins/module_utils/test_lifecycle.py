"""The lifecycle planner and writer walked through the regulation's days (R6.1b, R7.2, R8.1, R8.2a-c, R8.3)."""

from datetime import date, timedelta

import pytest

from ansible_collections.sonla.mail.plugins.module_utils import _lifecycle, _mailbox_plan, _userdb

DAY0 = date(2026, 1, 5)
IDLE = "idle.skhcn@sonla.gov.vn"
BUSY = "busy.skhcn@sonla.gov.vn"
LEAVE = "leave.skhcn@sonla.gov.vn"


def day(number, clock="02:00:00"):
    return f"{DAY0 + timedelta(days=number)} {clock}"


def mailbox(local_part, **fields):
    return {"address": f"{local_part}@sonla.gov.vn", "kind": "person", "owner_id": local_part,
            "display_name": f"Người {local_part}", "organization": "skhcn", "quota_mb": 2048, "state": "active",
            "reason": None, "request": "1/QĐ", "leave_until": None, **fields}


@pytest.fixture
def db(tmp_path):
    """Three accounts created on day 0, passwords set and logged in on day 0 at 09:00."""
    connection = _userdb.connect(str(tmp_path / "users.sqlite"))
    plan = _mailbox_plan.build_plan([mailbox("idle.skhcn"), mailbox("busy.skhcn"), mailbox("leave.skhcn")], {})
    _userdb.apply_plan(connection, plan, {m["address"]: "{SSHA512}x" for m in plan.added}, day(0, "08:00:00"))
    connection.execute("UPDATE mailbox SET must_change = 0, last_login_at = ?, password_changed_at = ?",
                       (day(0, "09:00:00"), day(0, "09:00:00")))
    yield connection
    connection.close()


def plan_at(connection, number, **options):
    options.setdefault("leave", {LEAVE: str(DAY0 + timedelta(days=200))})
    return _lifecycle.build_plan(_userdb.read_mailboxes(connection), day(number),
                                 history=_lifecycle.read_history(connection), **options)


def run_at(connection, number, **options):
    plan = plan_at(connection, number, **options)
    _lifecycle.apply_plan(connection, plan)
    return plan


def login(connection, address, number):
    connection.execute("UPDATE mailbox SET last_login_at = ? WHERE address = ?", (day(number, "10:00:00"), address))


def actions(plan, kind):
    return [action["address"] for action in plan.of(kind)]


def test_idle_suspension_on_day_91_not_before_and_not_on_leave(db):
    """R8.2a: suspended after more than 90 days without login, unless a notified leave covers it."""
    login(db, BUSY, 60)
    assert actions(plan_at(db, 90), "suspended") == []
    plan = run_at(db, 91)
    assert actions(plan, "suspended") == [IDLE]
    assert plan.on_leave == [{"address": LEAVE, "leave_until": str(DAY0 + timedelta(days=200)), "idle_days": 91}]
    (action,) = plan.of("suspended")
    assert (action["by"], action["cause"], action["last_login_at"]) == ("lifecycle", "inactive", day(0, "09:00:00"))
    row = _userdb.read_mailboxes(db)[IDLE]
    assert (row["state"], row["suspended_by"], row["suspended_at"]) == ("suspended", "lifecycle", day(91))
    assert "R8.2a" in row["suspended_reason"]  # Dovecot shows this reason at login (R8.1)
    assert not plan_at(db, 91).changed  # a second run the same day does nothing


def test_the_inactivity_clock_restarts_when_a_leave_ends(db):
    """R8.2a: the notified absence counts as a reason until its end date; 90 idle days count from then."""
    leave = {LEAVE: str(DAY0 + timedelta(days=100))}
    login(db, IDLE, 150)
    login(db, BUSY, 150)
    assert actions(plan_at(db, 190, leave=leave), "suspended") == []
    assert actions(plan_at(db, 191, leave=leave), "suspended") == [LEAVE]


def test_a_never_used_account_counts_from_its_creation_and_a_restore_restarts_the_clock(db):
    db.execute("UPDATE mailbox SET last_login_at = NULL")
    assert actions(plan_at(db, 91, leave={}), "suspended") == [BUSY, IDLE, LEAVE]
    db.execute("INSERT INTO mailbox_event (at, address, action) VALUES (?, ?, 'restored')", (day(80), IDLE))
    assert IDLE not in actions(plan_at(db, 91, leave={}), "suspended")


def test_revocation_on_day_121_after_a_warning_and_final(db, tmp_path):
    """R8.1, R7.2: warned 7 days before, revoked 30 days after the suspension, mail deleted."""
    login(db, BUSY, 100)
    run_at(db, 91)
    assert not plan_at(db, 113).changed
    warned = run_at(db, 114)
    assert actions(warned, "revocation_warning") == [IDLE]
    assert warned.of("revocation_warning")[0]["revoke_on"] == str(DAY0 + timedelta(days=121))
    assert not plan_at(db, 120).changed and plan_at(db, 120).deferred == [
        {"address": IDLE, "revoke_on": str(DAY0 + timedelta(days=121))}]
    maildir = tmp_path / "vmail" / "sonla.gov.vn" / "idle.skhcn" / "Maildir" / "cur"
    maildir.mkdir(parents=True)
    (maildir / "1.eml").write_text("x")
    revoked = run_at(db, 121)
    assert actions(revoked, "revoked") == [IDLE]
    assert _userdb.remove_mail(str(tmp_path / "vmail"), IDLE)
    assert not (tmp_path / "vmail" / "sonla.gov.vn" / "idle.skhcn").exists()
    assert IDLE not in _userdb.read_mailboxes(db)
    assert list(_lifecycle.read_revoked(db)) == [IDLE]
    # A converge never creates it again (R7.2), and says why.
    again = _mailbox_plan.build_plan([mailbox("idle.skhcn"), mailbox("busy.skhcn")], _userdb.read_mailboxes(db),
                                     revoked=_lifecycle.read_revoked(db))
    assert again.added == [] and [item["address"] for item in again.refused] == [IDLE]


def test_a_late_first_run_warns_before_it_revokes(db):
    """R8.1: the agency is always warned revoke_warning_days before; a missed warning postpones the revocation."""
    login(db, BUSY, 100)
    run_at(db, 91)
    plan = run_at(db, 125)
    assert actions(plan, "revoked") == [] and actions(plan, "revocation_warning") == [IDLE]
    assert plan.of("revocation_warning")[0]["revoke_on"] == str(DAY0 + timedelta(days=132))
    assert actions(plan_at(db, 131), "revoked") == [] and actions(plan_at(db, 132), "revoked") == [IDLE]


def test_a_restore_request_newer_than_the_suspension_stops_the_revocation(db):
    """R8.1: only 'with no restore request'; R8.3a: an older request does not count."""
    login(db, BUSY, 100)
    run_at(db, 91)
    run_at(db, 114)
    old = {IDLE: {"request": "3/QĐ", "date": str(DAY0 + timedelta(days=10))}}
    assert actions(plan_at(db, 121, restores=old), "revoked") == [IDLE]
    new = {IDLE: {"request": "45/QĐ-SKHCN", "date": str(DAY0 + timedelta(days=95))}}
    plan = plan_at(db, 121, restores=new)
    assert actions(plan, "revoked") == []
    assert plan.restore_pending == [{"address": IDLE, "request": "45/QĐ-SKHCN", "date": str(DAY0 + timedelta(days=95))}]


def test_inventory_suspensions_are_not_revoked(db):
    """The agency's own suspension (state: suspended, R7.1a) is deleted only by its own state: absent."""
    db.execute("UPDATE mailbox SET state = 'suspended', suspended_by = 'inventory', suspended_reason = 'Nghỉ thai sản',"
               " suspended_at = ?", (day(1),))
    assert not plan_at(db, 400).changed


def test_the_revocation_cap_fails_before_anything_is_written(db):
    db.execute("UPDATE mailbox SET state = 'suspended', suspended_by = 'lifecycle', suspended_reason = 'x', suspended_at = ?",
               (day(1),))
    run_at(db, 25)  # warnings
    with pytest.raises(_lifecycle.LifecycleError, match="3 mailboxes are due for revocation, more than max_revocations=2"):
        plan_at(db, 40, max_revocations=2)
    assert len(_userdb.read_mailboxes(db)) == 3
    assert actions(plan_at(db, 40, max_revocations=3), "revoked") == [BUSY, IDLE, LEAVE]


def test_password_reminders_14_7_1_days_before_and_expiry_on_day_91(db):
    """R6.1b: reminders before expiry, once each; the expiry on day 91 reported once."""
    for address in (IDLE, LEAVE):
        login(db, address, 85)
    db.execute("UPDATE mailbox SET password_changed_at = ? WHERE address = ?", (day(80), BUSY))
    sent = {}
    for number in range(60, 93):
        plan = run_at(db, number)
        for action in plan.of("password_reminder"):
            sent.setdefault(action["address"], []).append((number, action["days"]))
        for action in plan.of("password_expired"):
            sent.setdefault(action["address"], []).append((number, "expired"))
    assert sent[IDLE] == [(77, 14), (84, 7), (90, 1), (91, "expired")]
    assert BUSY not in sent  # changed on day 80: nothing due yet
    (expired,) = [a for a in plan_at(db, 91).of("password_expired")] or [None]
    assert expired is None  # not twice


def test_a_missed_day_sends_only_the_most_urgent_reminder(db):
    for address in (IDLE, LEAVE, BUSY):
        login(db, address, 85)
    plan = run_at(db, 88)
    assert {(a["address"], a["days"], a["days_left"]) for a in plan.of("password_reminder")} >= {(IDLE, 7, 3)}
    assert actions(plan_at(db, 89), "password_reminder") == []
    assert actions(plan_at(db, 90), "password_reminder") == [BUSY, IDLE, LEAVE]


def test_a_new_password_restarts_the_reminders(db):
    login(db, IDLE, 85)
    run_at(db, 77)
    db.execute("UPDATE mailbox SET password_changed_at = ? WHERE address = ?", (day(78), IDLE))
    assert IDLE not in actions(plan_at(db, 80), "password_reminder")
    assert IDLE in actions(plan_at(db, 78 + 77), "password_reminder")


def test_must_change_accounts_get_no_reminders(db):
    db.execute("UPDATE mailbox SET must_change = 1")
    for address in (IDLE, BUSY, LEAVE):
        login(db, address, 85)
    assert not plan_at(db, 91).changed


def test_operator_suspension_records_cause_and_reason(db):
    """R8.2b, R8.2c: suspension for compromise or misuse, the reason recorded; a re-run does nothing."""
    suspend = [{"address": "BUSY.skhcn@sonla.gov.vn", "cause": "compromised", "reason": "Lộ mật khẩu, gửi thư rác"}]
    plan = run_at(db, 5, suspend=suspend)
    (action,) = plan.actions
    assert (action["action"], action["by"], action["cause"]) == ("suspended", "operator", "compromised")
    row = _userdb.read_mailboxes(db)[BUSY]
    assert (row["state"], row["suspended_by"]) == ("suspended", "operator")
    assert row["suspended_reason"] == "Tài khoản bị xâm nhập (R8.2b) / Account compromised: Lộ mật khẩu, gửi thư rác"
    assert not plan_at(db, 6, suspend=suspend).changed
    event = db.execute("SELECT action, detail FROM mailbox_event ORDER BY id DESC LIMIT 1").fetchone()
    assert event[0] == "suspended" and "cause=compromised" in event[1]


def test_an_operator_suspension_of_a_suspended_account_keeps_the_revocation_clock(db):
    run_at(db, 91)
    plan = run_at(db, 100, suspend=[{"address": IDLE, "cause": "misuse", "reason": "Phát tán nội dung cấm"}])
    assert plan.of("suspended")[0]["since"] == day(91)
    row = _userdb.read_mailboxes(db)[IDLE]
    assert (row["suspended_by"], row["suspended_at"]) == ("operator", day(91))
    assert "R8.2c" in row["suspended_reason"]


@pytest.mark.parametrize(("request_", "message"), [
    ({"address": "ghost@sonla.gov.vn", "cause": "misuse", "reason": "x"}, "not in the user database"),
    ({"address": IDLE, "cause": "boredom", "reason": "x"}, "cause must be one of compromised, misuse"),
    ({"address": IDLE, "cause": "misuse", "reason": " "}, "a reason is required"),
])
def test_bad_operator_suspensions_fail_before_anything(db, request_, message):
    with pytest.raises(_lifecycle.LifecycleError, match=message):
        plan_at(db, 91, suspend=[request_])


def test_policy_refuses_values_against_the_regulation():
    with pytest.raises(ValueError, match="inactivity_suspend_days must be 1-90"):
        _lifecycle.Policy(inactivity_suspend_days=120)
    with pytest.raises(ValueError, match="revoke_after_suspended_days must be at least 30"):
        _lifecycle.Policy(revoke_after_suspended_days=10)
    with pytest.raises(ValueError, match="password_reminder_days"):
        _lifecycle.Policy(password_reminder_days=(0,))
    policy = _lifecycle.Policy.from_inventory({"inactivity_suspend_days": 60, "password": {"max_age_days": 45},
                                               "password_reminder_days": [1, 7], "default_quota_mb": 1})
    assert (policy.inactivity_suspend_days, policy.password_max_age_days, policy.password_reminder_days) == (60, 45, (7, 1))


def test_diff_and_summary(db):
    login(db, BUSY, 85)
    plan = plan_at(db, 91)
    assert plan.summary()["suspended"] == 1 and plan.summary()["on_leave"] == 1
    diff = _lifecycle.diff_text(plan)
    assert f"{IDLE}: state=active" in diff["before"] and f"{IDLE}: state=suspended by lifecycle" in diff["after"]


def test_a_failed_write_leaves_the_database_as_it_was(db, monkeypatch):
    plan = plan_at(db, 91)
    bad = dict(plan.actions[0], action="suspended", by="nobody")  # violates the suspended_by CHECK
    plan.actions.append(bad)
    with pytest.raises(Exception, match="CHECK"):
        _lifecycle.apply_plan(db, plan)
    assert _userdb.read_mailboxes(db)[IDLE]["state"] == "active"


def test_remove_mail_refuses_paths_outside_the_root(tmp_path):
    with pytest.raises(ValueError, match="outside"):
        _userdb.remove_mail(str(tmp_path), "../../etc@sonla.gov.vn")
    assert not _userdb.remove_mail(str(tmp_path), "nobody@sonla.gov.vn")
