# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""End-to-end tests of the converged mail server with real SMTP, IMAP and POP3 clients.

Every client connects from the host to the container's own IP address, so it is an outside client:
loopback, which the server trusts (mynetworks, Dovecot's "secured"), proves nothing about relaying
or plaintext authentication.
"""

from __future__ import annotations

import email
import email.policy
import imaplib
import poplib
import re
import smtplib
import time
import uuid
from email.header import decode_header, make_header
from email.message import EmailMessage

import pytest
from conftest import ACTIVE, DOMAIN, MUST_CHANGE, PASSWORD, SMALL_QUOTA, SUSPENDED
from sonla_molecule import submission, tls_context, wait_for

WEBMAIL = "https://mail.sonla.gov.vn"
MAIL_LOG = "/var/log/postfix/mail.log"
DATABASE = "/var/lib/sonla-mail/users.sqlite"
LAST_LOGIN_HOOK = "/usr/local/lib/sonla-mail/dovecot-last-login"
HOOK_FAILURES = "/var/lib/sonla-mail/last-login-failures"
OUTSIDER = "someone@example.org"  # never contacted: the server must refuse to relay to it


def message(to: str, subject: str, body: str = "Nội dung thử nghiệm.", sender: str = OUTSIDER, size: int = 0):
    msg = EmailMessage()
    msg["From"] = f"Nguyễn Văn An <{sender}>"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{uuid.uuid4()}@test.invalid>"
    msg.set_content(body + ("\n" + "x" * 75) * (size // 76))
    return msg


def smtp_send(ip: str, msg: EmailMessage, mail_options=(), announce_size: bool = True) -> tuple[int, str]:
    """Send one message on port 25 like another mail server would; return the final reply (code, text)."""
    data = msg.as_bytes(policy=email.policy.SMTPUTF8 if "SMTPUTF8" in mail_options else email.policy.SMTP)
    options = list(mail_options) + ([f"SIZE={len(data)}"] if announce_size else [])
    with smtplib.SMTP(ip, 25, timeout=30) as smtp:
        smtp.ehlo("client.test.invalid")
        code, reply = smtp.mail(msg["From"].addresses[0].addr_spec, options)
        if code >= 400:
            return code, reply.decode()
        code, reply = smtp.rcpt(msg["To"].addresses[0].addr_spec)
        if code >= 400:
            return code, reply.decode()
        code, reply = smtp.data(data)
        return code, reply.decode()


def imap_login(ip: str, address: str) -> imaplib.IMAP4_SSL:
    imap = imaplib.IMAP4_SSL(ip, 993, ssl_context=tls_context(), timeout=30)
    imap.login(address, PASSWORD)
    return imap


def fetch_by_message_id(ip: str, address: str, message_id: str) -> email.message.Message | None:
    imap = imap_login(ip, address)
    try:
        imap.select("INBOX", readonly=True)
        _, data = imap.search(None, "HEADER", "Message-ID", message_id)
        numbers = data[0].split()
        if not numbers:
            return None
        _, parts = imap.fetch(numbers[-1], "(BODY.PEEK[])")
        return email.message_from_bytes(parts[0][1], policy=email.policy.default)
    finally:
        imap.logout()


def mailbox_has(host, address: str, message_id: str) -> bool:
    """Whether Dovecot finds the message in the mailbox's INBOX, whatever the storage format."""
    result = host.run("doveadm search -u %s mailbox INBOX header Message-ID %s", address, message_id)
    return result.rc == 0 and bool(result.stdout.strip())


def queue_id(reply: str) -> str:
    match = re.search(r"queued as ([0-9A-Za-z]+)", reply)
    assert match, reply
    return match.group(1)


# --- delivery, reading, Vietnamese text ---------------------------------------------------------


def test_delivery_to_active_mailbox_and_imap_read_back_with_vietnamese_subject(server_ip):
    """Mail for the domain is accepted on 25, delivered over LMTP and read over IMAP (R3.4 text intact)."""
    subject = "Báo cáo tháng 5: Đề xuất nâng cấp hệ thống — Sở KH&CN"
    msg = message(ACTIVE, subject, body="Kính gửi anh An, đây là thư thử nghiệm tiếng Việt.")
    code, reply = smtp_send(server_ip, msg)
    assert code == 250, reply

    got = wait_for(lambda: fetch_by_message_id(server_ip, ACTIVE, msg["Message-ID"]), "delivery")
    assert str(make_header(decode_header(got["Subject"]))) == subject
    assert got["From"].addresses[0].display_name == "Nguyễn Văn An"
    assert "thư thử nghiệm tiếng Việt" in got.get_content()


def test_smtputf8_message_keeps_utf8_headers(server_ip, host):
    """With SMTPUTF8 both ends keep raw UTF-8 headers (R3.4), where Dovecot's LMTP takes them (2.4)."""
    dovecot_24 = host.run("dovecot --version").stdout.startswith("2.4")
    with smtplib.SMTP(server_ip, 25, timeout=30) as smtp:
        smtp.ehlo("client.test.invalid")
        offered = smtp.has_extn("smtputf8")
    if not dovecot_24:
        assert not offered, "SMTPUTF8 offered although Dovecot 2.3's LMTP would make Postfix bounce it"
        pytest.skip("Dovecot 2.3: SMTPUTF8 is not offered; RFC 2047 headers are tested above")
    assert offered
    subject = "Thông báo lịch họp giao ban tuần — Ủy ban nhân dân tỉnh Sơn La"
    msg = message(ACTIVE, subject)
    code, reply = smtp_send(server_ip, msg, mail_options=["SMTPUTF8"])
    assert code == 250, reply
    got = wait_for(lambda: fetch_by_message_id(server_ip, ACTIVE, msg["Message-ID"]), "delivery")
    assert str(make_header(decode_header(got["Subject"]))) == subject


# --- refusals on port 25 --------------------------------------------------------------------------


def test_unknown_recipient_refused_at_rcpt(server_ip):
    with smtplib.SMTP(server_ip, 25, timeout=30) as smtp:
        smtp.ehlo("client.test.invalid")
        smtp.mail(OUTSIDER)
        code, reply = smtp.rcpt(f"khongtontai.skhcn@{DOMAIN}")
    assert code == 550, reply
    assert b"5.1.1" in reply


def test_no_open_relay_from_outside(server_ip):
    """An outside client can deliver only to the domain: relaying elsewhere is refused on 25 and 587."""
    with smtplib.SMTP(server_ip, 25, timeout=30) as smtp:
        smtp.ehlo("client.test.invalid")
        smtp.mail(ACTIVE)
        code, reply = smtp.rcpt("victim@example.net")
    assert code == 554 and b"Relay access denied" in reply, reply

    with smtplib.SMTP(server_ip, 587, timeout=30) as smtp:
        smtp.ehlo("client.test.invalid")
        smtp.starttls(context=tls_context())
        smtp.ehlo("client.test.invalid")
        code, reply = smtp.mail(ACTIVE)
        if code == 250:
            code, reply = smtp.rcpt("victim@example.net")
    assert code >= 500, reply


def test_oversize_message_refused(server_ip, host):
    """R9.2b: message_size_limit comes from the policy's 1 MiB attachment limit, grown for base64."""
    limit = int(host.run("postconf -h message_size_limit").stdout)
    assert limit == 2483470  # ceil(1 MiB * 4/3 * 78/76 + 1 MiB)
    # An attachment of exactly the allowed size passes ...
    msg = message(ACTIVE, "Tệp đính kèm 1 MiB")
    msg.add_attachment(b"\0" * 1048576, maintype="application", subtype="octet-stream", filename="bao-cao.bin")
    code, reply = smtp_send(server_ip, msg)
    assert code == 250, reply
    # ... a larger one is refused. Without SIZE= the whole message is sent, then refused.
    big = message(ACTIVE, "Tệp đính kèm quá lớn")
    big.add_attachment(b"\0" * (2 * 1048576), maintype="application", subtype="octet-stream", filename="lon.bin")
    with smtplib.SMTP(server_ip, 25, timeout=60) as smtp:
        smtp.ehlo("client.test.invalid")
        smtp.mail(OUTSIDER)
        smtp.rcpt(ACTIVE)
        code, reply = smtp.data(big.as_bytes(policy=email.policy.SMTP))
    assert code == 552, reply
    assert b"5.3.4" in reply


# --- access: TLS and authentication ---------------------------------------------------------------


def test_no_plaintext_auth_without_tls(server_ip):
    """Authentication only over TLS: not offered on 587 before STARTTLS, and IMAP 143 refuses LOGIN."""
    with smtplib.SMTP(server_ip, 587, timeout=30) as smtp:
        smtp.ehlo("client.test.invalid")
        assert not smtp.has_extn("auth")
        code, reply = smtp.docmd("AUTH", "PLAIN AGFubnYAc2VjcmV0")
        assert code >= 500, reply
        assert smtp.has_extn("starttls")

    imap = imaplib.IMAP4(server_ip, 143, timeout=30)
    try:
        assert "LOGINDISABLED" in imap.capabilities
        with pytest.raises(imaplib.IMAP4.error):
            imap.login(ACTIVE, PASSWORD)
        imap.starttls(ssl_context=tls_context())
        assert imap.login(ACTIVE, PASSWORD)[0] == "OK"
    finally:
        imap.logout()


@pytest.mark.parametrize("port", [587, 465])
def test_authenticated_submission(server_ip, port):
    msg = message(ACTIVE, f"Gửi qua cổng {port}", sender=ACTIVE)
    with submission(server_ip, port) as smtp:
        smtp.login(ACTIVE, PASSWORD)
        refused = smtp.send_message(msg)
        assert refused == {}
        # An authenticated user may not send as someone else.
        with pytest.raises(smtplib.SMTPException):
            smtp.send_message(message(ACTIVE, "Giả mạo", sender=SMALL_QUOTA))
    assert wait_for(lambda: fetch_by_message_id(server_ip, ACTIVE, msg["Message-ID"]), "delivery")


def test_a_message_to_more_recipients_than_the_policy_allows_is_deferred(server_ip):
    """R12.6 on both Postfix versions: the policy service answers at the end of data (the default limit,
    500 recipients per message); the message is refused with 4xx, not accepted, and nothing is delivered."""
    msg = message(ACTIVE, "Quá nhiều người nhận", sender=ACTIVE)
    with submission(server_ip, 587) as smtp:
        smtp.login(ACTIVE, PASSWORD)
        smtp.mail(ACTIVE)
        for _ in range(501):  # Postfix counts every accepted RCPT, the same address included
            assert smtp.rcpt(ACTIVE)[0] == 250
        code, reply = smtp.data(msg.as_bytes())
    assert code == 452 and b"Too many recipients: 501, at most 500 per message" in reply, reply


# --- suspension (R8.1) and must-change (R6.1a) --------------------------------------------------


@pytest.mark.parametrize(
    ("address", "reason"),
    [(SUSPENDED, "Mailbox suspended"), (MUST_CHANGE, f"Change your password at {WEBMAIL}")],
    ids=["suspended-R8.1", "must-change-R6.1a"],
)
def test_blocked_account_cannot_log_in_but_receives(server_ip, host, address, reason):
    # IMAP: refused with the reason.
    imap = imaplib.IMAP4_SSL(server_ip, 993, ssl_context=tls_context(), timeout=30)
    with pytest.raises(imaplib.IMAP4.error) as refused:
        imap.login(address, PASSWORD)
    text = refused.value.args[0]
    assert reason.encode() in (text if isinstance(text, bytes) else str(text).encode()), text
    imap.shutdown()

    # POP3: refused with the reason.
    pop = poplib.POP3_SSL(server_ip, 995, context=tls_context(), timeout=30)
    pop.user(address)
    with pytest.raises(poplib.error_proto) as refused_pop:
        pop.pass_(PASSWORD)
    assert reason.encode() in refused_pop.value.args[0]
    pop.close()

    # Submission: authentication refused.
    with smtplib.SMTP(server_ip, 587, timeout=30) as smtp:
        smtp.starttls(context=tls_context())
        with pytest.raises(smtplib.SMTPAuthenticationError):
            smtp.login(address, PASSWORD)

    # Port 25: the mailbox still receives.
    msg = message(address, "Thư vẫn đến khi bị khóa")
    code, reply = smtp_send(server_ip, msg)
    assert code == 250, reply
    wait_for(lambda: mailbox_has(host, address, msg["Message-ID"]), "delivery to a blocked mailbox")


def test_must_change_reason_names_the_webmail(server_ip):
    imap = imaplib.IMAP4_SSL(server_ip, 993, ssl_context=tls_context(), timeout=30)
    try:
        imap.login(MUST_CHANGE, PASSWORD)
    except imaplib.IMAP4.error as refused:
        text = refused.args[0]
        text = text if isinstance(text, bytes) else str(text).encode()
        assert WEBMAIL.encode() in text
        assert "Tài khoản phải đổi mật khẩu".encode() in text
    else:
        pytest.fail("must-change account logged in")
    finally:
        imap.shutdown()


# --- quota (R9.2a, R9.2d) -------------------------------------------------------------------------


def over_quota_flag(host, address: str) -> int:
    return int(host.check_output("sqlite3 /var/lib/sonla-mail/users.sqlite \"SELECT over_quota FROM mailbox "
                                 "WHERE address = '%s'\"", address))


def test_over_quota_refused_at_smtp_and_warning_delivered(server_ip, host):
    """The 1 MiB mailbox fills up: Dovecot flags it, SMTP refuses at RCPT time, the warnings are in it."""
    # About 101.6 kB each (CRLF counted): the 9th crosses 80 %, the 10th 95 %, the 11th fills the
    # mailbox (Dovecot lets the last message through, quota_grace), and the 12th is refused.
    refused, sent = None, []
    for number in range(15):
        msg = message(SMALL_QUOTA, f"Thư lấp đầy số {number}", size=100_000)
        code, reply = smtp_send(server_ip, msg)
        if code != 250:
            refused = (code, reply)
            break
        sent.append(msg["Message-ID"])
        wait_for(lambda m=msg: mailbox_has(host, SMALL_QUOTA, m["Message-ID"]), "delivery")
    assert refused, "a full mailbox still accepted mail"
    code, reply = refused
    assert code == 552 and "5.2.2" in reply, refused
    assert over_quota_flag(host, SMALL_QUOTA) == 1
    # A client that does not announce the size is refused all the same: the flag needs no size.
    code, reply = smtp_send(server_ip, message(SMALL_QUOTA, "Không báo SIZE", size=200_000), announce_size=False)
    assert code == 552 and "5.2.2" in reply, (code, reply)

    imap = imap_login(server_ip, SMALL_QUOTA)
    try:
        imap.select("INBOX", readonly=True)
        _, data = imap.search(None, "HEADER", "Auto-Submitted", "auto-generated")
        subjects = []
        for number in data[0].split():
            _, parts = imap.fetch(number, "(BODY.PEEK[])")
            warning = email.message_from_bytes(parts[0][1], policy=email.policy.default)
            if "full" not in str(warning["Subject"]):  # the welcome mail (issue 17) is auto-generated too
                continue
            subjects.append(str(warning["Subject"]))
            assert "dung lượng" in warning.get_content()  # Vietnamese and English, UTF-8 (R3.4)
            assert "quota" in warning.get_content()
    finally:
        imap.logout()
    # R9.2d: each threshold has its own warning.
    assert any("80%" in s for s in subjects), subjects
    assert any("95%" in s for s in subjects), subjects

    # Deleting mail frees space: Dovecot clears the flag and the mailbox takes mail again.
    imap = imap_login(server_ip, SMALL_QUOTA)
    try:
        imap.select("INBOX")
        for message_id in sent[:5]:
            _, data = imap.search(None, "HEADER", "Message-ID", message_id)
            for number in data[0].split():
                imap.store(number, "+FLAGS", "\\Deleted")
        imap.expunge()
    finally:
        imap.logout()
    wait_for(lambda: over_quota_flag(host, SMALL_QUOTA) == 0, "the full flag to be cleared")
    code, reply = smtp_send(server_ip, message(SMALL_QUOTA, "Lại nhận được thư", size=1000))
    assert code == 250, reply


def test_a_wrong_full_flag_is_put_right_at_the_next_session(server_ip, host):
    """The flag is Dovecot's to keep: set wrongly by hand, it is corrected when the user next logs in."""
    host.run("sqlite3 /var/lib/sonla-mail/users.sqlite \"UPDATE mailbox SET over_quota = 1 WHERE address = '%s'\"", ACTIVE)
    code, reply = smtp_send(server_ip, message(ACTIVE, "Bị từ chối vì cờ sai"))
    assert code == 552 and "5.2.2" in reply, (code, reply)  # Postfix reads the flag (R9.2a)
    imap_login(server_ip, ACTIVE).logout()
    wait_for(lambda: over_quota_flag(host, ACTIVE) == 0, "Dovecot to correct the flag")
    code, reply = smtp_send(server_ip, message(ACTIVE, "Nhận lại sau khi sửa cờ"))
    assert code == 250, reply


# --- logs (R9.1) ----------------------------------------------------------------------------------


def test_log_has_every_r9_1_field_for_a_message(server_ip, host):
    msg = message(ACTIVE, "Kiểm tra nhật ký", size=5000)
    code, reply = smtp_send(server_ip, msg)
    assert code == 250, reply
    qid = queue_id(reply)

    def record():
        lines = [line for line in host.file(MAIL_LOG).content_string.splitlines() if f" {qid}: " in line]
        return lines if any("status=sent" in line for line in lines) else None

    lines = wait_for(record, f"log lines of {qid}")
    text = "\n".join(lines)
    # time (every line starts with one), sender, recipient, client IP, size, final status
    assert all(re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d|\w{3} [ \d]\d \d\d:\d\d:\d\d)", line) for line in lines)
    assert "from=<someone@example.org>" in text
    assert f"to=<{ACTIVE}>" in text
    assert re.search(r"client=\S+\[\d+\.\d+\.\d+\.\d+\]", text)
    assert re.search(r"size=\d+", text)
    assert "status=sent" in text


def test_log_records_refusals(host, server_ip):
    with smtplib.SMTP(server_ip, 25, timeout=30) as smtp:
        smtp.ehlo("client.test.invalid")
        smtp.mail(OUTSIDER)
        smtp.rcpt(f"khongtontai2.skhcn@{DOMAIN}")
    log = host.file(MAIL_LOG).content_string
    assert re.search(r"NOQUEUE: reject: RCPT from \S+\[[\d.]+\]: 550 5\.1\.1 <khongtontai2\.skhcn@", log)


ROTATED_LOGS = {"/etc/logrotate.d/sonla-postfix": [MAIL_LOG], "/etc/logrotate.d/sonla-dovecot": ["/var/log/dovecot.log"]}


@pytest.mark.parametrize("config_path", sorted(ROTATED_LOGS))
def test_logs_kept_184_days(host, config_path):
    """R9.1: 6 calendar months are at most 184 days. logrotate deletes a rotated log when either rotate (count)
    or maxage (days) says so: both must keep 184 days, for every log the roles rotate."""
    config = host.file(config_path).content_string
    blocks = dict(re.findall(r"^(\S+) \{\n(.*?)^\}", config, re.S | re.M))
    assert sorted(blocks) == ROTATED_LOGS[config_path], config
    for log, block in blocks.items():
        directives = dict(re.findall(r"^\s*(daily|rotate|maxage)\b\s*(\d*)$", block, re.M))
        assert "daily" in directives, (log, block)
        assert int(directives.get("rotate") or 0) >= 184, (log, block)
        assert int(directives.get("maxage") or 0) >= 184, (log, block)
    result = host.run("logrotate --debug %s", config_path)
    assert result.rc == 0, result.stderr


# --- password age (R6.1b) -------------------------------------------------------------------------

AGE_PASSWORD = """
import sqlite3, sys
connection = sqlite3.connect("/var/lib/sonla-mail/users.sqlite", timeout=30)
with connection:
    connection.execute(
        "UPDATE mailbox SET password_changed_at = datetime('now', ?) WHERE address = ?", (sys.argv[1], sys.argv[2])
    )
"""


def test_expired_password_refused_with_reason(server_ip, host):
    """A password older than the policy's 90 days must be changed before the next login (R6.1b)."""
    assert host.run("python3 -c %s %s %s", AGE_PASSWORD, "-91 days", SMALL_QUOTA).rc == 0
    try:
        imap = imaplib.IMAP4_SSL(server_ip, 993, ssl_context=tls_context(), timeout=30)
        with pytest.raises(imaplib.IMAP4.error) as refused:
            imap.login(SMALL_QUOTA, PASSWORD)
        imap.shutdown()
        text = refused.value.args[0]
        assert b"Password expired" in (text if isinstance(text, bytes) else str(text).encode())
    finally:
        assert host.run("python3 -c %s %s %s", AGE_PASSWORD, "-0 days", SMALL_QUOTA).rc == 0
    assert imap_login(server_ip, SMALL_QUOTA).logout()[0] == "BYE"


# --- last login (R8.2a) ---------------------------------------------------------------------------


def test_imap_login_records_last_login(server_ip, host):
    """R8.2a: Dovecot's post-login hook writes last_login_at, which the lifecycle's inactivity clock reads."""
    database = "/var/lib/sonla-mail/users.sqlite"
    host.run_expect([0], "sqlite3 %s %s", database, f"UPDATE mailbox SET last_login_at = NULL WHERE address = '{ACTIVE}'")
    imap_login(server_ip, ACTIVE).logout()
    query = f"SELECT ifnull(last_login_at, '') FROM mailbox WHERE address = '{ACTIVE}'"

    def last_login() -> str:
        return host.run("sqlite3 %s %s", database, query).stdout.strip()

    recorded = wait_for(last_login, "last_login_at")
    today = host.run("date -u +%Y-%m-%d").stdout.strip()
    assert recorded.startswith(today)


def login_failures(host) -> int:
    return int(host.file(HOOK_FAILURES).content_string.strip() or 0)


def test_successful_last_login_counts_no_failure(server_ip, host):
    before = login_failures(host)
    imap_login(server_ip, ACTIVE).logout()
    time.sleep(1)
    assert login_failures(host) == before


def test_last_login_failure_is_logged_counted_and_never_blocks_the_login(server_ip, host):
    """Issue 11: with the hook's database path broken, the login still works, and the failure is logged to
    Dovecot's log and counted in the file a monitor reads (docs/servers.md, "Last login")."""
    original = host.file(LAST_LOGIN_HOOK).content_string
    assert f'DATABASE = "{DATABASE}"' in original
    before = login_failures(host)
    host.run_expect([0], "sed -i %s %s", f's|^DATABASE = .*|DATABASE = "/nonexistent{DATABASE}"|', LAST_LOGIN_HOOK)
    try:
        imap = imap_login(server_ip, ACTIVE)
        try:
            assert imap.select("INBOX", readonly=True)[0] == "OK"  # the session really started
        finally:
            imap.logout()
        wait_for(lambda: login_failures(host) == before + 1, "the failure counter to rise")
        log = host.file("/var/log/dovecot.log").content_string
        assert f"sonla-mail last-login: not recorded for {ACTIVE}" in log
    finally:
        host.run_expect([0], "sed -i %s %s", f's|^DATABASE = .*|DATABASE = "{DATABASE}"|', LAST_LOGIN_HOOK)
    assert host.file(LAST_LOGIN_HOOK).content_string == original


# --- the user database, read-only for Postfix (issue 10 item 8) ----------------------------------

READ_THEN_WRITE = """
import re, sqlite3, sys
dbpath = re.search(r"^dbpath = (.*)$", open(sys.argv[1]).read(), re.M).group(1)
connection = sqlite3.connect(dbpath, uri=True, timeout=10)
print(connection.execute("SELECT count(*) FROM mailbox").fetchone()[0])
try:
    connection.execute("UPDATE mailbox SET over_quota = over_quota")
    connection.commit()
    print("written")
except sqlite3.OperationalError as error:
    print(error)
"""


@pytest.mark.parametrize("name", ["mailboxes", "sender-login", "over-quota"])
def test_postfix_lookups_cannot_write_the_user_database(host, name):
    """Postfix only reads: as its user, through the database path its lookups use, reads work and writes are refused."""
    config = f"/etc/postfix/sqlite-{name}.cf"
    result = host.run("runuser -u postfix -- python3 -c %s %s", READ_THEN_WRITE, config)
    assert result.rc == 0, result.stderr
    count, outcome = result.stdout.split("\n")[:2]
    assert int(count) >= 4
    assert outcome == "attempt to write a readonly database"
    if name == "mailboxes":  # Postfix's own client takes the same path
        assert host.run("runuser -u postfix -- postmap -q %s sqlite:%s", ACTIVE, config).stdout.strip() == ACTIVE
