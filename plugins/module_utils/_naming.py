# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Mailbox names from Vietnamese names (R5): pure functions, no Ansible.

The regulation's rules, as implemented here (``docs/addresses.md`` explains them with examples):

* R5: addresses are lowercase ASCII letters and digits, no spaces, no diacritics.
* R5.1a a department's local part is its abbreviation (``skhcn``).
* R5.1b a commune's or ward's local part is its name without "Xã"/"Phường"/"Thị trấn"
  (``Xã Chiềng Mung`` -> ``chiengmung``).
* R5.1c a sub-unit's local part is ``<abbreviation>.<parent's local part>`` (``vp.skhcn``).
* R5.2 a person's local part is ``<given name><initials of family and middle names>.<agency>``
  (``Nguyễn Văn An`` at ``skhcn`` -> ``annv.skhcn``); "đ"/"Đ" become "d".
* R5.3 on a clash, :func:`person_candidates` yields distinct, deterministic alternatives.

Transliteration first normalises to NFD and drops the combining marks, which covers every
Vietnamese letter (tone marks, breve, circumflex and the horn of "ư"/"ơ") whether the input was
typed precomposed (NFC) or decomposed (NFD). "đ"/"Đ" do not decompose and are mapped explicitly,
as are their look-alikes "ð"/"Ð" (Icelandic eth, which some keyboards and old fonts produce for
"Đ"). Anything still not ASCII falls back to ``unidecode``. The result is cached per word, so a
whole province's staff list costs a few microseconds a name.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from functools import lru_cache
from itertools import count

try:  # the fallback for letters that are not Vietnamese; the roles install it (python3-unidecode)
    from unidecode import unidecode
except ImportError:  # pragma: no cover - reported where it is needed
    unidecode = None

# "đ"/"Đ" (R5.2), and the eth look-alikes that old fonts and some keyboards produce for them.
_D_MAP = str.maketrans({"đ": "d", "Đ": "d", "ð": "d", "Ð": "d", "ɖ": "d", "Ɖ": "d"})
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_LOCAL_PART = re.compile(r"[a-z0-9]+(?:\.[a-z0-9]+)*")
_ABBREVIATION = re.compile(r"[a-z0-9]+")

# Administrative prefixes stripped from commune and ward names (R5.1b), longest first. A word
# matches when, lower-cased, it is spelled as here or with no diacritics at all ("xa"), so
# "XÃ", "xã" and "Xa" are prefixes but the name "Xá Lượng" is not.
_PREFIX_WORDS = {
    "ủy": {"ủy", "uỷ", "uy"}, "ban": {"ban"}, "nhân": {"nhân", "nhan"}, "dân": {"dân", "dan"},
    "ubnd": {"ubnd"}, "xã": {"xã", "xa"}, "phường": {"phường", "phuong"},
    "thị": {"thị", "thi"}, "trấn": {"trấn", "tran"},
}
_COMMUNE_PREFIXES = tuple(
    tuple(prefix.split())
    for prefix in (
        "ủy ban nhân dân thị trấn", "ủy ban nhân dân phường", "ủy ban nhân dân xã",
        "ubnd thị trấn", "ubnd phường", "ubnd xã", "thị trấn", "phường", "xã",
    )
)

ORGANIZATION_KINDS = ("department", "commune", "ward", "subunit")

# R5.3 alternatives that spell out a name part are offered only while the part before the
# agency stays this short; longer ones are skipped in favour of the numbered form.
MAX_SPELLED_VARIANT = 16


@lru_cache(maxsize=65536)
def _transliterate_word(word: str) -> str:
    """One word (or any text) to lowercase ASCII letters and digits; cached."""
    text = unicodedata.normalize("NFD", word.translate(_D_MAP))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    if not text.isascii():
        if unidecode is None:
            raise ImportError(f"the Python library 'unidecode' is needed to transliterate {word!r}")
        text = unidecode(unicodedata.normalize("NFC", text))
    return _NOT_ALNUM.sub("", text.lower())


