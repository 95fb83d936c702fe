"""Aliases and lists in the inventory (issue 17): computed and explicit members, refusals with file:line."""

import pytest

from ansible_collections.sonla.mail.plugins.module_utils._aliases import DROPPED_ABSENT
from ansible_collections.sonla.mail.plugins.module_utils._inventory import (
    InventoryProblems,
    converge_inventory,
    load_inventory,
    resolve,
)

D = "@sonla.gov.vn"


def addresses_of(result):
    return {mailbox["owner_id"]: mailbox["address"] for mailbox in result["mailboxes"]}


def aliases_of(result):
    return {alias["address"]: alias for alias in result["aliases"]}


def problems(folder):
    inventory = load_inventory(str(folder))
    if not inventory.problems:
        resolve(inventory)
    return [str(problem).replace(str(folder), "F") for problem in inventory.problems]


def test_a_computed_list_has_every_person_of_the_agency_and_optionally_its_subunits(inventory_folder):
    inventory_folder.write("aliases.yml", """\
        ---
        aliases:
          - address: canbo.skhcn
            organization: skhcn
            members_of: skhcn
            include_subunits: true
          - address: lanhdao.skhcn
            organization: skhcn
            members_of: skhcn
        """)
    result = converge_inventory(str(inventory_folder), pin=False)
    people = addresses_of(result)
    aliases = aliases_of(result)
    assert aliases["canbo.skhcn" + D]["members"] == sorted([people["skhcn-0001"], people["skhcn-0002"]])
    assert aliases["lanhdao.skhcn" + D]["members"] == [people["skhcn-0001"]]  # skhcn-0002 is in the sub-unit
    assert people["cm-0001"] not in aliases["canbo.skhcn" + D]["members"]


def test_a_suspended_member_stays_and_a_deleted_one_is_dropped_and_named(inventory_folder):
    inventory_folder.write("people/skhcn.yml", """\
        ---
        people:
          - id: skhcn-0001
            name: Nguyễn Văn An
            organization: skhcn
            request: "1/QĐ"
            state: suspended
            reason: "nghỉ việc"
          - id: skhcn-0003
            name: Trần Thị Bình
            organization: skhcn
            request: "1/QĐ"
        """)
    inventory_folder.write("aliases.yml", "---\naliases:\n  - {address: canbo.skhcn, organization: skhcn, members_of: skhcn}\n")
    first = converge_inventory(str(inventory_folder))  # pins both addresses
    assert len(aliases_of(first)["canbo.skhcn" + D]["members"]) == 2  # R8.1: the suspended one still receives
    inventory_folder.write("people/skhcn.yml", inventory_folder.read("people/skhcn.yml").replace(
        "id: skhcn-0003\n    name: Trần Thị Bình\n    organization: skhcn\n    request: \"1/QĐ\"",
        "id: skhcn-0003\n    name: Trần Thị Bình\n    organization: skhcn\n    request: \"1/QĐ\"\n    state: absent"))
    result = converge_inventory(str(inventory_folder), pin=False)
    alias = aliases_of(result)["canbo.skhcn" + D]
    gone = addresses_of(result)["skhcn-0003"]
    assert alias["members"] == [addresses_of(result)["skhcn-0001"]]
    assert alias["dropped"] == [{"member": gone, "reason": DROPPED_ABSENT}]


def test_a_list_naming_a_list_gets_each_member_once(inventory_folder):
    inventory_folder.write("aliases.yml", """\
        ---
        aliases:
          - {address: vanthu.skhcn, kind: role, organization: skhcn, members: [person:skhcn-0001, org:skhcn]}
          - address: tatca.skhcn
            organization: skhcn
            members: [vanthu.skhcn@sonla.gov.vn, person:skhcn-0001, canbo.skhcn@sonla.gov.vn]
          - {address: canbo.skhcn, organization: skhcn, members_of: skhcn, include_subunits: true}
        """)
    result = converge_inventory(str(inventory_folder), pin=False)
    people = addresses_of(result)
    members = aliases_of(result)["tatca.skhcn" + D]["members"]
    assert sorted(members) == sorted({people["skhcn-0001"], people["skhcn-0002"], "skhcn" + D})
    assert len(members) == len(set(members))
    assert aliases_of(result)["vanthu.skhcn" + D]["kind"] == "role"


