#!/usr/bin/python
# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: directory
short_description: Converge every alias and list of the user database, and export the directory
description:
  - Takes the whole desired set of aliases and lists (role addresses, lists with explicit or computed members) as
    resolved by M(sonla.mail.mail_inventory), and brings the user database's C(alias) and C(alias_member) tables,
    which Postfix reads, to that set in one transaction. An alias the inventory no longer names is removed.
  - Members revoked by the lifecycle are dropped (R8.1, R7.2); each drop is reported once in RV(dropped) for the
    agency's notice. Suspended members stay, since their mailboxes still receive (R8.1).
  - Then writes the directory for the province's other systems (R10.1b) to O(export_dir), as C(directory.json) and
    C(directory.csv) (schema in docs/directory.md), only when its content changed. The export carries no secret
    and no suspension state.
  - Plans first, then applies. Check mode reports the plan and writes nothing.
version_added: 0.3.0
author: Sơn La IT center mail team (!UNKNOWN)
extends_documentation_fragment:
  - sonla.mail.attributes
  - sonla.mail.attributes.DIFF
options:
  database:
    description:
      - Path of the SQLite user database on the mail server, or the PostgreSQL URI of several hosts (issue 15), as
        given to M(sonla.mail.mailboxes); the mailboxes must already be converged.
    type: path
    required: true
  aliases:
    description:
      - The whole desired set, the RV(sonla.mail.mail_inventory#module:aliases) of M(sonla.mail.mail_inventory), with
        members already expanded to final addresses.
    type: list
    elements: dict
    required: true
  organizations:
    description: The organizations from M(sonla.mail.mail_inventory) (id, name, kind, parent), for the export's agencies.
    type: list
    elements: dict
    required: true
  domain:
    description: The mail domain, named in the export.
    type: str
    required: true
  export_dir:
    description: Folder of the exported directory. Omitted, nothing is exported.
    type: path
  now:
    description: The time recorded with the changes, C(YYYY-MM-DD HH:MM:SS) UTC; defaults to the clock.
    type: str
"""

EXAMPLES = r"""
- name: Converge the aliases and export the directory
  sonla.mail.directory:
    database: /var/lib/sonla-mail/users.sqlite
    aliases: "{{ sonla_mail_inventory.aliases }}"
    organizations: "{{ sonla_mail_inventory.organizations }}"
    domain: "{{ sonla_mail_inventory.domain }}"
    export_dir: /var/lib/sonla-mail/directory
"""

RETURN = r"""
added:
  description: Aliases created.
  returned: always
  type: list
  elements: str
  sample: [canbo.skhcn@sonla.gov.vn]
changed_aliases:
  description: Aliases whose row or members changed, with the members that joined and left.
  returned: always
  type: list
  elements: dict
  sample: [{address: canbo.skhcn@sonla.gov.vn, changes: {}, joined: [annv.skhcn@sonla.gov.vn], left: []}]
removed:
  description: Aliases deleted because the inventory no longer names them.
  returned: always
  type: list
  elements: str
  sample: []
unchanged:
  description: Aliases already as desired.
  returned: always
  type: list
  elements: str
  sample: [vanthu.skhcn@sonla.gov.vn]
dropped:
  description: Members left out of a list because their mailbox was revoked or deleted, each reported once.
  returned: always
  type: list
  elements: dict
  sample: [{alias: canbo.skhcn@sonla.gov.vn, organization: skhcn, member: annv.skhcn@sonla.gov.vn, reason: revoked}]
summary:
  description: How many aliases fall in each group.
  returned: always
  type: dict
  sample: {added: 1, changed: 0, removed: 0, unchanged: 3, dropped: 0}
export:
  description: The exported files that were (or in check mode would be) written, and the counts exported.
  returned: when O(export_dir) is set
  type: dict
  sample: {written: [/var/lib/sonla-mail/directory/directory.json], mailboxes: 212, aliases: 4}
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sonla.mail.plugins.module_utils import _alias_plan, _directory, _userdb
from ansible_collections.sonla.mail.plugins.module_utils._lifecycle import read_revoked


def main():
    module = AnsibleModule(
        argument_spec={
            "database": {"type": "path", "required": True},
            "aliases": {"type": "list", "elements": "dict", "required": True},
            "organizations": {"type": "list", "elements": "dict", "required": True},
            "domain": {"type": "str", "required": True},
            "export_dir": {"type": "path"},
            "now": {"type": "str"},
        },
        supports_check_mode=True,
    )
    params = module.params
    database = params["database"]
    connection = None  # check mode on a new server: no database yet, every alias would be added
    exists = _userdb.is_postgres(database) or os.path.exists(database)  # several hosts: PostgreSQL (issue 15)
    if not exists and not module.check_mode:
        module.fail_json(msg=f"{database}: no user database; converge the mailboxes first (sonla.mail.mailboxes)")
    try:
        if exists:
            connection = _userdb.connect(database, upgrade=not module.check_mode)
        plan = _alias_plan.build_plan(params["aliases"], _alias_plan.read_aliases(connection),
                                      read_revoked(connection) if connection else {},
                                      _alias_plan.reported_drops(connection))
        if plan.changed_anything and not module.check_mode:
            _alias_plan.apply_plan(connection, plan, params["now"] or _userdb.utc_now())
    except (KeyError, TypeError) as error:
        module.fail_json(msg=f"aliases: an entry lacks {error}; pass the aliases of sonla.mail.mail_inventory")
    except _userdb.DatabaseError as error:
        module.fail_json(msg=f"nothing was changed: {error}")
    result = {
        "changed": plan.changed_anything, "added": [alias["address"] for alias in plan.added],
        "changed_aliases": plan.changed, "removed": plan.removed, "unchanged": plan.unchanged,
        "dropped": plan.dropped, "summary": plan.summary(),
    }
    if module._diff:
        result["diff"] = _alias_plan.diff_text(plan)
    if params["export_dir"] and connection is not None:
        # In check mode the database is as it was: the preview exports today's aliases, not the planned ones.
        directory = _directory.build(connection, params["organizations"], params["domain"])
        files = _directory.changed_files(params["export_dir"], directory)
        if files and not module.check_mode:
            try:
                _directory.write(files)
            except OSError as error:
                module.fail_json(msg=f"directory export (R10.1b): {error}", **result)
        result["export"] = {"written": sorted(files), "mailboxes": len(directory["mailboxes"]),
                            "aliases": len(directory["aliases"])}
        result["changed"] = result["changed"] or bool(files)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
