"""The backup planner and runs (docs/backup.md, R10.2c, R7.2), with a fake restic that records its calls."""

import json
import sqlite3
import subprocess
from datetime import UTC, datetime, timedelta

import pytest

from ansible_collections.sonla.mail.plugins.module_utils import _backup, _userdb

ADDRESS = "annv.skhcn@sonla.gov.vn"


class Outbox:
    """Takes the place of ``_notices.send``: keeps the messages, and where they were handed."""

    def __init__(self):
        self.messages, self.servers = [], []

    def __call__(self, messages, host=None, port=None):
        self.messages.extend(messages)
        self.servers.append((host, port))
        return []

    def recipients(self) -> list[str]:
        return sorted(message["To"].addresses[0].addr_spec for message in self.messages)


class FakeRestic:
    """Answers restic calls from a table: {subcommand: (returncode, stdout, stderr)}; records every argv."""

    def __init__(self, answers=None):
        self.answers = answers or {}
        self.calls = []

    def __call__(self, argv, env, **_):
        self.calls.append(argv[1:])
        assert "RESTIC_PASSWORD" not in env and env["RESTIC_PASSWORD_FILE"]
        code, out, err = self.answers.get(argv[1], (0, "", ""))
        if callable(out):
            out = out(argv)
        return subprocess.CompletedProcess(argv, code, out, err)

    def subcommands(self):
        return [call[0] for call in self.calls]


@pytest.fixture
def config(tmp_path):
    database = tmp_path / "users.sqlite"
    connection = _userdb.connect(str(database))
    connection.close()
    return _backup.Config(repository=str(tmp_path / "repo"), password_file=str(tmp_path / "pass"),
                          mail_root=str(tmp_path / "vmail"), databases=[str(database)], user_database=str(database),
                          staging_dir=str(tmp_path / "staging"), state_file=str(tmp_path / "state"))


def events(connection, *rows):
    _userdb.record_events(connection, [(at, address, action, None, None) for at, address, action in rows])


def summary(snapshot_id="abc123"):
    return json.dumps({"message_type": "summary", "snapshot_id": snapshot_id}) + "\n"


# --- the repository's failures -------------------------------------------------------------------


@pytest.mark.parametrize(("code", "stderr", "kind"), [
    (10, "Fatal: repository does not exist: unable to open config file", "missing"),
    (1, ("Fatal: unable to open config file: stat /x/config: no such file or directory\n"
         "Is there a repository at the following location?"), "missing"),  # restic 0.14 (Debian 12)
    (12, "Fatal: wrong password or no key found", "password"),
    (1, "Fatal: wrong password or no key found", "password"),  # restic 0.14
    (11, "Fatal: unable to create lock", "locked"),
    (1, "Fatal: something else", None),
])
def test_failures_are_classified_for_restic_0_14_and_0_18(code, stderr, kind):
    assert _backup.classify_failure(code, stderr) == kind


@pytest.mark.parametrize(("code", "stderr", "words"), [
    (10, "repository does not exist", "no restic repository"),
    (12, "wrong password or no key found", "refuses the passphrase"),
])
def test_wrong_passphrase_or_missing_repository_stops_the_run_before_anything_is_written_or_deleted(
        config, code, stderr, words):
    fake = FakeRestic({"cat": (code, "", stderr)})
    with pytest.raises(_backup.BackupError, match=words) as error:
        _backup.run_backup(config, _backup.Restic(config, fake), prune=True)
    assert fake.subcommands() == ["cat"]  # no backup, no forget, no prune, no init
    assert "Nothing was written or deleted" in str(error.value)


def test_init_never_replaces_a_repository_that_refuses_the_passphrase(config):
    fake = FakeRestic({"cat": (12, "", "wrong password or no key found")})
    with pytest.raises(_backup.BackupError, match="passphrase"):
        _backup.init_repository(_backup.Restic(config, fake))
    assert "init" not in fake.subcommands()


def test_init_makes_a_missing_repository(config):
    fake = FakeRestic({"cat": (10, "", "repository does not exist")})
    assert _backup.init_repository(_backup.Restic(config, fake)) == "created"
    assert fake.subcommands() == ["cat", "init"]


