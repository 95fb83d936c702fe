# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The inventory (R3.1, R5.1a-c, R5.2, R5.3, R7.1c, R8.2, R8.3a, R9.2a): behaviour the mutation run
(scripts/mutation.sh, docs/quality.md) found unguarded: each problem's file, line, rule and message, the
module's result, the lock and the resolved file."""

from __future__ import annotations

import json
import os
import stat
import time

import pytest

from ansible_collections.sonla.mail.plugins.module_utils._inventory import (
    InventoryProblems,
    converge_inventory,
    load_inventory,
    read_resolved,
    render_lock,
    resolve,
    write_resolved,
)
from ansible_collections.sonla.mail.plugins.module_utils._yaml_lines import Problem

DEPARTMENT = "  - {id: skhcn, name: Sở Khoa học và Công nghệ, kind: department, abbreviation: skhcn}\n"
ONE_PERSON = "---\npeople:\n  - {id: skhcn-0001, name: Nguyễn Văn An, organization: skhcn, request: 1/QĐ}\n"


def problems_of(folder, organizations=None, people=None, lock=None, resolving=True):
    """The problems of the fixture's inventory with these files replaced, as printed (file shortened to F)."""
    if organizations is not None:
        folder.write("organizations.yml", "---\norganizations:\n" + DEPARTMENT + organizations)
        folder.write("people/skhcn.yml", ONE_PERSON)
    if people is not None:
        folder.write("people/skhcn.yml", "---\npeople:\n" + people)
    if lock is not None:
        folder.write("addresses.lock.yml", lock)
    inventory = load_inventory(str(folder))
    if resolving and not inventory.problems:
        resolve(inventory)
    return [str(problem).replace(str(folder), "F") for problem in inventory.problems]


# --- the lock (R5.3) --------------------------------------------------------------------------------

@pytest.mark.parametrize(("lock", "expected"), [
    ("---\naddresses: [a]\n", ["F/addresses.lock.yml:2: schema: expected a mapping under 'addresses'"]),
    ("---\naddresses:\n  org:skhcn: skhcn@sonla.gov.vn\nextra: 1\n",
     ["F/addresses.lock.yml:4: schema: unknown top-level key 'extra' (allowed: addresses)"]),
    (("---\naddresses:\n  org:skhcn: skhcn@sonla.gov.vn\n  boss: a@sonla.gov.vn\n  person:x: a@gmail.com\n"
     f"  person:y: {'a' * 65}@sonla.gov.vn\n  person:z: 7\n  person:w: Bad..x@sonla.gov.vn\n"),
     ["F/addresses.lock.yml:4: schema: lock key 'boss' must be org:<id> or person:<id>",
      "F/addresses.lock.yml:5: R5: person:x: 'a@gmail.com' is not a valid address at sonla.gov.vn",
      f"F/addresses.lock.yml:6: R5: person:y: '{'a' * 65}@sonla.gov.vn' is not a valid address at sonla.gov.vn",
      "F/addresses.lock.yml:7: R5: person:z: 7 is not a valid address at sonla.gov.vn",
      "F/addresses.lock.yml:8: R5: person:w: 'Bad..x@sonla.gov.vn' is not a valid address at sonla.gov.vn"]),
], ids=["not-a-mapping", "unknown-top-key", "bad-keys-and-addresses"])
def test_lock_problems_name_their_line_and_rule(inventory_folder, lock, expected):
    """R5.3: a lock entry that is not a pinned address is refused, at its own line."""
    assert problems_of(inventory_folder, lock=lock, resolving=False) == expected


def test_a_pinned_local_part_of_exactly_64_characters_is_kept(inventory_folder):
    """R5.3, RFC 5321: 64 characters before the @ is the limit, not beyond it."""
    longest = "a" * 64 + "@sonla.gov.vn"
    assert problems_of(inventory_folder, lock=f"---\naddresses:\n  person:old: {longest}\n", resolving=False) == []
    assert load_inventory(str(inventory_folder)).pinned == {"person:old": longest}


def test_a_pinned_inventory_resolves_again_without_problems(inventory_folder):
    """R5.3: pinned organizations and people keep their address; a second run allocates nothing, refuses nothing."""
    first = converge_inventory(str(inventory_folder))
    again = converge_inventory(str(inventory_folder))
    assert first["changed"] and not again["changed"] and again["allocated"] == {}
    assert {m["address"] for m in again["mailboxes"]} == {m["address"] for m in first["mailboxes"]}


# --- organizations (R5.1a-c, R9.2a) -----------------------------------------------------------------

def test_organization_problems_name_their_line_rule_and_message(inventory_folder):
    """R5.1a-c, R9.2a: what is wrong with each organization, where, under which rule."""
    organizations = (
        "  - {id: q0, name: Xã Một, kind: commune, quota_mb: 0}\n"
        "  - {id: q1, name: Xã Hai, kind: commune, quota_mb: 1048577}\n"
        "  - {id: nokind, name: Sở Nội vụ}\n"  # the default kind is a department: it needs an abbreviation
        "  - {id: sub, name: Phòng Một, kind: subunit}\n"
        "  - {id: com, name: Xã Năm, kind: commune, parent: skhcn, abbreviation: BAD}\n"
        "  - {id: BadId, name: Xã Sáu, kind: commune}\n"
        "  - {id: w, name: Phường 😀, kind: ward}\n"
        "  - just text\n"
    )
    assert problems_of(inventory_folder, organizations) == [
        "F/organizations.yml:4: R9.2a: organization 'q0': 'quota_mb' must be a whole number from 1 to 1048576, got 0",
        ("F/organizations.yml:5: R9.2a: organization 'q1': 'quota_mb' must be a whole number from 1 to 1048576, "
         "got 1048577"),
        "F/organizations.yml:6: R5.1a: organization 'nokind': 'abbreviation' is required",
        "F/organizations.yml:7: R5.1c: organization 'sub': 'abbreviation' is required",
        "F/organizations.yml:7: R5.1c: organization 'sub': 'parent' is required",
        "F/organizations.yml:8: R5.1b: organization 'com': 'abbreviation' 'BAD' must match ^[a-z0-9]{1,32}$",
        "F/organizations.yml:8: R5.1c: organization 'com': only a subunit has a 'parent'",
        "F/organizations.yml:9: schema: organization: 'id' 'BadId' must match ^[a-z0-9][a-z0-9._-]{0,63}$",
        ("F/organizations.yml:10: schema: organization 'w': 'name' 'Phường 😀' holds '😀': names are letters, digits, "
         "spaces and & ' ( ) , - . / \u2019"),
        "F/organizations.yml:11: schema: organization: organization must be a mapping, got text",
        "F/organizations.yml:11: schema: organization: 'id' is required",
        "F/organizations.yml:11: schema: organization: 'name' is required",
        "F/organizations.yml:11: R5.1a: organization: 'abbreviation' is required",
    ]


