#!/usr/bin/python
# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: mail_inventory
short_description: Load, validate and pin the addresses of a mail inventory
description:
  - Reads the C(mail/) folder of an inventory (policy, organizations, people, address lock; see
    C(docs/inventory.md)), validates all of it, and fails naming file, line and rule for every problem.
  - Allocates an address to each new person and organization by the naming rules (R5.1a-c, R5.2, R5.3)
    and records it in C(addresses.lock.yml). Issued addresses never change.
  - Returns the whole desired mailbox set for M(sonla.mail.mailboxes).
  - It always runs on the controller, whatever the hosts of the play. Its action plugin reads and writes the
    inventory folder there, in the controller's own process (no module upload, no 15 MB JSON round trip).
version_added: 0.1.0
author: Sơn La IT center mail team (!UNKNOWN)
extends_documentation_fragment:
  - sonla.mail.attributes
  - sonla.mail.attributes.DIFF
options:
  path:
    description: The inventory's C(mail/) folder.
    type: path
    required: true
  write_lock:
    description: Write newly allocated addresses to C(addresses.lock.yml). Without it, new addresses are only returned.
    type: bool
    default: true
  resolved_dir:
    description:
      - Controller folder where the resolved inventory is saved for the later tasks of the run (RV(resolved_file)).
        Files there older than a day are deleted.
    type: path
    default: ~/.cache/sonla-mail/resolved
  cache_dir:
    description:
      - Controller folder (0700) where the action plugin keeps what the checks of each people file and of
        C(addresses.lock.yml) returned, by the file's exact text, the collection's code, the domain and the
        organizations' states. A file that passed before with all of these the same is read back instead of checked
        again; checks across files run every time, and a file with a problem is never kept (issue 19).
      - An empty string checks every file on every run.
    type: path
    default: ~/.cache/sonla-mail/checked
  return_mailboxes:
    description:
      - Return the desired mailbox set as RV(mailboxes). A playbook that hands the set on by RV(resolved_file) sets
        it to V(false), since Ansible copies and scans every registered result, which at 50,000 mailboxes costs
        seconds per run (issue 19).
    type: bool
    default: true
seealso:
  - module: sonla.mail.mailboxes
"""

EXAMPLES = r"""
- name: Load the mail inventory
  sonla.mail.mail_inventory:
    path: "{{ inventory_dir }}/mail"
  register: sonla_mail_inventory
"""

RETURN = r"""
resolved_file:
  description:
    - Controller path of a private file (0600) with the resolved inventory, which M(sonla.mail.mailboxes) and
      M(sonla.mail.notices) read with their O(sonla.mail.mailboxes#module:resolved) option, so the inventory is
      loaded and resolved once per run.
  returned: success
  type: str
  sample: /root/.cache/sonla-mail/resolved/resolved-k2j3h4.json
path:
  description: The absolute path of the inventory's C(mail/) folder, for the tasks that read it again.
  returned: success
  type: str
  sample: /srv/sonla-mail/inventories/production/mail
domain:
  description: The mail domain (R3.1).
  returned: success
  type: str
  sample: sonla.gov.vn
webmail_host:
  description: Host name of the webmail (R3.1).
  returned: success
  type: str
  sample: mail.sonla.gov.vn
department:
  description: Organization id that receives the summaries (R7.3).
  returned: success
  type: str
  sample: skhcn
policy:
  description: The validated policy block with defaults filled in.
  returned: success
  type: dict
  sample: {default_quota_mb: 2048, max_attachment_mb: 25, log_retention_days: 183}
organizations:
  description: Every organization with its mailbox address.
  returned: success
  type: list
  elements: dict
  sample: [{id: skhcn, name: Sở Khoa học và Công nghệ, kind: department, parent: null, address: skhcn@sonla.gov.vn}]
mailboxes:
  description: The desired mailbox set, the input of M(sonla.mail.mailboxes).
  returned: when O(return_mailboxes) is V(true)
  type: list
  elements: dict
  sample: [{address: annv.skhcn@sonla.gov.vn, kind: person, owner_id: skhcn-0001, display_name: Nguyễn Văn An}]
aliases:
  description:
    - The aliases and lists of C(aliases.yml), members expanded to final addresses, the input of M(sonla.mail.directory).
    - C(dropped) names the members left out because their mailbox is deleted on request (R7.2).
  returned: success
  type: list
  elements: dict
  sample: [{address: canbo.skhcn@sonla.gov.vn, kind: list, organization: skhcn, display_name: Cán bộ Sở,
            request: null, legacy: false, members: [annv.skhcn@sonla.gov.vn], dropped: []}]
notified:
  description: The mailboxes with a notified leave (R8.2a) or a restore request (R8.3a), for the lifecycle.
  returned: success
  type: list
  elements: dict
  sample: [{address: annv.skhcn@sonla.gov.vn, leave_until: "2027-03-31"}]
allocated:
  description: Addresses issued by this run, keyed by C(person:<id>) or C(org:<id>).
  returned: success
  type: dict
  sample: {"person:skhcn-0042": "annv2.skhcn@sonla.gov.vn"}
problems:
  description: "Every problem found, as C(file:line: rule: message)."
  returned: failure
  type: list
  elements: str
  sample: ["inventories/demo/mail/people/skhcn.yml:12: unknown-organization: person 'skhcn-0007': ..."]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sonla.mail.plugins.module_utils._inventory import InventoryProblems, converge_inventory


def main():
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "write_lock": {"type": "bool", "default": True},
            "resolved_dir": {"type": "path", "default": "~/.cache/sonla-mail/resolved"},  # used by the action plugin
            "cache_dir": {"type": "path", "default": "~/.cache/sonla-mail/checked"},  # used by the action plugin
            "return_mailboxes": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    try:
        result = converge_inventory(module.params["path"], module.params["write_lock"], module.check_mode, module._diff)
    except InventoryProblems as error:
        module.fail_json(msg=str(error), problems=error.problems)
    if not module.params["return_mailboxes"]:
        del result["mailboxes"]
    module.exit_json(**result)


if __name__ == "__main__":
    main()
