# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plan how to bring the user database to the desired mailbox set, without touching it.

The plan is the single source for check mode, diff mode and the real run: the module builds it,
reports it, and applies it only when not in check mode.

Safety rules (DEVELOPERS.md, R7.2, R8.1):
- a mailbox is removed only when the inventory says ``state: absent`` for it, or with ``exclusive``;
- suspension is a state with a reason and a date, never a deletion: a suspended mailbox stays and
  keeps receiving mail (R8.1);
- a suspension applied by the lifecycle or an operator is lifted by a converge only when the entry
  carries a ``restore`` request dated on or after the suspension (R8.3a); the restored account must
  change its password at the first login (R8.3c);
- an address the lifecycle revoked is never created again: revocation is final (R7.2);
- a restore request lifts a suspension once: a request already carried out is not honoured again (R8.3a);
- an existing mailbox never changes owner or kind, and a person or organization never moves to another
  address: either would hand one person's mail and password to another (R5.3, issue 10);
- more removals than ``max_removals`` fail the whole plan before anything is written.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ansible_collections.sonla.mail.plugins.module_utils._userdb import IDENTITY_COLUMNS, INVENTORY_COLUMNS

DESIRED_STATES = ("active", "suspended", "absent")

# The fields of one desired mailbox (the module's documented suboptions): type, required, allowed values.
MAILBOX_FIELDS = {
    "address": (str, True, None),
    "kind": (str, True, ("person", "organization")),
    "owner_id": (str, True, None),
    "display_name": (str, True, None),
    "organization": (str, True, None),
    "quota_mb": (int, True, None),
    "state": (str, False, DESIRED_STATES),
    "reason": (str, False, None),
    "request": (str, False, None),
    "leave_until": (str, False, None),
    "restore": (dict, False, None),
    "store": (str, False, None),  # issue 15: the mailstore asked for; the planner picks one when it is absent
    "delegates": (list, False, None),  # organizations only: who opens the mailbox with their own login (issue 17)
}
RESTORE_FIELDS = ("request", "date")


class PlanError(Exception):
    """The desired set cannot be converged safely; nothing may be written."""


def validate_desired(entries) -> list[dict]:
    """Check every desired mailbox and fill in the defaults; raise PlanError naming the entry and the rule.

    A plain loop rather than Ansible's per-element argument validation: 50,000 entries take 0.2 s, not 6 s.
    """
    if not isinstance(entries, list):
        raise PlanError(f"mailboxes must be a list, got {type(entries).__name__}")
    desired = []
    for index, entry in enumerate(entries):
        where = f"mailboxes[{index}]"
        if not isinstance(entry, dict):
            raise PlanError(f"{where} must be a mapping, got {type(entry).__name__}")
        unknown = sorted(set(entry) - set(MAILBOX_FIELDS))
        if unknown:
            raise PlanError(f"{where}: unknown field(s) {', '.join(unknown)}")
        where = f"mailbox {entry.get('address', where)}"
        mailbox = {"state": "active", **entry}
        for name, (kind, required, choices) in MAILBOX_FIELDS.items():
            value = mailbox.get(name)
            if value is None:
                if required:
                    raise PlanError(f"{where}: '{name}' is required")
                mailbox[name] = None
                continue
            if not isinstance(value, kind) or isinstance(value, bool):
                raise PlanError(f"{where}: '{name}' must be {kind.__name__}, got {value!r}")
            if choices and value not in choices:
                raise PlanError(f"{where}: '{name}' must be one of {', '.join(choices)}, got {value!r}")
        if mailbox["quota_mb"] <= 0:
            raise PlanError(f"{where}: 'quota_mb' must be positive, got {mailbox['quota_mb']} (R9.2a)")
        if mailbox["state"] == "suspended" and not mailbox["reason"]:
            raise PlanError(f"{where}: state suspended needs a reason (R8.2)")
        restore = mailbox["restore"]
        if restore is not None and (set(restore) != set(RESTORE_FIELDS) or not all(isinstance(v, str) for v in restore.values())):
            raise PlanError(f"{where}: 'restore' needs exactly a 'request' and a 'date' (R8.3a), got {restore!r}")
        delegates = mailbox["delegates"]
        if delegates is not None and (mailbox["kind"] != "organization"
                                      or not all(isinstance(item, str) and "@" in item for item in delegates)):
            raise PlanError(f"{where}: 'delegates' is a list of addresses, and only an organization's mailbox has one")
        desired.append(mailbox)
    return desired


