# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Password policy, generation and hashes (R6)."""

from __future__ import annotations

import base64
import hashlib

import pytest

from ansible_collections.sonla.mail.plugins.module_utils._password import (
    REGULATION_SPECIAL_CHARACTERS,
    PasswordPolicy,
    check_password,
    generate_password,
    hash_chosen,
    hash_initial,
    verify_password,
)

GOOD = "Sonla#2025"


def codes(password, policy=None):
    return [v.code for v in check_password(password, policy)]


# --- the policy ------------------------------------------------------------------------------

def test_r6_policy_defaults_match_docs_inventory():
    """R6.1b, R6.2: the defaults are the regulation's."""
    policy = PasswordPolicy()
    assert policy.min_length == 8
    assert policy.require_upper and policy.require_lower and policy.require_digit
    assert policy.special_characters == "!@#%$*&"
    assert policy.max_age_days == 90
    assert PasswordPolicy.from_dict({}) == policy
    assert PasswordPolicy.from_dict(None) == policy


def test_r6_policy_stricter_values_are_accepted():
    policy = PasswordPolicy.from_dict({"min_length": 12, "max_age_days": 60, "special_characters": "@#"})
    assert (policy.min_length, policy.max_age_days, policy.special_characters) == (12, 60, "@#")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"min_length": 7}, r"min_length 7 is below the regulation's 8 \(R6\.2\)"),
        ({"max_age_days": 91}, r"max_age_days 91 is above the regulation's 90 \(R6\.1b"),
        ({"max_age_days": 0}, "max_age_days must be at least 1"),
        ({"require_upper": False}, r"require_upper cannot be false: R6\.2"),
        ({"require_lower": False}, r"require_lower cannot be false: R6\.2"),
        ({"require_digit": False}, r"require_digit cannot be false: R6\.2"),
        ({"require_digit": "yes"}, "require_digit must be true or false"),
        ({"special_characters": ""}, r"special_characters must be a non-empty string \(R6\.2\)"),
        ({"special_characters": "!@^"}, r"may only use R6\.2's set"),
        ({"min_length": "8"}, "min_length must be a whole number"),
        ({"min_length": True}, "min_length must be a whole number"),
        ({"min_length": 100}, "longest password BLF-CRYPT reads"),
        ({"min_lenght": 8}, "unknown key.*min_lenght"),
        ("8", "must be a mapping"),
    ],
)
def test_r6_policy_refuses_values_that_break_the_regulation(data, message):
    """R6.1b, R6.2: the regulation is a floor; a clear ValueError names the value and the rule."""
    with pytest.raises(ValueError, match=message):
        PasswordPolicy.from_dict(data)


def test_r6_policy_reports_every_error_at_once():
    with pytest.raises(ValueError) as caught:
        PasswordPolicy.from_dict({"min_length": 6, "max_age_days": 180})
    assert "min_length 6" in str(caught.value) and "max_age_days 180" in str(caught.value)


# --- R6.2 checks -----------------------------------------------------------------------------

def test_r6_2_good_password_passes():
    assert check_password(GOOD) == []


@pytest.mark.parametrize(
    ("password", "expected"),
    [
        ("Sl#2025", ["too_short"]),
        ("sonla#2025", ["no_upper"]),
        ("SONLA#2025", ["no_lower"]),
        ("Sonla#Sonla", ["no_digit"]),
        ("Sonla20252025", ["no_special"]),
        ("", ["too_short", "no_upper", "no_lower", "no_digit", "no_special"]),
        ("abc", ["too_short", "no_upper", "no_digit", "no_special"]),
    ],
)
def test_r6_2_each_rule(password, expected):
    """R6.2: one violation per broken rule, in a fixed order."""
    assert codes(password) == expected


def test_r6_2_violation_fields():
    """R6.2: every violation names the rule and explains itself in Vietnamese and English."""
    violations = check_password("")
    assert {v.rule for v in violations} == {"R6.2"}
    for v in violations:
        assert v.message_vi and v.message_en and v.message_vi != v.message_en
    by_code = {v.code: v for v in violations}
    assert "8 ký tự" in by_code["too_short"].message_vi
    assert "in hoa" in by_code["no_upper"].message_vi
    assert "in thường" in by_code["no_lower"].message_vi
    assert "chữ số" in by_code["no_digit"].message_vi
    assert "! @ # % $ * &" in by_code["no_special"].message_vi
    assert "! @ # % $ * &" in by_code["no_special"].message_en


@pytest.mark.parametrize("special", list(REGULATION_SPECIAL_CHARACTERS))
def test_r6_2_every_listed_special_character_counts(special):
    """R6.2 lists exactly ! @ # % $ * &."""
    assert check_password(f"Sonla2025{special}") == []


@pytest.mark.parametrize("other", list("^?-_+=.,:;~/\\|()[]{}<>'\"` ") + ["€", "é"])
def test_r6_2_other_characters_are_not_special(other):
    """R6.2: characters outside the listed set are allowed but do not count as special."""
    assert codes(f"Sonla2025{other}") == ["no_special"]


