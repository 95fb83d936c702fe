# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one TLS profile (R10.2b): what it holds, checked against OpenSSL itself, and how each daemon spells it."""

from __future__ import annotations

import shutil
import ssl
import subprocess

import pytest

from ansible_collections.sonla.mail.plugins.module_utils import _tls


def openssl_ciphers(names: str) -> list[dict]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.set_ciphers(names)
    return [cipher for cipher in context.get_ciphers() if cipher["protocol"] != "TLSv1.3"]


def test_tls12_suites_are_aead_with_forward_secrecy_and_known_to_openssl():
    ciphers = openssl_ciphers(":".join(_tls.TLS12_CIPHERS))
    assert [cipher["name"] for cipher in ciphers] == list(_tls.TLS12_CIPHERS)  # every name known, order kept
    assert all(cipher["aead"] for cipher in ciphers)  # no CBC
    assert {cipher["kea"] for cipher in ciphers} == {"kx-ecdhe", "kx-dhe"}


def test_tls13_suites_are_openssls_defaults():
    """Postfix has no parameter for TLS 1.3 suites: it gets OpenSSL's defaults, which must be the profile's."""
    defaults = {cipher["name"] for cipher in ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).get_ciphers()
                if cipher["protocol"] == "TLSv1.3"}
    assert defaults == set(_tls.TLS13_CIPHERSUITES)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_dh_group_is_rfc7919_ffdhe2048():
    generated = subprocess.run(["openssl", "genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt", "group:ffdhe2048"],
                               check=True, capture_output=True, text=True).stdout
    assert generated == _tls.FFDHE2048


def test_postfix_applies_the_profile_to_opportunistic_and_mandatory_tls():
    values = _tls.settings("postfix", "3.7.11")
    assert values["smtpd_tls_protocols"] == values["smtpd_tls_mandatory_protocols"] == ">=TLSv1.2"
    assert values["smtpd_tls_ciphers"] == values["smtpd_tls_mandatory_ciphers"] == "high"
    assert values["tls_high_cipherlist"] == ":".join(_tls.TLS12_CIPHERS)
    assert values["tls_preempt_cipherlist"] == "yes"
    # The SMTP client's grade ("medium") is left alone, so its list is not replaced.
    assert not any(name.startswith(("smtp_tls_ciphers", "tls_medium")) for name in values)
    assert _tls.settings("postfix", "3.10.5", "/etc/postfix/dh.pem")["smtpd_tls_dh1024_param_file"] == (
        "/etc/postfix/dh.pem")


@pytest.mark.parametrize(("version", "order", "dh"), [
    ("2.3.19.1 (9b53102964)", ("ssl_prefer_server_ciphers", "yes"), ("ssl_dh", "</etc/dovecot/dh.pem")),
    ("2.4.1-4", ("ssl_server_prefer_ciphers", "server"), ("ssl_server_dh_file", "/etc/dovecot/dh.pem")),
])
def test_dovecot_names_differ_between_2_3_and_2_4(version, order, dh):
    values = _tls.settings("dovecot", version, "/etc/dovecot/dh.pem")
    assert values["ssl_min_protocol"] == "TLSv1.2"
    assert values["ssl_cipher_list"] == ":".join(_tls.TLS12_CIPHERS)
    assert values["ssl_cipher_suites"] == ":".join(_tls.TLS13_CIPHERSUITES)
    assert (order[0], values[order[0]]) == order
    assert (dh[0], values[dh[0]]) == dh
    assert len(values) == 5


def test_nginx_lines():
    assert _tls.lines("nginx", "1.26.3", "/etc/nginx/dh.pem") == [
        "ssl_protocols TLSv1.2 TLSv1.3;",
        "ssl_ciphers " + ":".join(_tls.TLS12_CIPHERS) + ";",
        "ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256;",
        "ssl_prefer_server_ciphers on;",
        "ssl_session_tickets off;",
        "ssl_dhparam /etc/nginx/dh.pem;",
    ]


def test_postgresql_lines_quote_their_values():
    """The several hosts' user database (issue 15): TLS 1.2 at least, the profile's TLS 1.2 suites, the server's order."""
    assert _tls.lines("postgresql", "17.6", "/etc/postgresql/17/main/dh.pem") == [
        "ssl_min_protocol_version = 'TLSv1.2'",
        "ssl_ciphers = '" + ":".join(_tls.TLS12_CIPHERS) + "'",
        "ssl_prefer_server_ciphers = 'on'",
        "ssl_dh_params_file = '/etc/postgresql/17/main/dh.pem'",
    ]


def test_without_a_dh_file_no_dh_setting():
    assert "ssl_dhparam" not in _tls.settings("nginx", "1.22.1")
    assert not any("dh" in name for name in _tls.settings("dovecot", "2.4.1"))
    assert not any("dh" in name for name in _tls.settings("postfix", "3.7.11"))
    assert not any("dh" in name for name in _tls.settings("postgresql", "15"))  # the major alone, as the role reads it


def test_config_lines_use_the_daemons_syntax():
    assert _tls.lines("postfix", "3.10.5")[0] == "smtpd_tls_protocols = >=TLSv1.2"
    assert _tls.lines("dovecot", "2.3.19")[0] == "ssl_min_protocol = TLSv1.2"


@pytest.mark.parametrize(("daemon", "version", "message"), [
    ("exim", "4.96", "unknown daemon 'exim'"),
    ("postfix", "3.5.18", "postfix 3.5.18 is older than 3.6.0"),
    ("dovecot", "2.3.13", "older than 2.3.15"),
    ("nginx", "1.19.3", "older than 1.19.4"),
    ("postgresql", "11.22", "postgresql 11.22 is older than 12.0.0"),
    ("nginx", "", "cannot read a version"),
])
def test_unknown_or_too_old_is_refused_by_name(daemon, version, message):
    with pytest.raises(ValueError, match=message):
        _tls.settings(daemon, version)


@pytest.mark.parametrize(("named", "resolv_conf"), [
    (["127.0.0.1"], "# local unbound\nnameserver 127.0.0.1\noptions trust-ad\n"),
    (["10.0.0.53", "10.0.1.53"], "search sonla.gov.vn\nnameserver 10.0.1.53\n  nameserver 10.0.0.53\n"),
    (["10.0.0.53", "10.0.1.53"], "nameserver 10.0.0.53\n#nameserver 8.8.8.8\n"),  # a comment is not a resolver
])
def test_dane_trusts_resolvers_when_only_named_ones_are_asked(named, resolv_conf):
    assert _tls.dane_resolver_problem(named, resolv_conf) is None


@pytest.mark.parametrize(("resolv_conf", "problem"), [
    ("nameserver 127.0.0.1\nnameserver 8.8.8.8\n", "also lists 8.8.8.8, which postfix_dnssec_resolvers does not name"),
    ("search sonla.gov.vn\n", "lists no nameserver"),
    ("", "lists no nameserver"),
])
def test_dane_refuses_resolvers_nobody_named(resolv_conf, problem):
    assert problem in _tls.dane_resolver_problem(["127.0.0.1"], resolv_conf)