@dataclass
class Plan:
    added: list[dict] = field(default_factory=list)  # desired rows to insert
    updated: list[dict] = field(default_factory=list)  # {address, changes: {column: [old, new]}}
    suspended: list[dict] = field(default_factory=list)  # {address, reason, request}
    restored: list[dict] = field(default_factory=list)  # {address, request[, requested]: the request's date (R8.3b)}
    removed: list[str] = field(default_factory=list)
    removal_requests: dict[str, str | None] = field(default_factory=dict)  # address -> request reference (R11.2)
    unchanged: list[str] = field(default_factory=list)
    held: list[dict] = field(default_factory=list)  # suspensions a converge may not lift
    unmanaged: list[str] = field(default_factory=list)  # in the database, not in the inventory
    refused: list[dict] = field(default_factory=list)  # {address, reason}: requests not carried out (R7.3)
    placement: dict[str, str] = field(default_factory=dict)  # issue 15: new address -> the mailstore that holds it
    moved: list[dict] = field(default_factory=list)  # issue 15: {address, source, target}: moves to record
    # Agency mailboxes by delegation (issue 17): [organization mailbox, delegate] pairs to grant and to withdraw.
    delegated: list[list[str]] = field(default_factory=list)
    undelegated: list[list[str]] = field(default_factory=list)
    delegation_requests: dict[str, str | None] = field(default_factory=dict)  # organization mailbox -> its entry's request
    # Issue 15 with issue 17: delegations whose two mailboxes are on two stores after this plan, which the delegate
    # cannot open (Dovecot's shared namespace reads the organization's mail on the delegate's own store).
    apart: list[dict] = field(default_factory=list)  # {organization, delegate, organization_store, delegate_store}

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.suspended or self.restored or self.removed
                    or self.delegated or self.undelegated or self.moved)

    def summary(self) -> dict:
        return {
            "added": len(self.added),
            "updated": len(self.updated),
            "suspended": len(self.suspended),
            "restored": len(self.restored),
            "removed": len(self.removed),
            "unchanged": len(self.unchanged),
            "held": len(self.held),
            "unmanaged": len(self.unmanaged),
            "refused": len(self.refused),
            "delegated": len(self.delegated),
            "undelegated": len(self.undelegated),
            "moved": len(self.moved),
        }


def _column_values(mailbox: dict) -> dict:
    """The inventory-owned columns of a desired mailbox, named as in the database."""
    return {
        "kind": mailbox["kind"],
        "owner_id": mailbox["owner_id"],
        "display_name": mailbox["display_name"],
        "organization": mailbox["organization"],
        "quota_mb": mailbox["quota_mb"],
        "request_ref": mailbox.get("request"),
    }


def restore_applies(restore: dict | None, suspended_at: str | None) -> bool:
    """R8.3a: a restore request counts for a suspension only when dated on or after its day."""
    if not restore or not suspended_at:
        return False
    return str(restore["date"])[:10] >= suspended_at[:10]


def _owner_problems(desired: list[dict], current: dict[str, dict]) -> list[str]:
    """Every way the desired set would give an existing mailbox to someone else, or move someone's address.

    Both happen when ``addresses.lock.yml`` is lost or edited: the inventory then pins addresses anew,
    and each mailbox, with its mail and password, would go to whoever the new pins name.
    """
    problems = []
    address_of = {(row["kind"], row["owner_id"]): address for address, row in current.items()}
    retired = {mailbox["address"] for mailbox in desired if mailbox["state"] == "absent"}
    for mailbox in desired:
        address = mailbox["address"]
        row = current.get(address)
        if row is not None and any(row[column] != mailbox[column] for column in IDENTITY_COLUMNS):
            problems.append(f"{address} belongs to {row['kind']} '{row['owner_id']}' but the inventory gives it to "
                            f"{mailbox['kind']} '{mailbox['owner_id']}'")
            continue
        if mailbox["state"] == "absent":
            continue
        known = address_of.get((mailbox["kind"], mailbox["owner_id"]))
        if known is not None and known != address and known not in retired:
            problems.append(f"{mailbox['kind']} '{mailbox['owner_id']}' has the mailbox {known} but the inventory gives "
                            f"them {address}")
    return problems