def test_subunit_parents_must_be_known_agencies_with_an_address(inventory_folder):
    """R5.1c: a subunit's parent is a known department, commune or ward that has a local part itself."""
    organizations = (
        "  - {id: vp, name: Văn phòng, kind: subunit, parent: skhcn, abbreviation: vp}\n"
        "  - {id: to, name: Tổ Một, kind: subunit, parent: vp, abbreviation: to}\n"
        "  - {id: ma, name: Phòng Ma, kind: subunit, parent: ghost, abbreviation: ma}\n"
        "  - {id: xa, name: Xã, kind: commune}\n"
        "  - {id: vpxa, name: Văn phòng xã, kind: subunit, parent: xa, abbreviation: vp}\n"
    )
    assert problems_of(inventory_folder, organizations) == [
        ("F/organizations.yml:7: R5.1b: organization 'xa': commune name 'Xã' has no name after the administrative "
         "prefix (R5.1b)"),
        "F/organizations.yml:5: R5.1c: organization 'to': parent 'vp' is a subunit, which cannot have subunits",
        "F/organizations.yml:6: R5.1c: organization 'ma': parent 'ghost' is unknown",
        ("F/organizations.yml:8: R5.1c: organization 'vpxa': sub-unit 'Văn phòng xã' needs its parent's local part "
         "(R5.1c), got ''"),
    ]


def test_the_quota_bounds_and_request_of_an_organization_reach_its_mailbox(inventory_folder):
    """R9.2a: 1 MB and 1,048,576 MB are both allowed; R7.1c: the organization's request is carried on."""
    problems = problems_of(inventory_folder, "  - {id: q2, name: Xã Ba, kind: commune, quota_mb: 1}\n"
                                             "  - {id: q3, name: Xã Bốn, kind: commune, quota_mb: 1048576, request: 3/QĐ}\n")
    assert problems == []
    mailboxes = {m["owner_id"]: m for m in resolve(load_inventory(str(inventory_folder))).mailboxes}
    assert (mailboxes["q2"]["quota_mb"], mailboxes["q2"]["request"]) == (1, None)
    assert (mailboxes["q3"]["quota_mb"], mailboxes["q3"]["request"]) == (1048576, "3/QĐ")


def test_an_organization_address_already_issued_is_refused(inventory_folder):
    """R5.3: two organizations may not share a mailbox; the second must choose another abbreviation."""
    problems = problems_of(inventory_folder, "  - {id: skhcn2, name: Sở Khoa học và Công nghệ, kind: department, "
                                             "abbreviation: skhcn}\n")
    assert problems == [("F/organizations.yml:4: R5.3: organization 'skhcn2': address skhcn@sonla.gov.vn is already "
                        "issued; set a distinct 'abbreviation'")]


def test_absent_organizations_and_people_without_an_address_do_not_stop_the_others(inventory_folder):
    """R7.1a, R5.3: a dissolved organization or a person already gone, never pinned, gets no address and no
    mailbox, and everything listed after them still does."""
    inventory_folder.write("organizations.yml", "---\norganizations:\n"
                           "  - {id: aaa, name: Xã Cũ, kind: commune, state: absent}\n" + DEPARTMENT)
    inventory_folder.write("people/skhcn.yml", "---\npeople:\n"
                           "  - {id: a-0001, name: Lò Văn Cũ, organization: skhcn, request: 1/QĐ, state: absent}\n"
                           "  - {id: skhcn-0001, name: Nguyễn Văn An, organization: skhcn, request: 1/QĐ}\n")
    inventory = load_inventory(str(inventory_folder))
    resolution = resolve(inventory)
    assert inventory.problems == []
    assert resolution.addresses == {"org:skhcn": "skhcn@sonla.gov.vn", "person:skhcn-0001": "annv.skhcn@sonla.gov.vn"}
    assert [m["owner_id"] for m in resolution.mailboxes] == ["skhcn", "skhcn-0001"]


def test_the_policys_default_quota_reaches_the_mailboxes(inventory_folder):
    """R9.2b: a mailbox without its own quota gets the policy's default_quota_mb."""
    inventory_folder.write("policy.yml", "---\ndomain: sonla.gov.vn\ndepartment: skhcn\npolicy:\n  default_quota_mb: 1024\n")
    quotas = {m["owner_id"]: m["quota_mb"] for m in resolve(load_inventory(str(inventory_folder))).mailboxes}
    assert quotas == {"skhcn": 1024, "vp-skhcn": 1024, "chiengmung": 1024, "skhcn-0001": 1024, "skhcn-0002": 4096,
                      "cm-0001": 1024}


# --- names (R5.2) -----------------------------------------------------------------------------------

