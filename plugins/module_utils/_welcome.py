# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The welcome mail (issue 17): once to each new mailbox, in Vietnamese with an English part.

It carries the rules a user must follow (R3.3, R12.4, R12.5), where to get help (R10.1d, R10.2d: the
policy's ``support_contact``, else the operators' mailbox) and how to change the one-time password in the
webmail (R6.1a). It goes through the local Postfix like every notice, so it is DKIM-signed on the way out
of the filter. Each sent mail is recorded in the user database's ``welcome_mail`` table: never twice.

A converge sends a bounded number (issue 19: 50,000 new mailboxes would hold it for an hour and a half, at about
0.1 s per mail through the filter); the server's welcome job (``sonla-mail-welcome``, every few minutes) sends the
rest. Both take the same lock, so the same mail is never sent by both.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from ansible_collections.sonla.mail.plugins.module_utils._notices import SMTP_HOST, SMTP_PORT, _message, send_each
from ansible_collections.sonla.mail.plugins.module_utils._userdb import table_columns

BATCH = 100  # mails per SMTP session, recorded once Postfix took them: a stopped run resends none it recorded

SUBJECT = "Chào mừng đến với hệ thống thư điện tử tỉnh Sơn La / Welcome to the Sơn La mail system"


def pending(connection: sqlite3.Connection) -> list[dict]:
    """Mailboxes that never got the welcome mail, oldest first: {address, display_name}."""
    if not table_columns(connection, "welcome_mail"):
        return []  # a database older than the welcome mail (check mode): its mailboxes count as welcomed
    rows = connection.execute(
        "SELECT address, display_name FROM mailbox WHERE address NOT IN (SELECT address FROM welcome_mail)"
        " ORDER BY created_at, address")
    return [{"address": row[0], "display_name": row[1]} for row in rows]


def body(address: str, display_name: str, webmail_url: str, support: str) -> str:
    lines = [
        f"Kính gửi {display_name},",
        "",
        f"Hộp thư {address} của Anh/Chị đã được tạo trên hệ thống thư điện tử công vụ tỉnh Sơn La.",
        "",
        "Đăng nhập lần đầu và đổi mật khẩu:",
        f"  1. Mở {webmail_url} và đăng nhập bằng địa chỉ thư và mật khẩu dùng một lần do đơn vị bàn giao.",
        "  2. Hệ thống yêu cầu đổi mật khẩu ngay: nhập mật khẩu dùng một lần, rồi mật khẩu mới hai lần và bấm Lưu.",
        "  3. Mật khẩu dùng một lần không dùng được để nhận thư trên điện thoại hay Thunderbird trước khi đổi.",
        "",
        "Quy định khi sử dụng:",
        "  - Không gửi, nhận hoặc lưu văn bản, tài liệu có nội dung bí mật nhà nước qua thư điện tử (R3.3).",
        "  - Không dùng hộp thư công vụ để đăng ký dịch vụ, mạng xã hội hay trang web bên ngoài (R12.4).",
        "  - Không mở tệp đính kèm hoặc liên kết lạ; xóa thư đáng ngờ, thư có mã độc (R12.5).",
        "  - Báo thư rác bằng nút \"Thư rác\" trong webmail; báo ngay cho bộ phận hỗ trợ nếu một hộp thư",
        "    có dấu hiệu phát tán mã độc (R12.5).",
        "",
        f"Hỗ trợ và góp ý (R10.1d, R10.2d): {support}",
        "",
        "--- English ---",
        "",
        f"Dear {display_name},",
        "",
        f"Your mailbox {address} has been created on the Sơn La provincial government mail system.",
        "",
        "First login and password change:",
        f"  1. Open {webmail_url} and log in with your address and the one-time password your agency handed you.",
        "  2. You must change it at once: type the one-time password, then a new password twice, and press Save.",
        "  3. Until then the one-time password does not work for phones or Thunderbird.",
        "",
        "Rules you must follow:",
        "  - Never send, receive or keep state-secret documents by mail (R3.3).",
        "  - Never use this mailbox to sign up for outside services, social networks or websites (R12.4).",
        "  - Do not open unexpected attachments or links; delete suspicious mail and malware (R12.5).",
        "  - Report spam with the \"Spam\" button in the webmail, and report at once a mailbox that may spread",
        "    malware (R12.5).",
        "",
        f"Help and feedback (R10.1d, R10.2d): {support}",
        "",
        "--",
        "Thư tự động, không trả lời / automatic message, do not reply.",
    ]
    return "\n".join(lines) + "\n"


def render(mailboxes: list[dict], domain: str, webmail_url: str, support: str, sender: str, now: str) -> list:
    moment = datetime.strptime(now[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    return [_message(sender, domain, mailbox["address"], mailbox["display_name"], SUBJECT,
                     body(mailbox["address"], mailbox["display_name"], webmail_url, support), moment)
            for mailbox in mailboxes]


def settings(domain: str, support_contact: str = "", operators_mailbox: str = "", webmail_url: str | None = None,
             sender: str | None = None, smtp_host: str = SMTP_HOST, smtp_port: int = SMTP_PORT) -> dict:
    """The mails' fixed parts from the module's options (the welcome job reads the same options from a file)."""
    return {"domain": domain, "support": support_contact or operators_mailbox or f"postmaster@{domain}",
            "webmail_url": webmail_url or f"https://mail.{domain}", "sender": sender or f"postmaster@{domain}",
            "smtp_host": smtp_host, "smtp_port": smtp_port}


def send_pending(connection: sqlite3.Connection, options: dict, now: str, limit: int | None = None) -> dict:
    """Send the welcome mails still owed, oldest mailbox first: at most ``limit``, or all.

    Each batch is recorded as soon as Postfix took it. A batch Postfix took none of (it is down, or the filter
    defers) ends the run: the rest waits for the next one. Returns the addresses welcomed, the errors, and how
    many mailboxes are still owed their mail.
    """
    owed = pending(connection)
    due = owed if limit is None else owed[:limit]
    welcomed, errors = [], []
    for start in range(0, len(due), BATCH):
        messages = render(due[start:start + BATCH], options["domain"], options["webmail_url"], options["support"],
                          options["sender"], now)
        sent, failed = send_each(messages, options["smtp_host"], options["smtp_port"])
        record_sent(connection, sent, now)
        welcomed += sent
        errors += failed
        if not sent:
            break
    return {"welcomed": welcomed, "errors": errors, "pending": len(owed) - len(welcomed)}


def lock_file(database: str) -> str:
    """The lock the converge and the welcome job share: next to the user database they both write."""
    return os.path.join(os.path.dirname(database), "welcome.lock")


@contextmanager
def exclusive(path: str) -> Iterator[bool]:
    """Whether this run holds the welcome lock; the converge and the welcome job never send at the same time."""
    with open(path, "a", encoding="utf-8") as stream:
        try:
            fcntl.flock(stream, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True


def record_sent(connection: sqlite3.Connection, addresses: list[str], now: str) -> None:
    connection.executemany("INSERT INTO welcome_mail (address, sent_at) VALUES (?, ?) ON CONFLICT (address) DO NOTHING",
                           [(address, now) for address in addresses])
