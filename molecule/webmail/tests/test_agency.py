# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What staff expect of the mail system (issue 17, part B): agency mailboxes by delegation, filters and
out-of-office, the provincial address book (docs/delegation.md, docs/webmail.md).

Nguyễn Văn An is the delegate of skhcn@ (inventory-mail/organizations.yml); Trần Thị Bình is not. Both choose
their own password first, through the tool the webmail's forced change runs. Screenshots go to the webmail
artifacts as agency-*.png.
"""

from __future__ import annotations

import base64
import email.header
import email.utils
import http.client
import imaplib
import json
import plistlib
import smtplib
import socket
import ssl
import uuid
from email.message import EmailMessage
from xml.etree import ElementTree

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from sonla_molecule import sql, submission, wait_for
from test_webmail import URL, imap_login, login, patient, shot, tls_context, wait

AGENCY = "skhcn@sonla.gov.vn"
DELEGATE = "annv.skhcn@sonla.gov.vn"  # Nguyễn Văn An
OTHER = "binhtt.skhcn@sonla.gov.vn"  # Trần Thị Bình, not a delegate
SHARED_INBOX = f"shared/{AGENCY}"  # the agency's INBOX, as Dovecot's shared namespace names another user's INBOX
PASSWORDS = {DELEGATE: "Ủy-Ban#2026an", OTHER: "Bình-An#2026sl"}  # meet R6.2


@pytest.fixture(scope="module")
def passwords(host, initial_passwords) -> dict[str, str]:
    """Each of them sets their own password, as the webmail's forced change does (R6.1a)."""
    def tool(command, request):
        result = host.run("echo %s | /usr/local/sbin/sonla-mail-passwd " + command, json.dumps(request))
        return json.loads(result.stdout)

    for address, password in PASSWORDS.items():
        if tool("status", {"address": address, "password": password})["status"] == "ok":
            continue  # chosen in an earlier verify run
        request = {"address": address, "old_password": initial_passwords[address], "new_password": password}
        assert tool("change", request)["changed"] is True
    return PASSWORDS


def imap(server_ip, server_cert, user, password) -> imaplib.IMAP4_SSL:
    client = imaplib.IMAP4_SSL(server_ip, 993, ssl_context=tls_context(server_cert), timeout=30)
    client.authenticate("PLAIN", lambda _: b"\0" + user.encode() + b"\0" + password.encode())
    return client


