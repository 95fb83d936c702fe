"""Result notices (R7.3): one UTF-8 mail per agency, a summary for the Department, reminders to users (R6.1b)."""

import copy
import socket
import threading
import time
from email import message_from_bytes
from email.policy import default

import pytest

from ansible_collections.sonla.mail.plugins.module_utils import _notices

ORGANIZATIONS = [
    {"id": "skhcn", "name": "Sở Khoa học và Công nghệ", "kind": "department", "parent": None, "address": "skhcn@sonla.gov.vn"},
    {"id": "vp-skhcn", "name": "Văn phòng Sở", "kind": "subunit", "parent": "skhcn", "address": "vp.skhcn@sonla.gov.vn"},
    {"id": "chiengmung", "name": "Xã Chiềng Mung", "kind": "commune", "parent": None, "address": "chiengmung@sonla.gov.vn"},
]
MAILBOXES = [
    {"address": "annv.skhcn@sonla.gov.vn", "organization": "skhcn", "display_name": "Nguyễn Văn An", "quota_mb": 2048,
     "request": "1/QĐ-SKHCN"},
    {"address": "haclv.skhcn@sonla.gov.vn", "organization": "vp-skhcn", "display_name": "Lò Văn Hặc", "quota_mb": 4096,
     "request": "2/QĐ-SKHCN", "restore": {"request": "45/QĐ-SKHCN", "date": "2026-12-01"}},
    {"address": "suma.chiengmung@sonla.gov.vn", "organization": "chiengmung", "display_name": "Mùa A Sử", "quota_mb": 2048,
     "request": "7/QĐ-UBND"},
]
NOW = "2026-12-02 02:00:00"


@pytest.fixture
def directory():
    return _notices.Directory(copy.deepcopy(ORGANIZATIONS), "skhcn", MAILBOXES)


def bodies(messages):
    """Each message as the receiving side parses it: (to, subject, text)."""
    parsed = [message_from_bytes(message.as_bytes(), policy=default) for message in messages]
    return [(str(m["To"].addresses[0].addr_spec), str(m["Subject"]), m.get_content()) for m in parsed]


def test_converge_notice_per_agency_and_a_summary(directory):
    result = {
        "added": ["annv.skhcn@sonla.gov.vn", "suma.chiengmung@sonla.gov.vn"],
        "updated": [{"address": "annv.skhcn@sonla.gov.vn", "changes": {"quota_mb": [2048, 4096]}}],
        "suspended": [], "restored": ["haclv.skhcn@sonla.gov.vn"], "removed": [],
        "refused": [{"address": "old.skhcn@sonla.gov.vn", "reason": "Revoked on 2026-11-01 (R7.2)"}],
        "unchanged": ["x@sonla.gov.vn"], "held": [{"address": "y@sonla.gov.vn"}],
    }
    items = _notices.converge_items(result, directory)
    messages = _notices.render(items, directory, NOW, "converge", "sonla.gov.vn")
    by_to = {to: (subject, text) for to, subject, text in bodies(messages)}
    # Sub-unit staff are reported to their agency (R5.1c); unchanged and held are not actions.
    assert sorted(by_to) == ["chiengmung@sonla.gov.vn", "skhcn@sonla.gov.vn"]
    assert len(messages) == 3  # two agencies and the Department's summary (skhcn is both)
    notices = [m for m in bodies(messages) if m[0] == "chiengmung@sonla.gov.vn"]
    (_, subject, text) = notices[0]
    assert "Xã Chiềng Mung" in subject and "2026-12-02" in subject
    assert "Kính gửi: Xã Chiềng Mung" in text
    assert "suma.chiengmung@sonla.gov.vn (Mùa A Sử): Đã tạo / created, 2048 MB (văn bản / request 7/QĐ-UBND)" in text
    agency, summary = [m for m in bodies(messages) if m[0] == "skhcn@sonla.gov.vn"]
    assert "Dung lượng MB / quota MB: 2048 → 4096" in agency[2]
    assert "haclv.skhcn@sonla.gov.vn (Lò Văn Hặc): Đã khôi phục / restored (văn bản / request 45/QĐ-SKHCN)" in agency[2]
    assert "R8.3c" in agency[2]
    assert "Tổng hợp" in summary[1] and "5 mục, 3 đơn vị" in summary[2]
    assert "Xã Chiềng Mung: 1" in summary[2] and "[Không rõ đơn vị / unknown agency]" in summary[2]
    assert "old.skhcn@sonla.gov.vn" in summary[2] and "Revoked on 2026-11-01 (R7.2)" in summary[2]


