# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of ``sonla.mail.notices``: with ``inventory``, names and agencies are read on the controller.

Only the refused mailboxes travel to the server (what was carried out is read from the user database there),
instead of a 50,000-entry variable that Ansible would template for seconds.
"""

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.sonla.mail.plugins.module_utils._inventory import (
    InventoryProblems,
    converge_inventory,
    read_resolved,
)
from ansible_collections.sonla.mail.plugins.module_utils._notices import RUN_SECTIONS, touched_addresses


class ActionModule(ActionBase):
    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        module_args = dict(self._task.args)
        inventory = module_args.pop("inventory", None)
        resolved = module_args.pop("resolved", None)
        converge = module_args.get("result") or {}
        # Only what the database does not hold; "unchanged" alone can hold 50,000 addresses.
        module_args["result"] = {section: converge.get(section) or [] for section in RUN_SECTIONS}
        loaded = None
        if resolved is not None:  # resolved once per run by mail_inventory
            try:
                loaded = read_resolved(os.path.expanduser(resolved))
            except (OSError, ValueError) as error:
                raise AnsibleActionFail(f"resolved: {error}") from error
        elif inventory is not None:
            try:
                loaded = converge_inventory(os.path.expanduser(inventory), pin=False)
            except InventoryProblems as error:
                result.update(failed=True, msg=str(error), problems=error.problems)
                return result
        if loaded is not None:
            touched = touched_addresses(module_args["result"])
            module_args["mailboxes"] = [mailbox for mailbox in loaded["mailboxes"] if mailbox["address"] in touched]
            for key in ("organizations", "department", "domain"):
                module_args.setdefault(key, loaded[key])
        result.update(self._execute_module("sonla.mail.notices", module_args=module_args, task_vars=task_vars))
        return result