def subjects(client, mailbox) -> list[str]:
    """The subjects in ``mailbox``; [] when the server refuses to open it."""
    status, _ = client.select(f'"{mailbox}"', readonly=True)
    if status != "OK":
        return []
    _, data = client.search("UTF-8", "ALL")
    found = []
    for number in data[0].split():
        _, parts = client.fetch(number, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        header = email.message_from_bytes(parts[0][1])
        found.append(str(email.header.make_header(email.header.decode_header(header["Subject"]))))
    return found


def send(server_ip, user, password, sender, recipient, subject, headers=None) -> None:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = subject
    message["Date"] = email.utils.formatdate(localtime=True)
    message["Message-ID"] = email.utils.make_msgid(domain="sonla.gov.vn")
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content("Kính gửi anh chị,\n\nNội dung kiểm thử.\n", charset="utf-8")
    with submission(server_ip, 587) as smtp:
        smtp.ehlo()
        # AUTH PLAIN by hand: smtplib's login() encodes the password as ASCII, and these are Vietnamese.
        token = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()
        assert smtp.docmd("AUTH", "PLAIN " + token)[0] == 235
        smtp.send_message(message)


def test_the_delegate_reads_the_agency_mailbox_with_their_own_login(server_ip, server_cert, passwords):
    subject = f"Công văn gửi Sở KH&CN {uuid.uuid4().hex[:8]}"
    # From another mail server (port 25, from the host), as send_from_outside does for the webmail's user.
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "vanphong@example.org", AGENCY, subject
    message["Date"] = email.utils.formatdate(localtime=True)
    message["Message-ID"] = email.utils.make_msgid(domain="example.org")
    message.set_content("Kính gửi Sở.\n", charset="utf-8")
    with smtplib.SMTP(server_ip, 25, local_hostname="client.test.invalid", timeout=30) as smtp:
        smtp.send_message(message)

    client = imap(server_ip, server_cert, DELEGATE, passwords[DELEGATE])
    try:
        _, listed = client.list('""', '"shared/*"')
        assert any(SHARED_INBOX.encode() in line for line in listed)
        wait_for(lambda: subject in subjects(client, SHARED_INBOX), "the agency's mail in the delegate's view")
    finally:
        client.logout()

    # Someone who is not a delegate sees nothing of it and cannot open it.
    client = imap(server_ip, server_cert, OTHER, passwords[OTHER])
    try:
        _, listed = client.list('""', '"shared/*"')
        assert not any(AGENCY.encode() in (line or b"") for line in listed)
        assert client.select(f'"{SHARED_INBOX}"', readonly=True)[0] == "NO"
    finally:
        client.logout()


def test_only_a_delegate_sends_as_the_agency(server_ip, passwords):
    send(server_ip, DELEGATE, passwords[DELEGATE], AGENCY, OTHER, "Gửi thay mặt Sở")
    with pytest.raises((smtplib.SMTPSenderRefused, smtplib.SMTPRecipientsRefused)) as refused:
        send(server_ip, OTHER, passwords[OTHER], AGENCY, DELEGATE, "Mạo danh Sở")
    assert "not owned by user" in str(refused.value)


def test_a_withdrawn_or_suspended_delegate_loses_access_at_once(host, server_ip, server_cert, passwords):
    """The user database decides at each login and each message: no converge, no reload."""
    host_sql = sql(host, "SELECT mailbox, delegate FROM delegation")
    assert host_sql == [{"mailbox": AGENCY, "delegate": DELEGATE}]
    sql(host, "DELETE FROM delegation WHERE mailbox = ? AND delegate = ?", AGENCY, DELEGATE)
    try:
        client = imap(server_ip, server_cert, DELEGATE, passwords[DELEGATE])
        try:
            assert client.select(f'"{SHARED_INBOX}"', readonly=True)[0] == "NO"
        finally:
            client.logout()
        with pytest.raises((smtplib.SMTPSenderRefused, smtplib.SMTPRecipientsRefused)):
            send(server_ip, DELEGATE, passwords[DELEGATE], AGENCY, OTHER, "Không còn được ủy quyền")
    finally:
        sql(host, "INSERT INTO delegation (mailbox, delegate) VALUES (?, ?)", AGENCY, DELEGATE)

    sql(host, "UPDATE mailbox SET state = 'suspended', suspended_at = datetime('now'), suspended_by = 'operator'"
              " WHERE address = ?", DELEGATE)  # R8.1, as the lifecycle or an operator does
    try:
        with pytest.raises(imaplib.IMAP4.error):
            imap(server_ip, server_cert, DELEGATE, passwords[DELEGATE])
    finally:
        sql(host, "UPDATE mailbox SET state = 'active', suspended_at = NULL, suspended_by = NULL WHERE address = ?",
            DELEGATE)
    assert imap_login(server_ip, server_cert, DELEGATE, passwords[DELEGATE])[0] == "OK"


def open_folder(browser, name):
    """Click a folder of Roundcube's folder list by its name."""
    link = patient(browser, 30).until(
        lambda d: next((e for e in d.find_elements(By.CSS_SELECTOR, "#mailboxlist a") if e.text.strip() == name), None))
    link.click()


def test_the_delegate_reads_and_sends_as_the_agency_in_the_webmail(browser, artifacts, server_ip, server_cert, passwords):
    login(browser, DELEGATE, passwords[DELEGATE])
    wait(browser, "#messagelist")
    # Roundcube shows the shared namespace as a folder tree: shared > skhcn@sonla.gov.vn (the agency's INBOX).
    browser.get(URL + "?_task=mail&_mbox=" + SHARED_INBOX.replace("/", "%2F").replace("@", "%40"))
    patient(browser, 30).until(
        lambda d: any("Công văn gửi Sở KH&CN" in e.text for e in d.find_elements(By.CSS_SELECTOR, "#messagelist span.subject")))
    assert AGENCY in wait(browser, "#mailboxlist").text
    shot(browser, artifacts, "agency-01-delegate-view")

    # Sending as the agency from the browser: the agency's address as an identity (Settings > Identities), then
    # compose with it as From. Postfix accepts it for a delegate only (test_only_a_delegate_sends_as_the_agency).
    browser.get(URL + "?_task=settings&_action=add-identity&_framed=1")
    wait(browser, "#rcmfd_name").send_keys("Sở Khoa học và Công nghệ")
    browser.find_element(By.ID, "rcmfd_email").send_keys(AGENCY)
    browser.execute_script("rcmail.command('save')")
    patient(browser, 30).until(lambda d: "_action=add-identity" not in d.current_url)
    subject = f"Gửi từ trình duyệt thay mặt Sở {uuid.uuid4().hex[:8]}"
    browser.get(URL + "?_task=mail&_action=compose")
    wait(browser, "#compose-subject")
    sender = browser.find_element(By.ID, "_from")
    option = next(o for o in sender.find_elements(By.TAG_NAME, "option") if AGENCY in o.text)
    browser.execute_script("arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('change'))",
                           sender, option.get_attribute("value"))
    browser.find_element(By.CSS_SELECTOR, "#compose_to input").send_keys(OTHER + ",")
    browser.find_element(By.ID, "compose-subject").send_keys(subject)
    browser.find_element(By.ID, "composebody").send_keys("Sở xin thông báo.")
    shot(browser, artifacts, "agency-02-delegate-sends-as-agency")
    browser.find_element(By.CSS_SELECTOR, "#compose-content .formbuttons button.send, button.send").click()
    patient(browser, 60).until(lambda d: "_action=compose" not in d.current_url)
    client = imap(server_ip, server_cert, OTHER, passwords[OTHER])
    try:
        wait_for(lambda: subject in subjects(client, "INBOX"), "the agency's message sent from the browser")
        _, found = client.search("UTF-8", "FROM", AGENCY)
        assert found[0], "the message does not come from the agency's address"
    finally:
        client.logout()
    browser.delete_all_cookies()


def test_out_of_office_set_in_the_browser_answers_once(browser, artifacts, host, server_ip, server_cert, passwords):
    login(browser, OTHER, passwords[OTHER])
    wait(browser, "#messagelist")
    browser.get(URL + "?_task=settings&_action=plugin.managesieve-vacation")  # Settings > Vắng mặt
    subject_field = wait(browser, "[name=vacation_subject]")
    subject_field.clear()  # a second verify run finds the first one's reply already set
    subject_field.send_keys("Vắng mặt / Out of office")
    browser.find_element(By.CSS_SELECTOR, "[name=vacation_reason]").clear()
    token = uuid.uuid4().hex[:8]  # in the reply's text: this run's replies, whatever an earlier run left
    browser.find_element(By.CSS_SELECTOR, "[name=vacation_reason]").send_keys(
        f"Tôi đang đi công tác đến hết tuần. / I am away until the end of the week. ({token})")
    status = browser.find_element(By.CSS_SELECTOR, "[name=vacation_status]")
    browser.execute_script("arguments[0].value = 'on'; arguments[0].dispatchEvent(new Event('change'))", status)
    shot(browser, artifacts, "agency-03-out-of-office-form")
    browser.find_element(By.CSS_SELECTOR, ".formbuttons .submit").click()
    wait_for(lambda: host.run("test -s /var/vmail/sonla.gov.vn/binhtt.skhcn/.dovecot.sieve").rc == 0,
             "the out-of-office script to be active")
    assert "vacation" in host.check_output("cat /var/vmail/sonla.gov.vn/binhtt.skhcn/.dovecot.sieve")
    browser.delete_all_cookies()

    # Two messages from the same colleague: one reply. One from a mailing list, from another sender (the agency's
    # address, which the delegate may use): none, since lists are never answered.
    for number in (1, 2):
        send(server_ip, DELEGATE, passwords[DELEGATE], DELEGATE, OTHER, f"Hỏi việc lần {number}")
    send(server_ip, DELEGATE, passwords[DELEGATE], AGENCY, OTHER, "Bản tin",
         headers={"List-Id": "<bantin.sonla.gov.vn>", "Precedence": "list"})
    inbox = imap(server_ip, server_cert, OTHER, passwords[OTHER])
    try:  # Sieve runs at delivery: once all three are in, every reply there is to be is in Postfix's hands.
        wait_for(lambda: {"Hỏi việc lần 2", "Bản tin"} <= set(subjects(inbox, "INBOX")), "the three messages")
    finally:
        inbox.logout()
    wait_for(lambda: "sonla.gov.vn" not in host.run("postqueue -j").stdout, "the replies to leave Postfix's queue",
             timeout=60)
    client = imap(server_ip, server_cert, DELEGATE, passwords[DELEGATE])
    try:
        client.select(f'"{SHARED_INBOX}"', readonly=True)
        assert client.search(None, "BODY", token)[1] == [b""], "a mailing list got an out-of-office reply"
        client.select("INBOX", readonly=True)
        _, replies = client.search(None, "BODY", token)
        assert len(replies[0].split()) == 1, "not exactly one out-of-office reply"
        _, parts = client.fetch(replies[0].split()[0], "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert "Vắng mặt / Out of office" in str(email.header.make_header(email.header.decode_header(
            email.message_from_bytes(parts[0][1])["Subject"])))
    finally:
        client.logout()


