# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Result notices (R7.3): one UTF-8 mail per agency listing what was done for it, a summary for the
Department, and password reminders to the account holders themselves (R6.1b).

Stdlib only (the daily lifecycle job imports it on the mail server). Text is Vietnamese with English
(R3.4: UTF-8 end to end); headers are MIME encoded-words, so the local Postfix needs no SMTPUTF8 for
these ASCII addresses.

Flow: ``converge_items`` / ``lifecycle_items`` turn a run's result into items; ``render`` groups them per
agency into ``email.message.EmailMessage`` objects; ``send`` hands them to the local Postfix.
"""

from __future__ import annotations

import smtplib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from ansible_collections.sonla.mail.plugins.module_utils import _regulation

SMTP_HOST = "127.0.0.1"
SMTP_PORT = 25
SESSIONS = 4  # SMTP sessions at once when a run sends many messages (send_each)
# The options of every module that sends notices (documented in plugins/doc_fragments/notices.py).
SMTP_ARGUMENT_SPEC = {
    "smtp_host": {"type": "str", "default": SMTP_HOST},
    "smtp_port": {"type": "int", "default": SMTP_PORT},
    "sender": {"type": "str"},
    "webmail_url": {"type": "str"},
}
SENDER_NAME = "Trung tâm Công nghệ thông tin và Kiểm định - Hệ thống thư điện tử tỉnh Sơn La"
UNKNOWN_AGENCY = ""

# Section order and titles (Vietnamese / English); the rule each carries out.
SECTIONS = {
    "added": "Hộp thư đã tạo / Mailboxes created (R7.1a, R7.2)",
    "updated": "Thay đổi / Changes (R7.1a)",
    "suspended": "Tạm khóa / Suspended (R8.1, R8.2)",
    "restored": "Khôi phục, phải đổi mật khẩu ở lần đăng nhập đầu / Restored, password change at first login (R8.3c)",
    "removed": "Đã xóa theo đề nghị, không thể khôi phục / Deleted on request, cannot be restored (R7.2)",
    "revocation_warning": (
        "Sắp thu hồi nếu không có văn bản đề nghị khôi phục / To be revoked unless a restore request arrives (R8.1)"),
    "revoked": "Đã thu hồi: hộp thư và dữ liệu đã bị xóa / Revoked: mailbox and mail deleted (R8.1, R7.2)",
    "backup_purged": ("Đã xóa khỏi mọi bản sao lưu, không thể khôi phục / "
                      "Deleted from every backup, cannot be restored (R7.2)"),
    "password_reminder": "Nhắc đổi mật khẩu / Password reminders (R6.1b)",
    "password_expired": (
        "Mật khẩu hết hạn, đăng nhập bị từ chối đến khi đổi / Passwords expired, login refused until changed (R6.1b)"),
    "list_member_dropped": (
        "Bỏ khỏi danh sách thư vì hộp thư không còn / Left out of mailing lists, the mailbox is gone (R8.1, R7.2)"),
    "refused": "Không thực hiện / Refused (R7.3)",
}
COLUMN_NAMES = {
    "display_name": "Họ tên / name", "organization": "Đơn vị / organization", "quota_mb": "Dung lượng MB / quota MB",
    "request_ref": "Văn bản / request", "kind": "Loại / kind", "owner_id": "Mã / id", "suspended_reason": "Lý do / reason",
}


@dataclass(frozen=True)
class Item:
    """One line of a notice: what was done to one address, for one agency."""

    section: str
    agency: str  # organization id of the agency (department, commune or ward); "" when unknown
    address: str
    display_name: str
    text: str


class Directory:
    """Who receives what: organizations as returned by ``mail_inventory`` (id, name, kind, parent, address)."""

    def __init__(self, organizations: list[dict] | None, department: str | None = None, mailboxes: list[dict] | None = None):
        self.organizations = {org["id"]: org for org in organizations or ()}
        self.department = department
        self.mailboxes = {mailbox["address"]: mailbox for mailbox in mailboxes or ()}

    def agency_of(self, organization: str | None) -> str:
        """A sub-unit's notices go to its agency (R5.1c): the department, commune or ward above it."""
        org = self.organizations.get(organization or "")
        if org is None:
            return UNKNOWN_AGENCY
        if org.get("kind") == "subunit" and org.get("parent") in self.organizations:
            return org["parent"]
        return org["id"]

    def address_of(self, organization: str) -> str | None:
        org = self.organizations.get(organization)
        return org.get("address") if org else None

    def name_of(self, organization: str) -> str:
        org = self.organizations.get(organization)
        return org["name"] if org else "Không rõ đơn vị / unknown agency"

    def describe(self, address: str) -> tuple[str, str]:
        """(agency id, display name) of an address of the desired set."""
        mailbox = self.mailboxes.get(address) or {}
        return self.agency_of(mailbox.get("organization")), mailbox.get("display_name") or ""


