"""Aliases in the user database (issue 17): plan and apply, revoked members dropped once, Postfix's query,
the directory export (R10.1b) and the welcome mail's bookkeeping."""

import csv
import io
import json
import pathlib

import pytest
import yaml

from ansible_collections.sonla.mail.plugins.module_utils import _alias_plan, _directory, _notices, _userdb, _welcome

NOW = "2026-12-01 10:00:00"
D = "@sonla.gov.vn"
ROLE_VARS = pathlib.Path(__file__).parents[4] / "roles" / "postfix" / "vars" / "main.yml"
ORGANIZATIONS = [{"id": "skhcn", "name": "Sở Khoa học và Công nghệ", "kind": "department", "parent": None},
                 {"id": "vp-skhcn", "name": "Văn phòng Sở", "kind": "subunit", "parent": "skhcn"}]


def alias(local_part, members, **fields):
    return {"address": local_part + D, "kind": "list", "organization": "skhcn", "display_name": "Cán bộ",
            "request": "1/QĐ", "legacy": False, "members": [m + D for m in members], "dropped": [], **fields}


def add_mailbox(connection, local_part, state="active", organization="skhcn", password="{SSHA512}secret"):
    connection.execute(
        "INSERT INTO mailbox (address, local_part, domain, kind, owner_id, display_name, organization, quota_mb, state,"
        " password, created_at, updated_at, suspended_reason) VALUES (?, ?, 'sonla.gov.vn', 'person', ?, ?, ?, 100, ?,"
        " ?, ?, ?, ?)",
        (local_part + D, local_part, local_part, f"Người {local_part}", organization, state, password, NOW, NOW,
         "lộ mật khẩu" if state == "suspended" else None))


@pytest.fixture
def database(tmp_path):
    connection = _userdb.connect(str(tmp_path / "users.sqlite"))
    for local_part in ("annv.skhcn", "binhtt.skhcn"):
        add_mailbox(connection, local_part)
    add_mailbox(connection, "chienlv.skhcn", state="suspended", organization="vp-skhcn")
    yield connection
    connection.close()


def converge(connection, desired, revoked=()):
    plan = _alias_plan.build_plan(desired, _alias_plan.read_aliases(connection), set(revoked),
                                  _alias_plan.reported_drops(connection))
    _alias_plan.apply_plan(connection, plan, NOW)
    return plan


def postfix_lookup(connection, address):
    """What Postfix gets for ``address``: the role's one query, with %s replaced, rows joined by commas."""
    maps = yaml.safe_load(ROLE_VARS.read_text(encoding="utf-8"))["__postfix_userdb_maps"]
    query = next(item["vars"]["__postfix_userdb_query"] for item in maps if item["dest"].endswith("-aliases.cf"))
    return ",".join(row[0] for row in connection.execute(query.replace("%s", address)))


def test_added_changed_removed_unchanged_and_nothing_the_second_time(database):
    plan = converge(database, [alias("canbo.skhcn", ["annv.skhcn", "chienlv.skhcn"]), alias("vanthu.skhcn", ["annv.skhcn"])])
    assert [a["address"] for a in plan.added] == ["canbo.skhcn" + D, "vanthu.skhcn" + D]
    assert postfix_lookup(database, "canbo.skhcn" + D).split(",") == ["annv.skhcn" + D, "chienlv.skhcn" + D]
    assert postfix_lookup(database, "annv.skhcn" + D) == ""  # a mailbox is no alias
    again = _alias_plan.build_plan([alias("canbo.skhcn", ["annv.skhcn", "chienlv.skhcn"]), alias("vanthu.skhcn", ["annv.skhcn"])],
                                   _alias_plan.read_aliases(database), set(), _alias_plan.reported_drops(database))
    assert not again.changed_anything and again.unchanged == ["canbo.skhcn" + D, "vanthu.skhcn" + D]
    plan = converge(database, [alias("canbo.skhcn", ["annv.skhcn", "binhtt.skhcn"], display_name="Toàn thể")])
    assert plan.removed == ["vanthu.skhcn" + D]
    assert plan.changed == [{"address": "canbo.skhcn" + D, "changes": {"display_name": ["Cán bộ", "Toàn thể"]},
                             "joined": ["binhtt.skhcn" + D], "left": ["chienlv.skhcn" + D]}]
    assert postfix_lookup(database, "vanthu.skhcn" + D) == ""
    assert plan.summary() == {"added": 0, "changed": 1, "removed": 1, "unchanged": 0, "dropped": 0}
    diff = _alias_plan.diff_text(plan)
    assert "vanthu.skhcn@sonla.gov.vn\n" in diff["before"] and "canbo.skhcn@sonla.gov.vn <- binhtt" in diff["after"]


