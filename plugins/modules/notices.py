#!/usr/bin/python
# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: notices
short_description: Send the result notices of a mailbox converge to each agency and the Department
description:
  - Sends, through the local Postfix, one UTF-8 notice to the mailbox of each agency that had requests carried out
    or refused (created addresses, changes, suspensions, restorations, deletions, refusals with the reason), and a
    summary to the Department (R7.3, R3.4).
  - What was carried out comes from the user database, not from this run's memory, the C(mailbox_event) rows
    M(sonla.mail.mailboxes) wrote that no notice has named yet; once Postfix took every notice they are marked
    notified. So a run that failed after the converge sends its notices at the next run, and each event is named
    once. Refusals come from O(result), since a refusal changes nothing in the database.
  - With several mail servers, run it with C(run_once) to send, and with O(send=false) on the other servers, which
    only marks their copies of the same events.
  - Sub-unit staff are reported to their agency (department, commune or ward).
  - Sends nothing when no event is pending and nothing was refused. Check mode returns the notices that would be sent.
  - Runs on the mail server, after M(sonla.mail.mailboxes).
version_added: 0.2.0
author: Sơn La IT center mail team (!UNKNOWN)
extends_documentation_fragment:
  - sonla.mail.attributes
  - sonla.mail.attributes.NO_DIFF
  - sonla.mail.notices
options:
  result:
    description:
      - What the user database's events do not hold, from this run's results.
      - C(refused), the refusals of M(sonla.mail.mailboxes), and C(list_member_dropped), the C(dropped) list of
        M(sonla.mail.directory); other keys are ignored, so a whole registered result may be given.
    type: dict
    default: {}
  database:
    description: The user database whose pending events the notices name, a SQLite file or a PostgreSQL URI.
    type: str
    default: /var/lib/sonla-mail/users.sqlite
  send:
    description: Send the notices. V(false) only marks the pending events notified (the other mail servers).
    type: bool
    default: true
  inventory:
    description:
      - The inventory's C(mail/) folder on the controller. The action plugin reads it there and fills in
        O(mailboxes) (only the mailboxes the notices name), O(organizations), O(department) and O(domain).
      - The way to send notices for large inventories, since no 50,000-entry variable is templated.
    type: path
  resolved:
    description:
      - The RV(sonla.mail.mail_inventory#module:resolved_file) of M(sonla.mail.mail_inventory) earlier in the run; read
        by the action plugin like O(inventory), without resolving the inventory again.
    type: path
  mailboxes:
    description: Desired mailboxes from M(sonla.mail.mail_inventory), for the names and organizations of refused addresses.
    type: list
    elements: dict
    default: []
  organizations:
    description:
      - The organizations from M(sonla.mail.mail_inventory), with their mailbox addresses.
      - The action plugin fills it in from O(inventory) or O(resolved).
    type: list
    elements: dict
    required: true
  department:
    description: Organization id of the Department, which receives the summary.
    type: str
  domain:
    description: The mail domain (sender and message ids). The action plugin fills it in from O(inventory) or O(resolved).
    type: str
    required: true
  now:
    description: The time of the notices, C(YYYY-MM-DD HH:MM:SS) UTC; defaults to the clock.
    type: str
seealso:
  - module: sonla.mail.mailboxes
  - module: sonla.mail.lifecycle
"""

EXAMPLES = r"""
- name: Send the result notices of this converge (R7.3)
  sonla.mail.notices:
    result:
      refused: "{{ mailboxes_result.refused }}"
      list_member_dropped: "{{ mailboxes_directory_result.dropped }}"
    inventory: "{{ hostvars['localhost'].sonla_mail_inventory.path }}"
"""

RETURN = r"""
notices:
  description: The notices sent, or in check mode those that would be sent.
  returned: always
  type: list
  elements: dict
  sample: [{to: skhcn@sonla.gov.vn, subject: "[Thư điện tử Sơn La] Thông báo kết quả ngày 2026-12-01 / ..."}]
items:
  description: How many actions and refusals the notices report.
  returned: always
  type: int
  sample: 3
notified:
  description: How many pending events were marked notified.
  returned: always
  type: int
  sample: 3
notice_errors:
  description: Notices Postfix did not take.
  returned: always
  type: list
  elements: str
  sample: []
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sonla.mail.plugins.module_utils import _notices, _userdb


def main():
    module = AnsibleModule(
        argument_spec={
            "result": {"type": "dict", "default": {}},
            "database": {"type": "str", "default": "/var/lib/sonla-mail/users.sqlite"},
            "send": {"type": "bool", "default": True},
            "mailboxes": {"type": "list", "elements": "dict", "default": []},
            "organizations": {"type": "list", "elements": "dict", "required": True},  # filled by the action with inventory
            "department": {"type": "str"},
            "domain": {"type": "str", "required": True},
            "now": {"type": "str"},
            # Read by the action plugin, which fills in mailboxes, organizations, department and domain.
            "inventory": {"type": "path"},
            "resolved": {"type": "path"},
            **_notices.SMTP_ARGUMENT_SPEC,
        },
        supports_check_mode=True,
    )
    params = module.params
    now = params["now"] or _userdb.utc_now()
    connection = None
    pending = []
    if _userdb.is_postgres(params["database"]) or os.path.exists(params["database"]):
        connection = _userdb.connect(params["database"], upgrade=not module.check_mode)
        pending = _userdb.pending_notices(connection)
    carried_out, described = _notices.pending_result(pending)
    directory = _notices.Directory(params["organizations"], params["department"], params["mailboxes"] + described)
    from_this_run = {section: params["result"].get(section) or [] for section in _notices.RUN_SECTIONS}
    items = _notices.converge_items({**carried_out, **from_this_run}, directory)
    messages = _notices.render(items, directory, now, "converge", params["domain"], params["sender"],
                               params["webmail_url"]) if params["send"] else []
    result = {"changed": bool(messages or pending), "notices": _notices.preview(messages), "items": len(items),
              "notified": 0, "notice_errors": []}
    if module.check_mode or not result["changed"]:
        module.exit_json(**result)
    result["notice_errors"] = _notices.send(messages, params["smtp_host"], params["smtp_port"])
    if messages and len(result["notice_errors"]) == len(messages):
        module.fail_json(msg="no result notice was sent (R7.3): " + "; ".join(result["notice_errors"]), **result)
    for error in result["notice_errors"]:
        module.warn(f"notice not sent (R7.3), its events stay pending for the next run: {error}")
    if pending and not result["notice_errors"]:  # R7.3: named once; a partial failure is sent again in full
        _userdb.mark_notified(connection, [row["id"] for row in pending], now)
        result["notified"] = len(pending)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
