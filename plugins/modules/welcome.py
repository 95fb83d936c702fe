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
notice_errors:
  description: Welcome mails Postfix did not take; they are tried again at the next run.
  returned: always
  type: list
  elements: str
  sample: []
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sonla.mail.plugins.module_utils import _notices, _userdb, _welcome


def main():
    module = AnsibleModule(
        argument_spec={
            "database": {"type": "path", "required": True},
            "domain": {"type": "str", "required": True},
            "support_contact": {"type": "str", "default": ""},
            "operators_mailbox": {"type": "str", "default": ""},
            "now": {"type": "str"},
            **_notices.SMTP_ARGUMENT_SPEC,
        },
        supports_check_mode=True,
    )
    params = module.params
    domain = params["domain"]
    now = params["now"] or _userdb.utc_now()
    if module.check_mode and not os.path.exists(params["database"]):
        module.exit_json(changed=False, welcomed=[], notice_errors=[])  # a new server: nothing to read yet
    try:
        connection = _userdb.connect(params["database"], upgrade=not module.check_mode)
        mailboxes = _welcome.pending(connection)
    except _userdb.DatabaseError as error:
        module.fail_json(msg=f"{params['database']}: {error}")
    support = params["support_contact"] or params["operators_mailbox"] or f"postmaster@{domain}"
    messages = _welcome.render(mailboxes, domain, params["webmail_url"] or f"https://mail.{domain}", support,
                               params["sender"] or f"postmaster@{domain}", now)
    if module.check_mode or not messages:
        module.exit_json(changed=bool(messages), welcomed=[m["address"] for m in mailboxes], notice_errors=[])
    sent, errors = _notices.send_each(messages, params["smtp_host"], params["smtp_port"])
    _welcome.record_sent(connection, sent, now)
    for error in errors:
        module.warn(f"welcome mail not sent, tried again at the next run: {error}")
    module.exit_json(changed=bool(sent), welcomed=sent, notice_errors=errors)


if __name__ == "__main__":
    main()
