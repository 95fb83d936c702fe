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


def test_the_revocation_cap_holds_only_revocations_and_alerts(db):
    """R8.1, R7.2: more revocations due than the cap: none is done, an alert is raised, and the rest of the
    run (here an idle suspension and a password reminder) still happens (issue 11)."""
    db.execute("UPDATE mailbox SET state = 'suspended', suspended_by = 'lifecycle', suspended_reason = 'x', suspended_at = ?"
               " WHERE address != ?", (day(1), BUSY))
    run_at(db, 25)  # warnings
    plan = run_at(db, 85, max_revocations=1)
    assert actions(plan, "revoked") == [] and [a["address"] for a in plan.held["revoked"]] == [IDLE, LEAVE]
    assert len(plan.alerts) == 1 and "2 revocations due, more than max_revocations_per_run=1" in plan.alerts[0]
    assert actions(plan, "password_reminder") == [BUSY]  # the rest of the run goes ahead
    assert len(_userdb.read_mailboxes(db)) == 3
    assert plan.summary()["held"] == 2 and plan.summary()["alerts"] == 1
    assert actions(plan_at(db, 85, max_revocations=2), "revoked") == [IDLE, LEAVE]
    assert actions(plan_at(db, 85), "revoked") == [IDLE, LEAVE]  # the policy's cap: 10 (_regulation)


def test_a_hit_revocation_cap_does_not_stop_the_idle_suspensions_of_the_same_run(db):
    """R8.1, R8.2a (issue 18): both kinds are due on one day and only revocations are capped: the
    revocations are held with an alert, the idle suspension is done in the same run."""
    db.execute("UPDATE mailbox SET state = 'suspended', suspended_by = 'operator', suspended_reason = 'x',"
               " suspended_at = ? WHERE address != ?", (day(1), BUSY))
    run_at(db, 25)  # warnings
    plan = run_at(db, 91, max_revocations=1)  # BUSY: last login on day 0, idle on day 91
    assert [a["address"] for a in plan.held["revoked"]] == [IDLE, LEAVE] and actions(plan, "revoked") == []
    assert actions(plan, "suspended") == [BUSY] and "suspended" not in plan.held
    assert len(plan.alerts) == 1 and "max_revocations_per_run=1" in plan.alerts[0]
    assert _userdb.read_mailboxes(db)[BUSY]["state"] == "suspended"


def test_both_caps_hit_hold_both_kinds_with_one_alert_each(db):
    """R8.1, R8.2a: a run where both caps are exceeded does neither kind and raises two alerts."""
    db.execute("UPDATE mailbox SET state = 'suspended', suspended_by = 'lifecycle', suspended_reason = 'x',"
               " suspended_at = ? WHERE address = ?", (day(1), IDLE))
    run_at(db, 25)
    plan = plan_at(db, 91, leave={}, max_revocations=0, max_idle_suspensions=1)
    assert actions(plan, "revoked") == [] and actions(plan, "suspended") == []
    assert sorted(plan.held) == ["revoked", "suspended"] and len(plan.held["suspended"]) == 2
    assert [alert.split(" due,")[0] for alert in plan.alerts] == ["1 revocations", "2 idle suspensions (R8.2a)"]


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
    # Changed on day 0 at 09:00: the password expires on day 90 at 09:00 (_regulation.password_expires_at).
    assert {(a["address"], a["days"], a["days_left"]) for a in plan.of("password_reminder")} >= {(IDLE, 7, 2)}
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


ORGANIZATIONS = [{"id": "skhcn", "name": "Sở Khoa học và Công nghệ", "kind": "department", "address": "skhcn@sonla.gov.vn"},
                 {"id": "chiengmung", "name": "Xã Chiềng Mung", "kind": "commune", "address": "chiengmung@sonla.gov.vn"}]