def build_plan(desired: list[dict], current: dict[str, dict], exclusive: bool = False, max_removals: int = 10,
               revoked: dict[str, str] | None = None, restores_done: set | None = None, stores: tuple = (),
               delegations: set[tuple[str, str]] | None = None, exclusive_request: str | None = None,
               moves: dict[str, dict] | None = None, erasing: dict[str, list[str]] | None = None) -> Plan:
    """Compare the whole desired set with the database rows (keyed by address).

    ``revoked`` maps the addresses the lifecycle revoked to the time (``_lifecycle.read_revoked``);
    ``restores_done`` holds the (address, request) pairs of restore requests already carried out.
    ``stores`` names the mailstores of a several-host layout (issue 15; empty on a single host): see
    ``place_mailboxes``, which also takes ``moves``, the moves under way (``_userdb.read_moves``); ``erasing``, the
    deleted mailboxes whose mail a mailstore has not erased yet (``_userdb.read_pending_erasures``), which are not
    created again before it has (R7.2).
    ``delegations``: the (organization mailbox, delegate) pairs in the database
    (``_userdb.read_delegations``). ``exclusive_request``: the request reference that the removals by
    ``exclusive`` are made under, required when there are any: no inventory entry names them (R11.2).
    """
    owner_problems = _owner_problems(desired, current)
    if owner_problems:
        shown = "; ".join(owner_problems[:5]) + (f"; and {len(owner_problems) - 5} more" if len(owner_problems) > 5 else "")
        raise PlanError(
            f"{len(owner_problems)} mailbox(es) would change owner, which hands mail and password to someone else "
            f"(R5.3): {shown}. Nothing was changed. Pinned addresses never move: restore addresses.lock.yml from git "
            "(git checkout -- addresses.lock.yml). To give someone a new address, retire the old mailbox with state: absent "
            "in the same change."
        )
    plan = Plan()
    revoked = revoked or {}
    erasing = erasing or {}
    restores_done = restores_done or set()
    seen: set[str] = set()
    for mailbox in desired:
        address = mailbox["address"]
        if address in seen:
            raise PlanError(f"mailbox {address} appears twice in the desired set")
        seen.add(address)
        state = mailbox["state"]
        if state not in DESIRED_STATES:
            raise PlanError(f"mailbox {address}: state must be one of {', '.join(DESIRED_STATES)}, got {state!r}")
        row = current.get(address)
        if state == "absent":
            if row is not None:
                plan.removed.append(address)
                plan.removal_requests[address] = mailbox.get("request")
            continue
        if row is None:
            if address in revoked:
                plan.refused.append({"address": address, "reason": (
                    f"Hộp thư đã bị thu hồi ngày {revoked[address][:10]}, không thể khôi phục (R7.2) / "
                    f"Revoked on {revoked[address][:10]}; a revoked mailbox cannot be restored (R7.2)")})
                continue
            if address in erasing:
                holders = ", ".join(erasing[address])
                plan.refused.append({"address": address, "reason": (
                    f"Thư của hộp thư cũ cùng địa chỉ trên {holders} chưa được xoá; tạo lại sau khi máy chủ đó xoá xong "
                    f"(R7.2) / The deleted mailbox's mail on {holders} is not erased yet; it is created once that "
                    "mailstore has erased it (R7.2)")})
                continue
            plan.added.append(mailbox)
            continue
        _plan_existing(plan, mailbox, row, restores_done)

    unknown = sorted(address for address in current if address not in seen)
    if exclusive:
        if not desired:
            raise PlanError("exclusive converge with an empty desired set: refusing to remove every mailbox")
        plan.removed.extend(unknown)
        plan.removal_requests.update(dict.fromkeys(unknown, exclusive_request))
    else:
        plan.unmanaged = unknown

    if stores:
        place_mailboxes(plan, desired, current, stores, moves or {})
    if len(plan.removed) > max_removals:
        raise PlanError(
            f"{len(plan.removed)} mailboxes would be removed, more than max_removals={max_removals}; "
            f"nothing was changed (first: {', '.join(plan.removed[:5])})"
        )
    if exclusive and unknown and not exclusive_request:
        raise PlanError(
            f"exclusive would remove {len(unknown)} mailbox(es) that the inventory does not list (first: "
            f"{', '.join(unknown[:5])}); give the request reference they are removed under (exclusive_request, "
            "R11.2); nothing was changed"
        )
    _plan_delegations(plan, desired, current, delegations or set())
    return plan