def test_names_in_decomposed_unicode_pass_and_only_organizations_may_hold_digits(inventory_folder):
    """R5.2, R3.4: letters written with combining marks (NFD) are letters; an organization's official
    name may hold digits, a person's may not."""
    organization = "  - {id: t1, name: \"Tru\u031bo\u031b\u0300ng so\u0302\u0301 1 & 2\", kind: commune}\n"
    people = ("  - {id: p1, name: \"Lo\u0300 Va\u0306n 1\", organization: skhcn, request: 1/QĐ}\n"
              "  - {id: p2, name: \"Lo\u0300 Va\u0306n Ha\u0306\u0323c\", organization: skhcn, request: 1/QĐ}\n")
    inventory_folder.write("organizations.yml", "---\norganizations:\n" + DEPARTMENT + organization)
    assert problems_of(inventory_folder, people=people) == [
        ("F/people/skhcn.yml:3: R5.2: person 'p1': 'name' 'Lo\u0300 Va\u0306n 1' holds '1': names are letters, "
         "spaces and ' - . \u2019")]
    assert problems_of(inventory_folder, people=people.split("\n", 1)[1]) == []


# --- people (R7.1c, R8.2, R8.3a, R9.2a) ------------------------------------------------------------

def test_person_problems_name_their_line_rule_and_message(inventory_folder):
    """R9.2a, R8.2, R8.3a, R7.1c: what is wrong with each person, where, under which rule."""
    people = (
        "  - {id: p1, name: Lò Văn A, organization: skhcn, request: 1/QĐ, quota_mb: 0}\n"
        "  - {id: p2, name: Lò Văn B, organization: skhcn, request: 1/QĐ, quota_mb: 1048577}\n"
        "  - {id: p3, name: Lò Văn C, organization: skhcn, request: 1/QĐ, state: suspended}\n"
        "  - {id: p4, name: Lò Văn D, organization: Bad, request: 1/QĐ}\n"
        "  - {id: p5, name: 5, organization: skhcn, request: 1/QĐ}\n"
        "  - {id: p6, name: Lò Văn E, organization: skhcn, request: 1/QĐ, restore: {request: 2/QĐ}}\n"
        "  - {id: p7, name: Lò Văn G, organization: skhcn, request: 1/QĐ, restore: {date: 2026-01-01, request: 3/QĐ},"
        " state: suspended, reason: x}\n"
        "  - {id: p8, name: Lò Văn H, organization: skhcn, request: 1/QĐ, restore: {date: 2026-01-01}}\n"
        "  - {id: p9, name: Lò Văn I, organization: skhcn, request: \"\"}\n"
        "  - 5\n"
    )
    assert problems_of(inventory_folder, people=people) == [
        "F/people/skhcn.yml:3: R9.2a: person 'p1': 'quota_mb' must be a whole number from 1 to 1048576, got 0",
        "F/people/skhcn.yml:4: R9.2a: person 'p2': 'quota_mb' must be a whole number from 1 to 1048576, got 1048577",
        "F/people/skhcn.yml:5: R8.2: person 'p3': 'reason' is required",
        "F/people/skhcn.yml:6: schema: person 'p4': 'organization' 'Bad' must match ^[a-z0-9][a-z0-9._-]{0,63}$",
        "F/people/skhcn.yml:7: schema: person 'p5': 'name' must be text, got 5",
        "F/people/skhcn.yml:8: R8.3a: person 'p6' restore: 'date' is required",
        "F/people/skhcn.yml:9: R8.3a: person 'p7' restore: a restore request needs state: active, got 'suspended'",
        "F/people/skhcn.yml:10: R8.3a: person 'p8' restore: 'request' is required",
        "F/people/skhcn.yml:11: R7.1c: person 'p9': 'request' is required",
        "F/people/skhcn.yml:12: schema: person: person must be a mapping, got a number",
        "F/people/skhcn.yml:12: schema: person: 'id' is required",
        "F/people/skhcn.yml:12: R5.2: person: 'name' is required",
        "F/people/skhcn.yml:12: schema: person: 'organization' is required",
        "F/people/skhcn.yml:12: R7.1c: person: 'request' is required",
    ]


def test_problems_in_block_entries_point_at_the_key(inventory_folder):
    """The problem is reported at the line of the offending key, not the entry's first line."""
    inventory_folder.write("organizations.yml", "---\norganizations:\n" + DEPARTMENT
                           + "  - {id: old, name: Xã Cũ, kind: commune, state: absent}\n")
    people = ("  - id: p1\n    name: Lò Văn A\n    request: 1/QĐ\n    organization: old\n"
              "  - id: p2\n    name: Lò Văn B\n    request: 1/QĐ\n    organization: skhcn\n    restore:\n"
              "      request: 4/QĐ\n      date: 2999-01-01\n")
    assert problems_of(inventory_folder, people=people) == [
        "F/people/skhcn.yml:6: unknown-organization: person 'p1': organization 'old' is dissolved (state: absent)",
        ("F/people/skhcn.yml:13: R8.3a: person 'p2' restore: 'date' 2999-01-01 is in the future; a restore request is "
         "dated no later than today"),
    ]


def test_a_persons_limits_are_inclusive_and_the_reason_reaches_the_mailbox(inventory_folder):
    """R9.2a: 1 and 1,048,576 MB pass; texts up to their limit pass (request 128, reason 256 characters);
    R8.2: a suspended person's reason is carried to the mailbox (Dovecot shows it)."""
    request, reason = "R" * 128, "L" * 200
    people = (f"  - {{id: p1, name: Lò Văn A, organization: skhcn, request: {request}, quota_mb: 1}}\n"
              f"  - {{id: p2, name: Lò Văn B, organization: skhcn, request: 1/QĐ, quota_mb: 1048576, state: suspended,"
              f" reason: {reason}}}\n")
    assert problems_of(inventory_folder, people=people) == []
    mailboxes = {m["owner_id"]: m for m in resolve(load_inventory(str(inventory_folder))).mailboxes}
    assert (mailboxes["p1"]["quota_mb"], mailboxes["p1"]["request"]) == (1, request)
    assert (mailboxes["p2"]["quota_mb"], mailboxes["p2"]["state"], mailboxes["p2"]["reason"]) == (1048576, "suspended", reason)
    too_long = f"  - {{id: p1, name: Lò Văn A, organization: skhcn, request: {request}R}}\n"
    assert problems_of(inventory_folder, people=too_long) == [
        "F/people/skhcn.yml:3: schema: person 'p1': 'request' is 129 characters long, more than 128"]