def _request(ref: str | None) -> str:
    return f" (văn bản / request {ref})" if ref else ""


NOTICE_SECTIONS = ("added", "updated", "suspended", "restored", "removed", "refused", "list_member_dropped")
# What a notice takes from this run's results rather than from the user database's events: the inventory entries
# the converge refused, and the lists' members sonla.mail.directory left out because their mailbox is gone (issue 17).
RUN_SECTIONS = ("refused", "list_member_dropped")


def touched_addresses(result: dict) -> set[str]:
    """The addresses a ``sonla.mail.mailboxes`` result reports something about: those a notice names."""
    return {item if isinstance(item, str) else item.get("member") or item["address"]
            for section in NOTICE_SECTIONS for item in result.get(section) or ()}


def _address(item) -> str:
    return item if isinstance(item, str) else item["address"]


def converge_items(result: dict, directory: Directory) -> list[Item]:
    """Items of a ``sonla.mail.mailboxes`` result: created, changed, suspended, restored, removed, refused.

    An entry is an address, or a dict with its own ``request`` (and ``quota_mb``, or an ``updated`` change as
    ``detail`` text), as ``pending_result`` makes them; otherwise the desired mailbox gives them."""
    items: list[Item] = []

    def add(section: str, address: str, text: str) -> None:
        agency, name = directory.describe(address)
        items.append(Item(section, agency, address, name, text))

    def about(item) -> dict:
        return {**(directory.mailboxes.get(_address(item)) or {}), **({} if isinstance(item, str) else item)}

    for added in result.get("added") or ():
        mailbox = about(added)
        add("added", _address(added), f"Đã tạo / created, {mailbox.get('quota_mb') or '?'} MB{_request(mailbox.get('request'))}")
    for update in result.get("updated") or ():
        changes = update.get("detail") or "; ".join(f"{COLUMN_NAMES.get(column, column)}: {old} → {new}"
                                                    for column, (old, new) in update["changes"].items())
        add("updated", update["address"], changes + _request(about(update).get("request")))
    for suspension in result.get("suspended") or ():
        reason = f"Lý do / reason: {suspension.get('reason')}{_request(suspension.get('request'))}"
        add("suspended", suspension["address"], reason)
    for restored in result.get("restored") or ():
        mailbox = about(restored)
        ref = mailbox.get("request") if not isinstance(restored, str) else (
            (mailbox.get("restore") or {}).get("request") or mailbox.get("request"))
        add("restored", _address(restored), f"Đã khôi phục / restored{_request(ref)}")
    for removed in result.get("removed") or ():
        add("removed", _address(removed), f"Đã xóa / deleted{_request(about(removed).get('request'))}")
    for refusal in result.get("refused") or ():
        add("refused", refusal["address"], f"Lý do / reason: {refusal['reason']}")
    # From sonla.mail.directory: reported to the agency that owns the list, which may not be the member's.
    for drop in result.get("list_member_dropped") or ():
        items.append(Item("list_member_dropped", directory.agency_of(drop["organization"]), drop["member"],
                          directory.describe(drop["member"])[1],
                          f"danh sách / list {drop['alias']}: {drop['reason']}"))
    return items