def place_mailboxes(plan: Plan, desired: list[dict], current: dict[str, dict], stores, moves: dict[str, dict]) -> None:
    """Issue 15: give each new mailbox a mailstore, keep every existing one where it is, and record the moves asked.

    A new mailbox goes to the store its entry names, else to the store holding most of the mailboxes it shares a
    delegation with (an organization's delegates, or the organizations a person is a delegate of: Dovecot's shared
    namespace reads the organization's mail on the delegate's own store, issue 17), else to the store holding the
    least quota (the sum of its mailboxes' quota_mb, counting this run's and the moves'), first in ``stores`` order
    on a tie. The choice is stored in the mailbox's ``host`` and pinned like an address: no converge reshuffles it,
    so a delegation made later may span two stores: such pairs are listed in ``apart``.
    A mailbox made before there were several stores (no host) is pinned to the first store, the old single host,
    where its mail is.
    An existing mailbox whose entry names another store is moved there: the plan records the move (``moved``) and
    the mover (``sonla.mail.mailbox_move``, docs/architecture.md) copies the mail before the host switches. While
    a move is under way (``moves``: address -> its source, target), naming a third store is refused.
    """
    stores = list(stores)
    removed = set(plan.removed)
    load = dict.fromkeys(stores, 0)  # MiB of quota per store
    for address, row in current.items():
        if address in removed:
            continue
        for where, host in (("is on", row.get("host")), ("is moving to", moves.get(address, {}).get("target"))):
            if host is not None and host not in load:
                raise PlanError(f"mailbox {address} {where} mailstore {host!r}, which is not among the mailstores "
                                f"({', '.join(stores)}); nothing was changed. Move its mail before removing a store.")
        host = moves[address]["target"] if address in moves else row.get("host")
        if host in load:
            load[host] += row["quota_mb"]
    for mailbox in desired:
        if mailbox.get("store") is not None and mailbox["store"] not in load:
            raise PlanError(f"mailbox {mailbox['address']}: store {mailbox['store']!r} is not among the mailstores "
                            f"({', '.join(stores)})")
    _plan_moves(plan, desired, current, moves, load)
    partners = _delegation_partners(desired)
    # Where each existing mailbox that shares a delegation is, or will be after this plan: its move's target, else its
    # host, else the store it is pinned to below.
    named = {mailbox["address"]: mailbox.get("store") for mailbox in desired if mailbox["address"] in partners}
    where = {address: moves[address]["target"] if address in moves else current[address].get("host")
             or named.get(address) or stores[0] for address in partners
             if address in current and address not in removed}
    where.update({move["address"]: move["target"] for move in plan.moved if move["address"] in partners})
    # Organizations first, so that their new delegates can follow them.
    for mailbox in sorted(plan.added, key=lambda entry: entry["kind"] != "organization"):
        address = mailbox["address"]
        together = Counter(where[partner] for partner in partners.get(address, ()) if partner in where)
        store = mailbox.get("store") or min(
            stores, key=lambda name: (-together[name], load[name], stores.index(name)))
        load[store] += mailbox["quota_mb"]
        plan.placement[address] = store
        where[address] = store
    plan.apart = [{"organization": mailbox["address"], "delegate": delegate,
                   "organization_store": where[mailbox["address"]], "delegate_store": where[delegate]}
                  for mailbox in desired if mailbox["state"] != "absent" and mailbox["address"] in where
                  for delegate in mailbox.get("delegates") or ()
                  if delegate in where and where[delegate] != where[mailbox["address"]]]

    updates = {update["address"]: update for update in plan.updated}
    pinned = set()
    for mailbox in desired:
        row = current.get(mailbox["address"])
        if row is None or mailbox["state"] == "absent":
            continue
        address, store = mailbox["address"], mailbox.get("store")
        if row.get("host") is None:
            change = {"host": [None, store or stores[0]]}
            if address in updates:
                updates[address]["changes"].update(change)
            else:
                plan.updated.append({"address": address, "changes": change, "request": None})
                pinned.add(address)
    if pinned:
        plan.unchanged = [address for address in plan.unchanged if address not in pinned]