def test_the_address_book_finds_a_person_typed_without_diacritics(browser, artifacts, passwords):
    login(browser, OTHER, passwords[OTHER])
    wait(browser, "#messagelist")
    browser.get(URL + "?_task=addressbook&_source=sonla_directory")
    search = wait(browser, "#searchform, input[name=_q]")
    # Roundcube ignores a search while it is still listing the book: wait for the whole list first.
    patient(browser, 30).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#contacts-table tbody tr")) > 1
                               and d.execute_script("return !rcmail.busy"))
    search.send_keys("nguyen van an" + Keys.ENTER)

    def only_him(driver):  # the book lists all five of the scenario's mailboxes until the search applies
        rows = driver.find_elements(By.CSS_SELECTOR, "#contacts-table tbody tr")
        return rows[0] if len(rows) == 1 and "Nguyễn Văn An" in rows[0].text else None

    row = patient(browser, 30).until(only_him)
    shot(browser, artifacts, "agency-04-address-book")
    row.click()
    patient(browser, 30).until(ec.frame_to_be_available_and_switch_to_it((By.ID, "contact-frame")))
    patient(browser, 30).until(lambda d: DELEGATE in d.find_element(By.TAG_NAME, "body").text)
    assert "Sở Khoa học và Công nghệ" in browser.find_element(By.TAG_NAME, "body").text
    browser.switch_to.default_content()
    shot(browser, artifacts, "agency-05-address-book-entry")
    browser.delete_all_cookies()


