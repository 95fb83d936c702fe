"""Inventory loading, validation and address pinning (R5.1a-c, R5.2, R5.3, R6.2, R7.1c, R9)."""

import pytest

from ansible_collections.sonla.mail.plugins.module_utils import _yaml_lines
from ansible_collections.sonla.mail.plugins.module_utils._inventory import (
    converge_inventory,
    load_inventory,
    render_lock,
    resolve,
)


def problems_of(folder):
    return [str(problem) for problem in load_inventory(str(folder)).problems]


def resolved(folder):
    inventory = load_inventory(str(folder))
    assert inventory.problems == []
    return inventory, resolve(inventory)


def pin(folder):
    """Allocate and write the lock, as the module and the lint do."""
    _, resolution = resolved(folder)
    folder.write("addresses.lock.yml", render_lock(resolution.addresses))
    return resolution


def test_addresses_follow_the_naming_rules(inventory_folder):
    _, resolution = resolved(inventory_folder)
    assert resolution.addresses == {
        "org:skhcn": "skhcn@sonla.gov.vn",  # R5.1a
        "org:chiengmung": "chiengmung@sonla.gov.vn",  # R5.1b
        "org:vp-skhcn": "vp.skhcn@sonla.gov.vn",  # R5.1c
        "person:skhcn-0001": "annv.skhcn@sonla.gov.vn",  # R5.2
        "person:skhcn-0002": "haclv.skhcn@sonla.gov.vn",  # sub-unit staff use the agency's part
        "person:cm-0001": "suma.chiengmung@sonla.gov.vn",
    }
    assert resolution.allocated == resolution.addresses


def test_policy_defaults_are_the_regulation(inventory_folder):
    inventory, _ = resolved(inventory_folder)
    assert inventory.policy["log_retention_days"] == 184  # R9.1: 6 calendar months can span 184 days
    assert inventory.policy["password"]["min_length"] == 8  # R6.2
    assert inventory.policy["password"]["max_age_days"] == 90  # R6.1b
    assert inventory.policy["quota_warning_percent"] == [80, 95]  # R9.2d
    assert inventory.webmail_host == "mail.sonla.gov.vn"  # R3.1


def test_desired_mailboxes_carry_quota_state_and_request(inventory_folder):
    _, resolution = resolved(inventory_folder)
    by_address = {mailbox["address"]: mailbox for mailbox in resolution.mailboxes}
    hac = by_address["haclv.skhcn@sonla.gov.vn"]
    assert hac["quota_mb"] == 4096
    assert hac["display_name"] == "Lò Văn Hặc"  # R3.4: the UTF-8 name is kept as written
    assert by_address["annv.skhcn@sonla.gov.vn"]["quota_mb"] == 2048  # the policy default, R9.2b
    assert by_address["annv.skhcn@sonla.gov.vn"]["request"] == "1/QĐ-SKHCN"  # R7.1c


def test_a_clash_gets_a_distinct_address_containing_name_and_agency(inventory_folder):
    inventory_folder.write("people/more.yml", """\
        ---
        people:
          - {id: skhcn-0100, name: Nguyễn Văn An, organization: skhcn, request: "9/QĐ-SKHCN"}
          - {id: skhcn-0101, name: Ngô Văn An, organization: vp-skhcn, request: "9/QĐ-SKHCN"}
        """)
    _, resolution = resolved(inventory_folder)
    clash = {resolution.addresses[f"person:skhcn-010{n}"] for n in (0, 1)}
    assert resolution.addresses["person:skhcn-0001"] == "annv.skhcn@sonla.gov.vn"
    assert len(clash | {"annv.skhcn@sonla.gov.vn"}) == 3  # R5.3: all distinct
    assert all(address.startswith("an") and ".skhcn@" in address for address in clash)


def test_pinned_addresses_never_change_when_people_are_added_renamed_or_removed(inventory_folder):
    first = pin(inventory_folder)
    # A person renamed, another with the first one's old name added before them, one removed.
    inventory_folder.write("people/skhcn.yml", """\
        ---
        people:
          - {id: skhcn-0000, name: Nguyễn Văn An, organization: skhcn, request: "2/QĐ-SKHCN"}
          - {id: skhcn-0001, name: Nguyễn Văn Anh, organization: skhcn, request: "2/QĐ-SKHCN"}
          - {id: cm-0001, name: Mùa A Sử, organization: chiengmung, request: "7/QĐ-UBND"}
        """)
    _, second = resolved(inventory_folder)
    assert second.allocated == {"person:skhcn-0000": "annguyenv.skhcn@sonla.gov.vn"}
    for key, address in first.addresses.items():
        assert second.addresses[key] == address
    # The removed person's address stays pinned, so it is never issued to someone else.
    assert "haclv.skhcn@sonla.gov.vn" in render_lock(second.addresses)


