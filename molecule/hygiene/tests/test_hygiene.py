# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""End-to-end tests of the mail filter (docs/filter.md) with real SMTP and IMAP clients.

Every client connects from the host to the container's own IP address, so it is an outside client,
not one of the server's trusted networks (loopback).
"""

from __future__ import annotations

import base64
import email.policy
import re
import smtplib

import pytest
from conftest import (
    ACTIVE,
    DOMAIN,
    EICAR,
    GTUBE,
    MAIL_LOG,
    OPERATORS,
    OTHER,
    TEST_MALWARE,
    find,
    imap_login,
    message,
    smtp_send,
)
from sonla_molecule import assert_management_address_only, http_get, rspamd_learned, scrape, wait_for


def delivered(server_ip, address, msg, folder="INBOX", timeout=30):
    return wait_for(
        lambda: find(server_ip, address, msg["Message-ID"], folder), f"{msg['Message-ID']} in {address}/{folder}", timeout=timeout
    )


# --- Viruses (R4.2, R10.2b, R9.1) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "signature"),
    [
        (EICAR, "Sonla.Test.EICAR"),
        (TEST_MALWARE, "Sonla.Test.Malware-7F3A9C"),
    ],
)
def test_infected_mail_is_refused_and_logged(host, server_ip, payload, signature, unique):
    msg = message(ACTIVE, f"Virus {unique}", attachment=payload.encode())
    code, reply = smtp_send(server_ip, msg)
    assert 500 <= code < 600, (code, reply)
    assert signature in reply, reply
    assert "ma doc" in reply and "malware" in reply, reply  # says why, in Vietnamese and English
    log = host.file(MAIL_LOG).content_string
    assert re.search(rf"milter-reject: END-OF-MESSAGE .*{re.escape(signature)}", log), "signature not in the mail log"
    assert find(server_ip, ACTIVE, msg["Message-ID"]) is None
    assert find(server_ip, ACTIVE, msg["Message-ID"], "Junk") is None


# --- Spam -----------------------------------------------------------------------------------------


def test_gtube_is_refused(server_ip, unique):
    code, reply = smtp_send(server_ip, message(ACTIVE, f"GTUBE {unique}", body=f"Quảng cáo\n{GTUBE}\n"))
    assert 500 <= code < 600, (code, reply)


def test_clean_mail_reaches_the_inbox(server_ip, unique):
    msg = message(ACTIVE, f"Công văn {unique}", body="Kính gửi Sở, xin gửi lịch họp tuần sau.")
    code, reply = smtp_send(server_ip, msg)
    assert code == 250, (code, reply)
    got = delivered(server_ip, ACTIVE, msg)
    assert got["X-Spam-Status"].startswith("No"), got["X-Spam-Status"]
    assert got["Authentication-Results"], "no Authentication-Results header"


def test_mail_between_the_thresholds_is_filed_in_junk(server_ip, unique):
    """junk.example.net scores filter_junk_sender_score (molecule.yml): above junk, below reject."""
    msg = message(ACTIVE, f"Khuyến mãi {unique}", sender="ads@junk.example.net")
    code, reply = smtp_send(server_ip, msg)
    assert code == 250, (code, reply)
    got = delivered(server_ip, ACTIVE, msg, folder="Junk")
    assert got["X-Spam-Status"].startswith("Yes"), got["X-Spam-Status"]
    assert find(server_ip, ACTIVE, msg["Message-ID"]) is None


# --- Forged own domain ----------------------------------------------------------------------------


@pytest.mark.parametrize("forged", ["envelope", "header"])
def test_outside_client_cannot_use_the_own_domain(server_ip, forged, unique):
    director = f"director@{DOMAIN}"
    if forged == "envelope":
        msg = message(ACTIVE, f"Giả mạo {unique}", sender=director)
    else:
        msg = message(ACTIVE, f"Giả mạo {unique}", header_from=director)
    code, reply = smtp_send(server_ip, msg)
    assert 500 <= code < 600, (code, reply)
    assert "Forged sender" in reply, reply
    assert find(server_ip, ACTIVE, msg["Message-ID"]) is None


def test_staff_send_as_themselves_after_authentication(server_ip, unique):
    msg = message(OTHER, f"Nội bộ {unique}", sender=ACTIVE)
    code, reply = smtp_send(server_ip, msg, port=587, login=ACTIVE)
    assert code == 250, (code, reply)
    delivered(server_ip, OTHER, msg)


# --- Role addresses -------------------------------------------------------------------------------


@pytest.mark.parametrize("local", ["postmaster", "abuse"])
def test_role_addresses_reach_the_operators(server_ip, local, unique):
    msg = message(f"{local}@{DOMAIN}", f"Báo cáo {local} {unique}")
    code, reply = smtp_send(server_ip, msg)
    assert code == 250, (code, reply)
    delivered(server_ip, OPERATORS, msg)


# --- Fail closed (R4.2) ---------------------------------------------------------------------------


@pytest.mark.parametrize("service", ["clamav-daemon", "rspamd"])
def test_mail_is_deferred_while_the_scanner_is_down(host, server_ip, service, unique):
    msg = message(ACTIVE, f"Hoãn {service} {unique}", body="Thư gửi khi bộ quét ngừng.")
    stop = host.run(f"service {service} stop")
    assert stop.rc == 0, stop.stdout + stop.stderr
    try:
        code, reply = smtp_send(server_ip, msg)
        assert 400 <= code < 500, (code, reply)  # deferred, never accepted unscanned
    finally:
        start = host.run(f"service {service} start")
        assert start.rc == 0, start.stdout + start.stderr
        if service == "clamav-daemon":
            assert host.run("clamdscan --ping 60:1").rc == 0
    assert find(server_ip, ACTIVE, msg["Message-ID"]) is None

    # The sending server retries: once the scanner is back the message is delivered.
    def retried():
        code, _ = smtp_send(server_ip, msg)
        return code == 250

    wait_for(retried, f"{service} back", timeout=60, interval=2)
    delivered(server_ip, ACTIVE, msg)


# --- SPF, DKIM, DMARC (the test zones of files/unbound-test-zones.conf) ---------------------------


def test_spf_fail_from_a_dmarc_reject_domain_is_refused(server_ip, unique):
    """reject.example.com allows only 192.0.2.1 (SPF -all) and publishes DMARC p=reject."""
    msg = message(ACTIVE, f"DMARC {unique}", sender="news@reject.example.com")
    code, reply = smtp_send(server_ip, msg)
    assert 500 <= code < 600, (code, reply)
    assert find(server_ip, ACTIVE, msg["Message-ID"]) is None


# --- Report spam (R12.5) --------------------------------------------------------------------------

LONG_BODY = (
    "Kính gửi quý cơ quan, chúng tôi xin trân trọng giới thiệu chương trình khuyến mãi đặc biệt dành cho "
    "các đơn vị hành chính sự nghiệp trên địa bàn tỉnh, với nhiều ưu đãi hấp dẫn về thiết bị văn phòng, "
    "máy tính, máy in và dịch vụ bảo trì trọn gói trong năm tài chính tới. Vui lòng liên hệ ngay hôm nay."
)


def move(server_ip, address, message_id, source, target):
    imap = imap_login(server_ip, address)
    try:
        imap.select(source)
        _, data = imap.search(None, "HEADER", "Message-ID", message_id)
        number = data[0].split()[-1]
        assert imap.copy(number, target)[0] == "OK"  # Roundcube's MOVE is a copy for IMAPSieve too
        imap.store(number, "+FLAGS", r"(\Deleted)")
        imap.expunge()
    finally:
        imap.logout()


def test_moving_mail_into_and_out_of_junk_trains_rspamd(host, server_ip, unique):
    msg = message(OTHER, f"Ưu đãi {unique}", body=LONG_BODY + f" Mã {unique}.")
    code, reply = smtp_send(server_ip, msg)
    assert code == 250, (code, reply)
    delivered(server_ip, OTHER, msg)

    assert not rspamd_learned(host, msg["Message-ID"], "spam")
    move(server_ip, OTHER, msg["Message-ID"], "INBOX", "Junk")
    wait_for(lambda: rspamd_learned(host, msg["Message-ID"], "spam"), "rspamd to learn the reported spam", timeout=60)

    move(server_ip, OTHER, msg["Message-ID"], "Junk", "INBOX")
    wait_for(lambda: rspamd_learned(host, msg["Message-ID"], "ham"), "rspamd to learn the message as ham", timeout=60)


SIGN = """
import base64, dkim, sys
raw = base64.b64decode(sys.argv[1])
key = open("/etc/unbound/test-dkim.key", "rb").read()
headers = [b"from", b"to", b"subject", b"date", b"message-id"]
signature = dkim.sign(raw, b"sel1", b"signed.example.net", key, include_headers=headers)
sys.stdout.write(base64.b64encode(signature + raw).decode())
"""


def test_dkim_signed_aligned_mail_is_delivered_with_authentication_results(host, server_ip, unique):
    """signed.example.net (DMARC p=reject) signs with the key prepare.yml published; DKIM aligns."""
    msg = message(ACTIVE, f"DKIM {unique}", sender="news@signed.example.net")
    raw = msg.as_bytes(policy=email.policy.SMTP)
    signed = host.run("python3 -c %s %s", SIGN, base64.b64encode(raw).decode())
    assert signed.rc == 0, signed.stderr
    with smtplib.SMTP(server_ip, 25, timeout=60) as smtp:
        smtp.ehlo("client.test.invalid")
        refused = smtp.sendmail("news@signed.example.net", [ACTIVE], base64.b64decode(signed.stdout))
    assert not refused
    results = delivered(server_ip, ACTIVE, msg)["Authentication-Results"]
    assert "dkim=pass" in results and "dmarc=pass" in results, results


# --- The filter's and the webmail's metrics (issue 18, R10.2a; docs/monitoring.md) -----------------


def test_rspamd_and_nginx_metrics_answer_on_the_management_address_only(host, server_ip):
    """R10.2a: nginx passes rspamd's controller's /metrics on, and nothing else of the controller (web interface,
    message history); it and nginx's exporter listen on monitoring_listen_address (127.0.0.1 here) only, the
    controller and stub_status on loopback. Runs after the mail above, so rspamd has scanned some."""
    rspamd = {line.split()[0]: float(line.split()[1]) for line in scrape(host, 9334).splitlines()
              if line.startswith("rspamd_") and "{" not in line}
    assert rspamd["rspamd_scanned_total"] >= 1 and "rspamd_spam_total" in rspamd, rspamd
    for page in ("/stat", "/history", "/"):
        assert http_get(host, 9334, page)[0] == 404, page
    assert "nginx_up 1" in scrape(host, 9113).splitlines()
    assert_management_address_only(host, server_ip, 9334, 9113, 11334, 8080)
