# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Outbound identity (issue 13, docs/dns.md): DKIM signing, the DNS records to publish, MTA-STS.

The records playbooks/dns-records.yml writes are published in the container's test DNS server (unbound), with
the real DKIM public key made on the server; signatures are checked by dkimpy's dkimverify resolving there.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import hashlib
import imaplib
import json
import re
import socket
import ssl
import subprocess
from pathlib import Path

import pytest
from conftest import ACTIVE, DOMAIN, OTHER, PASSWORD, message, smtp_send, tls_context
from sonla_molecule import wait_for, write_test_inventory

SCENARIO = Path(__file__).resolve().parents[1]
PLAYBOOK = SCENARIO.parents[1] / "playbooks" / "dns-records.yml"
PUBLISHED = "/etc/unbound/unbound.conf.d/sonla-published.conf"
SELECTOR = "s2026"  # the filter role's default active selector

# dkimpy's own dkimverify, with its resolver pointed at the test DNS server (the container has no other).
DKIMVERIFY = """
import base64, io, sys
import dns.resolver
resolver = dns.resolver.Resolver(configure=False)
resolver.nameservers = ["127.0.0.1"]
dns.resolver.default_resolver = resolver
sys.stdin = io.TextIOWrapper(io.BytesIO(base64.b64decode(sys.argv[1])))
sys.argv = ["dkimverify"]
from dkim.dkimverify import main
main()
"""