def _delegation_partners(desired: list[dict]) -> dict[str, list[str]]:
    """Address -> the addresses it shares a delegation with in the inventory: an organization's delegates, and the
    organizations' mailboxes a person is a delegate of."""
    partners: dict[str, list[str]] = {}
    for mailbox in desired:
        if mailbox["state"] == "absent":
            continue
        for delegate in mailbox.get("delegates") or ():
            partners.setdefault(mailbox["address"], []).append(delegate)
            partners.setdefault(delegate, []).append(mailbox["address"])
    return partners


def _plan_moves(plan: Plan, desired: list[dict], current: dict[str, dict], moves: dict[str, dict],
                load: dict[str, int]) -> None:
    """The existing mailboxes whose entry names another store than theirs (issue 15), with the load moved."""
    for mailbox in desired:
        address, store = mailbox["address"], mailbox.get("store")
        row = current.get(address)
        if row is None or mailbox["state"] == "absent" or store is None or row.get("host") is None:
            continue
        under_way = moves.get(address)
        if under_way is not None:
            if store != under_way["target"]:
                plan.refused.append({"address": address, "reason": (
                    f"hộp thư đang được chuyển từ {under_way['source']} sang {under_way['target']}; đổi kho sau khi "
                    f"chuyển xong / moving from {under_way['source']} to {under_way['target']} is under way: name "
                    f"another store once it is done (issue 15)")})
            continue
        if store != row["host"]:
            # The operators' decision, not an agency's request (store is not among R11.2's requested fields).
            plan.moved.append({"address": address, "source": row["host"], "target": store})
            load[row["host"]] -= row["quota_mb"]
            load[store] += row["quota_mb"]
    moving = {move["address"] for move in plan.moved}
    plan.unchanged = [address for address in plan.unchanged if address not in moving]


def _plan_delegations(plan: Plan, desired: list[dict], current: dict[str, dict], have: set[tuple[str, str]]) -> None:
    """The whole delegation set converged at once, like the mailboxes: pairs of the inventory between mailboxes
    that exist after this plan are granted, every other pair in the database is withdrawn. A delegate the
    lifecycle revoked is not in the database and gets nothing; the rows of a removed mailbox go with it."""
    removed = set(plan.removed)
    present = ({address for address in current if address not in removed}
               | {mailbox["address"] for mailbox in plan.added})
    wanted = {(mailbox["address"], delegate)
              for mailbox in desired if mailbox["state"] != "absent" and mailbox["address"] in present
              for delegate in mailbox.get("delegates") or () if delegate in present}
    plan.delegated = [list(pair) for pair in sorted(wanted - have)]
    plan.undelegated = [list(pair) for pair in sorted(have - wanted)
                        if pair[0] not in removed and pair[1] not in removed]
    # R11.2: a delegation given or withdrawn is a change of the organization's entry, made under its request.
    requests = {mailbox["address"]: mailbox.get("request") for mailbox in desired}
    plan.delegation_requests = {mailbox: requests.get(mailbox) for mailbox, _ in plan.delegated + plan.undelegated}


