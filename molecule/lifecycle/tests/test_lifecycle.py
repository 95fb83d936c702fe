# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The regulation's clocks walked through on a real server with injected dates (docs/lifecycle.md).

Day 0 is 91 days before today (UTC), so Dovecot's own clock (password age, R6.1b) agrees with the
injected days: today is day 91. The daily job (sonla-mail-lifecycle) runs with --now on days 76-121.
The tests run in file order and build on each other, as the days do.
"""

from __future__ import annotations

import base64
import email
import email.policy
import functools
import hashlib
import imaplib
import json
import os
import shutil
import smtplib
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest
import sonla_molecule
from sonla_molecule import assert_management_address_only, scrape, sql, submission, tls_context

DOMAIN = "sonla.gov.vn"
PASSWORD = "Kiem-tra#2025"  # test-only password, set below in the test container only
IDLE = f"nhanhv.skhcn@{DOMAIN}"  # R8.2a then R8.1
LEAVE = f"nghilt.skhcn@{DOMAIN}"  # notified leave (R8.2a)
EXPIRING = f"matqv.chiengmung@{DOMAIN}"  # R6.1b
RESTORED = f"phuccv.skhcn@{DOMAIN}"  # R8.2b, R8.3a-c
ACTIVE = f"hoatdv.skhcn@{DOMAIN}"  # the last-login hook
SENDER = f"guilv.chiengmung@{DOMAIN}"  # past the sending limits, suspended as compromised (R12.6, R8.2b)
AGENCY = f"skhcn@{DOMAIN}"  # the Department, also an agency (R7.3)
COMMUNE = f"chiengmung@{DOMAIN}"
COMMAND = "/usr/local/sbin/sonla-mail-lifecycle"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
TODAY = datetime.now(UTC).date()
DAY0 = TODAY - timedelta(days=91)


def day(number: int, clock: str = "02:00:00") -> str:
    return f"{DAY0 + timedelta(days=number)} {clock}"


def ssha512(password: str) -> str:
    salt = os.urandom(8)
    return "{SSHA512}" + base64.b64encode(hashlib.sha512(password.encode() + salt).digest() + salt).decode()


def row(host, address: str) -> dict | None:
    rows = sql(host, "SELECT * FROM mailbox WHERE address = ?", address)
    return rows[0] if rows else None


def lifecycle(host, number: int, *flags: str, rc: int = 0) -> dict:
    result = host.run(f"{COMMAND} --now %s {' '.join(flags)}", day(number))
    assert result.rc == rc, (result.stdout, result.stderr)
    return {**json.loads(result.stdout), "stderr": result.stderr}


ALERT_FILE = "/var/lib/sonla-mail/lifecycle.alerts"


def messages(host, address: str) -> list[email.message.EmailMessage]:
    """The INBOX's messages as Dovecot serves them, whatever the storage format."""
    found = []
    for line in host.run("doveadm search -u %s mailbox INBOX ALL", address).stdout.splitlines():
        uid = line.split()[1]
        text = host.run("doveadm fetch -u %s text mailbox INBOX uid %s", address, uid).stdout_bytes
        found.append(email.message_from_bytes(text.removeprefix(b"text:\n"), policy=email.policy.default))
    return found


def texts(host, address: str) -> list[str]:
    return [f"{m['Subject']}\n{m.get_body(('plain',)).get_content() if m.get_body(('plain',)) else ''}"
            for m in messages(host, address)]


# The lifecycle's mail goes through cron-like runs and doveadm reads: a longer, slower poll.
wait_for = functools.partial(sonla_molecule.wait_for, timeout=60, interval=1)


def wait_text(host, address: str, *needles: str) -> str:
    def found():
        return next((text for text in texts(host, address) if all(needle in text for needle in needles)), None)
    return wait_for(found, f"a mail to {address} with {needles}")


