# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The user's own password change and the forced change at login (R6.1a, R6.1b, R6.2, R8.1, R8.3c, R12.2)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ansible_collections.sonla.mail.plugins.module_utils import _password_change as pc
from ansible_collections.sonla.mail.plugins.module_utils import _userdb
from ansible_collections.sonla.mail.plugins.module_utils._password import (
    PasswordPolicy,
    hash_chosen,
    hash_initial,
    verify_password,
)

NOW = datetime(2025, 6, 1, 8, 0, 0, tzinfo=UTC)
ADDRESS = "annv.skhcn@sonla.gov.vn"
INITIAL = "Xk7#pQ9wRt2mZa4v"
GOOD = "Sonla#2025moi"
POLICY = PasswordPolicy()


@pytest.fixture
def db(tmp_path):
    connection = _userdb.connect(str(tmp_path / "users.sqlite"))
    connection.execute(
        "INSERT INTO mailbox (address, local_part, domain, kind, owner_id, display_name, organization, quota_mb,"
        " state, password, must_change, created_at, password_changed_at, updated_at)"
        " VALUES (?, 'annv.skhcn', 'sonla.gov.vn', 'person', 'p1', 'Nguyễn Văn An', 'skhcn', 64,"
        " 'active', ?, 1, ?, ?, ?)",
        (ADDRESS, hash_initial(INITIAL), "2025-05-31 08:00:00", "2025-05-31 08:00:00", "2025-05-31 08:00:00"),
    )
    yield connection
    connection.close()


def row(db):
    return dict(db.execute("SELECT * FROM mailbox WHERE address = ?", (ADDRESS,)).fetchone())


def codes(result):
    return [v.code for v in result.violations]


# --- status at login ----------------------------------------------------------------------------


def test_new_account_must_change_first(db):  # R6.1a
    assert pc.account_status(db, ADDRESS, INITIAL, POLICY, NOW) == pc.Status(pc.CHANGE_REQUIRED, "must_change")


def test_wrong_password_and_unknown_address_look_the_same(db):
    assert pc.account_status(db, ADDRESS, "Wrong#123", POLICY, NOW) == pc.Status(pc.INVALID)
    assert pc.account_status(db, "nobody@sonla.gov.vn", INITIAL, POLICY, NOW) == pc.Status(pc.INVALID)


def test_address_is_case_insensitive(db):
    assert pc.account_status(db, " AnNV.SKHCN@sonla.gov.vn", INITIAL, POLICY, NOW).status == pc.CHANGE_REQUIRED


def test_suspended_account_is_refused_even_with_the_right_password(db):  # R8.1
    db.execute("UPDATE mailbox SET state = 'suspended' WHERE address = ?", (ADDRESS,))
    assert pc.account_status(db, ADDRESS, INITIAL, POLICY, NOW) == pc.Status(pc.SUSPENDED)


def test_restored_account_must_change_again(db):  # R8.3c: the mailboxes module sets must_change = 1
    db.execute("UPDATE mailbox SET must_change = 1, password = ? WHERE address = ?", (hash_chosen(GOOD), ADDRESS))
    assert pc.account_status(db, ADDRESS, GOOD, POLICY, NOW).reason == "must_change"


@pytest.mark.parametrize(
    ("age_days", "expected"),
    [(0, pc.Status(pc.OK)), (90, pc.Status(pc.OK)), (91, pc.Status(pc.CHANGE_REQUIRED, "expired"))],
)
def test_password_older_than_max_age_expires(db, age_days, expected):  # R6.1b
    stamp = _userdb.format_time(NOW - timedelta(days=age_days))
    db.execute(
        "UPDATE mailbox SET must_change = 0, password_changed_at = ? WHERE address = ?", (stamp, ADDRESS)
    )
    assert pc.account_status(db, ADDRESS, INITIAL, POLICY, NOW) == expected


def test_stricter_policy_expires_sooner(db):  # R6.1b: the inventory may shorten max_age_days
    stamp = _userdb.format_time(NOW - timedelta(days=31))
    db.execute("UPDATE mailbox SET must_change = 0, password_changed_at = ? WHERE address = ?", (stamp, ADDRESS))
    assert pc.account_status(db, ADDRESS, INITIAL, PasswordPolicy(max_age_days=30), NOW).reason == "expired"


def test_missing_change_stamp_counts_as_expired(db):
    db.execute("UPDATE mailbox SET must_change = 0, password_changed_at = NULL WHERE address = ?", (ADDRESS,))
    assert pc.account_status(db, ADDRESS, INITIAL, POLICY, NOW).reason == "expired"


# --- the change ---------------------------------------------------------------------------------


def test_change_writes_blf_crypt_clears_flag_and_records_event(db):  # R6.1a, R6.2, R12.2
    result = pc.change_password(db, ADDRESS, INITIAL, GOOD, POLICY, NOW)
    assert result == pc.ChangeResult(True)
    after = row(db)
    assert after["password"].startswith("{BLF-CRYPT}$2y$10$")
    assert verify_password(GOOD, after["password"])
    assert after["must_change"] == 0
    assert after["password_changed_at"] == "2025-06-01 08:00:00"
    events = db.execute("SELECT action, detail FROM mailbox_event WHERE address = ?", (ADDRESS,)).fetchall()
    assert [tuple(e) for e in events] == [("password_changed", "by the user via webmail")]
    assert pc.account_status(db, ADDRESS, GOOD, POLICY, NOW) == pc.Status(pc.OK)


def test_wrong_old_password_is_refused_without_checking_the_new_one(db):
    result = pc.change_password(db, ADDRESS, "Wrong#1234", "weak", POLICY, NOW)
    assert codes(result) == ["wrong_password"]
    assert row(db)["must_change"] == 1


@pytest.mark.parametrize(
    ("new", "expected"),
    [
        ("abc", ["too_short", "no_upper", "no_digit", "no_special"]),
        ("sonla2025!", ["no_upper"]),
        ("Sonla2025^", ["no_special"]),  # R6.2: only ! @ # % $ * & count
    ],
)
def test_policy_violations_are_all_reported_with_the_rule(db, new, expected):  # R6.2
    result = pc.change_password(db, ADDRESS, INITIAL, new, POLICY, NOW)
    assert not result.changed
    assert codes(result) == expected
    assert {v.rule for v in result.violations} == {"R6.2"}
    assert all(v.message_vi and v.message_en for v in result.violations)
    assert row(db)["password"].startswith("{SSHA512}")


def test_reusing_the_current_password_is_refused(db):
    assert codes(pc.change_password(db, ADDRESS, INITIAL, INITIAL, POLICY, NOW)) == ["same_as_current"]
    assert pc.change_password(db, ADDRESS, INITIAL, GOOD, POLICY, NOW).changed
    result = pc.change_password(db, ADDRESS, GOOD, GOOD, POLICY, NOW + timedelta(days=1))
    assert codes(result) == ["same_as_current"]
    assert result.violations[0].message_vi == "Mật khẩu mới phải khác mật khẩu hiện tại."


def test_suspended_account_cannot_change(db):  # R8.1
    db.execute("UPDATE mailbox SET state = 'suspended' WHERE address = ?", (ADDRESS,))
    assert codes(pc.change_password(db, ADDRESS, INITIAL, GOOD, POLICY, NOW)) == ["suspended"]


def test_policy_from_the_inventory_applies(db):  # one rule set: the inventory's policy.password
    strict = PasswordPolicy(min_length=14, special_characters="@#")
    result = pc.change_password(db, ADDRESS, INITIAL, "Sonla!2025ab", strict, NOW)
    assert codes(result) == ["too_short", "no_special"]
