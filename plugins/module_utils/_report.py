# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Periodic reports to the Department (R11.3): pure aggregation, and the HTML and CSV it is written as.

Stdlib only: ``sonla.mail.report`` reads the user database, the Postfix log, the lifecycle's daily log and
the mail folders on the server and hands the rows here; the charts (``_report_charts``, matplotlib) arrive
as SVG text. The same inputs give the same bytes: rows are sorted, nothing depends on the clock, and the
state part of a closed period (inactive accounts, quota use) is taken once and kept (docs/reports.md).

Sources, one per section:
  - ``mailbox_event``: accounts created, changed, suspended (by cause), restored and revoked or deleted,
    each with its request reference (R11.2); restore request date to restore (R8.3b, 3 working days);
  - ``mailbox`` rows and mail folder sizes at the period's end: inactive accounts, accounts near
    revocation (R8.1, R8.2a), quota use (R9.2a);
  - Postfix's log: messages sent (authenticated submissions) and received (delivered over LMTP) per agency,
    mail refused as spam or malware by the filter (milter-reject, R4.2, R10.2b);
  - the lifecycle's daily log: the age of the last good backup (R10.2c).
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from ansible_collections.sonla.mail.plugins.module_utils import _regulation

RESTORE_WORKING_DAYS = 3  # R8.3b: restored within 3 working days
INACTIVE_LIST_DAYS = 30  # listed as inactive after this many days without a login, before R8.2a's suspension
QUOTA_BUCKETS = (25, 50, 75, 90, 100)  # upper bounds (percent) of the quota-use distribution
ACTIONS = ("added", "updated", "suspended", "restored", "revoked", "removed")
ACTION_TITLES = {
    "added": "Tạo mới", "updated": "Thay đổi", "suspended": "Tạm khóa", "restored": "Khôi phục",
    "revoked": "Thu hồi (R8.1)", "removed": "Xóa theo đề nghị (R7.2)",
}
CAUSE_TITLES = {
    "request": "Theo đề nghị của đơn vị", "inactive": "Không đăng nhập (R8.2a)",
    "compromised": "Bị xâm nhập (R8.2b)", "misuse": "Sử dụng sai quy định (R8.2c)",
}
UNKNOWN_AGENCY = "(không rõ)"
REPORT_FILE = "report.html"  # the province's page; each agency's is agency_file(agency) beside it


class ReportError(ValueError):
    """A bad period or input: nothing is written."""


@dataclass(frozen=True)
class Period:
    """A month (``2026-11``) or a quarter (``2026-Q4``): [start, end) in UTC days."""

    name: str
    start: date
    end: date  # first day after the period
    title: str

    def holds(self, moment: str) -> bool:
        return self.start.isoformat() <= moment[:10] < self.end.isoformat()


