# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of ``sonla.mail.mailboxes``: initial passwords never leave the controller in clear,
and no account ever exists without its handoff (R6.1a, issue 10).

When the module plans new mailboxes (or one-time passwords to reissue) without a password for each, it
returns their addresses instead of writing; this plugin then generates policy-conformant random passwords
here (R6.1a, R6.2) and, in this order:

1. writes them durably to a *pending* handoff file on the controller (mode 0600, a unique name, fsynced);
2. sends only their hashes to the server and runs the module again, which records the handoff's id with
   each account in the same transaction that creates it;
3. keeps in the pending file only the accounts created with its passwords, and renames it to its final
   ``.csv`` name.

The accounts to create are usually known beforehand: the addresses of the inventory that the host did not
hold after this controller's last converge (a list of addresses kept beside the handoff files). Their
passwords are then made before the first module run, which creates them at once: one run instead of two
(issue 19). A guess that missed an account costs the second run as above; a guessed account the module did
not create is left out of the file at step 3.

If the write fails, nothing is committed. If anything dies between 2 and 3, the next run asks the
database whether the pending file's id was committed and with which accounts: then the file keeps those
and is confirmed, else it is deleted (its passwords were never used) and the accounts are planned again.
A lock per host and handoff folder keeps two runs from one controller apart. Handoff files whose accounts
have all chosen their own password are deleted: the one-time passwords in them are spent.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import re
import secrets
from contextlib import contextmanager, suppress
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


def foreseen_accounts(desired, known: set[str] | None) -> list[str]:
    """The accounts a converge will likely create: the inventory's addresses the host did not hold at the last one.

    None known (no earlier converge from this controller, or entries not yet validated): no guess."""
    if known is None or not all(isinstance(mailbox, dict) and isinstance(mailbox.get("address"), str)
                                for mailbox in desired or ()):
        return []
    return [mailbox["address"] for mailbox in desired or ()
            if mailbox.get("state") != "absent" and mailbox["address"] not in known]


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

    def confirm(self, handoff_id: str, issued) -> str | None:
        """Keep the pending file's rows of the ``issued`` addresses only, and make it final; None when none is left.

        Only the accounts the database holds with these passwords may be in a handoff: a row for an account that
        was not created, or that already had a password, would hand out a password that opens nothing."""
        pending = self.path(handoff_id, PENDING)
        with open(pending, encoding="utf-8", newline="") as stream:
            rows = [row for row in csv.reader(stream) if row]
        kept = [row for row in rows[1:] if row[0] in issued]
        if not kept:
            self.discard(handoff_id)
            return None
        if len(kept) < len(rows) - 1:
            self._replace(pending, [rows[0], *kept])
        os.rename(pending, self.path(handoff_id))
        self._sync()
        return self.path(handoff_id)

    def _replace(self, path: str, rows: list[list[str]]) -> None:
        """Rewrite ``path`` durably: a crash leaves the old file or the new one, and no copy of either."""
        temporary = path + ".tmp"
        with suppress(FileNotFoundError):
            os.unlink(temporary)  # left by a run that died here; the retry writes it again
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as stream:
            csv.writer(stream).writerows(rows)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)

    def known(self) -> set[str] | None:
        """The addresses the host held after this controller's last converge; None when it has not converged it."""
        try:
            with open(os.path.join(self.folder, f"{self.prefix}addresses.json"), encoding="utf-8") as stream:
                return set(json.load(stream))
        except (OSError, ValueError):
            return None

    def remember(self, addresses: list[str]) -> None:
        """Record the addresses the host now holds, for the next run's guess of the accounts to create."""
        path = os.path.join(self.folder, f"{self.prefix}addresses.json")
        descriptor = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            stream.write(json.dumps(sorted(addresses)))
        os.replace(path + ".tmp", path)

    def discard(self, handoff_id: str, suffix: str = PENDING) -> None:
        try:
            os.unlink(self.path(handoff_id, suffix))
        except FileNotFoundError:
            pass

    def reconcile(self, pending: list[str], committed: dict[str, list[str]], used: list[str]) -> list[str]:
        """Confirm the pending files whose passwords were committed, drop the others and the spent ones; return the
        paths of the confirmed files that kept an account."""
        confirmed = [self.confirm(handoff_id, set(committed[handoff_id])) for handoff_id in pending
                     if handoff_id in committed]
        for handoff_id in pending:
            if handoff_id not in committed:
                self.discard(handoff_id)  # never committed: nobody has or needs these passwords
        for handoff_id in used:
            self.discard(handoff_id, FINAL)
        return [path for path in confirmed if path]

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
        foreseen = foreseen_accounts(desired, folder.known())
        handoff_id = self._hand_over(folder, module_args, policy, foreseen, desired) if foreseen else None
        result = self._execute_module("sonla.mail.mailboxes", module_args=module_args, task_vars=task_vars)
        if result.get("failed"):
            return self._left_pending(result, folder, handoff_id)
        recovered = folder.reconcile(pending, result.get("handoffs_committed", {}), result.get("handoffs_used", []))
        if recovered:
            result.setdefault("warnings", []).append(
                f"confirmed {len(recovered)} handoff file(s) left pending by an interrupted run: {', '.join(recovered)}")
        new_addresses = result.pop("needs_initial_passwords", None)
        if new_addresses:  # the module wrote nothing: the foreseen passwords, if any, were never used
            if handoff_id:
                folder.discard(handoff_id)
            handoff_id = self._hand_over(folder, module_args, policy, new_addresses, desired)
            module_args.update(_handoffs_pending=[], _handoffs_delivered={})
            result = self._execute_module("sonla.mail.mailboxes", module_args=module_args, task_vars=task_vars)
            if result.get("failed"):
                return self._left_pending(result, folder, handoff_id)
        if handoff_id:
            handoff_file = folder.confirm(handoff_id, set(result.get("added", [])) | set(result.get("reissued", [])))
            if handoff_file:
                result["handoff_file"] = handoff_file
        folder.remember([mailbox["address"] for mailbox in desired or () if mailbox.get("state") != "absent"])
        return result

    def _hand_over(self, folder: HandoffFolder, module_args: dict, policy, addresses, desired) -> str:
        """Make the accounts' passwords, write them to a pending handoff file and send the module their hashes."""
        passwords = {address: _password.generate_password(policy) for address in addresses}
        names = {mailbox["address"]: mailbox for mailbox in desired or () if mailbox["address"] in passwords}
        handoff_id = folder.write_pending(render_handoff(passwords, names))  # before the commit, durably
        hashes = {address: _password.hash_initial(password) for address, password in passwords.items()}
        module_args.update(initial_password_file=self._send("initial-passwords.json", hashes), _handoff_id=handoff_id)
        return handoff_id

    @staticmethod
    def _left_pending(result: dict, folder: HandoffFolder, handoff_id: str | None) -> dict:
        # Whether it committed is decided by the database at the next run, never guessed here.
        if handoff_id:
            result["handoff_pending"] = folder.path(handoff_id, PENDING)
        return result

    def _send(self, name: str, data) -> str:
        """Write ``data`` as JSON to a file in the remote temporary folder and return its path."""
        remote = self._connection._shell.join_path(self._connection._shell.tmpdir, name)
        self._transfer_data(remote, json.dumps(data))
        self._fixup_perms2((self._connection._shell.tmpdir, remote))
        return remote
