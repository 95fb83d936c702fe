"""The directory and welcome modules (issue 17): check mode, apply, a second run changes nothing."""

import json
import os

from module_runner import run

from ansible_collections.sonla.mail.plugins.module_utils import _userdb, _welcome
from ansible_collections.sonla.mail.plugins.modules import directory, welcome

NOW = "2026-12-01 10:00:00"
D = "@sonla.gov.vn"
ORGANIZATIONS = [{"id": "skhcn", "name": "Sở Khoa học và Công nghệ", "kind": "department", "parent": None}]


def database_with(tmp_path, *local_parts):
    path = str(tmp_path / "users.sqlite")
    connection = _userdb.connect(path)
    for local_part in local_parts:
        connection.execute(
            "INSERT INTO mailbox (address, local_part, domain, kind, owner_id, display_name, organization, quota_mb,"
            " state, password, created_at, updated_at) VALUES (?, ?, 'sonla.gov.vn', 'person', ?, ?, 'skhcn', 100,"
            " 'active', '{SSHA512}x', ?, ?)", (local_part + D, local_part, local_part, f"Người {local_part}", NOW, NOW))
    connection.close()
    return path


def directory_args(tmp_path, database, **extra):
    canbo = {"address": "canbo.skhcn" + D, "kind": "list", "organization": "skhcn", "display_name": "Cán bộ",
             "request": None, "legacy": False, "members": ["annv.skhcn" + D], "dropped": []}
    return {"database": database, "aliases": [canbo], "organizations": ORGANIZATIONS, "domain": "sonla.gov.vn",
            "export_dir": str(tmp_path / "export"), **extra}


def test_check_mode_previews_then_apply_then_nothing_to_do(tmp_path):
    database = database_with(tmp_path, "annv.skhcn")
    args = directory_args(tmp_path, database)
    ok, preview = run(directory, {**args, "_ansible_check_mode": True, "_ansible_diff": True})
    assert ok and preview["changed"] and preview["added"] == ["canbo.skhcn" + D]
    assert "canbo.skhcn@sonla.gov.vn -> annv.skhcn@sonla.gov.vn" in preview["diff"]["after"]
    assert not os.path.exists(tmp_path / "export")  # check mode writes nothing
    ok, applied = run(directory, args)
    assert ok and applied["changed"] and applied["summary"]["added"] == 1
    exported = json.loads((tmp_path / "export" / "directory.json").read_text(encoding="utf-8"))
    assert [alias["address"] for alias in exported["aliases"]] == ["canbo.skhcn" + D]
    ok, again = run(directory, args)
    assert ok and not again["changed"] and again["unchanged"] == ["canbo.skhcn" + D] and again["export"]["written"] == []


def test_check_mode_on_a_new_server_plans_every_alias(tmp_path):
    ok, preview = run(directory, {**directory_args(tmp_path, str(tmp_path / "none.sqlite")), "_ansible_check_mode": True})
    assert ok and preview["added"] == ["canbo.skhcn" + D] and not os.path.exists(tmp_path / "none.sqlite")


def test_the_welcome_goes_once_and_only_what_postfix_took_is_recorded(tmp_path, monkeypatch):
    database = database_with(tmp_path, "annv.skhcn", "binhtt.skhcn")
    sent_to = []

    def send_each(messages, host, port, timeout=30):
        addresses = [message["To"].addresses[0].addr_spec for message in messages]
        sent_to.append(addresses)
        return [a for a in addresses if a.startswith("annv")], ["binhtt.skhcn@sonla.gov.vn: 451 try later"]

    monkeypatch.setattr(_welcome, "send_each", send_each)
    args = {"database": database, "domain": "sonla.gov.vn", "support_contact": "Trung tâm CNTT"}
    ok, leave_all = run(welcome, {**args, "max_mails": 0})  # a run may leave every mail to the welcome job
    assert ok and not leave_all["changed"] and (leave_all["welcomed"], leave_all["pending"]) == ([], 2) and not sent_to
    ok, first = run(welcome, args)
    assert ok and first["changed"] and first["welcomed"] == ["annv.skhcn" + D] and first["pending"] == 1
    ok, second = run(welcome, args)
    assert second["welcomed"] == [] and sent_to[1] == ["binhtt.skhcn" + D]  # the refused one is tried again, alone
    ok, preview = run(welcome, {**args, "_ansible_check_mode": True})
    assert preview["welcomed"] == ["binhtt.skhcn" + D] and len(sent_to) == 2  # check mode sends nothing
