"""The lifecycle and notices modules: check mode, diff, operator suspension, caps, notices (R6.1b, R7.3, R8)."""

import pytest
from module_runner import run

from ansible_collections.sonla.mail.plugins.module_utils import _mailbox_plan, _notices, _userdb
from ansible_collections.sonla.mail.plugins.modules import lifecycle, notices

DAY0 = "2026-01-05 09:00:00"
DAY91 = "2026-04-06 02:00:00"
DAY114 = "2026-04-29 02:00:00"
DAY121 = "2026-05-06 02:00:00"
ORGANIZATIONS = [
    {"id": "skhcn", "name": "Sở Khoa học và Công nghệ", "kind": "department", "parent": None, "address": "skhcn@sonla.gov.vn"},
]


def mailbox(local_part, **fields):
    return {"address": f"{local_part}@sonla.gov.vn", "kind": "person", "owner_id": local_part, "display_name": "Lò Văn Hặc",
            "organization": "skhcn", "quota_mb": 2048, "state": "active", "reason": None, "request": "1/QĐ",
            "leave_until": None, **fields}


@pytest.fixture
def sent(monkeypatch):
    """Every message the modules hand to Postfix."""
    messages = []

    def send(batch, host, port, timeout=30):
        messages.extend(batch)
        return []

    monkeypatch.setattr(_notices, "send", send)
    return messages


@pytest.fixture
def database(tmp_path):
    path = str(tmp_path / "users.sqlite")
    connection = _userdb.connect(path)
    plan = _mailbox_plan.build_plan([mailbox("idle.skhcn"), mailbox("leave.skhcn"), mailbox("skhcn", kind="organization")], {})
    _userdb.apply_plan(connection, plan, {m["address"]: "{SSHA512}x" for m in plan.added}, DAY0)
    connection.execute("UPDATE mailbox SET must_change = 0, last_login_at = ?, password_changed_at = '2026-03-01 00:00:00'",
                       (DAY0,))
    connection.execute("UPDATE mailbox SET last_login_at = '2026-04-01 08:00:00' WHERE address = 'skhcn@sonla.gov.vn'")
    connection.close()
    return path


def args(database, tmp_path, **extra):
    return {"database": database, "mail_root": str(tmp_path / "vmail"), "organizations": ORGANIZATIONS,
            "department": "skhcn", "mailboxes": [mailbox("idle.skhcn"), mailbox("leave.skhcn", leave_until="2026-12-31")],
            **extra}


def rows(database):
    return _userdb.read_mailboxes(_userdb.connect(database))


def test_check_mode_previews_and_changes_nothing(database, tmp_path, sent):
    ok, result = run(lifecycle, {**args(database, tmp_path, now=DAY91), "_ansible_check_mode": True, "_ansible_diff": True})
    assert ok and result["changed"]
    assert [a["address"] for a in result["suspended"]] == ["idle.skhcn@sonla.gov.vn"]
    assert result["on_leave"][0]["address"] == "leave.skhcn@sonla.gov.vn"  # R8.2a
    assert [notice["to"] for notice in result["notices"]] == ["skhcn@sonla.gov.vn", "skhcn@sonla.gov.vn"]
    assert "state=suspended by lifecycle" in result["diff"]["after"]
    assert rows(database)["idle.skhcn@sonla.gov.vn"]["state"] == "active"
    assert sent == []


def test_check_mode_without_a_database_creates_nothing(tmp_path, sent):
    database = str(tmp_path / "none.sqlite")
    ok, result = run(lifecycle, {"database": database, "_ansible_check_mode": True})
    assert ok and not result["changed"]
    assert not (tmp_path / "none.sqlite").exists() and not (tmp_path / "none.sqlite.lifecycle.lock").exists()


def test_walk_through_suspension_warning_and_revocation(database, tmp_path, sent):
    """R8.2a on day 91, R8.1 warning on day 114, revocation with the mail on day 121 (R7.2), notices each time (R7.3)."""
    maildir = tmp_path / "vmail" / "sonla.gov.vn" / "idle.skhcn" / "Maildir"
    maildir.mkdir(parents=True)
    ok, result = run(lifecycle, args(database, tmp_path, now=DAY91))
    assert ok and result["changed"] and result["summary"]["suspended"] == 1
    assert rows(database)["idle.skhcn@sonla.gov.vn"]["state"] == "suspended"
    assert len(sent) == 2  # the agency's notice and the Department's summary (the same mailbox here)
    ok, again = run(lifecycle, args(database, tmp_path, now=DAY91))
    assert ok and not again["changed"] and again["notices"] == []

    ok, warned = run(lifecycle, args(database, tmp_path, now=DAY114))
    assert ok and warned["revocation_warnings"][0]["revoke_on"] == "2026-05-06"
    ok, revoked = run(lifecycle, args(database, tmp_path, now=DAY121))
    assert ok and revoked["revoked"] == ["idle.skhcn@sonla.gov.vn"]
    assert "idle.skhcn@sonla.gov.vn" not in rows(database)
    assert not maildir.exists()
    text = sent[-1].get_content()
    assert "Đã thu hồi" in text and "idle.skhcn@sonla.gov.vn" in text


