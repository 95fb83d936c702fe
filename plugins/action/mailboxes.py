# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of ``sonla.mail.mailboxes``: initial passwords never leave the controller in clear.

The module runs once. When it plans new mailboxes it returns their addresses instead of writing;
this plugin then generates policy-conformant random passwords here (R6.1a, R6.2), sends only their
hashes to the server in a file, runs the module again, and after it succeeds writes the clear
passwords to a handoff file on the controller (mode 0600, outside the repository).
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from datetime import UTC, datetime

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.sonla.mail.plugins.module_utils import _password
from ansible_collections.sonla.mail.plugins.module_utils._inventory import InventoryProblems, converge_inventory

DEFAULT_HANDOFF_DIR = "~/.local/share/sonla-mail/handoff"


class ActionModule(ActionBase):
    TRANSFERS_FILES = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        module_args = dict(self._task.args)
        handoff_dir = os.path.expanduser(module_args.pop("handoff_dir", None) or DEFAULT_HANDOFF_DIR)
        try:
            policy = _password.PasswordPolicy.from_dict(module_args.pop("password_policy", None) or {})
        except ValueError as error:
            raise AnsibleActionFail(f"password_policy: {error}") from error

        try:
            desired = module_args.pop("mailboxes", None)
            inventory = module_args.pop("inventory", None)
            if inventory is not None:
                # Read here rather than passed in a variable: Ansible templates a 50,000-entry list in seconds.
                try:
                    desired = converge_inventory(os.path.expanduser(inventory), pin=False)["mailboxes"]
                except InventoryProblems as error:
                    result.update(failed=True, msg=str(error), problems=error.problems)
                    return result
            if desired is not None:  # a file, not arguments: no per-element processing on either side
                module_args["mailboxes_file"] = self._send("desired-mailboxes.json", desired)
            first = self._execute_module("sonla.mail.mailboxes", module_args=module_args, task_vars=task_vars)
            new_addresses = first.pop("needs_initial_passwords", None)
            if first.get("failed") or not new_addresses:
                result.update(first)
                return result

            passwords = {address: _password.generate_password(policy) for address in new_addresses}
            hashes = {address: _password.hash_initial(password) for address, password in passwords.items()}
            module_args["initial_password_file"] = self._send("initial-passwords.json", hashes)
            second = self._execute_module("sonla.mail.mailboxes", module_args=module_args, task_vars=task_vars)
            if not second.get("failed"):
                names = {mailbox["address"]: mailbox for mailbox in desired or ()}
                second["handoff_file"] = self._write_handoff(handoff_dir, task_vars, passwords, names)
            result.update(second)
            return result
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)

    def _send(self, name: str, data) -> str:
        """Write ``data`` as JSON to a file in the remote temporary folder and return its path."""
        remote = self._connection._shell.join_path(self._connection._shell.tmpdir, name)
        self._transfer_data(remote, json.dumps(data))
        self._fixup_perms2((self._connection._shell.tmpdir, remote))
        return remote

    def _write_handoff(self, handoff_dir: str, task_vars: dict, passwords: dict, mailboxes: dict) -> str:
        """Write the new accounts' one-time passwords where only the operator can read them."""
        host = (task_vars or {}).get("inventory_hostname", "mail")
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = os.path.join(handoff_dir, f"{host}-{stamp}.csv")
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(("address", "display_name", "organization", "initial_password"))
        for address in sorted(passwords):
            mailbox = mailboxes.get(address, {"display_name": "", "organization": ""})
            writer.writerow((address, mailbox["display_name"], mailbox["organization"], passwords[address]))
        os.makedirs(handoff_dir, mode=0o700, exist_ok=True)
        os.chmod(handoff_dir, 0o700)  # also when it already existed with a looser mode
        descriptor, temporary = tempfile.mkstemp(dir=handoff_dir, prefix=".handoff-")
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:  # mkstemp creates it 0600
            stream.write(buffer.getvalue())
        os.replace(temporary, path)
        return path
