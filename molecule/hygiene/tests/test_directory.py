# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Aliases and lists, the directory export and the welcome mail (issue 17), against the converged server.

inventory-mail/aliases.yml: canbo.skhcn (every person of the department, the suspended one included),
vanthu.skhcn (a role address) and lanhdao.skhcn, which names both lists and the department's mailbox.
By the time these run, site.yml has converged twice (converge, idempotence).
"""

from __future__ import annotations

import email
import email.policy
import json
import re

from conftest import ACTIVE, DOMAIN, copies, imap_login, message, smtp_send
from sonla_molecule import sql, wait_for

PEOPLE = [f"{local}.skhcn@{DOMAIN}" for local in ("annv", "binhtt", "chienlv", "dungct", "emdv")]
LEADERS = f"lanhdao.skhcn@{DOMAIN}"
EXPORT = "/var/lib/sonla-mail/directory"


def test_a_message_to_a_list_of_lists_reaches_every_member_once(host, server_ip, unique):
    """Each person of the department (the suspended one too, R8.1) and the department's mailbox, once each,
    though lanhdao names annv.skhcn three times over (through vanthu and canbo)."""
    msg = message(LEADERS, f"Họp giao ban {unique}")
    code, reply = smtp_send(server_ip, msg)
    assert code == 250, (code, reply)
    members = [*PEOPLE, f"skhcn@{DOMAIN}"]
    wait_for(lambda: all(copies(host, member, "header", "Message-ID", msg["Message-ID"]) for member in members),
             "the message in every member's INBOX")
    assert host.run("postqueue -j").stdout.strip() == ""  # nothing left to deliver, so no later copy
    assert {member: copies(host, member, "header", "Message-ID", msg["Message-ID"]) for member in members} == dict.fromkeys(
        members, 1)


def test_postfix_refuses_an_address_that_is_no_mailbox_and_no_alias(server_ip, unique):
    code, reply = smtp_send(server_ip, message(f"khongco.skhcn@{DOMAIN}", f"Không có {unique}"))
    assert code == 550, (code, reply)


def test_the_directory_export_lists_mailboxes_and_aliases_without_secrets_or_suspensions(host):
    exported = json.loads(host.file(f"{EXPORT}/directory.json").content_string)
    assert (exported["schema"], exported["version"], exported["domain"]) == ("sonla.mail.directory", 1, DOMAIN)
    listed = {entry["address"]: entry for entry in exported["mailboxes"]}
    assert set(PEOPLE) <= set(listed)  # the suspended chienlv.skhcn too: it still receives, and is not singled out
    assert listed[ACTIVE] == {"address": ACTIVE, "kind": "person", "display_name": "Nguyễn Văn An", "organization": "skhcn",
                              "organization_name": "Sở Khoa học và Công nghệ", "agency": "skhcn",
                              "agency_name": "Sở Khoa học và Công nghệ"}
    assert {alias["address"] for alias in exported["aliases"]} == {
        *(f"{local}.skhcn@{DOMAIN}" for local in ("canbo", "vanthu", "lanhdao")), f"dang_van_em@{DOMAIN}"}
    exported_text = host.file(f"{EXPORT}/directory.csv").content_string
    both = exported_text + json.dumps(exported, ensure_ascii=False)
    for secret_or_state in ("SSHA512", "BLF-CRYPT", "password", "suspend", "Lộ mật khẩu", "must_change", "login"):
        assert secret_or_state not in both
    assert exported_text.startswith("address,type,kind,display_name,organization,organization_name,agency,agency_name")


def test_the_welcome_mail_arrived_once_signed_with_the_rules(host, server_ip):
    welcomed = {row["address"] for row in sql(host, "SELECT address FROM welcome_mail")}
    assert {*PEOPLE, f"skhcn@{DOMAIN}"} <= welcomed
    for address in PEOPLE:
        assert copies(host, address, "header", "Subject", "Welcome to the") == 1, address
    imap = imap_login(server_ip, ACTIVE)
    try:
        imap.select("INBOX", readonly=True)
        _, data = imap.search(None, "SUBJECT", '"Welcome to the"')
        [number] = data[0].split()
        _, parts = imap.fetch(number, "(BODY.PEEK[])")
    finally:
        imap.logout()
    raw = parts[0][1]
    assert re.search(rb"^DKIM-Signature:(.|\r?\n\s)*\bd=" + re.escape(DOMAIN.encode()) + rb";", raw, re.MULTILINE), raw[:600]
    welcome = email.message_from_bytes(raw, policy=email.policy.default)
    assert welcome["Auto-Submitted"] == "auto-generated"
    body = welcome.get_content()
    for needed in ("bí mật nhà nước", "R3.3", "R12.4", "R12.5", "--- English ---", "one-time password",
                   "hotro.skhcn@sonla.gov.vn", f"https://mail.{DOMAIN}"):  # the policy's support_contact (R10.1d)
        assert needed in body, needed


def test_the_welcome_job_sends_what_a_converge_left_once(host):
    """A converge sends at most mailboxes_welcome_max_mails; cron's welcome job sends the rest (issue 19). Two
    mailboxes made owed again get their mail from the job, recorded so that the next run sends nothing."""
    owed = [f"skhcn@{DOMAIN}", PEOPLE[-1]]  # PEOPLE's single welcome was counted above, before this test
    assert set(owed) <= {row["address"] for row in sql(host, "SELECT address FROM welcome_mail")}
    before = {address: copies(host, address, "header", "Subject", "Welcome to the") for address in owed}
    sql(host, "DELETE FROM welcome_mail WHERE address IN (?, ?)", *owed)
    assert host.file("/etc/cron.d/sonla-mail-welcome").contains(r"^\*/5 \* \* \* \* root /usr/local/sbin/sonla-mail-welcome")
    run = host.run("/usr/local/sbin/sonla-mail-welcome")
    assert run.rc == 0, run.stderr
    assert json.loads(run.stdout) == {"welcomed": 2, "pending": 0, "errors": []}
    assert set(owed) <= {row["address"] for row in sql(host, "SELECT address FROM welcome_mail")}
    wait_for(lambda: all(copies(host, a, "header", "Subject", "Welcome to the") == before[a] + 1 for a in owed),
             "the job's welcome mails in their INBOX")
    again = host.run("/usr/local/sbin/sonla-mail-welcome")
    assert (again.rc, again.stdout) == (0, "")
