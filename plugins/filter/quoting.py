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


def postgres_uri(account, passfile: str) -> str:
    """The libpq URI of a database role ``{host, dbname, user}`` over TCP, its password read from ``passfile`` and
    never written in the URI (issue 15); a connection gives up after 5 s."""
    host, dbname = (urllib.parse.quote(_text(account[name], "postgres_uri"), safe="") for name in ("host", "dbname"))
    query = urllib.parse.urlencode({"user": account["user"], "passfile": passfile, "connect_timeout": 5}, safe="/")
    return f"postgresql://{host}/{dbname}?{query}"


class FilterModule:
    def filters(self):
        return {"php_string": php_string, "sql_string": sql_string, "pgpass_line": pgpass_line,
                "postgres_uri": postgres_uri}
