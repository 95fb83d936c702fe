"""The mailboxes and mail_inventory modules: check mode, idempotence, safety and failures."""

import json
import os
import shutil
import sqlite3
import stat
from unittest import mock

from module_runner import run

from ansible_collections.sonla.mail.plugins.module_utils import _userdb
from ansible_collections.sonla.mail.plugins.modules import mail_inventory, mailboxes


def desired(*local_parts, **fields):
    return [{"address": f"{part}@sonla.gov.vn", "kind": "person", "owner_id": part, "display_name": "Lò Văn Hặc",
             "organization": "skhcn", "quota_mb": 2048, "request": "1/QĐ", **fields} for part in local_parts]


def hashes_file(tmp_path, *local_parts):
    path = tmp_path / "hashes.json"
    path.write_text(json.dumps({f"{part}@sonla.gov.vn": "{SSHA512}abc" for part in local_parts}))
    return str(path)


def test_check_mode_plans_and_writes_nothing(tmp_path):
    database = tmp_path / "users.sqlite"
    ok, result = run(mailboxes, {"database": str(database), "mailboxes": desired("a", "b"), "_ansible_check_mode": True})
    assert ok and result["changed"] and result["added"] == ["a@sonla.gov.vn", "b@sonla.gov.vn"]
    assert not database.exists()


def test_new_mailboxes_ask_for_initial_passwords_before_writing(tmp_path):
    database = tmp_path / "users.sqlite"
    ok, result = run(mailboxes, {"database": str(database), "mailboxes": desired("a")})
    assert ok and not result["changed"]
    assert result["needs_initial_passwords"] == ["a@sonla.gov.vn"]
    assert _userdb.read_mailboxes(_userdb.connect(str(database))) == {}


def test_apply_then_second_run_reports_unchanged(tmp_path):
    args = {"database": str(tmp_path / "users.sqlite"), "mailboxes": desired("a", "b")}
    ok, result = run(mailboxes, {**args, "initial_password_file": hashes_file(tmp_path, "a", "b"), "now": "2026-11-28 09:00:00"})
    assert ok and result["changed"] and result["summary"]["added"] == 2
    assert not (tmp_path / "hashes.json").exists()  # the hash file is consumed
    row = _userdb.read_mailboxes(_userdb.connect(args["database"]))["a@sonla.gov.vn"]
    assert (row["password"], row["must_change"], row["created_at"]) == ("{SSHA512}abc", 1, "2026-11-28 09:00:00")
    ok, again = run(mailboxes, args)
    assert ok and not again["changed"] and again["unchanged"] == ["a@sonla.gov.vn", "b@sonla.gov.vn"]


def test_results_and_diff_never_show_password_hashes(tmp_path):
    args = {"database": str(tmp_path / "users.sqlite"), "mailboxes": desired("a"), "_ansible_diff": True}
    ok, result = run(mailboxes, {**args, "initial_password_file": hashes_file(tmp_path, "a")})
    assert ok and "{SSHA512}" not in json.dumps(result)
    assert "a@sonla.gov.vn: Lò Văn Hặc (skhcn, 2048 MB, active)" in result["diff"]["after"]


def test_suspended_without_reason_fails_naming_the_mailbox(tmp_path):
    ok, result = run(mailboxes, {"database": str(tmp_path / "u.sqlite"), "mailboxes": desired("a", state="suspended")})
    assert not ok and result["msg"] == "mailbox a@sonla.gov.vn: state suspended needs a reason (R8.2)"


def test_too_many_removals_fail_before_anything_is_written(tmp_path):
    args = {"database": str(tmp_path / "users.sqlite"), "mailboxes": desired("a", "b", "c")}
    run(mailboxes, {**args, "initial_password_file": hashes_file(tmp_path, "a", "b", "c")})
    ok, result = run(mailboxes, {**args, "mailboxes": desired("a", "b", "c", state="absent"), "max_removals": 2})
    assert not ok and "more than max_removals=2" in result["msg"]
    assert len(_userdb.read_mailboxes(_userdb.connect(args["database"]))) == 3


