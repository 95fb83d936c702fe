# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plan and apply the aliases and lists of the user database (issue 17), without Ansible.

The desired set comes from ``_aliases.resolve_aliases`` (members already expanded). The plan is the one
source for check mode, diff mode and the real run, as for mailboxes (``_mailbox_plan``):

- every alias in the database that the inventory no longer names is removed (an alias holds no mail);
- a member the lifecycle revoked is dropped (R8.1, R7.2), as is one whose mailbox is deleted on request;
  each drop is reported once, to the agency that owns the list, and recorded so it is not reported again;
- a suspended member stays: its mailbox still receives (R8.1).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

from ansible_collections.sonla.mail.plugins.module_utils._userdb import record_events, table_columns, transaction

ALIAS_COLUMNS = ("kind", "organization", "display_name", "legacy", "request_ref")
DROPPED_EVENT = "list_member_dropped"
DROPPED_REVOKED = "hộp thư đã bị thu hồi / mailbox revoked (R8.1, R7.2)"


@dataclass
class AliasPlan:
    added: list[dict] = field(default_factory=list)
    changed: list[dict] = field(default_factory=list)  # {address, changes: {column: [old, new]}, joined, left}
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    dropped: list[dict] = field(default_factory=list)  # {alias, organization, member, reason}: reported once
    desired: dict[str, dict] = field(default_factory=dict)  # address -> row and final members

    @property
    def changed_anything(self) -> bool:
        return bool(self.added or self.changed or self.removed or self.dropped)

    def summary(self) -> dict:
        return {"added": len(self.added), "changed": len(self.changed), "removed": len(self.removed),
                "unchanged": len(self.unchanged), "dropped": len(self.dropped)}


def _has_table(connection: sqlite3.Connection, name: str) -> bool:
    return bool(table_columns(connection, name))  # either engine (issue 15)


def read_aliases(connection: sqlite3.Connection | None) -> dict[str, dict]:
    """Every alias row with its ``members`` (a set); empty before the schema has aliases (check mode)."""
    if connection is None or not _has_table(connection, "alias"):
        return {}
    aliases = {row["address"]: {**dict(row), "members": set()} for row in connection.execute("SELECT * FROM alias")}
    for row in connection.execute("SELECT alias, member FROM alias_member"):
        if row["alias"] in aliases:
            aliases[row["alias"]]["members"].add(row["member"])
    return aliases


def reported_drops(connection: sqlite3.Connection | None) -> set[tuple[str, str]]:
    """The (alias, member) drops already reported."""
    if connection is None:
        return set()
    rows = connection.execute("SELECT detail, address FROM mailbox_event WHERE action = ?", (DROPPED_EVENT,))
    return {(row["detail"], row["address"]) for row in rows}


def build_plan(desired: list[dict], current: dict[str, dict], revoked: dict | set, reported: set) -> AliasPlan:
    plan = AliasPlan()
    for alias in sorted(desired, key=lambda a: a["address"]):
        address = alias["address"]
        drops = [dict(item) for item in alias.get("dropped") or ()]
        members = set()
        for member in alias["members"]:
            if member in revoked:
                drops.append({"member": member, "reason": DROPPED_REVOKED})
            else:
                members.add(member)
        row = {"kind": alias["kind"], "organization": alias["organization"], "display_name": alias["display_name"],
               "legacy": int(bool(alias.get("legacy"))), "request_ref": alias.get("request")}
        plan.desired[address] = {**row, "members": members}
        plan.dropped.extend({"alias": address, "organization": alias["organization"], **drop}
                            for drop in drops if (address, drop["member"]) not in reported)
        before = current.get(address)
        if before is None:
            plan.added.append({"address": address, **row, "members": sorted(members)})
            continue
        changes = {column: [before[column], row[column]] for column in ALIAS_COLUMNS if before[column] != row[column]}
        joined, left = sorted(members - before["members"]), sorted(before["members"] - members)
        if changes or joined or left:
            plan.changed.append({"address": address, "changes": changes, "joined": joined, "left": left})
        else:
            plan.unchanged.append(address)
    plan.removed = sorted(set(current) - set(plan.desired))
    return plan


def apply_plan(connection: sqlite3.Connection, plan: AliasPlan, now: str) -> None:
    """Write the plan in one transaction, with an audit row per alias touched and per drop reported."""
    events = []
    with transaction(connection):
        for address in plan.removed:
            connection.execute("DELETE FROM alias_member WHERE alias = ?", (address,))
            connection.execute("DELETE FROM alias WHERE address = ?", (address,))
            events.append((now, address, "alias_removed", None, None))
        for alias in plan.added:
            connection.execute(
                "INSERT INTO alias (address, kind, organization, display_name, legacy, request_ref, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (alias["address"], *(alias[column] for column in ALIAS_COLUMNS), now))
            connection.executemany("INSERT INTO alias_member (alias, member) VALUES (?, ?)",
                                   [(alias["address"], member) for member in alias["members"]])
            events.append((now, alias["address"], "alias_added", alias["request_ref"], f"{len(alias['members'])} members"))
        for change in plan.changed:
            address = change["address"]
            desired = plan.desired[address]
            connection.execute(
                f"UPDATE alias SET {', '.join(f'{column} = ?' for column in ALIAS_COLUMNS)}, updated_at = ? WHERE address = ?",
                (*(desired[column] for column in ALIAS_COLUMNS), now, address))
            connection.executemany("DELETE FROM alias_member WHERE alias = ? AND member = ?",
                                   [(address, member) for member in change["left"]])
            connection.executemany("INSERT INTO alias_member (alias, member) VALUES (?, ?)",
                                   [(address, member) for member in change["joined"]])
            events.append((now, address, "alias_updated", desired["request_ref"],
                           f"+{len(change['joined'])} -{len(change['left'])} members"
                           + "".join(f"; {column}: {old} -> {new}" for column, (old, new) in change["changes"].items())))
        events.extend((now, drop["member"], DROPPED_EVENT, None, drop["alias"]) for drop in plan.dropped)
        record_events(connection, events)


def diff_text(plan: AliasPlan) -> dict:
    """Before/after lines of the aliases that change, for ``--diff``."""
    before, after = [], []
    for address in plan.removed:
        before.append(f"{address}\n")
    for alias in plan.added:
        after.append(f"{address_line(alias['address'], alias['members'])}\n")
    for change in plan.changed:
        before.extend(f"{change['address']} <- {member}\n" for member in change["left"])
        after.extend(f"{change['address']} <- {member}\n" for member in change["joined"])
        after.extend(f"{change['address']} {column}: {old} -> {new}\n" for column, (old, new) in change["changes"].items())
    return {"before_header": "aliases", "after_header": "aliases", "before": "".join(before), "after": "".join(after)}


def address_line(address: str, members: list[str]) -> str:
    return f"{address} -> {', '.join(members) or '(no members)'}"
