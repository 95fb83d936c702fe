#!/usr/bin/python
# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lifecycle
short_description: Run the regulation's account clocks on the mail server, or suspend accounts as an operator
description:
  - Runs on the mail server against the SQLite user database, the same planner as the daily
    C(sonla-mail-lifecycle) job of the C(sonla.mail.lifecycle) role (C(docs/lifecycle.md)).
  - Suspends mailboxes without a login for more than the policy's C(inactivity_suspend_days) (R8.2a), unless the
    inventory records a notified leave (C(leave_until)) that covers it.
  - Warns the agency, then revokes mailboxes suspended by the lifecycle or an operator for
    C(revoke_after_suspended_days) (R8.1) with no restore request in the inventory; revocation deletes the
    mailbox and its mail and is final (R7.2).
  - Caps per run, from the policy (C(max_revocations_per_run), C(max_idle_suspensions_per_run)) or
    O(max_revocations) and O(max_idle_suspensions). A cap that is exceeded holds back all actions of its own
    kind for this run, raises an alert (RV(alerts), a warning, the Department's summary), and the rest of the
    run is done. An inventory entry with an unreadable date is reported in RV(problems) and left as it is.
  - Sends password reminders before expiry and reports expired passwords (R6.1b). Dovecot refuses an expired
    password with the reason; mail is still delivered.
  - Suspends accounts an operator names in O(suspend) as compromised (R8.2b) or for misuse (R8.2c).
  - Sends one notice per agency and a summary to the Department (R7.3).
  - Check mode plans and previews the notices, writes nothing and sends nothing.
version_added: 0.2.0
author: Sơn La IT center mail team (!UNKNOWN)
extends_documentation_fragment:
  - sonla.mail.attributes
  - sonla.mail.attributes.DIFF
  - sonla.mail.notices
options:
  database:
    description: Path of the SQLite user database.
    type: path
    default: /var/lib/sonla-mail/users.sqlite
  mail_root:
    description: Root of the mail storage, C(<mail_root>/<domain>/<local part>); a revoked mailbox's mail is deleted (R7.2).
    type: path
    default: /var/vmail
  now:
    description: The current time, C(YYYY-MM-DD HH:MM:SS) or C(YYYY-MM-DD) UTC. For tests and previews; defaults to the clock.
    type: str
  policy:
    description:
      - The policy block returned by M(sonla.mail.mail_inventory). Read keys are C(inactivity_suspend_days),
        C(revoke_after_suspended_days), C(revoke_warning_days), C(password_reminder_days), C(password.max_age_days),
        C(max_revocations_per_run) and C(max_idle_suspensions_per_run); other keys are ignored. Missing keys take
        the regulation's values (C(plugins/module_utils/_regulation.py)).
    type: dict
    default: {}
  mailboxes:
    description:
      - The desired mailbox set returned by M(sonla.mail.mail_inventory). Only C(address), C(organization),
        C(display_name), C(leave_until) (R8.2a) and C(restore) (R8.3a) are read.
    type: list
    elements: dict
    default: []
  organizations:
    description: The organizations returned by M(sonla.mail.mail_inventory); notices go to each agency's mailbox (R7.3).
    type: list
    elements: dict
    default: []
  department:
    description: Organization id of the Department, which receives the summary (R7.3).
    type: str
  domain:
    description: The mail domain, for the notices' sender and message ids. Defaults to the domain of the database's addresses.
    type: str
  suspend:
    description: Operator suspensions, applied in this run with the reason recorded (R8.2b, R8.2c).
    type: list
    elements: dict
    default: []
    suboptions:
      address:
        description: The mailbox to suspend.
        type: str
        required: true
      cause:
        description: V(compromised) (virus, leaked or stolen password, spam, R8.2b) or V(misuse) (forbidden use, R8.2c).
        type: str
        required: true
        choices: [compromised, misuse]
      reason:
        description: What happened, recorded and shown at login.
        type: str
        required: true
      request:
        description:
          - Reference of the written request or report behind the suspension (R7.1c), recorded with the event
            (R11.2). Without it the event carries the request the account is held under.
        type: str
  max_revocations:
    description:
      - Overrides the policy's C(max_revocations_per_run) for this run. When more mailboxes are due for revocation,
        none is revoked this run and an alert is raised; the rest of the run is done.
    type: int
  max_idle_suspensions:
    description:
      - Overrides the policy's C(max_idle_suspensions_per_run) for this run (R8.2a). When more mailboxes are due
        for idle suspension (a broken last-login hook would make everyone idle), none is suspended for
        inactivity this run and an alert is raised; the rest of the run is done.
    type: int
  notify:
    description: Send the notices (R7.3) and the password reminders (R6.1b) through the local Postfix.
    type: bool
    default: true
notes:
  - A converge never lifts a lifecycle or operator suspension unless the inventory carries a C(restore) request
    dated on or after it (R8.3a); the restored account must change its password (R8.3c).
  - Reminders, warnings and expiries are recorded in the database's event table and never sent twice.
seealso:
  - module: sonla.mail.mailboxes
  - module: sonla.mail.notices
"""

EXAMPLES = r"""
- name: Preview what the lifecycle would do on 1 March 2027
  sonla.mail.lifecycle:
    now: "2027-03-01"
    policy: "{{ hostvars['localhost'].sonla_mail_inventory.policy }}"
    mailboxes: "{{ hostvars['localhost'].sonla_mail_inventory.notified }}"
    organizations: "{{ hostvars['localhost'].sonla_mail_inventory.organizations }}"
    department: "{{ hostvars['localhost'].sonla_mail_inventory.department }}"
  check_mode: true

- name: Suspend a compromised account (R8.2b)
  sonla.mail.lifecycle:
    suspend:
      - address: annv.skhcn@sonla.gov.vn
        cause: compromised
        reason: "Lộ mật khẩu, gửi thư rác (công văn 12/CATP)"
"""

RETURN = r"""
now:
  description: The time the run used.
  returned: always
  type: str
  sample: "2027-03-01 02:00:00"
suspended:
  description: Suspensions of this run, by the lifecycle (R8.2a) or an operator (R8.2b, R8.2c).
  returned: always
  type: list
  elements: dict
  sample: [{action: suspended, address: annv.skhcn@sonla.gov.vn, by: lifecycle, cause: inactive, reason: "..."}]
revocation_warnings:
  description: Mailboxes whose agency is warned of the coming revocation (R8.1), with C(revoke_on).
  returned: always
  type: list
  elements: dict
  sample: [{action: revocation_warning, address: annv.skhcn@sonla.gov.vn, revoke_on: "2027-03-31"}]
revoked:
  description: Addresses revoked, with their mail deleted (R8.1, R7.2).
  returned: always
  type: list
  elements: str
  sample: [annv.skhcn@sonla.gov.vn]
password_reminders:
  description: Password reminders sent (R6.1b), with C(days_left) and C(expires_on).
  returned: always
  type: list
  elements: dict
  sample: [{action: password_reminder, address: annv.skhcn@sonla.gov.vn, days: 7, expires_on: "2027-03-08"}]
password_expired:
  description: Passwords that expired since the last run (R6.1b).
  returned: always
  type: list
  elements: dict
  sample: [{action: password_expired, address: annv.skhcn@sonla.gov.vn, expired_on: "2027-03-01"}]
on_leave:
  description: Idle mailboxes not suspended because of a notified leave (R8.2a).
  returned: always
  type: list
  elements: dict
  sample: [{address: annv.skhcn@sonla.gov.vn, leave_until: "2027-06-30", idle_days: 120}]
restore_pending:
  description: Mailboxes due for revocation that the inventory asks to restore; the next converge restores them.
  returned: always
  type: list
  elements: dict
  sample: [{address: annv.skhcn@sonla.gov.vn, request: 45/QĐ-SKHCN, date: "2027-03-02"}]
deferred:
  description: Revocations waiting for their warning to be old enough (R8.1).
  returned: always
  type: list
  elements: dict
  sample: [{address: annv.skhcn@sonla.gov.vn, revoke_on: "2027-03-31"}]
notices:
  description: The notices sent, or in check mode those that would be sent (recipient and subject).
  returned: always
  type: list
  elements: dict
  sample: [{to: skhcn@sonla.gov.vn, subject: "[Thư điện tử Sơn La] Thông báo kết quả ngày 2027-03-01 / ..."}]
notice_errors:
  description: Notices Postfix did not take. The actions themselves were done.
  returned: always
  type: list
  elements: str
  sample: []
mail_errors:
  description: Revoked mailboxes whose mail could not be deleted.
  returned: always
  type: list
  elements: str
  sample: []
held:
  description: Actions a cap held back this run, by kind (C(suspended) for idle suspensions, C(revoked)).
  returned: always
  type: dict
  sample: {suspended: [annv.skhcn@sonla.gov.vn], revoked: []}
problems:
  description: Inventory entries whose data cannot be read (an impossible date); those entries are left as they are.
  returned: always
  type: list
  elements: dict
  sample: [{address: annv.skhcn@sonla.gov.vn, field: leave_until, value: "2027-02-30", message: "not a valid date ..."}]
alerts:
  description: What the operator must check (a cap hit, unreadable entries); each is also a warning and in the summary.
  returned: always
  type: list
  elements: str
  sample: ["120 idle suspensions (R8.2a) due, more than max_idle_suspensions_per_run=50: none done this run ..."]
summary:
  description: How many mailboxes fall in each group.
  returned: always
  type: dict
  sample: {suspended: 1, revocation_warning: 0, revoked: 0, password_reminder: 3, password_expired: 0, on_leave: 1}
"""

from contextlib import nullcontext

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sonla.mail.plugins.module_utils import _lifecycle, _notices

SUSPEND_OPTIONS = {
    "address": {"type": "str", "required": True},
    "cause": {"type": "str", "required": True, "choices": list(_lifecycle.CAUSES)},
    "reason": {"type": "str", "required": True},
    "request": {"type": "str"},
}


def main():
    module = AnsibleModule(
        argument_spec={
            "database": {"type": "path", "default": "/var/lib/sonla-mail/users.sqlite"},
            "mail_root": {"type": "path", "default": "/var/vmail"},
            "now": {"type": "str"},
            "policy": {"type": "dict", "default": {}},
            "mailboxes": {"type": "list", "elements": "dict", "default": []},
            "organizations": {"type": "list", "elements": "dict", "default": []},
            "department": {"type": "str"},
            "domain": {"type": "str"},
            "suspend": {"type": "list", "elements": "dict", "default": [], "options": SUSPEND_OPTIONS},
            "max_revocations": {"type": "int"},
            "max_idle_suspensions": {"type": "int"},
            "notify": {"type": "bool", "default": True},
            **_notices.SMTP_ARGUMENT_SPEC,
        },
        supports_check_mode=True,
    )
    params = module.params
    try:
        policy = _lifecycle.Policy.from_inventory(params["policy"])
        if params["now"]:
            _lifecycle.parse_time(params["now"])
        for cap in ("max_revocations", "max_idle_suspensions"):
            if params[cap] is not None and params[cap] < 0:
                raise ValueError(f"{cap} must be 0 or more, got {params[cap]}")
    except ValueError as error:
        module.fail_json(msg=str(error))

    passed_on = ("now", "mailboxes", "organizations", "department", "domain", "suspend", "max_revocations",
                 "max_idle_suspensions", "notify", "mail_root", "smtp_host", "smtp_port", "sender", "webmail_url")
    options = {key: params[key] for key in passed_on}
    try:
        with nullcontext() if module.check_mode else _lifecycle.run_lock(params["database"]):
            result = _lifecycle.run(params["database"], policy=policy, check=module.check_mode, **options)
    except _lifecycle.LifecycleError as error:
        module.fail_json(msg=str(error))

    for alert in result["alerts"]:
        module.log(f"sonla-mail-lifecycle ALERT: {alert}")
        module.warn(f"lifecycle alert: {alert}")
    for error in result["notice_errors"]:
        module.warn(f"notice not sent (R7.3): {error}")
    for error in result["mail_errors"]:
        module.warn(f"mail of a revoked mailbox not deleted (R7.2): {error}")
    plan = result.pop("plan")
    if module._diff:
        result["diff"] = _lifecycle.diff_text(plan)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