def test_nothing_done_sends_nothing(directory):
    result = {"added": [], "updated": [], "suspended": [], "restored": [], "removed": [], "unchanged": ["a@sonla.gov.vn"]}
    assert _notices.render(_notices.converge_items(result, directory), directory, NOW, "converge", "sonla.gov.vn") == []


def test_lifecycle_notices_and_personal_reminders(directory):
    base = {"organization": "skhcn", "display_name": "Nguyễn Văn An", "kind": "person"}
    actions = [
        {**base, "action": "suspended", "address": "annv.skhcn@sonla.gov.vn", "cause": "inactive", "by": "lifecycle",
         "reason": "Không đăng nhập quá 90 ngày (R8.2a) / No login for more than 90 days", "last_login_at": None},
        {**base, "action": "password_reminder", "address": "binh.skhcn@sonla.gov.vn", "days": 7, "days_left": 7,
         "expires_on": "2026-12-09"},
        {"action": "revoked", "address": "suma.chiengmung@sonla.gov.vn", "organization": "chiengmung",
         "display_name": "Mùa A Sử", "kind": "person", "suspended_at": "2026-11-01 02:00:00", "reason": "idle"},
    ]
    messages = bodies(_notices.render(_notices.lifecycle_items(actions, directory), directory, NOW, "lifecycle",
                                      "sonla.gov.vn", webmail_url="https://mail.sonla.gov.vn"))
    recipients = [to for to, _, _ in messages]
    assert recipients == ["chiengmung@sonla.gov.vn", "skhcn@sonla.gov.vn", "skhcn@sonla.gov.vn", "binh.skhcn@sonla.gov.vn"]
    assert "Đã thu hồi" in messages[0][2] and "suspended since 2026-11-01" in messages[0][2]
    assert "chưa đăng nhập / never" in messages[1][2]
    (_, subject, text) = messages[3]
    assert "sắp hết hạn" in subject and "2026-12-09" in text and "https://mail.sonla.gov.vn" in text


def test_messages_are_mime_utf8_with_ascii_headers_on_the_wire(directory):
    """R3.4: Vietnamese in encoded-words and a UTF-8 body, so no SMTPUTF8 is needed for ASCII addresses."""
    result = {"added": ["annv.skhcn@sonla.gov.vn"]}
    (message, _) = _notices.render(_notices.converge_items(result, directory), directory, NOW, "converge", "sonla.gov.vn")
    wire = message.as_bytes()
    headers = wire.split(b"\n\n", 1)[0]
    headers.decode("ascii")  # no raw 8-bit in headers
    assert b"=?utf-8?" in headers
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_content_charset() == "utf-8"
    assert str(message["From"]).endswith("<postmaster@sonla.gov.vn>")
    assert message["Date"] == "Wed, 02 Dec 2026 02:00:00 +0000"


class FakeSMTP:
    """A minimal SMTP server on loopback that records what it receives, and in how many sessions."""

    def __init__(self):
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(8)
        self.port = self.server.getsockname()[1]
        self.received = []
        self.sessions = 0
        self.thread = threading.Thread(target=self.accept, daemon=True)
        self.thread.start()

    def accept(self):
        while True:
            connection, _ = self.server.accept()
            self.sessions += 1
            threading.Thread(target=self.serve, args=(connection,), daemon=True).start()

    def wait(self, count):
        for _ in range(500):
            if len(self.received) >= count:
                return
            time.sleep(0.01)

    def serve(self, connection):
        stream = connection.makefile("rwb")

        def reply(line):
            stream.write(line.encode() + b"\r\n")
            stream.flush()

        reply("220 test")
        data = None
        for raw in stream:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if data is not None:
                if line == ".":
                    self.received.append("\n".join(data))
                    data = None
                    reply("250 ok")
                else:
                    data.append(line)
                continue
            verb = line.split(" ", 1)[0].upper()
            if verb == "DATA":
                data = []
                reply("354 go")
            elif verb == "QUIT":
                reply("221 bye")
                break
            elif verb == "RCPT" and "refuse" in line:
                reply("550 no such user")
            else:
                reply("250 ok")
        connection.close()


