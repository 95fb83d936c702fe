#!/usr/bin/python
# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: notices
short_description: Send the result notices of a mailbox converge to each agency and the Department
description:
  - Takes the result of M(sonla.mail.mailboxes) and sends, through the local Postfix, one UTF-8 notice to the
    mailbox of each agency that had requests carried out or refused (created addresses, changes, suspensions,
    restorations, deletions, refusals with the reason), and a summary to the Department (R7.3, R3.4).
  - Sub-unit staff are reported to their agency (department, commune or ward).
  - Sends nothing when the converge did nothing. Check mode returns the notices that would be sent.
  - Runs on the mail server, after M(sonla.mail.mailboxes).
version_added: 0.2.0
author: Sơn La IT center mail team (!UNKNOWN)
extends_documentation_fragment:
  - sonla.mail.attributes
  - sonla.mail.attributes.NO_DIFF
  - sonla.mail.notices
options:
  result:
    description: The registered result of M(sonla.mail.mailboxes).
    type: dict
    required: true
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
    description: The desired mailbox set from M(sonla.mail.mail_inventory), for names, organizations and request references.
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
    result: "{{ mailboxes_result }}"
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
notice_errors:
  description: Notices Postfix did not take.
  returned: always
  type: list
  elements: str
  sample: []
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sonla.mail.plugins.module_utils import _notices, _userdb


def main():
    module = AnsibleModule(
        argument_spec={
            "result": {"type": "dict", "required": True},
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
    directory = _notices.Directory(params["organizations"], params["department"], params["mailboxes"])
    items = _notices.converge_items(params["result"], directory)
    messages = _notices.render(items, directory, params["now"] or _userdb.utc_now(), "converge", params["domain"],
                               params["sender"], params["webmail_url"])
    result = {"changed": bool(messages), "notices": _notices.preview(messages), "items": len(items), "notice_errors": []}
    if module.check_mode or not messages:
        module.exit_json(**result)
    result["notice_errors"] = _notices.send(messages, params["smtp_host"], params["smtp_port"])
    if len(result["notice_errors"]) == len(messages):
        module.fail_json(msg="no result notice was sent (R7.3): " + "; ".join(result["notice_errors"]), **result)
    for error in result["notice_errors"]:
        module.warn(f"notice not sent (R7.3): {error}")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
