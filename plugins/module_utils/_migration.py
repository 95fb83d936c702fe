# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Migration from the old mail system (issue 17): ``migrate_from`` in the inventory, ``doveadm sync`` on the server.

An entry of ``people/*.yml`` or ``organizations.yml`` may name the legacy IMAP account to import::

    migrate_from:
      host: imap.old.sonla.gov.vn   # the old server
      user: an.nguyen               # the account there
      port: 993                     # default 993
      tls: imaps                    # imaps (default) | starttls | none (a trusted network only)
      address: an.nguyen@sonla.gov.vn  # optional: the old address, kept as an alias (R5 need not hold)

The legacy password is never in the inventory: it comes from an Ansible Vault file
(``mailboxes_migration_credentials``, keyed ``person:<id>`` or ``org:<id>``) and reaches Dovecot only through
a private, temporary configuration file, never an argument (``ps``) or the output (``no_log``).

The import is Dovecot's own one-way sync from the old server through the imapc backend
(``doveadm sync -1 -R ... imapc:``): it adds what the old mailbox has and the new one lacks, never deletes
(mail that arrives at the new mailbox stays), is resumable (a broken run is picked up by the next) and a
second run fetches only what is new (dsync matches messages by their headers when the old server has no
GUIDs).
"""

from __future__ import annotations

import os
import re
import tempfile

MIGRATE_KEYS = frozenset(("host", "user", "port", "tls", "address"))
TLS_MODES = ("imaps", "starttls", "none")
DEFAULT_PORTS = {"imaps": 993, "starttls": 143, "none": 143}
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")  # a host name or an IPv4 address
# An old system's address may break R5 (underscores, capitals folded): letters, digits, dot, underscore, hyphen.
LEGACY_LOCAL_PART = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$")
_IMAPC_SSL = {"imaps": "imaps", "starttls": "starttls", "none": "no"}


def check_migrate_from(checker_class, owner, domain: str) -> dict | None:
    """The ``migrate_from`` block of an entry (``owner`` is its _Checker), or None; problems go to the owner."""
    entry = owner.entry.get("migrate_from")
    if entry is None:
        return None
    check = checker_class(owner.problems, owner.path, entry, f"{owner.what} migrate_from", owner.line)
    check.only_keys(MIGRATE_KEYS)
    host = check.text("host", pattern=_HOST)
    user = check.text("user")
    tls = check.choice("tls", TLS_MODES, "imaps")
    port = check.integer("port", 1, 65535, "schema", DEFAULT_PORTS[tls])
    address = check.text("address", required=False)
    if address is not None:
        address = address.lower()
        local_part, _, address_domain = address.partition("@")
        if address_domain != domain or not LEGACY_LOCAL_PART.match(local_part):
            check.fail("R3.1", f"'address' {address!r} must be an address in {domain} (letters, digits, . _ -): "
                       "only an address of this domain can be kept as an alias", "address")
    if not check.ok:
        owner.ok = False
        return None
    return {"host": host, "user": user, "port": port, "tls": tls, "address": address}


def _quoted(value: str) -> str:
    """A Dovecot configuration value in double quotes; ``%`` doubled so no variable is expanded."""
    if any(ord(character) < 32 for character in value):
        raise ValueError("a control character cannot be written to a Dovecot setting")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%") + '"'


def dovecot_config(main_config: str, main_text: str, migration: dict, password: str) -> str:
    """The temporary configuration doveadm reads: the server's own (``main_config``, whose text is ``main_text``),
    plus the old server's imapc settings.

    Dovecot 2.4 wants ``dovecot_config_version`` as the first setting of the file it reads, so those lines of the
    server's configuration come first again; 2.3 has none, and there the old server's sizes and headers answer
    dsync's comparisons without downloading each message again (2.4 does that by itself and knows no such features).
    """
    versions = re.findall(r"^dovecot_(?:config|storage)_version\s*=.*$", main_text, re.MULTILINE)
    return "\n".join([
        *versions,
        f"!include {main_config}",
        f"imapc_host = {_quoted(migration['host'])}",
        f"imapc_port = {int(migration['port'])}",
        f"imapc_ssl = {_IMAPC_SSL[migration['tls']]}",
        f"imapc_user = {_quoted(migration['user'])}",
        f"imapc_password = {_quoted(password)}",
        *([] if versions else ["imapc_features = rfc822.size fetch-headers"]),
        "",
    ])


def write_private_config(text: str, folder: str | None = None) -> str:
    """Write ``text`` to a new file only root can read (0600), and return its path; the caller deletes it."""
    descriptor, path = tempfile.mkstemp(prefix="sonla-migrate-", suffix=".conf", dir=folder)
    with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
        stream.write(text)
    return path


def sync_argv(doveadm: str, config: str, address: str) -> list[str]:
    """One-way, from the old server (-R) into the new mailbox, never deleting there (-1)."""
    return [doveadm, "-c", config, "sync", "-1", "-R", "-u", address, "imapc:"]


def count_argv(doveadm: str, address: str) -> list[str]:
    return [doveadm, "-f", "flow", "mailbox", "status", "-u", address, "messages", "*"]


def message_count(flow_output: str) -> int:
    """The total of ``messages=<n>`` in ``doveadm -f flow mailbox status`` output."""
    return sum(int(number) for number in re.findall(r"\bmessages=(\d+)", flow_output))


def masked(text: str, secrets) -> str:
    """``text`` with every secret replaced, as written and as quoted in the configuration, for error messages
    that quote a tool's output."""
    for secret in secrets:
        if not secret:
            continue
        forms = {secret}
        if not any(ord(character) < 32 for character in secret):
            forms.add(_quoted(secret)[1:-1])
        for form in sorted(forms, key=len, reverse=True):
            text = text.replace(form, "********")
    return text