@pytest.mark.parametrize(("text", "expected"), [
    ("  - {address: skhcn, organization: skhcn, members: [person:skhcn-0001]}\n",
     "F/aliases.yml:3: R5.3: alias 'skhcn@sonla.gov.vn': collides with the mailbox or pinned address of org:skhcn"),
    (("  - {address: a.skhcn, organization: skhcn, members: [b.skhcn@sonla.gov.vn]}\n"
     "  - {address: b.skhcn, organization: skhcn, members: [a.skhcn@sonla.gov.vn]}\n"),
     ("F/aliases.yml:3: alias-loop: alias 'a.skhcn@sonla.gov.vn': a loop: a.skhcn@sonla.gov.vn -> b.skhcn@sonla.gov.vn"
      " -> a.skhcn@sonla.gov.vn")),
    ("  - address: x.skhcn\n    organization: skhcn\n    members:\n      - person:skhcn-0001\n      - person:nobody\n",
     "F/aliases.yml:7: unknown-member: alias 'x.skhcn@sonla.gov.vn': person 'nobody' has no mailbox in this inventory"),
    ("  - {address: x.skhcn, organization: skhcn, members: [ghost.skhcn@sonla.gov.vn]}\n",
     ("F/aliases.yml:3: unknown-member: alias 'x.skhcn@sonla.gov.vn': ghost.skhcn@sonla.gov.vn is no mailbox or alias"
      " of this inventory")),
    ("  - {address: x.skhcn, organization: skhcn, members_of: nowhere}\n",
     "F/aliases.yml:3: unknown-member: alias 'x.skhcn': 'members_of' organization 'nowhere' is not in organizations.yml"),
    ("  - {address: x.skhcn, organization: skhcn, members: [friend@example.org]}\n",
     ("F/aliases.yml:3: policy: alias 'x.skhcn@sonla.gov.vn': outside address friend@example.org refused: the policy"
      " does not allow outside members (policy.lists_outside_members)")),
    ("  - {address: postmaster, organization: skhcn, members: [person:skhcn-0001]}\n",
     "F/aliases.yml:3: reserved-address: alias 'postmaster': postmaster@ is answered by the filter role (RFC 2142)"),
    ("  - {address: Nguyen.An, organization: skhcn, members: [person:skhcn-0001]}\n",
     "F/aliases.yml:3: R5: alias 'Nguyen.An': 'address' 'Nguyen.An': lowercase a-z and 0-9 parts joined by single dots"),
    ("  - {address: x.skhcn, organization: skhcn}\n",
     "F/aliases.yml:3: schema: alias 'x.skhcn': needs 'members', 'members_of' or both"),
    (("  - {address: x.skhcn, organization: skhcn, members: [person:skhcn-0001]}\n"
     "  - {address: x.skhcn, organization: skhcn, members: [person:skhcn-0001]}\n"),
     "F/aliases.yml:4: duplicate-address: alias 'x.skhcn@sonla.gov.vn': already defined at F/aliases.yml:3"),
])
def test_refused_with_file_and_line(inventory_folder, text, expected):
    inventory_folder.write("aliases.yml", "---\naliases:\n" + text)
    converge_inventory(str(inventory_folder.write("aliases.yml", "---\naliases: []\n")))  # pin the mailboxes first
    inventory_folder.write("aliases.yml", "---\naliases:\n" + text)
    assert expected in problems(inventory_folder)
    with pytest.raises(InventoryProblems):
        converge_inventory(str(inventory_folder), pin=False)


def test_an_alias_colliding_with_a_pinned_address_of_a_deleted_mailbox_is_refused(inventory_folder):
    converge_inventory(str(inventory_folder))
    lock = inventory_folder.read("addresses.lock.yml")
    inventory_folder.write("addresses.lock.yml", lock + "  person:skhcn-0099: old.skhcn@sonla.gov.vn\n")
    inventory_folder.write("aliases.yml", "---\naliases:\n  - {address: old.skhcn, organization: skhcn, members_of: skhcn}\n")
    assert problems(inventory_folder) == [
        ("F/aliases.yml:3: R5.3: alias 'old.skhcn@sonla.gov.vn': collides with the mailbox or pinned address of "
         "person:skhcn-0099")]


def test_outside_members_pass_where_the_policy_allows_them(inventory_folder):
    inventory_folder.write("policy.yml", "---\ndomain: sonla.gov.vn\ndepartment: skhcn\npolicy:\n  lists_outside_members: true\n")
    inventory_folder.write("aliases.yml",
                           "---\naliases:\n  - {address: x.skhcn, organization: skhcn, members: [Friend@Example.org]}\n")
    result = converge_inventory(str(inventory_folder), pin=False)
    assert aliases_of(result)["x.skhcn" + D]["members"] == ["friend@example.org"]


def test_a_new_person_is_never_given_an_alias_address(inventory_folder):
    """Nguyễn Văn An of skhcn would be annv.skhcn: an alias holds it, so the person gets the next candidate."""
    inventory_folder.write("aliases.yml", "---\naliases:\n  - {address: annv.skhcn, organization: skhcn, members: [org:skhcn]}\n")
    result = converge_inventory(str(inventory_folder), pin=False)
    assert addresses_of(result)["skhcn-0001"] not in ("annv.skhcn" + D, "")
    assert "annv.skhcn" + D in aliases_of(result)


def test_a_legacy_address_may_break_r5_but_not_the_domain(inventory_folder):
    inventory_folder.write("aliases.yml", """\
        ---
        aliases:
          - {address: nguyen_van-an, legacy: true, organization: skhcn, members: [person:skhcn-0001]}
        """)
    result = converge_inventory(str(inventory_folder), pin=False)
    assert aliases_of(result)["nguyen_van-an" + D]["legacy"] is True
    inventory_folder.write("aliases.yml", "---\naliases:\n  - {address: an@old.example, legacy: true, organization: skhcn,"
                           " members: [person:skhcn-0001]}\n")
    assert problems(inventory_folder) == [
        ("F/aliases.yml:3: R3.1: alias 'an@old.example': 'address' 'an@old.example' must be a local part or an address "
         "in sonla.gov.vn")]