def test_send_delivers_and_reports_refusals(directory):
    server = FakeSMTP()
    result = {"added": ["annv.skhcn@sonla.gov.vn", "suma.chiengmung@sonla.gov.vn"]}
    messages = _notices.render(_notices.converge_items(result, directory), directory, NOW, "converge", "sonla.gov.vn")
    directory.organizations["chiengmung"]["address"] = "refuse@sonla.gov.vn"
    messages.append(_notices.render(_notices.converge_items({"added": ["suma.chiengmung@sonla.gov.vn"]}, directory),
                                    directory, NOW, "converge", "sonla.gov.vn")[0])
    errors = _notices.send(messages, "127.0.0.1", server.port)
    server.wait(3)
    assert len(server.received) == 3
    assert len(errors) == 1 and errors[0].startswith("Xã Chiềng Mung <refuse@sonla.gov.vn>")


def test_many_messages_share_four_sessions_and_come_back_in_their_order(directory):
    """Issue 19: a converge's notices and welcome mails wait on the filter, so they go over several sessions."""
    server = FakeSMTP()
    added = [f"person{number:02}.skhcn@sonla.gov.vn" for number in range(10)]
    messages = [_notices.render(_notices.converge_items({"added": [address]}, directory), directory, NOW, "converge",
                                "sonla.gov.vn")[0] for address in added]
    for message in messages[3::4]:
        message.replace_header("To", "refuse@sonla.gov.vn")
    sent, errors = _notices.send_each(messages, "127.0.0.1", server.port)
    server.wait(8)
    assert server.sessions == _notices.SESSIONS == 4
    assert sent == [message["To"].addresses[0].addr_spec for index, message in enumerate(messages) if index % 4 != 3]
    assert len(server.received) == 8 and len(errors) == 2


def test_send_never_raises_when_postfix_is_down(directory):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nothing listens there now
    messages = _notices.render(_notices.converge_items({"added": ["annv.skhcn@sonla.gov.vn"]}, directory), directory, NOW,
                               "converge", "sonla.gov.vn")
    (error,) = _notices.send(messages * 6, "127.0.0.1", port, timeout=2)  # four sessions, one error
    assert error.startswith(f"SMTP 127.0.0.1:{port}:")
    assert _notices.send([], "127.0.0.1", port) == []


def test_touched_addresses_are_those_a_notice_names():
    result = {"added": ["a@sonla.gov.vn"], "updated": [{"address": "b@sonla.gov.vn", "changes": {}}],
              "suspended": [{"address": "c@sonla.gov.vn", "reason": "x"}], "restored": ["d@sonla.gov.vn"],
              "removed": ["e@sonla.gov.vn"], "refused": [{"address": "f@sonla.gov.vn", "reason": "R7.2"}],
              "unchanged": ["z@sonla.gov.vn"], "held": [{"address": "y@sonla.gov.vn"}]}
    assert _notices.touched_addresses(result) == {f"{letter}@sonla.gov.vn" for letter in "abcdef"}


def test_alerts_head_the_department_summary_even_without_items(directory):
    """Issue 11: a hit cap reaches the Department (R7.3) although the run did nothing."""
    alert = "120 idle suspensions (R8.2a) due, more than max_idle_suspensions_per_run=50: none done this run"
    (summary,) = bodies(_notices.render([], directory, NOW, "lifecycle", "sonla.gov.vn", alerts=[alert]))
    assert summary[0] == "skhcn@sonla.gov.vn" and "ALERT" in summary[1] and alert in summary[2]
    assert _notices.render([], directory, NOW, "lifecycle", "sonla.gov.vn") == []


def test_alerts_go_to_the_operator_without_a_department_mailbox():
    nobody = _notices.Directory(copy.deepcopy(ORGANIZATIONS), None, MAILBOXES)
    (alert,) = bodies(_notices.render([], nobody, NOW, "lifecycle", "sonla.gov.vn", alerts=["cap hit"]))
    assert alert[0] == "postmaster@sonla.gov.vn" and "cap hit" in alert[2]


def test_the_expiry_mail_names_the_policys_password_age(directory):
    """R6.1b: the age comes from the policy, not a hard-coded 90."""
    item = _notices.Item("password_expired", "skhcn", "annv.skhcn@sonla.gov.vn", "Nguyễn Văn An", "Hết hạn")
    personal = [b for b in bodies(_notices.render([item], directory, NOW, "lifecycle", "sonla.gov.vn", max_age_days=45))
                if b[0] == "annv.skhcn@sonla.gov.vn"]
    assert "quá hạn 45 ngày" in personal[0][2] and "90" not in personal[0][2]
