"""The mail_inventory and notices action plugins: the inventory is resolved once per run and handed on by path,
and only what a notice names travels to the server (issue 11)."""

import json
import os
import stat
from unittest import mock

import pytest
from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.sonla.mail.plugins.action import mail_inventory, notices


def plugin(module, args, check_mode=False):
    task = mock.MagicMock()
    task.args = args
    task.check_mode = check_mode
    task.diff = False
    return module.ActionModule(task, mock.MagicMock(), mock.MagicMock(), mock.MagicMock(), mock.MagicMock(), mock.MagicMock())


def load(inventory_folder, tmp_path, check_mode=False, **options):
    action = plugin(mail_inventory, {"path": str(inventory_folder), "resolved_dir": str(tmp_path / "resolved"),
                                     "cache_dir": str(tmp_path / "checked"), **options},
                    check_mode)
    with mock.patch.object(ActionBase, "run", return_value={}):
        return action.run(task_vars={})


@pytest.mark.parametrize("check_mode", [False, True])
def test_mail_inventory_saves_the_resolved_inventory_privately(inventory_folder, tmp_path, check_mode):
    result = load(inventory_folder, tmp_path, check_mode)
    path = result["resolved_file"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path, encoding="utf-8") as stream:
        saved = json.load(stream)
    assert saved["mailboxes"] == result["mailboxes"] and saved["domain"] == "sonla.gov.vn"
    assert "Nguyễn Văn An" in {mailbox["display_name"] for mailbox in saved["mailboxes"]}  # R3.4: UTF-8 as written


def test_without_return_mailboxes_the_set_is_only_in_the_resolved_file(inventory_folder, tmp_path):
    # Issue 19: site.yml hands the set on by path; a registered 50,000-entry list costs seconds of Ansible's copies.
    result = load(inventory_folder, tmp_path, return_mailboxes=False)
    assert "mailboxes" not in result and result["notified"] is not None and result["organizations"]
    with open(result["resolved_file"], encoding="utf-8") as stream:
        saved = json.load(stream)
    assert saved["mailboxes"] == load(inventory_folder, tmp_path)["mailboxes"]


def test_mail_inventory_writes_nothing_when_the_inventory_has_problems(inventory_folder, tmp_path):
    inventory_folder.write("people/bad.yml",
                           "---\npeople:\n  - {id: x-1, name: Lò Văn Hặc, organization: nowhere, request: '1'}\n")
    result = load(inventory_folder, tmp_path)
    assert result["failed"] and "unknown-organization" in result["msg"] and "resolved_file" not in result
    assert not (tmp_path / "resolved").exists()


def test_old_resolved_files_are_pruned(inventory_folder, tmp_path):
    first = load(inventory_folder, tmp_path)["resolved_file"]
    os.utime(first, (0, 0))  # from a run long ago
    second = load(inventory_folder, tmp_path)["resolved_file"]
    assert not os.path.exists(first) and os.path.exists(second)


def run_notices(args):
    action = plugin(notices, args)
    with mock.patch.object(ActionBase, "run", return_value={}), \
            mock.patch.object(action, "_execute_module", return_value={"changed": True}) as execute:
        action.run(task_vars={})
    return execute.call_args.kwargs["module_args"]


def test_notices_read_the_resolved_inventory_and_send_only_the_refused_and_dropped(inventory_folder, tmp_path):
    resolved = load(inventory_folder, tmp_path)["resolved_file"]
    dropped = [{"alias": "canbo.skhcn@sonla.gov.vn", "organization": "skhcn", "member": "gone.skhcn@sonla.gov.vn",
                "reason": "revoked"}]
    converge = {"added": ["annv.skhcn@sonla.gov.vn"], "unchanged": ["haclv.skhcn@sonla.gov.vn"],
                "refused": [{"address": "haclv.skhcn@sonla.gov.vn", "reason": "R8.3a"}], "list_member_dropped": dropped}
    with mock.patch.object(notices, "converge_inventory", side_effect=AssertionError("resolved twice")):
        args = run_notices({"result": converge, "resolved": resolved})
    # What was carried out is read from the server's database (R7.3); only refusals need names from here.
    assert [mailbox["address"] for mailbox in args["mailboxes"]] == ["haclv.skhcn@sonla.gov.vn"]
    assert args["domain"] == "sonla.gov.vn" and args["department"] == "skhcn" and args["organizations"]
    # 50,000 unchanged addresses never travel; the list members left out do (issue 17).
    assert args["result"] == {"refused": converge["refused"], "list_member_dropped": dropped}


def test_notices_refuse_a_file_that_is_not_a_resolved_inventory(tmp_path):
    (tmp_path / "x.json").write_text("[]")
    with pytest.raises(AnsibleActionFail, match="is not a resolved inventory"):
        run_notices({"result": {}, "resolved": str(tmp_path / "x.json")})
