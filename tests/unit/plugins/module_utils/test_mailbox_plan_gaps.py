# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The converge planner: behaviour the mutation run (scripts/mutation.sh, docs/quality.md) found unguarded.

``validate_desired`` had no direct test (the mailboxes module tests reach it only with valid entries).
"""

from __future__ import annotations

import re

import pytest

from ansible_collections.sonla.mail.plugins.module_utils import _userdb
from ansible_collections.sonla.mail.plugins.module_utils._mailbox_plan import (
    Plan,
    PlanError,
    build_plan,
    diff_text,
    restore_applies,
    validate_desired,
)

NOW = "2026-11-28 10:00:00"


def entry(local_part="annv.skhcn", **fields):
    """A desired mailbox as the inventory hands it to the module: only the required fields unless given."""
    desired = {"address": f"{local_part}@sonla.gov.vn", "kind": "person", "owner_id": local_part,
               "display_name": f"Người {local_part}", "organization": "skhcn", "quota_mb": 2048}
    desired.update(fields)
    return desired


def refused(entries, message):
    with pytest.raises(PlanError, match=f"^{re.escape(message)}$"):
        validate_desired(entries)


# --- validate_desired ----------------------------------------------------------------------------

def test_validate_fills_the_optional_fields():
    assert validate_desired([entry()]) == [{
        **entry(), "state": "active", "reason": None, "request": None, "leave_until": None, "restore": None,
        "store": None, "delegates": None,
    }]


def test_validate_refuses_what_is_not_a_list_of_mappings():
    refused({"a": 1}, "mailboxes must be a list, got dict")
    refused([entry(), "annv.skhcn"], "mailboxes[1] must be a mapping, got str")


def test_validate_names_every_unknown_field():
    refused([entry(colour="red", size=1)], "mailboxes[0]: unknown field(s) colour, size")


@pytest.mark.parametrize("missing", ["address", "kind", "owner_id", "display_name", "organization", "quota_mb"])
def test_validate_requires_the_identity_and_quota_fields(missing):
    desired = entry()
    del desired[missing]
    where = "mailboxes[0]" if missing == "address" else "annv.skhcn@sonla.gov.vn"
    refused([desired], f"mailbox {where}: '{missing}' is required")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("quota_mb", True, "'quota_mb' must be int, got True"),
        ("quota_mb", "2048", "'quota_mb' must be int, got '2048'"),
        ("display_name", 12, "'display_name' must be str, got 12"),
        ("leave_until", 20261231, "'leave_until' must be str, got 20261231"),
        ("restore", "45/QĐ", "'restore' must be dict, got '45/QĐ'"),
        ("kind", "robot", "'kind' must be one of person, organization, got 'robot'"),
        ("state", "deleted", "'state' must be one of active, suspended, absent, got 'deleted'"),
    ],
)
def test_validate_checks_types_and_choices_of_every_field(field, value, message):
    """Optional fields left out before it (reason, request) do not stop the checks of the ones after."""
    refused([entry(**{field: value})], f"mailbox annv.skhcn@sonla.gov.vn: {message}")


def test_r9_2a_quota_must_be_positive():
    assert validate_desired([entry(quota_mb=1)])[0]["quota_mb"] == 1
    refused([entry(quota_mb=0)], "mailbox annv.skhcn@sonla.gov.vn: 'quota_mb' must be positive, got 0 (R9.2a)")


def test_r8_2_a_suspension_needs_a_reason():
    refused([entry(state="suspended")], "mailbox annv.skhcn@sonla.gov.vn: state suspended needs a reason (R8.2)")
    assert validate_desired([entry(state="suspended", reason="Nghỉ phép")])[0]["reason"] == "Nghỉ phép"


@pytest.mark.parametrize(
    "restore",
    [
        {"request": "45/QĐ-SKHCN"},
        {"request": "45/QĐ-SKHCN", "date": "2026-11-28", "by": "lead"},
        {"request": "45/QĐ-SKHCN", "date": 20261128},
    ],
    ids=["no-date", "extra-key", "date-not-text"],
)
def test_r8_3a_a_restore_request_needs_exactly_a_reference_and_a_date(restore):
    refused([entry(restore=restore)],
            f"mailbox annv.skhcn@sonla.gov.vn: 'restore' needs exactly a 'request' and a 'date' (R8.3a), got {restore!r}")


def test_r8_3a_a_well_formed_restore_request_passes():
    restore = {"request": "45/QĐ-SKHCN", "date": "2026-11-28"}
    assert validate_desired([entry(restore=restore)])[0]["restore"] == restore


def test_r8_3a_restore_applies_needs_both_a_request_and_a_suspension_date():
    assert restore_applies(None, "2026-11-28 08:00:00") is False
    assert restore_applies({"request": "45/QĐ", "date": "2026-11-28"}, None) is False
    assert restore_applies({"request": "45/QĐ", "date": "2026-11-28"}, "2026-11-28 08:00:00") is True


# --- build_plan ----------------------------------------------------------------------------------

@pytest.fixture
def current(tmp_path):
    """The database rows of seven people p0..p6 at addresses m0..m6."""
    connection = _userdb.connect(str(tmp_path / "users.sqlite"))
    desired = validate_desired([entry(f"m{i}.skhcn", owner_id=f"p{i}") for i in range(7)])
    _userdb.apply_plan(connection, build_plan(desired, {}), {m["address"]: "{SSHA512}x" for m in desired}, NOW)
    rows = _userdb.read_mailboxes(connection)
    connection.close()
    return rows


def test_r5_3_an_owner_change_refusal_shows_five_and_counts_the_rest(current):
    """R5.3: seven mailboxes rotated between their owners: five named in the refusal, then "and 2 more"."""
    rotated = validate_desired([entry(f"m{i}.skhcn", owner_id=f"p{(i + 1) % 7}") for i in range(7)])
    with pytest.raises(PlanError) as caught:
        build_plan(rotated, current)
    message = str(caught.value)
    assert message.startswith("7 mailbox(es) would change owner")
    shown = message.split("(R5.3): ", 1)[1].split(". Nothing was changed.", 1)[0]
    assert shown.count("; ") == 5 and shown.endswith("; and 2 more")


def test_r5_3_retiring_a_never_created_address_is_no_owner_change(current):
    """An absent entry for an address that was never created does not count as moving its owner's mailbox."""
    desired = validate_desired([entry("m0.skhcn", owner_id="p0"), entry("an2.skhcn", owner_id="p0", state="absent")])
    plan = build_plan(desired, current)
    assert not plan.changed and plan.unchanged == ["m0.skhcn@sonla.gov.vn"]