def test_operator_suspension_with_reason(database, tmp_path, sent):
    """R8.2b: a playbook variable or a module call suspends a compromised account, reason recorded."""
    suspend = [{"address": "leave.skhcn@sonla.gov.vn", "cause": "compromised", "reason": "Lộ mật khẩu"}]
    ok, result = run(lifecycle, args(database, tmp_path, now="2026-02-01", suspend=suspend))
    assert ok and result["suspended"][0]["by"] == "operator"
    row = rows(database)["leave.skhcn@sonla.gov.vn"]
    assert (row["state"], row["suspended_by"]) == ("suspended", "operator")
    assert row["suspended_reason"].endswith(": Lộ mật khẩu")
    unknown = {"address": "x@sonla.gov.vn", "cause": "misuse", "reason": "spam"}
    ok, failed = run(lifecycle, args(database, tmp_path, suspend=[unknown]))
    assert not ok and "not in the user database" in failed["msg"]
    ok, failed = run(lifecycle, args(database, tmp_path, suspend=[{**unknown, "cause": "bored"}]))
    assert not ok and "cause" in failed["msg"]


def test_the_revocation_cap_holds_revocations_alerts_and_tells_the_department(database, tmp_path, sent):
    """R8.1, R7.2 (issue 11): a hit cap holds its own kind of action, warns, and the summary carries the alert."""
    connection = _userdb.connect(database)
    connection.execute("UPDATE mailbox SET state = 'suspended', suspended_by = 'lifecycle', suspended_reason = 'x',"
                       " suspended_at = '2026-01-06 00:00:00'")
    connection.execute("INSERT INTO mailbox_event (at, address, action, detail) SELECT '2026-01-30 00:00:00', address,"
                       " 'revocation_warning', 'revoke_on=2026-02-05' FROM mailbox")
    ok, result = run(lifecycle, args(database, tmp_path, now="2026-02-10", max_revocations=2))
    assert ok and not result["changed"] and result["revoked"] == []
    assert len(result["held"]["revoked"]) == 3 and "more than max_revocations_per_run=2" in result["alerts"][0]
    assert len(rows(database)) == 3
    (summary,) = sent  # no action, but the Department is told
    assert summary["To"].addresses[0].addr_spec == "skhcn@sonla.gov.vn" and "ALERT" in summary["Subject"]
    assert "max_revocations_per_run=2" in summary.get_content()


def test_bad_policy_and_time_are_refused(database, tmp_path):
    ok, result = run(lifecycle, args(database, tmp_path, policy={"inactivity_suspend_days": 200}))
    assert not ok and "R8.2a" in result["msg"]
    ok, result = run(lifecycle, args(database, tmp_path, now="tomorrow"))
    assert not ok


def converged(tmp_path, *mailboxes):
    """A user database after a converge of these mailboxes, whose notice is still owed (R7.3)."""
    path = str(tmp_path / "notices.sqlite")
    connection = _userdb.connect(path)
    plan = _mailbox_plan.build_plan(list(mailboxes), _userdb.read_mailboxes(connection))
    _userdb.apply_plan(connection, plan, {m["address"]: "{SSHA512}x" for m in plan.added}, DAY0)
    return path


def test_notices_module_sends_per_agency_and_previews_in_check_mode(sent, tmp_path):
    database = converged(tmp_path, mailbox("annv.skhcn", request="7/QĐ-SKHCN"))
    base = {"database": database, "organizations": ORGANIZATIONS, "department": "skhcn", "domain": "sonla.gov.vn",
            "now": "2026-12-01 08:00:00"}
    ok, preview = run(notices, {**base, "_ansible_check_mode": True})
    assert ok and preview["changed"] and preview["items"] == 1 and len(preview["notices"]) == 2 and sent == []
    ok, done = run(notices, base)
    assert ok and done["changed"] and len(sent) == 2 and done["notified"] == 1
    assert "annv.skhcn@sonla.gov.vn (Lò Văn Hặc): Đã tạo / created, 2048 MB (văn bản / request 7/QĐ-SKHCN)" in \
        sent[0].get_content()
    ok, again = run(notices, base)  # R7.3: each event is named once
    assert ok and not again["changed"] and again["notices"] == [] and len(sent) == 2