def test_render_lock_is_sorted_and_reloads(inventory_folder):
    resolution = pin(inventory_folder)
    text = inventory_folder.read("addresses.lock.yml")
    keys = [line.split(":")[0] + ":" + line.split(":")[1] for line in text.splitlines() if line.startswith("  ")]
    assert keys == sorted(keys)
    inventory = load_inventory(str(inventory_folder))
    assert inventory.pinned == resolution.addresses
    assert resolve(inventory).allocated == {}


def test_absent_people_get_no_new_address(inventory_folder):
    inventory_folder.write("people/gone.yml", """\
        ---
        people:
          - {id: skhcn-0009, name: Trần Văn Bình, organization: skhcn, request: "3/QĐ-SKHCN", state: absent}
        """)
    _, resolution = resolved(inventory_folder)
    assert "person:skhcn-0009" not in resolution.addresses


@pytest.mark.parametrize("fast", [True, False])
def test_problems_name_file_line_and_rule_whichever_parser_reads_first(inventory_folder, monkeypatch, fast):
    if not fast:
        monkeypatch.setattr(_yaml_lines, "yaml_rs", None)
    inventory_folder.write("people/bad.yml", """\
        ---
        people:
          - id: x-1
            name: Trần Thị Hoa
            organization: nowhere
            request: "4/QĐ"
          - id: x-2
            organization: skhcn
            request: "4/QĐ"
          - id: x-3
            name: Cầm Thị Ngọc
            organization: skhcn
            request: "4/QĐ"
            quota: 10
          - id: x-4
            name: Vì Văn Pó
            organization: skhcn
            state: suspended
            request: "4/QĐ"
        """)
    path = f"{inventory_folder}/people/bad.yml"
    assert problems_of(inventory_folder) == [
        f"{path}:5: unknown-organization: person 'x-1': organization 'nowhere' is not in organizations.yml",
        f"{path}:7: R5.2: person 'x-2': 'name' is required",
        (f"{path}:14: schema: person 'x-3': unknown key 'quota' (allowed: id, leave_until, migrate_from, name, organization, "
         "quota_mb, reason, request, restore, state, store)"),
        f"{path}:15: R8.2: person 'x-4': 'reason' is required",
    ]


def test_bad_yaml_is_reported_with_its_line(inventory_folder):
    inventory_folder.write("people/broken.yml", "---\npeople:\n  - id: a\n    name: [unclosed\n")
    (problem,) = problems_of(inventory_folder)
    assert problem.startswith(f"{inventory_folder}/people/broken.yml:")
    assert ": yaml: invalid YAML:" in problem


def test_duplicate_ids_are_refused_across_files(inventory_folder):
    inventory_folder.write("people/copy.yml", """\
        ---
        people:
          - {id: skhcn-0001, name: Nguyễn Văn An, organization: skhcn, request: "1/QĐ-SKHCN"}
        """)
    (problem,) = problems_of(inventory_folder)
    assert problem == (f"{inventory_folder}/people/skhcn.yml:3: duplicate-id: person 'skhcn-0001': "
                       f"id already used at {inventory_folder}/people/copy.yml:3")


def test_a_duplicate_key_is_refused(inventory_folder):
    inventory_folder.write("people/dup.yml", "---\npeople:\n  - id: a-1\n    id: a-2\n    name: Lò Văn Hặc\n")
    assert f"{inventory_folder}/people/dup.yml:4: schema: duplicate key 'id'" in problems_of(inventory_folder)


def test_a_duplicate_pinned_address_is_refused(inventory_folder):
    inventory_folder.write("addresses.lock.yml", """\
        ---
        addresses:
          person:skhcn-0001: annv.skhcn@sonla.gov.vn
          person:skhcn-0002: annv.skhcn@sonla.gov.vn
        """)
    assert problems_of(inventory_folder) == [
        (f"{inventory_folder}/addresses.lock.yml:4: duplicate-address: annv.skhcn@sonla.gov.vn is pinned to both "
         "person:skhcn-0001 and person:skhcn-0002")
    ]


