# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What ``sonla.mail.selfsigned_certificate`` does, decided without touching the server (issue 19).

Tests and the demo give Postfix, Dovecot, the webmail and MTA-STS a self-signed certificate where the inventory
gave none. Each role used to make it with three tasks (the folder, ``openssl req``, the key's mode); one module
run now does all three, and on a run that changes nothing it only looks at the two files.
"""

from __future__ import annotations

import re

# The key is readable by root alone; the services read it before dropping privileges.
KEY_OWNER, KEY_GROUP, KEY_MODE = "root", "root", 0o600
CERT_FOLDER_MODE = 0o755
# A DNS name as a certificate's subject and subjectAltName hold it (labels of letters, digits and hyphens).
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_NAME = re.compile(rf"^(?=.{{1,253}}\Z){_LABEL}(\.{_LABEL})*\Z")


def openssl_argv(names: list[str], certificate: str, private_key: str, days: int) -> list[str]:
    """``openssl req`` for a new RSA key and a certificate for ``names`` (the first one its subject)."""
    if not names:
        raise ValueError("names: give at least one DNS name for the certificate")
    bad = [name for name in names if not _NAME.match(name)]
    if bad:
        raise ValueError(f"names: {', '.join(map(repr, bad))} not a DNS host name")
    if days < 1:
        raise ValueError(f"days: {days} must be at least 1")
    return ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", str(days),
            "-subj", f"/CN={names[0]}", "-addext", "subjectAltName=" + ",".join(f"DNS:{name}" for name in names),
            "-keyout", private_key, "-out", certificate]


def plan(certificate_exists: bool, key_exists: bool, key_attributes: tuple[str, str, int] | None) -> str | None:
    """What to do: "make" the pair (either file missing), "protect" the key (owner, group or mode), or None."""
    if not (certificate_exists and key_exists):
        return "make"
    if key_attributes != (KEY_OWNER, KEY_GROUP, KEY_MODE):
        return "protect"
    return None
