# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The regulation's numbers, once (issue 11): bounds, expiry, reminders and the cross-field check."""

from datetime import datetime

import pytest

from ansible_collections.sonla.mail.plugins.module_utils import _regulation

CHANGED = datetime(2026, 1, 5, 9, 0, 0)


def keys(problems):
    return [(key, rule) for key, rule, _ in problems]


def test_the_regulations_numbers():
    """R9.1 (184 days: the longest 6 calendar months, July-December), R8.2a, R8.1, R6.1b, R6.2, R9.2b, R9.2d."""
    table = _regulation.table()
    assert table["log_retention_days"] == {"default": 184, "low": 184, "high": 3650, "rule": "R9.1"}
    assert (table["inactivity_suspend_days"]["default"], table["inactivity_suspend_days"]["high"]) == (90, 90)
    assert (table["revoke_after_suspended_days"]["default"], table["revoke_after_suspended_days"]["low"]) == (30, 30)
    assert table["password.max_age_days"] == {"default": 90, "low": 1, "high": 90, "rule": "R6.1b"}
    assert table["password.min_length"]["low"] == 8 and table["password.history"]["default"] == 5
    assert table["max_attachment_mb"]["default"] == 25 and table["default_quota_mb"]["default"] == 2048
    assert table["spam_junk_score"] == {"default": 6, "low": 3, "high": 30, "rule": "R4.2"}
    assert table["spam_reject_score"] == {"default": 15, "low": 6, "high": 50, "rule": "R4.2"}
    assert _regulation.SPECIAL_CHARACTERS == "!@#%$*&"
    assert _regulation.DEFAULT_PASSWORD_REMINDER_DAYS == (14, 7, 1) and _regulation.DEFAULT_QUOTA_WARNING_PERCENT == (80, 95)


def test_the_defaults_are_sound():
    assert _regulation.policy_problems({}) == []
    assert _regulation.policy_problems(_regulation.resolve({})) == []


def test_max_age_30_with_a_reminder_at_45_days_is_refused():
    """Issue 11: this policy passed lint-inventory, then the lifecycle raised. One check refuses it."""
    problems = _regulation.policy_problems({"password": {"max_age_days": 30}, "password_reminder_days": [45]})
    assert keys(problems) == [("password_reminder_days", "R6.1b")]
    assert "1-29" in problems[0][2]
    assert _regulation.policy_problems({"password": {"max_age_days": 30}, "password_reminder_days": [29, 7]}) == []


@pytest.mark.parametrize(("policy", "expected"), [
    ({"revoke_after_suspended_days": 30, "revoke_warning_days": 29}, []),
    ({"revoke_after_suspended_days": 40, "revoke_warning_days": 29}, []),
    ({"revoke_after_suspended_days": 30, "revoke_warning_days": 30}, [("revoke_warning_days", "R8.1")] * 2),
    ({"password_reminder_days": [7, 7]}, [("password_reminder_days", "R6.1b")]),
    ({"password_reminder_days": [0]}, [("password_reminder_days", "R6.1b")]),
    ({"password_reminder_days": [True]}, [("password_reminder_days", "R6.1b")]),
    ({"password_reminder_days": 7}, [("password_reminder_days", "R6.1b")]),
    ({"quota_warning_percent": [95, 80]}, [("quota_warning_percent", "R9.2d")]),
    ({"quota_warning_percent": [80, 100]}, [("quota_warning_percent", "R9.2d")]),
    ({"quota_warning_percent": []}, [("quota_warning_percent", "R9.2d")]),
    ({"log_retention_days": 183}, [("log_retention_days", "R9.1")]),
    ({"log_retention_days": 184}, []),
    ({"inactivity_suspend_days": 91}, [("inactivity_suspend_days", "R8.2a")]),
    ({"inactivity_suspend_days": "90"}, [("inactivity_suspend_days", "R8.2a")]),
    ({"revoke_after_suspended_days": 29}, [("revoke_after_suspended_days", "R8.1")]),
    ({"max_idle_suspensions_per_run": -1}, [("max_idle_suspensions_per_run", "R8.2a")]),
    ({"password": {"max_age_days": 91}}, [("password.max_age_days", "R6.1b")]),
    ({"password": {"min_length": 7}}, [("password.min_length", "R6.2")]),
    ({"password": {"history": 0}}, [("password.history", "R6.1b")]),
    ({"password": "strong"}, [("password", "R6.2")]),
    ({"spam_junk_score": 3, "spam_reject_score": 6}, []),
    ({"spam_junk_score": 30, "spam_reject_score": 50}, []),
    ({"spam_junk_score": 2}, [("spam_junk_score", "R4.2")]),
    ({"spam_junk_score": 31}, [("spam_junk_score", "R4.2"), ("spam_junk_score", "R4.2")]),
    ({"spam_reject_score": 5}, [("spam_reject_score", "R4.2"), ("spam_junk_score", "R4.2")]),
    ({"spam_reject_score": 51}, [("spam_reject_score", "R4.2")]),
    ({"spam_junk_score": 10, "spam_reject_score": 10}, [("spam_junk_score", "R4.2")]),
    ({"spam_junk_score": 6.5}, [("spam_junk_score", "R4.2")]),
])
def test_policy_problems(policy, expected):
    problems = keys(_regulation.policy_problems(policy))
    # revoke_warning_days 30 breaks both its own bound (1-29) and the cross-field rule.
    assert problems == expected


def test_expiry_is_one_moment_and_reminders_derive_from_it():
    """R6.1b: refused from changed_at + max_age_days on, to the second; reminders N days before that moment."""
    assert _regulation.password_expires_at(CHANGED, 90) == datetime.fromisoformat("2026-04-05 09:00:00+00:00")
    assert not _regulation.password_expired(CHANGED, 90, datetime(2026, 4, 5, 8, 59, 59))
    assert _regulation.password_expired(CHANGED, 90, datetime(2026, 4, 5, 9, 0, 0))
    reminders = (14, 7, 1)
    assert _regulation.due_reminder(CHANGED, 90, reminders, datetime(2026, 3, 22, 8, 59, 59)) is None
    assert _regulation.due_reminder(CHANGED, 90, reminders, datetime(2026, 3, 22, 9, 0, 0)) == 14
    assert _regulation.due_reminder(CHANGED, 90, reminders, datetime(2026, 3, 30, 0, 0, 0)) == 7
    assert _regulation.due_reminder(CHANGED, 90, reminders, datetime(2026, 4, 4, 9, 0, 0)) == 1
    assert _regulation.due_reminder(CHANGED, 90, reminders, datetime(2026, 4, 5, 9, 0, 0)) is None  # expired


def test_bound_problem_messages_name_the_rule():
    bound = _regulation.POLICY_BOUNDS["inactivity_suspend_days"]
    assert bound.problem("inactivity_suspend_days", 90) is None
    assert bound.problem("inactivity_suspend_days", 1) is None
    assert bound.problem("inactivity_suspend_days", 0) == "'inactivity_suspend_days' must be 1-90 (R8.2a), got 0"
    assert "whole number" in bound.problem("inactivity_suspend_days", False)


def test_resolve_fills_the_defaults_and_keeps_the_rest():
    resolved = _regulation.resolve({"password": {"max_age_days": 60, "special_characters": "!@"}, "extra": 1})
    assert resolved["password"] == {"max_age_days": 60, "special_characters": "!@", "min_length": 8, "history": 5}
    assert resolved["log_retention_days"] == 184 and resolved["extra"] == 1
    assert resolved["password_reminder_days"] == [14, 7, 1] and resolved["quota_warning_percent"] == [80, 95]