def test_notices_owed_by_a_failed_run_are_sent_by_the_next(sent, tmp_path, monkeypatch):
    """R7.3: the notice is built from the database, so Postfix refusing it (or the run dying) loses nothing."""
    database = converged(tmp_path, mailbox("annv.skhcn"))
    base = {"database": database, "organizations": ORGANIZATIONS, "department": "skhcn", "domain": "sonla.gov.vn"}
    with monkeypatch.context() as patch:
        patch.setattr(_notices, "send", lambda batch, host, port: ["SMTP 127.0.0.1:25: refused"] * len(batch))
        ok, failed = run(notices, base)
    assert not ok and failed["notified"] == 0
    ok, later = run(notices, base)
    assert ok and later["notified"] == 1 and [m["To"].addresses[0].addr_spec for m in sent] == ["skhcn@sonla.gov.vn"] * 2


def test_notices_module_on_another_server_only_marks_the_events(sent, tmp_path):
    database = converged(tmp_path, mailbox("annv.skhcn"))
    base = {"database": database, "organizations": ORGANIZATIONS, "domain": "sonla.gov.vn"}
    ok, marked = run(notices, {**base, "send": False})
    assert ok and marked["changed"] and marked["notified"] == 1 and marked["notices"] == [] and sent == []
    assert _userdb.pending_notices(_userdb.connect(database)) == []


def test_refusals_come_from_the_result_and_a_removal_keeps_its_agency(sent, tmp_path):
    database = converged(tmp_path, mailbox("annv.skhcn"))
    connection = _userdb.connect(database)
    plan = _mailbox_plan.build_plan([mailbox("annv.skhcn", state="absent", request="9/QĐ-SKHCN")],
                                    _userdb.read_mailboxes(connection))
    _userdb.apply_plan(connection, plan, {}, DAY91)
    refused = [{"address": "old.skhcn@sonla.gov.vn", "reason": "Revoked (R7.2)"}]
    ok, done = run(notices, {"database": database, "organizations": ORGANIZATIONS, "domain": "sonla.gov.vn",
                             "result": {"refused": refused}, "mailboxes": [mailbox("old.skhcn")]})
    text = sent[0].get_content()
    assert ok and done["items"] == 3 and sent[0]["To"].addresses[0].addr_spec == "skhcn@sonla.gov.vn"
    assert "annv.skhcn@sonla.gov.vn: Đã xóa / deleted (văn bản / request 9/QĐ-SKHCN)" in text  # R11.2
    assert "old.skhcn@sonla.gov.vn (Lò Văn Hặc): Lý do / reason: Revoked (R7.2)" in text


def test_a_list_member_left_out_is_named_to_the_agency_that_owns_the_list(sent, tmp_path):
    """Issue 17, R7.3: sonla.mail.directory's dropped members come from the run's result (site.yml passes them) and
    reach the notice of the list's agency, which may not be the member's."""
    dropped = [{"alias": "canbo.skhcn@sonla.gov.vn", "organization": "skhcn", "member": "old.skhcn@sonla.gov.vn",
                "reason": "revoked (R8.1)"}]
    ok, done = run(notices, {"database": converged(tmp_path, mailbox("annv.skhcn")), "organizations": ORGANIZATIONS,
                             "domain": "sonla.gov.vn", "result": {"list_member_dropped": dropped}})
    assert ok and done["items"] == 2
    [text] = [message.get_content() for message in sent if message["To"].addresses[0].addr_spec == "skhcn@sonla.gov.vn"]
    assert "old.skhcn@sonla.gov.vn" in text and "danh sách / list canbo.skhcn@sonla.gov.vn: revoked (R8.1)" in text


def test_notices_module_fails_when_nothing_was_sent(monkeypatch, tmp_path):
    monkeypatch.setattr(_notices, "send", lambda batch, host, port: ["SMTP 127.0.0.1:25: refused"] * len(batch))
    ok, result = run(notices, {"database": converged(tmp_path, mailbox("annv.skhcn")),
                               "organizations": ORGANIZATIONS, "domain": "sonla.gov.vn"})
    assert not ok and "no result notice was sent" in result["msg"]
