# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Password policy, generation and Dovecot password hashes (R6): pure functions, no Ansible.

* :class:`PasswordPolicy` is the ``policy.password`` block of ``policy.yml``; ``from_dict`` refuses
  values that would break the regulation (R6.1b, R6.2).
* :func:`check_password` lists every broken rule with a Vietnamese and an English message (R6.2).
* :func:`generate_password` makes one-time initial passwords (R6.1a).
* :func:`hash_initial` / :func:`hash_chosen` / :func:`verify_password` write and read the
  ``{SCHEME}hash`` strings Dovecot verifies. ``docs/passwords.md`` explains the two schemes and
  gives their measured cost.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import string
import unicodedata
from dataclasses import dataclass, fields

from ansible_collections.sonla.mail.plugins.module_utils._regulation import PASSWORD_BOUNDS, SPECIAL_CHARACTERS

try:  # for {BLF-CRYPT}; the mailboxes role installs python3-bcrypt on the servers
    import bcrypt
except ImportError:  # pragma: no cover - reported where it is needed
    bcrypt = None

# The regulation's numbers live in _regulation; these names say how this module uses them.
REGULATION_SPECIAL_CHARACTERS = SPECIAL_CHARACTERS  # R6.2: exactly these seven
REGULATION_MIN_LENGTH = PASSWORD_BOUNDS["min_length"].low  # R6.2
REGULATION_MAX_AGE_DAYS = PASSWORD_BOUNDS["max_age_days"].high  # R6.1b: every 3 months
PASSWORD_HISTORY_BOUNDS = (PASSWORD_BOUNDS["history"].low, PASSWORD_BOUNDS["history"].high)  # R6.1b

# bcrypt reads only the first 72 bytes of a password; longer ones would be silently truncated.
BCRYPT_MAX_BYTES = 72
BCRYPT_COST = 10
SSHA512_SALT_BYTES = 16

# Generated passwords avoid characters that are easy to misread: 0/O/o, 1/l/I.
_GEN_UPPER = "".join(c for c in string.ascii_uppercase if c not in "IO")
_GEN_LOWER = "".join(c for c in string.ascii_lowercase if c not in "lo")
_GEN_DIGITS = "23456789"


@dataclass(frozen=True)
class PasswordPolicy:
    """The password rules of ``policy.yml`` (``policy.password``), defaults as in docs/inventory.md."""

    min_length: int = PASSWORD_BOUNDS["min_length"].default
    require_upper: bool = True
    require_lower: bool = True
    require_digit: bool = True
    special_characters: str = REGULATION_SPECIAL_CHARACTERS
    max_age_days: int = PASSWORD_BOUNDS["max_age_days"].default
    history: int = PASSWORD_BOUNDS["history"].default

    def __post_init__(self) -> None:
        errors = _policy_errors(self)
        if errors:
            raise ValueError("invalid password policy: " + "; ".join(errors))

    @classmethod
    def from_dict(cls, data: dict | None) -> PasswordPolicy:
        """Build from the ``policy.password`` mapping; missing keys take the defaults.

        Raises ValueError naming every unknown key and every value that breaks the regulation.
        """
        if data is None:
            return cls()
        if not isinstance(data, dict):
            # ValueError, not TypeError: this is bad inventory data, reported like any other.
            raise ValueError(f"policy.password must be a mapping, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"policy.password: unknown key(s) {', '.join(map(str, unknown))}; "
                f"known keys are {', '.join(sorted(known))}"
            )
        return cls(**data)


def _policy_errors(policy: PasswordPolicy) -> list[str]:
    errors = []
    for name in ("min_length", "max_age_days", "history"):
        value = getattr(policy, name)
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append(f"{name} must be a whole number, got {value!r}")
    for name in ("require_upper", "require_lower", "require_digit"):
        value = getattr(policy, name)
        if not isinstance(value, bool):
            errors.append(f"{name} must be true or false, got {value!r}")
        elif not value:
            errors.append(f"{name} cannot be false: R6.2 requires upper- and lower-case letters and a digit")
    if not errors:
        if policy.min_length < REGULATION_MIN_LENGTH:
            errors.append(f"min_length {policy.min_length} is below the regulation's {REGULATION_MIN_LENGTH} (R6.2)")
        elif policy.min_length > BCRYPT_MAX_BYTES:
            errors.append(
                f"min_length {policy.min_length} is above {BCRYPT_MAX_BYTES}, the longest password BLF-CRYPT reads"
            )
        if policy.max_age_days > REGULATION_MAX_AGE_DAYS:
            errors.append(
                f"max_age_days {policy.max_age_days} is above the regulation's "
                f"{REGULATION_MAX_AGE_DAYS} (R6.1b: every 3 months)"
            )
        elif policy.max_age_days < 1:
            errors.append(f"max_age_days must be at least 1, got {policy.max_age_days}")
        low, high = PASSWORD_HISTORY_BOUNDS
        if not low <= policy.history <= high:
            errors.append(
                f"history must be {low}-{high} passwords, got {policy.history} (R6.1b: below {low} allows an A->B->A toggle)"
            )
    specials = policy.special_characters
    if not isinstance(specials, str) or not specials:
        errors.append(f"special_characters must be a non-empty string (R6.2), got {specials!r}")
    else:
        outside = sorted(set(specials) - set(REGULATION_SPECIAL_CHARACTERS))
        if outside:
            errors.append(
                f"special_characters may only use R6.2's set {REGULATION_SPECIAL_CHARACTERS!r}, "
                f"not {''.join(outside)!r}"
            )
    return errors


