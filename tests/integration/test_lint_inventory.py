"""scripts/lint-inventory, the merge-request check: file:line: rule: message, pinning, changed pins (R5.3)."""

import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LINT = os.path.join(ROOT, "scripts", "lint-inventory")
NEW_PERSON = "  - id: skhcn-0997\n    name: Tòng Văn Pản\n    organization: skhcn\n    request: \"97/QĐ-SKHCN\"\n"


def lint(*args):
    return subprocess.run([sys.executable, LINT, *args], capture_output=True, text=True, check=False, cwd=ROOT)


@pytest.fixture
def inventory(tmp_path):
    shutil.copytree(os.path.join(ROOT, "inventories", "demo", "mail"), tmp_path / "mail")
    return tmp_path


def test_the_demo_inventory_is_clean():
    done = lint("inventories/demo")
    assert done.returncode == 0 and done.stdout == "" and done.stderr == "inventories/demo: ok\n"


def test_a_new_person_must_be_pinned_then_is(inventory):
    people = inventory / "mail" / "people" / "skhcn.yml"
    lines = people.read_text(encoding="utf-8").count("\n")
    people.write_text(people.read_text(encoding="utf-8") + NEW_PERSON, encoding="utf-8")

    unpinned = lint(str(inventory))
    assert unpinned.returncode == 1
    assert unpinned.stdout == (f"{people}:{lines + 1}: R5.3: person:skhcn-0997 has no pinned address yet (would be "
                               "pantv.skhcn@sonla.gov.vn); run scripts/lint-inventory --allocate and commit addresses.lock.yml\n")

    lock = (inventory / "mail" / "addresses.lock.yml").read_text()
    pinned = lint("--allocate", str(inventory))
    assert pinned.returncode == 0 and pinned.stdout == "allocated person:skhcn-0997: pantv.skhcn@sonla.gov.vn\n"
    new_lock = (inventory / "mail" / "addresses.lock.yml").read_text()
    assert set(new_lock.splitlines()) - set(lock.splitlines()) == {"  person:skhcn-0997: pantv.skhcn@sonla.gov.vn"}
    assert lint(str(inventory)).returncode == 0


def test_an_unknown_organization_is_reported_with_its_line(inventory):
    (inventory / "mail" / "people" / "zz.yml").write_text(
        "---\npeople:\n  - id: zz-1\n    name: Lò Thị Xuân\n    organization: nowhere\n    request: \"1/QĐ\"\n", encoding="utf-8")
    done = lint(str(inventory))
    assert done.returncode == 1
    assert done.stdout == (f"{inventory}/mail/people/zz.yml:5: unknown-organization: person 'zz-1': "
                           "organization 'nowhere' is not in organizations.yml\n")


def test_a_changed_pinned_address_fails_against_the_base(inventory):
    subprocess.run(["git", "init", "-q", str(inventory)], check=True)
    subprocess.run(["git", "-C", str(inventory), "add", "."], check=True)
    subprocess.run(["git", "-C", str(inventory), "-c", "user.name=t", "-c", "user.email=t@invalid", "commit", "-qm", "base"],
                   check=True)
    lock = inventory / "mail" / "addresses.lock.yml"
    lock.write_text(lock.read_text().replace("annv.skhcn@sonla.gov.vn", "an.nguyen.skhcn@sonla.gov.vn"))
    done = lint("--base", "HEAD", str(inventory))
    assert done.returncode == 1
    changed = "person:skhcn-0001: pinned address annv.skhcn@sonla.gov.vn was changed to an.nguyen.skhcn@sonla.gov.vn"
    assert f"R5.3: {changed}" in done.stdout


def test_a_removal_without_its_own_request_fails_against_the_base(inventory):
    """R11.2: the merge-request check names the entry that changed under its creation request."""
    subprocess.run(["git", "init", "-q", str(inventory)], check=True)
    subprocess.run(["git", "-C", str(inventory), "add", "."], check=True)
    subprocess.run(["git", "-C", str(inventory), "-c", "user.name=t", "-c", "user.email=t@invalid", "commit", "-qm", "base"],
                   check=True)
    people = inventory / "mail" / "people" / "skhcn.yml"
    text = people.read_text(encoding="utf-8")
    first = text.index("  - id: ")
    entry_end = text.index("\n  - id: ", first + 1)
    people.write_text(text[:entry_end] + "\n    state: absent" + text[entry_end:], encoding="utf-8")
    done = lint("--base", "HEAD", str(inventory))
    assert done.returncode == 1
    assert f"{people}:{text[:first].count(chr(10)) + 1}: R11.2: person " in done.stdout, done.stdout
    assert "state changed under the same request" in done.stdout


def test_an_alias_loop_and_a_collision_are_reported_with_their_lines(inventory):
    """aliases.yml (issue 17): the merge-request check refuses what the converge would refuse."""
    aliases = inventory / "mail" / "aliases.yml"
    aliases.write_text("---\naliases:\n"
                       "  - {address: a.skhcn, organization: skhcn, members: [b.skhcn@sonla.gov.vn]}\n"
                       "  - {address: b.skhcn, organization: skhcn, members: [a.skhcn@sonla.gov.vn]}\n", encoding="utf-8")
    done = lint(str(inventory))
    assert done.returncode == 1
    assert done.stdout.splitlines()[0] == (
        f"{aliases}:3: alias-loop: alias 'a.skhcn@sonla.gov.vn': a loop: a.skhcn@sonla.gov.vn -> b.skhcn@sonla.gov.vn"
        " -> a.skhcn@sonla.gov.vn")
    aliases.write_text("---\naliases:\n  - {address: skhcn, organization: skhcn, members_of: skhcn}\n", encoding="utf-8")
    done = lint(str(inventory))
    assert done.returncode == 1
    assert done.stdout == (f"{aliases}:3: R5.3: alias 'skhcn@sonla.gov.vn': collides with the mailbox or pinned address "
                           "of org:skhcn\n")
    aliases.write_text("---\naliases:\n  - {address: canbo.skhcn, organization: skhcn, members_of: skhcn,"
                       " include_subunits: true}\n", encoding="utf-8")
    assert lint(str(inventory)).returncode == 0
