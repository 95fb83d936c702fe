"""The periodic report (R11.3): periods, working days (R8.3b), log counts, the state snapshot, the tables."""

import csv
import io
from datetime import date

import pytest

from ansible_collections.sonla.mail.plugins.module_utils import _mailbox_plan, _report, _userdb

ORGANIZATIONS = [
    {"id": "skhcn", "name": "Sở Khoa học và Công nghệ", "kind": "department", "parent": None},
    {"id": "vp-skhcn", "name": "Văn phòng Sở", "kind": "subunit", "parent": "skhcn"},
    {"id": "chiengmung", "name": "Xã Chiềng Mung", "kind": "commune", "parent": None},
]
NOVEMBER = _report.parse_period("2026-11")


@pytest.mark.parametrize(("text", "start", "end", "title"), [
    ("2026-11", "2026-11-01", "2026-12-01", "Tháng 11/2026"),
    ("2026-12", "2026-12-01", "2027-01-01", "Tháng 12/2026"),
    ("2026-Q4", "2026-10-01", "2027-01-01", "Quý 4/2026"),
    ("2027-Q1", "2027-01-01", "2027-04-01", "Quý 1/2027"),
])
def test_periods(text, start, end, title):
    period = _report.parse_period(text)
    assert (period.start.isoformat(), period.end.isoformat(), period.title) == (start, end, title)


@pytest.mark.parametrize("text", ["2026-13", "2026-Q5", "26-11", "", None, "2026-11-01"])
def test_a_bad_period_is_refused(text):
    with pytest.raises(_report.ReportError, match="YYYY-MM or YYYY-Qn"):
        _report.parse_period(text)


@pytest.mark.parametrize(("kind", "today", "period"), [
    ("month", date(2027, 1, 3), "2026-12"), ("month", date(2026, 11, 30), "2026-10"),
    ("quarter", date(2027, 1, 3), "2026-Q4"), ("quarter", date(2026, 8, 1), "2026-Q2"),
])
def test_the_default_period_is_the_last_finished_one(kind, today, period):
    assert _report.previous_period(kind, today) == period


@pytest.mark.parametrize(("requested", "done", "days"), [
    ("2026-11-02", "2026-11-02", 0),  # Monday, same day
    ("2026-11-02", "2026-11-05", 3),  # Monday -> Thursday: on time (R8.3b)
    ("2026-11-02", "2026-11-06", 4),  # -> Friday: late
    ("2026-11-06", "2026-11-11", 3),  # Friday -> Wednesday: the weekend does not count
    ("2026-11-07", "2026-11-09", 1),  # Saturday -> Monday
])
def test_working_days_from_request_to_restore(requested, done, days):
    assert _report.working_days(date.fromisoformat(requested), date.fromisoformat(done)) == days


def test_suspension_causes():
    assert _report.suspension_cause("by=lifecycle; cause=inactive; Không đăng nhập quá 90 ngày") == "inactive"
    assert _report.suspension_cause("by=operator; cause=compromised; Tài khoản bị xâm nhập") == "compromised"
    assert _report.suspension_cause("Nghỉ thai sản; cause=misuse") == "request"  # the agency's own reason text
    assert _report.suspension_cause(None) == "request"