def test_an_automatic_suspension_is_an_operator_suspension_by_the_system_with_notices(db, monkeypatch):
    """R8.2b: the sending limits suspend as compromised with the same reason, event and agency notice as an
    operator; the Department's summary carries an alert; a restore request lifts it with a new password (R8.3c)."""
    db.execute("UPDATE mailbox SET organization = 'chiengmung' WHERE address = ?", (BUSY,))
    sent = []
    monkeypatch.setattr(_lifecycle._notices, "send", lambda messages, host, port: sent.extend(messages) or [])
    database = db.execute("PRAGMA database_list").fetchone()[2]
    result = _lifecycle.suspend_automatically(database, BUSY, "compromised", "tự động: 3 lần", organizations=ORGANIZATIONS,
                                              department="skhcn", domain="sonla.gov.vn", now=day(5))
    row = _userdb.read_mailboxes(db)[BUSY]
    assert (row["state"], row["suspended_by"], row["suspended_at"]) == ("suspended", "lifecycle", day(5))
    assert row["suspended_reason"] == "Tài khoản bị xâm nhập (R8.2b) / Account compromised: tự động: 3 lần"
    event = db.execute("SELECT action, request_ref, detail FROM mailbox_event ORDER BY id DESC LIMIT 1").fetchone()
    assert tuple(event) == ("suspended", "1/QĐ", f"by=lifecycle; cause=compromised; {row['suspended_reason']}")
    assert [m["To"].addresses[0].addr_spec for m in sent] == ["chiengmung@sonla.gov.vn", "skhcn@sonla.gov.vn"]
    assert "Account compromised" in sent[0].get_content()
    assert "ALERT" in str(sent[1]["Subject"]) and "suspended automatically as compromised" in sent[1].get_content()
    assert result["notice_errors"] == [] and len(result["notices"]) == 2
    # Only an active account: a second call (a second process of the service) does nothing.
    assert _lifecycle.suspend_automatically(database, BUSY, "compromised", "x", organizations=ORGANIZATIONS,
                                            department="skhcn", domain="sonla.gov.vn") is None
    # Lifted only by the inventory's restore, which forces a password change (R8.3a, R8.3c).
    restore = {"request": "45/QĐ-UBND", "date": str(DAY0 + timedelta(days=5))}
    plan = _mailbox_plan.build_plan([mailbox("idle.skhcn"), mailbox("busy.skhcn", organization="chiengmung"),
                                     mailbox("leave.skhcn")], _userdb.read_mailboxes(db))
    assert plan.restored == []
    plan = _mailbox_plan.build_plan([mailbox("idle.skhcn"), mailbox("busy.skhcn", organization="chiengmung", restore=restore),
                                     mailbox("leave.skhcn")], _userdb.read_mailboxes(db))
    assert plan.restored == [{"address": BUSY, "request": "45/QĐ-UBND", "requested": restore["date"]}]
    _userdb.apply_plan(db, plan, {}, day(6))
    row = _userdb.read_mailboxes(db)[BUSY]
    assert (row["state"], row["must_change"]) == ("active", 1)


@pytest.mark.parametrize(("request_", "message"), [
    ({"address": "ghost@sonla.gov.vn", "cause": "misuse", "reason": "x"}, "not in the user database"),
    ({"address": IDLE, "cause": "boredom", "reason": "x"}, "cause must be one of compromised, misuse"),
    ({"address": IDLE, "cause": "misuse", "reason": " "}, "a reason is required"),
])
def test_bad_operator_suspensions_fail_before_anything(db, request_, message):
    with pytest.raises(_lifecycle.LifecycleError, match=message):
        plan_at(db, 91, suspend=[request_])


def test_policy_refuses_values_against_the_regulation():
    with pytest.raises(ValueError, match="'inactivity_suspend_days' must be 1-90"):
        _lifecycle.Policy(inactivity_suspend_days=120)
    with pytest.raises(ValueError, match="'revoke_after_suspended_days' must be 30-3650"):
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


def test_the_idle_cap_holds_idle_suspensions_only_and_alerts(db):
    """R8.2a (issue 11): a broken last-login hook makes everyone idle on day 91. Past the cap no idle
    suspension is done, an alert says so, and operator suspensions and reminders still happen."""
    login(db, LEAVE, 85)  # the only one with a recent login: gets its password reminder
    suspend = [{"address": BUSY, "cause": "compromised", "reason": "Lộ mật khẩu"}]
    plan = run_at(db, 91, leave={}, suspend=suspend, max_idle_suspensions=0)
    assert [a["address"] for a in plan.held["suspended"]] == [IDLE]
    assert "1 idle suspensions (R8.2a) due, more than max_idle_suspensions_per_run=0" in plan.alerts[0]
    assert "--max-idle-suspensions" in plan.alerts[0]
    assert [(a["address"], a["by"]) for a in plan.of("suspended")] == [(BUSY, "operator")]  # not capped
    assert actions(plan, "password_expired") == [LEAVE]  # the rest of the run goes ahead
    assert _userdb.read_mailboxes(db)[IDLE]["state"] == "active"
    assert actions(plan_at(db, 91, leave={}, max_idle_suspensions=1), "suspended") == [IDLE]


def test_the_idle_cap_comes_from_the_policy(db):
    db.execute("UPDATE mailbox SET last_login_at = NULL")
    policy = _lifecycle.Policy.from_inventory({"max_idle_suspensions_per_run": 2})
    plan = plan_at(db, 91, leave={}, policy=policy)
    assert actions(plan, "suspended") == [] and len(plan.held["suspended"]) == 3 and plan.alerts
    assert actions(plan_at(db, 91, leave={}, policy=_lifecycle.Policy()), "suspended") == [BUSY, IDLE, LEAVE]


@pytest.mark.parametrize("bad", ["2027-02-30", "2027-13-01", "0000-01-01", "soon"])
def test_an_impossible_leave_date_is_reported_and_that_entry_alone_is_kept(db, bad):
    """Issue 10 item 5: one unreadable leave_until never stops the run for every account. That entry is
    reported with an alert and not suspended (the safe side); the others are planned as usual."""
    plan = plan_at(db, 91, leave={LEAVE: bad})
    assert plan.problems == [{"address": LEAVE, "field": "leave_until", "value": bad,
                              "message": "not a valid date YYYY-MM-DD; idle suspension held until it is fixed"}]
    assert actions(plan, "suspended") == [BUSY, IDLE]
    assert any(LEAVE in alert and bad in alert for alert in plan.alerts)