def test_the_passphrase_is_passed_by_file_only(config):
    env = _backup.restic_env(config, {"RESTIC_PASSWORD": "leak", "PATH": "/bin"})
    assert env["RESTIC_PASSWORD_FILE"] == config.password_file and "RESTIC_PASSWORD" not in env


# --- what a backup takes --------------------------------------------------------------------------


def test_the_database_is_copied_online_with_what_is_still_in_the_wal(config, tmp_path):
    writer = _userdb.connect(config.user_database)  # WAL mode, kept open: the rows are in the -wal file
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    events(writer, ("2025-01-01 00:00:00", ADDRESS, "added"))
    target = tmp_path / "copy.sqlite"
    _backup.copy_database(config.user_database, str(target))
    copy = sqlite3.connect(target)
    assert copy.execute("SELECT address FROM mailbox_event").fetchall() == [(ADDRESS,)]
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    writer.close()


def test_a_run_copies_the_databases_backs_up_then_applies_retention(config):
    fake = FakeRestic({"backup": (0, summary(), "")})
    result = _backup.run_backup(config, _backup.Restic(config, fake))
    assert fake.subcommands() == ["cat", "backup", "forget"]
    backup = fake.calls[1]
    assert config.mail_root in backup and config.database_dir in backup
    assert fake.calls[2][fake.calls[2].index("--keep-daily") + 1] == "7"
    assert fake.calls[2][fake.calls[2].index("--keep-weekly") + 1] == "4"
    assert fake.calls[2][fake.calls[2].index("--keep-monthly") + 1] == "6"
    assert result["snapshot"] == "abc123"
    assert json.loads(open(config.state_file).read())["ok"] is True
    assert (_backup.os.path.exists(config.database_copy(config.user_database)))


def test_a_failed_backup_forgets_nothing(config):
    fake = FakeRestic({"backup": (1, "", "Fatal: no space left on device")})
    with pytest.raises(_backup.BackupError, match="no space left"):
        _backup.run_backup(config, _backup.Restic(config, fake), prune=True)
    assert fake.subcommands() == ["cat", "backup"]


# --- deletion reaches the backups (R7.2) ----------------------------------------------------------


def test_pending_deletions_are_removed_and_revoked_not_yet_purged():
    rows = [
        {"address": "a@x", "action": "removed", "at": "2025-01-01 00:00:00"},
        {"address": "b@x", "action": "revoked", "at": "2025-01-02 00:00:00"},
        {"address": "a@x", "action": "backup_purged", "at": "2025-01-03 00:00:00"},
        {"address": "c@x", "action": "suspended", "at": "2025-01-03 00:00:00"},
    ]
    assert _backup.pending_deletions(rows) == {"b@x": "2025-01-02 00:00:00"}


def test_an_address_made_again_and_deleted_again_is_purged_again():
    rows = [{"address": "a@x", "action": "removed", "at": "2025-01-01 00:00:00"},
            {"address": "a@x", "action": "backup_purged", "at": "2025-01-02 00:00:00"},
            {"address": "a@x", "action": "removed", "at": "2025-02-01 00:00:00"}]
    assert _backup.pending_deletions(rows) == {"a@x": "2025-02-01 00:00:00"}


def test_each_host_of_several_purges_a_deletion_from_its_own_backups():
    """Issue 15: the db host and each mailstore purge their own repository; a host's purge leaves the others' pending,
    and one host's purge (no host named) counts for every host."""
    rows = [{"address": "a@x", "action": "removed", "at": "2025-01-01 00:00:00"},
            {"address": "a@x", "action": "backup_purged", "at": "2025-01-02 00:00:00", "detail": "host=db snapshots=3"},
            {"address": "b@x", "action": "revoked", "at": "2025-01-01 00:00:00"},
            {"address": "b@x", "action": "backup_purged", "at": "2025-01-02 00:00:00", "detail": "snapshots=2"}]
    assert _backup.pending_deletions(rows, "db") == {}
    assert _backup.pending_deletions(rows, "store1") == {"a@x": "2025-01-01 00:00:00"}