def transliterate(text: str) -> str:
    """Vietnamese text to lowercase ASCII letters and digits, without spaces (R5).

    "Chiềng Mung" -> "chiengmung", "Đôi" -> "doi" (R5.2), "H'Mông" -> "hmong". Accepts NFC or NFD
    input; whitespace, apostrophes, hyphens and other punctuation are removed.
    """
    if not isinstance(text, str):
        raise TypeError(f"expected text, got {type(text).__name__}")
    return "".join(_transliterate_word(word) for word in text.split())


def _words(text: str) -> list[str]:
    """The words of a name, NFC-normalised, dropping words with no letter or digit at all."""
    return [w for w in unicodedata.normalize("NFC", text).split() if _transliterate_word(w)]


def split_name(full_name: str) -> tuple[str, tuple[str, ...], str]:
    """Split a Vietnamese full name into ``(family, middles, given)``.

    Vietnamese order is family name, middle name(s), given name: "Nguyễn Thị Minh Khai" is
    ``("Nguyễn", ("Thị", "Minh"), "Khai")``. A two-word name has no middle name; a one-word name is
    a given name alone (``("", (), "Sử")``). Words keep their diacritics (NFC); runs of whitespace
    and stray punctuation-only words are ignored. A compound family name such as "Tôn Nữ" is read
    as family "Tôn" and middle "Nữ": the address is the same either way, since both contribute an
    initial.

    Raises ValueError when the name has no letters.
    """
    if not isinstance(full_name, str):
        raise TypeError(f"a person's name must be text, got {type(full_name).__name__}")
    words = _words(full_name)
    if not words:
        raise ValueError(f"a person's name must contain letters (R5.2), got {full_name!r}")
    if len(words) == 1:
        return "", (), words[0]
    return words[0], tuple(words[1:-1]), words[-1]


def _name_parts(full_name: str) -> tuple[str, tuple[str, ...], str]:
    """``split_name`` transliterated: family, middles and given as lowercase ASCII."""
    family, middles, given = split_name(full_name)
    return (
        _transliterate_word(family) if family else "",
        tuple(_transliterate_word(m) for m in middles),
        _transliterate_word(given),
    )


def is_valid_local_part(text: object) -> bool:
    """True for lowercase a-z/0-9 parts joined by single dots (``annv.skhcn``, ``vp.skhcn``)."""
    return isinstance(text, str) and _LOCAL_PART.fullmatch(text) is not None


def _check_agency(agency: str) -> str:
    if not is_valid_local_part(agency):
        raise ValueError(
            f"the agency part of a personal address must be lowercase ASCII letters and digits "
            f"(R5.2), got {agency!r}"
        )
    return agency


def person_local_part(full_name: str, agency: str) -> str:
    """The R5.2 local part: given name in full, initials of family and middle names, agency.

    "Nguyễn Văn An" at ``skhcn`` -> ``annv.skhcn``; "Quàng Văn Đôi" -> ``doiqv.<agency>``.
    """
    _check_agency(agency)
    family, middles, given = _name_parts(full_name)
    initials = "".join(part[0] for part in (family, *middles) if part)
    return f"{given}{initials}.{agency}"