def test_a_person_address_too_long_is_refused_at_the_persons_line(inventory_folder):
    """R5.2, RFC 5321: the refusal names the person's file and rule R5.2. (Its line is not asserted: a
    cleanly parsed file has no line numbers and the problem says line 1; docs/quality.md, reported.)"""
    inventory_folder.write("people/new.yml", "---\npeople:\n  - {id: long-0001, name: Lò Văn Hặc" + "c" * 70
                           + ", organization: skhcn, request: 1/QĐ}\n")
    (problem,) = problems_of(inventory_folder)
    assert problem.startswith("F/people/new.yml:") and ": R5.2: person 'long-0001': address hac" in problem
    assert problem.endswith("@sonla.gov.vn has more than 64 characters before the @ (RFC 5321); shorten the name "
                            "or the agency's abbreviation")


# --- the module's result, the lock file, the resolved file -------------------------------------------

def test_converge_inventory_returns_the_whole_result_and_writes_the_lock(inventory_folder):
    """R5.3, R3.1, R7.3, R8.2a: the module's result, exactly; the lock is written (0644) only when pinning."""
    inventory_folder.write("people/leave.yml", "---\npeople:\n"
                           "  - {id: skhcn-0050, name: Hà Thị Thu, organization: skhcn, request: 5/QĐ, "
                           "leave_until: 2027-03-31}\n")
    folder = str(inventory_folder)
    lock = os.path.join(folder, "addresses.lock.yml")
    previewed = converge_inventory(folder, check_mode=True, diff=True)
    assert not os.path.exists(lock)  # check mode writes nothing
    result = converge_inventory(folder, diff=True)
    assert result == previewed
    addresses = {"org:chiengmung": "chiengmung@sonla.gov.vn", "org:skhcn": "skhcn@sonla.gov.vn",
                 "org:vp-skhcn": "vp.skhcn@sonla.gov.vn", "person:cm-0001": "suma.chiengmung@sonla.gov.vn",
                 "person:skhcn-0001": "annv.skhcn@sonla.gov.vn", "person:skhcn-0002": "haclv.skhcn@sonla.gov.vn",
                 "person:skhcn-0050": "thuht.skhcn@sonla.gov.vn"}
    leave = {"address": "thuht.skhcn@sonla.gov.vn", "kind": "person", "owner_id": "skhcn-0050",
             "display_name": "Hà Thị Thu", "organization": "skhcn", "quota_mb": 2048, "state": "active", "reason": None,
             "request": "5/QĐ", "leave_until": "2027-03-31"}
    assert {key: value for key, value in result.items() if key not in ("policy", "mailboxes")} == {
        "changed": True, "path": os.path.abspath(folder), "domain": "sonla.gov.vn", "webmail_host": "mail.sonla.gov.vn",
        "department": "skhcn",
        "aliases": [], "migrations": [],
        "organizations": [
            {"id": "skhcn", "name": "Sở Khoa học và Công nghệ", "kind": "department", "parent": None,
             "address": "skhcn@sonla.gov.vn"},
            {"id": "vp-skhcn", "name": "Văn phòng Sở", "kind": "subunit", "parent": "skhcn",
             "address": "vp.skhcn@sonla.gov.vn"},
            {"id": "chiengmung", "name": "Xã Chiềng Mung", "kind": "commune", "parent": None,
             "address": "chiengmung@sonla.gov.vn"},
        ],
        "notified": [leave],
        "allocated": addresses,
        "diff": {"before_header": os.path.join(folder, "addresses.lock.yml"),
                 "after_header": os.path.join(folder, "addresses.lock.yml"), "before": "",
                 "after": "".join(f"{key}: {address}\n" for key, address in sorted(addresses.items()))},
    }
    # The operators' mailbox defaults to the department's (RFC 5321 4.5.1, R12.5).
    assert result["policy"] == {**load_inventory(folder).policy, "operators_mailbox": "skhcn@sonla.gov.vn"}
    assert result["policy"]["password"]["min_length"] == 8
    assert leave in result["mailboxes"] and len(result["mailboxes"]) == 7
    with open(lock, encoding="utf-8") as stream:
        assert stream.read() == render_lock(addresses)
    assert stat.S_IMODE(os.stat(lock).st_mode) == 0o644
    assert sorted(os.listdir(folder)) == ["addresses.lock.yml", "organizations.yml", "people", "policy.yml"]
    again = converge_inventory(folder, diff=True)
    assert not again["changed"] and again["allocated"] == {} and "diff" not in again


def test_converge_inventory_without_pin_or_diff(inventory_folder):
    """pin=False (the merge-request lint) reports the allocation as unchanged and writes nothing; no diff
    unless asked for; a restore request makes a mailbox 'notified' (R8.3a)."""
    inventory_folder.write("people/back.yml", "---\npeople:\n"
                           "  - {id: skhcn-0060, name: Hà Thị Thu, organization: skhcn, request: 5/QĐ, "
                           "restore: {request: 9/QĐ, date: 2026-01-02}}\n")
    result = converge_inventory(str(inventory_folder), pin=False)
    assert not result["changed"] and "diff" not in result and len(result["allocated"]) == 7
    assert [(m["owner_id"], m["restore"]) for m in result["notified"]] == [
        ("skhcn-0060", {"request": "9/QĐ", "date": "2026-01-02"})]
    assert not os.path.exists(os.path.join(str(inventory_folder), "addresses.lock.yml"))
    assert "diff" not in converge_inventory(str(inventory_folder))