def test_the_last_host_to_purge_a_deletion_completes_it_once():
    hosts = ["db", "store1", "store2"]
    rows = [{"address": "a@x", "action": "removed", "at": "2025-01-01 00:00:00"},
            {"address": "a@x", "action": "backup_purged", "at": "2025-01-02 00:00:00", "detail": "host=db snapshots=3"}]
    assert _backup.completed_purges(rows, "store1", hosts, ["a@x"]) == []  # store2 still holds it
    rows.append({"address": "a@x", "action": "backup_purged", "at": "2025-01-02 00:00:00",
                 "detail": "host=store2 snapshots=4"})
    assert _backup.completed_purges(rows, "store1", hosts, ["a@x"]) == ["a@x"]
    rows.append({"address": "a@x", "action": "backup_purged", "at": "2025-01-03 00:00:00",
                 "detail": "host=store1 snapshots=4 complete"})
    # A store added later purges the old deletion too, and sends no second notice.
    assert _backup.completed_purges(rows, "store3", [*hosts, "store3"], ["a@x"]) == []
    # Made again and deleted again: the next deletion needs every host's purge again.
    rows.append({"address": "a@x", "action": "removed", "at": "2025-02-01 00:00:00"})
    assert _backup.completed_purges(rows, "db", hosts, ["a@x"]) == []
    assert _backup.completed_purges(rows, "db", [], ["a@x"]) == ["a@x"]  # one host: its purge completes it


def test_a_purge_on_several_hosts_notifies_only_when_the_last_host_has_purged(config):
    connection = _userdb.connect(config.user_database)
    events(connection, ("2025-01-02 00:00:00", ADDRESS, "removed"))
    config.notices = {"organizations": ORGANIZATIONS, "department": "skhcn"}
    config.hosts, config.smtp_host = ["store1", "store2"], "mx1.sonla.gov.vn"  # the stores have no Postfix
    fake = FakeRestic({"version": (0, "restic 0.18.0", ""), "snapshots": (0, "[]", "")})
    runs = {}
    for host in config.hosts:
        config.host = host
        purge = _backup.purge_deleted(config, _backup.Restic(config, fake))
        outbox = Outbox()
        _backup.notify_purged(config, purge, "2025-01-05 03:15:00", send=outbox)
        runs[host] = (purge["purged"], purge["awaiting_hosts"], outbox.recipients(), outbox.servers)
    # The Department's summary only: no snapshot here tells the agency (PostgreSQL's events do, in the integration test).
    assert runs == {"store1": ([ADDRESS], [ADDRESS], [], []),
                    "store2": ([ADDRESS], [], ["skhcn@sonla.gov.vn"], [("mx1.sonla.gov.vn", 25)])}
    details = [row[0] for row in connection.execute("SELECT detail FROM mailbox_event WHERE action = 'backup_purged'")]
    assert details == ["host=store1 snapshots=0", "host=store2 snapshots=0 complete"]


def test_every_snapshot_loses_the_mail_and_older_ones_the_database_copies(config):
    snapshots = [{"id": "old", "time": "2025-01-01T03:15:00.123456789+07:00"},
                 {"id": "new", "time": "2025-01-03T03:15:00+07:00"},
                 {"id": "this-run", "time": "2025-01-01T00:00:00Z"}]
    plan = dict((tuple(ids), excludes) for excludes, ids in
                _backup.rewrite_plan(snapshots, {ADDRESS: "2025-01-02 00:00:00"}, config, frozenset({"this-run"})))
    folder = f"{config.mail_root}/sonla.gov.vn/annv.skhcn"
    assert plan[("old",)] == [folder, config.database_copy(config.user_database)]
    assert plan[("new", "this-run")] == [folder]


def test_mail_dir_refuses_paths_outside_the_root():
    with pytest.raises(_backup.BackupError):
        _backup.mail_dir("/var/vmail", "../etc@x")
    assert _backup.mail_dir("/var/vmail", ADDRESS) == "/var/vmail/sonla.gov.vn/annv.skhcn"


