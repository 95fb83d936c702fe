"""The mailboxes action plugin: no account ever exists without its one-time password handoff (R6.1a, issue 10).

The plugin runs for real here; only Ansible's transport is replaced: module calls run the real module
in-process against a real SQLite database, and "remote" files are local files.
"""

import csv
import json
import os
import stat
from unittest import mock

import pytest
from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.sonla.mail.plugins.action import mailboxes as action
from ansible_collections.sonla.mail.plugins.module_utils import _password, _userdb
from ansible_collections.sonla.mail.plugins.modules import mailboxes as module
from ansible_collections.sonla.mail.tests.unit.plugins.modules.module_runner import run as run_module


class Killed(BaseException):
    """The controller dies: nothing after this point of the plugin runs."""


def desired(*local_parts):
    return [{"address": f"{part}@sonla.gov.vn", "kind": "person", "owner_id": part, "display_name": f"=HYPERLINK({part})",
             "organization": "skhcn", "quota_mb": 2048, "request": "1/QĐ"} for part in local_parts]


class Controller:
    """Runs the action plugin as ansible-playbook would, against a database in ``tmp_path``."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.database = str(tmp_path / "db" / "users.sqlite")
        self.handoff_dir = str(tmp_path / "handoff")
        self.remote = tmp_path / "remote"
        self.remote.mkdir()
        self.calls = []
        self.die_after_call = None
        self.check_mode = False

    def execute(self, module_name, module_args, task_vars):
        self.calls.append(dict(module_args))
        ok, result = run_module(module, {**module_args, "_ansible_check_mode": self.check_mode})
        if not ok:
            result["failed"] = True
        if self.die_after_call == len(self.calls):
            raise Killed
        return result

    def converge(self, mailboxes, check_mode=False, **args):
        task = mock.MagicMock()
        task.args = {"database": self.database, "handoff_dir": self.handoff_dir, **args}
        if mailboxes is not None:
            task.args["mailboxes"] = mailboxes
        task.check_mode = self.check_mode = check_mode
        connection = mock.MagicMock()
        connection._shell.tmpdir = str(self.remote)
        connection._shell.join_path = os.path.join
        plugin = action.ActionModule(task, connection, mock.MagicMock(), mock.MagicMock(), mock.MagicMock(), mock.MagicMock())
        with mock.patch.object(ActionBase, "run", return_value={}), \
                mock.patch.object(plugin, "_execute_module", side_effect=self.execute), \
                mock.patch.object(plugin, "_transfer_data", side_effect=lambda path, data: open(path, "w").write(data)), \
                mock.patch.object(plugin, "_fixup_perms2"), mock.patch.object(plugin, "_remove_tmp_path"):
            return plugin.run(task_vars={"inventory_hostname": "mail1"})

    def handoffs(self, suffix=".csv"):
        if not os.path.isdir(self.handoff_dir):
            return []
        return sorted(os.path.join(self.handoff_dir, name) for name in os.listdir(self.handoff_dir) if name.endswith(suffix))

    def passwords(self):
        found = {}
        for path in self.handoffs():
            with open(path, encoding="utf-8", newline="") as stream:
                found.update({row["address"]: row["initial_password"] for row in csv.DictReader(stream)})
        return found

    def rows(self):
        return _userdb.read_mailboxes(_userdb.connect(self.database))


def assert_every_account_has_its_handoff(controller):
    """The proof that matters: each account's password is in a handoff file, and it is the right one."""
    passwords = controller.passwords()
    rows = controller.rows()
    assert rows and set(rows) == set(passwords)
    for address, row in rows.items():
        assert _password.verify_password(passwords[address], row["password"]), address


@pytest.fixture
def controller(tmp_path):
    return Controller(tmp_path)


def test_new_accounts_get_a_confirmed_private_handoff(controller):
    result = controller.converge(desired("a", "b"))
    assert result["changed"] and result["handoff_file"] == controller.handoffs()[0]
    assert stat.S_IMODE(os.stat(result["handoff_file"]).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(controller.handoff_dir).st_mode) == 0o700
    assert controller.handoffs(".pending") == []
    assert_every_account_has_its_handoff(controller)
    assert "initial_password" not in json.dumps(result) and "{SSHA512}" not in json.dumps(result)


def test_an_unwritable_handoff_folder_commits_nothing(controller):
    controller.handoff_dir = "/dev/null/handoff"
    with pytest.raises(AnsibleActionFail, match="handoff_dir /dev/null/handoff is not usable, nothing was changed"):
        controller.converge(desired("a", "b"))
    assert not os.path.exists(controller.database) or controller.rows() == {}
    controller.handoff_dir = str(controller.tmp_path / "handoff")
    controller.converge(desired("a", "b"))  # the next run gives the accounts their passwords
    assert_every_account_has_its_handoff(controller)