def test_the_refusal_lists_every_problem_up_to_twenty():
    """The module fails with every problem, one a line; past twenty it says how many more."""
    two = InventoryProblems([Problem("a.yml", 3, "R5.2", "first"), Problem("b.yml", 0, "schema", "second")])
    assert two.problems == ["a.yml:3: R5.2: first", "b.yml:1: schema: second"]
    assert str(two) == ("2 problem(s) in the mail inventory; nothing was changed:\n"
                        "a.yml:3: R5.2: first\nb.yml:1: schema: second")
    many = InventoryProblems([Problem("a.yml", line, "schema", "x") for line in range(1, 23)])
    assert str(many) == ("22 problem(s) in the mail inventory; nothing was changed:\n"
                         + "\n".join(f"a.yml:{line}: schema: x" for line in range(1, 21)) + "\n... and 2 more")
    exactly = InventoryProblems([Problem("a.yml", line, "schema", "x") for line in range(1, 21)])
    assert "more" not in str(exactly)


def test_converge_inventory_refuses_with_the_problems(inventory_folder):
    inventory_folder.write("people/skhcn.yml", "---\npeople:\n  - {id: p1, name: Lò Văn A, organization: skhcn}\n")
    with pytest.raises(InventoryProblems) as error:
        converge_inventory(str(inventory_folder))
    assert error.value.problems == [f"{inventory_folder}/people/skhcn.yml:3: R7.1c: person 'p1': 'request' is required"]


def test_the_resolved_inventory_is_saved_privately_and_read_back(tmp_path):
    """STYLE.md: resolved once per run, handed on by path in a private (0600) file; day-old files go."""
    folder = tmp_path / "resolved"
    result = {"path": "/srv/mail", "domain": "sonla.gov.vn", "department": "skhcn", "changed": True,
              "organizations": [{"id": "skhcn", "name": "Sở Khoa học và Công nghệ"}],
              "mailboxes": [{"address": "annv.skhcn@sonla.gov.vn", "display_name": "Nguyễn Văn An"}], "aliases": []}
    first = write_resolved(result, str(folder))
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(first).st_mode) == 0o600
    assert os.path.basename(first).startswith("resolved-") and first.endswith(".json")
    assert read_resolved(first) == {key: value for key, value in result.items() if key != "changed"}
    with open(first, encoding="utf-8") as stream:
        assert "Sở Khoa học" in stream.read()  # UTF-8 as written, not \\u escapes

    old, keep, recent = folder / "resolved-old.json", folder / "notes.txt", folder / "resolved-recent.json"
    for path in (old, keep, recent):
        path.write_text("{}")
    day_ago = time.time() - 86_400 - 60
    os.utime(old, (day_ago, day_ago))
    os.utime(keep, (day_ago, day_ago))
    os.utime(recent, (time.time() - 86_400 + 600,) * 2)
    second = write_resolved(result, str(folder))
    assert sorted(os.listdir(folder)) == sorted([os.path.basename(first), os.path.basename(second), "notes.txt",
                                                 "resolved-recent.json"])


@pytest.mark.parametrize("content", [{"path": "/srv/mail"}, [], {"path": 1, "domain": 2, "department": 3,
                                                                 "organizations": 4, "mailboxes": 5, "extra": 6}])
def test_a_file_that_is_not_a_resolved_inventory_is_refused(tmp_path, content):
    path = tmp_path / "resolved.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError) as error:
        read_resolved(str(path))
    assert str(error.value) == f"{path} is not a resolved inventory written by sonla.mail.mail_inventory"


# --- the policy file (R3.1, R6.1b, R6.2, R7.3, R8.2a) and the files themselves ----------------------

@pytest.mark.parametrize(("policy", "expected"), [
    (("---\ndomain: Sonla.gov.vn\nwebmail_host: x\ndepartment: Bad\nextra: 1\npolicy:\n  inactivity_suspend_days: 120\n"
     "  bogus: 1\n  password:\n    min_length: 4\n"),
     ["F/policy.yml:5: schema: policy file: unknown key 'extra' (allowed: department, domain, policy, webmail_host)",
      "F/policy.yml:2: R3.1: policy file: domain 'Sonla.gov.vn' is not a lowercase domain name",
      "F/policy.yml:4: schema: policy file: 'department' 'Bad' must match ^[a-z0-9][a-z0-9._-]{0,63}$",
      ("F/policy.yml:8: schema: policy: unknown key 'bogus' (allowed: default_quota_mb, inactivity_suspend_days, "
       "lists_outside_members, log_retention_days, max_attachment_mb, max_idle_suspensions_per_run, max_messages_per_hour, "
       "max_recipients_per_message, max_revocations_per_run, operators_mailbox, password, password_reminder_days, "
       "quota_warning_percent, revoke_after_suspended_days, revoke_warning_days, spam_junk_score, "
       "spam_reject_score, support_contact, suspend_after_limit_refusals)"),
      "F/policy.yml:7: R8.2a: policy: 'inactivity_suspend_days' must be 1-90 (R8.2a), got 120",
      "F/policy.yml:9: R6.2: policy: invalid password policy: min_length 4 is below the regulation's 8 (R6.2)"]),
    ("---\ndomain: sonla.gov.vn\nwebmail_host: bad_host\npolicy: 5\n",
     ["F/policy.yml:3: R3.1: policy file: webmail_host 'bad_host' is not a lowercase DNS host name",
      "F/policy.yml:1: schema: policy: policy must be a mapping, got a number"]),
    ("---\npolicy:\n  password_reminder_days: [7, 7]\n  password:\n    max_age_days: 30\n",
     [("F/policy.yml:3: R6.1b: policy: 'password_reminder_days' must be distinct whole days 1-29, before the expiry "
      "after password.max_age_days=30, got [7, 7]")]),
], ids=["keys-domain-department-bounds", "webmail-and-block", "cross-field"])
def test_policy_problems_name_their_line_rule_and_message(inventory_folder, policy, expected):
    """R3.1, R6.1b, R6.2, R8.2a: a policy weaker than the regulation, or malformed, is refused at its key's line."""
    inventory_folder.write("policy.yml", policy)
    assert [p for p in problems_of(inventory_folder, resolving=False) if "policy.yml" in p] == expected