def test_a_revoked_member_is_dropped_and_reported_once(database):
    converge(database, [alias("canbo.skhcn", ["annv.skhcn", "binhtt.skhcn"])])
    database.execute("DELETE FROM mailbox WHERE address = ?", ("binhtt.skhcn" + D,))  # the lifecycle revokes it
    assert postfix_lookup(database, "canbo.skhcn" + D) == "annv.skhcn" + D  # at once, by the trigger
    desired = [alias("canbo.skhcn", ["annv.skhcn", "binhtt.skhcn"])]  # the inventory still names it
    plan = converge(database, desired, revoked={"binhtt.skhcn" + D})
    assert plan.dropped == [{"alias": "canbo.skhcn" + D, "organization": "skhcn", "member": "binhtt.skhcn" + D,
                             "reason": _alias_plan.DROPPED_REVOKED}]
    assert plan.changed == [] and plan.unchanged == ["canbo.skhcn" + D]
    again = converge(database, desired, revoked={"binhtt.skhcn" + D})
    assert not again.changed_anything


def test_a_member_deleted_on_request_is_reported_once_too(database):
    desired = [alias("canbo.skhcn", ["annv.skhcn"], dropped=[{"member": "binhtt.skhcn" + D, "reason": "xóa"}])]
    assert converge(database, desired).dropped[0]["member"] == "binhtt.skhcn" + D
    assert converge(database, desired).dropped == []


def test_the_export_lists_mailboxes_and_aliases_without_secrets_or_suspension(database, tmp_path):
    converge(database, [alias("canbo.skhcn", ["annv.skhcn"])])
    directory = _directory.build(database, ORGANIZATIONS, "sonla.gov.vn")
    files = _directory.changed_files(str(tmp_path / "export"), directory)
    _directory.write(files)
    exported = json.loads((tmp_path / "export" / "directory.json").read_text(encoding="utf-8"))
    assert (exported["schema"], exported["version"]) == ("sonla.mail.directory", 1)
    assert [m["address"] for m in exported["mailboxes"]] == ["annv.skhcn" + D, "binhtt.skhcn" + D, "chienlv.skhcn" + D]
    suspended = exported["mailboxes"][2]
    assert suspended == {"address": "chienlv.skhcn" + D, "kind": "person", "display_name": "Người chienlv.skhcn",
                         "organization": "vp-skhcn", "organization_name": "Văn phòng Sở", "agency": "skhcn",
                         "agency_name": "Sở Khoa học và Công nghệ"}
    assert exported["aliases"][0]["address"] == "canbo.skhcn" + D
    text = "".join(files.values())
    for secret_or_state in ("SSHA512", "secret", "suspended", "lộ mật khẩu", "must_change", "last_login"):
        assert secret_or_state not in text
    rows = list(csv.DictReader(io.StringIO((tmp_path / "export" / "directory.csv").read_text(encoding="utf-8"))))
    assert [(row["address"], row["type"]) for row in rows][-1] == ("canbo.skhcn" + D, "alias")
    assert tuple(rows[0]) == _directory.CSV_HEADER
    assert _directory.changed_files(str(tmp_path / "export"), directory) == {}  # idempotent


def test_the_export_keeps_a_spreadsheet_from_running_a_name(database, tmp_path):
    add_mailbox(database, "x.skhcn")
    database.execute("UPDATE mailbox SET display_name = '=HYPERLINK(1)' WHERE address = ?", ("x.skhcn" + D,))
    text = _directory.render_csv(_directory.build(database, ORGANIZATIONS, "sonla.gov.vn"))
    assert ",'=HYPERLINK(1)," in text


def test_welcome_goes_once_to_new_mailboxes_only(tmp_path):
    path = str(tmp_path / "old.sqlite")
    connection = _userdb.connect(path)
    add_mailbox(connection, "annv.skhcn")
    connection.execute("DROP TABLE welcome_mail")  # a database from before the welcome mail
    connection.close()
    connection = _userdb.connect(path)
    assert _welcome.pending(connection) == []  # existing mailboxes are not new: an upgrade mails nobody
    add_mailbox(connection, "binhtt.skhcn")
    assert _welcome.pending(connection) == [{"address": "binhtt.skhcn" + D, "display_name": "Người binhtt.skhcn"}]
    _welcome.record_sent(connection, ["binhtt.skhcn" + D], NOW)
    assert _welcome.pending(connection) == []


def welcomed_by(monkeypatch, refuse=()):
    """Stands in for Postfix: records each SMTP session's recipients, and refuses those in ``refuse``."""
    sessions = []

    def send_each(messages, host, port):
        recipients = [message["To"].addresses[0].addr_spec for message in messages]
        sessions.append(recipients)
        return ([r for r in recipients if r not in refuse],
                [f"{r}: 451 try later" for r in recipients if r in refuse])
    monkeypatch.setattr(_welcome, "send_each", send_each)
    return sessions


