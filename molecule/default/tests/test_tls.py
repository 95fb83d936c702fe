# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The TLS profile on every TLS port (R10.2b, docs/tls.md): Mozilla "intermediate", server cipher order.

Each probe is a real TLS client on the host talking to the container's IP, after STARTTLS where the port
starts in plaintext. The weak clients (CBC suites only; TLS 1.0/1.1 only) are first shown to connect to a
permissive server of the test's own, so their refusal by the mail server is the server's doing, not a client
that could not have connected anywhere.
"""

from __future__ import annotations

import contextlib
import imaplib
import smtplib
import socket
import ssl
import subprocess
import threading

import pytest

STARTTLS = {25: "smtp", 587: "smtp", 143: "imap"}  # POP3's 110 stays closed: test_pop3_is_implicit_tls_only
PORTS = [25, 587, 465, 143, 993, 995, 443]
# TLS 1.2 suites with CBC encryption (HMAC, no AEAD): what testssl.sh used to find offered.
CBC_ONLY = ("ECDHE-RSA-AES128-SHA256:ECDHE-RSA-AES256-SHA384:ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA:"
            "DHE-RSA-AES128-SHA256:DHE-RSA-AES256-SHA256:AES128-SHA256:AES256-SHA256:AES128-SHA:AES256-SHA")
# A client preferring ChaCha20, then AES-256, then AES-128: a server that keeps its own order picks AES-128.
CLIENT_ORDER = "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256"
SERVER_FIRST = "ECDHE-RSA-AES128-GCM-SHA256"


def client(ciphers: str = "DEFAULT", minimum=ssl.TLSVersion.TLSv1_2, maximum=ssl.TLSVersion.MAXIMUM_SUPPORTED):
    """A client offering exactly these TLS 1.2 suites and versions. Security level 0: OpenSSL 3 would otherwise
    drop TLS 1.0/1.1 and SHA-1 suites by itself, and a refusal would prove nothing about the server."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the test server's certificate is self-signed
    context.set_ciphers(f"{ciphers}:@SECLEVEL=0")
    context.minimum_version, context.maximum_version = minimum, maximum
    return context


def cbc_client() -> ssl.SSLContext:
    context = client(CBC_ONLY, maximum=ssl.TLSVersion.TLSv1_2)
    offered = [cipher for cipher in context.get_ciphers() if cipher["protocol"] != "TLSv1.3"]
    assert offered and not any(cipher["aead"] for cipher in offered), offered
    return context


def old_client() -> ssl.SSLContext:
    return client(minimum=ssl.TLSVersion.TLSv1, maximum=ssl.TLSVersion.TLSv1_1)


def handshake(ip: str, port: int, context: ssl.SSLContext) -> tuple[str, str]:
    """(TLS version, cipher) the server agrees with this client, on an implicit-TLS port or after STARTTLS."""
    if STARTTLS.get(port) == "smtp":
        with smtplib.SMTP(ip, port, timeout=30) as smtp:
            smtp.starttls(context=context)
            return smtp.sock.version(), smtp.sock.cipher()[0]
    if STARTTLS.get(port) == "imap":
        imap = imaplib.IMAP4(ip, port, timeout=30)
        try:
            imap.starttls(ssl_context=context)
            return imap.sock.version(), imap.sock.cipher()[0]
        finally:
            with contextlib.suppress(OSError):  # after a refused handshake the socket is already closed
                imap.shutdown()
    with socket.create_connection((ip, port), timeout=30) as raw, context.wrap_socket(raw) as tls:
        return tls.version(), tls.cipher()[0]


def assert_refused(ip: str, port: int, context: ssl.SSLContext):
    with pytest.raises(ssl.SSLError) as refused:
        agreed = handshake(ip, port, context)
        pytest.fail(f"port {port} agreed {agreed}")
    # The server refused: not this client failing to offer anything.
    assert refused.value.reason not in ("NO_PROTOCOLS_AVAILABLE", "NO_CIPHERS_AVAILABLE", None), refused.value


@pytest.fixture(scope="module")
def permissive_server(tmp_path_factory):
    """A TLS server on loopback that accepts TLS 1.0 and every suite OpenSSL has: the weak probes' control."""
    folder = tmp_path_factory.mktemp("permissive")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=probe",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.set_ciphers("ALL:@SECLEVEL=0")
    context.minimum_version = ssl.TLSVersion.TLSv1
    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:  # closed at teardown
                return
            try:
                with context.wrap_socket(connection, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                pass

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()


@pytest.mark.parametrize(("probe", "version"), [(cbc_client, "TLSv1.2"), (old_client, "TLSv1.1")])
def test_the_weak_probes_connect_where_they_are_allowed(permissive_server, probe, version):
    agreed, cipher = handshake("127.0.0.1", permissive_server, probe())
    assert agreed == version
    if probe is cbc_client:
        assert cipher in CBC_ONLY.split(":")


@pytest.mark.parametrize("port", PORTS)
def test_modern_clients_are_served_aead_suites(server_ip, port):
    """TLS 1.3 and TLS 1.2 clients both connect; TLS 1.2 gets an AEAD suite (GCM or ChaCha20-Poly1305)."""
    assert handshake(server_ip, port, client())[0] == "TLSv1.3"
    version, cipher = handshake(server_ip, port, client(maximum=ssl.TLSVersion.TLSv1_2))
    assert version == "TLSv1.2"
    assert "-GCM-" in cipher or "CHACHA20-POLY1305" in cipher, cipher


@pytest.mark.parametrize("port", PORTS)
def test_cbc_only_client_is_refused(server_ip, port):
    assert_refused(server_ip, port, cbc_client())


@pytest.mark.parametrize("port", PORTS)
def test_tls_1_1_client_is_refused(server_ip, port):
    """A client that really offers TLS 1.0 and 1.1 (and nothing newer) is refused on every TLS port."""
    assert_refused(server_ip, port, old_client())


@pytest.mark.parametrize("port", PORTS)
def test_server_chooses_the_cipher(server_ip, port):
    """The server's order wins over the client's (testssl.sh: "no server cipher order" before)."""
    agreed = handshake(server_ip, port, client(CLIENT_ORDER, maximum=ssl.TLSVersion.TLSv1_2))
    assert agreed == ("TLSv1.2", SERVER_FIRST)


@pytest.mark.parametrize("port", PORTS)
def test_dhe_suites_have_their_group(server_ip, port):
    """Mozilla's DHE suites work (RFC 7919's 2048-bit group) for clients without ECDHE."""
    assert handshake(server_ip, port, client("DHE-RSA-AES128-GCM-SHA256", maximum=ssl.TLSVersion.TLSv1_2)) == (
        "TLSv1.2", "DHE-RSA-AES128-GCM-SHA256")


def test_pop3_is_implicit_tls_only(server_ip):
    """POP3 is served on 995 only; 110 (plaintext then STARTTLS) is not open (docs/tls.md)."""
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((server_ip, 110), timeout=30).close()


def test_nginx_sets_the_profile_once_for_every_site(host):
    """The profile is at nginx's http level only: no server block (the webmail's, MTA-STS's) sets its own."""
    dump = host.check_output("nginx -T 2>/dev/null")
    for directive in ("ssl_protocols", "ssl_ciphers", "ssl_prefer_server_ciphers"):
        places = [line.strip() for line in dump.splitlines() if line.strip().startswith(directive + " ")]
        assert len(places) == 1, (directive, places)
    assert "# configuration file /etc/nginx/conf.d/sonla-tls.conf:" in dump