@pytest.mark.parametrize(("policy", "rule"), [
    ("policy:\n  password:\n    min_length: 6\n", "R6.2"),
    ("policy:\n  password:\n    max_age_days: 180\n", "R6.2"),
    ("policy:\n  log_retention_days: 183\n", "R9.1"),
    ("policy:\n  revoke_after_suspended_days: 29\n", "R8.1"),
    ("policy:\n  password:\n    max_age_days: 30\n  password_reminder_days: [45]\n", "R6.1b"),  # the 30/45 case
    ("policy:\n  max_idle_suspensions_per_run: -1\n", "R8.2a"),
    ("policy:\n  max_messages_per_hour: 0\n", "R12.6"),
    ("policy:\n  max_recipients_per_message: 5000\n", "R12.6"),
    ("policy:\n  suspend_after_limit_refusals: off\n", "R8.2b"),
    ("policy:\n  quota_warning_percent: [95, 80]\n", "R9.2d"),
    ("policy:\n  password:\n    special_characters: '!^'\n", "R6.2"),
    ("domain: Sonla.Gov.VN\n", "R3.1"),
    ("colour: blue\n", "schema"),
])
def test_a_policy_weaker_than_the_regulation_is_refused(inventory_folder, policy, rule):
    inventory_folder.write("policy.yml", "---\n" + policy)
    (problem,) = problems_of(inventory_folder)
    assert "/policy.yml:" in problem and f": {rule}: " in problem


def test_organization_rules(inventory_folder):
    inventory_folder.write("organizations.yml", """\
        ---
        organizations:
          - {id: skhcn, name: Sở Khoa học và Công nghệ, kind: department}
          - {id: vp-x, name: Văn phòng, kind: subunit, parent: ghost, abbreviation: vp}
          - {id: tohieu, name: Phường Tô Hiệu, kind: ward, parent: skhcn}
        """)
    inventory_folder.write("people/skhcn.yml", "---\npeople: []\n")
    path = f"{inventory_folder}/organizations.yml"
    assert problems_of(inventory_folder) == [
        f"{path}:3: R5.1a: organization 'skhcn': 'abbreviation' is required",
        f"{path}:5: R5.1c: organization 'tohieu': only a subunit has a 'parent'",
        f"{path}:4: R5.1c: organization 'vp-x': parent 'ghost' is unknown",
        f"{inventory_folder}/policy.yml:1: R7.3: department 'skhcn' is not in organizations.yml",
    ]


def test_missing_folder_is_a_problem(tmp_path):
    (problem,) = problems_of(tmp_path / "nowhere")
    assert "inventory folder not found" in problem


def test_an_organization_whose_name_gives_no_address_is_a_problem_not_a_crash(inventory_folder):
    inventory_folder.write("organizations.yml", """\
        ---
        organizations:
          - {id: skhcn, name: Sở Khoa học và Công nghệ, kind: department, abbreviation: skhcn}
          - {id: xa, name: Xã, kind: commune}
        """)
    inventory_folder.write("people/skhcn.yml", "---\npeople: []\n")
    (problem,) = problems_of(inventory_folder)
    assert problem.startswith(f"{inventory_folder}/organizations.yml:4: R5.1b: organization 'xa': ")


def test_a_restore_request_is_validated_and_passed_on(inventory_folder):
    """R8.3a: the agency's written restore request, with its reference and date."""
    inventory_folder.write("people/skhcn.yml", """\
        ---
        people:
          - id: skhcn-0001
            name: Nguyễn Văn An
            organization: skhcn
            request: "1/QĐ-SKHCN"
            restore: {request: "45/QĐ-SKHCN", date: 2026-12-01}
          - id: skhcn-0002
            name: Lò Văn Hặc
            organization: skhcn
            request: "1/QĐ-SKHCN"
        """)
    _, resolution = resolved(inventory_folder)
    by_address = {mailbox["address"]: mailbox for mailbox in resolution.mailboxes}
    assert by_address["annv.skhcn@sonla.gov.vn"]["restore"] == {"request": "45/QĐ-SKHCN", "date": "2026-12-01"}
    assert "restore" not in by_address["haclv.skhcn@sonla.gov.vn"]  # only when present


@pytest.mark.parametrize(("restore", "message"), [
    ("{date: 2026-12-01}", "'request' is required"),
    ("{request: 45/QĐ, date: 2026-13-45}", "is not a calendar date"),
    ("{request: 45/QĐ, date: tomorrow}", "must match"),
    ("{request: 45/QĐ, date: 2026-12-01, by: me}", "unknown key 'by'"),
    ("{request: 45/QĐ, date: 2026-12-01}\n    state: absent", "needs state: active"),
])
def test_a_bad_restore_request_is_refused(inventory_folder, restore, message):
    inventory_folder.write("people/skhcn.yml", f"""\
        ---
        people:
          - id: skhcn-0001
            name: Nguyễn Văn An
            organization: skhcn
            request: "1/QĐ-SKHCN"
            restore: {restore}
        """.replace("\n    state", "\n            state"))
    (problem,) = problems_of(inventory_folder)
    assert ": R8.3a: " in problem or ": schema: " in problem
    assert "person 'skhcn-0001' restore" in problem and message in problem


@pytest.mark.parametrize(("store", "problem"), [
    ("store2.sonla.internal", None), ("'store 2'", "must match"), ("[store2]", "must be text")])
