# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The mail system's one TLS profile (R10.2b), and how Postfix, Dovecot and nginx each spell it.

The profile is Mozilla's "intermediate" configuration, guideline 5.7 (https://ssl-config.mozilla.org/):
TLS 1.2 and 1.3, AEAD suites only (AES-GCM, ChaCha20-Poly1305; no CBC), forward secrecy (ECDHE, DHE with
RFC 7919's 2048-bit group). One deliberate change: the server's cipher order, not the client's, where the
daemon has the setting (Mozilla leaves it to the client since every suite is strong; the issue asks for it,
and scanners report its absence). Stdlib only; the roles read it through the ``sonla.mail.tls_profile``
filter, so no role restates a suite or a version.

API
---
``PROTOCOLS``, ``TLS12_CIPHERS``, ``TLS13_CIPHERSUITES``
    The profile itself, in order of preference (OpenSSL names).
``FFDHE2048``
    RFC 7919's ffdhe2048 group as PEM DH parameters (public; what Mozilla publishes as ffdhe2048.txt).
``settings(daemon, version, dh_file=None) -> dict[str, str]``
    The daemon's parameter names and values for the profile, for ``postfix`` (3.6 or newer), ``dovecot``
    (2.3.15 or newer; 2.4 renamed some), ``nginx`` (1.19.4 or newer) and ``postgresql`` (12 or newer: the
    several hosts' user database, issue 15), in the order a configuration file lists them.
    ``dh_file`` is where the role wrote ``FFDHE2048`` (Dovecot and nginx offer DHE suites only with it;
    Postfix and PostgreSQL would fall back to their own built-in group).
``lines(daemon, version, dh_file=None) -> list[str]``
    The same as configuration lines: ``name = value`` for Postfix and Dovecot, ``name value;`` for nginx,
    ``name = 'value'`` for PostgreSQL.
``dane_resolver_problem(named, resolv_conf) -> str | None``
    Why outbound DANE cannot rely on the resolvers ``named`` as DNSSEC-validating, given the text of
    /etc/resolv.conf (the resolvers Postfix really asks): it must list some, and none but those. None when sound.
"""

from __future__ import annotations

import re

PROTOCOLS = ("TLSv1.2", "TLSv1.3")
TLS12_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
    "DHE-RSA-AES128-GCM-SHA256",
    "DHE-RSA-AES256-GCM-SHA384",
    "DHE-RSA-CHACHA20-POLY1305",
)
TLS13_CIPHERSUITES = ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")
FFDHE2048 = """\
-----BEGIN DH PARAMETERS-----
MIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz
+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a
87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7
YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi
7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD
ssbzSibBsu/6iGtCOGEoXJf//////////wIBAg==
-----END DH PARAMETERS-----
"""

# The oldest release whose parameter names are used below.
_OLDEST = {"postfix": (3, 6, 0), "dovecot": (2, 3, 15), "nginx": (1, 19, 4), "postgresql": (12, 0, 0)}


def _version(daemon: str, version: str) -> tuple[int, int, int]:
    if daemon not in _OLDEST:
        raise ValueError(f"unknown daemon {daemon!r}; known: {', '.join(sorted(_OLDEST))}")
    match = re.match(r"\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?", str(version))  # PostgreSQL's folder names only "17"
    if not match:
        raise ValueError(f"{daemon}: cannot read a version from {version!r}")
    found = (int(match.group(1)), int(match.group(2) or 0), int(match.group(3) or 0))
    if found < _OLDEST[daemon]:
        raise ValueError(f"{daemon} {version} is older than {'.'.join(map(str, _OLDEST[daemon]))}, "
                         "the oldest release this TLS profile is written for")
    return found


def _postfix(dh_file: str | None) -> dict[str, str]:
    # Port 25 offers TLS opportunistically and reads smtpd_tls_protocols/_ciphers; 587 and 465 require TLS and
    # read the mandatory ones: both get the profile. Only the "high" list is replaced: the SMTP client keeps
    # its default "medium" grade, so mail to other servers is not pushed to plaintext by the server's profile
    # (docs/tls.md, "Outbound"); it takes the profile's versions. TLS 1.3 suites are OpenSSL's defaults, the
    # same three AEAD suites (Postfix has no parameter for them).
    minimum = f">={PROTOCOLS[0]}"
    values = {
        "smtpd_tls_protocols": minimum,
        "smtpd_tls_mandatory_protocols": minimum,
        "smtpd_tls_ciphers": "high",
        "smtpd_tls_mandatory_ciphers": "high",
        "tls_high_cipherlist": ":".join(TLS12_CIPHERS),
        "tls_preempt_cipherlist": "yes",
        "smtp_tls_protocols": minimum,
        "smtp_tls_mandatory_protocols": minimum,
    }
    if dh_file:  # else Postfix's built-in group (RFC 3526 group 14): 2048 bits too, but not the profile's
        values["smtpd_tls_dh1024_param_file"] = dh_file  # the name is historical: any size is read
    return values


def _dovecot(version: tuple[int, int, int], dh_file: str | None) -> dict[str, str]:
    is_24 = version >= (2, 4, 0)
    values = {
        "ssl_min_protocol": PROTOCOLS[0],
        "ssl_cipher_list": ":".join(TLS12_CIPHERS),
        "ssl_cipher_suites": ":".join(TLS13_CIPHERSUITES),
    }
    if is_24:
        values["ssl_server_prefer_ciphers"] = "server"
    else:
        values["ssl_prefer_server_ciphers"] = "yes"
    if dh_file:
        values["ssl_server_dh_file" if is_24 else "ssl_dh"] = dh_file if is_24 else f"<{dh_file}"
    return values


def _nginx(dh_file: str | None) -> dict[str, str]:
    values = {
        "ssl_protocols": " ".join(PROTOCOLS),
        "ssl_ciphers": ":".join(TLS12_CIPHERS),
        "ssl_conf_command": "Ciphersuites " + ":".join(TLS13_CIPHERSUITES),
        "ssl_prefer_server_ciphers": "on",
        "ssl_session_tickets": "off",  # Mozilla: tickets would defeat forward secrecy until their key rotates
    }
    if dh_file:
        values["ssl_dhparam"] = dh_file
    return values


def _postgresql(dh_file: str | None) -> dict[str, str]:
    # Like Postfix, PostgreSQL has no parameter for TLS 1.3 suites: OpenSSL's defaults are the profile's three.
    values = {
        "ssl_min_protocol_version": PROTOCOLS[0],
        "ssl_ciphers": ":".join(TLS12_CIPHERS),
        "ssl_prefer_server_ciphers": "on",
    }
    if dh_file:  # else PostgreSQL's built-in 2048-bit group, not the profile's
        values["ssl_dh_params_file"] = dh_file
    return values


def settings(daemon: str, version: str, dh_file: str | None = None) -> dict[str, str]:
    """The profile in ``daemon``'s own parameter names for ``version`` (see the module's API)."""
    found = _version(daemon, version)
    if daemon == "postfix":
        return _postfix(dh_file)
    if daemon == "dovecot":
        return _dovecot(found, dh_file)
    if daemon == "postgresql":
        return _postgresql(dh_file)
    return _nginx(dh_file)


def lines(daemon: str, version: str, dh_file: str | None = None) -> list[str]:
    """``settings`` as lines of the daemon's configuration syntax."""
    pattern = {"nginx": "{} {};", "postgresql": "{} = '{}'"}.get(daemon, "{} = {}")
    return [pattern.format(name, value) for name, value in settings(daemon, version, dh_file).items()]


def dane_resolver_problem(named: list[str], resolv_conf: str) -> str | None:
    """See the module's API: DANE trusts whatever resolver answers, so every one asked must be a named one."""
    listed = [parts[1] for parts in map(str.split, resolv_conf.splitlines()) if len(parts) > 1
              and parts[0] == "nameserver"]
    if not listed:
        return "/etc/resolv.conf lists no nameserver"
    others = [address for address in listed if address not in named]
    if others:
        return (f"/etc/resolv.conf also lists {', '.join(others)}, which postfix_dnssec_resolvers does not name as "
                "DNSSEC-validating")
    return None