def _plan_existing(plan: Plan, mailbox: dict, row: dict, restores_done: set) -> None:
    address = mailbox["address"]
    wanted = _column_values(mailbox)
    changes = {column: [row[column], wanted[column]] for column in INVENTORY_COLUMNS if row[column] != wanted[column]}
    touched = bool(changes)
    if changes:
        plan.updated.append({"address": address, "changes": changes, "request": mailbox.get("request")})

    if mailbox["state"] == "suspended":
        if row["state"] == "active":
            plan.suspended.append({"address": address, "reason": mailbox.get("reason"), "request": mailbox.get("request")})
            touched = True
        elif row["suspended_by"] == "inventory" and row["suspended_reason"] != mailbox.get("reason"):
            change = {"suspended_reason": [row["suspended_reason"], mailbox.get("reason")]}
            plan.updated.append({"address": address, "changes": change, "request": mailbox.get("request")})
            touched = True
    elif row["state"] == "suspended":
        restore = mailbox.get("restore")
        if row["suspended_by"] == "inventory":
            # R8.3c: restore forces a password change
            plan.restored.append({"address": address, "request": mailbox.get("request")})
            touched = True
        elif restore and (address, restore["request"]) in restores_done:
            # R8.3a: a request is carried out once; a later suspension needs a new request.
            plan.held.append({"address": address, "suspended_by": row["suspended_by"], "reason": row["suspended_reason"]})
        elif restore_applies(restore, row["suspended_at"]):
            # R8.3a: the agency's written restore request, newer than the suspension; R8.3c below.
            plan.restored.append({"address": address, "request": restore["request"], "requested": str(restore["date"])[:10]})
            touched = True
        else:
            plan.held.append({"address": address, "suspended_by": row["suspended_by"], "reason": row["suspended_reason"]})
            if restore:
                plan.refused.append({"address": address, "reason": (
                    f"Văn bản khôi phục {restore['request']} ngày {str(restore['date'])[:10]} có trước lần tạm khóa "
                    f"ngày {(row['suspended_at'] or '')[:10]} (R8.3a) / Restore request {restore['request']} "
                    f"is older than the suspension of {(row['suspended_at'] or '')[:10]}")})
    if not touched:
        plan.unchanged.append(address)


def diff_text(plan: Plan) -> dict:
    """A before/after text of the changed mailboxes, for diff mode. No secrets are part of a plan."""
    before: list[str] = []
    after: list[str] = []
    for mailbox in plan.added:
        store = f", on {plan.placement[mailbox['address']]}" if mailbox["address"] in plan.placement else ""
        after.append(f"{mailbox['address']}: {mailbox['display_name']} ({mailbox['organization']}, "
                     f"{mailbox['quota_mb']} MB, {mailbox['state']}{store})")
    for update in plan.updated:
        for column, (old, new) in update["changes"].items():
            before.append(f"{update['address']}: {column}={old}")
            after.append(f"{update['address']}: {column}={new}")
    for suspension in plan.suspended:
        before.append(f"{suspension['address']}: state=active")
        after.append(f"{suspension['address']}: state=suspended ({suspension['reason']})")
    for restored in plan.restored:
        before.append(f"{restored['address']}: state=suspended")
        after.append(f"{restored['address']}: state=active, must change password")
    for address in plan.removed:
        before.append(f"{address}: present")
        after.append(f"{address}: removed with its mail")
    for move in plan.moved:
        before.append(f"{move['address']}: on {move['source']}")
        after.append(f"{move['address']}: moving to {move['target']} (its mail is copied, then it switches)")
    for mailbox, delegate in plan.delegated:
        after.append(f"{mailbox}: delegate {delegate}")
    for mailbox, delegate in plan.undelegated:
        before.append(f"{mailbox}: delegate {delegate}")
    return {"before": "\n".join(before) + ("\n" if before else ""), "after": "\n".join(after) + ("\n" if after else "")}
