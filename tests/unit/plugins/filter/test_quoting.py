# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
import sqlite3

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.sonla.mail.plugins.filter.quoting import pgpass_line, php_string, postgres_uri, sql_string


@pytest.mark.parametrize("value", ["plain", "it's", "back\\slash", "\\'; system('id'); //", "Thư điện tử Sơn La"])
def test_sql_string_round_trips_through_sqlite(value):
    assert sqlite3.connect(":memory:").execute(f"SELECT {sql_string(value)}").fetchone()[0] == value


@pytest.mark.parametrize(("value", "literal"), [
    ("it's", r"'it\'s'"),
    ("a\\", r"'a\\'"),
    ("\\'; system('id'); //", r"'\\\'; system(\'id\'); //'"),
])
def test_php_string_escapes_backslash_before_quote(value, literal):
    assert php_string(value) == literal


def test_nul_is_refused():
    with pytest.raises(AnsibleFilterError):
        sql_string("a\x00b")
    with pytest.raises(AnsibleFilterError):
        php_string("a\x00b")


def test_pgpass_line_escapes_what_libpq_reads_as_separators():
    account = {"host": "db.sonla", "dbname": "sonla_mail", "user": "sonla_backup", "password": "a:b\\c"}
    assert pgpass_line(account) == "db.sonla:*:sonla_mail:sonla_backup:a\\:b\\\\c"


def test_postgres_uri_names_the_password_file_and_never_the_password():
    account = {"host": "sonla-scale-front", "dbname": "sonla_mail", "user": "sonla_backup", "password": "secret"}
    uri = postgres_uri(account, "/etc/sonla-mail/backup.pgpass")
    assert uri == ("postgresql://sonla-scale-front/sonla_mail?user=sonla_backup"
                   "&passfile=/etc/sonla-mail/backup.pgpass&connect_timeout=5")
    assert "secret" not in uri