def test_a_failed_handoff_write_commits_nothing(controller):
    with mock.patch.object(os, "fsync", side_effect=OSError(28, "No space left on device")), \
            pytest.raises(AnsibleActionFail, match="could not write the handoff file.*nothing was changed"):
        controller.converge(desired("a"))
    assert controller.rows() == {} and controller.handoffs(".pending") == []
    controller.converge(desired("a"))
    assert_every_account_has_its_handoff(controller)


def test_a_kill_after_the_commit_is_recovered_by_the_next_run(controller):
    controller.die_after_call = 2  # the accounts are committed, the handoff is not yet confirmed
    with pytest.raises(Killed):
        controller.converge(desired("a", "b", "c"))
    assert set(controller.rows()) == {f"{p}@sonla.gov.vn" for p in "abc"}
    assert controller.handoffs() == [] and len(controller.handoffs(".pending")) == 1
    controller.die_after_call = None
    result = controller.converge(desired("a", "b", "c"))
    assert not result["changed"] and "confirmed 1 handoff file(s)" in result["warnings"][0]
    assert controller.handoffs(".pending") == []
    assert_every_account_has_its_handoff(controller)


def test_a_kill_before_the_commit_leaves_no_stale_passwords(controller):
    controller.die_after_call = 1  # the first call planned; nothing was written to the database
    with pytest.raises(Killed):
        controller.converge(desired("a"))
    controller.die_after_call = None
    with mock.patch.object(module._userdb, "apply_plan", side_effect=KeyboardInterrupt), pytest.raises(KeyboardInterrupt):
        controller.converge(desired("a"))  # killed inside the commit: a pending file, no account
    assert len(controller.handoffs(".pending")) == 1 and controller.rows() == {}
    controller.converge(desired("a"))
    assert controller.handoffs(".pending") == []  # the uncommitted file is gone, a new one confirmed
    assert_every_account_has_its_handoff(controller)


def remembered(controller, *local_parts):
    """Make the controller's list of the host's addresses say this (another controller's converge, a lost file)."""
    with open(os.path.join(controller.handoff_dir, "mail1-addresses.json"), "w", encoding="utf-8") as stream:
        json.dump([f"{part}@sonla.gov.vn" for part in local_parts], stream)


def test_a_first_converge_from_this_controller_makes_the_passwords_after_planning(controller):
    controller.converge(desired("a"))
    assert len(controller.calls) == 2  # nothing known of the host: plan, then create with the passwords
    assert "initial_password_file" not in controller.calls[0]


def test_the_next_converge_creates_the_new_accounts_in_one_module_run(controller):
    controller.converge(desired("a"))
    calls = len(controller.calls)
    result = controller.converge(desired("a", "b"))
    assert len(controller.calls) == calls + 1 and result["added"] == ["b@sonla.gov.vn"]  # issue 19
    assert [row[0] for row in csv.reader(open(result["handoff_file"], encoding="utf-8"))][1:] == ["b@sonla.gov.vn"]
    assert controller.handoffs(".pending") == []
    assert_every_account_has_its_handoff(controller)


def test_a_guessed_account_that_exists_gets_no_row(controller):
    controller.converge(desired("a", "b"))
    remembered(controller, "a")  # b is there, but this controller does not know it
    result = controller.converge(desired("a", "b", "c"))
    assert result["added"] == ["c@sonla.gov.vn"]
    rows = [row[0] for row in csv.reader(open(result["handoff_file"], encoding="utf-8"))]
    assert rows == ["address", "c@sonla.gov.vn"]  # b keeps the password of its own handoff
    assert_every_account_has_its_handoff(controller)


def test_an_account_the_guess_missed_costs_a_second_run_not_a_wrong_handoff(controller):
    controller.converge(desired("a"))
    remembered(controller, "a", "b")  # b is said to be there, but it is not
    calls = len(controller.calls)
    result = controller.converge(desired("a", "b"))
    assert len(controller.calls) == calls + 2 and result["added"] == ["b@sonla.gov.vn"]
    assert controller.handoffs(".pending") == []  # the first guess's passwords, never used, are gone
    assert_every_account_has_its_handoff(controller)


def test_a_guess_that_found_some_new_accounts_but_not_all_hands_all_over_in_one_file(controller):
    controller.converge(desired("a"))
    remembered(controller, "a", "b")  # c is guessed new, b is missed
    calls = len(controller.calls)
    result = controller.converge(desired("a", "b", "c"))
    assert len(controller.calls) == calls + 2 and result["added"] == ["b@sonla.gov.vn", "c@sonla.gov.vn"]
    rows = [row[0] for row in csv.reader(open(result["handoff_file"], encoding="utf-8"))]
    assert rows == ["address", "b@sonla.gov.vn", "c@sonla.gov.vn"] and controller.handoffs(".pending") == []
    assert_every_account_has_its_handoff(controller)