def test_r7_3_the_default_removal_cap_is_ten(current):
    """R7.2 (a deletion cannot be undone): without max_removals, at most ten mailboxes are removed per converge."""
    seven = validate_desired([entry(f"m{i}.skhcn", owner_id=f"p{i}", state="absent") for i in range(7)])
    assert len(build_plan(seven, current).removed) == 7
    with pytest.raises(PlanError, match=r"^7 mailboxes would be removed, more than max_removals=6;"):
        build_plan(seven, current, max_removals=6)
    many = {**current, **{f"x{i}@sonla.gov.vn": current["m0.skhcn@sonla.gov.vn"] for i in range(4)}}
    with pytest.raises(PlanError, match=r"^11 mailboxes would be removed, more than max_removals=10;"):
        build_plan(seven[:1], many, exclusive=True)


def test_the_summary_counts_every_list_by_name():
    plan = Plan(added=[{}], updated=[{}, {}], suspended=[{}] * 3, restored=[{}] * 4, removed=["a"] * 5,
                unchanged=["b"] * 6, held=[{}] * 7, unmanaged=["c"] * 8, refused=[{}] * 9,
                delegated=[["o", "p"]] * 10, undelegated=[["o", "q"]] * 11, moved=[{}] * 12)
    assert plan.summary() == {"added": 1, "updated": 2, "suspended": 3, "restored": 4, "removed": 5,
                              "unchanged": 6, "held": 7, "unmanaged": 8, "refused": 9,
                              "delegated": 10, "undelegated": 11, "moved": 12}


# --- existing mailboxes: suspensions, holds and the diff -----------------------------------------

@pytest.fixture
def rows(tmp_path):
    """Read the database rows after converging ``desired``, then optionally rewriting the suspension."""
    connection = _userdb.connect(str(tmp_path / "users.sqlite"))

    def make(desired, suspended_by=None, reason="idle", at="2026-11-28 10:00:00"):
        desired = validate_desired(desired)
        _userdb.apply_plan(connection, build_plan(desired, _userdb.read_mailboxes(connection)),
                           {m["address"]: "{SSHA512}x" for m in desired}, NOW)
        if suspended_by:
            connection.execute("UPDATE mailbox SET state = 'suspended', suspended_by = ?, suspended_reason = ?, "
                               "suspended_at = ?", (suspended_by, reason, at))
        return _userdb.read_mailboxes(connection)

    yield make
    connection.close()


def test_r8_2_a_new_reason_for_an_inventory_suspension_is_an_update(rows):
    """R8.2: the inventory changes the reason of its own suspension; the account stays suspended."""
    current = rows([entry(state="suspended", reason="Nghỉ phép", request="1/QĐ")])
    plan = build_plan(validate_desired([entry(state="suspended", reason="Lộ mật khẩu", request="1/QĐ")]), current)
    assert plan.updated == [{"address": "annv.skhcn@sonla.gov.vn",
                             "changes": {"suspended_reason": ["Nghỉ phép", "Lộ mật khẩu"]}, "request": "1/QĐ"}]
    assert plan.suspended == [] and plan.unchanged == []
    assert diff_text(plan) == {"before": "annv.skhcn@sonla.gov.vn: suspended_reason=Nghỉ phép\n",
                               "after": "annv.skhcn@sonla.gov.vn: suspended_reason=Lộ mật khẩu\n"}


