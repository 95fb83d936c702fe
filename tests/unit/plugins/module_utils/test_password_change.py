# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The user's own password change and the forced change at login (R6.1a, R6.1b, R6.2, R8.1, R8.3c, R10.2b, R12.2)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from ansible_collections.sonla.mail.plugins.module_utils import _password, _userdb
from ansible_collections.sonla.mail.plugins.module_utils import _password_change as pc
from ansible_collections.sonla.mail.plugins.module_utils._password import (
    BCRYPT_COST,
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
    # 20:30 UTC on 31 May is 1 June in Vietnam (UTC+7): the day the user is shown.
    db.execute("UPDATE mailbox SET state = 'suspended', suspended_at = '2025-05-31 20:30:00' WHERE address = ?", (ADDRESS,))
    assert pc.account_status(db, ADDRESS, INITIAL, POLICY, NOW) == pc.Status(pc.SUSPENDED, since="2025-06-01")


@pytest.mark.parametrize("state", ["must_change", "suspended", "expired"])
def test_a_wrong_password_tells_nothing_about_the_account(db, state):  # issue 10: no oracle before verification
    if state == "suspended":
        db.execute("UPDATE mailbox SET state = 'suspended', suspended_at = '2025-05-31 08:00:00'")
    elif state == "expired":
        db.execute("UPDATE mailbox SET must_change = 0, password_changed_at = '2024-01-01 00:00:00'")
    assert pc.account_status(db, ADDRESS, "Wrong#1234", POLICY, NOW) == pc.Status(pc.INVALID)
    assert pc.account_status(db, ADDRESS, "Wrong#1234", POLICY, NOW) == pc.account_status(
        db, "nobody@sonla.gov.vn", "Wrong#1234", POLICY, NOW
    )


# --- the same work for every address (issue 10: unknown addresses answered 56 ms faster) ---------


def test_the_dummy_hash_costs_what_a_real_one_does():
    assert pc.DUMMY_HASH.startswith(f"{{BLF-CRYPT}}$2y${BCRYPT_COST:02d}$")
    assert not verify_password("", pc.DUMMY_HASH)


@pytest.fixture
def bcrypt_checks(monkeypatch):
    """Count the bcrypt verifications: the one expensive step, whose count is the time an answer takes."""
    calls = []
    real = _password.bcrypt.checkpw

    def counting(password, hashed):
        calls.append(hashed)
        return real(password, hashed)

    monkeypatch.setattr(_password.bcrypt, "checkpw", counting)
    return calls


@pytest.mark.parametrize("case", ["unknown address", "wrong one-time password", "wrong chosen password", "right password"])
def test_every_login_costs_exactly_one_bcrypt_check(db, bcrypt_checks, case):
    if case in ("wrong chosen password", "right password"):
        db.execute("UPDATE mailbox SET password = ?", (hash_chosen(GOOD),))
    address = "nobody@sonla.gov.vn" if case == "unknown address" else ADDRESS
    password = GOOD if case == "right password" else "Wrong#1234"
    pc.account_status(db, address, password, POLICY, NOW)
    assert len(bcrypt_checks) == 1


def test_unknown_address_takes_as_long_as_a_wrong_password(db):
    import time

    db.execute("UPDATE mailbox SET password = ?", (hash_chosen(GOOD),))

    def best_of(address, runs=5):
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            pc.account_status(db, address, "Wrong#1234", POLICY, NOW)
            times.append(time.perf_counter() - start)
        return min(times)

    unknown, wrong = best_of("nobody@sonla.gov.vn"), best_of(ADDRESS)
    assert unknown > 0.5 * wrong and wrong > 0.5 * unknown, (unknown, wrong)


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


@pytest.mark.parametrize("character", ["\x00", "\t", "\n", "\r", "\x1b", "\x7f", "\x85", "\u202e", "\u200b", "\u2028"])
def test_control_characters_are_refused(db, character):  # a NUL can never log in over SASL PLAIN
    result = pc.change_password(db, ADDRESS, INITIAL, f"Sonla#2025{character}moi", POLICY, NOW)
    assert codes(result) == ["control_character"]
    assert result.violations[0].message_vi and result.violations[0].message_en
    assert row(db)["must_change"] == 1


def test_vietnamese_letters_are_not_control_characters(db):  # R3.4
    assert pc.change_password(db, ADDRESS, INITIAL, "Sơn-La#2025đổi", POLICY, NOW).changed


def test_policy_from_the_inventory_applies(db):  # one rule set: the inventory's policy.password
    strict = PasswordPolicy(min_length=14, special_characters="@#")
    result = pc.change_password(db, ADDRESS, INITIAL, "Sonla!2025ab", strict, NOW)
    assert codes(result) == ["too_short", "no_special"]


# --- password history (R6.1b: a change, not an A->B->A toggle) ----------------------------------

A, B, C, D, E, F = (f"Sonla#2025{letter}x" for letter in "ABCDEF")


def _walk(db, passwords, start=INITIAL, policy=POLICY):
    """Change through ``passwords`` one day apart; the result of the last change."""
    current, result = start, None
    for day, new in enumerate(passwords, 1):
        result = pc.change_password(db, ADDRESS, current, new, policy, NOW + timedelta(days=day))
        if result.changed:
            current = new
    return result


def test_a_to_b_to_a_is_refused(db):
    assert _walk(db, [A, B]).changed
    result = pc.change_password(db, ADDRESS, B, A, POLICY, NOW + timedelta(days=3))
    assert codes(result) == ["reused"]
    assert result.violations[0].rule == "R6.1b"
    assert "5 mật khẩu gần nhất" in result.violations[0].message_vi
    assert verify_password(B, row(db)["password"])


def test_the_sixth_password_back_may_return_with_five_kept(db):
    assert _walk(db, [A, B, C, D, E, F]).changed
    assert codes(pc.change_password(db, ADDRESS, F, B, POLICY, NOW + timedelta(days=9))) == ["reused"]  # 5th back
    assert pc.change_password(db, ADDRESS, F, A, POLICY, NOW + timedelta(days=9)).changed  # 6th back


def test_the_one_time_password_is_history_too(db):
    assert _walk(db, [A]).changed
    assert codes(pc.change_password(db, ADDRESS, A, INITIAL, POLICY, NOW + timedelta(days=5))) == ["reused"]


def test_history_follows_the_policy(db):
    two = PasswordPolicy(history=2)
    assert _walk(db, [A, B, C], policy=two).changed
    assert codes(pc.change_password(db, ADDRESS, C, B, two, NOW + timedelta(days=5))) == ["reused"]
    assert pc.change_password(db, ADDRESS, C, A, two, NOW + timedelta(days=5)).changed  # 3rd back, 2 kept


def test_history_keeps_hashes_only_and_is_bounded(db, monkeypatch):
    monkeypatch.setattr(pc, "hash_chosen", lambda password: _password.hash_chosen(password, cost=4))  # speed only
    many = [f"Sonla#2025n{i:02d}" for i in range(30)]
    assert _walk(db, many).changed
    stored = [r["password"] for r in db.execute("SELECT password FROM password_history WHERE address = ?", (ADDRESS,))]
    assert len(stored) == _password.PASSWORD_HISTORY_BOUNDS[1]
    assert all(value.startswith("{BLF-CRYPT}$2y$") for value in stored)
    assert not any(password in value for value in stored for password in many)


def test_history_goes_with_the_mailbox(db):
    assert _walk(db, [A, B]).changed
    db.execute("DELETE FROM mailbox WHERE address = ?", (ADDRESS,))
    assert db.execute("SELECT count(*) FROM password_history").fetchone()[0] == 0


@pytest.mark.parametrize("history", [0, 1, 25, "5", True])
def test_history_outside_its_bounds_is_refused(history):
    with pytest.raises(ValueError, match="history"):
        PasswordPolicy.from_dict({"history": history})


def test_a_version_2_database_gains_the_history_keeping_its_rows(tmp_path):
    path = str(tmp_path / "users.sqlite")
    connection = _userdb.connect(path)
    connection.execute(
        "INSERT INTO mailbox (address, local_part, domain, kind, owner_id, display_name, organization, quota_mb,"
        " state, password, must_change, created_at, updated_at) VALUES (?, 'annv.skhcn', 'sonla.gov.vn', 'person',"
        " 'p1', 'Nguyễn Văn An', 'skhcn', 64, 'active', ?, 1, '2025-05-31 08:00:00', '2025-05-31 08:00:00')",
        (ADDRESS, hash_initial(INITIAL)),
    )
    connection.executescript(
        "DROP TRIGGER mailbox_removed_forget_history; DROP TABLE password_history;"
        " UPDATE meta SET value = '2' WHERE key = 'schema_version';"
    )
    connection.close()
    connection = _userdb.connect(path)
    assert connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(_userdb.SCHEMA_VERSION)
    assert list(_userdb.read_mailboxes(connection)) == [ADDRESS]
    assert pc.change_password(connection, ADDRESS, INITIAL, A, POLICY, NOW).changed
    assert connection.execute("SELECT count(*) FROM password_history").fetchone()[0] == 1
    connection.close()


# --- the rate limit (R10.2b) --------------------------------------------------------------------


@pytest.fixture
def throttle(tmp_path):
    limiter = pc.Throttle.open(str(tmp_path / "throttle.sqlite"), pc.Limits(per_address=3, per_client=5, max_rows=50))
    yield limiter
    limiter.close()


def test_an_address_is_throttled_after_its_failures_without_verifying(db, throttle, bcrypt_checks):
    for _ in range(3):
        assert pc.account_status(db, ADDRESS, "Wrong#1234", POLICY, NOW, throttle, "10.0.0.1").status == pc.INVALID
    checks = len(bcrypt_checks)
    # From another client too, and even with the right password: nothing is verified any more.
    assert pc.account_status(db, ADDRESS, INITIAL, POLICY, NOW, throttle, "10.0.0.2") == pc.Status(pc.THROTTLED)
    result = pc.change_password(db, ADDRESS, INITIAL, GOOD, POLICY, NOW, throttle=throttle, client="10.0.0.3")
    assert codes(result) == ["too_many_attempts"]
    assert len(bcrypt_checks) == checks
    # The window passes: the right password works again and forgives the address.
    later = NOW + timedelta(seconds=901)
    assert pc.account_status(db, ADDRESS, INITIAL, POLICY, later, throttle, "10.0.0.1").status == pc.CHANGE_REQUIRED
    assert pc.account_status(db, ADDRESS, "Wrong#1234", POLICY, later, throttle, "10.0.0.1").status == pc.INVALID


def test_a_client_is_throttled_across_addresses(db, throttle):
    for i in range(5):
        status = pc.account_status(db, f"guess{i}@sonla.gov.vn", "Wrong#1234", POLICY, NOW, throttle, "10.0.0.9")
        assert status.status == pc.INVALID
    assert pc.account_status(db, ADDRESS, INITIAL, POLICY, NOW, throttle, "10.0.0.9").status == pc.THROTTLED
    assert pc.account_status(db, ADDRESS, INITIAL, POLICY, NOW, throttle, "10.0.0.8").status == pc.CHANGE_REQUIRED


def test_right_passwords_do_not_use_up_the_limit(db, throttle):
    for _ in range(10):
        assert pc.account_status(db, ADDRESS, INITIAL, POLICY, NOW, throttle, "10.0.0.1").status == pc.CHANGE_REQUIRED


def test_attempts_are_counted_before_the_check(db, throttle, monkeypatch):
    """Parallel guesses are counted as they start: a crash or a slow check still leaves the attempt counted."""
    monkeypatch.setattr(pc, "_verified", lambda row, password: (_ for _ in ()).throw(RuntimeError("killed")))
    for _ in range(3):
        with pytest.raises(RuntimeError):
            pc.account_status(db, ADDRESS, INITIAL, POLICY, NOW, throttle, "10.0.0.1")
    assert pc.account_status(db, ADDRESS, INITIAL, POLICY, NOW, throttle, "10.0.0.1").status == pc.THROTTLED


def test_the_state_file_stays_bounded_and_stores_no_address(db, throttle, tmp_path):
    for i in range(200):
        throttle.attempt(f"guess{i}@sonla.gov.vn", f"10.0.{i}.1", NOW)
    keys = [key for (key,) in throttle.connection.execute("SELECT key FROM failure")]
    assert len(keys) == 50
    assert not any("guess" in key or "10.0." in key for key in keys)
    with sqlite3.connect(str(tmp_path / "throttle.sqlite")) as raw:
        assert raw.execute("SELECT count(*) FROM failure").fetchone()[0] == 50