def test_a_kill_after_a_guessed_commit_keeps_only_the_created_accounts(controller):
    controller.converge(desired("a", "b"))
    remembered(controller, "a")  # b guessed new again: its row must not reach the file
    controller.die_after_call = len(controller.calls) + 1  # c committed, the file not yet trimmed nor confirmed
    with pytest.raises(Killed):
        controller.converge(desired("a", "b", "c"))
    assert "c@sonla.gov.vn" in controller.rows() and len(controller.handoffs(".pending")) == 1
    controller.die_after_call = None
    result = controller.converge(desired("a", "b", "c"))
    assert "confirmed 1 handoff file(s)" in result["warnings"][0]
    assert controller.handoffs(".pending") == []
    assert_every_account_has_its_handoff(controller)  # b's row of the dead run's guess would break this


def test_two_runs_in_the_same_second_keep_both_handoffs(controller):
    with mock.patch.object(action, "datetime") as clock:
        clock.now.return_value.strftime.return_value = "20261201T090000000000Z"
        controller.converge(desired("a"))
        controller.converge(desired("a", "b"))
    assert len(controller.handoffs()) == 2
    assert_every_account_has_its_handoff(controller)


def test_spent_handoffs_are_deleted_and_reissue_recovers_a_lost_one(controller):
    controller.converge(desired("a", "b"))
    (first,) = controller.handoffs()
    os.unlink(first)  # the operator lost the file before handing the passwords over
    connection = _userdb.connect(controller.database)
    connection.execute("UPDATE mailbox SET last_login_at = '2026-12-01 09:00:00' WHERE address = 'b@sonla.gov.vn'")
    result = controller.converge(desired("a", "b"), reissue=["a@sonla.gov.vn", "b@sonla.gov.vn"])
    assert result["reissued"] == ["a@sonla.gov.vn"]
    assert [item["address"] for item in result["refused"]] == ["b@sonla.gov.vn"]  # already used: never reissued
    assert set(controller.passwords()) == {"a@sonla.gov.vn"}
    assert _password.verify_password(controller.passwords()["a@sonla.gov.vn"], controller.rows()["a@sonla.gov.vn"]["password"])
    connection.execute("UPDATE mailbox SET must_change = 0, password = '{BLF-CRYPT}$2y$x'")  # both chose passwords
    controller.converge(desired("a", "b"))
    assert controller.handoffs() == []  # spent one-time passwords do not linger


def test_check_mode_writes_no_handoff(controller):
    result = controller.converge(desired("a"), check_mode=True)
    assert result["changed"] and result["added"] == ["a@sonla.gov.vn"]
    assert not os.path.exists(controller.handoff_dir) and not os.path.exists(controller.database)


def test_spreadsheet_formulas_are_neutralised_but_passwords_kept():
    text = action.render_handoff({"a@sonla.gov.vn": "Abc#12345xyz"},
                                 {"a@sonla.gov.vn": {"display_name": "=cmd|' /C calc'!A0", "organization": "@sum(1)"}})
    row = list(csv.reader(text.splitlines()))[1]
    assert row == ["a@sonla.gov.vn", "'=cmd|' /C calc'!A0", "'@sum(1)", "Abc#12345xyz"]


def test_generated_passwords_never_start_a_formula():
    policy = _password.PasswordPolicy(special_characters="@")  # R6.2's set holds one: "@"
    assert all(_password.generate_password(policy, length=8)[0] != "@" for _ in range(500))


def test_a_resolved_inventory_is_read_by_path_not_resolved_again(controller, inventory_folder, tmp_path):
    """The inventory is resolved once per run (mail_inventory) and handed on by path (issue 11)."""
    from ansible_collections.sonla.mail.plugins.module_utils import _inventory
    resolved = _inventory.write_resolved(_inventory.converge_inventory(str(inventory_folder)), str(tmp_path / "resolved"))
    assert stat.S_IMODE(os.stat(resolved).st_mode) == 0o600
    with mock.patch.object(action, "converge_inventory", side_effect=AssertionError("resolved twice")):
        result = controller.converge(None, resolved=resolved)
    assert result["summary"]["added"] == 6 and set(controller.passwords()) == set(controller.rows())


def test_a_file_that_is_not_a_resolved_inventory_is_refused(controller, tmp_path):
    (tmp_path / "other.json").write_text('{"mailboxes": []}')
    with pytest.raises(AnsibleActionFail, match="is not a resolved inventory"):
        controller.converge(None, resolved=str(tmp_path / "other.json"))