@dataclass(frozen=True)
class Violation:
    """One broken rule: the regulation ID, a stable code, and messages for the user."""

    rule: str
    code: str
    message_vi: str
    message_en: str


def check_password(password: str, policy: PasswordPolicy | None = None) -> list[Violation]:
    """Every rule ``password`` breaks, one violation per rule, in a stable order (R6.2).

    Upper and lower case are Unicode-aware; digits are 0-9; a special character is one of the
    policy's ``special_characters`` only (R6.2 lists exactly ``! @ # % $ * &``), so "^" or "?" are
    allowed in a password but do not count as special.
    """
    policy = policy or PasswordPolicy()
    if not isinstance(password, str):
        raise TypeError(f"a password must be text, got {type(password).__name__}")
    found = []
    if len(password) < policy.min_length:
        found.append(
            Violation(
                "R6.2",
                "too_short",
                f"Mật khẩu phải có tối thiểu {policy.min_length} ký tự (hiện có {len(password)}).",
                f"The password must be at least {policy.min_length} characters long (it has {len(password)}).",
            )
        )
    if len(password.encode("utf-8")) > BCRYPT_MAX_BYTES:
        found.append(
            Violation(
                "R10.2b",
                "too_long",
                f"Mật khẩu không được dài quá {BCRYPT_MAX_BYTES} byte (hệ thống chỉ đọc {BCRYPT_MAX_BYTES} byte đầu).",
                f"The password must not exceed {BCRYPT_MAX_BYTES} bytes "
                f"(the system reads only the first {BCRYPT_MAX_BYTES}).",
            )
        )
    if any(unicodedata.category(c) in CONTROL_CATEGORIES for c in password):
        # SASL PLAIN separates its fields with NUL: such a password could never log in over IMAP or SMTP.
        found.append(
            Violation(
                "R10.2b",
                "control_character",
                "Mật khẩu không được chứa ký tự điều khiển (như NUL, tab, xuống dòng) hay ký tự định dạng ẩn.",
                "The password must not contain control characters (such as NUL, tab, line breaks) or hidden format characters.",
            )
        )
    if policy.require_upper and not any(c.isupper() for c in password):
        found.append(
            Violation(
                "R6.2",
                "no_upper",
                "Mật khẩu phải có ít nhất một ký tự in hoa (A-Z).",
                "The password must contain at least one upper-case letter (A-Z).",
            )
        )
    if policy.require_lower and not any(c.islower() for c in password):
        found.append(
            Violation(
                "R6.2",
                "no_lower",
                "Mật khẩu phải có ít nhất một ký tự in thường (a-z).",
                "The password must contain at least one lower-case letter (a-z).",
            )
        )
    if policy.require_digit and not any(c in string.digits for c in password):
        found.append(
            Violation(
                "R6.2",
                "no_digit",
                "Mật khẩu phải có ít nhất một chữ số (0-9).",
                "The password must contain at least one digit (0-9).",
            )
        )
    if not any(c in policy.special_characters for c in password):
        shown = " ".join(policy.special_characters)
        found.append(
            Violation(
                "R6.2",
                "no_special",
                f"Mật khẩu phải có ít nhất một ký tự đặc biệt trong số: {shown}",
                f"The password must contain at least one special character from: {shown}",
            )
        )
    return found


# NUL and other controls, format characters (bidi, zero-width), surrogates, line and paragraph separators.
CONTROL_CATEGORIES = frozenset(("Cc", "Cf", "Cs", "Zl", "Zp"))
# Characters a spreadsheet reads as the start of a formula (CSV injection).
FORMULA_START = frozenset("=+-@")


