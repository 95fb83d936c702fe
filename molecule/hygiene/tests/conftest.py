# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures and clients of the mail hygiene tests (the container's fixtures are in molecule/shared)."""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import imaplib
import os
import smtplib
import uuid
from email.message import EmailMessage

import pytest
from sonla_molecule import tls_context

DOMAIN = "sonla.gov.vn"
PASSWORD = "Kiem-tra#2025"  # test-only password, set below in the test container only
MAIL_LOG = "/var/log/postfix/mail.log"
OUTSIDER = "someone@example.org"  # an outside sender whose domain publishes nothing

# Addresses pinned in molecule/hygiene/inventory-mail/addresses.lock.yml.
ACTIVE = f"annv.skhcn@{DOMAIN}"
OTHER = f"binhtt.skhcn@{DOMAIN}"
OPERATORS = f"skhcn@{DOMAIN}"  # filter_operators_mailbox in molecule.yml

# ClamAV's standard test file and the second test signature of files/sonla-test.ndb.
EICAR = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
TEST_MALWARE = "SONLA-TEST-MALWARE-7F3A9C"
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

SET_PASSWORD = """
import sqlite3, sys
connection = sqlite3.connect("/var/lib/sonla-mail/users.sqlite", timeout=30)
with connection:
    changed = connection.execute(
        "UPDATE mailbox SET password = ?, must_change = 0, password_changed_at = datetime('now') WHERE address = ?",
        (sys.argv[1], sys.argv[2]),
    ).rowcount
assert changed == 1, sys.argv[2]
"""


def ssha512(password: str) -> str:
    salt = os.urandom(8)
    digest = hashlib.sha512(password.encode() + salt).digest()
    return "{SSHA512}" + base64.b64encode(digest + salt).decode()


@pytest.fixture(scope="session", autouse=True)
def known_passwords(host):
    """Give the test accounts a known password (the initial ones go to a handoff file only)."""
    for address in (ACTIVE, OTHER, OPERATORS):
        result = host.run("python3 -c %s %s %s", SET_PASSWORD, ssha512(PASSWORD), address)
        assert result.rc == 0, result.stderr


def message(
    to: str,
    subject: str,
    body: str = "Nội dung thử nghiệm.",
    sender: str = OUTSIDER,
    header_from: str | None = None,
    attachment: bytes | None = None,
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"Nguyễn Văn An <{header_from or sender}>"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = email.utils.formatdate(localtime=True)
    msg["Message-ID"] = f"<{uuid.uuid4()}@test.invalid>"
    msg.set_content(body)
    if attachment is not None:
        msg.add_attachment(attachment, maintype="application", subtype="octet-stream", filename="tailieu.bin")
    msg.envelope_sender = sender  # type: ignore[attr-defined]
    return msg


def smtp_send(ip: str, msg: EmailMessage, port: int = 25, login: str | None = None) -> tuple[int, str]:
    """Send one message like another mail server would (port 25) or a staff client (587); the final reply."""
    sender = getattr(msg, "envelope_sender", msg["From"].addresses[0].addr_spec)
    with smtplib.SMTP(ip, port, timeout=60) as smtp:
        smtp.ehlo("client.test.invalid")
        if login:
            smtp.starttls(context=tls_context())
            smtp.ehlo("client.test.invalid")
            smtp.login(login, PASSWORD)
        code, reply = smtp.mail(sender)
        if code >= 400:
            return code, reply.decode()
        code, reply = smtp.rcpt(msg["To"].addresses[0].addr_spec)
        if code >= 400:
            return code, reply.decode()
        code, reply = smtp.data(msg.as_bytes(policy=email.policy.SMTP))
        return code, reply.decode()


def imap_login(ip: str, address: str) -> imaplib.IMAP4_SSL:
    imap = imaplib.IMAP4_SSL(ip, 993, ssl_context=tls_context(), timeout=30)
    imap.login(address, PASSWORD)
    return imap


def find(ip: str, address: str, message_id: str, folder: str = "INBOX") -> email.message.Message | None:
    """The message with this Message-ID in the folder, or None."""
    imap = imap_login(ip, address)
    try:
        imap.select(folder, readonly=True)
        _, data = imap.search(None, "HEADER", "Message-ID", message_id)
        numbers = data[0].split()
        if not numbers:
            return None
        _, parts = imap.fetch(numbers[-1], "(BODY.PEEK[])")
        return email.message_from_bytes(parts[0][1], policy=email.policy.default)
    finally:
        imap.logout()


def copies(host, address: str, *query: str) -> int:
    """How many messages of the address's INBOX match a doveadm search query (works for every account state)."""
    found = host.run("doveadm search -u %s mailbox INBOX " + " ".join(["%s"] * len(query)), address, *query)
    assert found.rc == 0, found.stderr
    return len(found.stdout.splitlines())


@pytest.fixture()
def unique() -> str:
    return uuid.uuid4().hex[:8]