def parse_period(text: str) -> Period:
    match = re.fullmatch(r"(\d{4})-(?:(0[1-9]|1[0-2])|Q([1-4]))", text or "")
    if not match:
        raise ReportError(f"period must be YYYY-MM or YYYY-Qn, got {text!r}")
    year = int(match[1])
    first = int(match[2]) if match[2] else (int(match[3]) - 1) * 3 + 1
    months = 1 if match[2] else 3
    after = first + months
    end = date(year + (after - 1) // 12, (after - 1) % 12 + 1, 1)
    title = f"Tháng {first:02d}/{year}" if match[2] else f"Quý {match[3]}/{year}"
    return Period(text, date(year, first, 1), end, title)


def previous_period(kind: str, today: date) -> str:
    """The last finished month or quarter before ``today``."""
    if kind == "month":
        last = today.replace(day=1) - timedelta(days=1)
        return f"{last.year}-{last.month:02d}"
    quarter = (today.month - 1) // 3  # 0 = this year's first quarter has not ended
    return f"{today.year - 1}-Q4" if quarter == 0 else f"{today.year}-Q{quarter}"


def working_days(requested: date, done: date) -> int:
    """Monday-Friday days after ``requested`` up to and including ``done`` (public holidays not counted out)."""
    days = 0
    day = requested
    while day < done:
        day += timedelta(days=1)
        days += day.weekday() < 5
    return days


def suspension_cause(detail: str | None) -> str:
    """The cause of a suspension event: the lifecycle and operators write ``by=...; cause=...; ...``; an
    inventory suspension (the agency's own request) writes its reason alone."""
    match = re.search(r"(?:^|; )cause=(\w+)", detail or "")
    return match[1] if match and (detail or "").startswith("by=") else "request"


class Agencies:
    """Organization id -> its agency (a sub-unit reports under its department, commune or ward, R5.1c)."""

    def __init__(self, organizations: list[dict]):
        self.by_id = {org["id"]: org for org in organizations}

    def of(self, organization: str | None) -> str:
        org = self.by_id.get(organization or "")
        if org is None:
            return UNKNOWN_AGENCY
        if org.get("kind") == "subunit" and org.get("parent") in self.by_id:
            return org["parent"]
        return org["id"]

    def name(self, agency: str) -> str:
        org = self.by_id.get(agency)
        return org["name"] if org else agency


# --- Postfix's log --------------------------------------------------------------------------------------

_SYSLOG_TIME = re.compile(r"^(?P<month>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) (?P<time>\d\d:\d\d:\d\d) ")
_ISO_TIME = re.compile(r"^(?P<date>\d{4}-\d\d-\d\d)T(?P<time>\d\d:\d\d:\d\d)")
_MONTHS = {name: number for number, name in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
_POSTFIX = re.compile(r" postfix(?:-[\w-]+)?/(?:[\w-]+/)*(?P<program>[\w-]+)\[\d+\]: (?P<queue_id>[0-9A-Za-z]+): (?P<rest>.*)")
_SASL = re.compile(r"\bsasl_username=(?P<user>[^,\s]+)")
_TO = re.compile(r"\bto=<(?P<address>[^>]*)>")


def log_day(line: str, period: Period) -> str | None:
    """The ``YYYY-MM-DD`` of a log line: ISO 8601, or syslog's ``Mon dd`` in the period's year (the logs are
    kept 184 days, so a month never repeats within them)."""
    match = _ISO_TIME.match(line)
    if match:
        return match["date"]
    match = _SYSLOG_TIME.match(line)
    if not match or match["month"] not in _MONTHS:
        return None
    month = _MONTHS[match["month"]]
    year = period.start.year if month >= period.start.month else period.end.year
    return f"{year}-{month:02d}-{int(match['day']):02d}"


@dataclass
class MailCounts:
    """Per address: messages sent (authenticated submissions), received (delivered), refused (spam, malware)."""

    sent: dict[str, int] = field(default_factory=dict)
    received: dict[str, int] = field(default_factory=dict)
    spam: dict[str, int] = field(default_factory=dict)
    malware: dict[str, int] = field(default_factory=dict)


def count_mail(lines, period: Period, malware_marker: str = "malware", spam_marker: str = "spam") -> MailCounts:
    """Read Postfix log lines of any order: one ``sent`` per queue id with a SASL user, one ``received`` per
    recipient delivered over LMTP, one refusal per ``milter-reject`` at the end of a message, named spam or
    malware by the filter's reply (roles/filter: filter_spam_reply, filter_virus_reply)."""
    counts = MailCounts()
    submitted: dict[str, str] = {}
    for line in lines:
        day = log_day(line, period)
        if day is None or not period.holds(day):
            continue
        match = _POSTFIX.search(line)
        if not match:
            continue
        rest = match["rest"]
        sasl = _SASL.search(rest)
        if sasl:
            submitted[match["queue_id"]] = sasl["user"].lower()
            continue
        to = _TO.search(rest)
        if to is None:
            continue
        address = to["address"].lower()
        if match["program"] == "lmtp" and "status=sent" in rest:
            counts.received[address] = counts.received.get(address, 0) + 1
        elif rest.startswith("milter-reject: END-OF-MESSAGE"):
            reply = rest.split("; from=<", 1)[0].lower()  # the filter's words, not a sender named "spam..."
            kind = counts.malware if malware_marker.lower() in reply else (
                counts.spam if spam_marker.lower() in reply else None)
            if kind is not None:
                kind[address] = kind.get(address, 0) + 1
    for user in submitted.values():
        counts.sent[user] = counts.sent.get(user, 0) + 1
    return counts


def backup_in_period(lines, period: Period) -> dict:
    """The backup state the lifecycle's daily runs saw in the period (its JSON lines carry ``backup``): the
    last one, and the oldest the last good backup ever got."""
    seen = []
    for line in lines:
        try:
            run = json.loads(line)
        except ValueError:
            continue
        if isinstance(run, dict) and isinstance(run.get("backup"), dict) and period.holds(str(run.get("now") or "")):
            seen.append((run["now"], run["backup"]))
    if not seen:
        return {"checked": 0}
    seen.sort(key=lambda pair: pair[0])
    ages = [backup.get("age_hours") for _, backup in seen if backup.get("age_hours") is not None]
    last = seen[-1][1]
    return {"checked": len(seen), "last_checked_at": seen[-1][0], "last_good_at": last.get("last_good_at"),
            "age_hours": last.get("age_hours"), "max_age_hours": max(ages) if ages else None,
            "failed_checks": sum(1 for _, backup in seen if not backup.get("ok"))}


# --- The state at the period's end ----------------------------------------------------------------------

def snapshot(mailboxes: list[dict], usage_bytes: dict[str, int], at: str, policy: dict | None = None) -> dict:
    """Inactive accounts, accounts near revocation and quota use at ``at`` (the period's end, or now for an
    open period), from mailbox rows and their mail folders' sizes."""
    policy = _regulation.resolve(policy)
    moment = datetime.strptime(at[:19], "%Y-%m-%d %H:%M:%S")
    warn = max(policy["quota_warning_percent"])
    inactive, near_revocation, quota = [], [], []
    for row in sorted(mailboxes, key=lambda r: r["address"]):
        if row["created_at"] > at:
            continue
        used = usage_bytes.get(row["address"], 0)
        used_mb = round(used / 1_048_576, 1)
        percent = round(100 * used / (row["quota_mb"] * 1_048_576), 1)
        quota.append({"address": row["address"], "organization": row["organization"], "used_mb": used_mb,
                      "quota_mb": row["quota_mb"], "percent": percent, "near_full": percent >= warn})
        if row["state"] == "active":
            last = row["last_login_at"] or row["created_at"]
            idle = (moment - datetime.strptime(last[:19], "%Y-%m-%d %H:%M:%S")).days  # < 0: a login after ``at``
            if idle >= INACTIVE_LIST_DAYS:
                suspend_on = (datetime.strptime(last[:10], "%Y-%m-%d")
                              + timedelta(days=policy["inactivity_suspend_days"])).date().isoformat()
                inactive.append({"address": row["address"], "organization": row["organization"],
                                 "last_login_at": row["last_login_at"] or "", "idle_days": idle, "suspend_on": suspend_on})
        elif row["suspended_by"] in ("lifecycle", "operator") and (row["suspended_at"] or "~") <= at:
            revoke_on = (datetime.strptime(row["suspended_at"][:10], "%Y-%m-%d")
                         + timedelta(days=policy["revoke_after_suspended_days"])).date().isoformat()
            near_revocation.append({"address": row["address"], "organization": row["organization"],
                                    "suspended_at": row["suspended_at"][:10], "reason": row["suspended_reason"] or "",
                                    "revoke_on": revoke_on})
    near_revocation.sort(key=lambda r: (r["revoke_on"], r["address"]))
    return {"at": at, "inactive": inactive, "near_revocation": near_revocation, "quota": quota, "quota_warning_percent": warn}


def quota_distribution(quota: list[dict]) -> dict[str, int]:
    """How many mailboxes use up to each bucket's share of their quota; the last bucket is 100 % and over."""
    labels = [f"<{bound}%" for bound in QUOTA_BUCKETS[:-1]] + [f"{QUOTA_BUCKETS[-2]}-{QUOTA_BUCKETS[-1]}%", ">=100%"]
    counts = dict.fromkeys(labels, 0)
    for row in quota:
        if row["percent"] >= 100:
            counts[">=100%"] += 1
            continue
        for bound, label in zip(QUOTA_BUCKETS, labels, strict=False):
            if row["percent"] < bound:
                counts[label] += 1
                break
    return counts


# --- The report -----------------------------------------------------------------------------------------

def build(period: Period, events: list[dict], state: dict, mail: MailCounts, backup: dict,
          organizations: list[dict], address_organizations: dict[str, str], agency: str | None = None) -> dict:
    """The whole report as plain data: ``events`` are mailbox_event rows (id, at, address, action, request_ref,
    detail, organization, requested_at); ``address_organizations`` maps every address known (mailboxes and
    events) to its organization, to put mail counts under their agency. With ``agency``, the report of that
    agency alone: every row of another agency is left out, so its totals are the agency's."""
    agencies = Agencies(organizations)

    def kept(organization: str | None) -> bool:
        return agency is None or agencies.of(organization) == agency

    rows = sorted((event for event in events
                   if event["action"] in ACTIONS and period.holds(event["at"]) and kept(event["organization"])),
                  key=lambda event: (event["at"], event["id"]))
    state = {**state, **{key: [row for row in state[key] if kept(row["organization"])]
                         for key in ("inactive", "near_revocation", "quota")}}
    listed = [{"at": event["at"], "agency": agencies.of(event["organization"]), "address": event["address"],
               "action": event["action"], "request_ref": event["request_ref"] or "",
               "cause": suspension_cause(event["detail"]) if event["action"] == "suspended" else "",
               "detail": event["detail"] or ""} for event in rows]
    restores = []
    for event in rows:
        if event["action"] == "restored" and event.get("requested_at"):
            days = working_days(date.fromisoformat(event["requested_at"][:10]), date.fromisoformat(event["at"][:10]))
            restores.append({"address": event["address"], "agency": agencies.of(event["organization"]),
                             "request_ref": event["request_ref"] or "", "requested_at": event["requested_at"][:10],
                             "restored_at": event["at"], "working_days": days, "on_time": days <= RESTORE_WORKING_DAYS})

    per_agency: dict[str, dict] = {}

    def bump(name: str, key: str, amount: int = 1) -> None:
        counts = per_agency.setdefault(name, dict.fromkeys(
            (*ACTIONS, "sent", "received", "spam", "malware", "inactive", "near_revocation", "near_full", "mailboxes"), 0))
        counts[key] += amount

    if agency is not None:
        bump(agency, "mailboxes", 0)  # its row, even in a month without anything
    for event in listed:
        bump(event["agency"], event["action"])
    for key, by_address in (("sent", mail.sent), ("received", mail.received), ("spam", mail.spam), ("malware", mail.malware)):
        for address, count in by_address.items():
            organization = address_organizations.get(address)
            if organization is not None and kept(organization):  # mail of addresses outside the domain is no agency's
                bump(agencies.of(organization), key, count)
    for key in ("inactive", "near_revocation"):
        for row in state[key]:
            bump(agencies.of(row["organization"]), key)
    for row in state["quota"]:
        bump(agencies.of(row["organization"]), "mailboxes")
        if row["near_full"]:
            bump(agencies.of(row["organization"]), "near_full")

    causes: dict[str, int] = {}
    for event in listed:
        if event["action"] == "suspended":
            causes[event["cause"]] = causes.get(event["cause"], 0) + 1
    totals = {key: sum(counts[key] for counts in per_agency.values()) for key in (
        *ACTIONS, "sent", "received", "spam", "malware")}
    return {
        "agency": agency, "agency_name": agencies.name(agency) if agency is not None else None,
        "period": period.name, "title": period.title, "start": period.start.isoformat(),
        "end": (period.end - timedelta(days=1)).isoformat(), "state_at": state["at"],
        "totals": totals, "suspension_causes": dict(sorted(causes.items())),
        "events": listed, "restores": restores,
        "restores_late": sum(1 for restore in restores if not restore["on_time"]),
        "agencies": [{"agency": name, "name": agencies.name(name), **per_agency[name]} for name in sorted(per_agency)],
        "inactive": [{**row, "agency": agencies.of(row["organization"])} for row in state["inactive"]],
        "near_revocation": [{**row, "agency": agencies.of(row["organization"])} for row in state["near_revocation"]],
        "quota_distribution": quota_distribution(state["quota"]),
        "quota_near_full": [{**row, "agency": agencies.of(row["organization"])} for row in state["quota"] if row["near_full"]],
        "quota_warning_percent": state["quota_warning_percent"],
        "backup": backup,
    }


CSV_FILES = {
    "agencies.csv": ("agency", "name", *ACTIONS, "sent", "received", "spam", "malware", "mailboxes", "inactive",
                     "near_revocation", "near_full"),
    "events.csv": ("at", "agency", "address", "action", "cause", "request_ref", "detail"),
    "restores.csv": ("address", "agency", "request_ref", "requested_at", "restored_at", "working_days", "on_time"),
    "inactive.csv": ("address", "agency", "last_login_at", "idle_days", "suspend_on"),
    "near_revocation.csv": ("address", "agency", "suspended_at", "reason", "revoke_on"),
    "quota_near_full.csv": ("address", "agency", "used_mb", "quota_mb", "percent"),
}


def report_files(period: Period, events: list[dict], state: dict, mail: MailCounts, backup: dict,
                 organizations: list[dict], address_organizations: dict[str, str],
                 charts) -> tuple[dict, dict[str, str], dict[str, str]]:
    """The province's report, its files (``REPORT_FILE`` and the CSV files) and one page per agency of it (the
    unknown agency has none), each by the same renderer with its own charts; ``charts(report)`` draws them
    (``_report_charts.svg_charts``). The arguments are ``build``'s."""
    inputs = (period, events, state, mail, backup, organizations, address_organizations)
    report = build(*inputs)
    files = {REPORT_FILE: render_html(report, charts(report)), **csv_files(report)}
    pages = {}
    for row in report["agencies"]:
        if row["agency"] != UNKNOWN_AGENCY:
            own = build(*inputs, agency=row["agency"])
            pages[agency_file(row["agency"])] = render_html(own, charts(own))
    return report, files, pages


def agency_file(agency: str) -> str:
    """The file name of an agency's page, beside the province's ``report.html``."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,63}", agency):
        raise ReportError(f"organization id {agency!r} cannot name a file (ids are a-z, 0-9, '.', '_', '-')")
    return f"agency-{agency}.html"


def csv_files(report: dict) -> dict[str, str]:
    """The report's tables as CSV text (UTF-8, header row, ``\\n`` line ends), by file name."""
    sources = {"agencies.csv": report["agencies"], "events.csv": report["events"], "restores.csv": report["restores"],
               "inactive.csv": report["inactive"], "near_revocation.csv": report["near_revocation"],
               "quota_near_full.csv": report["quota_near_full"]}
    files = {}
    for name, columns in CSV_FILES.items():
        out = io.StringIO()
        writer = csv.DictWriter(out, columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(sources[name])
        files[name] = out.getvalue()
    return files


def _table(columns: list[tuple[str, str]], rows: list[dict], empty: str = "Không có / none") -> str:
    if not rows:
        return f"<p class=\"empty\">{html.escape(empty)}</p>"
    head = "".join(f"<th>{html.escape(title)}</th>" for _, title in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(row.get(key, '')))}</td>" for key, _ in columns) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


STYLE = ("body{font-family:'DejaVu Sans',Arial,sans-serif;margin:2em;color:#222}h1{font-size:1.5em}"
         "h2{font-size:1.2em;border-bottom:1px solid #ccc;margin-top:1.6em}table{border-collapse:collapse;margin:.5em 0}"
         "th,td{border:1px solid #bbb;padding:.2em .5em;font-size:.9em;text-align:left}th{background:#eef}"
         ".charts{display:flex;flex-wrap:wrap;gap:1em}.charts svg{max-width:48%;height:auto}"
         ".late{color:#b00;font-weight:bold}.empty{color:#666}")


def render_html(report: dict, charts: dict[str, str], organization_title: str = "Sở Khoa học và Công nghệ tỉnh Sơn La") -> str:
    """The self-contained page: no external file, the charts inline as SVG, Vietnamese (R3.4)."""
    totals = report["totals"]
    backup = report["backup"]
    if backup.get("checked"):
        backup_text = (f"Bản sao lưu tốt gần nhất: {backup.get('last_good_at') or 'không có'}; tuổi khi kiểm tra lần cuối "
                       f"({backup['last_checked_at']}): {backup.get('age_hours')} giờ; tuổi lớn nhất trong kỳ: "
                       f"{backup.get('max_age_hours')} giờ; số lần kiểm tra lỗi: {backup['failed_checks']}/{backup['checked']}.")
    else:
        backup_text = "Không có lần kiểm tra sao lưu nào trong kỳ (nhật ký vòng đời tài khoản)."
    late = report["restores_late"]
    summary = [
        ("Tạo mới / created", totals["added"]), ("Thay đổi / changed", totals["updated"]),
        ("Tạm khóa / suspended", totals["suspended"]), ("Khôi phục / restored", totals["restored"]),
        ("Thu hồi / revoked", totals["revoked"]), ("Xóa theo đề nghị / deleted", totals["removed"]),
        ("Thư gửi đi / sent", totals["sent"]), ("Thư nhận / received", totals["received"]),
        ("Thư rác bị từ chối / spam refused", totals["spam"]), ("Thư mã độc bị từ chối / malware refused", totals["malware"]),
    ]
    causes = [{"cause": CAUSE_TITLES.get(cause, cause), "count": count} for cause, count in report["suspension_causes"].items()]
    events = [{**event, "action": ACTION_TITLES.get(event["action"], event["action"]),
               "cause": CAUSE_TITLES.get(event["cause"], event["cause"])} for event in report["events"]]
    restores = [{**restore, "on_time": "Đúng hạn" if restore["on_time"] else "QUÁ HẠN"} for restore in report["restores"]]
    chart_html = "".join(charts[name] for name in sorted(charts))
    agency = html.escape(report["agency_name"]) if report["agency"] is not None else None
    parts = [
        "<!DOCTYPE html>", "<html lang=\"vi\"><head><meta charset=\"utf-8\">",
        (f"<title>Báo cáo hệ thống thư điện tử tỉnh Sơn La - {agency + ' - ' if agency else ''}"
         f"{html.escape(report['title'])}</title>"),
        f"<style>{STYLE}</style></head><body>",
        (f"<h1>Báo cáo hệ thống thư điện tử tỉnh Sơn La<br>{agency + '<br>' if agency else ''}"
         f"{html.escape(report['title'])} ({report['start']} – {report['end']})</h1>"),
        (f"<p>Kính gửi: {html.escape(organization_title)}. Báo cáo định kỳ theo R11.3; tình trạng tài khoản và "
         f"dung lượng tính đến {html.escape(report['state_at'])} UTC.</p>"),
        f"<h2>Tổng hợp của đơn vị {agency}</h2>" if agency else "<h2>Tổng hợp toàn tỉnh</h2>",
        _table([("what", "Nội dung"), ("count", "Số lượng")], [{"what": what, "count": count} for what, count in summary]),
        f"<div class=\"charts\">{chart_html}</div>",
        "<h2>Tạm khóa theo nguyên nhân</h2>", _table([("cause", "Nguyên nhân"), ("count", "Số lượng")], causes),
        "<h2>Theo đơn vị</h2>",
        _table([("name", "Đơn vị"), ("added", "Tạo"), ("updated", "Đổi"), ("suspended", "Khóa"), ("restored", "Khôi phục"),
                ("revoked", "Thu hồi"), ("removed", "Xóa"), ("sent", "Gửi"), ("received", "Nhận"), ("spam", "Rác"),
                ("malware", "Mã độc"), ("mailboxes", "Hộp thư"), ("inactive", "Không hoạt động"),
                ("near_revocation", "Sắp thu hồi"), ("near_full", "Gần đầy")], report["agencies"]),
        f"<h2>Khôi phục: từ văn bản đề nghị đến khi khôi phục (R8.3b, {RESTORE_WORKING_DAYS} ngày làm việc)</h2>",
        f"<p class=\"{'late' if late else 'ok'}\">{len(report['restores'])} yêu cầu, {late} quá hạn.</p>",
        _table([("address", "Hộp thư"), ("request_ref", "Văn bản"), ("requested_at", "Ngày đề nghị"),
                ("restored_at", "Khôi phục lúc"), ("working_days", "Ngày làm việc"), ("on_time", "Kết quả")], restores),
        "<h2>Tài khoản không hoạt động (R8.2a)</h2>",
        _table([("address", "Hộp thư"), ("last_login_at", "Đăng nhập cuối"), ("idle_days", "Số ngày"),
                ("suspend_on", "Sẽ tạm khóa ngày")], report["inactive"]),
        "<h2>Tài khoản sắp bị thu hồi (R8.1)</h2>",
        _table([("address", "Hộp thư"), ("suspended_at", "Tạm khóa từ"), ("reason", "Lý do"), ("revoke_on", "Thu hồi ngày")],
               report["near_revocation"]),
        f"<h2>Hộp thư gần đầy (từ {report['quota_warning_percent']}% dung lượng, R9.2a)</h2>",
        _table([("address", "Hộp thư"), ("used_mb", "Đã dùng MB"), ("quota_mb", "Dung lượng MB"), ("percent", "%")],
               report["quota_near_full"]),
        "<h2>Sao lưu (R10.2c)</h2>", f"<p>{html.escape(backup_text)}</p>",
        "<h2>Danh sách thay đổi tài khoản và văn bản đề nghị (R11.2)</h2>",
        _table([("at", "Thời điểm"), ("address", "Hộp thư"), ("action", "Việc"), ("cause", "Nguyên nhân"),
                ("request_ref", "Văn bản"), ("detail", "Chi tiết")], events),
        "</body></html>", "",
    ]
    return "\n".join(parts)