def generate_password(policy: PasswordPolicy | None = None, length: int = 16) -> str:
    """A random password that passes ``policy`` (R6.1a initial passwords).

    At least ``length`` characters (and never fewer than the policy's minimum), at least one of
    each required class, no easily confused characters (0/O/o, 1/l/I). Uses ``secrets``.
    """
    policy = policy or PasswordPolicy()
    length = max(length, policy.min_length)
    if length > BCRYPT_MAX_BYTES:
        raise ValueError(f"length {length} is above {BCRYPT_MAX_BYTES}, the longest password BLF-CRYPT reads")
    specials = policy.special_characters
    required = [_GEN_UPPER, _GEN_LOWER, _GEN_DIGITS, specials]
    alphabet = _GEN_UPPER + _GEN_LOWER + _GEN_DIGITS + specials
    chars = [secrets.choice(group) for group in required]
    chars += [secrets.choice(alphabet) for _ in range(length - len(chars))]
    # Fisher-Yates with the secrets generator, so the required characters land anywhere.
    for i in range(len(chars) - 1, 0, -1):
        j = secrets.randbelow(i + 1)
        chars[i], chars[j] = chars[j], chars[i]
    if chars[0] in FORMULA_START:
        # The handoff file is opened in spreadsheets, which read a cell starting with "@" as a formula.
        letter = next(i for i, c in enumerate(chars) if c.isalnum())
        chars[0], chars[letter] = chars[letter], chars[0]
    return "".join(chars)


def hash_initial(password: str) -> str:
    """``{SSHA512}`` hash for a generated one-time initial password (R6.1a).

    base64(sha512(password + salt) + salt) with a 16-byte random salt, as Dovecot's SSHA512
    scheme reads it. Cheap on purpose: these passwords are 16 random characters (about 95 bits),
    out of reach of brute force with or without key stretching, and must be changed at first
    login; see docs/passwords.md.
    """
    salt = secrets.token_bytes(SSHA512_SALT_BYTES)
    digest = hashlib.sha512(_encode(password) + salt).digest()
    return "{SSHA512}" + base64.b64encode(digest + salt).decode("ascii")


def hash_chosen(password: str, cost: int = BCRYPT_COST) -> str:
    """``{BLF-CRYPT}$2y$...`` bcrypt hash for a password the user chose.

    The ``bcrypt`` library writes ``$2b$``; ``$2y$`` is the same algorithm and the prefix
    Dovecot's documentation shows, and libxcrypt's crypt() verifies both.
    Raises ValueError for passwords over 72 bytes, which bcrypt would silently truncate.
    """
    data = _encode(password)
    if len(data) > BCRYPT_MAX_BYTES:
        raise ValueError(f"password is longer than {BCRYPT_MAX_BYTES} bytes, which BLF-CRYPT would truncate")
    _need_bcrypt()
    hashed = bcrypt.hashpw(data, bcrypt.gensalt(rounds=cost, prefix=b"2b")).decode("ascii")
    return "{BLF-CRYPT}$2y$" + hashed[len("$2b$"):]


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches a ``{SSHA512}`` or ``{BLF-CRYPT}`` hash.

    Comparisons are constant-time. Raises ValueError for an unknown scheme or a malformed hash
    (a data error, not a wrong password).
    """
    if not isinstance(stored, str) or not stored.startswith("{") or "}" not in stored:
        raise ValueError("stored password hash must start with a {SCHEME} prefix")
    scheme, _, value = stored[1:].partition("}")
    data = _encode(password)
    if scheme.upper() == "SSHA512":
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("malformed {SSHA512} hash: not base64") from exc
        if len(raw) <= 64:
            raise ValueError("malformed {SSHA512} hash: no salt")
        digest, salt = raw[:64], raw[64:]
        return hmac.compare_digest(hashlib.sha512(data + salt).digest(), digest)
    if scheme.upper() == "BLF-CRYPT":
        if value[:4] not in ("$2y$", "$2b$", "$2a$"):
            raise ValueError("malformed {BLF-CRYPT} hash: expected a $2y$, $2b$ or $2a$ bcrypt hash")
        if len(data) > BCRYPT_MAX_BYTES:
            return False
        try:
            _need_bcrypt()
            # bcrypt.checkpw reads all three prefixes and compares in constant time.
            return bcrypt.checkpw(data, value.encode("ascii"))
        except ValueError as exc:
            raise ValueError("malformed {BLF-CRYPT} hash") from exc
    raise ValueError(f"unsupported password scheme {{{scheme}}}: expected {{SSHA512}} or {{BLF-CRYPT}}")


def _need_bcrypt() -> None:
    if bcrypt is None:
        raise ImportError("the Python library 'bcrypt' (Debian: python3-bcrypt) is needed for {BLF-CRYPT} hashes")


def _encode(password: str) -> bytes:
    if not isinstance(password, str):
        raise TypeError(f"a password must be text, got {type(password).__name__}")
    return password.encode("utf-8")
