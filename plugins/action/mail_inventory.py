# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of ``sonla.mail.mail_inventory``: the inventory lives on the controller, so it is read there.

Running in Ansible's own process spares a module upload and the round trip of the whole desired set
through JSON (about 15 MB and several seconds at 50,000 people).
"""

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

from ansible_collections.sonla.mail.plugins.module_utils._inventory import (
    InventoryProblems,
    converge_inventory,
    write_resolved,
)

DEFAULT_RESOLVED_DIR = "~/.cache/sonla-mail/resolved"
DEFAULT_CACHE_DIR = "~/.cache/sonla-mail/checked"

ARGUMENT_SPEC = {
    "path": {"type": "path", "required": True},
    "write_lock": {"type": "bool", "default": True},
    "resolved_dir": {"type": "path", "default": DEFAULT_RESOLVED_DIR},
    "cache_dir": {"type": "path", "default": DEFAULT_CACHE_DIR},
    "return_mailboxes": {"type": "bool", "default": True},
}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        validation = ArgumentSpecValidator(ARGUMENT_SPEC).validate(self._task.args)
        if validation.error_messages:
            raise AnsibleActionFail("; ".join(validation.error_messages))
        args = validation.validated_parameters
        try:
            result.update(converge_inventory(args["path"], args["write_lock"], self._task.check_mode, self._task.diff,
                                             args["cache_dir"] or None))
        except InventoryProblems as error:
            result.update(failed=True, msg=str(error), problems=error.problems)
            return result
        # Later tasks of the run (mailboxes, notices) read this file instead of resolving the inventory again.
        # A controller-side scratch file, written in check mode too: those tasks preview from it.
        result["resolved_file"] = write_resolved(result, os.path.expanduser(args["resolved_dir"]))
        if not args["return_mailboxes"]:
            del result["mailboxes"]  # the file has them; Ansible would copy and scan each one (issue 19)
        return result
