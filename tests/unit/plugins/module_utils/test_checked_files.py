"""The controller's cache of checked inventory files (issue 19): a file is read back only when its exact text passed the
same checks before, in an inventory of the same domain and organization states; everything else is checked again and
every problem (R5.2, R5.3, R7.1b, R8.3a ...) is still found."""

import os
import stat

import pytest

from ansible_collections.sonla.mail.plugins.module_utils import _checked_files, _inventory
from ansible_collections.sonla.mail.plugins.module_utils._inventory import load_inventory, render_lock, resolve

# Every kind of value a kept person holds: dicts (a restore request, an import), a date, a store, a quota, a reason.
EVERY_KIND = """\
    ---
    people:
      - {id: a-1, name: Nguyễn Văn An, organization: skhcn, request: 1/QĐ, quota_mb: 4096,
         restore: {request: 45/QĐ, date: 2026-12-01}, migrate_from: {host: imap.old.sonla.gov.vn, user: an}}
      - {id: a-2, name: Lò Văn Hặc, organization: vp-skhcn, request: 2/QĐ, leave_until: 2027-01-31, store: store2}
      - {id: a-3, name: Mùa A Sử, organization: chiengmung, request: 3/QĐ, state: suspended, reason: nghỉ việc}
    """


@pytest.fixture
def cache(tmp_path):
    return str(tmp_path / "checked")


@pytest.fixture
def counted_checks(monkeypatch):
    """How many people entries were checked, rather than read back."""
    calls = []
    real = _inventory._check_person
    monkeypatch.setattr(_inventory, "_check_person", lambda *args, **kwargs: calls.append(1) or real(*args, **kwargs))
    return calls


def pinned(inventory_folder):
    inventory_folder.write("addresses.lock.yml", render_lock(resolve(load_inventory(str(inventory_folder))).addresses))


def test_a_file_read_back_gives_what_checking_it_gives(inventory_folder, cache, counted_checks):
    inventory_folder.write("people/skhcn.yml", EVERY_KIND)
    pinned(inventory_folder)
    counted_checks.clear()
    checked = load_inventory(str(inventory_folder))
    assert len(counted_checks) == 3
    first = load_inventory(str(inventory_folder), cache)  # checks, then keeps
    again = load_inventory(str(inventory_folder), cache)  # reads back
    assert len(counted_checks) == 6  # the third load checked nobody
    for inventory in (first, again):
        assert inventory.problems == []
        assert inventory.people == checked.people and inventory.pinned == checked.pinned
    assert again.people[0].restore == {"request": "45/QĐ", "date": "2026-12-01"}
    assert again.people[0].migrate_from["host"] == "imap.old.sonla.gov.vn" and again.people[1].store == "store2"
    assert resolve(again).mailboxes == resolve(checked).mailboxes


def test_an_edited_file_is_checked_again_and_its_problem_named(inventory_folder, cache, counted_checks):
    load_inventory(str(inventory_folder), cache)
    inventory_folder.write("people/skhcn.yml", inventory_folder.read("people/skhcn.yml").replace("Nguyễn", "Nguy3n"))
    problems = [str(problem) for problem in load_inventory(str(inventory_folder), cache).problems]
    assert len(problems) == 1 and ": R5.2: person 'skhcn-0001': 'name'" in problems[0]
    assert problems[0].startswith(f"{inventory_folder}/people/skhcn.yml:")
    # A file with a problem is never kept: the same problem is found on the next run too.
    assert [str(problem) for problem in load_inventory(str(inventory_folder), cache).problems] == problems


def test_a_dissolved_organization_reaches_the_people_of_an_unchanged_file(inventory_folder, cache):
    """R7.1b: what a file's checks read from the rest of the inventory is part of the key."""
    assert load_inventory(str(inventory_folder), cache).problems == []
    inventory_folder.write("organizations.yml", inventory_folder.read("organizations.yml").replace(
        "name: Văn phòng", "state: absent\n    name: Văn phòng", 1))
    problems = [str(problem) for problem in load_inventory(str(inventory_folder), cache).problems]
    assert any("unknown-organization" in problem and "vp-skhcn" in problem for problem in problems), problems


def test_another_domain_checks_the_lock_again(inventory_folder, cache):
    """R5.3: pinned addresses outside the domain are refused even when the lock's text did not change."""
    pinned(inventory_folder)
    assert load_inventory(str(inventory_folder), cache).problems == []
    inventory_folder.write("policy.yml", "---\ndomain: sonla.vn\ndepartment: skhcn\n")
    problems = [str(problem) for problem in load_inventory(str(inventory_folder), cache).problems]
    assert problems and all(": R5: " in problem and "not a valid address at sonla.vn" in problem for problem in problems)


def test_other_code_checks_every_file_again(inventory_folder, cache, counted_checks, monkeypatch):
    load_inventory(str(inventory_folder), cache)
    checked_once = len(counted_checks)
    monkeypatch.setattr(_checked_files, "code_digest", lambda: "an upgraded collection")
    load_inventory(str(inventory_folder), cache)
    assert len(counted_checks) == 2 * checked_once


def test_a_damaged_or_foreign_entry_is_checked_again(inventory_folder, cache, counted_checks):
    expected = load_inventory(str(inventory_folder)).people
    load_inventory(str(inventory_folder), cache)
    for name in os.listdir(cache):
        with open(os.path.join(cache, name), "w", encoding="utf-8") as stream:
            stream.write('[["too", "short"]]' if name < "8" else "{not json")
    checks_before = len(counted_checks)
    again = load_inventory(str(inventory_folder), cache)
    assert again.problems == [] and again.people == expected and len(counted_checks) > checks_before


def test_the_folder_is_private_and_an_unusable_one_only_costs_time(inventory_folder, tmp_path):
    folder = tmp_path / "checked"
    folder.mkdir(mode=0o755)
    load_inventory(str(inventory_folder), str(folder))
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    entries = list(folder.iterdir())
    assert entries and all(stat.S_IMODE(entry.stat().st_mode) == 0o600 for entry in entries)
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    inventory = load_inventory(str(inventory_folder), str(blocked))
    assert inventory.problems == [] and inventory.people == load_inventory(str(inventory_folder)).people


def test_a_symlinked_lock_is_refused_whatever_was_kept(inventory_folder, cache, tmp_path):
    pinned(inventory_folder)
    assert load_inventory(str(inventory_folder), cache).problems == []
    outside = tmp_path / "outside.yml"
    outside.write_text(inventory_folder.read("addresses.lock.yml"), encoding="utf-8")
    os.unlink(inventory_folder.path / "addresses.lock.yml")
    os.symlink(outside, inventory_folder.path / "addresses.lock.yml")
    problems = [str(problem) for problem in load_inventory(str(inventory_folder), cache).problems]
    refused = f"{inventory_folder}/addresses.lock.yml:1: file: is a symbolic link; inventory files must be regular files"
    assert problems == [refused]


def test_entries_unused_for_a_month_are_deleted(inventory_folder, cache):
    load_inventory(str(inventory_folder), cache)
    (kept,) = os.listdir(cache)
    old = os.path.join(cache, "0" * 64 + ".json")
    with open(old, "w", encoding="utf-8") as stream:
        stream.write("[]")
    month_ago = os.stat(old).st_mtime - _checked_files.MAX_AGE_SECONDS - 1
    os.utime(old, (month_ago, month_ago))
    load_inventory(str(inventory_folder), cache)
    assert os.listdir(cache) == [kept]