def test_r6_2_policy_special_subset():
    policy = PasswordPolicy(special_characters="@")
    assert codes("Sonla#2025", policy) == ["no_special"]
    assert codes("Sonla@2025", policy) == []


def test_r6_2_longer_minimum():
    assert codes(GOOD, PasswordPolicy(min_length=12)) == ["too_short"]


def test_r6_2_non_ascii_digits_do_not_count():
    assert codes("Sonla#\u0662\u0660\u0662\u0665") == ["no_digit"]


def test_r6_2_vietnamese_letters_count_as_cased():
    assert check_password("ĐẶNGthị#2025") == []


def test_too_long_for_bcrypt_is_reported():
    violations = check_password("Aa1#" + "x" * 69)
    assert [v.code for v in violations] == ["too_long"]


# --- R6.1a generation ------------------------------------------------------------------------

def test_r6_1a_generated_passwords_pass_the_policy():
    """R6.1a initial passwords: 1000 generated, all conformant, all different."""
    generated = [generate_password() for _ in range(1000)]
    assert all(check_password(p) == [] for p in generated)
    assert all(len(p) == 16 for p in generated)
    assert len(set(generated)) == 1000


def test_r6_1a_generated_passwords_avoid_ambiguous_characters():
    text = "".join(generate_password() for _ in range(1000))
    assert not set(text) & set("0O1lIo")
    assert set(text) <= set("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789" + REGULATION_SPECIAL_CHARACTERS)


def test_r6_1a_generated_passwords_follow_a_stricter_policy():
    policy = PasswordPolicy(min_length=20, special_characters="@")
    for _ in range(200):
        password = generate_password(policy)
        assert len(password) == 20
        assert check_password(password, policy) == []
        assert set(password) & set(REGULATION_SPECIAL_CHARACTERS) <= {"@"}


def test_r6_1a_generated_length():
    assert len(generate_password(length=24)) == 24
    assert len(generate_password(length=4)) == 8  # never under the policy's minimum


# --- hashes ----------------------------------------------------------------------------------

def test_hash_initial_is_dovecot_ssha512():
    """{SSHA512}: base64(sha512(password + salt) + salt), 16-byte salt."""
    stored = hash_initial(GOOD)
    assert stored.startswith("{SSHA512}")
    raw = base64.b64decode(stored[len("{SSHA512}"):])
    assert len(raw) == 64 + 16
    digest, salt = raw[:64], raw[64:]
    assert hashlib.sha512(GOOD.encode() + salt).digest() == digest


def test_hash_initial_is_salted():
    assert hash_initial(GOOD) != hash_initial(GOOD)


def test_hash_chosen_is_dovecot_blf_crypt_2y_cost_10():
    stored = hash_chosen(GOOD)
    assert stored.startswith("{BLF-CRYPT}$2y$10$")
    assert len(stored) == len("{BLF-CRYPT}") + 60
    assert hash_chosen(GOOD) != stored


@pytest.mark.parametrize("make", [hash_initial, hash_chosen], ids=["SSHA512", "BLF-CRYPT"])
@pytest.mark.parametrize("password", [GOOD, "Mật#Khẩu2025", generate_password()])
def test_hash_round_trip(make, password):
    stored = make(password)
    assert verify_password(password, stored) is True
    assert verify_password(password + "x", stored) is False
    assert verify_password(password.swapcase(), stored) is False
    assert verify_password("", stored) is False


def test_verify_accepts_2b_and_2a_prefixes():
    stored = hash_chosen(GOOD)
    for prefix in ("$2b$", "$2a$"):
        assert verify_password(GOOD, "{BLF-CRYPT}" + prefix + stored[len("{BLF-CRYPT}$2y$"):])


def test_hash_chosen_refuses_what_bcrypt_would_truncate():
    with pytest.raises(ValueError, match="72 bytes"):
        hash_chosen("Aa1#" + "x" * 69)
    stored = hash_chosen("Aa1#" + "x" * 68)
    assert verify_password("Aa1#" + "x" * 68, stored)
    assert not verify_password("Aa1#" + "x" * 69, stored)


@pytest.mark.parametrize(
    ("stored", "message"),
    [
        ("plain", "SCHEME"),
        ("{PLAIN}secret", "unsupported password scheme"),
        ("{SHA512-CRYPT}$6$abc$def", "unsupported password scheme"),
        ("{SSHA512}not base64!", "not base64"),
        ("{SSHA512}" + base64.b64encode(b"x" * 64).decode(), "no salt"),
        ("{BLF-CRYPT}$1$abc", "malformed"),
    ],
)
def test_verify_refuses_unknown_or_malformed_hashes(stored, message):
    with pytest.raises(ValueError, match=message):
        verify_password(GOOD, stored)
