# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The regulation's numbers for the roles' asserts, from plugins/module_utils/_regulation.py, never restated in Jinja.

    {{ ('log_retention_days' | sonla.mail.regulation_bound).low }}      # 184 (R9.1)
    {{ 'password.max_age_days' | sonla.mail.regulation_bound }}        # {default, low, high, rule}
    {{ lifecycle_policy | sonla.mail.regulation_problems }}            # [] when the policy is sound
    {{ none | sonla.mail.regulation }}                                 # the whole table
    {{ {'password': webmail_password_policy} | sonla.mail.regulation_resolve }}  # defaults filled in
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.sonla.mail.plugins.module_utils import _regulation


def regulation(_value=None) -> dict:
    """Every bound: ``{key: {default, low, high, rule}}``, password keys as ``password.<key>``."""
    return _regulation.table()


def regulation_bound(key) -> dict:
    """One bound by key, e.g. ``inactivity_suspend_days`` or ``password.max_age_days``."""
    bounds = _regulation.table()
    if key not in bounds:
        raise AnsibleFilterError(f"regulation_bound: unknown key {key!r}; known: {', '.join(sorted(bounds))}")
    return bounds[key]


def regulation_problems(policy) -> list[str]:
    """The cross-field check of a policy block, as ``key: message (rule)`` lines; empty when sound."""
    if policy is not None and not isinstance(policy, dict):
        raise AnsibleFilterError(f"regulation_problems: expected a policy mapping, got {type(policy).__name__}")
    return [f"{key}: {message} ({rule})" for key, rule, message in _regulation.policy_problems(policy or {})]


def regulation_resolve(policy) -> dict:
    """A policy block with every key the policy leaves out set to the regulation's default."""
    if policy is not None and not isinstance(policy, dict):
        raise AnsibleFilterError(f"regulation_resolve: expected a policy mapping, got {type(policy).__name__}")
    return _regulation.resolve(policy)


class FilterModule:
    def filters(self):
        return {"regulation": regulation, "regulation_bound": regulation_bound, "regulation_problems": regulation_problems,
                "regulation_resolve": regulation_resolve}