def pending_result(rows: list[dict]) -> tuple[dict, list[dict]]:
    """The converge events no notice has named yet (``_userdb.pending_notices``) as a result for
    ``converge_items``, and the mailboxes they name (address, organization, display name) for the
    ``Directory``: the notice is built from the database, so a run that failed after the converge still
    owes it and the next run sends it (R7.3). Each event carries its own request reference (R11.2)."""
    result: dict[str, list] = {section: [] for section in NOTICE_SECTIONS if section != "refused"}
    mailboxes: dict[str, dict] = {}
    for row in rows:
        address, action, ref = row["address"], row["action"], row["request_ref"]
        mailboxes[address] = {"address": address, "organization": row["organization"],
                              "display_name": row["display_name"] or ""}
        if action == "suspended":
            result[action].append({"address": address, "reason": row["detail"], "request": ref})
        elif action == "updated":
            result[action].append({"address": address, "detail": (row["detail"] or "").replace(" -> ", " → "),
                                   "request": ref})
        else:
            result[action].append({"address": address, "request": ref, "quota_mb": row["quota_mb"]})
    return result, list(mailboxes.values())


def lifecycle_items(actions: list[dict], directory: Directory) -> list[Item]:
    """Items of a lifecycle plan's actions (``_lifecycle.LifecyclePlan.actions``)."""
    items = []
    for action in actions:
        kind = action["action"]
        if kind == "suspended":
            text = f"Lý do / reason: {action['reason']}"
            if action.get("cause") == "inactive":
                last = action.get("last_login_at") or "chưa đăng nhập / never"
                text += f"; lần đăng nhập cuối / last login: {last}"
        elif kind == "revocation_warning":
            text = (f"Sẽ thu hồi ngày / revocation on {action['revoke_on']} (tạm khóa từ / suspended since "
                    f"{action['suspended_at'][:10]}: {action['reason']})")
        elif kind == "revoked":
            text = f"Tạm khóa từ / suspended since {action['suspended_at'][:10]}: {action['reason']}"
        elif kind == "password_reminder":
            text = (f"Mật khẩu hết hạn ngày / password expires on {action['expires_on']} "
                    f"(còn / in {action['days_left']} ngày / days)")
        elif kind == "password_expired":
            text = f"Hết hạn từ ngày / expired on {action['expired_on']}"
        else:
            continue
        items.append(Item(kind, directory.agency_of(action.get("organization")), action["address"],
                          action.get("display_name") or "", text))
    return items


def backup_purge_items(purged: list[dict], directory: Directory) -> list[Item]:
    """Items of a backup purge (``_backup.purge_deleted``'s ``purged_mailboxes``: address, organization,
    display_name, deleted_at): the mail of removed or revoked mailboxes gone from every snapshot (R7.2)."""
    return [Item("backup_purged", directory.agency_of(mailbox.get("organization")), mailbox["address"],
                 mailbox.get("display_name") or "",
                 f"Xóa hộp thư ngày / mailbox deleted on {mailbox['deleted_at'][:10]}; dữ liệu đã xóa khỏi các bản "
                 "sao lưu / its data is gone from the backups")
            for mailbox in purged]


def _lines(items: list[Item], with_agency: Directory | None = None) -> list[str]:
    lines: list[str] = []
    for section, title in SECTIONS.items():
        chosen = [item for item in items if item.section == section]
        if not chosen:
            continue
        lines += ["", f"{title}:"]
        for item in sorted(chosen, key=lambda i: (i.agency, i.address)):
            who = f"{item.address} ({item.display_name})" if item.display_name else item.address
            where = f" [{with_agency.name_of(item.agency)}]" if with_agency is not None else ""
            lines.append(f"  - {who}{where}: {item.text}")
    return lines


