"""The PostgreSQL user database against a real server (issue 15): the same plan/apply path as SQLite,
the copy of a SQLite database with nothing lost, and each tier's role limited to its rights."""

import concurrent.futures
import importlib.machinery
import importlib.util
import io
import json
import os
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime

import psycopg
import pytest
import role_templates

from ansible_collections.sonla.mail.plugins.module_utils import (
    _address_book,
    _backup,
    _health,
    _lifecycle,
    _logsearch,
    _sending_limits,
    _userdb,
)
from ansible_collections.sonla.mail.plugins.module_utils._lifecycle import read_revoked
from ansible_collections.sonla.mail.plugins.module_utils._mailbox_plan import build_plan, validate_desired
from ansible_collections.sonla.mail.plugins.module_utils._password import hash_initial
from ansible_collections.sonla.mail.plugins.modules import mailboxes, userdb_migrate

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _load(name: str, *path: str):
    # A script without .py (roles' files) needs its loader named.
    loader = importlib.machinery.SourceFileLoader(name, os.path.join(ROOT, *path))
    spec = importlib.util.spec_from_loader(name, loader)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The unit tests' in-process module runner serves these tests too; the throwaway cluster is the benchmark's.
run = _load("module_runner", "tests", "unit", "plugins", "modules", "module_runner.py").run
ThrowawayPostgres = _load("bench_postgres", "bench", "postgres.py").ThrowawayPostgres
_backup_tests = _load("backup_tests", "tests", "unit", "plugins", "module_utils", "test_backup.py")
FakeRestic, Outbox = _backup_tests.FakeRestic, _backup_tests.Outbox

NOW = "2027-01-05 08:00:00"


@pytest.fixture(scope="module")
def postgres_server():
    """One real PostgreSQL cluster for this file (Debian's postgresql package; scripts/setup.sh installs it)."""
    try:
        server = ThrowawayPostgres().start()
    except RuntimeError as error:
        pytest.fail(str(error))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_uri(postgres_server):
    """A fresh, empty database of its own for one test."""
    return postgres_server.uri(postgres_server.new_database())


def desired(*local_parts, **fields):
    return [{"address": f"{part}@sonla.gov.vn", "kind": "person", "owner_id": part, "display_name": "Lò Văn Hặc",
             "organization": "skhcn", "quota_mb": 2048, "request": "1/QĐ-SKHCN", **fields} for part in local_parts]


def converge(connection, entries, now=NOW, **options):
    plan = build_plan(validate_desired(entries), _userdb.read_mailboxes(connection), revoked=read_revoked(connection),
                      restores_done=_userdb.restores_done(connection), **options)
    hashes = {mailbox["address"]: "{SSHA512}hash-of-" + mailbox["address"] for mailbox in plan.added}
    _userdb.apply_plan(connection, plan, hashes, now, handoff_id="h1")
    return plan


def events(connection):
    rows = connection.execute("SELECT id, at, address, action, request_ref, detail FROM mailbox_event ORDER BY id")
    return [tuple(row) for row in rows]


def test_one_plan_apply_path_gives_both_engines_the_same_rows(tmp_path, postgres_uri):
    sqlite = _userdb.connect(str(tmp_path / "users.sqlite"))
    postgres = _userdb.connect(postgres_uri)
    steps = [
        desired("an", "binh", "chi"),
        desired("an", "binh", quota_mb=4096) + desired("chi", state="suspended", reason="Nghỉ việc"),
        desired("an", "binh", quota_mb=4096) + desired("chi", state="absent"),
    ]
    for number, entries in enumerate(steps):
        now = f"2027-01-0{number + 1} 08:00:00"
        planned = [converge(connection, entries, now).summary() for connection in (sqlite, postgres)]
        assert planned[0] == planned[1]
    assert _userdb.read_mailboxes(postgres) == _userdb.read_mailboxes(sqlite)
    assert _userdb.read_mailboxes(postgres)["binh@sonla.gov.vn"]["display_name"] == "Lò Văn Hặc"  # UTF-8 (R3.4)
    assert events(postgres) == events(sqlite) and len(events(postgres)) == 7
    assert _userdb.handoffs_committed(postgres, ["h1", "h2"]) == _userdb.handoffs_committed(sqlite, ["h1", "h2"])
    assert list(_userdb.handoffs_committed(postgres, ["h1", "h2"])) == ["h1"]
    assert _userdb.never_used(postgres) == _userdb.never_used(sqlite) == {"an@sonla.gov.vn", "binh@sonla.gov.vn"}
    assert not converge(postgres, steps[-1]).changed  # a second converge changes nothing


def test_the_module_converges_postgres_check_mode_first(tmp_path, postgres_uri):
    arguments = {"database": postgres_uri, "mailboxes": desired("an", "binh")}
    ok, preview = run(mailboxes, {**arguments, "_ansible_check_mode": True})
    assert ok and preview["changed"] and preview["added"] == ["an@sonla.gov.vn", "binh@sonla.gov.vn"]
    with psycopg.connect(postgres_uri) as connection:  # check mode did not even create the schema
        assert connection.execute("SELECT to_regclass('mailbox')").fetchone()[0] is None

    hashes = tmp_path / "hashes.json"
    hashes.write_text(json.dumps({entry["address"]: "{SSHA512}abc" for entry in arguments["mailboxes"]}))
    ok, applied = run(mailboxes, {**arguments, "initial_password_file": str(hashes), "_handoff_id": "h1"})
    assert ok and applied["changed"] and applied["summary"]["added"] == 2
    ok, again = run(mailboxes, arguments)
    assert ok and not again["changed"] and again["unchanged"] == ["an@sonla.gov.vn", "binh@sonla.gov.vn"]