def test_exclusive_removes_under_the_request_it_is_given_or_not_at_all(tmp_path):
    """R11.2: a mailbox the inventory does not list has no entry to take a request from."""
    args = {"database": str(tmp_path / "users.sqlite"), "mailboxes": desired("a", "b")}
    run(mailboxes, {**args, "initial_password_file": hashes_file(tmp_path, "a", "b")})
    ok, result = run(mailboxes, {**args, "mailboxes": desired("a"), "exclusive": True})
    assert not ok and "exclusive_request" in result["msg"] and "b@sonla.gov.vn" in result["msg"]
    assert len(_userdb.read_mailboxes(_userdb.connect(args["database"]))) == 2
    ok, result = run(mailboxes, {**args, "mailboxes": desired("a"), "exclusive": True, "exclusive_request": "30/QĐ-UBND"})
    assert ok and result["removed"] == ["b@sonla.gov.vn"]
    removed = _userdb.connect(args["database"]).execute("SELECT request_ref FROM mailbox_event WHERE action = 'removed'")
    assert [row[0] for row in removed] == ["30/QĐ-UBND"]


def test_removal_deletes_the_mail_too(tmp_path):
    mail_root = tmp_path / "vmail"
    maildir = mail_root / "sonla.gov.vn" / "a" / "Maildir" / "new"
    maildir.mkdir(parents=True)
    (maildir / "1.eml").write_text("Subject: x\n\nhello\n")
    args = {"database": str(tmp_path / "users.sqlite"), "mail_root": str(mail_root)}
    run(mailboxes, {**args, "mailboxes": desired("a", "b"), "initial_password_file": hashes_file(tmp_path, "a", "b")})
    ok, result = run(mailboxes, {**args, "mailboxes": desired("a", state="absent") + desired("b")})
    assert ok and result["removed"] == ["a@sonla.gov.vn"]
    assert not (mail_root / "sonla.gov.vn" / "a").exists()  # R7.2: erased
    assert (mail_root / "sonla.gov.vn").exists()


def test_mail_inventory_pins_addresses_once(inventory_folder):
    args = {"path": str(inventory_folder)}
    ok, check = run(mail_inventory, {**args, "_ansible_check_mode": True})
    assert ok and check["changed"] and not os.path.exists(f"{inventory_folder}/addresses.lock.yml")
    ok, first = run(mail_inventory, args)
    assert ok and first["changed"] and first["allocated"]["person:skhcn-0001"] == "annv.skhcn@sonla.gov.vn"
    assert "person:skhcn-0001: annv.skhcn@sonla.gov.vn" in inventory_folder.read("addresses.lock.yml")
    ok, second = run(mail_inventory, args)
    assert ok and not second["changed"] and second["allocated"] == {}
    assert len(second["mailboxes"]) == 6 and second["policy"]["max_attachment_mb"] == 25


def test_mail_inventory_fails_with_every_problem_and_writes_nothing(inventory_folder):
    inventory_folder.write("people/bad.yml", "---\npeople:\n  - {id: z-1, name: Lò Văn Hặc, organization: none, request: '1'}\n")
    ok, result = run(mail_inventory, {"path": str(inventory_folder)})
    assert not ok
    where = f"{inventory_folder}/people/bad.yml:3"
    assert result["problems"] == [f"{where}: unknown-organization: person 'z-1': organization 'none' is not in organizations.yml"]
    assert result["msg"].startswith("1 problem(s) in the mail inventory; nothing was changed:")
    assert not os.path.exists(f"{inventory_folder}/addresses.lock.yml")