def imap_refusal(ip: str, address: str) -> str:
    imap = imaplib.IMAP4_SSL(ip, 993, ssl_context=tls_context(), timeout=30)
    try:
        imap.login(address, PASSWORD)
    except imaplib.IMAP4.error as refused:
        text = refused.args[0]
        return text.decode() if isinstance(text, bytes) else str(text)
    finally:
        imap.shutdown()
    pytest.fail(f"{address} logged in")


def send(ip: str, to: str, subject: str) -> tuple[int, str]:
    message = EmailMessage()
    message["From"] = "Người gửi <sender@example.test>"
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = f"<{uuid.uuid4()}@test.invalid>"
    message.set_content("Nội dung thử nghiệm.")
    with smtplib.SMTP(ip, 25, timeout=30) as smtp:
        smtp.ehlo("client.test.invalid")
        smtp.mail("sender@example.test")
        code, reply = smtp.rcpt(to)
        if code >= 400:
            return code, reply.decode()
        code, reply = smtp.data(message.as_bytes())
        return code, message["Message-ID"]


def snapshot(host) -> tuple:
    mailboxes = sql(host, "SELECT * FROM mailbox ORDER BY address")
    events = sql(host, "SELECT count(*) AS n FROM mailbox_event")[0]["n"]
    # Message files: u.<uid> in sdbox, new/ and cur/ in maildir.
    files = host.run("find /var/vmail -type f \\( -name 'u.*' -o -path '*/new/*' -o -path '*/cur/*' \\) | wc -l").stdout.strip()
    return mailboxes, events, files