def test_an_unreachable_postgres_fails_cleanly():
    ok, result = run(mailboxes, {"database": "postgresql:///nothing?host=/nonexistent&connect_timeout=2",
                                 "mailboxes": desired("an")})
    assert not ok and result["msg"].startswith("cannot open the user database")


def test_a_sqlite_database_moves_to_postgres_with_nothing_lost(tmp_path, postgres_uri):
    sqlite = _userdb.connect(str(tmp_path / "users.sqlite"))
    converge(sqlite, desired("an", "binh", "chi"))
    sqlite.execute("UPDATE mailbox SET password = '{BLF-CRYPT}$2y$05$chosen', must_change = 0, over_quota = 1,"
                   " last_login_at = '2027-01-04 07:00:00' WHERE address = 'an@sonla.gov.vn'")
    sqlite.execute("INSERT INTO password_history (address, password, replaced_at)"
                   " VALUES ('an@sonla.gov.vn', '{SSHA512}old', '2027-01-04 07:00:00')")
    sqlite.execute("DELETE FROM mailbox WHERE address = 'chi@sonla.gov.vn'")
    _userdb.record_events(sqlite, [("2027-01-04 09:00:00", "chi@sonla.gov.vn", "revoked", "lifecycle", "R7.2")])

    postgres = _userdb.connect(postgres_uri)
    copied = _userdb.copy_to_postgres(sqlite, postgres)
    assert copied["mailbox"] == 2 and copied["mailbox_event"] == 4 and copied["password_history"] == 1

    assert _userdb.read_mailboxes(postgres) == _userdb.read_mailboxes(sqlite)  # hashes, flags, times
    assert events(postgres) == events(sqlite)
    assert read_revoked(postgres) == {"chi@sonla.gov.vn": "2027-01-04 09:00:00"}  # never created again (R7.2)
    history = "SELECT address, password, replaced_at FROM password_history"
    assert [tuple(row) for row in postgres.execute(history)] == [tuple(row) for row in sqlite.execute(history)]
    plan = converge(postgres, desired("an", "binh", "chi", "dung"))  # the next converge carries on from there
    assert [mailbox["address"] for mailbox in plan.added] == ["dung@sonla.gov.vn"]
    assert [refusal["address"] for refusal in plan.refused] == ["chi@sonla.gov.vn"]
    assert events(postgres)[-1][0] == 5  # event ids continue after the copied ones

    with pytest.raises(_userdb.MigrationError, match="table mailbox of the PostgreSQL database is not empty"):
        _userdb.copy_to_postgres(sqlite, postgres)


def tier_login(postgres_server, tier: str, login: str) -> None:
    """Every tier's group role (as the userdb role makes them) and ``login``, a member of ``tier``'s."""
    for name in _userdb.TIER_GRANTS:
        postgres_server.admin(f"DO $$ BEGIN CREATE ROLE sonla_mail_{name} NOLOGIN; EXCEPTION WHEN duplicate_object"
                              " THEN NULL; END $$")
    postgres_server.admin(f"DROP ROLE IF EXISTS {login}; CREATE ROLE {login} LOGIN IN ROLE sonla_mail_{tier}")


