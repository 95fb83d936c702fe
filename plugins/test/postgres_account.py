# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``x is sonla.mail.postgres_account``: a tier's database account as the roles take it from the inventory (issue 15),
checked by each role before it writes anything."""

from __future__ import annotations

from ansible_collections.sonla.mail.plugins.filter.quoting import POSTGRES_ACCOUNT_KEYS


def postgres_account(value) -> bool:
    """Exactly ``{host, dbname, user, password, ca_file}``, each a non-empty string of one line."""
    return (isinstance(value, dict) and set(value) == POSTGRES_ACCOUNT_KEYS
            and all(isinstance(field, str) and field and not any(c in field for c in "\r\n\x00")
                    for field in value.values()))


class TestModule:
    def tests(self):
        return {"postgres_account": postgres_account}