def _suspended_and_warned(db):
    login(db, BUSY, 100)
    login(db, LEAVE, 100)
    run_at(db, 91)
    run_at(db, 114)


@pytest.mark.parametrize(("restore", "revoked"), [
    ({"request": "45/QĐ", "date": str(DAY0 + timedelta(days=95))}, []),  # dated after the suspension, before today
    ({"request": "45/QĐ", "date": "2099-01-01"}, [IDLE]),  # dated in the future: not yet a request
    ({"request": "45/QĐ", "date": str(DAY0 + timedelta(days=90))}, [IDLE]),  # older than the suspension
])
def test_a_restore_counts_only_dated_between_the_suspension_and_today(db, restore, revoked):
    """R8.1, R8.3a, issue 10 item 5: a restore dated no later than today, on or after the suspension."""
    _suspended_and_warned(db)
    assert actions(plan_at(db, 121, restores={IDLE: restore}), "revoked") == revoked


def test_a_restore_applies_once(db):
    """Issue 10 item 5: a restore already used does not shield a later suspension from revocation."""
    _suspended_and_warned(db)
    restore = {"request": "45/QĐ", "date": str(DAY0 + timedelta(days=91))}
    assert actions(plan_at(db, 121, restores={IDLE: restore}), "revoked") == []
    db.execute("INSERT INTO mailbox_event (at, address, action, request_ref) VALUES (?, ?, 'restored', '45/QĐ')",
               (day(91, "12:00:00"), IDLE))
    assert actions(plan_at(db, 121, restores={IDLE: restore}), "revoked") == [IDLE]


def test_an_unreadable_restore_date_holds_that_revocation_only(db):
    _suspended_and_warned(db)
    plan = plan_at(db, 121, restores={IDLE: {"request": "45/QĐ", "date": "2027-02-30"}})
    assert actions(plan, "revoked") == [] and plan.problems[0]["field"] == "restore.date" and plan.alerts


def test_every_event_carries_its_request_reference(db):
    """R11.2, R7.1c: the operator's reference for an operator suspension, else the account's request."""
    db.execute("UPDATE mailbox SET request_ref = '7/QĐ-SKHCN' WHERE address = ?", (IDLE,))
    login(db, LEAVE, 85)
    suspend = [{"address": BUSY, "cause": "compromised", "reason": "Lộ mật khẩu", "request": "12/CATP"}]
    run_at(db, 91, leave={}, suspend=suspend)
    run_at(db, 114, leave={})
    run_at(db, 121, leave={})
    events = db.execute("SELECT address, action, request_ref FROM mailbox_event WHERE action != 'added'").fetchall()
    assert {tuple(event) for event in events} >= {
        (BUSY, "suspended", "12/CATP"), (IDLE, "suspended", "7/QĐ-SKHCN"), (IDLE, "revocation_warning", "7/QĐ-SKHCN"),
        (IDLE, "revoked", "7/QĐ-SKHCN"), (LEAVE, "password_expired", "1/QĐ")}
    assert [event for event in events if event[2] is None] == []


def test_expiry_is_the_regulations_moment(db):
    """R6.1b: the lifecycle reports the moment _regulation.password_expires_at defines, to the second."""
    db.execute("UPDATE mailbox SET password_changed_at = ? WHERE address = ?", (day(0, "23:30:00"), IDLE))
    for address in (IDLE, BUSY, LEAVE):
        login(db, address, 85)
    (reminder,) = [a for a in plan_at(db, 77).of("password_reminder") if a["address"] == IDLE]
    assert reminder["expires_at"] == day(90, "23:30:00") and reminder["days_left"] == 13
    rows, history = _userdb.read_mailboxes(db), _lifecycle.read_history(db)
    before = _lifecycle.build_plan(rows, day(90, "23:29:59"), history=history)
    at = _lifecycle.build_plan(rows, day(90, "23:30:00"), history=history)
    assert IDLE not in actions(before, "password_expired") and IDLE in actions(at, "password_expired")


def test_policy_uses_the_regulation_cross_field_check():
    """Issue 11: max_age_days 30 with a reminder at 45 days is refused; so is a warning not before revocation."""
    with pytest.raises(ValueError, match="password_reminder_days"):
        _lifecycle.Policy.from_inventory({"password": {"max_age_days": 30}, "password_reminder_days": [45]})
    with pytest.raises(ValueError, match="revoke_warning_days"):
        _lifecycle.Policy(revoke_after_suspended_days=30, revoke_warning_days=29 + 1)
    with pytest.raises(ValueError, match="password_reminder_days"):
        _lifecycle.Policy.from_inventory({"password_reminder_days": [7, 7]})