@pytest.mark.parametrize(("policy", "expected"), [
    ("  spam_junk_score: 15\n  spam_reject_score: 15\n",
     [("F/policy.yml:5: R4.2: policy: 'spam_junk_score' (15) must be less than 'spam_reject_score' (15): spam between "
      "the two is filed in Junk")]),
    ("  spam_junk_score: 2\n", ["F/policy.yml:5: R4.2: policy: 'spam_junk_score' must be 3-30 (R4.2), got 2"]),
    ("  spam_reject_score: 7.5\n",
     ["F/policy.yml:5: R4.2: policy: 'spam_reject_score' must be a whole number, got 7.5"]),
    ("  operators_mailbox: ops@example.org\n",
     ["F/policy.yml:5: R12.5: policy: 'operators_mailbox' 'ops@example.org' must be a mailbox address in sonla.gov.vn"]),
    ("  operators_mailbox: nobody.skhcn@sonla.gov.vn\n",
     [("F/policy.yml:5: R12.5: policy: 'operators_mailbox' 'nobody.skhcn@sonla.gov.vn' is not an active mailbox of "
      "this inventory: postmaster@ and abuse@ would go nowhere")]),
], ids=["junk-not-below-reject", "junk-too-low", "reject-not-whole", "operators-outside", "operators-unknown"])
def test_filter_policy_problems_name_their_line_and_rule(inventory_folder, policy, expected):
    """R4.2, R12.5: spam scores out of bounds or crossed, an operators' mailbox that is none, refused at the line."""
    inventory_folder.write("policy.yml", "---\ndomain: sonla.gov.vn\ndepartment: skhcn\npolicy:\n" + policy)
    assert problems_of(inventory_folder) == expected


def test_filter_policy_is_resolved_for_the_filter_role(inventory_folder):
    """R4.2, R12.5: the thresholds and the operators' mailbox written in the policy reach the converge result."""
    inventory_folder.write("policy.yml", "---\ndomain: sonla.gov.vn\ndepartment: skhcn\npolicy:\n"
                           "  spam_junk_score: 5\n  spam_reject_score: 12\n  operators_mailbox: vp.skhcn@sonla.gov.vn\n")
    policy = converge_inventory(str(inventory_folder), pin=False)["policy"]
    assert (policy["spam_junk_score"], policy["spam_reject_score"], policy["operators_mailbox"]) == (
        5, 12, "vp.skhcn@sonla.gov.vn")
    inventory_folder.write("policy.yml", "---\ndomain: sonla.gov.vn\n")  # no department: nobody to default to
    policy = converge_inventory(str(inventory_folder), pin=False)["policy"]
    assert (policy["spam_junk_score"], policy["spam_reject_score"], policy["operators_mailbox"]) == (6, 15, "")


def test_without_a_policy_file_the_regulation_applies(inventory_folder):
    """R3.1, R9: no policy.yml: the province's domain, its webmail host, the regulation's numbers."""
    os.unlink(os.path.join(str(inventory_folder), "policy.yml"))
    inventory = load_inventory(str(inventory_folder))
    assert inventory.problems == []
    assert (inventory.domain, inventory.webmail_host, inventory.department) == ("sonla.gov.vn", "mail.sonla.gov.vn", None)
    assert inventory.policy["inactivity_suspend_days"] == 90 and inventory.policy["password"]["min_length"] == 8


@pytest.mark.parametrize(("files", "expected"), [
    ({"organizations.yml": "---\norganizations: []\n"},
     ["F/organizations.yml:1: schema: no organizations",
      "F/policy.yml:1: R7.3: department 'skhcn' is not in organizations.yml"]),
    ({"organizations.yml": "---\norganizations:\n" + DEPARTMENT + "more: 1\n"},
     ["F/organizations.yml:4: schema: unknown top-level key 'more' (allowed: organizations)"]),
    ({"organizations.yml": "---\n- 1\n"},
     ["F/organizations.yml:2: schema: expected a mapping with a list under 'organizations'",
      "F/organizations.yml:1: schema: no organizations",
      "F/policy.yml:1: R7.3: department 'skhcn' is not in organizations.yml"]),
    ({"organizations.yml": "---\norganizations: 5\n"},
     ["F/organizations.yml:2: schema: expected a list under 'organizations'",
      "F/organizations.yml:1: schema: no organizations",
      "F/policy.yml:1: R7.3: department 'skhcn' is not in organizations.yml"]),
    ({"organizations.yml": "---\norganizations:\n" + DEPARTMENT + DEPARTMENT.replace("skhcn}", "skhcnb}")},
     ["F/organizations.yml:4: duplicate-id: organization 'skhcn': id already used at F/organizations.yml:3"]),
    ({"policy.yml": "---\ndepartment: snv\n", "organizations.yml": "---\norganizations:\n" + DEPARTMENT},
     ["F/policy.yml:1: R7.3: department 'snv' is not in organizations.yml"]),
    ({"people/x.yml": ""}, ["F/people/x.yml:1: schema: the file is empty; delete it or give it content"]),
    ({"people/more.yml": "---\npeople: []\nother: 1\n"},
     ["F/people/more.yml:3: schema: unknown top-level key 'other' (allowed: people)"]),
    ({"people/more.yml": "---\npeople:\n  - {id: skhcn-0001, name: Lò Văn Hặc, organization: skhcn, request: 1/QĐ}\n"},
     ["F/people/skhcn.yml:3: duplicate-id: person 'skhcn-0001': id already used at F/people/more.yml:3"]),
    ({"people/more.yml": "---\npeople:\n  - id: p1\n    name: Lò Văn A\n    organization: skhcn\n    request: 1/QĐ\n"
                         "    state: gone\n    quota_mb: \"2048\"\n"
                         "  - {id: p2, name: Lò Văn B, organization: skhcn, request: 1/QĐ, quota_mb: true}\n"},
     ["F/people/more.yml:8: R9.2a: person 'p1': 'quota_mb' must be a whole number from 1 to 1048576, got '2048'",
      "F/people/more.yml:7: schema: person 'p1': 'state' must be one of active, suspended, absent, got 'gone'",
      "F/people/more.yml:9: R9.2a: person 'p2': 'quota_mb' must be a whole number from 1 to 1048576, got True"]),
    ({"addresses.lock.yml": "---\naddresses: {}\n"},
     [("F/addresses.lock.yml:1: R5.3: pins no address: restore it from git (git checkout -- addresses.lock.yml); "
      "only a brand-new inventory starts without this file")]),
], ids=["no-organizations", "organizations-top-key", "organizations-not-a-mapping", "organizations-not-a-list",
        "duplicate-organization", "unknown-department", "empty-people-file", "people-top-key", "duplicate-person",
        "state-and-quota-types", "emptied-lock"])
