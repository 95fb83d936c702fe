# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of ``sonla.mail.mailboxes``: initial passwords never leave the controller in clear,
and no account ever exists without its handoff (R6.1a, issue 10).

The module runs once. When it plans new mailboxes (or one-time passwords to reissue) it returns their
addresses instead of writing; this plugin then generates policy-conformant random passwords here (R6.1a,
R6.2) and, in this order:

1. writes them durably to a *pending* handoff file on the controller (mode 0600, a unique name, fsynced);
2. sends only their hashes to the server and runs the module again, which records the handoff's id with
   each account in the same transaction that creates it;
3. renames the pending file to its final ``.csv`` name.

If the write fails, nothing is committed. If anything dies between 2 and 3, the next run asks the
database whether the pending file's id was committed: then the file is confirmed, else it is deleted
(its passwords were never used) and the accounts are planned again. A lock per host and handoff
folder keeps two runs from one controller apart. Handoff files whose accounts have all chosen their own
password are deleted: the one-time passwords in them are spent.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import re
import secrets
from contextlib import contextmanager
from datetime import UTC, datetime

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.sonla.mail.plugins.module_utils import _password
from ansible_collections.sonla.mail.plugins.module_utils._inventory import (
    InventoryProblems,
    converge_inventory,
    read_resolved,
)

