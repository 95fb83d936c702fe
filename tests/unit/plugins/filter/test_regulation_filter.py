# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The roles' view of the regulation: the filters return _regulation's numbers and its one cross-field check."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.sonla.mail.plugins.filter.regulation import (
    FilterModule,
    regulation,
    regulation_bound,
    regulation_problems,
)
from ansible_collections.sonla.mail.plugins.module_utils import _regulation


def test_the_filters_are_registered():
    assert set(FilterModule().filters()) == {"regulation", "regulation_bound", "regulation_problems", "regulation_resolve"}


def test_bound_and_table_are_the_regulations():
    assert regulation_bound("log_retention_days") == {"default": 184, "low": 184, "high": 3650, "rule": "R9.1"}
    assert regulation_bound("password.max_age_days")["high"] == 90
    assert regulation() == _regulation.table()
    with pytest.raises(AnsibleFilterError, match="unknown key"):
        regulation_bound("log_retention_dayz")


def test_problems_as_lines_for_an_assert():
    assert regulation_problems({}) == [] and regulation_problems(None) == []
    (line,) = regulation_problems({"password": {"max_age_days": 30}, "password_reminder_days": [45]})
    assert line.startswith("password_reminder_days: ") and line.endswith("(R6.1b)")
    with pytest.raises(AnsibleFilterError, match="mapping"):
        regulation_problems(["not", "a", "policy"])


def test_resolve_fills_the_password_defaults_for_the_roles():
    from ansible_collections.sonla.mail.plugins.filter.regulation import regulation_resolve
    resolved = regulation_resolve({"password": {"max_age_days": 60}})["password"]
    assert resolved == {"special_characters": "!@#%$*&", "max_age_days": 60, "min_length": 8, "history": 5}