def test_check_mode_leaves_the_database_mode_alone(tmp_path):
    database = tmp_path / "users.sqlite"
    run(mailboxes, {"database": str(database), "mailboxes": desired("a"), "initial_password_file": hashes_file(tmp_path, "a")})
    os.chmod(database, 0o600)
    ok, _ = run(mailboxes, {"database": str(database), "mailboxes": desired("a", "b"), "_ansible_check_mode": True})
    assert ok and stat.S_IMODE(os.stat(database).st_mode) == 0o600


def test_a_failed_removal_keeps_rows_and_mail_together(tmp_path):
    """R7.2: the mail of a removed mailbox goes with its row, or both stay."""
    args = {"database": str(tmp_path / "users.sqlite"), "mail_root": str(tmp_path / "vmail")}
    run(mailboxes, {**args, "mailboxes": desired("a"), "initial_password_file": hashes_file(tmp_path, "a")})
    mail = tmp_path / "vmail" / "sonla.gov.vn" / "a" / "sdbox"
    mail.mkdir(parents=True)
    with mock.patch.object(_userdb, "record_events", side_effect=sqlite3.OperationalError("disk I/O error")):
        ok, result = run(mailboxes, {**args, "mailboxes": desired("a", state="absent")})
    assert not ok and result["msg"].startswith("nothing was changed")
    assert mail.is_dir() and "a@sonla.gov.vn" in _userdb.read_mailboxes(_userdb.connect(args["database"]))
    with mock.patch.object(shutil, "rmtree", side_effect=OSError("device busy")):
        ok, result = run(mailboxes, {**args, "mailboxes": desired("a", state="absent")})
    assert ok and result["removed"] == ["a@sonla.gov.vn"]
    assert not mail.exists()  # set aside, out of Dovecot's way, until a run can delete it
    (aside,) = os.listdir(tmp_path / "vmail" / "sonla.gov.vn")
    assert aside.startswith(_userdb.SET_ASIDE_PREFIX + "a-")
    ok, _ = run(mailboxes, {**args, "mailboxes": desired("a", state="absent")})
    assert ok and os.listdir(tmp_path / "vmail" / "sonla.gov.vn") == []  # purged by the next run


def test_an_owner_change_fails_before_writing(tmp_path):
    args = {"database": str(tmp_path / "users.sqlite")}
    run(mailboxes, {**args, "mailboxes": desired("a"), "initial_password_file": hashes_file(tmp_path, "a")})
    ok, result = run(mailboxes, {**args, "mailboxes": [dict(desired("a")[0], owner_id="someone-else")]})
    assert not ok and "would change owner" in result["msg"] and "R5.3" in result["msg"]
    assert _userdb.read_mailboxes(_userdb.connect(args["database"]))["a@sonla.gov.vn"]["owner_id"] == "a"


def test_a_delegate_on_another_store_is_returned_and_warned_of(tmp_path):
    """Issue 15 with issue 17: the delegate cannot open the organization's mailbox across stores; the run says so."""
    organization = {**desired("org")[0], "kind": "organization", "store": "store1"}
    args = {"database": str(tmp_path / "users.sqlite"), "stores": ["store1", "store2"],
            "mailboxes": [organization, *desired("a", store="store2")]}
    with mock.patch.object(mailboxes.AnsibleModule, "warn") as warn:
        ok, result = run(mailboxes, {**args, "initial_password_file": hashes_file(tmp_path, "org", "a")})
        assert ok and result["apart"] == [] and not warn.called
        args["mailboxes"] = [{**organization, "delegates": ["a@sonla.gov.vn"]}, *desired("a")]
        ok, result = run(mailboxes, args)
    assert ok and result["delegated"] == [["org@sonla.gov.vn", "a@sonla.gov.vn"]]
    assert result["apart"] == [{"organization": "org@sonla.gov.vn", "delegate": "a@sonla.gov.vn",
                                "organization_store": "store1", "delegate_store": "store2"}]
    assert "a@sonla.gov.vn (store2) of org@sonla.gov.vn (store1)" in warn.call_args.args[0]
