# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that quote a value for the language of the file a template writes.

Inventory values are validated when the inventory is loaded (docs/inventory.md); templates still quote
every value for their target language, so no value can end a string literal and become code.
Each filter returns the whole literal, quotes included, so a template cannot forget them.
"""

from __future__ import annotations

import urllib.parse

from ansible.errors import AnsibleFilterError


def _text(value, filter_name: str) -> str:
    if not isinstance(value, str):
        value = str(value)
    if "\x00" in value:
        raise AnsibleFilterError(f"{filter_name}: a NUL character cannot be quoted")
    return value


def php_string(value) -> str:
    """A PHP single-quoted string literal: only backslash and the quote are special there."""
    text = _text(value, "php_string")
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def sql_string(value) -> str:
    """An SQL string literal (SQLite, PostgreSQL with standard_conforming_strings): the quote is doubled."""
    text = _text(value, "sql_string")
    return "'" + text.replace("'", "''") + "'"


def pgpass_line(account) -> str:
    """libpq's password file line of a database role ``{host, dbname, user, password}``, for any port: backslash and
    colon escaped in every field."""
    def field(name):
        return _text(account[name], "pgpass_line").replace("\\", "\\\\").replace(":", "\\:")

    return ":".join([field("host"), "*", field("dbname"), field("user"), field("password")])


# The keys of a tier's database account in the inventory (issue 15): the db host's name, which its certificate names,
# the database, the tier's login role, its password (from a vault) and the CA file that signed the db host's
# certificate, on the client host.
POSTGRES_ACCOUNT_KEYS = frozenset({"host", "dbname", "user", "password", "ca_file"})


def postgres_tls(account) -> dict:
    """libpq's TLS settings of a tier's account: the session is encrypted and the server proves, with a certificate
    the account's CA signed, that it is the host the account names (R10.2b): no host that takes its address on the
    mail network reads the hashes or addresses."""
    return {"sslmode": "verify-full", "sslrootcert": _text(account["ca_file"], "postgres_tls")}


def postgres_params(account, passfile: str) -> dict:
    """libpq's connection keywords of a tier's account ``{host, dbname, user, ca_file}`` over TCP, its password read
    from ``passfile`` (issue 15)."""
    params = {name: _text(account[name], "postgres_params") for name in ("host", "dbname", "user")}
    return {**params, "passfile": passfile, **postgres_tls(account)}


def postgres_uri(account, passfile: str) -> str:
    """The libpq URI of a tier's account (``postgres_params``), the password never written in it; a connection gives
    up after 5 s."""
    params = postgres_params(account, passfile)
    host, dbname = (urllib.parse.quote(params.pop(name), safe="") for name in ("host", "dbname"))
    query = urllib.parse.urlencode({**params, "connect_timeout": 5}, safe="/")
    return f"postgresql://{host}/{dbname}?{query}"


def postgres_conninfo(account) -> str:
    """A libpq keyword/value string of the account's database and TLS settings, each value quoted (backslash and
    quote escaped): what Postfix's ``dbname`` takes, libpq reading a ``dbname`` that holds ``=`` as such a string."""
    def quoted(value):
        return "'" + _text(value, "postgres_conninfo").replace("\\", "\\\\").replace("'", "\\'") + "'"

    settings = {"dbname": account["dbname"], **postgres_tls(account)}
    return " ".join(f"{name}={quoted(value)}" for name, value in settings.items())


class FilterModule:
    def filters(self):
        return {"php_string": php_string, "sql_string": sql_string, "pgpass_line": pgpass_line,
                "postgres_uri": postgres_uri, "postgres_params": postgres_params, "postgres_tls": postgres_tls,
                "postgres_conninfo": postgres_conninfo}