def test_a_purge_rewrites_prunes_every_unused_blob_and_records_the_event(config):
    connection = _userdb.connect(config.user_database)
    _userdb.record_events(connection, [("2025-01-02 00:00:00", ADDRESS, "revoked", "R8.1", None)])
    snapshots = json.dumps([{"id": "s1", "time": "2025-01-01T00:00:00Z"}])
    fake = FakeRestic({"version": (0, "restic 0.18.0 compiled with go1.24", ""), "snapshots": (0, snapshots, "")})
    result = _backup.purge_deleted(config, _backup.Restic(config, fake))
    assert result["purged"] == [ADDRESS]
    # restore: the database copy of s1, older than the revocation, tells whose mailbox it was (for the notice).
    assert fake.subcommands() == ["version", "snapshots", "restore", "rewrite", "prune"]
    assert fake.calls[2][:2] == ["restore", "s1"]
    assert fake.calls[3][:2] == ["rewrite", "--forget"] and "s1" in fake.calls[3]
    assert fake.calls[4] == ["prune", "--max-unused", "0"]
    recorded = connection.execute("SELECT address, request_ref FROM mailbox_event WHERE action = 'backup_purged'").fetchall()
    assert [tuple(row) for row in recorded] == [(ADDRESS, "R8.1")]  # the revocation's reference (R11.2)
    # Done once: the next run has nothing to purge.
    fake.calls.clear()
    assert _backup.purge_deleted(config, _backup.Restic(config, fake))["purged"] == []
    assert fake.calls == []


def test_restic_0_14_cannot_purge_and_says_so_without_recording_anything(config):
    connection = _userdb.connect(config.user_database)
    events(connection, ("2025-01-02 00:00:00", ADDRESS, "removed"))
    fake = FakeRestic({"version": (0, "restic 0.14.0 compiled with go1.19", "")})
    with pytest.raises(_backup.BackupError, match="no 'rewrite'"):
        _backup.purge_deleted(config, _backup.Restic(config, fake))
    assert "rewrite" not in fake.subcommands() and "prune" not in fake.subcommands()
    assert _backup.pending_deletions(_backup.read_deletion_events(config.user_database)) == {
        ADDRESS: "2025-01-02 00:00:00"}


def test_a_host_without_mail_rewrites_only_the_snapshots_older_than_the_deletion(config):
    """Issue 15: the db host of several holds no mail (an empty mail root): it takes no mail folder, excludes none,
    and rewrites only the snapshots whose database copy still holds the deleted row; restic refuses a rewrite that
    excludes nothing, so the newer snapshots are left alone."""
    config.mail_root = ""
    snapshots = [{"id": "s1", "time": "2025-01-01T00:00:00Z"}, {"id": "s2", "time": "2025-01-03T00:00:00Z"}]
    plan = _backup.rewrite_plan(snapshots, {ADDRESS: "2025-01-02 00:00:00"}, config)
    assert plan == [([config.database_copy(config.user_database)], ["s1"])]
    assert _backup.backup_paths(config) == [config.database_dir]
    assert "--exclude" not in _backup.backup_args(config, [config.database_dir])


def test_a_mailstore_of_several_takes_its_mail_and_no_database_copy(config):
    """Issue 15: a mailstore copies no database (the db host dumps the shared one); restic would fail on the copies'
    folder it never makes."""
    config.databases = []
    assert _backup.backup_paths(config) == [config.mail_root]


def test_a_failed_rewrite_records_no_purge(config):
    connection = _userdb.connect(config.user_database)
    events(connection, ("2025-01-02 00:00:00", ADDRESS, "removed"))
    snapshots = json.dumps([{"id": "s1", "time": "2025-01-01T00:00:00Z"}])
    fake = FakeRestic({"version": (0, "restic 0.18.0", ""), "snapshots": (0, snapshots, ""),
                       "rewrite": (1, "", "Fatal: boom")})
    with pytest.raises(_backup.BackupError):
        _backup.purge_deleted(config, _backup.Restic(config, fake))
    assert _backup.pending_deletions(_backup.read_deletion_events(config.user_database))


