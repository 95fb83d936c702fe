# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The welcome mail (issue 17): once to each new mailbox, in Vietnamese with an English part.

It carries the rules a user must follow (R3.3, R12.4, R12.5), where to get help (R10.1d, R10.2d: the
policy's ``support_contact``, else the operators' mailbox) and how to change the one-time password in the
webmail (R6.1a). It goes through the local Postfix like every notice, so it is DKIM-signed on the way out
of the filter. Each sent mail is recorded in the user database's ``welcome_mail`` table: never twice.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from ansible_collections.sonla.mail.plugins.module_utils._notices import _message
from ansible_collections.sonla.mail.plugins.module_utils._userdb import table_columns

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


def record_sent(connection: sqlite3.Connection, addresses: list[str], now: str) -> None:
    connection.executemany("INSERT INTO welcome_mail (address, sent_at) VALUES (?, ?) ON CONFLICT (address) DO NOTHING",
                           [(address, now) for address in addresses])
