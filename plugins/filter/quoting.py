# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that quote a value for the language of the file a template writes.

Inventory values are validated when the inventory is loaded (docs/inventory.md); templates still quote
every value for their target language, so no value can end a string literal and become code.
Each filter returns the whole literal, quotes included, so a template cannot forget them.
"""

from __future__ import annotations

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


class FilterModule:
    def filters(self):
        return {"php_string": php_string, "sql_string": sql_string}