def test_a_run_sends_at_most_its_share_oldest_first_and_records_each_batch(tmp_path, monkeypatch):
    connection = _userdb.connect(str(tmp_path / "users.sqlite"))
    names = [f"u{number:03}.skhcn" for number in range(250)]
    for name in names:
        add_mailbox(connection, name)
    sessions = welcomed_by(monkeypatch)
    options = _welcome.settings("sonla.gov.vn")
    result = _welcome.send_pending(connection, options, NOW, limit=120)
    assert result == {"welcomed": [n + D for n in names[:120]], "errors": [], "pending": 130}
    assert [len(session) for session in sessions] == [_welcome.BATCH, 120 - _welcome.BATCH]
    result = _welcome.send_pending(connection, options, NOW)  # the welcome job: all that is left
    assert result["welcomed"] == [n + D for n in names[120:]] and result["pending"] == 0
    assert _welcome.pending(connection) == []


def test_a_batch_postfix_refuses_whole_ends_the_run_and_stays_owed(tmp_path, monkeypatch):
    connection = _userdb.connect(str(tmp_path / "users.sqlite"))
    names = [f"u{number:03}.skhcn" for number in range(_welcome.BATCH + 5)]
    for name in names:
        add_mailbox(connection, name)
    refused = {n + D for n in names[:_welcome.BATCH]}
    sessions = welcomed_by(monkeypatch, refuse=refused)
    result = _welcome.send_pending(connection, _welcome.settings("sonla.gov.vn"), NOW)
    assert len(sessions) == 1  # not one more session against a Postfix that takes nothing
    assert result["welcomed"] == [] and len(result["errors"]) == _welcome.BATCH
    assert result["pending"] == len(names)


def test_the_converge_and_the_welcome_job_never_send_at_once(tmp_path):
    lock = str(tmp_path / "welcome.lock")
    with _welcome.exclusive(lock) as first:
        with _welcome.exclusive(lock) as second:
            assert (first, second) == (True, False)
    with _welcome.exclusive(lock) as again:
        assert again


def test_the_welcome_settings_fall_back_to_the_operators_then_postmaster():
    assert _welcome.settings("sonla.gov.vn", operators_mailbox="cntt@sonla.gov.vn")["support"] == "cntt@sonla.gov.vn"
    options = _welcome.settings("sonla.gov.vn")
    assert (options["support"], options["sender"], options["webmail_url"]) == (
        "postmaster@sonla.gov.vn", "postmaster@sonla.gov.vn", "https://mail.sonla.gov.vn")


def test_the_welcome_mail_carries_the_rules_the_help_and_the_password_change():
    [message] = _welcome.render([{"address": "annv.skhcn" + D, "display_name": "Nguyễn Văn An"}], "sonla.gov.vn",
                                "https://mail.sonla.gov.vn", "Trung tâm CNTT, 0212 000", "postmaster@sonla.gov.vn", NOW)
    text = message.get_content()
    assert message["To"].addresses[0].addr_spec == "annv.skhcn" + D
    for needed in ("bí mật nhà nước", "state-secret", "R3.3", "R12.4", "R12.5", "R10.1d", "R10.2d",
                   "Trung tâm CNTT, 0212 000", "https://mail.sonla.gov.vn", "một lần", "one-time password",
                   "--- English ---", "Kính gửi Nguyễn Văn An"):
        assert needed in text
    assert message["Auto-Submitted"] == "auto-generated"


def test_the_agency_that_owns_the_list_is_told_of_a_dropped_member_once():
    organizations = [{**org, "address": org["id"].replace("-", ".") + D} for org in ORGANIZATIONS]
    member = {"address": "binhtt.skhcn" + D, "display_name": "Trần Thị Bình", "organization": "vp-skhcn"}
    directory = _notices.Directory(organizations, "skhcn", [member])
    drop = {"alias": "canbo.skhcn" + D, "organization": "skhcn", "member": "binhtt.skhcn" + D,
            "reason": _alias_plan.DROPPED_REVOKED}
    items = _notices.converge_items({"list_member_dropped": [drop]}, directory)
    assert items == [_notices.Item("list_member_dropped", "skhcn", "binhtt.skhcn" + D, "Trần Thị Bình",
                                   f"danh sách / list canbo.skhcn@sonla.gov.vn: {_alias_plan.DROPPED_REVOKED}")]
    assert _notices.touched_addresses({"list_member_dropped": [drop]}) == {"binhtt.skhcn" + D}
    [notice, _summary] = _notices.render(items, directory, NOW, "converge", "sonla.gov.vn")
    assert notice["To"].addresses[0].addr_spec == "skhcn" + D
    assert "Left out of mailing lists" in notice.get_content() and "binhtt.skhcn@sonla.gov.vn" in notice.get_content()