def test_file_level_problems_name_their_file_line_and_rule(inventory_folder, files, expected):
    """R5.3, R7.3, R9.2a: whole-file problems (empty, wrong shape, duplicates across files) are located too."""
    for name, text in files.items():
        inventory_folder.write(name, text)
    if "organizations.yml" in files:
        inventory_folder.write("people/skhcn.yml", "---\npeople: []\n")
    assert problems_of(inventory_folder, resolving=False) == expected


def test_only_regular_yml_files_are_read_from_people(inventory_folder):
    """Issue 10: a hidden file, another extension or a folder in people/ is named, never skipped silently."""
    people = inventory_folder.path / "people"
    (people / ".hidden.yml").write_text("x")
    (people / "a.yaml").write_text("x")
    (people / "dir.yml").mkdir()
    assert problems_of(inventory_folder, resolving=False) == [
        "F/people/.hidden.yml:1: file: people/ holds only <agency>.yml files; rename or remove it",
        "F/people/a.yaml:1: file: people/ holds only <agency>.yml files; rename or remove it",
        "F/people/dir.yml:1: file: is not a regular file (a symlink, folder or pipe)",
    ]


def test_an_inventory_without_people_is_valid(inventory_folder):
    """A new inventory may list organizations only (their mailboxes are created first)."""
    for name in os.listdir(inventory_folder.path / "people"):
        os.unlink(inventory_folder.path / "people" / name)
    os.rmdir(inventory_folder.path / "people")
    inventory = load_inventory(str(inventory_folder) + "/")
    assert inventory.problems == [] and inventory.people == [] and inventory.path == str(inventory_folder)
    assert len(resolve(inventory).mailboxes) == 3


# --- more located problems (second mutation run) -----------------------------------------------------

def no_people(folder):
    folder.write("people/skhcn.yml", "---\npeople: []\n")


def test_the_offending_key_is_named_even_when_it_is_not_the_first(inventory_folder):
    """R3.1, R8.2a, R5.2, R7.1c: in block style each problem points at the line of its own key."""
    inventory_folder.write("policy.yml", "---\ndepartment: skhcn\ndomain: Bad\npolicy:\n  default_quota_mb: 1024\n"
                           "  inactivity_suspend_days: 120\n")
    inventory_folder.write("people/more.yml", "---\npeople:\n  - id: p1\n    organization: skhcn\n    request: 1/QĐ\n"
                           "    name: 5\n  - id: p2\n    name: Lò Văn B\n    organization: skhcn\n    request: "
                           + "R" * 129 + "\n")
    assert problems_of(inventory_folder, resolving=False) == [
        "F/policy.yml:3: R3.1: policy file: domain 'Bad' is not a lowercase domain name",
        "F/policy.yml:6: R8.2a: policy: 'inactivity_suspend_days' must be 1-90 (R8.2a), got 120",
        "F/people/more.yml:6: schema: person 'p1': 'name' must be text, got 5",
        "F/people/more.yml:10: schema: person 'p2': 'request' is 129 characters long, more than 128",
    ]


def test_the_inventorys_own_password_policy_is_returned(inventory_folder):
    """R6.2: a stricter password policy of the inventory is what the result carries, not the default."""
    inventory_folder.write("policy.yml", "---\ndepartment: skhcn\npolicy:\n  password:\n    min_length: 12\n")
    inventory = load_inventory(str(inventory_folder))
    assert inventory.problems == []
    assert inventory.policy["password"] == {"min_length": 12, "require_upper": True, "require_lower": True,
                                            "require_digit": True, "special_characters": "!@#%$*&", "max_age_days": 90,
                                            "history": 5}


def test_a_password_block_that_is_not_a_mapping_is_a_problem(inventory_folder):
    """R6.2: ``password: 5`` is a located problem, like every other malformed key."""
    inventory_folder.write("policy.yml", "---\npolicy:\n  password: 5\n")
    (problem,) = problems_of(inventory_folder, resolving=False)
    assert problem.startswith("F/policy.yml:3: ")


