# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The dovecot role's passdb and userdb queries keep configured text inert (issue 10 item 2); a mailstore's erasure
of deleted mailboxes' mail stays inside the mail root (R7.2, issue 15).

The role's real vars and templates are rendered with Ansible's templating and a hostile webmail URL; the
query is then expanded as Dovecot would (its % variables) and run on SQLite with the collection's schema.
The refusal text must come back as exactly the configured text: one row, no password, no hash.
"""

from __future__ import annotations

import json
import re
import runpy
import sys

import pytest
import role_templates

from ansible_collections.sonla.mail.plugins.module_utils import _userdb

HOSTILE = [
    "x' UNION SELECT password FROM mailbox --",
    "x' || (SELECT group_concat(address || password) FROM mailbox) || '",
    "50% %u %s %% %{user} %%{user} %{password} {PLAIN}",
    "\\' ; DROP TABLE mailbox; --",
]
ADDRESS = "dungct.skhcn@sonla.gov.vn"
OTHER = "annv.skhcn@sonla.gov.vn"


JOBS = [(is_24, "https://mail.sonla.gov.vn/" + payload) for is_24 in (False, True) for payload in [""] + HOSTILE]


def template_of(is_24: bool) -> str:
    return "dovecot-2.4.conf.j2" if is_24 else "dovecot-sql.conf.ext.j2"


def render(jobs: list) -> list[str]:
    """Each job's (template, is_24, webmail URL[, other variables]) rendered, all in one child process."""
    return role_templates.render("dovecot", [
        (template, {"__dovecot_is_24": is_24, "dovecot_webmail_url": url,
                    # as the role's package task registers it (sonla.mail.packages, issue 19)
                    "__dovecot_installed": {"versions": {"dovecot-core": "2.4.1" if is_24 else "2.3.19"}},
                    **(extra[0] if extra else {})})
        for template, is_24, url, *extra in jobs])


@pytest.fixture(scope="module")
def rendered() -> dict:
    """{(is_24, url): the rendered file}."""
    return dict(zip(JOBS, render([(template_of(is_24), is_24, url) for is_24, url in JOBS]), strict=True))


def dovecot_expand(query: str, is_24: bool, user: str) -> str:
    """Dovecot's expansion of the query, as documented: 2.3 expands %x and %% ; 2.4 only %{name} and %%{.

    The user name is escaped for SQL as Dovecot's sqlite driver does (' doubled).
    """
    user = user.replace("'", "''")
    if is_24:
        names = {"user": user, "protocol": "imap"}
        return re.sub(r"%%\{|%\{([a-z_]+)\}", lambda m: "%{" if m.group(0) == "%%{" else names[m.group(1)], query)
    names = {"u": user, "s": "imap", "%": "%"}
    return re.sub(r"%(.)", lambda m: names[m.group(1)], query)


def password_query(config: str, is_24: bool) -> str:
    if is_24:
        match = re.search(r"passdb sql \{\n  query = (.*?)\n\}", config, re.S)
    else:
        match = re.search(r"^password_query = (.*?)\n\n", config, re.S | re.M)
    assert match, config
    return re.sub(r"\\\n\s*", "", match.group(1))


@pytest.fixture
def database(tmp_path):
    connection = _userdb.connect(str(tmp_path / "users.sqlite"))
    for address, must_change in ((ADDRESS, 1), (OTHER, 0)):
        connection.execute(
            "INSERT INTO mailbox (address, local_part, domain, kind, owner_id, display_name, organization, quota_mb,"
            " state, password, must_change, created_at, password_changed_at, updated_at)"
            " VALUES (?, ?, 'sonla.gov.vn', 'person', ?, 'Tên', 'skhcn', 64, 'active', ?, ?,"
            " datetime('now'), datetime('now'), datetime('now'))",
            (address, address.split("@")[0], address, "{SSHA512}secret-hash-of-" + address, must_change),
        )
    yield connection
    connection.close()