LMTP = "relay=mail.sonla.gov.vn[private/dovecot-lmtp], delay=0.1, status=sent (250 2.0.0 Saved)"
REJECT = "milter-reject: END-OF-MESSAGE from unknown[203.0.113.9]: 5.7.1"
LOG = "\n".join([
    ("Nov  2 08:00:01 mail postfix/submission/smtpd[101]: 4AB1: client=unknown[10.0.0.5], sasl_method=PLAIN,"
     " sasl_username=annv.skhcn@sonla.gov.vn"),
    "Nov  2 08:00:02 mail postfix/qmgr[99]: 4AB1: from=<annv.skhcn@sonla.gov.vn>, size=900, nrcpt=2 (queue active)",
    f"Nov  2 08:00:03 mail postfix/lmtp[102]: 4AB1: to=<suma.chiengmung@sonla.gov.vn>, {LMTP}",
    f"Nov  2 08:00:03 mail postfix/lmtp[102]: 4AB1: to=<haclv.skhcn@sonla.gov.vn>, {LMTP}",
    "Nov  2 08:00:04 mail postfix/smtp[103]: 4AB1: to=<x@example.org>, relay=example.org[1.2.3.4]:25, status=sent (250 ok)",
    ("2026-11-03T09:00:00.123456+07:00 mail postfix/lmtp[102]: 5CD2: to=<suma.chiengmung@sonla.gov.vn>, relay=x,"
     " status=deferred (timeout)"),
    f"2026-11-03T09:00:00.123456+07:00 mail postfix/lmtp[102]: 5CD3: to=<suma.chiengmung@sonla.gov.vn>, {LMTP}",
    (f"Nov  4 10:00:00 mail postfix/cleanup[104]: 6EF3: {REJECT} Thu bi tu choi vi la thu rac / Message refused as spam;"
     " from=<s@spam.example> to=<annv.skhcn@sonla.gov.vn> proto=ESMTP helo=<x>"),
    (f"Nov  4 10:00:01 mail postfix/cleanup[104]: 6EF4: {REJECT} Thu co ma doc / Message refused, malware found:"
     " Sonla.Test.EICAR; from=<s@spam.example> to=<suma.chiengmung@sonla.gov.vn> proto=ESMTP helo=<x>"),
    (f"Nov  4 10:00:02 mail postfix/cleanup[104]: 6EF5: {REJECT} DMARC policy; from=<news@spam-malware.example>"
     " to=<annv.skhcn@sonla.gov.vn> proto=ESMTP helo=<x>"),
    f"Oct 31 23:59:59 mail postfix/lmtp[102]: 0001: to=<annv.skhcn@sonla.gov.vn>, {LMTP}",
    f"Dec  1 00:00:00 mail postfix/lmtp[102]: 0002: to=<annv.skhcn@sonla.gov.vn>, {LMTP}",
    ("Nov  5 10:00:00 mail postfix/submission/smtpd[105]: 7AA1: client=unknown[10.0.0.6], sasl_method=LOGIN,"
     " sasl_username=ANNV.skhcn@sonla.gov.vn"),
    ("Nov  5 10:00:00 mail postfix/submission/smtpd[105]: 7AA1: client=unknown[10.0.0.6], sasl_method=LOGIN,"
     " sasl_username=annv.skhcn@sonla.gov.vn"),
    "garbage line",
])


def test_mail_counts_from_the_postfix_log():
    counts = _report.count_mail(LOG.splitlines(), NOVEMBER)
    assert counts.sent == {"annv.skhcn@sonla.gov.vn": 2}  # one per queue id, not per log line
    # Delivered over LMTP only, inside the period; a deferral and a remote delivery are not "received".
    assert counts.received == {"suma.chiengmung@sonla.gov.vn": 2, "haclv.skhcn@sonla.gov.vn": 1}
    assert counts.spam == {"annv.skhcn@sonla.gov.vn": 1}  # the DMARC refusal is neither spam nor malware
    assert counts.malware == {"suma.chiengmung@sonla.gov.vn": 1}


def test_a_december_period_reads_january_lines_of_the_next_year_as_outside():
    december = _report.parse_period("2026-Q4")
    assert _report.log_day("Jan  2 00:00:00 mail x", december) == "2027-01-02"
    assert _report.log_day("Dec 31 23:59:59 mail x", december) == "2026-12-31"


def test_backup_age_from_the_lifecycle_log():
    lines = [
        '{"now": "2026-10-31 02:00:00", "backup": {"ok": true, "age_hours": 1.0, "last_good_at": "2026-10-31 01:00:00"}}',
        '{"now": "2026-11-01 02:00:00", "backup": {"ok": true, "age_hours": 2.0, "last_good_at": "2026-11-01 00:00:00"}}',
        '{"now": "2026-11-02 02:00:00", "backup": {"ok": false, "age_hours": 26.0, "last_good_at": "2026-11-01 00:00:00"}}',
        '{"now": "2026-11-03 02:00:00", "failed": true}', "not json",
        '{"now": "2026-11-30 02:00:00", "backup": {"ok": true, "age_hours": 1.5, "last_good_at": "2026-11-30 00:30:00"}}',
    ]
    backup = _report.backup_in_period(lines, NOVEMBER)
    assert backup == {"checked": 3, "last_checked_at": "2026-11-30 02:00:00", "last_good_at": "2026-11-30 00:30:00",
                      "age_hours": 1.5, "max_age_hours": 26.0, "failed_checks": 1}
    assert _report.backup_in_period([], NOVEMBER) == {"checked": 0}