def test_the_mx_role_reads_addresses_and_never_hashes(postgres_server, postgres_uri):
    database = postgres_uri.split("?")[0].rsplit("/", 1)[1]
    tier_login(postgres_server, "mx", "mx1")
    owner = _userdb.connect(postgres_uri)  # the schema upgrade grants each tier its rights
    converge(owner, desired("an"))

    with psycopg.connect(postgres_server.uri(database, user="mx1")) as mx:
        assert mx.execute("SELECT address, over_quota FROM mailbox").fetchall() == [("an@sonla.gov.vn", 0)]
        for forbidden in ("SELECT password FROM mailbox", "SELECT * FROM mailbox", "SELECT * FROM password_history",
                          "SELECT * FROM mailbox_event", "UPDATE mailbox SET over_quota = 1"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                mx.execute(forbidden)
            mx.rollback()


def test_the_migrate_module_previews_copies_once_and_refuses_to_mix(tmp_path, postgres_uri):
    source = str(tmp_path / "users.sqlite")
    converge(_userdb.connect(source), desired("an", "binh"))
    arguments = {"source": source, "target": postgres_uri}

    ok, preview = run(userdb_migrate, {**arguments, "_ansible_check_mode": True})
    assert ok and preview["changed"] and preview["copied"]["mailbox"] == 2
    with psycopg.connect(postgres_uri) as connection:
        assert connection.execute("SELECT to_regclass('mailbox')").fetchone()[0] is None
    ok, copied = run(userdb_migrate, arguments)
    assert ok and copied["changed"] and copied["copied"]["mailbox"] == 2 and copied["copied"]["mailbox_event"] == 2
    ok, again = run(userdb_migrate, arguments)
    assert ok and not again["changed"]

    converge(_userdb.connect(source), desired("an", "binh", "chi"))  # the source moved on: a second copy would mix
    ok, refused = run(userdb_migrate, arguments)
    assert not ok and "table mailbox of the PostgreSQL database is not empty" in refused["msg"]
    assert len(_userdb.read_mailboxes(_userdb.connect(postgres_uri))) == 2


def test_the_servers_sqlite_functions_give_the_same_answers(tmp_path, postgres_uri):
    postgres = _userdb.connect(postgres_uri)
    sqlite = _userdb.connect(str(tmp_path / "users.sqlite"))
    for query in ("SELECT datetime('2027-03-31 08:00:00', '-90 days')", "SELECT datetime('2027-03-01 00:30:00', '-1 hour')",
                  "SELECT datetime('now') > '2026-01-01 00:00:00'", "SELECT length(hex(randomblob(32)))",
                  # Dovecot's userdb query (the delegates' ACL groups, issue 17): one value, and none at all.
                  "SELECT group_concat('g-' || column1, ',') FROM (VALUES ('a')) AS v",
                  "SELECT group_concat('g-' || column1, ',') FROM (VALUES ('a')) AS v WHERE column1 = 'z'"):
        answers = [connection.execute(query).fetchone()[0] for connection in (sqlite, postgres)]
        assert answers[0] == answers[1] or (answers[0] == 1 and answers[1] is True), (query, answers)
    assert postgres.execute("SELECT hex(randomblob(32)) <> hex(randomblob(32))").fetchone()[0] is True


def test_the_lifecycle_plans_and_applies_the_same_on_both_engines(tmp_path, postgres_uri):
    """Issue 15, R8.2a: the daily run of several hosts (the db host, against PostgreSQL) is the single host's: the
    same plan, the same rows and events; its preview changes nothing and one run at a time holds the lock."""
    databases = [str(tmp_path / "users.sqlite"), postgres_uri]
    for database in databases:
        connection = _userdb.connect(database)
        converge(connection, desired("an", "binh"), now="2027-01-01 08:00:00")
        connection.execute("UPDATE mailbox SET last_login_at = '2027-03-20 09:00:00', password_changed_at = ?"
                           " WHERE address = 'binh@sonla.gov.vn'", ("2027-03-20 09:00:00",))
        connection.execute("UPDATE mailbox SET password_changed_at = '2027-03-20 09:00:00'")
    day_91 = "2027-04-02 02:30:00"  # an: created 91 days ago, never logged in (R8.2a)

    previews = [_lifecycle.run(database, now=day_91, notify=False, check=True) for database in databases]
    assert [[action["address"] for action in preview["suspended"]] for preview in previews] == [["an@sonla.gov.vn"]] * 2
    assert _userdb.read_mailboxes(_userdb.connect(postgres_uri))["an@sonla.gov.vn"]["state"] == "active"

    results = []
    for database in databases:
        with _lifecycle.run_lock(database):
            results.append(_lifecycle.run(database, now=day_91, notify=False))
    assert results[0]["summary"] == results[1]["summary"] and results[1]["changed"]
    sqlite, postgres = (_userdb.connect(database) for database in databases)
    assert _userdb.read_mailboxes(postgres) == _userdb.read_mailboxes(sqlite)
    assert events(postgres) == events(sqlite)
    assert not _lifecycle.run(postgres_uri, now=day_91, notify=False)["changed"]


def test_one_lifecycle_run_at_a_time_across_hosts(postgres_uri):
    """Issue 15: the lock is PostgreSQL's, so a run started from another host waits for the one under way."""
    probe = psycopg.connect(postgres_uri, autocommit=True)
    try:
        with _lifecycle.run_lock(postgres_uri):
            assert probe.execute("SELECT pg_try_advisory_lock(%s)", (_lifecycle.POSTGRES_LOCK_KEY,)).fetchone()[0] is False
        assert probe.execute("SELECT pg_try_advisory_lock(%s)", (_lifecycle.POSTGRES_LOCK_KEY,)).fetchone()[0] is True
    finally:
        probe.close()


def test_the_mailstore_role_records_logins_and_the_quota_flag_only(postgres_server, postgres_uri, tmp_path):
    """Issue 15, R8.2a, R9.2a: the stores' hooks write last_login_at and over_quota with the mailstore's role, which
    may change nothing else and never reads the password history or the events; its delegation script reads which of
    its mailboxes are organizations' and their delegates (issue 17), its erasure the mail deleted mailboxes left on it,
    both ends of a move included, and clears those records (R7.2)."""
    database = postgres_uri.split("?")[0].rsplit("/", 1)[1]
    tier_login(postgres_server, "mailstore", "store1")
    converge(_userdb.connect(postgres_uri), desired("an", "gone", "moving"))
    with psycopg.connect(postgres_uri, autocommit=True) as owner:  # deleted on the db host (R7.2, PostgreSQL's trigger)
        owner.execute("UPDATE mailbox SET host = 'store1' WHERE address <> 'an@sonla.gov.vn'")
        owner.execute("INSERT INTO mailbox_move (address, source, target, planned_at) VALUES"
                      " ('moving@sonla.gov.vn', 'store1', 'store2', '2026')")
        owner.execute("DELETE FROM mailbox WHERE address <> 'an@sonla.gov.vn'")
    assert _userdb.read_pending_erasures(_userdb.connect(postgres_uri)) == {
        "gone@sonla.gov.vn": ["store1"], "moving@sonla.gov.vn": ["store1", "store2"]}
    (tmp_path / "sonla.gov.vn" / "gone").mkdir(parents=True)

    with psycopg.connect(postgres_server.uri(database, user="store1"), autocommit=True) as store:
        # The hooks' statements (roles/dovecot/templates/last-login.py.j2, quota-flag.py.j2).
        store.execute("UPDATE mailbox SET last_login_at = datetime('now') WHERE address = %s AND (last_login_at IS NULL"
                      " OR last_login_at < datetime('now', '-1 hour'))", ("an@sonla.gov.vn",))
        store.execute("UPDATE mailbox SET over_quota = %s WHERE address = %s", (1, "an@sonla.gov.vn"))
        # roles/dovecot/templates/delegation-acl.sh.j2
        assert store.execute("SELECT address FROM mailbox WHERE kind = 'organization' AND host IS NULL").fetchall() == []
        assert store.execute("SELECT delegate, 'shared/' || mailbox FROM delegation WHERE delegate IN"
                             " (SELECT address FROM mailbox WHERE host IS NULL) AND mailbox IN"
                             " (SELECT address FROM mailbox WHERE host IS NULL)").fetchall() == []
        # The erasure of deleted mailboxes' mail (R7.2) reads and clears this store's records with this role's rights.
        erasing = _userdb.PostgresConnection(store)
        assert _userdb.erase_deleted_mail(erasing, str(tmp_path), True, "store1") == ["gone@sonla.gov.vn"]
        assert _userdb.erase_deleted_mail(erasing, str(tmp_path), False, "store1") == ["gone@sonla.gov.vn"]
        assert not (tmp_path / "sonla.gov.vn" / "gone").exists()
        assert store.execute("SELECT address, host FROM mail_erasure").fetchall() == [("moving@sonla.gov.vn", "store2")]
        for forbidden in ("UPDATE mailbox SET state = 'active'", "UPDATE mailbox SET password = 'x'",
                          "SELECT * FROM password_history", "SELECT address FROM mailbox_event",
                          "INSERT INTO mailbox_event (at, address, action) VALUES ('x', 'y', 'z')"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                store.execute(forbidden)
    row = _userdb.read_mailboxes(_userdb.connect(postgres_uri))["an@sonla.gov.vn"]
    assert row["over_quota"] == 1 and row["last_login_at"] >= "2026"


def test_the_webmail_role_changes_a_password_and_builds_the_address_book(postgres_server, postgres_uri, tmp_path,
                                                                         monkeypatch, capsys):
    """R6.1a, R6.1b, R12.2 on several hosts (issue 15): the webmail's password tool (roles/webmail/files/
    sonla-mail-passwd, run as it is installed) checks and changes a password in PostgreSQL as the webmail tier's role,
    keeps the replaced hash in the history (no SQLite rowid there) and records the change with the agency; the
    address book is built from PostgreSQL. The role may not touch the events beyond adding one."""
    database = postgres_uri.split("?")[0].rsplit("/", 1)[1]
    tier_login(postgres_server, "webmail", "webmail1")
    owner = _userdb.connect(postgres_uri)
    converge(owner, desired("an", "binh") + [{**desired("skhcn")[0], "kind": "organization", "owner_id": "skhcn"}])
    owner.execute("UPDATE mailbox SET password = ?, must_change = 1 WHERE address = 'an@sonla.gov.vn'",
                  (hash_initial("Xk7#pQ9wRt2mZa4v"),))
    config = tmp_path / "passwd.json"
    config.write_text(json.dumps({"database": postgres_server.uri(database, user="webmail1"),
                                  "throttle_database": str(tmp_path / "throttle.sqlite"),
                                  "password_policy": {"min_length": 10}}))
    tool = _load("sonla_mail_passwd", "roles", "webmail", "files", "sonla-mail-passwd")

    def ask(command, **request):
        monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps({"address": "an@sonla.gov.vn", **request})))
        code = tool.main([command, "--config", str(config)])
        return code, json.loads(capsys.readouterr().out)

    assert ask("status", password="Xk7#pQ9wRt2mZa4v") == (0, {"status": "change_required", "reason": "must_change"})
    assert ask("change", old_password="Xk7#pQ9wRt2mZa4v", new_password="Sonla#2025moi") == (
        0, {"changed": True, "violations": []})
    assert ask("change", old_password="Sonla#2025moi", new_password="Sonla#2026moi")[0] == 0
    back = ask("change", old_password="Sonla#2026moi", new_password="Sonla#2025moi")  # R6.1b: an earlier one
    assert back[0] == 1 and [v["rule"] for v in back[1]["violations"]] == ["R6.1b"], back
    assert ask("status", password="Sonla#2026moi") == (0, {"status": "ok"})
    history = owner.execute("SELECT count(*) FROM password_history WHERE address = 'an@sonla.gov.vn'").fetchone()[0]
    changes = owner.execute("SELECT organization FROM mailbox_event WHERE address = 'an@sonla.gov.vn'"
                            " AND action = 'password_changed'").fetchall()
    assert history == 2 and [tuple(row) for row in changes] == [("skhcn",), ("skhcn",)]
    with psycopg.connect(postgres_server.uri(database, user="webmail1")) as webmail:
        for forbidden in ("SELECT detail FROM mailbox_event", "DELETE FROM mailbox_event", "UPDATE mailbox SET state = 'x'"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                webmail.execute(forbidden)
            webmail.rollback()

    book = tmp_path / "directory.sqlite"
    assert _address_book.write_directory(postgres_server.uri(database, user="webmail1"), str(book))
    with sqlite3.connect(book) as reader:
        assert [row[0] for row in reader.execute("SELECT address FROM entry ORDER BY address")] == [
            "an@sonla.gov.vn", "binh@sonla.gov.vn", "skhcn@sonla.gov.vn"]


def test_the_limits_role_suspends_a_compromised_account_and_reads_no_hash(postgres_server, postgres_uri):
    """R12.6, R8.2b on several hosts (issue 15): the MX's policy service, as the limits role, reads a sender's state and
    suspends the account as compromised with its event, exactly as on one host; it may not read a password hash or
    the history, change a password, or delete an account."""
    database = postgres_uri.split("?")[0].rsplit("/", 1)[1]
    tier_login(postgres_server, "limits", "limits1")
    converge(_userdb.connect(postgres_uri), desired("an", "binh"))
    limits_uri = postgres_server.uri(database, user="limits1")

    result = _lifecycle.suspend_automatically(limits_uri, "an@sonla.gov.vn", "compromised", "test: 3 refusals",
                                              organizations=None, department=None, domain="sonla.gov.vn", notify=False)
    assert [action["address"] for action in result["suspended"]] == ["an@sonla.gov.vn"]
    assert _lifecycle.suspend_automatically(limits_uri, "an@sonla.gov.vn", "compromised", "again", organizations=None,
                                            department=None, domain="sonla.gov.vn", notify=False) is None
    row = _userdb.read_mailboxes(_userdb.connect(postgres_uri))["an@sonla.gov.vn"]
    assert (row["state"], row["suspended_by"]) == ("suspended", "lifecycle")
    (event,) = [event for event in events(_userdb.connect(postgres_uri)) if event[3] == "suspended"]
    assert event[4] == "1/QĐ-SKHCN" and "by=lifecycle; cause=compromised" in event[5]  # R11.2

    limits = _userdb.connect(limits_uri, upgrade=False)  # what roles/lifecycle/templates/sonla-mail-limits.j2 opens
    assert limits.execute("SELECT state FROM mailbox WHERE address = ?", ("an@sonla.gov.vn",)).fetchone()["state"] == "suspended"
    limits.close()
    with psycopg.connect(limits_uri) as raw:
        for forbidden in ("SELECT password FROM mailbox", "SELECT * FROM mailbox", "SELECT * FROM password_history",
                          "UPDATE mailbox SET password = 'x'", "UPDATE mailbox SET quota_mb = 1",
                          "DELETE FROM mailbox", "SELECT detail FROM mailbox_event", "DELETE FROM mailbox_event"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                raw.execute(forbidden)
            raw.rollback()


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_the_policy_service_defers_then_suspends_on_either_engine(engine, postgres_server, postgres_uri, tmp_path):
    """R12.6, R8.2b: roles/lifecycle/templates/sonla-mail-limits.j2, as Postfix's spawn(8) runs it (one connection on
    stdin and stdout), refuses past the hour's limit and suspends at the threshold in the SQLite file of one host, or in
    PostgreSQL as the limits role of an MX of several hosts (issue 15); the account's next message is refused."""
    if engine == "sqlite":
        database = str(tmp_path / "users.sqlite")
    else:
        tier_login(postgres_server, "limits", "limits1")
        database = postgres_server.uri(postgres_uri.split("?")[0].rsplit("/", 1)[1], user="limits1")
    converge(_userdb.connect(postgres_uri if engine == "postgresql" else database), desired("an"))
    config = tmp_path / "limits.json"
    config.write_text(json.dumps({
        "database": database, "state_database": str(tmp_path / "counts.sqlite"), "organizations": [], "department": None,
        "domain": "sonla.gov.vn", "webmail_url": None, "notify": False,
        "policy": {"max_messages_per_hour": 1, "suspend_after_limit_refusals": 2}}), encoding="utf-8")
    [script] = role_templates.render("lifecycle", [("sonla-mail-limits.j2", {
        "lifecycle_library_dir": role_templates.COLLECTIONS, "lifecycle_limits_config_file": str(config)})])
    request = "request=smtpd_access_policy\nprotocol_state=END-OF-MESSAGE\nsasl_username=an@sonla.gov.vn\nrecipient_count=1\n\n"

    answers = subprocess.run([sys.executable, "-c", script], input=request * 4, capture_output=True, text=True,
                             check=True, timeout=60).stdout.split("\n\n")
    assert [answer.split(" ", 1)[0] for answer in answers[:4]] == ["action=DUNNO", "action=450", "action=450", "action=450"]
    assert "per hour" in answers[2] and "Account suspended" in answers[3]  # the suspension came between them
    row = _userdb.read_mailboxes(_userdb.connect(postgres_uri if engine == "postgresql" else database))["an@sonla.gov.vn"]
    assert (row["state"], row["suspended_by"]) == ("suspended", "lifecycle")
    assert "Account compromised" in row["suspended_reason"]


def test_every_mx_counts_the_same_hour_in_postgres(postgres_server, postgres_uri, tmp_path):
    """R12.6 on several hosts (issue 15): the policy service of two MX hosts (two processes, each with its own counts
    file, as two hosts have) counts one user's hour in the shared database: the second MX refuses the message that
    goes past the hour's limit counted by the first."""
    tier_login(postgres_server, "limits", "limits1")
    converge(_userdb.connect(postgres_uri), desired("an"))
    database = postgres_server.uri(postgres_uri.split("?")[0].rsplit("/", 1)[1], user="limits1")
    [script] = role_templates.render("lifecycle", [("sonla-mail-limits.j2", {
        "lifecycle_library_dir": role_templates.COLLECTIONS, "lifecycle_limits_config_file": str(tmp_path / "limits.json")})])
    request = "request=smtpd_access_policy\nprotocol_state=END-OF-MESSAGE\nsasl_username=an@sonla.gov.vn\nrecipient_count=1\n\n"

    def mx(host: str, messages: int) -> list[str]:
        (tmp_path / "limits.json").write_text(json.dumps({
            "database": database, "state_database": str(tmp_path / f"{host}.sqlite"), "organizations": [],
            "department": None, "domain": "sonla.gov.vn", "webmail_url": None, "notify": False,
            "policy": {"max_messages_per_hour": 3, "suspend_after_limit_refusals": 0}}), encoding="utf-8")
        answers = subprocess.run([sys.executable, "-c", script], input=request * messages, capture_output=True,
                                 text=True, check=True, timeout=60).stdout.split("\n\n")
        return [answer.split(" ", 1)[0] for answer in answers[:messages]]

    assert mx("mx1", 2) == ["action=DUNNO", "action=DUNNO"]
    assert mx("mx2", 2) == ["action=DUNNO", "action=450"]  # the first MX's two count on the second
    assert mx("mx1", 1) == ["action=450"]
    owner = _userdb.connect(postgres_uri)
    counts = dict(owner.execute("SELECT kind, sum(count) FROM sending_usage GROUP BY kind").fetchall())
    assert counts == {"sent": 3, "refused": 2}
    assert not (tmp_path / "mx1.sqlite").exists() and not (tmp_path / "mx2.sqlite").exists()  # nothing counted apart


def test_a_decision_waits_for_another_mx_deciding_for_the_same_user(postgres_server, postgres_uri):
    """R12.6 on several hosts (issue 15): while one MX decides for a user (holding that user's lock), another MX's
    decision for the same user waits and then sees its count, so two MX hosts cannot both take the hour's last message.
    A lock held past the timeout fails that decision (the service then answers DUNNO) and leaves the connection usable."""
    tier_login(postgres_server, "limits", "limits1")
    converge(_userdb.connect(postgres_uri), desired("an"))
    database = postgres_server.uri(postgres_uri.split("?")[0].rsplit("/", 1)[1], user="limits1")
    address, minute, limits = "an@sonla.gov.vn", 29_000_000, _sending_limits.Limits(1, 500, 0)
    first = _userdb.connect(database, upgrade=False)
    second = _sending_limits.Counter.shared(_userdb.connect(database, upgrade=False))

    first.execute("BEGIN")  # the first MX, in the middle of its decision: it holds the user's lock and takes the message
    first.execute("SELECT pg_advisory_xact_lock(?, hashtext(?))", (_sending_limits.USAGE_LOCK_SPACE, address))
    first.execute("INSERT INTO sending_usage (address, kind, minute, count) VALUES (?, 'sent', ?, 1)", (address, minute))
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(second.decide, limits, address, 1, minute)
        time.sleep(1)
        assert not waiting.done()
        first.execute("COMMIT")
        assert waiting.result(timeout=10).action.startswith("450 ")

    impatient = _sending_limits.Counter.shared(_userdb.connect(database, upgrade=False), timeout=0.2)
    first.execute("BEGIN")
    first.execute("SELECT pg_advisory_xact_lock(?, hashtext(?))", (_sending_limits.USAGE_LOCK_SPACE, address))
    with pytest.raises(psycopg.errors.LockNotAvailable):
        impatient.decide(limits, address, 1, minute)
    first.execute("COMMIT")
    assert impatient.decide(limits, address, 1, minute + 60).action == _sending_limits.ACCEPT  # a new hour


def test_the_health_check_reads_the_newest_login_from_postgres(postgres_uri):
    """R8.2a, R10.2a on several hosts (issue 15): the lifecycle host's health check reads the newest last login from
    the shared database; a database it cannot reach counts as no login (the check fails), not as a crash."""
    owner = _userdb.connect(postgres_uri)
    converge(owner, desired("an", "binh"))
    assert _health.newest_login(postgres_uri) is None
    owner.execute("UPDATE mailbox SET last_login_at = '2027-01-05 07:59:00' WHERE address = 'binh@sonla.gov.vn'")
    assert _health.newest_login(postgres_uri) == datetime(2027, 1, 5, 7, 59, tzinfo=UTC)
    assert _health.newest_login("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2") is None


def test_the_db_host_backs_up_the_shared_database_and_a_deletion_leaves_the_older_dumps(
        postgres_server, postgres_uri, tmp_path):
    """R10.2c, R7.2 on several hosts (issue 15): the db host's backup dumps the shared PostgreSQL database with pg_dump
    (a dump that restores every row), and takes no mail, which it does not hold. A mailbox the inventory removed leaves
    the dumps of the snapshots older than its deletion, not this run's; its agency comes from the deletion's event,
    and the purge is recorded there. restic is faked: molecule/scaleout runs the real one."""
    owner = _userdb.connect(postgres_uri)
    converge(owner, desired("an", "binh"))
    config = _backup.Config(repository=str(tmp_path / "repo"), password_file=str(tmp_path / "pass"), mail_root="",
                            databases=[postgres_uri], user_database=postgres_uri, staging_dir=str(tmp_path / "staging"),
                            state_file=str(tmp_path / "state"))
    dump = config.database_copy(postgres_uri)
    assert dump.endswith(".pgdump") and dump.startswith(config.database_dir)

    def restic(snapshot_id):
        snapshots = json.dumps([{"id": "old", "time": "2027-01-01T00:00:00Z"}, {"id": snapshot_id, "time": NOW}])
        return FakeRestic({"backup": (0, json.dumps({"message_type": "summary", "snapshot_id": snapshot_id}), ""),
                           "snapshots": (0, snapshots, ""), "version": (0, "restic 0.18.0", "")})

    first = restic("s1")
    assert _backup.run_backup(config, _backup.Restic(config, first))["purged"] == []
    [backup] = [call for call in first.calls if call[0] == "backup"]
    assert backup[-1] == config.database_dir and "--exclude" not in backup  # the dumps; no mail folder at all
    copy = postgres_server.new_database()
    subprocess.run(["pg_restore", "--no-owner", "--no-privileges", "--dbname", postgres_server.uri(copy), dump],
                   check=True, capture_output=True)
    assert _userdb.read_mailboxes(_userdb.connect(postgres_server.uri(copy), upgrade=False)) == _userdb.read_mailboxes(owner)

    converge(owner, desired("an") + desired("binh", state="absent"), now="2027-01-06 08:00:00")
    second = restic("s2")
    result = _backup.run_backup(config, _backup.Restic(config, second))
    assert result["purged"] == ["binh@sonla.gov.vn"]
    rewrites = {call[-1]: call for call in second.calls if call[0] == "rewrite"}
    assert list(rewrites) == ["old"] and rewrites["old"][2:4] == ["--exclude", dump]  # this run's dump holds only "an"
    assert _backup.deleted_organizations(postgres_uri, ["binh@sonla.gov.vn"]) == {"binh@sonla.gov.vn": "skhcn"}
    assert [row[3] for row in events(owner) if row[2] == "binh@sonla.gov.vn"][-1] == _backup.PURGED_ACTION
    with pytest.raises(_backup.BackupError, match="pg_dump of the user database failed"):
        _backup.dump_postgres(postgres_server.uri("no_such_database"), str(tmp_path / "x.pgdump"))


def test_each_store_purges_its_own_backups_and_the_last_one_sends_the_notice(postgres_server, postgres_uri, tmp_path):
    """R7.2, R7.3 on several hosts (issue 15): each mailstore backs up its own mail and reads the deletions as the
    backup role, which reads no hash. A mailbox the inventory removed leaves each store's snapshots; the agency's
    notice goes out once, from the last host of the db host and the stores to purge it."""
    database = postgres_uri.split("?")[0].rsplit("/", 1)[1]
    tier_login(postgres_server, "backup", "backup1")
    owner = _userdb.connect(postgres_uri)  # the schema upgrade grants the tier its rights
    converge(owner, desired("an", "binh"))
    converge(owner, desired("an") + desired("binh", state="absent"), now="2027-01-06 08:00:00")
    store_uri = postgres_server.uri(database, user="backup1")
    with psycopg.connect(store_uri) as store:
        for forbidden in ("SELECT password FROM mailbox", "SELECT * FROM password_history", "DELETE FROM mailbox_event"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                store.execute(forbidden)
            store.rollback()
    notices = {"organizations": [{"id": "skhcn", "name": "Sở Khoa học và Công nghệ", "kind": "department", "parent": None,
                                  "address": "skhcn@sonla.gov.vn"}], "department": "skhcn"}
    fake = FakeRestic({"snapshots": (0, json.dumps([{"id": "old", "time": "2027-01-05T00:00:00Z"}]), ""),
                       "version": (0, "restic 0.18.0", "")})
    hosts = ["front", "store1", "store2"]
    sent = {}
    for host, uri, mail_root, databases in (("store1", store_uri, "/var/vmail", []), ("front", postgres_uri, "", [postgres_uri]),
                                            ("store2", store_uri, "/var/vmail", [])):
        config = _backup.Config(repository="unused", password_file="unused", mail_root=mail_root, databases=databases,
                                user_database=uri, host=host, hosts=hosts, notices=notices)
        fake.calls.clear()
        purge = _backup.purge_deleted(config, _backup.Restic(config, fake))
        assert purge["purged"] == ["binh@sonla.gov.vn"]
        [rewrite] = [call for call in fake.calls if call[0] == "rewrite"]
        # A store's snapshots lose the mailbox's folder; the db host's older one its dump of the database.
        assert rewrite[2:] == ["--exclude", f"{mail_root}/sonla.gov.vn/binh" if mail_root else config.database_copy(uri),
                               "old"]
        outbox = Outbox()
        _backup.notify_purged(config, purge, NOW, send=outbox)
        sent[host] = outbox.recipients()
        assert _backup.purge_deleted(config, _backup.Restic(config, fake))["purged"] == []  # done on this host
    assert sent == {"store1": [], "front": [], "store2": ["skhcn@sonla.gov.vn", "skhcn@sonla.gov.vn"]}
    purges = [row for row in events(owner) if row[3] == _backup.PURGED_ACTION]
    assert [row[5] for row in purges] == ["host=store1 snapshots=1", "host=front snapshots=1",
                                          "host=store2 snapshots=1 complete"]


def test_a_store_reads_which_mailboxes_its_restore_brings_back(postgres_server, postgres_uri):
    """R10.2c on several hosts (issue 15): a mailstore's restore-server brings back the mailboxes the user database
    pins to it (``host``), which the backup role may read, and no other's."""
    database = postgres_uri.split("?")[0].rsplit("/", 1)[1]
    tier_login(postgres_server, "backup", "backup2")
    owner = _userdb.connect(postgres_uri)
    converge(owner, desired("an", "binh", "chi", "dung"), stores=("store1", "store2"))
    pinned = {row["address"]: row["host"] for row in owner.execute("SELECT address, host FROM mailbox")}
    assert set(pinned.values()) == {"store1", "store2"}
    store_uri = postgres_server.uri(database, user="backup2")
    for store in ("store1", "store2"):
        assert _backup.store_mailboxes(store_uri, store) == sorted(a for a, host in pinned.items() if host == store)
    assert _backup.store_mailboxes(store_uri, "store3") == []


def test_the_log_search_reads_the_events_and_deletions_from_postgres(postgres_uri, tmp_path):
    """R9.1, R7.2 on several hosts (issue 15): the db host's log search (its user_database is the shared PostgreSQL
    one) shows an address's events, and erases a deleted mailbox's address from its index."""
    connection = _userdb.connect(postgres_uri)
    converge(connection, desired("an", "binh"))
    converge(connection, desired("an") + desired("binh", state="absent"), now="2027-01-06 08:00:00")
    assert _logsearch.deletions(postgres_uri) == {"binh@sonla.gov.vn": "2027-01-06 08:00:00"}

    index = _logsearch.open_index(str(tmp_path / "logindex.sqlite"))
    found = _logsearch.search(index, "address", "an@sonla.gov.vn", "2027-01-01 00:00:00", "2027-12-31 00:00:00",
                              postgres_uri)
    assert [(row["kind"], row["status"]) for row in found] == [("event", "added")]
    assert found[0]["detail"].startswith("request=1/QĐ-SKHCN")
    index.execute("INSERT INTO login (at, user, service, client_ip, result) VALUES"
                  " ('2027-01-05 09:00:00', 'binh@sonla.gov.vn', 'imap', '10.0.0.9', 'ok')")
    assert _logsearch.purge(index, _logsearch.deletions(postgres_uri)) == 1
    assert index.execute("SELECT count(*) FROM login").fetchone()[0] == 0


def test_another_hosts_log_search_reads_the_deletions_as_its_role_and_nothing_else(postgres_server, postgres_uri,
                                                                                   tmp_path):
    """R9.1, R7.2 on several hosts (issue 15): an MX's or a store's log search reaches the shared database as the
    logsearch role, which reads the deletions to purge its index, and no mailbox row, hash or write."""
    database = postgres_uri.split("?")[0].rsplit("/", 1)[1]
    tier_login(postgres_server, "logsearch", "logsearch1")
    owner = _userdb.connect(postgres_uri)
    converge(owner, desired("an", "binh"))
    converge(owner, desired("an") + desired("binh", state="absent"), now="2027-01-06 08:00:00")
    reader = postgres_server.uri(database, user="logsearch1")
    assert _logsearch.deletions(reader) == {"binh@sonla.gov.vn": "2027-01-06 08:00:00"}
    config = _logsearch.Config(index=str(tmp_path / "logindex.sqlite"), user_database=reader, events=False)
    index = _logsearch.open_index(config.index)
    index.execute("INSERT INTO delivery (at, message_id, mailbox, status) VALUES"
                  " ('2027-01-05 09:00:00', 'x@example.org', 'binh@sonla.gov.vn', 'stored')")
    index.commit()
    index.close()
    assert _logsearch.update(config)["purged"] == 1
    with psycopg.connect(reader) as logsearch:
        insert = "INSERT INTO mailbox_event (at, address, action) VALUES ('2027-01-07 00:00:00', 'x@sonla.gov.vn', 'revoked')"
        for forbidden in ("SELECT address FROM mailbox", "SELECT password FROM mailbox", "SELECT * FROM mailbox_event",
                          "SELECT * FROM password_history", insert):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                logsearch.execute(forbidden)
            logsearch.rollback()