@pytest.mark.parametrize("is_24", [False, True], ids=["dovecot-2.3", "dovecot-2.4"])
@pytest.mark.parametrize("payload", HOSTILE)
def test_hostile_webmail_url_lands_as_inert_text(rendered, database, is_24, payload):  # issue 10 item 2, R6.1a
    url = "https://mail.sonla.gov.vn/" + payload
    query = dovecot_expand(password_query(rendered[(is_24, url)], is_24), is_24, ADDRESS)
    rows = database.execute(query).fetchall()
    assert len(rows) == 1, rows
    user, password, nologin, reason = rows[0]
    assert user == ADDRESS and nologin == "Y" and password == "{SSHA512}secret-hash-of-" + ADDRESS
    assert reason == f"Tài khoản phải đổi mật khẩu tại {url} / Change your password at {url}"
    assert "secret-hash-of-" + OTHER not in repr(rows)


@pytest.mark.parametrize("is_24", [False, True], ids=["dovecot-2.3", "dovecot-2.4"])
def test_the_mail_home_is_quoted_too(rendered, is_24):  # issue 10 item 2
    assert "'/var/vmail/' || domain" in rendered[(is_24, "https://mail.sonla.gov.vn/")]


class FakePostgres:
    """psycopg as the erasure calls it: records the connection's settings and keeps the ``mail_erasure`` records
    (address, host), which its two queries read and clear."""

    def __init__(self, records):
        self.records, self.settings, self.rows = list(records), None, []

    def connect(self, **settings):
        self.settings = settings
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False

    def cursor(self):
        return self

    def execute(self, query, parameters):
        self.rows = []
        if query.startswith("SELECT address FROM mail_erasure WHERE host = %s"):
            self.rows = [(address,) for address, host in self.records if host == parameters[0]]
        else:
            assert query == "DELETE FROM mail_erasure WHERE address = %s AND host = %s", query
            self.records.remove(tuple(parameters))

    def __iter__(self):
        return iter(self.rows)


def test_a_mailstore_erasure_runs_the_collections_rule_with_libpq_s_password_file(tmp_path, monkeypatch, capsys):
    """R7.2 on several hosts (issue 15): roles/dovecot/templates/erase-deleted.py.j2 runs
    _userdb.erase_deleted_mail (tested in test_userdb_engines.py) from the library installed beside it, for this
    store (its inventory name, as mailbox.host holds it), against the database named by the role's variables, reading
    the password from libpq's password file, never from itself; it prints the addresses only when there were some."""
    root = tmp_path / "vmail"
    (root / "sonla.gov.vn" / "gone").mkdir(parents=True)
    database = {"host": "db.sonla.gov.vn", "dbname": "sonla_mail", "user": "store1", "password": "not-in-the-script",
                "ca_file": "/etc/ssl/sonla-mail/db-ca.crt"}
    [script] = render([("erase-deleted.py.j2", True, "https://mail.sonla.gov.vn/",
                        {"dovecot_vmail_dir": str(root), "dovecot_userdb_postgres": database,
                         "dovecot_library_dir": role_templates.COLLECTIONS,
                         "inventory_hostname": "store1.sonla.internal"})])
    assert "not-in-the-script" not in script
    path = tmp_path / "erase-deleted.py"
    path.write_text(script, encoding="utf-8")
    fake = FakePostgres([("gone@sonla.gov.vn", "store1.sonla.internal"), ("absent@sonla.gov.vn", "store1.sonla.internal"),
                         ("other@sonla.gov.vn", "store2.sonla.internal")])
    monkeypatch.setitem(sys.modules, "psycopg", fake)
    erase = runpy.run_path(str(path), run_name="erase-deleted")

    erase["main"](True)
    assert json.loads(capsys.readouterr().out) == {"erased": ["gone@sonla.gov.vn"], "check": True}
    assert (root / "sonla.gov.vn" / "gone").is_dir() and len(fake.records) == 3
    erase["main"](False)
    assert json.loads(capsys.readouterr().out) == {"erased": ["gone@sonla.gov.vn"], "check": False}
    assert not (root / "sonla.gov.vn" / "gone").exists() and (root / "sonla.gov.vn").is_dir()
    assert fake.settings == {"host": "db.sonla.gov.vn", "dbname": "sonla_mail", "user": "store1",
                             "passfile": "/etc/dovecot/userdb.pgpass", "connect_timeout": 10,
                             "sslmode": "verify-full", "sslrootcert": "/etc/ssl/sonla-mail/db-ca.crt"}  # R10.2b
    assert fake.records == [("other@sonla.gov.vn", "store2.sonla.internal")]  # this store's records only are cleared
    erase["main"](False)
    assert capsys.readouterr().out == ""  # nothing left: prints nothing