ORGANIZATIONS = [
    {"id": "skhcn", "name": "Sở Khoa học và Công nghệ", "kind": "department", "parent": None,
     "address": "skhcn@sonla.gov.vn"},
    {"id": "vp-skhcn", "name": "Văn phòng Sở", "kind": "subunit", "parent": "skhcn", "address": "vp.skhcn@sonla.gov.vn"},
    {"id": "chiengmung", "name": "Xã Chiềng Mung", "kind": "commune", "parent": None,
     "address": "chiengmung@sonla.gov.vn"},
]


def restore_a_database_copy(config, rows):
    """A fake ``restic restore``: writes, under --target, a database copy holding these mailbox rows."""
    def restore(argv):
        target = argv[argv.index("--target") + 1]
        path = f"{target}/{config.database_copy(config.user_database).lstrip('/')}"
        _backup.os.makedirs(_backup.os.path.dirname(path))
        connection = sqlite3.connect(path)
        with connection:
            connection.execute("CREATE TABLE mailbox (address TEXT, organization TEXT, display_name TEXT)")
            connection.executemany("INSERT INTO mailbox VALUES (?, ?, ?)", rows)
        connection.close()
        return ""
    return restore


def test_a_purge_is_named_in_the_agencys_result_notice(config, tmp_path):
    """R7.2 and R7.3: the agency of each purged mailbox hears that its data left every backup; the Department
    gets the summary. The agency comes from the database copy of the last snapshot before the deletion."""
    connection = _userdb.connect(config.user_database)
    events(connection, ("2025-01-02 00:00:00", ADDRESS, "revoked"),
           ("2025-01-02 00:00:00", "haclv.skhcn@sonla.gov.vn", "removed"),
           ("2025-01-05 00:00:00", "lost@sonla.gov.vn", "removed"))
    config.notices = {"organizations": ORGANIZATIONS, "department": "skhcn", "domain": "sonla.gov.vn", "notify": True}
    # s3 is this run's snapshot: its copy was taken after the deletions were committed (clocks may disagree).
    snapshots = json.dumps([{"id": "s1", "time": "2025-01-01T00:00:00Z"}, {"id": "s2", "time": "2025-01-03T00:00:00Z"},
                            {"id": "s3", "time": "2025-01-04T00:00:00Z"}])
    rows = [(ADDRESS, "chiengmung", "Nguyễn Văn An"), ("haclv.skhcn@sonla.gov.vn", "vp-skhcn", "Lò Văn Hặc")]
    fake = FakeRestic({"version": (0, "restic 0.18.0", ""), "snapshots": (0, snapshots, ""),
                       "restore": (0, restore_a_database_copy(config, rows), "")})
    purge = _backup.purge_deleted(config, _backup.Restic(config, fake), keep_databases=frozenset({"s3"}))
    outbox = Outbox()
    result = _backup.notify_purged(config, purge, "2025-01-05 03:15:00", send=outbox)
    sent = outbox.messages

    assert [call[1] for call in fake.calls if call[0] == "restore"] == ["s1", "s2"]  # the last before each deletion
    assert [to["to"] for to in result["notices"]] == ["chiengmung@sonla.gov.vn", "skhcn@sonla.gov.vn",
                                                      "skhcn@sonla.gov.vn"]
    assert result["notice_errors"] == []
    texts = {message["To"].addresses[0].addr_spec + str(index): message.get_content() for index, message in enumerate(sent)}
    commune = texts["chiengmung@sonla.gov.vn0"]
    assert "Kết quả sao lưu / backup ngày 2025-01-05" in commune
    assert "Đã xóa khỏi mọi bản sao lưu, không thể khôi phục / Deleted from every backup, cannot be restored (R7.2)" \
        in commune
    assert f"{ADDRESS} (Nguyễn Văn An): Xóa hộp thư ngày / mailbox deleted on 2025-01-02" in commune
    assert "haclv" not in commune  # another agency's mailbox
    agency = texts["skhcn@sonla.gov.vn1"]
    assert "haclv.skhcn@sonla.gov.vn (Lò Văn Hặc)" in agency and ADDRESS not in agency  # sub-unit to its agency
    summary = texts["skhcn@sonla.gov.vn2"]
    assert "3 mục" in summary and "lost@sonla.gov.vn [Không rõ đơn vị / unknown agency]" in summary


