"""Migration from the old system (issue 17): migrate_from in the inventory, the migrate module with a stand-in
doveadm that imports what the old server has and the new mailbox lacks, as dsync does."""

import json
import os
import stat
import textwrap

import pytest
from module_runner import run

from ansible_collections.sonla.mail.plugins.module_utils import _migration, _userdb
from ansible_collections.sonla.mail.plugins.module_utils._inventory import converge_inventory, load_inventory, resolve
from ansible_collections.sonla.mail.plugins.modules import migrate

PASSWORD = 'Mk-cu"%u\\1'  # a quote, a backslash and a Dovecot variable: all must arrive as written

# The stand-in doveadm: "mailbox status" answers the new mailbox's count; "sync" reads the temporary config
# (checking the password arrived in it, quoted) and brings the count up to the old mailbox's.
FAKE_DOVEADM = """#!/usr/bin/env python3
import json, re, sys
state_path = {state!r}
state = json.load(open(state_path))
args = sys.argv[1:]
state["argv"].append(args)
if "status" in args:
    print(" ".join(f"mailbox={{name}} messages={{n}}" for name, n in state["new"].items()))
elif "sync" in args:
    config = open(args[args.index("-c") + 1]).read()
    state["configs"].append(config)
    mode = __import__("os").stat(args[args.index("-c") + 1]).st_mode & 0o777
    state["modes"].append(mode)
    if "imapc_password = " + state["expected"] not in config:
        print("auth failed with this configuration:", config, file=sys.stderr)
        json.dump(state, open(state_path, "w"))
        sys.exit(75)
    state["new"] = dict(state["old"])
json.dump(state, open(state_path, "w"))
"""


@pytest.fixture
def doveadm(tmp_path):
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"argv": [], "configs": [], "modes": [], "old": {"INBOX": 250, "Sent": 40, "Archive": 12},
                                 "new": {"INBOX": 0}, "expected": '"Mk-cu\\"%%u\\\\1"'}))
    program = tmp_path / "doveadm"
    program.write_text(FAKE_DOVEADM.format(state=str(state)))
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    (tmp_path / "dovecot.conf").write_text("dovecot_config_version = 2.4.0\nprotocols = imap\n")
    return program, state


def module_args(tmp_path, program, credentials):
    return {"database": str(tmp_path / "users.sqlite"), "migrations": [migration()], "credentials": credentials,
            "doveadm": str(program), "dovecot_config": str(tmp_path / "dovecot.conf")}


def migration(**fields):
    return {"key": "person:skhcn-0001", "address": "annv.skhcn@sonla.gov.vn", "host": "legacy.test.invalid",
            "port": 143, "tls": "none", "user": "an.nguyen", **fields}


def test_the_import_runs_once_then_finds_nothing_new_and_never_shows_the_password(doveadm, tmp_path):
    program, state = doveadm
    database = str(tmp_path / "users.sqlite")
    with _userdb.connect(database) as connection:
        connection.execute(
            "INSERT INTO mailbox (address, local_part, domain, kind, owner_id, display_name, organization, quota_mb, state,"
            " password, created_at, request_ref, updated_at) VALUES (?, 'annv.skhcn', 'sonla.gov.vn', 'person',"
            " 'skhcn-0001', 'Nguyễn Văn An', 'skhcn', 1024,"
            " 'active', '{BLF-CRYPT}x', '2025-01-01 00:00:00', '12/QĐ-SKHCN', '2025-01-01 00:00:00')",
            ("annv.skhcn@sonla.gov.vn",))
    args = module_args(tmp_path, program, {"person:skhcn-0001": PASSWORD})
    ok, first = run(migrate, args)
    assert ok, first
    assert (first["changed"], first["imported"]) == (True, {"annv.skhcn@sonla.gov.vn": 302})
    ok, second = run(migrate, args)
    assert (second["changed"], second["imported"]) == (False, {"annv.skhcn@sonla.gov.vn": 0})
    recorded = state.read_text()
    assert PASSWORD not in json.dumps(first) + json.dumps(second)
    assert all(PASSWORD not in " ".join(argv) for argv in json.loads(recorded)["argv"])  # never an argument (ps)
    assert json.loads(recorded)["modes"] == [0o600, 0o600]
    assert not [name for name in os.listdir(os.path.dirname(json.loads(recorded)["argv"][1][1]))
                if name.startswith("sonla-migrate-")]  # the temporary configs are gone
    sync = json.loads(recorded)["argv"][1]
    assert sync[2:] == ["sync", "-1", "-R", "-u", "annv.skhcn@sonla.gov.vn", "imapc:"]  # one-way, never deletes
    row = _userdb.connect(database).execute("SELECT runs, imported_total, last_imported, source FROM migration").fetchone()
    assert tuple(row) == (2, 302, 0, "an.nguyen@legacy.test.invalid:143")
    events = _userdb.connect(database).execute("SELECT action, request_ref FROM mailbox_event").fetchall()
    assert [tuple(event) for event in events] == [("migrated", "12/QĐ-SKHCN")]  # the entry's request (R11.2)