def playbook(ansible_inventory: str, path: str, *extra: str) -> str:
    result = subprocess.run(
        ["ansible-playbook", "-i", ansible_inventory, path, *extra],
        capture_output=True, text=True, timeout=1200, check=False, env={**os.environ},
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return result.stdout


@pytest.fixture(scope="module", autouse=True)
def day_zero(host):
    """Day 0: every test account has a known password set and was used that morning."""
    password = ssha512(PASSWORD)
    sql(host, "UPDATE mailbox SET password = ?, must_change = 0, created_at = ?, last_login_at = ?, password_changed_at = ?"
        " WHERE kind = 'person'", password, day(0, "08:00:00"), day(0, "09:00:00"), day(0, "09:00:00"))
    sql(host, "UPDATE mailbox SET last_login_at = ? WHERE address = ?", day(85, "10:00:00"), EXPIRING)
    sql(host, "UPDATE mailbox SET last_login_at = ? WHERE address = ?", day(88, "10:00:00"), RESTORED)
    for address in (ACTIVE, SENDER):
        sql(host, "UPDATE mailbox SET last_login_at = ?, password_changed_at = datetime('now') WHERE address = ?",
            day(80, "10:00:00"), address)


def test_real_logins_are_recorded_as_last_login(host, server_ip):
    """Item 1 (R8.2a): an IMAP login writes last_login_at through Dovecot's post-login hook."""
    assert "postlogin" in host.run("doveconf -n").stdout
    imap = imaplib.IMAP4_SSL(server_ip, 993, ssl_context=tls_context(), timeout=30)
    imap.login(ACTIVE, PASSWORD)
    imap.logout()
    last = wait_for(lambda: (row(host, ACTIVE)["last_login_at"] or "") >= f"{TODAY}", "last_login_at of today")
    assert last


def test_check_mode_previews_day_91_and_changes_nothing(host):
    before = snapshot(host)
    preview = lifecycle(host, 91, "--check")
    assert [a["address"] for a in preview["suspended"]] == [IDLE]
    assert [a["address"] for a in preview["on_leave"]] == [LEAVE]
    assert EXPIRING in [a["address"] for a in preview["password_expired"]]
    assert {n["to"] for n in preview["notices"]} >= {AGENCY, COMMUNE, EXPIRING}
    time.sleep(3)
    assert snapshot(host) == before


def test_the_lifecycle_playbook_in_check_mode_previews_without_change(host, ansible_inventory):
    before = snapshot(host)
    out = playbook(ansible_inventory, f"{ROOT}/playbooks/lifecycle.yml", "--check", "--diff", "-e", f"lifecycle_now='{day(91)}'")
    assert IDLE in out and "state=suspended by lifecycle" in out
    time.sleep(3)
    assert snapshot(host) == before


def test_password_reminders_on_days_77_84_90(host):
    """R6.1b: reminders 14, 7 and 1 days before the expiry on day 91, each once, to the user."""
    assert EXPIRING not in [a["address"] for a in lifecycle(host, 76)["password_reminders"]]
    for number, days in ((77, 14), (84, 7), (90, 1)):
        result = lifecycle(host, number)
        (reminder,) = [a for a in result["password_reminders"] if a["address"] == EXPIRING]
        # Set on day 0 at 09:00, refused from day 90 at 09:00 (_regulation.password_expires_at, as Dovecot).
        assert reminder["days"] == days and reminder["expires_at"] == day(90, "09:00:00")
        assert lifecycle(host, number)["password_reminders"] == []  # never twice
    wait_for(lambda: len([t for t in texts(host, EXPIRING) if "sắp hết hạn" in t]) == 3, "three reminders")


def test_day_91_an_impossible_leave_date_is_reported_for_that_entry_only(host):
    """Issue 10 item 5: an unreadable leave_until stops nothing else; that entry is not suspended (safe side)."""
    config = json.loads(host.file("/etc/sonla-mail/lifecycle.json").content_string)
    config["mailboxes"] = [dict(m, leave_until="2027-02-30") if m["address"] == LEAVE else m for m in config["mailboxes"]]
    written = host.run("python3 -c %s %s", "import sys; open('/tmp/bad-leave.json', 'w').write(sys.argv[1])",
                       json.dumps(config))
    assert written.rc == 0, written.stderr
    result = lifecycle(host, 91, "--check", "--config", "/tmp/bad-leave.json", rc=3)
    assert [(p["address"], p["field"]) for p in result["problems"]] == [(LEAVE, "leave_until")]
    assert [a["address"] for a in result["suspended"]] == [IDLE]
    assert "ERROR sonla-mail-lifecycle" in result["stderr"] and LEAVE in result["stderr"]


def test_day_91_a_hit_idle_cap_holds_idle_suspensions_alerts_and_the_rest_is_done(host):
    """Issue 11, R8.2a: past the cap no idle suspension is done; error line, alert file, exit code 3 and the
    Department's summary say so; the password expiry of the same run is recorded all the same (R6.1b)."""
    result = lifecycle(host, 91, "--max-idle-suspensions", "0", rc=3)
    assert result["held"]["suspended"] == [IDLE] and result["suspended"] == []
    assert row(host, IDLE)["state"] == "active"
    assert EXPIRING in [a["address"] for a in result["password_expired"]]  # the rest of the run
    assert "ERROR sonla-mail-lifecycle" in result["stderr"] and "max_idle_suspensions_per_run=0" in result["stderr"]
    assert host.file(ALERT_FILE).content_string.splitlines()[0] == "1"
    wait_text(host, AGENCY, "ALERT", "max_idle_suspensions_per_run=0", IDLE)


def test_day_91_everyone_idle_after_a_broken_hook_the_policy_cap_suspends_nobody(host):
    """Issue 18, R8.2a: a broken last-login hook leaves every last login on day 0, so on day 91 every person
    looks idle. On a copy of the user database, with the policy's cap below their number, the real run
    suspends nobody, names them all as held, and alerts (exit 3, the alert file)."""
    config = json.loads(host.file("/etc/sonla-mail/lifecycle.json").content_string)
    copy = "/tmp/everyone-idle.sqlite"
    host.run_expect([0], "sqlite3 %s %s", config["database"], f".backup {copy}")
    host.run_expect([0], "sqlite3 %s %s", copy, f"UPDATE mailbox SET last_login_at = '{day(0, '09:00:00')}'")
    people = [r["address"] for r in sql(host, "SELECT address FROM mailbox WHERE kind = 'person' AND state = 'active'")]
    assert len(people) > 3
    config.update(database=copy, notify=False, alert_file="/tmp/everyone-idle.alerts", max_idle_suspensions=None,
                  mailboxes=[], policy={**config.get("policy", {}), "max_idle_suspensions_per_run": 3})
    written = host.run("python3 -c %s %s", "import sys; open('/tmp/everyone-idle.json', 'w').write(sys.argv[1])",
                       json.dumps(config))
    assert written.rc == 0, written.stderr
    result = lifecycle(host, 91, "--config", "/tmp/everyone-idle.json", rc=3)
    assert result["suspended"] == [] and sorted(result["held"]["suspended"]) == sorted(people)
    assert f"{len(people)} idle suspensions (R8.2a) due, more than max_idle_suspensions_per_run=3" in result["stderr"]
    assert host.file("/tmp/everyone-idle.alerts").content_string.splitlines()[0] == "1"
    states = host.run_expect([0], "sqlite3 %s %s", copy, "SELECT DISTINCT state FROM mailbox WHERE kind = 'person'")
    assert states.stdout.split() == ["active"]


def test_day_91_idle_suspended_still_receiving_leave_kept_password_expired(host, server_ip):
    result = lifecycle(host, 91)
    assert [a["address"] for a in result["suspended"]] == [IDLE]  # R8.2a
    assert row(host, IDLE)["state"] == "suspended" and row(host, IDLE)["suspended_by"] == "lifecycle"
    assert row(host, LEAVE)["state"] == "active"  # notified leave (R8.2a)
    # Reported once, by the capped run above (R6.1b).
    assert sql(host, "SELECT count(*) AS n FROM mailbox_event WHERE address = ? AND action = 'password_expired'",
               EXPIRING) == [{"n": 1}]
    assert host.file(ALERT_FILE).content_string.splitlines()[0] == "0"  # a clean run clears the alert
    assert not lifecycle(host, 91)["changed"]

    assert "Mailbox suspended" in imap_refusal(server_ip, IDLE)  # R8.1: no access...
    code, message_id = send(server_ip, IDLE, "Vẫn nhận thư khi bị tạm khóa")
    assert code == 250
    wait_for(lambda: any(m["Message-ID"] == message_id for m in messages(host, IDLE)), "delivery to the suspended mailbox")

    assert "Password expired" in imap_refusal(server_ip, EXPIRING)  # R6.1b: refused with the reason...
    code, message_id = send(server_ip, EXPIRING, "Vẫn nhận thư khi mật khẩu hết hạn")
    assert code == 250  # ...mail still delivered
    wait_for(lambda: any(m["Message-ID"] == message_id for m in messages(host, EXPIRING)), "delivery after expiry")

    wait_text(host, AGENCY, "Thông báo kết quả", IDLE, "Tạm khóa", "R8.2a")  # R7.3 notices
    wait_text(host, COMMUNE, "Thông báo kết quả", EXPIRING, "Mật khẩu hết hạn")
    wait_text(host, AGENCY, "Tổng hợp", "Xã Chiềng Mung")
    wait_text(host, EXPIRING, "đã hết hạn")


def test_operator_suspension_through_the_playbook(host, server_ip, ansible_inventory):
    """R8.2b: a playbook variable suspends a compromised account with the reason."""
    extra = json.dumps({"lifecycle_suspend": [{"address": RESTORED, "cause": "compromised", "reason": "Lộ mật khẩu (kiểm thử)"}]})
    playbook(ansible_inventory, f"{ROOT}/playbooks/lifecycle.yml", "-e", extra)
    suspended = row(host, RESTORED)
    assert (suspended["state"], suspended["suspended_by"]) == ("suspended", "operator")
    assert "Account compromised: Lộ mật khẩu (kiểm thử)" in imap_refusal(server_ip, RESTORED)


def submit(ip: str, port: int, recipients: list[str], subject: str) -> tuple[int, str]:
    """One message from SENDER on a submission port (587 STARTTLS, 465 TLS): the reply to its end of data."""
    message = EmailMessage()
    message["From"] = SENDER
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject
    message.set_content("Thử giới hạn gửi thư.")
    with submission(ip, port) as smtp:
        smtp.login(SENDER, PASSWORD)
        smtp.mail(SENDER)
        for recipient in recipients:
            assert smtp.rcpt(recipient)[0] == 250
        code, reply = smtp.data(message.as_bytes())
        return code, reply.decode()


_POLICY_PROBE = r"""
import json, socket, sys, time
def ask(stream, user):
    start = time.perf_counter()
    stream.sendall(("request=smtpd_access_policy\nprotocol_state=END-OF-MESSAGE\nsasl_username=%s\n"
                    "recipient_count=1\n\n" % user).encode())
    answer = b""
    while not answer.endswith(b"\n\n"):
        answer += stream.recv(4096)
    return time.perf_counter() - start, answer.decode().strip()
stream = socket.socket(socket.AF_UNIX)
stream.connect("/var/spool/postfix/private/sonla_limits")
first = ask(stream, "probe@invalid")
rest = sorted(ask(stream, "probe-%d@invalid" % n)[0] for n in range(50))
print(json.dumps({"first": first[0], "answer": first[1], "median": rest[25], "max": rest[-1]}))
"""


def test_a_policy_decision_is_fast(host):
    """R12.6 costs little: a new connection starts Python once (spawn), then each decision is one SQLite
    transaction. Measured on the real service socket; the numbers are in docs/limits.md."""
    result = host.run("python3 -c %s", _POLICY_PROBE)
    assert result.rc == 0, result.stderr
    timing = json.loads(result.stdout)
    print(f"policy service: first answer {timing['first'] * 1000:.0f} ms (with Python's start), "
          f"then median {timing['median'] * 1000:.1f} ms, max {timing['max'] * 1000:.1f} ms")
    assert timing["answer"] == "action=DUNNO"
    assert timing["first"] < 2 and timing["median"] < 0.05


def test_sending_limits_defer_then_suspend_as_compromised(host, server_ip):
    """R12.6: past 3 recipients or 4 messages an hour (the scenario's policy) the message gets 4xx with the
    reason in Vietnamese and English; R8.2b: the 3rd refusal within the hour suspends the account as
    compromised, like an operator would, and the agency and the operators are told."""
    others = [ACTIVE, LEAVE, EXPIRING]
    assert submit(server_ip, 587, [SENDER, *others[:2]], "Gửi 3 người")[0] == 250
    code, reply = submit(server_ip, 587, [SENDER, *others], "Gửi 4 người")
    assert code == 452 and "Qua nhieu nguoi nhan: 4, toi da 3" in reply and "Too many recipients" in reply, reply
    for number in (2, 3, 4):
        assert submit(server_ip, 465 if number == 3 else 587, [SENDER], f"Thư {number}")[0] == 250
    code, reply = submit(server_ip, 587, [SENDER], "Thư 5")
    assert code == 450 and "Da gui 4 thu trong mot gio" in reply and "per hour" in reply, reply
    assert row(host, SENDER)["state"] == "active"  # two refusals: a person who stops is not suspended
    code, reply = submit(server_ip, 465, [SENDER], "Thư 6")
    assert code == 450, reply

    suspended = wait_for(lambda: (r := row(host, SENDER))["state"] == "suspended" and r, "the automatic suspension")
    assert suspended["suspended_by"] == "lifecycle"
    assert suspended["suspended_reason"].startswith("Tài khoản bị xâm nhập (R8.2b) / Account compromised: tự động")
    (event,) = sql(host, "SELECT detail, request_ref FROM mailbox_event WHERE address = ? AND action = 'suspended'", SENDER)
    assert "cause=compromised" in event["detail"] and event["request_ref"] == "1/TEST"
    assert "Account compromised" in imap_refusal(server_ip, SENDER)  # IMAP refuses it...
    with pytest.raises(smtplib.SMTPAuthenticationError):
        submit(server_ip, 587, [SENDER], "Sau khi bị khóa")  # ...and so does submission
    code, message_id = send(server_ip, SENDER, "Vẫn nhận thư khi bị khóa tự động")
    assert code == 250  # ...but it still receives mail (R8.1)
    wait_for(lambda: any(m["Message-ID"] == message_id for m in messages(host, SENDER)), "delivery to the suspended sender")
    wait_text(host, COMMUNE, "Thông báo kết quả", SENDER, "Account compromised")  # the agency (R7.3)
    wait_text(host, AGENCY, "CẢNH BÁO", SENDER, "suspended automatically as compromised")  # the operators


def test_converge_restores_on_request_and_keeps_the_lifecycle_suspension(host, server_ip, ansible_inventory, scenario,
                                                                         tmp_path):
    """R8.3a-c: a restore request newer than the suspension lifts it and forces a new password; an older
    one does not, and a converge never quietly undoes the lifecycle's suspension."""
    inventory = tmp_path / "inventory-mail"
    shutil.copytree(f"{scenario}/inventory-mail", inventory)
    people = inventory / "people" / "test.yml"
    text = people.read_text(encoding="utf-8")
    newer = f'    restore: {{request: "45/QĐ-SKHCN", date: {TODAY}}}'
    older = f'    restore: {{request: "3/QĐ-SKHCN", date: {DAY0}}}'
    text = text.replace("    name: Cà Văn Phục", f"    name: Cà Văn Phục\n{newer}")
    text = text.replace("    name: Hoàng Văn Nhàn", f"    name: Hoàng Văn Nhàn\n{older}")
    text = text.replace("    name: Lò Văn Gửi", f'    name: Lò Văn Gửi\n    restore: {{request: "46/QĐ-UBND", date: {TODAY}}}')
    people.write_text(text, encoding="utf-8")
    playbook(ansible_inventory, f"{scenario}/converge.yml", "-e", f"sonla_mail_inventory_path={inventory}")

    restored = row(host, RESTORED)
    assert (restored["state"], restored["must_change"]) == ("active", 1)  # R8.3c
    events = sql(host, "SELECT request_ref FROM mailbox_event WHERE address = ? AND action = 'restored'", RESTORED)
    assert events == [{"request_ref": "45/QĐ-SKHCN"}]
    assert "Change your password" in imap_refusal(server_ip, RESTORED)
    # The automatic suspension is lifted the same way, with the same forced change (R8.2b, R8.3c).
    assert (row(host, SENDER)["state"], row(host, SENDER)["must_change"]) == ("active", 1)
    assert "Change your password" in imap_refusal(server_ip, SENDER)
    assert row(host, IDLE)["state"] == "suspended"  # the older request does not lift it
    wait_text(host, AGENCY, RESTORED, "45/QĐ-SKHCN", "R8.3c")
    wait_text(host, AGENCY, IDLE, "3/QĐ-SKHCN", "Không thực hiện")


def test_day_114_the_agency_is_warned(host):
    result = lifecycle(host, 114)
    assert [(a["address"], a["revoke_on"]) for a in result["revocation_warnings"]] == [(IDLE, str(DAY0 + timedelta(days=121)))]
    wait_text(host, AGENCY, "Sắp thu hồi", IDLE, str(DAY0 + timedelta(days=121)))


def test_day_121_check_previews_then_revocation_deletes_mailbox_and_mail(host, server_ip):
    """R8.1, R7.2: revoked 30 days after the suspension; the mailbox and its mail are gone."""
    before = snapshot(host)
    assert lifecycle(host, 121, "--check")["revoked"] == [IDLE]
    assert snapshot(host) == before and host.file(f"/var/vmail/{DOMAIN}/nhanhv.skhcn").is_directory

    assert lifecycle(host, 121)["revoked"] == [IDLE]
    assert row(host, IDLE) is None
    assert not host.file(f"/var/vmail/{DOMAIN}/nhanhv.skhcn").exists
    code, reply = send(server_ip, IDLE, "Sau khi thu hồi")
    assert code == 550, reply
    wait_text(host, AGENCY, "Đã thu hồi", IDLE)
    assert row(host, LEAVE)["state"] == "active"


def test_a_converge_after_the_revocation_does_not_recreate_it(host, ansible_inventory, scenario):
    """R7.2: revocation is final; the converge refuses and the agency is told why (R7.3). The list that named the
    person leaves them out, and the list's agency is told so (issue 17)."""
    playbook(ansible_inventory, f"{scenario}/converge.yml")
    assert row(host, IDLE) is None
    wait_text(host, AGENCY, IDLE, "R7.2", "Không thực hiện")
    wait_text(host, AGENCY, IDLE, f"danh sách / list canbo.skhcn@{DOMAIN}: hộp thư đã bị thu hồi")
    assert sql(host, "SELECT member FROM alias_member WHERE alias = ?", f"canbo.skhcn@{DOMAIN}") == [
        {"member": f"hoatdv.skhcn@{DOMAIN}"}]


def test_every_lifecycle_event_carries_a_request_reference(host):
    """R11.2: the agency's list of requests ties each lifecycle event to a request reference."""
    events = sql(host, "SELECT address, action FROM mailbox_event WHERE action IN"
                 " ('suspended', 'revocation_warning', 'revoked', 'password_reminder', 'password_expired')"
                 " AND request_ref IS NULL")
    assert events == []
    assert sql(host, "SELECT count(*) AS n FROM mailbox_event WHERE action = 'revoked' AND request_ref = '1/TEST'") == [{"n": 1}]


def test_log_retention_comes_from_the_policy(host):
    """R9.1: the policy's log_retention_days (184) reaches the lifecycle log's rotation."""
    text = host.file("/etc/logrotate.d/sonla-mail-lifecycle").content_string
    assert "rotate 184" in text and "maxage 184" in text


# --- operations visibility (issue 18, R10.2a; docs/monitoring.md) ------------------------------------------

HEALTH = "/usr/local/sbin/sonla-mail-health"
METRICS = "/var/lib/prometheus/node-exporter/sonla_mail.prom"
LAST_LOGIN_HOOK = "/usr/local/lib/sonla-mail/dovecot-last-login"


def health(host) -> tuple[int, dict[str, str]]:
    """The health check's exit code and each check's status (OK, FAIL, -), from its table."""
    result = host.run(f"{HEALTH} --textfile")
    assert result.rc in (0, 1), result.stderr
    lines = result.stdout.splitlines()[1:]
    return result.rc, {line[8:].split("  ")[0]: line.split()[0] for line in lines}


def imap_login(ip: str, address: str) -> None:
    imap = imaplib.IMAP4_SSL(ip, 993, ssl_context=tls_context(), timeout=30)
    imap.login(address, PASSWORD)
    imap.logout()


def metric(host, name: str) -> float:
    samples = dict(line.rsplit(" ", 1) for line in host.file(METRICS).content_string.splitlines()
                   if not line.startswith("#"))
    return float(samples[name])


def test_the_health_check_is_green_on_a_working_server(host, server_ip):
    """R10.2a: after the walk-through (a recent login, a clean lifecycle run), every check passes."""
    assert lifecycle(host, 121)["alerts"] == []  # the last simulated day again: nothing due, the file cleared
    imap_login(server_ip, ACTIVE)
    code, checks = health(host)
    assert code == 0, checks
    assert checks["service dovecot"] == "OK" and checks["last backup"] == "-"  # no backup configured here
    assert {"mail queue", "disk /", "lifecycle run", "last login recorded", "last-login hook",
            "certificate /etc/ssl/sonla-mail/mail.crt"} <= set(checks)
    assert metric(host, 'sonla_mail_service_up{service="dovecot"}') == 1 and metric(host, "sonla_mail_healthy") == 1


def test_the_exporters_answer_with_the_expected_metrics_on_the_management_address_only(host, server_ip):
    """R10.2a: node-exporter serves the machine's and the health check's metrics, Dovecot its logins, nginx's
    exporter nginx's counters; all listen on monitoring_listen_address (127.0.0.1 here), not on the address the
    mail clients reach, and nginx's stub_status only on loopback."""
    with pytest.raises(imaplib.IMAP4.error):
        imaplib.IMAP4_SSL(server_ip, 993, ssl_context=tls_context(), timeout=30).login(ACTIVE, "wrong password")
    node = scrape(host, 9100)
    for name in ("node_filesystem_avail_bytes", "node_textfile_mtime_seconds", 'sonla_mail_service_up{service="dovecot"} 1',
                 "sonla_mail_last_login_failures_total", "sonla_mail_lifecycle_last_run_timestamp_seconds"):
        assert name in node, name
    dovecot = scrape(host, 9900)
    assert "dovecot_auth_successes_total" in dovecot and "dovecot_build_info" in dovecot
    refused = [line for line in dovecot.splitlines() if line.startswith("dovecot_auth_failures_total ")]
    assert refused and float(refused[0].split()[1]) >= 1
    nginx = {line.split()[0]: float(line.split()[1]) for line in scrape(host, 9113).splitlines()
             if line.startswith("nginx_") and "{" not in line}
    assert nginx["nginx_up"] == 1 and nginx["nginx_connections_active"] >= 1 and nginx["nginx_http_requests_total"] >= 1
    assert_management_address_only(host, server_ip, 9100, 9900, 9113, 8080)  # 8080: stub_status, loopback only


def test_stopping_dovecot_turns_the_health_playbook_red_naming_dovecot_and_mails_the_operators(
        host, ansible_inventory):
    """R10.2a: the operator's playbook fails on the host, names Dovecot, and the operators get the table."""
    host.run_expect([0], "service dovecot stop")
    try:
        result = subprocess.run(["ansible-playbook", "-i", ansible_inventory, f"{ROOT}/playbooks/health.yml"],
                                capture_output=True, text=True, timeout=600, check=False, env={**os.environ})
        assert result.returncode != 0, result.stdout[-3000:]
        code, checks = health(host)
        assert code == 1 and [name for name, status in checks.items() if status == "FAIL"] == ["service dovecot"]
        # ansible-core 2.19 writes the failed task's message to standard error
        assert "is not healthy (the operators were mailed): FAIL  service dovecot" in result.stdout + result.stderr
        assert metric(host, 'sonla_mail_service_up{service="dovecot"}') == 0
    finally:
        host.run_expect([0], "service dovecot start")
    host.run("postqueue -f")  # the mail waited for Dovecot's delivery
    wait_text(host, AGENCY, "Health check failed", "service dovecot", "FAIL")
    wait_for(lambda: health(host)[1]["service dovecot"] == "OK", "Dovecot back in the table")


def test_a_broken_last_login_hook_is_detected(host, server_ip):
    """R8.2a: the hook never blocks a login, so its failure is silent for the user; the health check, its
    metric (alert SonlaMailLastLoginWritesFailing) and Dovecot's log show it."""
    original = host.file(LAST_LOGIN_HOOK).content_string
    before = metric(host, "sonla_mail_last_login_failures_total")
    host.run_expect([0], "sed -i %s %s", 's|^DATABASE = "|DATABASE = "/nonexistent|', LAST_LOGIN_HOOK)
    try:
        sql(host, "UPDATE mailbox SET last_login_at = NULL WHERE address = ?", ACTIVE)  # the hook's write is due
        imap_login(server_ip, ACTIVE)
        wait_for(lambda: health(host)[1]["last-login hook"] == "FAIL", "the health check to see the failure")
        assert health(host)[0] == 1
        assert metric(host, "sonla_mail_last_login_failures_total") == before + 1
        assert row(host, ACTIVE)["last_login_at"] is None  # really not recorded
    finally:
        host.run_expect([0], "sed -i %s %s", 's|^DATABASE = "/nonexistent|DATABASE = "|', LAST_LOGIN_HOOK)
    assert host.file(LAST_LOGIN_HOOK).content_string == original
    imap_login(server_ip, ACTIVE)
    wait_for(lambda: row(host, ACTIVE)["last_login_at"] is not None, "the repaired hook to record the login")
