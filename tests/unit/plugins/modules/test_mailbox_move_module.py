"""The mailbox_move module (issue 15): read the moves, switch, finish; check mode changes nothing; each step once."""

from module_runner import run

from ansible_collections.sonla.mail.plugins.module_utils import _mailbox_plan, _userdb
from ansible_collections.sonla.mail.plugins.modules import mailbox_move

ADDRESS = "annv.skhcn@sonla.gov.vn"


def database_moving(tmp_path):
    """A user database where annv's mailbox, on store1, is to move to store2 (as a converge records it)."""
    path = str(tmp_path / "users.sqlite")
    connection = _userdb.connect(path)
    entry = {"address": ADDRESS, "kind": "person", "owner_id": "skhcn-0001", "display_name": "Nguyễn Văn An",
             "organization": "skhcn", "quota_mb": 1024}
    for store in ("store1", "store2"):
        plan = _mailbox_plan.build_plan(_mailbox_plan.validate_desired([{**entry, "store": store}]),
                                        _userdb.read_mailboxes(connection), stores=("store1", "store2"))
        _userdb.apply_plan(connection, plan, {ADDRESS: "{SSHA512}x"}, "2027-01-05 08:00:00")
    connection.close()
    return path


def host_of(path):
    return _userdb.read_mailbox(_userdb.connect(path, upgrade=False), ADDRESS)["host"]


def test_read_switch_finish_each_once(tmp_path):
    database = database_moving(tmp_path)
    ok, read = run(mailbox_move, {"database": database})
    assert ok and not read["changed"]
    assert read["moves"] == [{"address": ADDRESS, "source": "store1", "target": "store2", "switched": False}]

    ok, preview = run(mailbox_move, {"database": database, "switch": [ADDRESS], "_ansible_check_mode": True})
    assert ok and preview["changed"] and preview["switched"] == [ADDRESS] and host_of(database) == "store1"

    ok, switched = run(mailbox_move, {"database": database, "switch": [ADDRESS]})
    assert ok and switched["changed"] and switched["moves"][0]["switched"] and host_of(database) == "store2"
    ok, again = run(mailbox_move, {"database": database, "switch": [ADDRESS]})
    assert ok and not again["changed"]

    ok, finished = run(mailbox_move, {"database": database, "finish": [ADDRESS]})
    assert ok and finished["finished"] == [ADDRESS] and finished["moves"] == []
    ok, again = run(mailbox_move, {"database": database, "finish": [ADDRESS]})
    assert ok and not again["changed"]


def test_an_unswitched_move_is_not_finished(tmp_path):
    database = database_moving(tmp_path)
    ok, result = run(mailbox_move, {"database": database, "finish": [ADDRESS]})
    assert ok and not result["changed"] and result["moves"][0]["address"] == ADDRESS