# --- client autoconfiguration (docs/webmail.md, "Client setup") ------------------------------------------

def fetch(server_ip, server_cert, host_name, path, body=None) -> bytes:
    """A document from nginx over HTTPS, the certificate verified; ``host_name`` as a client would ask for it."""
    connection = http.client.HTTPSConnection(server_ip, 443, context=tls_context(server_cert), timeout=30)
    try:
        connection.request("POST" if body else "GET", path, body=body,
                           headers={"Host": host_name, "Content-Type": "text/xml"})
        response = connection.getresponse()
        assert response.status == 200, f"{host_name}{path}: {response.status}"
        return response.read()
    finally:
        connection.close()


def read_until(sock, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        chunk = sock.recv(4096)
        assert chunk, f"connection closed before {marker!r}: {data!r}"
        data += chunk
    return data


def greets(server_ip, server_cert, host_name, kind, port, tls) -> bool:
    """Whether the server answers as ``kind`` on ``port`` in that TLS mode (SSL: TLS from the first byte;
    STARTTLS: plain greeting, then the upgrade), with a certificate that names ``host_name``, checked as a client
    checks it."""
    context = ssl.create_default_context(cadata=server_cert)
    greeting = {"imap": b"* OK", "pop3": b"+OK", "smtp": b"220 "}[kind]
    with socket.create_connection((server_ip, port), timeout=30) as raw:
        if tls == "SSL":
            with context.wrap_socket(raw, server_hostname=host_name) as secure:
                return read_until(secure, b"\r\n").startswith(greeting)
        read_until(raw, b"\r\n")
        if kind == "smtp":
            raw.sendall(b"EHLO client.test.invalid\r\n")
            assert b"STARTTLS" in read_until(raw, b"\r\n250 ")
            raw.sendall(b"STARTTLS\r\n")
            assert read_until(raw, b"\r\n").startswith(b"220")
            with context.wrap_socket(raw, server_hostname=host_name) as secure:
                secure.sendall(b"EHLO client.test.invalid\r\n")
                return b"AUTH" in read_until(secure, b"\r\n250 ")
        raw.sendall(b"a STARTTLS\r\n")
        assert b"a OK" in read_until(raw, b"\r\n")
        with context.wrap_socket(raw, server_hostname=host_name) as secure:
            secure.sendall(b"b CAPABILITY\r\n")
            return b"AUTH=PLAIN" in read_until(secure, b"b OK")


def test_thunderbird_autoconfig_names_the_real_servers(server_ip, server_cert):
    documents = [fetch(server_ip, server_cert, "mail.sonla.gov.vn", "/.well-known/autoconfig/mail/config-v1.1.xml"),
                 fetch(server_ip, server_cert, "autoconfig.sonla.gov.vn",
                       "/mail/config-v1.1.xml?emailaddress=annv.skhcn%40sonla.gov.vn")]
    assert documents[0] == documents[1]
    provider = ElementTree.fromstring(documents[0]).find("emailProvider")
    assert provider.findtext("domain") == "sonla.gov.vn"
    servers = [(server.get("type"), server.findtext("hostname"), int(server.findtext("port")), server.findtext("socketType"))
               for server in provider if server.tag in ("incomingServer", "outgoingServer")]
    assert sorted((kind, port, tls) for kind, _, port, tls in servers) == [
        ("imap", 143, "STARTTLS"), ("imap", 993, "SSL"), ("pop3", 995, "SSL"), ("smtp", 465, "SSL"), ("smtp", 587, "STARTTLS")]
    for kind, host_name, port, tls in servers:
        assert greets(server_ip, server_cert, host_name, kind, port, tls), f"{kind} {host_name}:{port} {tls}"


def test_outlook_autodiscover_and_the_apple_profile_name_the_real_servers(server_ip, server_cert):
    request = (b'<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/'
               b'autodiscover/outlook/requestschema/2006"><Request><EMailAddress>annv.skhcn@sonla.gov.vn</EMailAddress>'
               b"<AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
               b"</AcceptableResponseSchema></Request></Autodiscover>")
    answer = ElementTree.fromstring(fetch(server_ip, server_cert, "autodiscover.sonla.gov.vn",
                                          "/autodiscover/autodiscover.xml", body=request))
    namespace = {"o": "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"}
    protocols = {p.findtext("o:Type", namespaces=namespace): (p.findtext("o:Server", namespaces=namespace),
                                                              int(p.findtext("o:Port", namespaces=namespace)),
                                                              p.findtext("o:Encryption", namespaces=namespace))
                 for p in answer.iterfind(".//o:Protocol", namespace)}
    assert protocols == {"IMAP": ("mail.sonla.gov.vn", 993, "SSL"), "SMTP": ("mail.sonla.gov.vn", 465, "SSL")}

    profile = plistlib.loads(fetch(server_ip, server_cert, "mail.sonla.gov.vn", "/sonla-mail.mobileconfig"))
    account = profile["PayloadContent"][0]
    assert account["PayloadType"] == "com.apple.mail.managed"
    assert (account["IncomingMailServerHostName"], account["IncomingMailServerPortNumber"],
            account["IncomingMailServerUseSSL"]) == ("mail.sonla.gov.vn", 993, True)
    assert (account["OutgoingMailServerHostName"], account["OutgoingMailServerPortNumber"],
            account["OutgoingMailServerUseSSL"]) == ("mail.sonla.gov.vn", 465, True)
    for host_name, port, kind in (("mail.sonla.gov.vn", 993, "imap"), ("mail.sonla.gov.vn", 465, "smtp")):
        assert greets(server_ip, server_cert, host_name, kind, port, "SSL")
