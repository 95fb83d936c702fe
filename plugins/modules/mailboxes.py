#!/usr/bin/python
# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: mailboxes
short_description: Converge the mail user database to the whole desired set of mailboxes
description:
  - Takes every desired mailbox in one call and brings the SQLite user database that Postfix and Dovecot
    read to that state in one transaction.
  - Plans first, then applies. Check mode reports the plan and writes nothing.
  - A mailbox is removed only when its entry says O(mailboxes[].state=absent), or with O(exclusive=true).
    More removals than O(max_removals) fail the run before anything is written.
  - New mailboxes get a random initial password that must be changed at the first login (R6.1a). The
    action plugin of the same name generates it on the controller, writes it to a handoff file there and
    passes only its hash here.
version_added: 0.1.0
author: Sơn La IT center mail team (!UNKNOWN)
extends_documentation_fragment:
  - sonla.mail.attributes
  - sonla.mail.attributes.DIFF
options:
  database:
    description:
      - Path of the SQLite user database on the mail server, created when missing.
      - Or, for several hosts, a PostgreSQL URI such as C(postgresql:///sonla_mail) (issue 15). The database
        must exist; the module creates or upgrades the schema and grants each tier's group role
        (C(sonla_mail_mx), C(sonla_mail_proxy), C(sonla_mail_mailstore), C(sonla_mail_webmail)) its rights.
        A password, if one is needed, comes from a libpq pgpass file, never from the URI.
    type: path
    required: true
  mailboxes:
    description:
      - The whole desired set, as returned by M(sonla.mail.mail_inventory).
      - The action plugin hands it to the module as O(mailboxes_file), so 50,000 entries cost no argument processing.
      - Exactly one of O(mailboxes), O(inventory), O(resolved) and O(mailboxes_file) is needed.
    type: list
    elements: dict
    suboptions:
      address:
        description: Full mailbox address.
        type: str
        required: true
      kind:
        description: Whose mailbox it is.
        type: str
        choices: [person, organization]
        required: true
      owner_id:
        description: Inventory id of the person or organization.
        type: str
        required: true
      display_name:
        description: Full name in Vietnamese, UTF-8 (R3.4).
        type: str
        required: true
      organization:
        description: Inventory id of the organization.
        type: str
        required: true
      quota_mb:
        description: Storage quota in MiB (R9.2a).
        type: int
        required: true
      state:
        description: V(absent) deletes the mailbox and its mail (R7.2); V(suspended) blocks access but keeps receiving (R8.1).
        type: str
        choices: [active, suspended, absent]
        default: active
      reason:
        description: Why the mailbox is suspended (R8.2). Required with O(mailboxes[].state=suspended).
        type: str
      request:
        description: Reference of the request this entry came from (R7.1c).
        type: str
      leave_until:
        description: End of a notified absence (R8.2a); kept for the lifecycle.
        type: str
      store:
        description:
          - The mailstore that holds a new mailbox, one of O(stores). Without it the least-filled store is chosen.
          - For an existing mailbox, another store than its own records a move there (RV(moved)); M(sonla.mail.mailbox_move)
            copies the mail and then switches the mailbox (issue 15). While a move is under way, another store is refused.
        type: str
      restore:
        description:
          - The agency's written request to lift a suspension made by the lifecycle or an operator (R8.3a).
            It is honoured when dated on or after the suspension; the account must then change its password (R8.3c).
        type: dict
        suboptions:
          request:
            description: Reference of the restore request.
            type: str
            required: true
          date:
            description: Date of the request, C(YYYY-MM-DD).
            type: str
            required: true
      delegates:
        description:
          - Organizations only. The people's addresses that open this mailbox with their own login and may send as it
            (agency mailboxes by delegation, docs/delegation.md). The whole set is converged; pairs not listed are withdrawn.
        type: list
        elements: str
  inventory:
    description:
      - The inventory's C(mail/) folder on the controller. The action plugin reads and resolves it there, as
        M(sonla.mail.mail_inventory) does (without writing the lock file), and sends the desired set as O(mailboxes_file).
      - The way to converge large inventories from a playbook, since no 50,000-entry variable is templated.
    type: path
  resolved:
    description:
      - The RV(sonla.mail.mail_inventory#module:resolved_file) of M(sonla.mail.mail_inventory) earlier in the run. The
        action plugin reads the desired set from it, so the inventory is not loaded and resolved again.
    type: path
  mailboxes_file:
    description:
      - A JSON file on the mail server holding the list O(mailboxes) describes. Set by the action plugin,
        which writes it in its temporary folder and removes it after the run.
    type: path
  stores:
    description:
      - The mailstores of a layout of several hosts (issue 15), such as the inventory group C(mailstore). Empty on a single host.
      - Each new mailbox is given one, balanced by quota, and keeps it (the C(host) column the Dovecot proxy routes by).
        A mailbox made before there were several stores is pinned to the first one.
    type: list
    elements: str
    default: []
  exclusive:
    description: Also remove mailboxes that are in the database but not in O(mailboxes).
    type: bool
    default: false
  exclusive_request:
    description:
      - The request reference that the removals by O(exclusive) are made under, recorded with each removal (R11.2).
      - Required when O(exclusive) removes anything, since no entry of O(mailboxes) names those mailboxes; without it the
        module fails before writing anything.
    type: str
  max_removals:
    description: Fail before writing anything when more mailboxes than this would be removed.
    type: int
    default: 10
  mail_root:
    description:
      - Root of the mail storage, laid out as C(<mail_root>/<domain>/<local part>).
      - When set, the mail of a removed mailbox is deleted too (R7.2).
    type: path
  initial_password_file:
    description:
      - A JSON file on the mail server mapping each new address to the hash of its initial password.
        The action plugin writes it in its temporary folder; the module removes it once read.
      - A file rather than a parameter, so the hashes never pass through module arguments or output.
      - When a new mailbox has no hash, the module changes nothing and returns RV(needs_initial_passwords).
    type: path
  reissue:
    description:
      - Addresses whose one-time password is issued again, in a new handoff file, because the last one was lost.
      - Only accounts never used (no login yet, still on an issued password) are reissued; the others are
        returned in RV(refused) (R6.1a).
    type: list
    elements: str
    default: []
  now:
    description: The current time as C(YYYY-MM-DD HH:MM:SS) UTC; for tests. Defaults to the clock.
    type: str
  _handoff_id:
    description:
      - Internal, set by the action plugin. The id of the pending handoff file that holds the new passwords; it is
        recorded with each account in the transaction that creates it.
    type: str
  _handoffs_pending:
    description: Internal, set by the action plugin. Ids of pending handoff files whose commit is to be checked.
    type: list
    elements: str
    default: []
  _handoffs_delivered:
    description: Internal, set by the action plugin. The addresses of each delivered handoff file, by id.
    type: dict
    default: {}
  handoff_dir:
    description:
      - Folder on the controller for the handoff file of new accounts' initial passwords (mode 0600).
      - Handled by the action plugin; keep it outside the repository.
    type: path
    default: ~/.local/share/sonla-mail/handoff
  password_policy:
    description: The policy's C(password) block (R6.2), which generated initial passwords satisfy. Handled by the action plugin.
    type: dict
    default: {}
notes:
  - Suspensions applied by the lifecycle or an operator are kept even when the inventory says V(active),
    unless the entry carries a O(mailboxes[].restore) request dated on or after the suspension (R8.3a);
    kept ones are returned in RV(held).
  - An address revoked by the lifecycle is never created again (R7.2); it is returned in RV(refused).
  - An existing mailbox never changes owner or kind, and a person never moves to another address unless the old
    mailbox is retired with V(absent) in the same run; otherwise the whole run fails before writing anything (R5.3).
  - A restore request is carried out once; a later suspension needs a new request (R8.3a).
  - The mail of a removed mailbox is moved aside before its row is deleted and deleted after the commit, so rows and
    mail go together; what an interrupted run leaves aside is deleted by the next one (R7.2).
seealso:
  - module: sonla.mail.mail_inventory
"""

EXAMPLES = r"""
- name: Converge every mailbox of the inventory
  sonla.mail.mailboxes:
    database: /var/lib/sonla-mail/users.sqlite
    inventory: "{{ inventory_dir }}/mail"
    mail_root: /var/vmail
    max_removals: 5

- name: Converge an explicit set
  sonla.mail.mailboxes:
    database: /var/lib/sonla-mail/users.sqlite
    mailboxes:
      - {address: skhcn@sonla.gov.vn, kind: organization, owner_id: skhcn, display_name: Sở Khoa học và Công nghệ,
         organization: skhcn, quota_mb: 4096}
"""

RETURN = r"""
added:
  description: Addresses created.
  returned: always
  type: list
  elements: str
  sample: [annv.skhcn@sonla.gov.vn]
updated:
  description: Mailboxes whose fields changed, with old and new values.
  returned: always
  type: list
  elements: dict
  sample: [{address: annv.skhcn@sonla.gov.vn, changes: {quota_mb: [2048, 4096]}}]
suspended:
  description: Mailboxes suspended by this run, with the reason.
  returned: always
  type: list
  elements: dict
  sample: [{address: annv.skhcn@sonla.gov.vn, reason: Nghỉ việc, request: 12/QĐ-SKHCN}]
restored:
  description: Addresses whose inventory suspension was lifted; they must change their password (R8.3c).
  returned: always
  type: list
  elements: str
  sample: [annv.skhcn@sonla.gov.vn]
removed:
  description: Addresses deleted with their mail.
  returned: always
  type: list
  elements: str
  sample: []
unchanged:
  description: Addresses already as desired.
  returned: always
  type: list
  elements: str
  sample: [skhcn@sonla.gov.vn]
held:
  description: Suspensions by the lifecycle or an operator that the inventory does not lift.
  returned: always
  type: list
  elements: dict
  sample: [{address: annv.skhcn@sonla.gov.vn, suspended_by: lifecycle, reason: 90 days without login}]
unmanaged:
  description: Addresses in the database that the inventory does not mention; reported, never removed without O(exclusive).
  returned: always
  type: list
  elements: str
  sample: []
refused:
  description:
    - Requests not carried out, with the reason (R7.3), such as a revoked address (R7.2), a restore request
      older than the suspension (R8.3a), or on several mailstores an address deleted earlier whose mail a store has
      not erased yet (R7.2, issue 15; created at the first converge after that store has).
  returned: always
  type: list
  elements: dict
  sample: [{address: annv.skhcn@sonla.gov.vn, reason: "Revoked on 2027-03-31; a revoked mailbox cannot be restored (R7.2)"}]
summary:
  description: How many mailboxes fall in each group.
  returned: always
  type: dict
  sample: {added: 1, updated: 0, suspended: 0, restored: 0, removed: 0, unchanged: 212, held: 0, unmanaged: 0, reissued: 0}
needs_initial_passwords:
  description:
    - The addresses that need an initial password hash (new accounts, reissues), all of them when one has none;
      nothing was written. Consumed by the action plugin.
  returned: when a new mailbox has no hash and not in check mode
  type: list
  elements: str
  sample: [annv.skhcn@sonla.gov.vn]
handoff_file:
  description: Controller path of the CSV file (mode 0600) with the initial passwords of the new mailboxes.
  returned: when mailboxes were added or passwords reissued
  type: str
  sample: /root/.local/share/sonla-mail/handoff/mail1-20261128T170000123456Z-9f3a1c2b.csv
handoff_pending:
  description: Controller path of a handoff file whose commit failed or is unknown; the next run confirms or deletes it.
  returned: when the second module call failed
  type: str
  sample: /root/.local/share/sonla-mail/handoff/mail1-20261128T170000123456Z-9f3a1c2b.csv.pending
delegated:
  description: The pairs of organization mailbox and delegate granted (docs/delegation.md).
  returned: always
  type: list
  elements: list
  sample: [[skhcn@sonla.gov.vn, annv.skhcn@sonla.gov.vn]]
undelegated:
  description: The pairs of organization mailbox and delegate withdrawn.
  returned: always
  type: list
  elements: list
  sample: []
moved:
  description:
    - Moves to another mailstore recorded by this run (issue 15), for M(sonla.mail.mailbox_move) to carry out.
  returned: always
  type: list
  elements: dict
  sample: [{address: binhtt.skhcn@sonla.gov.vn, source: store1, target: store2}]
apart:
  description:
    - Delegations whose organization's mailbox and delegate are on two mailstores after this run (issue 15). The
      delegate cannot open that mailbox until an entry's O(mailboxes[].store) puts both on one store
      (docs/architecture.md). New mailboxes are placed together; an existing one is never moved unasked. The
      module also warns of them.
  returned: always
  type: list
  elements: dict
  sample: [{organization: skhcn@sonla.gov.vn, delegate: annv.skhcn@sonla.gov.vn, organization_store: store1,
            delegate_store: store2}]
reissued:
  description: Addresses that got a new one-time password.
  returned: always
  type: list
  elements: str
  sample: []
handoffs_committed:
  description:
    - The pending handoff files whose accounts were committed, each id with the addresses that got one of its passwords.
      Consumed by the action plugin.
  returned: always
  type: dict
  sample: {}
handoffs_used:
  description:
    - Ids of the delivered handoff files whose accounts have all chosen their own password.
    - Consumed by the action plugin, which deletes those files.
  returned: always
  type: list
  elements: str
  sample: []
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sonla.mail.plugins.module_utils import _userdb
from ansible_collections.sonla.mail.plugins.module_utils._lifecycle import read_revoked
from ansible_collections.sonla.mail.plugins.module_utils._mailbox_plan import (
    PlanError,
    build_plan,
    diff_text,
    validate_desired,
)


def share_with_group(database: str) -> None:
    """Postfix, Dovecot and webmail read the database through its group; WAL readers also write the shm file.

    SQLite gives the -wal and -shm files the database file's mode, so 0660 here covers them too.
    """
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(database + suffix):
            os.chmod(database + suffix, 0o660)


def open_database(module, database: str, postgres: bool):
    """The user database, its schema brought up to date unless in check mode, which changes nothing."""
    if postgres:
        connection = _userdb.connect(database, upgrade=not module.check_mode)
        return connection if _userdb.table_columns(connection, "mailbox") else None  # check mode, no schema yet
    os.makedirs(os.path.dirname(database) or ".", exist_ok=True)
    connection = _userdb.connect(database, upgrade=not module.check_mode)
    if not module.check_mode:  # check mode changes nothing, not even a mode
        share_with_group(database)
    return connection


def read_json_file(path: str | None, default, remove: bool = False):
    """A JSON file, such as those the action plugin leaves in its temporary folder."""
    if not path:
        return default
    try:
        with open(path, encoding="utf-8") as stream:
            return json.load(stream)
    finally:
        if remove:
            os.unlink(path)


def plan_reissue(connection, requested: list[str], current: dict) -> tuple[list[str], list[dict]]:
    """The accounts of ``requested`` that may get a new one-time password, and the refusals (R6.1a)."""
    unused = _userdb.never_used(connection, set(requested)) if connection is not None and requested else set()
    eligible, refused = [], []
    for address in dict.fromkeys(requested):
        if address in unused:
            eligible.append(address)
        else:
            why = "không có hộp thư này / no such mailbox" if address not in current else (
                "tài khoản đã được sử dụng / the account was already used: its owner logged in or chose a password")
            refused.append({"address": address, "reason": f"reissue: {why} (R6.1a)"})
    return eligible, refused


def handoff_status(connection, pending: list[str], delivered: dict) -> dict:
    """Which pending handoff files were committed, and which delivered ones every account has used."""
    if connection is None:
        return {"handoffs_committed": {}, "handoffs_used": []}
    listed = {address for addresses in delivered.values() for address in addresses}
    waiting = _userdb.never_used(connection, listed) if listed else set()
    return {
        "handoffs_committed": _userdb.handoffs_committed(connection, pending) if pending else {},
        "handoffs_used": sorted(key for key, addresses in delivered.items() if not waiting.intersection(addresses)),
    }


def remove_rows_and_mail(module, connection, plan, hashes, now, handoff_id, reissue) -> None:
    """Commit the plan; the removed mailboxes' mail goes with their rows or stays with them (R7.2).

    Mail is first moved aside, then the rows are deleted in one transaction: on failure the mail is
    put back, on success it is deleted; what a crash leaves aside is deleted by the next run.
    """
    mail_root = module.params["mail_root"]
    aside = [moved for moved in (_userdb.set_aside_mail(mail_root, address, now) for address in plan.removed)
             if moved] if mail_root else []
    try:
        _userdb.apply_plan(connection, plan, hashes, now, handoff_id=handoff_id, reissue=reissue)
    except Exception:
        for moved_to, original in aside:
            os.rename(moved_to, original)
        raise
    purge_set_aside(module)


def purge_set_aside(module) -> None:
    """Delete the mail of removed mailboxes set aside by this run or a crashed one (R7.2); warn on failure."""
    if module.params["mail_root"]:
        try:
            _userdb.purge_set_aside(module.params["mail_root"])
        except OSError as error:
            module.warn(f"removed mailboxes' mail is set aside but not yet deleted; the next run retries: {error}")


def main():
    module = AnsibleModule(
        argument_spec={
            # A path, or a PostgreSQL URI: "path" only expands a leading ~ and $VARIABLES, which a URI has neither of.
            "database": {"type": "path", "required": True},
            # Entries are checked by validate_desired (the suboptions above): Ansible's per-element
            # validation costs seconds at 50,000 mailboxes.
            "mailboxes": {"type": "list", "elements": "dict"},
            "mailboxes_file": {"type": "path"},
            "stores": {"type": "list", "elements": "str", "default": []},
            "exclusive": {"type": "bool", "default": False},
            "exclusive_request": {"type": "str"},
            "max_removals": {"type": "int", "default": 10},
            "mail_root": {"type": "path"},
            "initial_password_file": {"type": "path", "no_log": False},  # a path, not a secret
            "reissue": {"type": "list", "elements": "str", "default": []},
            "now": {"type": "str"},
            "_handoff_id": {"type": "str"},
            "_handoffs_pending": {"type": "list", "elements": "str", "default": []},
            "_handoffs_delivered": {"type": "dict", "default": {}},
            # Handled by the action plugin, which replaces them with mailboxes_file and the hashes file.
            "inventory": {"type": "path"},
            "resolved": {"type": "path"},
            "handoff_dir": {"type": "path", "default": "~/.local/share/sonla-mail/handoff"},
            "password_policy": {"type": "dict", "default": {}, "no_log": False},  # rules, not a secret
        },
        mutually_exclusive=[("mailboxes", "mailboxes_file", "inventory", "resolved")],
        required_one_of=[("mailboxes", "mailboxes_file", "inventory", "resolved")],
        supports_check_mode=True,
    )
    params = module.params
    try:
        desired = validate_desired(params["mailboxes"] if params["mailboxes"] is not None
                                   else read_json_file(params["mailboxes_file"], []))
    except PlanError as error:
        module.fail_json(msg=str(error))

    database = params["database"]
    postgres = _userdb.is_postgres(database)
    connection = None
    current, revoked, restores_done, delegations, moves, erasing = {}, {}, set(), set(), {}, {}
    if postgres or not (module.check_mode and not os.path.exists(database)):
        try:
            connection = open_database(module, database, postgres)
        except _userdb.DatabaseError as error:
            module.fail_json(msg=f"cannot open the user database: {error}")
    if connection is not None:
        current = _userdb.read_mailboxes(connection)
        revoked = read_revoked(connection)  # R7.2: never created again
        restores_done = _userdb.restores_done(connection)  # R8.3a: each request applies once
        delegations = _userdb.read_delegations(connection)  # issue 17: agency mailboxes by delegation
        moves = _userdb.read_moves(connection)  # issue 15: moves to another mailstore under way
        erasing = _userdb.read_pending_erasures(connection)  # issue 15, R7.2: old mail not erased yet

    try:
        plan = build_plan(desired, current, params["exclusive"], params["max_removals"], revoked=revoked,
                          restores_done=restores_done, stores=params["stores"], delegations=delegations,
                          exclusive_request=params["exclusive_request"], moves=moves, erasing=erasing)
    except PlanError as error:
        module.fail_json(msg=str(error))
    reissue, reissue_refused = plan_reissue(connection, params["reissue"], current)

    result = {
        "changed": plan.changed or bool(reissue),
        "added": [mailbox["address"] for mailbox in plan.added],
        "updated": plan.updated,
        "suspended": plan.suspended,
        "restored": [item["address"] for item in plan.restored],
        "removed": plan.removed,
        "unchanged": plan.unchanged,
        "held": plan.held,
        "unmanaged": plan.unmanaged,
        "refused": plan.refused + reissue_refused,
        "reissued": reissue,
        "delegated": plan.delegated,
        "undelegated": plan.undelegated,
        "moved": plan.moved,
        "apart": plan.apart,
        "summary": {**plan.summary(), "reissued": len(reissue)},
        **handoff_status(connection, params["_handoffs_pending"], params["_handoffs_delivered"]),
    }
    if module._diff:
        result["diff"] = diff_text(plan)
    if plan.apart:
        pairs = "; ".join(f"{pair['delegate']} ({pair['delegate_store']}) of {pair['organization']} "
                          f"({pair['organization_store']})" for pair in plan.apart[:5])
        module.warn(f"{len(plan.apart)} delegate(s) on another mailstore than the organization's mailbox cannot open "
                    f"it until one entry's store: puts both on one store (docs/architecture.md): {pairs}"
                    + ("; ..." if len(plan.apart) > 5 else ""))
    if module.check_mode or not result["changed"]:
        if connection is not None and not module.check_mode:
            purge_set_aside(module)
        module.exit_json(**result)

    hashes = read_json_file(params["initial_password_file"], {}, remove=True)  # hashes do not linger on disk
    needed = result["added"] + reissue
    if any(address not in hashes for address in needed):
        # All of them, not only those missing: the run that creates them takes all their passwords from one handoff.
        module.exit_json(changed=False, needs_initial_passwords=needed, summary=result["summary"],
                         handoffs_committed=result["handoffs_committed"], handoffs_used=result["handoffs_used"])

    try:
        remove_rows_and_mail(module, connection, plan, hashes, params["now"] or _userdb.utc_now(), params["_handoff_id"], reissue)
    except (OSError, *_userdb.DatabaseError) as error:
        module.fail_json(msg=f"nothing was changed: {error}")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