def row(local_part, organization="skhcn", **fields):
    return {"address": f"{local_part}@sonla.gov.vn", "organization": organization, "quota_mb": 100, "state": "active",
            "created_at": "2026-01-01 00:00:00", "last_login_at": "2026-11-29 08:00:00", "suspended_at": None,
            "suspended_by": None, "suspended_reason": None, **fields}


def test_state_at_the_end_of_the_period():
    mailboxes = [
        row("busy"), row("idle", last_login_at="2026-10-01 08:00:00"), row("never", last_login_at=None),
        row("later", last_login_at="2026-12-05 08:00:00"),  # logged in after the period: not listed
        row("new", created_at="2026-12-02 00:00:00"),  # did not exist yet
        row("held", organization="vp-skhcn", state="suspended", suspended_by="lifecycle",
            suspended_at="2026-11-20 02:00:00", suspended_reason="idle"),
        row("own", state="suspended", suspended_by="inventory", suspended_at="2026-11-20 02:00:00"),  # agency's own
    ]
    usage = {"busy@sonla.gov.vn": 95 * 1_048_576, "idle@sonla.gov.vn": 30 * 1_048_576, "held@sonla.gov.vn": 120 * 1_048_576}
    state = _report.snapshot(mailboxes, usage, "2026-12-01 00:00:00", {"quota_warning_percent": [80, 90]})
    assert [(r["address"].split("@")[0], r["idle_days"], r["suspend_on"]) for r in state["inactive"]] == [
        ("idle", 60, "2026-12-30"), ("never", 334, "2026-04-01")]
    assert [(r["address"].split("@")[0], r["revoke_on"]) for r in state["near_revocation"]] == [("held", "2026-12-20")]
    assert len(state["quota"]) == 6 and state["quota_warning_percent"] == 90
    assert [r["address"].split("@")[0] for r in state["quota"] if r["near_full"]] == ["busy", "held"]
    assert _report.quota_distribution(state["quota"]) == {"<25%": 3, "<50%": 1, "<75%": 0, "<90%": 0, "90-100%": 1,
                                                          ">=100%": 1}


def event(number, at, address, action, organization="skhcn", ref=None, detail=None, requested_at=None):
    return {"id": number, "at": at, "address": f"{address}@sonla.gov.vn", "action": action, "request_ref": ref,
            "detail": detail, "organization": organization, "requested_at": requested_at}


def november_inputs():
    """A month of events, Postfix lines and mailboxes of three organizations, one a sub-unit."""
    events = [
        event(1, "2026-10-31 23:00:00", "old", "added", ref="0/QĐ"),  # before the period
        event(2, "2026-11-02 08:00:00", "annv", "added", ref="1/QĐ-SKHCN"),
        event(3, "2026-11-02 08:00:00", "haclv", "added", "vp-skhcn", ref="2/QĐ-SKHCN"),
        event(4, "2026-11-03 08:00:00", "suma", "suspended", "chiengmung", ref="7/QĐ-UBND", detail="Nghỉ thai sản"),
        event(5, "2026-11-04 02:00:00", "haclv", "suspended", "vp-skhcn", ref="2/QĐ-SKHCN",
              detail="by=lifecycle; cause=inactive; idle"),
        event(6, "2026-11-05 08:00:00", "haclv", "restored", "vp-skhcn", ref="45/QĐ-SKHCN", requested_at="2026-11-02"),
        event(7, "2026-11-12 08:00:00", "annv", "restored", ref="46/QĐ-SKHCN", requested_at="2026-11-05"),
        event(8, "2026-11-20 02:00:00", "gone", "revoked", ref="3/QĐ", detail="suspended_at=2026-10-20"),
        event(9, "2026-11-21 08:00:00", "left", "removed", "chiengmung", ref="8/QĐ-UBND"),
        event(10, "2026-11-22 08:00:00", "annv", "password_reminder"),  # not an account change
        event(11, "2026-12-01 00:00:00", "annv", "updated", ref="9/QĐ"),  # after the period
    ]
    mail = _report.count_mail(LOG.splitlines(), NOVEMBER)
    held = row("suma", "chiengmung", state="suspended", suspended_by="inventory", suspended_at="x")
    state = _report.snapshot([row("annv"), row("haclv", "vp-skhcn"), held], {}, "2026-12-01 00:00:00")
    known = {"annv.skhcn@sonla.gov.vn": "skhcn", "haclv.skhcn@sonla.gov.vn": "vp-skhcn",
             "suma.chiengmung@sonla.gov.vn": "chiengmung"}
    return events, state, mail, known