def test_a_failed_import_names_the_mailbox_and_masks_the_password(doveadm, tmp_path):
    program, _ = doveadm
    database = str(tmp_path / "users.sqlite")
    _userdb.connect(database).close()
    ok, result = run(migrate, module_args(tmp_path, program, {"person:skhcn-0001": 'wr"ong%'}))
    assert not ok and "import into annv.skhcn@sonla.gov.vn from legacy.test.invalid failed (rc 75)" in result["msg"]
    assert 'imapc_password = "********"' in result["msg"]  # doveadm's output quoted the config: masked
    assert "wr" not in result["msg"].split("imapc_password", 1)[1].split("\n", 1)[0]


def test_a_missing_credential_fails_before_importing_anything(doveadm, tmp_path):
    program, state = doveadm
    ok, result = run(migrate, module_args(tmp_path, program, {}))
    assert not ok and "person:skhcn-0001" in result["msg"]
    assert json.loads(state.read_text())["argv"] == []


def test_the_config_includes_the_servers_own_and_quotes_every_value():
    text = _migration.dovecot_config("/etc/dovecot/dovecot.conf", "protocols = imap\n", migration(tls="imaps", port=993),
                                     PASSWORD)
    assert text.splitlines() == [
        "!include /etc/dovecot/dovecot.conf", 'imapc_host = "legacy.test.invalid"', "imapc_port = 993",
        "imapc_ssl = imaps", 'imapc_user = "an.nguyen"', 'imapc_password = "Mk-cu\\"%%u\\\\1"',
        "imapc_features = rfc822.size fetch-headers"]
    with pytest.raises(ValueError):
        _migration.dovecot_config("/etc/dovecot/dovecot.conf", "", migration(), "a\nimapc_host = evil")


def test_dovecot_2_4_reads_the_config_version_first_and_no_features():
    main = "# comment\ndovecot_config_version = 2.4.0\ndovecot_storage_version = 2.4.0\nprotocols = imap\n"
    lines = _migration.dovecot_config("/etc/dovecot/dovecot.conf", main, migration(), PASSWORD).splitlines()
    assert lines[:3] == ["dovecot_config_version = 2.4.0", "dovecot_storage_version = 2.4.0",
                         "!include /etc/dovecot/dovecot.conf"]
    assert not [line for line in lines if line.startswith("imapc_features")]


def test_message_count_sums_every_folder():
    assert _migration.message_count("mailbox=INBOX messages=3\nmailbox=Sent messages=40\n") == 43


PEOPLE = """\
---
people:
  - id: skhcn-0001
    name: Nguyễn Văn An
    organization: skhcn
    request: "1/QĐ"
    migrate_from:
      host: imap.old.sonla.gov.vn
      user: an.nguyen
      address: Nguyen_Van-An@sonla.gov.vn
"""


def test_migrate_from_names_the_import_and_keeps_the_old_address_as_an_alias(inventory_folder):
    inventory_folder.write("people/skhcn.yml", PEOPLE)
    result = converge_inventory(str(inventory_folder), pin=False)
    address = next(m["address"] for m in result["mailboxes"] if m["owner_id"] == "skhcn-0001")
    assert result["migrations"] == [{"key": "person:skhcn-0001", "address": address, "host": "imap.old.sonla.gov.vn",
                                     "port": 993, "tls": "imaps", "user": "an.nguyen"}]
    [legacy] = result["aliases"]
    assert (legacy["address"], legacy["members"], legacy["legacy"]) == ("nguyen_van-an@sonla.gov.vn", [address], True)


@pytest.mark.parametrize(("block", "expected"), [
    ("      host: imap.old\n      user: an\n      password: x\n",
     ("people/skhcn.yml:10: schema: person 'skhcn-0001' migrate_from: unknown key 'password' (allowed: address, host, "
      "port, tls, user)")),
    ("      host: imap.old\n      user: an\n      address: an@old.example\n",
     ("people/skhcn.yml:10: R3.1: person 'skhcn-0001' migrate_from: 'address' 'an@old.example' must be an address in "
      "sonla.gov.vn (letters, digits, . _ -): only an address of this domain can be kept as an alias")),
    ("      host: imap.old\n      user: an\n      tls: ssl\n",
     "people/skhcn.yml:10: schema: person 'skhcn-0001' migrate_from: 'tls' must be one of imaps, starttls, none, got 'ssl'"),
])
def test_a_bad_migrate_from_is_refused_with_file_and_line(inventory_folder, block, expected):
    head = PEOPLE.split("    migrate_from:\n")[0]
    inventory_folder.write("people/skhcn.yml", head + "    migrate_from:\n" + block)
    inventory = load_inventory(str(inventory_folder))
    assert [str(p).replace(f"{inventory_folder}/", "") for p in inventory.problems] == [expected]


def test_an_old_address_that_is_a_mailbox_is_refused(inventory_folder):
    inventory_folder.write("people/skhcn.yml", textwrap.dedent(PEOPLE).replace("Nguyen_Van-An", "skhcn"))
    inventory = load_inventory(str(inventory_folder))
    resolve(inventory)
    assert [str(p).replace(f"{inventory_folder}/", "") for p in inventory.problems] == [
        "people/skhcn.yml:3: R5.3: alias 'skhcn@sonla.gov.vn': collides with the mailbox or pinned address of org:skhcn"]