def _message(sender: str, domain: str, to: str, to_name: str, subject: str, body: str, moment: datetime) -> EmailMessage:
    message = EmailMessage()
    message["From"] = Address(SENDER_NAME, addr_spec=sender)
    message["To"] = Address(to_name, addr_spec=to)
    message["Subject"] = subject
    message["Date"] = format_datetime(moment)
    message["Message-ID"] = make_msgid(domain=domain)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to notices
    message.set_content(body, charset="utf-8")
    return message


def render(items: list[Item], directory: Directory, now: str, what: str, domain: str, sender: str | None = None,
           webmail_url: str | None = None, alerts: list[str] | None = None,
           max_age_days: int = _regulation.PASSWORD_BOUNDS["max_age_days"].default) -> list[EmailMessage]:
    """One notice per agency with items, one summary for the Department (R7.3), and a personal mail
    for each password reminder or expiry (R6.1b). ``what`` names the run (converge, lifecycle).

    ``alerts`` (a cap hit, an unreadable entry) head the Department's summary, which is then sent even
    with no items; without a Department mailbox they go to the sender (the operator's postmaster).
    ``max_age_days`` is the policy's password age (R6.1b), named in the expiry mail."""
    moment = datetime.strptime(now[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    day = now[:10]
    sender = sender or f"postmaster@{domain}"
    webmail_url = webmail_url or f"https://mail.{domain}"
    title = {"converge": "xử lý đề nghị / requests", "lifecycle": "quản lý tài khoản định kỳ / account lifecycle",
             "backup": "sao lưu / backup"}.get(what, what)
    messages: list[EmailMessage] = []
    footer = ["", "--", "Thư tự động, không trả lời / automatic message, do not reply.", f"Webmail: {webmail_url}"]

    by_agency: dict[str, list[Item]] = {}
    for item in items:
        by_agency.setdefault(item.agency, []).append(item)
    for agency in sorted(by_agency):
        address = directory.address_of(agency)
        if not address:
            continue  # unknown agency: the Department's summary still lists it
        name = directory.name_of(agency)
        body = [
            f"Kính gửi: {name}",
            f"Kết quả {title} ngày {day} cho hộp thư của đơn vị (R7.3).",
            f"Result of the {what} run of {day} for your agency's mailboxes (R7.3).",
            *_lines(by_agency[agency]), *footer,
        ]
        subject = f"[Thư điện tử Sơn La] Thông báo kết quả ngày {day} / Result notice {day}: {name}"
        messages.append(_message(sender, domain, address, name, subject, "\n".join(body) + "\n", moment))

    department = directory.department
    alerts = list(alerts or ())
    warning = ["", "CẢNH BÁO, cần kiểm tra / ALERT, to be checked:", *(f"  - {alert}" for alert in alerts)] if alerts else []
    if department and directory.address_of(department) and (items or alerts):
        name = directory.name_of(department)
        counts = [f"  - {directory.name_of(agency)}: {len(by_agency[agency])}" for agency in sorted(by_agency)]
        body = [
            f"Kính gửi: {name}",
            f"Tổng hợp kết quả {title} ngày {day}: {len(items)} mục, {len(by_agency)} đơn vị (R7.3).",
            f"Summary of the {what} run of {day}: {len(items)} items for {len(by_agency)} agencies (R7.3).",
            *warning, "", "Theo đơn vị / per agency:", *counts, *_lines(items, with_agency=directory), *footer,
        ]
        subject = f"[Thư điện tử Sơn La] Tổng hợp ngày {day} / Summary {day}"
        if alerts:
            subject = f"[Thư điện tử Sơn La] CẢNH BÁO / ALERT {day}: {len(alerts)}; " + subject.split("] ", 1)[1]
        messages.append(_message(sender, domain, directory.address_of(department), name, subject, "\n".join(body) + "\n", moment))
    elif alerts:
        body = ["Kính gửi / Dear operator,", *warning, *footer]
        subject = f"[Thư điện tử Sơn La] CẢNH BÁO / ALERT {day}: {len(alerts)}"
        messages.append(_message(sender, domain, sender, "", subject, "\n".join(body) + "\n", moment))

    for item in items:
        if item.section not in ("password_reminder", "password_expired"):
            continue
        if item.section == "password_reminder":
            subject = f"Mật khẩu hộp thư sắp hết hạn / Your mail password expires soon ({item.address})"
            lead = [f"Mật khẩu của hộp thư {item.address} sẽ hết hạn (R6.1b): {item.text}.",
                    f"Hãy đổi mật khẩu tại {webmail_url} trước ngày đó.",
                    f"The password of {item.address} is about to expire; change it at {webmail_url} before then."]
        else:
            subject = f"Mật khẩu hộp thư đã hết hạn / Your mail password has expired ({item.address})"
            lead = [f"Mật khẩu của hộp thư {item.address} đã quá hạn {max_age_days} ngày (R6.1b): {item.text}.",
                    f"Thư vẫn được nhận; hãy đổi mật khẩu tại {webmail_url} để đăng nhập lại.",
                    f"Mail is still delivered; change the password at {webmail_url} to log in again."]
        body = [f"Kính gửi / Dear {item.display_name or item.address},", "", *lead, *footer]
        messages.append(_message(sender, domain, item.address, item.display_name, subject, "\n".join(body) + "\n", moment))
    return messages


def preview(messages: list[EmailMessage]) -> list[dict]:
    """What check mode and the results show: recipient and subject of each notice."""
    return [{"to": message["To"].addresses[0].addr_spec, "subject": str(message["Subject"])} for message in messages]


def send(messages: list[EmailMessage], host: str = SMTP_HOST, port: int = SMTP_PORT, timeout: float = 30) -> list[str]:
    """Hand every notice to the local Postfix; returns the errors (never raises)."""
    return send_each(messages, host, port, timeout)[1]


def send_each(messages: list[EmailMessage], host: str = SMTP_HOST, port: int = SMTP_PORT,
              timeout: float = 30) -> tuple[list[str], list[str]]:
    """Like ``send``, and also which recipients Postfix took, in the messages' order: (sent, errors).

    The messages are shared among up to ``SESSIONS`` SMTP sessions at once. Each message waits mostly for the
    inbound filter's answer (rspamd and clamd), not for a core: four sessions hand a converge's notices and
    welcome mails over three times as fast as one (issue 19, docs/benchmarks.md)."""
    if not messages:
        return [], []
    shares = [range(start, len(messages), SESSIONS) for start in range(min(SESSIONS, len(messages)))]
    with ThreadPoolExecutor(len(shares)) as pool:
        outcomes = list(pool.map(lambda share: _session(messages, share, host, port, timeout), shares))
    taken = dict(pair for sent, _, _ in outcomes for pair in sent)
    refused = [error for _, errors, _ in outcomes for error in errors]
    unreachable = dict.fromkeys(failure for _, _, failure in outcomes if failure)  # "Postfix is down" once, not four times
    return [taken[index] for index in sorted(taken)], refused + list(unreachable)


def _session(messages: list[EmailMessage], share: range, host: str, port: int,
             timeout: float) -> tuple[list[tuple[int, str]], list[str], str]:
    """One SMTP session that sends the messages of ``share``: the (index, recipient) pairs taken, the refusals, and
    why the session itself failed ("" when it did not)."""
    sent, errors = [], []
    try:
        with smtplib.SMTP(host, port, timeout=timeout) as smtp:
            for index in share:
                message = messages[index]
                try:
                    smtp.send_message(message)
                    sent.append((index, message["To"].addresses[0].addr_spec))
                except smtplib.SMTPException as error:
                    errors.append(f"{message['To']}: {error}")
    except (OSError, smtplib.SMTPException) as error:
        return sent, errors, f"SMTP {host}:{port}: {error}"
    return sent, errors, ""
