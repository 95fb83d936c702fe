#!/usr/bin/python
# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: welcome
short_description: Send the welcome mail to each new mailbox, once
description:
  - Sends, through the local Postfix (so it is DKIM-signed like every notice), one welcome mail to each mailbox of
    the user database that never had one, in Vietnamese with an English part (R3.4).
  - It carries the rules users must follow (no state secrets by mail R3.3, no sign-ups to outside services R12.4,
    suspicious mail and reporting spam R12.5), where to get help (R10.1d, R10.2d) and how to change the one-time
    password in the webmail (R6.1a).
  - Each mail Postfix takes is recorded in the database's C(welcome_mail) table, so it is never sent twice.
    Mailboxes that existed before this feature count as welcomed.
  - A run sends at most O(max_mails) (oldest mailboxes first); the server's welcome job that the mailboxes role
    installs (C(sonla-mail-welcome), every few minutes) sends the rest, so a converge that adds thousands of
    mailboxes is not held up by their mails. The two take the same lock and never send the same mail.
  - Check mode returns the mails that would be sent.
version_added: 0.3.0
author: Sơn La IT center mail team (!UNKNOWN)
extends_documentation_fragment:
  - sonla.mail.attributes
  - sonla.mail.attributes.NO_DIFF
  - sonla.mail.notices
options:
  database:
    description: Path of the SQLite user database on the mail server.
    type: path
    required: true
  domain:
    description: The mail domain (sender and message ids).
    type: str
    required: true
  support_contact:
    description:
      - Who helps users and takes their feedback (R10.1d, R10.2d), as the policy's C(support_contact) says.
      - Empty, the mail names O(operators_mailbox).
    type: str
    default: ""
  operators_mailbox:
    description: The operators' mailbox, named when O(support_contact) is empty.
    type: str
    default: ""
  max_mails:
    description:
      - The most welcome mails this run sends. Each takes about 0.1 s through the filter.
      - C(0) leaves them all to the welcome job.
    type: int
    default: 200
  now:
    description: The time of the mails, C(YYYY-MM-DD HH:MM:SS) UTC; defaults to the clock.
    type: str
"""

EXAMPLES = r"""
- name: Welcome the new mailboxes
  sonla.mail.welcome:
    database: /var/lib/sonla-mail/users.sqlite
    domain: sonla.gov.vn
    support_contact: "Trung tâm CNTT, 0212 3xxx xxx, hotro@sonla.gov.vn"
"""

RETURN = r"""
welcomed:
  description: Addresses welcomed by this run (in check mode, those that would be).
  returned: always
  type: list
  elements: str
  sample: [annv.skhcn@sonla.gov.vn]
pending:
  description: Mailboxes still owed their welcome mail after this run, left to the welcome job.
  returned: always
  type: int
  sample: 0
sender_busy:
  description: The welcome job was sending when this run started, so this run sent nothing.
  returned: success
  type: bool
  sample: false
notice_errors:
  description: Welcome mails Postfix did not take; they are tried again by the welcome job or at the next run.
  returned: always
  type: list
  elements: str
  sample: []
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sonla.mail.plugins.module_utils import _notices, _userdb, _welcome

WELCOME_OPTIONS = ("domain", "support_contact", "operators_mailbox", "webmail_url", "sender", "smtp_host", "smtp_port")


def main():
    module = AnsibleModule(
        argument_spec={
            "database": {"type": "path", "required": True},
            "domain": {"type": "str", "required": True},
            "support_contact": {"type": "str", "default": ""},
            "operators_mailbox": {"type": "str", "default": ""},
            "max_mails": {"type": "int", "default": 200},
            "now": {"type": "str"},
            **_notices.SMTP_ARGUMENT_SPEC,
        },
        supports_check_mode=True,
    )
    params = module.params
    if params["max_mails"] < 0:
        module.fail_json(msg=f"max_mails must be 0 or more, not {params['max_mails']}")
    now = params["now"] or _userdb.utc_now()
    if module.check_mode and not os.path.exists(params["database"]):
        module.exit_json(changed=False, welcomed=[], pending=0, notice_errors=[])  # a new server: nothing to read yet
    try:
        connection = _userdb.connect(params["database"], upgrade=not module.check_mode)
        if module.check_mode:
            owed = [mailbox["address"] for mailbox in _welcome.pending(connection)]
            due = owed[:params["max_mails"]]
            module.exit_json(changed=bool(due), welcomed=due, pending=len(owed) - len(due), notice_errors=[])
        options = _welcome.settings(**{name: params[name] for name in WELCOME_OPTIONS})
        with _welcome.exclusive(_welcome.lock_file(params["database"])) as held:
            if not held:  # the welcome job is sending: it sends what this run would have
                module.exit_json(changed=False, welcomed=[], pending=len(_welcome.pending(connection)),
                                 notice_errors=[], sender_busy=True)
            result = _welcome.send_pending(connection, options, now, params["max_mails"])
    except _userdb.DatabaseError as error:
        module.fail_json(msg=f"{params['database']}: {error}")
    for error in result["errors"]:
        module.warn(f"welcome mail not sent, tried again by the welcome job or the next run: {error}")
    module.exit_json(changed=bool(result["welcomed"]), welcomed=result["welcomed"], pending=result["pending"],
                     notice_errors=result["errors"], sender_busy=False)


if __name__ == "__main__":
    main()
