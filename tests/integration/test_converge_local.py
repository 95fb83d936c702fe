"""The demo inventory converged through ansible-playbook for real (R5.3, R6.1a, R7.2).

Check mode changes nothing; the first run creates every mailbox and hands the initial passwords off
in a 0600 file; the second run changes nothing; one added person changes exactly one mailbox and
pins exactly one new address.
"""

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLAYBOOK = os.path.join(ROOT, "tests", "integration", "converge_local.yml")


@pytest.fixture
def workspace(tmp_path):
    shutil.copytree(os.path.join(ROOT, "inventories", "demo", "mail"), tmp_path / "mail")
    return tmp_path


def playbook(workspace, *options):
    extra = {
        "inventory_path": str(workspace / "mail"), "database": str(workspace / "db" / "users.sqlite"),
        "handoff_dir": str(workspace / "handoff"), "result_file": str(workspace / "result.json"),
    }
    environment = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
                       ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"))
    command = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", PLAYBOOK,
               "-e", json.dumps(extra), *options]
    return subprocess.run(command, capture_output=True, text=True, env=environment, cwd=ROOT, check=False)


def converge(workspace, *options):
    run = playbook(workspace, *options)
    assert run.returncode == 0, run.stdout + run.stderr
    return json.loads((workspace / "result.json").read_text()), run.stdout


def rows(workspace):
    with sqlite3.connect(workspace / "db" / "users.sqlite") as connection:
        return dict(connection.execute("SELECT address, password FROM mailbox"))


def test_check_mode_then_apply_then_nothing_then_one_person(workspace):
    lock = (workspace / "mail" / "addresses.lock.yml").read_text()

    preview, output = converge(workspace, "--check", "--diff")
    assert preview["converge"]["changed"] and len(preview["converge"]["added"]) == 261
    assert "annv.skhcn@sonla.gov.vn" in output  # the diff names the mailboxes
    assert not (workspace / "db" / "users.sqlite").exists()

    first, output = converge(workspace)
    assert first["converge"]["summary"]["added"] == 261 and first["allocated"] == {}
    database = rows(workspace)
    assert len(database) == 261 and all(password.startswith("{SSHA512}") for password in database.values())
    handoff = first["converge"]["handoff_file"]
    assert stat.S_IMODE(os.stat(handoff).st_mode) == 0o600  # R6.1a: only the operator reads it
    with open(handoff, encoding="utf-8") as stream:
        handed = stream.read().splitlines()
    assert len(handed) == 262 and handed[0] == "address,display_name,organization,initial_password"
    initial_password = handed[1].split(",")[-1]
    assert initial_password not in output  # never in the task output

    second, _ = converge(workspace)
    assert not second["converge"]["changed"] and second["converge"]["summary"]["unchanged"] == 261

    people = workspace / "mail" / "people" / "skhcn.yml"
    people.write_text(people.read_text(encoding="utf-8") + (
        "  - id: skhcn-0999\n    name: Nguyễn Văn An\n    organization: skhcn\n    request: \"99/QĐ-SKHCN\"\n"
    ), encoding="utf-8")
    third, _ = converge(workspace)
    assert third["allocated"] == {"person:skhcn-0999": "annvan.skhcn@sonla.gov.vn"}  # R5.3: a clash, distinct
    assert third["converge"]["added"] == ["annvan.skhcn@sonla.gov.vn"]
    assert third["converge"]["summary"]["unchanged"] == 261 and not third["converge"]["updated"]
    new_lock = (workspace / "mail" / "addresses.lock.yml").read_text()
    assert set(new_lock.splitlines()) - set(lock.splitlines()) == {"  person:skhcn-0999: annvan.skhcn@sonla.gov.vn"}
    assert set(lock.splitlines()) <= set(new_lock.splitlines())  # nobody else's address moved
    after = rows(workspace)
    assert {address: after[address] for address in database} == database  # no stored hash recomputed


@pytest.mark.parametrize(("text", "expected"), [
    ("people:\n  - id: x-1\n    name: [unclosed\n", "started on line 4"),
    ("people:\n  - {id: x-1, name: Lò Văn Hặc, organization: nowhere, request: '1'}\n", "unknown-organization"),
    ("people:\n  - {id: x-1, name: Lò Văn Hặc, organization: skhcn, request: '1', colour: blue}\n", "unknown key 'colour'"),
    ("people:\n  - {id: x-1, organization: skhcn, request: '1'}\n", "R5.2: person 'x-1': 'name' is required"),
    ("people:\n  - {id: skhcn-0001, name: Lò Văn Hặc, organization: skhcn, request: '1'}\n", "duplicate-id"),
])
def test_a_malformed_inventory_fails_clearly_and_writes_nothing(workspace, text, expected):
    (workspace / "mail" / "people" / "broken.yml").write_text("---\n" + text, encoding="utf-8")
    lock = (workspace / "mail" / "addresses.lock.yml").read_text()
    run = playbook(workspace)
    assert run.returncode != 0
    assert "nothing was changed" in run.stdout and expected in run.stdout
    assert not (workspace / "db").exists()
    assert (workspace / "mail" / "addresses.lock.yml").read_text() == lock


def test_check_mode_shows_a_new_address_without_pinning_it(workspace):
    lock = (workspace / "mail" / "addresses.lock.yml").read_text()
    people = workspace / "mail" / "people" / "skhcn.yml"
    people.write_text(people.read_text(encoding="utf-8") + (
        "  - id: skhcn-0998\n    name: Lường Thị Xuân\n    organization: skhcn\n    request: \"98/QĐ-SKHCN\"\n"
    ), encoding="utf-8")
    preview, output = converge(workspace, "--check", "--diff")
    assert preview["allocated"] == {"person:skhcn-0998": "xuanlt.skhcn@sonla.gov.vn"} and preview["lock_changed"]
    assert "person:skhcn-0998: xuanlt.skhcn@sonla.gov.vn" in output  # the diff shows the new lock line
    assert (workspace / "mail" / "addresses.lock.yml").read_text() == lock


def test_a_lost_lock_fails_before_any_mailbox_changes_owner(workspace):
    """Issue 10: without addresses.lock.yml the inventory pins anew; the converge refuses to move any mailbox."""
    converge(workspace)
    before = rows(workspace)
    lock = workspace / "mail" / "addresses.lock.yml"
    lock.unlink()
    people = workspace / "mail" / "people" / "skhcn.yml"  # a newcomer sorts first and takes an existing address
    people.write_text(people.read_text(encoding="utf-8") + (
        "  - id: skhcn-0000\n    name: Nguyễn Văn An\n    organization: skhcn\n    request: \"100/QĐ-SKHCN\"\n"
    ), encoding="utf-8")
    run = playbook(workspace)
    assert run.returncode != 0 and "would change owner" in run.stdout and "R5.3" in run.stdout
    assert rows(workspace) == before


def test_an_unusable_handoff_folder_creates_no_account_and_the_next_run_does(workspace):
    """R6.1a: an account never exists without its one-time password handed off."""
    extra = {"handoff_dir": "/dev/null/handoff"}
    run = playbook(workspace, "-e", json.dumps(extra))
    assert run.returncode != 0 and "is not usable, nothing was changed" in run.stdout
    assert not (workspace / "db" / "users.sqlite").exists() or rows(workspace) == {}
    first, _ = converge(workspace)
    assert first["converge"]["summary"]["added"] == 261 and os.path.exists(first["converge"]["handoff_file"])
