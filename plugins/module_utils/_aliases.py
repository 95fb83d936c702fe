# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Aliases and lists of a mail inventory (``aliases.yml``, docs/inventory.md): read, check, expand.

Pure Python, no Ansible: ``_inventory.load_inventory`` reads the file and ``_inventory.resolve`` expands
every entry to the addresses that receive its mail. Every refusal names its file, line and rule:
an alias that collides with a mailbox, a pinned or a reserved address; a loop; an unknown member.

What each entry resolves to (the ``aliases`` of the resolved inventory, converged by the ``directory``
module from ``_alias_plan``):

    {"address", "kind", "organization", "display_name", "request", "members": [addresses],
     "dropped": [{"member", "reason"}]}

``members`` are final addresses (mailboxes of the domain, or outside addresses where the policy allows
them): a list that names another list receives that list's members, once each. A suspended member still
receives, as its mailbox does (R8.1); a member whose mailbox is deleted on request (``state: absent``) is
dropped and named in ``dropped``, and the agency's notice says so. Members revoked by the lifecycle are
dropped on the server, where the revocations are known (``_alias_plan``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ansible_collections.sonla.mail.plugins.module_utils import _naming
from ansible_collections.sonla.mail.plugins.module_utils._yaml_lines import Problem, line_of

ALIASES_FILE = "aliases.yml"
ALIAS_KEYS = frozenset(("address", "name", "kind", "organization", "members", "members_of", "include_subunits",
                        "request", "legacy"))
ALIAS_KINDS = ("role", "list")
# The filter role answers these itself (RFC 2142, RFC 5321 4.5.1; docs/filter.md): never an inventory alias.
RESERVED_LOCAL_PARTS = frozenset(("postmaster", "abuse", "mailer-daemon"))
# An outside address, lowercase: enough to refuse a typo; the receiving server judges the rest.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_OUTSIDE_ADDRESS = re.compile(rf"^[a-z0-9._%+-]{{1,64}}@{_LABEL}(?:\.{_LABEL})+$")
_MEMBER_KEY = re.compile(r"^(person|org):([a-z0-9][a-z0-9._-]{0,63})$")
DROPPED_ABSENT = "hộp thư đã xóa theo đề nghị / mailbox deleted on request (R7.2)"


@dataclass
class Alias:
    address: str  # full address
    kind: str
    organization: str
    display_name: str
    members: list[tuple[str, int]]  # (as written, line)
    members_of: str | None
    include_subunits: bool
    request: str | None
    file: str
    line: int
    legacy: bool = False  # an address of the old system, kept for its correspondents (issue 17): R5 does not apply
    key_lines: dict = field(default_factory=dict)


def check_aliases(checker_class, inventory, path: str, data, problems: list[Problem], top_list) -> list[Alias]:
    """The entries of ``aliases.yml``: each checked on its own (schema, R5 local part, the owner exists)."""
    entries = top_list(path, data, "aliases", problems)
    if entries is None:
        return []
    suffix = "@" + inventory.domain
    aliases = []
    for index, entry in enumerate(entries):
        check = checker_class(problems, path, entry, "alias", line_of(entries, index))
        check.only_keys(ALIAS_KEYS)
        written = check.text("address", rule="R5")
        legacy = check.entry.get("legacy", False)
        if not isinstance(legacy, bool):
            check.fail("schema", f"'legacy' must be true or false, got {legacy!r}", "legacy")
        local_part = written[: -len(suffix)] if written and written.endswith(suffix) else written
        if written is not None:
            check.what = f"alias '{written}'"
            if "@" in local_part:
                check.fail("R3.1", f"'address' {written!r} must be a local part or an address in {inventory.domain}",
                           "address")
            elif not legacy and not _naming.is_valid_local_part(local_part):
                check.fail("R5", f"'address' {written!r}: lowercase a-z and 0-9 parts joined by single dots",
                           "address")
            elif legacy and not _OUTSIDE_ADDRESS.match(f"{local_part}{suffix}"):
                check.fail("schema", f"'address' {written!r} is not a valid address", "address")
            elif local_part in RESERVED_LOCAL_PARTS:
                check.fail("reserved-address", f"{local_part}@ is answered by the filter role (RFC 2142)", "address")
        kind = check.choice("kind", ALIAS_KINDS, "list")
        organization = check.text("organization", pattern=re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$"))
        if organization and organization not in inventory.organizations:
            check.fail("unknown-organization", f"organization '{organization}' is not in organizations.yml", "organization")
        name = check.text("name", required=False)
        request = check.text("request", required=False, rule="R7.1c")
        members_of = check.text("members_of", required=False)
        if members_of and members_of not in inventory.organizations:
            check.fail("unknown-member", f"'members_of' organization '{members_of}' is not in organizations.yml",
                       "members_of")
        include_subunits = check.entry.get("include_subunits", False)
        if not isinstance(include_subunits, bool):
            check.fail("schema", f"'include_subunits' must be true or false, got {include_subunits!r}", "include_subunits")
        elif include_subunits and not members_of:
            check.fail("schema", "'include_subunits' needs 'members_of'", "include_subunits")
        members = _check_member_list(check)
        if not members and not members_of and check.ok:
            check.fail("schema", "needs 'members', 'members_of' or both")
        if not check.ok:
            continue
        owner = inventory.organizations[organization]
        aliases.append(Alias(f"{local_part}{suffix}", kind, organization, name or owner.name, members, members_of,
                             include_subunits, request, path, check.line, legacy,
                             dict(getattr(check.entry, "key_lines", {}))))
    return aliases


def _check_member_list(check) -> list[tuple[str, int]]:
    written = check.entry.get("members")
    if written is None:
        return []
    if not isinstance(written, list) or not written:
        check.fail("schema", "'members' must be a non-empty list", "members")
        return []
    members = []
    for index, member in enumerate(written):
        line = line_of(written, index, check.line)
        if not isinstance(member, str) or not member.strip():
            check.problems.append(Problem(check.path, line, "schema", f"{check.what}: member {member!r} must be text"))
            check.ok = False
            continue
        members.append((member.strip().lower(), line))
    return members


class _Expander:
    """Expands every alias to its final addresses, recording problems with the alias's file and line."""

    def __init__(self, inventory, addresses: dict[str, str], mailboxes: list[dict]):
        self.inventory = inventory
        self.addresses = addresses
        self.domain_suffix = "@" + inventory.domain
        self.state = {mailbox["address"]: mailbox["state"] for mailbox in mailboxes}
        self.by_address = {alias.address: alias for alias in inventory.aliases}
        self.allow_outside = bool(inventory.policy.get("lists_outside_members", False))
        self.expanded: dict[str, tuple[list[str], list[dict]]] = {}

    def problem(self, alias: Alias, line: int, rule: str, message: str) -> None:
        self.inventory.problems.append(Problem(alias.file, line, rule, f"alias '{alias.address}': {message}"))

    def mailbox_member(self, alias: Alias, address: str, members: list[str], dropped: list[dict]) -> None:
        if self.state.get(address) == "absent":
            dropped.append({"member": address, "reason": DROPPED_ABSENT})
        elif address not in members:
            members.append(address)

    def expand(self, alias: Alias, trail: tuple[str, ...] = ()) -> tuple[list[str], list[dict]] | None:
        """(members, dropped) of ``alias``; None after recording a loop."""
        if alias.address in self.expanded:
            return self.expanded[alias.address]
        if alias.address in trail:
            loop = " -> ".join((*trail[trail.index(alias.address):], alias.address))
            first = self.by_address[trail[0]]
            self.problem(first, first.key_lines.get("members", first.line), "alias-loop", f"a loop: {loop}")
            return None
        members: list[str] = []
        dropped: list[dict] = []
        for written, line in alias.members:
            if not self.member(alias, written, line, members, dropped, (*trail, alias.address)):
                return None
        if alias.members_of:
            for address in self.computed(alias):
                self.mailbox_member(alias, address, members, dropped)
        self.expanded[alias.address] = (members, dropped)
        return members, dropped

    def member(self, alias: Alias, written: str, line: int, members: list[str], dropped: list[dict], trail) -> bool:
        """Add one written member; False only for a loop (already recorded)."""
        key = _MEMBER_KEY.match(written)
        if key:
            address = self.addresses.get(written)
            if address is None:
                what = "person" if key.group(1) == "person" else "organization"
                self.problem(alias, line, "unknown-member", f"{what} '{key.group(2)}' has no mailbox in this inventory")
            else:
                self.mailbox_member(alias, address, members, dropped)
            return True
        if written.endswith(self.domain_suffix):
            nested = self.by_address.get(written)
            if nested is not None:
                result = self.expand(nested, trail)
                if result is None:
                    return False
                for address in result[0]:
                    if address not in members:
                        members.append(address)
                dropped.extend(item for item in result[1] if item not in dropped)
            elif written in self.state:
                self.mailbox_member(alias, written, members, dropped)
            else:
                self.problem(alias, line, "unknown-member", f"{written} is no mailbox or alias of this inventory")
            return True
        if not _OUTSIDE_ADDRESS.match(written):
            self.problem(alias, line, "unknown-member",
                         f"member {written!r} is not person:<id>, org:<id>, or an address")
        elif not self.allow_outside:
            self.problem(alias, line, "policy",
                         f"outside address {written} refused: the policy does not allow outside members "
                         "(policy.lists_outside_members)")
        elif written not in members:
            members.append(written)
        return True

    def computed(self, alias: Alias) -> list[str]:
        """Every person of ``members_of`` (and of its sub-units, when asked), by id: the order is stable."""
        units = {alias.members_of}
        if alias.include_subunits:
            units |= {org.id for org in self.inventory.organizations.values() if org.parent == alias.members_of}
        return [self.addresses[f"person:{person.id}"] for person in sorted(self.inventory.people, key=lambda p: p.id)
                if person.organization in units and f"person:{person.id}" in self.addresses]


def resolve_aliases(inventory, addresses: dict[str, str], mailboxes: list[dict]) -> list[dict]:
    """Check the aliases against the whole inventory and expand them (see the module docstring)."""
    owners = {address: key for key, address in addresses.items()}  # every mailbox, and every address ever pinned
    seen: dict[str, Alias] = {}
    clean = True
    for alias in inventory.aliases:
        line = alias.key_lines.get("address", alias.line)
        if alias.address in owners:
            inventory.problems.append(Problem(alias.file, line, "R5.3",
                                              f"alias '{alias.address}': collides with the mailbox or pinned "
                                              f"address of {owners[alias.address]}"))
            clean = False
        elif alias.address in seen:
            first = seen[alias.address]
            inventory.problems.append(Problem(alias.file, line, "duplicate-address",
                                              f"alias '{alias.address}': already defined at {first.file}:{first.line}"))
            clean = False
        seen.setdefault(alias.address, alias)
    if not clean:
        return []
    expander = _Expander(inventory, addresses, mailboxes)
    resolved = []
    for alias in inventory.aliases:
        result = expander.expand(alias)
        if result is None:
            continue
        resolved.append({
            "address": alias.address, "kind": alias.kind, "organization": alias.organization,
            "display_name": alias.display_name, "request": alias.request, "legacy": alias.legacy,
            "members": sorted(result[0]), "dropped": result[1],
        })
    return resolved