@pytest.mark.parametrize(("files", "expected"), [
    ({"addresses.lock.yml": "---\n5\n"}, ["F/addresses.lock.yml:1: schema: expected a mapping under 'addresses'"]),
    ({"addresses.lock.yml": "---\n- a\n"}, ["F/addresses.lock.yml:2: schema: expected a mapping under 'addresses'"]),
    ({"organizations.yml": "---\n5\n", "people/skhcn.yml": "---\npeople: []\n"},
     ["F/organizations.yml:1: schema: expected a mapping with a list under 'organizations'",
      "F/organizations.yml:1: schema: no organizations",
      "F/policy.yml:1: R7.3: department 'skhcn' is not in organizations.yml"]),
    ({"organizations.yml": "---\norganizations:\n" + DEPARTMENT
      + "  - {id: vp, name: Văn phòng, kind: subunit, parent: Bad!, abbreviation: vp}\n",
      "people/skhcn.yml": "---\npeople: []\n"},
     ["F/organizations.yml:4: R5.1c: organization 'vp': 'parent' 'Bad!' must match ^[a-z0-9][a-z0-9._-]{0,63}$"]),
    ({"organizations.yml": "---\norganizations:\n  - {id: skhcn, name: Sở KH ★ 😀, kind: department, abbreviation: skhcn}\n",
      "people/skhcn.yml": "---\npeople: []\n"},
     [("F/organizations.yml:3: schema: organization 'skhcn': 'name' 'Sở KH ★ 😀' holds '★', '😀': names are letters, "
      "digits, spaces and & ' ( ) , - . / \u2019"),
      "F/organizations.yml:1: schema: no organizations",
      "F/policy.yml:1: R7.3: department 'skhcn' is not in organizations.yml"]),
    ({"people/more.yml": "---\npeople:\n  - {id: skhcn-0001, name: Lò Văn Hặc, organization: skhcn, request: 1/QĐ}\n"
                         "  - {id: cm-0001, name: Lò Văn Hặc, organization: skhcn, request: 1/QĐ}\n"},
     ["F/people/skhcn.yml:3: duplicate-id: person 'skhcn-0001': id already used at F/people/more.yml:3",
      "F/people/skhcn.yml:12: duplicate-id: person 'cm-0001': id already used at F/people/more.yml:4"]),
    ({"organizations.yml": "---\norganizations:\n" + DEPARTMENT + DEPARTMENT.replace("skhcn}", "skhcnb}")
      + "  - {id: chiengmung, name: Xã Chiềng Mung, kind: commune}\n",
      "people/skhcn.yml": "---\npeople:\n  - {id: cm-0001, name: Mùa A Sử, organization: chiengmung, request: 7/QĐ}\n"},
     ["F/organizations.yml:4: duplicate-id: organization 'skhcn': id already used at F/organizations.yml:3"]),
], ids=["lock-scalar", "lock-list", "organizations-scalar", "bad-parent-id", "two-symbols", "two-duplicate-people",
        "organizations-after-a-duplicate"])
def test_more_problems_are_located_and_every_one_is_reported(inventory_folder, files, expected):
    """R5.1c, R5.2, R5.3: a top level of the wrong shape, an invalid parent id, each odd character, and
    every duplicate (not only the first) are reported, and entries after a duplicate are still read."""
    for name, text in files.items():
        inventory_folder.write(name, text)
    assert problems_of(inventory_folder, resolving=False) == expected


def test_an_unreadable_people_folder_is_a_problem(inventory_folder):
    """Issue 10: people/ that cannot be listed (here a file) is named with the system's reason."""
    for name in os.listdir(inventory_folder.path / "people"):
        os.unlink(inventory_folder.path / "people" / name)
    os.rmdir(inventory_folder.path / "people")
    (inventory_folder.path / "people").write_text("x")
    assert problems_of(inventory_folder, resolving=False) == ["F/people:1: file: Not a directory"]


def test_a_missing_inventory_folder_is_one_located_problem(tmp_path):
    missing = str(tmp_path / "nowhere")
    assert [str(p) for p in load_inventory(missing).problems] == [f"{missing}:1: file: inventory folder not found"]


def test_a_trailing_slash_is_dropped_from_the_path_and_nothing_else(tmp_path):
    """The path reported and used for the lock keeps the folder's own name, whatever it ends with."""
    from conftest import InventoryFolder

    folder = InventoryFolder(tmp_path / "MAILX")
    inventory = load_inventory(str(folder) + "/")
    assert inventory.path == str(folder) and inventory.lock_path == os.path.join(str(folder), "addresses.lock.yml")


def test_every_organization_clash_is_reported(inventory_folder):
    """R5.3: each organization whose address is taken is named, not only the first."""
    same = [DEPARTMENT.replace("{id: skhcn,", f"{{id: {name},") for name in ("z2", "z3")]
    assert problems_of(inventory_folder, "".join(same)) == [
        f"F/organizations.yml:{line}: R5.3: organization '{name}': address skhcn@sonla.gov.vn is already issued; set "
        "a distinct 'abbreviation'" for line, name in ((4, "z2"), (5, "z3"))]
    with pytest.raises(InventoryProblems):
        converge_inventory(str(inventory_folder))


@pytest.mark.parametrize(("extra", "refused"), [(53, ["long-0002"]), (54, ["long-0001", "long-0002"])])
def test_a_person_address_of_64_characters_is_the_longest_allowed(inventory_folder, extra, refused):
    """R5.2, RFC 5321: 64 characters before the @ pass, 65 do not; every person too long is reported."""
    inventory_folder.write("people/new.yml", "---\npeople:\n"
                           f"  - {{id: long-0001, name: Lò Văn Hặc{'c' * extra}, organization: skhcn, request: 1/QĐ}}\n"
                           f"  - {{id: long-0002, name: Lò Văn Hặc{'c' * 60}, organization: skhcn, request: 1/QĐ}}\n")
    inventory = load_inventory(str(inventory_folder))
    resolution = resolve(inventory)
    assert [p.message.split("'")[1] for p in inventory.problems] == refused
    if extra == 53:
        assert len(resolution.addresses["person:long-0001"].split("@")[0]) == 64


def test_an_organization_mailbox_is_described_completely(inventory_folder):
    """R5.1a, R7.1c, R9.2b: what the mailboxes module receives for an organization."""
    mailboxes = {m["owner_id"]: m for m in resolve(load_inventory(str(inventory_folder))).mailboxes}
    assert mailboxes["vp-skhcn"] == {
        "address": "vp.skhcn@sonla.gov.vn", "kind": "organization", "owner_id": "vp-skhcn", "display_name": "Văn phòng Sở",
        "organization": "vp-skhcn", "quota_mb": 2048, "state": "active", "reason": None, "request": None,
        "leave_until": None}