def person_candidates(full_name: str, agency: str) -> Iterator[str]:
    """Local parts for a person in order of preference, for clashes (R5.3). Never exhausted.

    1. The R5.2 form: ``annv.skhcn``.
    2. Given name, family name in full, middle initials: ``annguyenv.skhcn`` (tells apart
       "Nguyễn Văn An" and "Ngô Văn An", who share ``annv``).
    3. Given name, family initial, middle names in full: ``annvan.skhcn`` (tells apart
       "Nguyễn Văn An" and "Nguyễn Việt An"). Only for names with a middle name.
    4. The R5.2 form numbered from 2: ``annv2.skhcn``, ``annv3.skhcn``, ... for ever.

    Forms 2 and 3 are skipped when the part before the agency would exceed
    ``MAX_SPELLED_VARIANT`` characters (the address must stay short), or when they repeat an
    earlier candidate. Every candidate contains the given name in full and the agency. The order
    depends on nothing but the arguments, so the same inventory always allocates the same way.
    """
    _check_agency(agency)
    family, middles, given = _name_parts(full_name)
    middle_initials = "".join(m[0] for m in middles)
    base = given + (family[:1]) + middle_initials
    spelled = []
    if family:
        spelled.append(given + family + middle_initials)
    if middles:
        spelled.append(given + family[:1] + "".join(middles))
    seen = {base}
    yield f"{base}.{agency}"
    for name in spelled:
        if name not in seen and len(name) <= MAX_SPELLED_VARIANT:
            seen.add(name)
            yield f"{name}.{agency}"
    for number in count(2):
        name = f"{base}{number}"
        if name not in seen:
            yield f"{name}.{agency}"


def first_free_person_local_part(full_name: str, agency: str, taken: Iterable[str]) -> str:
    """The first of :func:`person_candidates` not in ``taken`` (local parts already issued)."""
    taken = taken if isinstance(taken, (set, frozenset, dict)) else set(taken)
    for candidate in person_candidates(full_name, agency):
        if candidate not in taken:
            return candidate
    raise AssertionError("unreachable: person_candidates is infinite")


def _strip_commune_prefix(words: list[str]) -> list[str]:
    lowered = [w.lower() for w in words[:5]]
    for prefix in _COMMUNE_PREFIXES:
        if len(lowered) >= len(prefix) and all(lowered[i] in _PREFIX_WORDS[p] for i, p in enumerate(prefix)):
            return words[len(prefix):]
    return words


def _check_abbreviation(abbreviation: str, rule: str) -> str:
    if not isinstance(abbreviation, str) or _ABBREVIATION.fullmatch(abbreviation) is None:
        raise ValueError(
            f"an abbreviation must be lowercase ASCII letters and digits without dots or spaces "
            f"({rule}), got {abbreviation!r}"
        )
    return abbreviation


def organization_local_part(
    kind: str,
    name: str,
    abbreviation: str | None = None,
    parent_local_part: str | None = None,
) -> str:
    """The local part of an organization's mailbox (R5.1).

    * ``department``: the abbreviation (R5.1a): ``skhcn``.
    * ``commune``/``ward``: the abbreviation if given (two communes with the same name), otherwise
      the name without its "Xã"/"Phường"/"Thị trấn" (or "UBND xã ...") prefix, transliterated
      (R5.1b): "Xã Chiềng Mung" -> ``chiengmung``, "Phường Tô Hiệu" -> ``tohieu``.
    * ``subunit``: ``<abbreviation>.<parent_local_part>`` (R5.1c): ``vp.skhcn``.
    """
    if kind == "department":
        if not abbreviation:
            raise ValueError(f"department {name!r} needs an abbreviation (R5.1a)")
        return _check_abbreviation(abbreviation, "R5.1a")
    if kind in ("commune", "ward"):
        if abbreviation:
            return _check_abbreviation(abbreviation, "R5.1b")
        if not isinstance(name, str):
            raise TypeError(f"a {kind} name must be text, got {type(name).__name__}")
        words = _strip_commune_prefix(_words(name))
        local = "".join(_transliterate_word(w) for w in words)
        if not local:
            raise ValueError(f"{kind} name {name!r} has no name after the administrative prefix (R5.1b)")
        return local
    if kind == "subunit":
        if not abbreviation:
            raise ValueError(f"sub-unit {name!r} needs an abbreviation (R5.1c)")
        _check_abbreviation(abbreviation, "R5.1c")
        if not is_valid_local_part(parent_local_part):
            raise ValueError(
                f"sub-unit {name!r} needs its parent's local part (R5.1c), got {parent_local_part!r}"
            )
        return f"{abbreviation}.{parent_local_part}"
    raise ValueError(f"unknown organization kind {kind!r}: expected one of {', '.join(ORGANIZATION_KINDS)}")
