# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
import sqlite3

import pytest
from ansible.errors import AnsibleFilterError
from psycopg.conninfo import conninfo_to_dict

from ansible_collections.sonla.mail.plugins.filter.quoting import (
    pgpass_line,
    php_string,
    postgres_conninfo,
    postgres_params,
    postgres_uri,
    sql_string,
)
from ansible_collections.sonla.mail.plugins.test.postgres_account import postgres_account


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


ACCOUNT = {"host": "sonla-scale-front", "dbname": "sonla_mail", "user": "sonla_backup", "password": "secret",
           "ca_file": "/etc/ssl/sonla-mail/db-ca.crt"}


def test_postgres_uri_names_the_password_file_and_never_the_password():
    uri = postgres_uri(ACCOUNT, "/etc/sonla-mail/backup.pgpass")
    assert uri == ("postgresql://sonla-scale-front/sonla_mail?user=sonla_backup"
                   "&passfile=/etc/sonla-mail/backup.pgpass&sslmode=verify-full"
                   "&sslrootcert=/etc/ssl/sonla-mail/db-ca.crt&connect_timeout=5")
    assert "secret" not in uri


def test_every_form_of_the_account_checks_the_db_hosts_certificate():
    """R10.2b: libpq reads the same settings from the URI, the keywords and the conninfo string (psycopg's parser)."""
    expected = {"sslmode": "verify-full", "sslrootcert": "/etc/ssl/sonla-mail/db-ca.crt"}
    assert conninfo_to_dict(postgres_uri(ACCOUNT, "/p")).items() >= expected.items()
    assert postgres_params(ACCOUNT, "/p").items() >= expected.items()
    assert "password" not in postgres_params(ACCOUNT, "/p")
    assert conninfo_to_dict(postgres_conninfo(ACCOUNT)) == {"dbname": "sonla_mail", **expected}


def test_the_conninfo_string_keeps_quotes_and_backslashes_inert():
    account = dict(ACCOUNT, dbname="it's \\ a name", ca_file="/etc/ssl/ca with space.crt")
    assert conninfo_to_dict(postgres_conninfo(account)) == {
        "dbname": "it's \\ a name", "sslmode": "verify-full", "sslrootcert": "/etc/ssl/ca with space.crt"}


@pytest.mark.parametrize(("account", "valid"), [
    (ACCOUNT, True),
    ({key: value for key, value in ACCOUNT.items() if key != "ca_file"}, False),  # no way to check the server
    (dict(ACCOUNT, port="5432"), False),
    (dict(ACCOUNT, ca_file=""), False),
    (dict(ACCOUNT, user="sonla_mx\nhost=evil"), False),
    ("postgresql://db/sonla_mail", False),
])
def test_a_tiers_account_is_exactly_its_five_fields(account, valid):
    assert postgres_account(account) is valid