def test_the_report_per_agency_with_references_causes_and_restore_times():
    events, state, mail, known = november_inputs()
    report = _report.build(NOVEMBER, events, state, mail, {"checked": 0}, ORGANIZATIONS, known)
    assert report["totals"] == {"added": 2, "updated": 0, "suspended": 2, "restored": 2, "revoked": 1, "removed": 1,
                                "sent": 2, "received": 3, "spam": 1, "malware": 1}
    assert report["suspension_causes"] == {"inactive": 1, "request": 1}
    by_agency = {agency["agency"]: agency for agency in report["agencies"]}
    assert sorted(by_agency) == ["chiengmung", "skhcn"]  # the sub-unit under its department (R5.1c)
    assert (by_agency["skhcn"]["added"], by_agency["skhcn"]["sent"], by_agency["skhcn"]["received"]) == (2, 2, 1)
    assert (by_agency["chiengmung"]["removed"], by_agency["chiengmung"]["malware"]) == (1, 1)
    assert [(r["request_ref"], r["working_days"], r["on_time"]) for r in report["restores"]] == [
        ("45/QĐ-SKHCN", 3, True), ("46/QĐ-SKHCN", 5, False)]
    assert report["restores_late"] == 1
    assert [e["request_ref"] for e in report["events"]] == [
        "1/QĐ-SKHCN", "2/QĐ-SKHCN", "7/QĐ-UBND", "2/QĐ-SKHCN", "45/QĐ-SKHCN", "46/QĐ-SKHCN", "3/QĐ", "8/QĐ-UBND"]

    files = _report.csv_files(report)
    events_csv = list(csv.DictReader(io.StringIO(files["events.csv"])))
    assert len(events_csv) == 8 and events_csv[6]["action"] == "revoked" and events_csv[6]["request_ref"] == "3/QĐ"
    assert list(csv.DictReader(io.StringIO(files["restores.csv"])))[1]["on_time"] == "False"
    page = _report.render_html(report, {"1-a": "<svg id='a'></svg>"})
    assert page.startswith("<!DOCTYPE html>") and "<svg id='a'></svg>" in page and "Tháng 11/2026" in page
    assert "1 quá hạn" in page and "QUÁ HẠN" in page and "Xã Chiềng Mung" in page
    assert "http" not in page  # self-contained: nothing loaded from elsewhere
    again = _report.build(NOVEMBER, list(reversed(events)), state, mail, {"checked": 0}, ORGANIZATIONS, known)
    assert _report.render_html(again, {"1-a": "<svg id='a'></svg>"}) == page and _report.csv_files(again) == files


def test_each_agency_gets_its_own_page_with_its_rows_alone():
    """R11.3 "per agency": one page per agency by the same renderer, its sub-units counted in (R5.1c); the
    agencies' pages add up to the province's, and an address of no known agency has none."""
    events, state, mail, known = november_inputs()
    events.append(event(12, "2026-11-23 08:00:00", "ghost", "removed", None, ref="10/QĐ"))
    drawn = []

    def charts(report):
        drawn.append(report["agency"])
        return {"1-a": f"<svg id='{report['agency'] or 'province'}'></svg>"}

    inputs = (NOVEMBER, events, state, mail, {"checked": 0}, ORGANIZATIONS, known)
    report, files, pages = _report.report_files(*inputs, charts)
    assert sorted(files) == ["agencies.csv", "events.csv", "inactive.csv", "near_revocation.csv", "quota_near_full.csv",
                             "report.html", "restores.csv"]
    assert sorted(pages) == ["agency-chiengmung.html", "agency-skhcn.html"] and drawn == [None, "chiengmung", "skhcn"]
    own = {agency: _report.build(*inputs, agency=agency) for agency in ("skhcn", "chiengmung")}
    assert own["skhcn"]["totals"] == {"added": 2, "updated": 0, "suspended": 1, "restored": 2, "revoked": 1, "removed": 0,
                                      "sent": 2, "received": 1, "spam": 1, "malware": 0}
    assert own["chiengmung"]["totals"] == {"added": 0, "updated": 0, "suspended": 1, "restored": 0, "revoked": 0,
                                           "removed": 1, "sent": 0, "received": 2, "spam": 0, "malware": 1}
    unknown = {"removed": 1}  # the ghost's removal, in the province's report only
    assert {key: sum(page["totals"][key] for page in own.values()) + unknown.get(key, 0) for key in report["totals"]} \
        == report["totals"]
    assert [row["agency"] for row in own["skhcn"]["agencies"]] == ["skhcn"]
    assert [r["request_ref"] for r in own["skhcn"]["restores"]] == ["45/QĐ-SKHCN", "46/QĐ-SKHCN"]
    assert own["chiengmung"]["restores"] == [] and own["chiengmung"]["suspension_causes"] == {"request": 1}
    assert sum(own["skhcn"]["quota_distribution"].values()) == 2  # annv and the sub-unit's haclv, not suma

    page = pages["agency-skhcn.html"]
    assert page == _report.render_html(own["skhcn"], charts(own["skhcn"]))
    assert "Sở Khoa học và Công nghệ - Tháng 11/2026</title>" in page and "Tổng hợp của đơn vị Sở Khoa học" in page
    assert "<svg id='skhcn'></svg>" in page and "suma" not in page and "7/QĐ-UBND" not in page and "ghost" not in page
    assert "45/QĐ-SKHCN" in page and "http" not in page
    # The same period gives the same pages, whatever the order of the rows read.
    assert _report.report_files(NOVEMBER, list(reversed(events)), *inputs[2:], charts)[2] == pages