DEFAULT_HANDOFF_DIR = "~/.local/share/sonla-mail/handoff"
FINAL = ".csv"
PENDING = ".csv.pending"
HEADER = ("address", "display_name", "organization", "initial_password")
# A cell that starts with one of these is a formula to a spreadsheet, where operators open this file.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell: str) -> str:
    """A CSV cell a spreadsheet shows as text (OWASP's CSV injection advice: a leading quote)."""
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def render_handoff(passwords: dict[str, str], mailboxes: dict[str, dict]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    for address in sorted(passwords):
        mailbox = mailboxes.get(address, {})
        # Passwords are never escaped: generate_password never starts one with a formula character.
        writer.writerow((address, spreadsheet_safe(mailbox.get("display_name") or ""),
                         spreadsheet_safe(mailbox.get("organization") or ""), passwords[address]))
    return buffer.getvalue()


class HandoffFolder:
    """The handoff files of one host in one folder: pending ones, delivered ones, and the lock."""

    def __init__(self, folder: str, host: str):
        self.folder = folder
        self.prefix = re.sub(r"[^A-Za-z0-9._-]", "_", host) + "-"

    @contextmanager
    def locked(self):
        """Create the folder (0700) and hold this host's lock for the whole run."""
        try:
            os.makedirs(self.folder, mode=0o700, exist_ok=True)
            os.chmod(self.folder, 0o700)  # also when it already existed with a looser mode
            descriptor = os.open(os.path.join(self.folder, f".{self.prefix}lock"), os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as error:
            raise AnsibleActionFail(f"handoff_dir {self.folder} is not usable, nothing was changed: {error}") from error
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield self
        finally:
            os.close(descriptor)

    def _ids(self, suffix: str) -> list[str]:
        if not os.path.isdir(self.folder):
            return []
        return sorted(name[len(self.prefix):-len(suffix)] for name in os.listdir(self.folder)
                      if name.startswith(self.prefix) and name.endswith(suffix))

    def path(self, handoff_id: str, suffix: str = FINAL) -> str:
        return os.path.join(self.folder, f"{self.prefix}{handoff_id}{suffix}")

    def pending(self) -> list[str]:
        return self._ids(PENDING)

    def delivered(self) -> dict[str, list[str]]:
        """The addresses of each delivered handoff file (its first column)."""
        found = {}
        for handoff_id in self._ids(FINAL):
            with open(self.path(handoff_id), encoding="utf-8", newline="") as stream:
                found[handoff_id] = [row[0] for row in csv.reader(stream) if row and row[0] != HEADER[0]]
        return found

    def write_pending(self, text: str) -> str:
        """Write a new pending file durably (fsync of the file and the folder); return its id."""
        handoff_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(4)
        descriptor = os.open(self.path(handoff_id, PENDING), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as stream:
                stream.write(text)
                stream.flush()
                os.fsync(stream.fileno())
        except OSError as error:
            self.discard(handoff_id)
            raise AnsibleActionFail(f"could not write the handoff file in {self.folder}, nothing was changed: {error}") from error
        self._sync()
        return handoff_id

    def confirm(self, handoff_id: str) -> str:
        os.rename(self.path(handoff_id, PENDING), self.path(handoff_id))
        self._sync()
        return self.path(handoff_id)

    def discard(self, handoff_id: str, suffix: str = PENDING) -> None:
        try:
            os.unlink(self.path(handoff_id, suffix))
        except FileNotFoundError:
            pass

    def reconcile(self, pending: list[str], committed: list[str], used: list[str]) -> list[str]:
        """Confirm the pending files whose passwords were committed, drop the others and the spent ones."""
        confirmed = [self.confirm(handoff_id) for handoff_id in pending if handoff_id in committed]
        for handoff_id in pending:
            if handoff_id not in committed:
                self.discard(handoff_id)  # never committed: nobody has or needs these passwords
        for handoff_id in used:
            self.discard(handoff_id, FINAL)
        return confirmed

    def _sync(self) -> None:
        descriptor = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


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
        folder = HandoffFolder(handoff_dir, (task_vars or {}).get("inventory_hostname", "mail"))
        try:
            desired = module_args.pop("mailboxes", None)
            inventory = module_args.pop("inventory", None)
            resolved = module_args.pop("resolved", None)
            if resolved is not None:  # resolved once per run by mail_inventory
                try:
                    desired = read_resolved(os.path.expanduser(resolved))["mailboxes"]
                except (OSError, ValueError) as error:
                    raise AnsibleActionFail(f"resolved: {error}") from error
            elif inventory is not None:
                # Read here rather than passed in a variable: Ansible templates a 50,000-entry list in seconds.
                try:
                    desired = converge_inventory(os.path.expanduser(inventory), pin=False)["mailboxes"]
                except InventoryProblems as error:
                    result.update(failed=True, msg=str(error), problems=error.problems)
                    return result
            if desired is not None:  # a file, not arguments: no per-element processing on either side
                module_args["mailboxes_file"] = self._send("desired-mailboxes.json", desired)
            if self._task.check_mode:
                result.update(self._execute_module("sonla.mail.mailboxes", module_args=module_args, task_vars=task_vars))
                return result
            with folder.locked():
                result.update(self._converge(folder, module_args, task_vars, policy, desired))
            return result
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)

    def _converge(self, folder: HandoffFolder, module_args: dict, task_vars: dict, policy, desired) -> dict:
        pending = folder.pending()
        module_args.update(_handoffs_pending=pending, _handoffs_delivered=folder.delivered())
        first = self._execute_module("sonla.mail.mailboxes", module_args=module_args, task_vars=task_vars)
        if first.get("failed"):
            return first
        recovered = folder.reconcile(pending, first.get("handoffs_committed", []), first.get("handoffs_used", []))
        if recovered:
            first.setdefault("warnings", []).append(
                f"confirmed {len(recovered)} handoff file(s) left pending by an interrupted run: {', '.join(recovered)}")
        new_addresses = first.pop("needs_initial_passwords", None)
        if not new_addresses:
            return first

        passwords = {address: _password.generate_password(policy) for address in new_addresses}
        names = {mailbox["address"]: mailbox for mailbox in desired or ()}
        handoff_id = folder.write_pending(render_handoff(passwords, names))  # before the commit, durably
        hashes = {address: _password.hash_initial(password) for address, password in passwords.items()}
        module_args.update(initial_password_file=self._send("initial-passwords.json", hashes), _handoff_id=handoff_id,
                           _handoffs_pending=[], _handoffs_delivered={})
        second = self._execute_module("sonla.mail.mailboxes", module_args=module_args, task_vars=task_vars)
        if second.get("failed"):
            # Whether it committed is decided by the database at the next run, never guessed here.
            second["handoff_pending"] = folder.path(handoff_id, PENDING)
            return second
        second["handoff_file"] = folder.confirm(handoff_id)
        return second

    def _send(self, name: str, data) -> str:
        """Write ``data`` as JSON to a file in the remote temporary folder and return its path."""
        remote = self._connection._shell.join_path(self._connection._shell.tmpdir, name)
        self._transfer_data(remote, json.dumps(data))
        self._fixup_perms2((self._connection._shell.tmpdir, remote))
        return remote