def test_a_purge_sends_no_notice_without_the_agencies_or_when_told_not_to(config):
    purged = [{"address": ADDRESS, "organization": "skhcn", "display_name": "", "deleted_at": "2025-01-02 00:00:00"}]
    assert config.notices == {} and _backup.purge_notices(config, purged, "2025-01-03 00:00:00") == []
    config.notices = {"organizations": ORGANIZATIONS, "notify": False}
    assert _backup.purge_notices(config, purged, "2025-01-03 00:00:00") == []
    config.notices = {"organizations": ORGANIZATIONS, "notify": True}
    assert len(_backup.purge_notices(config, purged, "2025-01-03 00:00:00")) == 1


# --- age of the last good backup ------------------------------------------------------------------


def test_the_state_keeps_the_last_good_backup_through_failures_for_the_lifecycle_log(config):
    """R10.2c: the lifecycle's daily log shows the age of the last good backup, read from the state file."""
    now = datetime.now(UTC)
    assert _backup.backup_age(config.state_file, now) == {
        "ok": False, "msg": f"no backup recorded ({config.state_file} unreadable)"}
    _backup.run_backup(config, _backup.Restic(config, FakeRestic({"backup": (0, summary("good1"), "")})))
    age = _backup.backup_age(config.state_file, now + timedelta(hours=5))
    assert age["ok"] and age["last_run_ok"] and 4.9 <= age["age_hours"] <= 5.1
    assert age["msg"].startswith("last good backup 5.0 h ago")

    with pytest.raises(_backup.BackupError):
        _backup.run_backup(config, _backup.Restic(config, FakeRestic({"backup": (1, "", "Fatal: no space left")})))
    _backup.record_failure(config, "restic backup failed (exit 1): Fatal: no space left")
    state = json.loads(open(config.state_file).read())
    assert state["ok"] is False and state["last_good_snapshot"] == "good1"
    age = _backup.backup_age(config.state_file, now + timedelta(hours=30))
    assert not age["ok"] and not age["last_run_ok"]
    assert "older than 26 h" in age["msg"] and "the last run failed: restic backup failed" in age["msg"]


def test_a_state_with_no_good_backup_says_so(config):
    _backup.record_failure(config, "no restic repository at /x")
    assert _backup.backup_age(config.state_file) == {"ok": False, "last_run_ok": False, "msg": "no good backup recorded"}


def test_status_gives_the_age_of_the_newest_snapshot():
    now = datetime(2025, 1, 2, 12, 0, tzinfo=UTC)
    snapshots = [{"id": "a" * 64, "short_id": "aaaaaaaa", "time": "2025-01-01T10:00:00Z"},
                 {"id": "b" * 64, "short_id": "bbbbbbbb", "time": "2025-01-02T10:00:00+00:00"}]
    result = _backup.status(snapshots, 26, now)
    assert result["ok"] and result["last_id"] == "bbbbbbbb" and result["age_hours"] == 2.0
    assert not _backup.status(snapshots[:1], 25, now)["ok"]  # 26 h old
    assert not _backup.status([], 26, now)["ok"]


def test_the_failure_mail_names_the_host_and_the_error():
    mail = _backup.failure_mail("root@mail", ["ops@sonla.gov.vn"], "mail.sonla.gov.vn", "no restic repository")
    assert mail["To"].addresses[0].addr_spec == "ops@sonla.gov.vn"
    assert "mail.sonla.gov.vn" in mail["Subject"] and "no restic repository" in mail.get_content()


def test_the_side_folder_is_named_after_the_snapshot_time():
    assert _backup.side_folder_name("2025-03-04T05:06:07.5+07:00") == "Khôi phục 2025-03-03 2206"
