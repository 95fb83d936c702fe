# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Passwords (R6, R10.2b): behaviour the mutation run (scripts/mutation.sh, docs/quality.md) found unguarded."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from ansible_collections.sonla.mail.plugins.module_utils import _password
from ansible_collections.sonla.mail.plugins.module_utils._password import (
    BCRYPT_MAX_BYTES,
    FORMULA_START,
    PasswordPolicy,
    check_password,
    generate_password,
    hash_chosen,
    hash_initial,
    verify_password,
)

GOOD = "Sonla#2025"


# --- check_password --------------------------------------------------------------------------

@pytest.mark.parametrize(
    "invisible",
    ["\x00", "\t", "\x7f", "\u200b", "\u00ad", "\u2028", "\u2029"],
    ids=["nul", "tab", "del", "zero-width-space", "soft-hyphen", "line-separator", "paragraph-separator"],
)
def test_r10_2b_control_and_invisible_characters_are_refused(invisible):
    """R10.2b: a control (Cc), format (Cf) or line/paragraph separator (Zl, Zp) character is refused, alone."""
    violations = check_password(GOOD + invisible)
    assert [(v.rule, v.code) for v in violations] == [("R10.2b", "control_character")]
    assert violations[0].message_vi == (
        "Mật khẩu không được chứa ký tự điều khiển (như NUL, tab, xuống dòng) hay ký tự định dạng ẩn.")
    assert violations[0].message_en == (
        "The password must not contain control characters (such as NUL, tab, line breaks) or hidden format characters."
    )


def test_r10_2b_too_long_starts_past_72_bytes():
    """R10.2b: 72 bytes is the longest password bcrypt reads whole, so 72 passes and 73 is refused, as R10.2b."""
    assert check_password("Aa1#" + "x" * (BCRYPT_MAX_BYTES - 4)) == []
    violations = check_password("Aa1#" + "x" * (BCRYPT_MAX_BYTES - 3))
    assert [(v.rule, v.code) for v in violations] == [("R10.2b", "too_long")]
    assert violations[0].message_vi == "Mật khẩu không được dài quá 72 byte (hệ thống chỉ đọc 72 byte đầu)."
    assert violations[0].message_en == "The password must not exceed 72 bytes (the system reads only the first 72)."


def test_r6_2_messages_shown_to_the_user_are_exact():
    """R6.2: the texts the webmail and the password tool show for each broken rule, word for word."""
    shown = {v.code: (v.message_vi, v.message_en) for v in check_password("")}
    assert shown == {
        "too_short": (
            "Mật khẩu phải có tối thiểu 8 ký tự (hiện có 0).",
            "The password must be at least 8 characters long (it has 0).",
        ),
        "no_upper": (
            "Mật khẩu phải có ít nhất một ký tự in hoa (A-Z).",
            "The password must contain at least one upper-case letter (A-Z).",
        ),
        "no_lower": (
            "Mật khẩu phải có ít nhất một ký tự in thường (a-z).",
            "The password must contain at least one lower-case letter (a-z).",
        ),
        "no_digit": ("Mật khẩu phải có ít nhất một chữ số (0-9).", "The password must contain at least one digit (0-9)."),
        "no_special": (
            "Mật khẩu phải có ít nhất một ký tự đặc biệt trong số: ! @ # % $ * &",
            "The password must contain at least one special character from: ! @ # % $ * &",
        ),
    }


def test_non_text_password_is_a_type_error_naming_the_type():
    with pytest.raises(TypeError, match="^a password must be text, got bytes$"):
        check_password(b"Sonla#2025")
    with pytest.raises(TypeError, match="^a password must be text, got int$"):
        hash_initial(20252025)


# --- the policy ------------------------------------------------------------------------------

def test_r6_policy_bounds_are_inclusive():
    """R6.2 / R6.1b: a minimum of exactly 72 and a maximum age of exactly 1 day are still accepted."""
    assert PasswordPolicy(min_length=BCRYPT_MAX_BYTES).min_length == 72
    assert PasswordPolicy(max_age_days=1).max_age_days == 1
    with pytest.raises(ValueError, match="max_age_days must be at least 1, got 0"):
        PasswordPolicy(max_age_days=0)