@pytest.fixture(scope="module")
def records_dir(container, tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("dns")


@pytest.fixture(scope="module")
def ansible_inventory(container, records_dir) -> str:
    return write_test_inventory(records_dir, container, str(SCENARIO))


def dns_records(inventory: str, records_dir: Path, server_ip: str, *extra: str) -> subprocess.CompletedProcess:
    """Run playbooks/dns-records.yml; its report, wherever the callback prints it (molecule's sends failures to
    stderr), is in ``stdout``."""
    return subprocess.run(["ansible-playbook", "-i", inventory, str(PLAYBOOK), "-e", f"dns_records_dir={records_dir}",
                           "-e", f"dns_records_address={server_ip}", *extra],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600, check=False)


def publish(host, zone_lines: list[str]):
    """Serve these zone-file lines from the container's unbound (as the province's DNS would)."""
    conf = "server:\n" + "".join(f"    local-data: '{line}'\n" for line in zone_lines)
    host.run("rm -f %s", PUBLISHED)
    assert host.run("printf %s %s > %s && unbound-checkconf", "%s", conf, PUBLISHED).rc == 0
    assert host.run("service unbound restart").rc == 0

    def answers() -> str:
        return host.run("dig +short @127.0.0.1 %s MX", DOMAIN).stdout.strip()
    wait_for(answers, "unbound to answer")


@pytest.fixture(scope="module")
def snippet(host, ansible_inventory, records_dir, server_ip) -> str:
    """The snippet the playbook writes for the domain, published in the test DNS."""
    result = dns_records(ansible_inventory, records_dir, server_ip)
    assert result.returncode == 0, result.stdout[-3000:]
    text = (records_dir / f"{DOMAIN}.zone").read_text(encoding="utf-8")
    publish(host, record_lines(text))
    return text


def record_lines(snippet_text: str) -> list[str]:
    return [line for line in snippet_text.splitlines() if line and not line.startswith(";")]


def raw_message(server_ip: str, address: str, message_id: str) -> bytes | None:
    """The delivered message's bytes exactly as stored (a signature covers them)."""
    imap = imaplib.IMAP4_SSL(server_ip, 993, ssl_context=tls_context(), timeout=30)
    try:
        imap.login(address, PASSWORD)
        imap.select("INBOX", readonly=True)
        _, data = imap.search(None, "HEADER", "Message-ID", message_id)
        if not data[0].split():
            return None
        _, parts = imap.fetch(data[0].split()[-1], "(BODY.PEEK[])")
        return parts[0][1]
    finally:
        imap.logout()


def dkim_signatures(raw: bytes) -> list[str]:
    """The DKIM-Signature headers, unfolded."""
    headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
    return [re.sub(r"\s+", " ", str(value)) for value in headers.get_all("DKIM-Signature", [])]


def dkimverify(host, raw: bytes):
    return host.run("python3 -c %s %s", DKIMVERIFY, base64.b64encode(raw).decode())


# --- the DNS records ------------------------------------------------------------------------------------


def test_the_snippet_has_every_record_with_the_servers_dkim_key(host, snippet, server_ip):
    public = host.run("openssl pkey -pubin -in /var/lib/rspamd/dkim/%s.%s.pub -outform DER | base64 -w0", DOMAIN, SELECTOR)
    assert public.rc == 0 and public.stdout, public.stderr
    lines = "\n".join(record_lines(snippet))
    assert f"{DOMAIN}. 3600 IN MX 10 mail.{DOMAIN}." in lines
    assert f'{DOMAIN}. 3600 IN TXT "v=spf1 mx -all"' in lines
    assert f'_dmarc.{DOMAIN}. 3600 IN TXT "v=DMARC1; p=reject; rua=mailto:postmaster@{DOMAIN}"' in lines
    assert f'_smtp._tls.{DOMAIN}. 3600 IN TXT "v=TLSRPTv1; rua=mailto:postmaster@{DOMAIN}"' in lines
    assert re.search(rf'^_mta-sts\.{re.escape(DOMAIN)}\. 3600 IN TXT "v=STSv1; id=[0-9a-f]{{20}}"$', lines, re.MULTILINE)
    assert f"mta-sts.{DOMAIN}. 3600 IN A {server_ip}" in lines
    dkim_line = next(line for line in lines.splitlines() if line.startswith(f"{SELECTOR}._domainkey.{DOMAIN}."))
    assert "".join(re.findall(r'"([^"]*)"', dkim_line)) == f"v=DKIM1; k=rsa; p={public.stdout.strip()}"
    assert f"; PTR: {server_ip} must map back to mail.{DOMAIN}.\n" in snippet  # the PTR reminder


def test_the_private_key_is_rspamds_alone(host):
    key = host.file(f"/var/lib/rspamd/dkim/{DOMAIN}.{SELECTOR}.key")
    assert (key.user, key.mode) == ("_rspamd", 0o600)
    bits = host.run("openssl pkey -in %s -noout -text | head -1", key.path)
    assert "2048 bit" in bits.stdout, bits.stdout


def test_the_dns_check_passes_against_the_published_records(snippet, ansible_inventory, records_dir, server_ip):
    result = dns_records(ansible_inventory, records_dir, server_ip, "-e", "dns_records_resolver=127.0.0.1")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "serves every record as expected" in result.stdout


def test_the_dns_check_reports_a_removed_and_a_changed_record(host, snippet, ansible_inventory, records_dir, server_ip):
    lines = record_lines(snippet)
    kept = [line for line in lines if not line.startswith(f"_dmarc.{DOMAIN}.")]
    kept = [line.replace("v=spf1 mx -all", "v=spf1 mx ~all") for line in kept]
    assert len(kept) == len(lines) - 1
    publish(host, kept)
    try:
        result = dns_records(ansible_inventory, records_dir, server_ip, "-e", "dns_records_resolver=127.0.0.1")
    finally:
        publish(host, lines)
    assert result.returncode != 0, result.stdout[-3000:]
    assert "serves 2 record(s) differently" in result.stdout, result.stdout[-3000:]
    assert f"_dmarc.{DOMAIN}. TXT 'v=DMARC1; p=reject; rua=mailto:postmaster@{DOMAIN}' is not served" in result.stdout
    assert f"{DOMAIN}. TXT is 'v=spf1 mx ~all', expected 'v=spf1 mx -all'" in result.stdout


# The filter role's DKIM tasks alone, to rotate without a whole converge.
DKIM_TASKS = """
- name: Converge the DKIM keys only
  hosts: mail_servers
  gather_facts: false
  tasks:
    - {name: Plan, ansible.builtin.include_role: {name: sonla.mail.filter, tasks_from: dkim_keys.yml}}
    - {name: Keys, ansible.builtin.include_role: {name: sonla.mail.filter, tasks_from: dkim.yml}}
"""


def test_a_new_selector_is_made_and_published_before_it_signs_and_retiring_deletes_it(
        host, snippet, ansible_inventory, records_dir, server_ip):
    playbook = records_dir / "dkim.yml"
    playbook.write_text(DKIM_TASKS, encoding="utf-8")
    new_key = f"/var/lib/rspamd/dkim/{DOMAIN}.s2027.key"

    def converge(state):
        selectors = json.dumps({"filter_dkim_selectors": [{"name": SELECTOR, "state": "active"},
                                                          {"name": "s2027", "state": state}]})
        result = subprocess.run(["ansible-playbook", "-i", ansible_inventory, str(playbook), "-e", selectors],
                                capture_output=True, text=True, timeout=600, check=False)
        assert result.returncode == 0, result.stdout[-3000:]
        return selectors

    selectors = converge("published")
    key = host.file(new_key)
    assert key.exists and (key.user, key.mode) == ("_rspamd", 0o600)
    assert f'selector = "{SELECTOR}";' in host.file("/etc/rspamd/local.d/dkim_signing.conf").content_string
    check = dns_records(ansible_inventory, records_dir, server_ip, "-e", "dns_records_resolver=127.0.0.1", "-e", selectors)
    assert check.returncode != 0
    assert f"s2027._domainkey.{DOMAIN}. TXT 'v=DKIM1; k=rsa; p=" in check.stdout and "is not served" in check.stdout

    selectors = converge("retired")
    assert not host.file(new_key).exists and not host.file(new_key[:-4] + ".pub").exists
    check = dns_records(ansible_inventory, records_dir, server_ip, "-e", "dns_records_resolver=127.0.0.1", "-e", selectors)
    assert check.returncode == 0, check.stdout[-3000:]


# --- DKIM signing -------------------------------------------------------------------------------------------


def test_mail_submitted_on_587_is_signed_and_verifies(host, snippet, server_ip, unique):
    msg = message(OTHER, f"Ký DKIM {unique}", sender=ACTIVE)
    code, reply = smtp_send(server_ip, msg, port=587, login=ACTIVE)
    assert code == 250, (code, reply)
    raw = wait_for(lambda: raw_message(server_ip, OTHER, msg["Message-ID"]), "the signed message")
    [signature] = dkim_signatures(raw)
    assert re.search(rf"\bd={re.escape(DOMAIN)};", signature) and re.search(rf"\bs={SELECTOR};", signature), signature
    verified = dkimverify(host, raw)
    assert verified.rc == 0 and "signature ok" in verified.stdout, verified.stdout + verified.stderr


# The server's own mail as the sonla.mail.notices module sends it (SMTP on 127.0.0.1); sendmail is the other way.
SMTP_SEND = """
import smtplib, sys
with smtplib.SMTP("127.0.0.1", 25, timeout=30) as smtp:
    smtp.sendmail(sys.argv[1], [sys.argv[2]], sys.argv[3].encode(), mail_options=["BODY=8BITMIME"])
"""


def send_locally(host, way: str, sender: str, to: str, lines: list[str]):
    """Send from inside the server: Postfix's sendmail (pickup, through non_smtpd_milters) or SMTP on 127.0.0.1."""
    if way == "sendmail":
        return host.run("printf %s %s | /usr/sbin/sendmail -t -f %s", "%s", "\n".join(lines), sender)
    return host.run("python3 -c %s %s %s %s", SMTP_SEND, sender, to, "\r\n".join(lines))


@pytest.mark.parametrize("way", ["sendmail", "smtp"])
def test_a_system_notice_is_signed_and_verifies(host, snippet, server_ip, way, unique):
    message_id = f"<notice-{way}-{unique}@{DOMAIN}>"
    lines = [f"From: Hệ thống thư điện tử <postmaster@{DOMAIN}>", f"To: <{OTHER}>", f"Subject: Thông báo {unique}",
             f"Message-ID: {message_id}", "MIME-Version: 1.0", "Content-Type: text/plain; charset=UTF-8", "",
             "Thông báo của hệ thống.", ""]
    sent = send_locally(host, way, f"postmaster@{DOMAIN}", OTHER, lines)
    assert sent.rc == 0, sent.stderr
    raw = wait_for(lambda: raw_message(server_ip, OTHER, message_id), "the notice")
    [signature] = dkim_signatures(raw)
    assert re.search(rf"\bd={re.escape(DOMAIN)};", signature), signature
    verified = dkimverify(host, raw)
    assert verified.rc == 0 and "signature ok" in verified.stdout, verified.stdout + verified.stderr


def test_a_changed_message_fails_the_same_verifier(host, snippet, server_ip, unique):
    """The verifier can fail: the signed message with a line added to its body does not verify."""
    msg = message(OTHER, f"Sửa đổi {unique}", sender=ACTIVE)
    assert smtp_send(server_ip, msg, port=587, login=ACTIVE)[0] == 250
    raw = wait_for(lambda: raw_message(server_ip, OTHER, msg["Message-ID"]), "the signed message")
    assert dkimverify(host, raw).rc == 0
    assert dkimverify(host, raw + b"Them mot dong.\r\n").rc != 0


def test_mail_from_outside_is_not_signed_by_the_province(snippet, server_ip, unique):
    msg = message(ACTIVE, f"Từ bên ngoài {unique}")
    assert smtp_send(server_ip, msg)[0] == 250
    raw = wait_for(lambda: raw_message(server_ip, ACTIVE, msg["Message-ID"]), "the outside message")
    assert not [s for s in dkim_signatures(raw) if f"d={DOMAIN}" in s]


# --- MTA-STS -------------------------------------------------------------------------------------------------


def https_get(server_ip: str, name: str, path: str, context: ssl.SSLContext) -> tuple[int, dict, str]:
    """GET over HTTPS to the container's address with SNI and Host ``name``, as a sender fetching the policy."""
    with socket.create_connection((server_ip, 443), timeout=30) as raw, \
            context.wrap_socket(raw, server_hostname=name) as tls:
        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
        response = b"".join(iter(lambda: tls.recv(65536), b""))
    head, _, body = response.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), {k.lower(): v for k, v in headers.items()}, body.decode()


@pytest.fixture(scope="module")
def mta_sts_context(host) -> ssl.SSLContext:
    """Trusts the role's self-signed certificate and checks its name: the webmail's would not pass."""
    return ssl.create_default_context(cadata=host.file("/etc/ssl/sonla-mail/mta-sts.crt").content_string)


def test_the_mta_sts_policy_is_served_over_https_and_matches_the_dns_id(snippet, server_ip, mta_sts_context):
    status, headers, body = https_get(server_ip, f"mta-sts.{DOMAIN}", "/.well-known/mta-sts.txt", mta_sts_context)
    assert status == 200 and headers["content-type"].startswith("text/plain"), (status, headers)
    assert body == f"version: STSv1\nmode: testing\nmx: mail.{DOMAIN}\nmax_age: 604800\n"
    policy_id = hashlib.sha256(body.encode()).hexdigest()[:20]
    assert f'"v=STSv1; id={policy_id}"' in snippet


def test_only_the_policy_is_served_on_the_mta_sts_name(server_ip, mta_sts_context):
    status, _, _ = https_get(server_ip, f"mta-sts.{DOMAIN}", "/index.php", mta_sts_context)
    assert status == 404
