# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Mailbox names (R5): behaviour the mutation run (scripts/mutation.sh, docs/quality.md) found unguarded."""

from __future__ import annotations

import re
from itertools import islice

import pytest

from ansible_collections.sonla.mail.plugins.module_utils._naming import (
    first_free_person_local_part,
    organization_local_part,
    person_candidates,
)


def test_r5_3_taken_may_be_any_iterable_even_a_generator():
    """R5.3: ``taken`` is any iterable of issued local parts; a one-shot generator must not be half-consumed.

    The first two candidates are taken, listed in reverse order: a lookup that consumed the generator would
    find the first and then miss the second, handing out an address that is already issued.
    """
    first, second, third = islice(person_candidates("Lò Văn Hặc", "chiengmung"), 3)
    issued = (candidate for candidate in [second, first])
    assert first_free_person_local_part("Lò Văn Hặc", "chiengmung", issued) == third


@pytest.mark.parametrize(
    ("kind", "abbreviation", "parent", "rule"),
    [
        ("department", "SKHCN", None, "R5.1a"),
        ("commune", "chieng mung", None, "R5.1b"),
        ("ward", "To-Hieu", None, "R5.1b"),
        ("subunit", "v.p", "skhcn", "R5.1c"),
    ],
)
def test_r5_1_bad_abbreviation_names_exactly_its_rule(kind, abbreviation, parent, rule):
    """R5.1a-c: the refusal of a malformed abbreviation cites the rule of its kind, as "(R5.1x)"."""
    with pytest.raises(ValueError, match=rf"\({re.escape(rule)}\), got {re.escape(repr(abbreviation))}$"):
        organization_local_part(kind, "Tên", abbreviation, parent)


@pytest.mark.parametrize("kind", ["commune", "ward"])
def test_r5_1b_non_text_name_is_a_type_error_naming_the_type(kind):
    """R5.1b: a commune or ward name that is not text (a YAML number, say) is refused with its type."""
    with pytest.raises(TypeError, match=rf"^a {kind} name must be text, got int$"):
        organization_local_part(kind, 1234)


def test_r5_1_unknown_kind_lists_the_kinds():
    """R5.1: an unknown kind is refused with the list of the four kinds the rule knows."""
    with pytest.raises(ValueError, match=r"expected one of department, commune, ward, subunit$"):
        organization_local_part("district", "Huyện Mai Sơn", "maison")