def test_r6_policy_error_lists_every_problem_in_one_message():
    with pytest.raises(ValueError) as caught:
        PasswordPolicy(min_length=7, max_age_days=91, special_characters="#^?")
    assert str(caught.value) == (
        "invalid password policy: min_length 7 is below the regulation's 8 (R6.2); "
        "max_age_days 91 is above the regulation's 90 (R6.1b: every 3 months); "
        "special_characters may only use R6.2's set '!@#%$*&', not '?^'"
    )


def test_r6_policy_from_dict_names_the_type_and_every_unknown_key():
    with pytest.raises(ValueError, match="^policy.password must be a mapping, got list$"):
        PasswordPolicy.from_dict(["min_length"])
    with pytest.raises(ValueError) as caught:
        PasswordPolicy.from_dict({"min_lenght": 10, "expiry": 30})
    assert str(caught.value) == (
        "policy.password: unknown key(s) expiry, min_lenght; known keys are history, max_age_days, min_length, "
        "require_digit, require_lower, require_upper, special_characters"
    )


# --- generation (R6.1a) ----------------------------------------------------------------------

def test_r6_1a_generated_length_up_to_72():
    assert len(generate_password(length=BCRYPT_MAX_BYTES)) == 72
    with pytest.raises(ValueError, match="^length 73 is above 72, the longest password BLF-CRYPT reads$"):
        generate_password(length=73)


def test_r6_1a_required_characters_are_shuffled():
    """R6.1a: the four required characters (upper, lower, digit, special) are not left at fixed places.

    Over 400 passwords every class opens some password (a fixed order would always open with a capital).
    The chance that this fails with a real shuffle is far below 1e-12.
    """
    first = {password[0] for password in (generate_password() for _ in range(400))}
    assert first & set("ABCDEFGHJKLMNPQRSTUVWXYZ")
    assert first & set("abcdefghijkmnpqrstuvwxyz")
    assert first & set("23456789")


def test_r6_1a_generated_password_never_opens_like_a_spreadsheet_formula():
    """R6.1a handoff: with "@" as the only special character, "@" would open about one password in twelve."""
    policy = PasswordPolicy(special_characters="@")
    generated = [generate_password(policy) for _ in range(400)]
    assert not [password for password in generated if password[0] in FORMULA_START]
    assert all(check_password(password, policy) == [] for password in generated)


# --- hashes ----------------------------------------------------------------------------------

def _ssha512(password: str, salt: bytes) -> str:
    return "{SSHA512}" + base64.b64encode(hashlib.sha512(password.encode() + salt).digest() + salt).decode()


def test_ssha512_with_a_one_byte_salt_is_still_a_hash():
    """Any salt of one byte or more is valid for Dovecot's SSHA512; only a bare 64-byte digest is refused."""
    assert verify_password(GOOD, _ssha512(GOOD, b"s"))
    assert not verify_password("Sonla#2026", _ssha512(GOOD, b"s"))


@pytest.mark.parametrize(
    ("stored", "message"),
    [
        (None, "stored password hash must start with a {SCHEME} prefix"),
        ("SSHA512}abc", "stored password hash must start with a {SCHEME} prefix"),
        ("{SSHA512", "stored password hash must start with a {SCHEME} prefix"),
        (_ssha512(GOOD, b"salt") + "*", "malformed {SSHA512} hash: not base64"),
        (_ssha512(GOOD, b"salt")[:9] + "}" + _ssha512(GOOD, b"salt")[9:], "malformed {SSHA512} hash: not base64"),
        ("{SSHA512}" + base64.b64encode(b"x" * 64).decode(), "malformed {SSHA512} hash: no salt"),
        ("{BLF-CRYPT}$1$abc", "malformed {BLF-CRYPT} hash: expected a $2y$, $2b$ or $2a$ bcrypt hash"),
        ("{BLF-CRYPT}$2y$10$tooshort", "malformed {BLF-CRYPT} hash"),
    ],
    ids=["none", "no-brace", "no-closing-brace", "junk-in-base64", "brace-in-value", "no-salt", "not-bcrypt",
         "short-bcrypt"],
)
def test_malformed_hashes_are_refused_with_their_exact_reason(stored, message):
    """A malformed stored hash is a data error with its own message, never a wrong password."""
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        verify_password(GOOD, stored)


def test_missing_bcrypt_names_the_debian_package(monkeypatch):
    monkeypatch.setattr(_password, "bcrypt", None)
    with pytest.raises(ImportError) as caught:
        hash_chosen(GOOD)
    assert str(caught.value) == (
        "the Python library 'bcrypt' (Debian: python3-bcrypt) is needed for {BLF-CRYPT} hashes"
    )