def test_a_person_may_name_their_mailstore(inventory_folder, store, problem):
    """Issue 15: store: names the mailstore (an inventory host); the converge places or moves the mailbox there."""
    inventory_folder.write("people/skhcn.yml", f"""\
        ---
        people:
          - id: skhcn-0001
            name: Nguyễn Văn An
            organization: skhcn
            request: "1/QĐ-SKHCN"
            store: {store}
          - id: skhcn-0002
            name: Lò Văn Hặc
            organization: skhcn
            request: "1/QĐ-SKHCN"
        """)
    if problem:
        (found,) = problems_of(inventory_folder)
        assert "person 'skhcn-0001'" in found and "'store'" in found and problem in found
        return
    _, resolution = resolved(inventory_folder)
    by_address = {mailbox["address"]: mailbox for mailbox in resolution.mailboxes}
    assert by_address["annv.skhcn@sonla.gov.vn"]["store"] == "store2.sonla.internal"
    assert "store" not in by_address["haclv.skhcn@sonla.gov.vn"]  # only when named


def test_lifecycle_policy_keys_have_the_regulation_defaults(inventory_folder):
    inventory, _ = resolved(inventory_folder)
    assert inventory.policy["password_reminder_days"] == [14, 7, 1]  # R6.1b
    assert inventory.policy["revoke_warning_days"] == 7  # R8.1
    inventory_folder.write("policy.yml", "---\npolicy:\n  password_reminder_days: [1, 30]\n  revoke_warning_days: 10\n")
    inventory, _ = resolved(inventory_folder)
    assert (inventory.policy["password_reminder_days"], inventory.policy["revoke_warning_days"]) == ([30, 1], 10)
    inventory_folder.write("policy.yml", "---\npolicy:\n  password_reminder_days: [0, 7]\n")
    (problem,) = problems_of(inventory_folder)
    assert ": R6.1b: " in problem


def test_notified_lists_only_leaves_and_restores(inventory_folder):
    inventory_folder.write("people/leave.yml", """\
        ---
        people:
          - {id: skhcn-0050, name: Hà Thị Thu, organization: skhcn, request: "5/QĐ-SKHCN", leave_until: 2027-03-31}
        """)
    result = converge_inventory(str(inventory_folder), pin=False)
    assert [(m["address"], m["leave_until"]) for m in result["notified"]] == [("thuht.skhcn@sonla.gov.vn", "2027-03-31")]
    assert len(result["mailboxes"]) == 7 and result["path"] == str(inventory_folder)
    assert not (inventory_folder.path / "addresses.lock.yml").exists()  # pin=False writes nothing


# --- guards that no test protected before (issue 11) ------------------------------------------------

def test_a_person_without_a_request_is_refused(inventory_folder):
    """R7.1c: every account is created on a written request, whose reference the entry carries."""
    inventory_folder.write("people/new.yml", "---\npeople:\n  - {id: x-1, name: Lò Văn Hặc, organization: skhcn}\n")
    assert problems_of(inventory_folder) == [
        f"{inventory_folder}/people/new.yml:3: R7.1c: person 'x-1': 'request' is required"]


@pytest.mark.parametrize(("state", "refused"), [("active", True), ("suspended", True), ("absent", False)])
def test_people_of_a_dissolved_organization_must_be_absent(inventory_folder, state, refused):
    """R7.1b: dissolving an organization closes its people's mailboxes in the same change."""
    inventory_folder.write("organizations.yml", inventory_folder.read("organizations.yml") + "    state: absent\n")
    inventory_folder.write("people/skhcn.yml", "---\npeople:\n"
                           f"  - {{id: cm-0001, name: Mùa A Sử, organization: chiengmung, request: '7/QĐ', state: {state},"
                           " reason: giải thể}\n")
    problems = problems_of(inventory_folder)
    expected = (f"{inventory_folder}/people/skhcn.yml:3: unknown-organization: person 'cm-0001': "
                "organization 'chiengmung' is dissolved (state: absent)")
    assert problems == ([expected] if refused else [])


@pytest.mark.parametrize(("encoding", "name"), [
    ("cp1258", "Đinh Văn Ha\u0300"),  # Windows' Vietnamese code page: tone marks as combining characters
    ("utf-16", "Lò Văn Hặc"),
    ("latin-1", "Lò Vân Hà"),
])
def test_a_file_that_is_not_utf8_is_refused(inventory_folder, encoding, name):
    """R3.4: every file is UTF-8; a legacy code page is refused, not misread."""
    text = f"---\npeople:\n  - {{id: x-1, name: {name}, organization: skhcn, request: '1'}}\n"
    (inventory_folder.path / "people" / "old.yml").write_bytes(text.encode(encoding))
    (problem,) = problems_of(inventory_folder)
    assert problem.startswith(f"{inventory_folder}/people/old.yml:") and ": R3.4: not UTF-8 text" in problem