@pytest.mark.parametrize("who", ["lifecycle", "operator"])
def test_r8_2_another_suspensions_reason_is_not_overwritten_by_the_inventory(rows, who):
    """R8.2: an operator's or the lifecycle's suspension keeps its own reason when the inventory also suspends."""
    current = rows([entry()], suspended_by=who, reason="idle")
    plan = build_plan(validate_desired([entry(state="suspended", reason="Nghỉ phép")]), current)
    assert not plan.changed and plan.unchanged == ["annv.skhcn@sonla.gov.vn"]


def test_r8_3a_an_old_restore_request_is_held_and_refused_with_both_dates(rows):
    current = rows([entry()], suspended_by="lifecycle", reason="idle", at="2027-03-01 02:00:00")
    restore = {"request": "45/QĐ-SKHCN", "date": "2026-12-01"}
    plan = build_plan(validate_desired([entry(restore=restore)]), current)
    assert plan.held == [{"address": "annv.skhcn@sonla.gov.vn", "suspended_by": "lifecycle", "reason": "idle"}]
    assert plan.refused == [{"address": "annv.skhcn@sonla.gov.vn", "reason": (
        "Văn bản khôi phục 45/QĐ-SKHCN ngày 2026-12-01 có trước lần tạm khóa ngày 2027-03-01 (R8.3a) / "
        "Restore request 45/QĐ-SKHCN is older than the suspension of 2027-03-01")}]
    assert plan.unchanged == ["annv.skhcn@sonla.gov.vn"]


def test_r8_3a_a_restore_already_carried_out_holds_without_refusing(rows):
    current = rows([entry()], suspended_by="operator", reason="spam")
    restore = {"request": "45/QĐ-SKHCN", "date": "2026-12-01"}
    plan = build_plan(validate_desired([entry(restore=restore)]), current,
                      restores_done={("annv.skhcn@sonla.gov.vn", "45/QĐ-SKHCN")})
    assert plan.held == [{"address": "annv.skhcn@sonla.gov.vn", "suspended_by": "operator", "reason": "spam"}]
    assert plan.refused == [] and plan.restored == [] and plan.unchanged == ["annv.skhcn@sonla.gov.vn"]


def test_r7_2_a_revoked_address_is_refused_with_its_day(rows):
    plan = build_plan(validate_desired([entry()]), {}, revoked={"annv.skhcn@sonla.gov.vn": "2027-03-31 02:00:00"})
    assert plan.refused == [{"address": "annv.skhcn@sonla.gov.vn", "reason": (
        "Hộp thư đã bị thu hồi ngày 2027-03-31, không thể khôi phục (R7.2) / "
        "Revoked on 2027-03-31; a revoked mailbox cannot be restored (R7.2)")}]


def test_diff_of_a_suspension_a_restoration_and_a_removal(rows):
    """The diff lists each kind of change, in the order added, updated, suspended, restored, removed."""
    current = rows([entry("a.skhcn"), entry("b.skhcn", state="suspended", reason="Nghỉ phép"), entry("c.skhcn")])
    plan = build_plan(validate_desired([entry("a.skhcn", state="suspended", reason="Lộ mật khẩu"), entry("b.skhcn"),
                                        entry("c.skhcn", state="absent")]), current)
    assert diff_text(plan) == {
        "before": "a.skhcn@sonla.gov.vn: state=active\nb.skhcn@sonla.gov.vn: state=suspended\n"
                  "c.skhcn@sonla.gov.vn: present\n",
        "after": "a.skhcn@sonla.gov.vn: state=suspended (Lộ mật khẩu)\n"
                 "b.skhcn@sonla.gov.vn: state=active, must change password\nc.skhcn@sonla.gov.vn: removed with its mail\n",
    }
    assert diff_text(Plan()) == {"before": "", "after": ""}


def test_refusals_of_the_whole_set_say_why():
    row = {"kind": "person", "owner_id": "a"}
    with pytest.raises(PlanError, match="^exclusive converge with an empty desired set: refusing to remove every mailbox$"):
        build_plan([], {"a@sonla.gov.vn": row}, exclusive=True)
    with pytest.raises(PlanError, match="^mailbox a@sonla.gov.vn: state must be one of active, suspended, absent, got 'gone'$"):
        build_plan([{"address": "a@sonla.gov.vn", **row, "state": "gone"}], {})