def test_an_organization_id_that_cannot_name_a_file_is_refused():
    assert _report.agency_file("skhcn") == "agency-skhcn.html"
    for bad in ("../etc", "a/b", "", "Skhcn"):
        with pytest.raises(_report.ReportError, match="cannot name a file"):
            _report.agency_file(bad)


def test_events_keep_their_agency_and_restore_date_after_the_mailbox_is_gone(tmp_path):
    """The user database's events carry what the report and the notices need (R11.2, R8.3b)."""
    connection = _userdb.connect(str(tmp_path / "users.sqlite"))
    person = {"address": "annv.skhcn@sonla.gov.vn", "kind": "person", "owner_id": "annv", "display_name": "An",
              "organization": "skhcn", "quota_mb": 100, "state": "active", "reason": None, "request": "1/QĐ"}
    plan = _mailbox_plan.build_plan([person], {})
    _userdb.apply_plan(connection, plan, {person["address"]: "{SSHA512}x"}, "2026-11-02 08:00:00")
    connection.execute("UPDATE mailbox SET state = 'suspended', suspended_by = 'lifecycle',"
                       " suspended_at = '2026-11-03 02:00:00'")
    restore = {"request": "45/QĐ", "date": "2026-11-04"}
    plan = _mailbox_plan.build_plan([{**person, "restore": restore}], _userdb.read_mailboxes(connection))
    _userdb.apply_plan(connection, plan, {}, "2026-11-06 08:00:00")
    plan = _mailbox_plan.build_plan([{**person, "state": "absent", "request": "9/QĐ"}], _userdb.read_mailboxes(connection))
    _userdb.apply_plan(connection, plan, {}, "2026-11-20 08:00:00")
    rows = [tuple(r) for r in connection.execute(
        "SELECT action, request_ref, organization, requested_at, notified_at FROM mailbox_event ORDER BY id")]
    assert rows == [("added", "1/QĐ", "skhcn", None, None), ("restored", "45/QĐ", "skhcn", "2026-11-04", None),
                    ("removed", "9/QĐ", "skhcn", None, None)]


def test_an_older_database_gains_the_event_columns_with_its_history_notified(tmp_path):
    path = str(tmp_path / "users.sqlite")
    connection = _userdb.connect(path)
    connection.executescript(
        "CREATE TABLE old_event AS SELECT id, at, address, action, request_ref, detail FROM mailbox_event;"
        " DROP TABLE mailbox_event; ALTER TABLE old_event RENAME TO mailbox_event;"
        " INSERT INTO mailbox_event (id, at, address, action) VALUES (1, '2026-01-01 00:00:00', 'a@sonla.gov.vn', 'added');")
    connection.close()
    connection = _userdb.connect(path)
    assert tuple(connection.execute("SELECT notified_at, organization, requested_at FROM mailbox_event").fetchone()) == (
        "2026-01-01 00:00:00", None, None)
    assert _userdb.pending_notices(connection) == []  # R7.3: no old notice is sent again


def test_check_mode_on_an_older_database_owes_no_notice(tmp_path):
    """The notices module reads without upgrading in check mode (``connect(upgrade=False)``)."""
    path = str(tmp_path / "users.sqlite")
    connection = _userdb.connect(path)
    connection.executescript("ALTER TABLE mailbox_event DROP COLUMN notified_at")
    assert _userdb.pending_notices(_userdb.connect(path, upgrade=False)) == []
