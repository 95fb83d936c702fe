# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Load, validate and resolve a mail inventory folder (docs/inventory.md).

Pure Python, no Ansible: the ``mail_inventory`` module, the merge-request lint and the
benchmark all call ``load_inventory`` then ``resolve``. Every problem names its file, line and
rule; nothing is written unless the whole inventory is clean.
"""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile
import time
import unicodedata
from dataclasses import asdict, dataclass, field, fields
from datetime import date

from ansible_collections.sonla.mail.plugins.module_utils import _aliases, _migration, _naming, _password, _regulation
from ansible_collections.sonla.mail.plugins.module_utils._checked_files import CheckedFiles
from ansible_collections.sonla.mail.plugins.module_utils._regulation import POLICY_BOUNDS
from ansible_collections.sonla.mail.plugins.module_utils._yaml_lines import (
    Entry,
    Items,
    Problem,
    has_unprintable,
    line_of,
    load,
    read_text,
)

POLICY_FILE = "policy.yml"
ORGANIZATIONS_FILE = "organizations.yml"
LOCK_FILE = "addresses.lock.yml"

DEFAULT_DOMAIN = "sonla.gov.vn"  # R3.1


ORGANIZATION_KINDS = ("department", "commune", "ward", "subunit")
ORGANIZATION_KEYS = frozenset(("id", "name", "kind", "abbreviation", "parent", "quota_mb", "state", "request",
                               "delegates", "migrate_from"))
PERSON_KEYS = frozenset(("id", "name", "organization", "request", "quota_mb", "state", "reason", "leave_until", "restore",
                         "migrate_from", "store"))
RESTORE_KEYS = frozenset(("request", "date"))
PERSON_STATES = ("active", "suspended", "absent")
ORGANIZATION_STATES = ("active", "absent")

_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
# Issue 15: a mailstore, named as in the Ansible inventory's mailstore group; the converge checks it is one.
_STORE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$")  # at most 64: ids end up in lock keys, file names and logs
_ABBREVIATION = re.compile(r"^[a-z0-9]{1,32}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_LOCK_KEY = re.compile(r"^(org|person):[a-z0-9][a-z0-9._-]{0,63}$")
# A DNS host name (RFC 1123): it lands in nginx, Roundcube, Dovecot and certificate subjects (R3.1).
_HOST_NAME = re.compile(r"^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$")
# Names are letters (any script, with their combining marks), separated by spaces, hyphens, apostrophes
# or dots; organizations may also use digits and the punctuation of official names. Symbols and emoji
# would be dropped silently from the address (R5.2), so they are refused instead.
_NAME_PUNCTUATION = frozenset(" -'\u2019.")  # U+2019: the typographic apostrophe of H\u2019Mông
_ORGANIZATION_PUNCTUATION = _NAME_PUNCTUATION | frozenset(",()/&")
_DELETE = {chars: str.maketrans("", "", "".join(chars)) for chars in (_NAME_PUNCTUATION, _ORGANIZATION_PUNCTUATION)}
MAX_LOCAL_PART = 64  # RFC 5321, 4.5.3.1.1
MAX_TEXT = {"name": 128, "request": 128, "reason": 256}
DEFAULT_MAX_TEXT = 128
PEOPLE_DIR = "people"
_KIND_NAMES = {Items: "a list", list: "a list", str: "text", int: "a number", float: "a number", bool: "true/false"}


@dataclass
class Organization:
    id: str
    name: str
    kind: str
    abbreviation: str | None
    parent: str | None
    quota_mb: int | None
    state: str
    request: str | None
    file: str
    line: int
    local_part: str = ""
    agency_part: str = ""  # what people of this organization put after the dot (R5.2)
    # Agency mailboxes by delegation (issue 17): ids of the people who open this mailbox with their own login.
    delegates: tuple[str, ...] = ()
    delegates_line: int = 0
    migrate_from: dict | None = None  # the old system's account to import (_migration.py, issue 17)


@dataclass
class Person:
    id: str
    name: str
    organization: str
    request: str
    quota_mb: int | None
    state: str
    reason: str | None
    leave_until: str | None
    file: str
    line: int
    restore: dict | None = None  # {request, date}: the agency's written restore request (R8.3a)
    migrate_from: dict | None = None  # the old system's account to import (_migration.py, issue 17)
    store: str | None = None  # issue 15: the mailstore that holds the mailbox; another one moves it there


@dataclass
class Inventory:
    path: str
    domain: str = DEFAULT_DOMAIN
    webmail_host: str = ""
    department: str | None = None
    policy: dict = field(default_factory=dict)
    operators_mailbox_line: int = 1  # where policy.operators_mailbox is written, for resolve()'s check
    organizations: dict[str, Organization] = field(default_factory=dict)
    people: list[Person] = field(default_factory=list)
    pinned: dict[str, str] = field(default_factory=dict)
    aliases: list[_aliases.Alias] = field(default_factory=list)  # aliases.yml (issue 17)
    problems: list[Problem] = field(default_factory=list)

    @property
    def lock_path(self) -> str:
        return os.path.join(self.path, LOCK_FILE)


@dataclass
class Resolution:
    """The outcome of allocation: every key's address, and which of them are new."""

    addresses: dict[str, str]
    allocated: dict[str, str]
    mailboxes: list[dict]
    aliases: list[dict] = field(default_factory=list)


class _Checker:
    """Collects problems for one mapping entry of one file."""

    def __init__(self, problems: list[Problem], path: str, entry, what: str, line: int = 0):
        self.problems = problems
        self.path = path
        # ``line`` for a scalar entry; 0 while a clean file is read without line numbers (see _read)
        self.line = getattr(entry, "line", line)
        self.entry = entry if isinstance(entry, dict) else {}
        self.what = what
        self.ok = True
        if not isinstance(entry, dict):
            self.fail("schema", f"{what} must be a mapping, got {_KIND_NAMES.get(type(entry), type(entry).__name__)}")

    def fail(self, rule: str, message: str, key: str | None = None) -> None:
        """Record a problem at the line of ``key`` when known, else at the entry's line."""
        self.ok = False
        line = getattr(self.entry, "key_lines", {}).get(key, self.line)
        self.problems.append(Problem(self.path, line, rule, f"{self.what}: {message}"))

    def only_keys(self, allowed: frozenset) -> None:
        for key in self.entry:
            if key not in allowed:
                self.fail("schema", f"unknown key '{key}' (allowed: {', '.join(sorted(allowed))})", key)

    def text(self, key: str, required: bool = True, pattern: re.Pattern | None = None, rule: str = "schema"):
        value = self.entry.get(key)
        if value is None or value == "":
            if required:
                self.fail(rule, f"'{key}' is required", key)
            return None
        if isinstance(value, date):  # the fast parser reads unquoted dates as dates
            value = value.isoformat()
        if not isinstance(value, str):
            self.fail("schema", f"'{key}' must be text, got {value!r}", key)
            return None
        value = value.strip()
        if has_unprintable(value):
            self.fail("schema", f"'{key}' holds a control, bidirectional or line-separator character", key)
            return None
        longest = MAX_TEXT.get(key, DEFAULT_MAX_TEXT)
        if len(value) > longest:
            self.fail("schema", f"'{key}' is {len(value)} characters long, more than {longest}", key)
            return None
        if pattern is not None and not pattern.match(value):
            self.fail(rule, f"'{key}' {value!r} must match {pattern.pattern}", key)
            return None
        return value

    def name(self, key: str, punctuation: frozenset, rule: str):
        """A name of letters (and ``punctuation``): nothing the address would silently drop (R5.2)."""
        value = self.text(key, rule=rule)
        if value is None:
            return None
        plain = value.translate(_DELETE[punctuation])
        if plain.isalnum() if "&" in punctuation else plain.isalpha():
            return value  # the fast path: letters (and digits) only, precomposed
        odd = sorted({c for c in plain if not _is_name_character(c, punctuation)})
        if odd:
            allowed = "letters, digits" if "&" in punctuation else "letters"
            allowed += ", spaces and " + " ".join(sorted(punctuation - {" "}))
            self.fail(rule, f"'{key}' {value!r} holds {', '.join(map(repr, odd))}: names are {allowed}", key)
            return None
        return value

    def day(self, key: str, rule: str, required: bool = False):
        """A calendar date ``YYYY-MM-DD`` that exists (no 2027-02-30, month 13 or year 0)."""
        value = self.text(key, required=required, pattern=_DATE, rule=rule)
        if value is None:
            return None
        try:
            date.fromisoformat(value)
        except ValueError:
            self.fail(rule, f"'{key}' {value!r} is not a calendar date", key)
            return None
        return value

    def choice(self, key: str, choices: tuple, default: str) -> str:
        value = self.entry.get(key, default)
        if value not in choices:
            self.fail("schema", f"'{key}' must be one of {', '.join(choices)}, got {value!r}", key)
            return default
        return value

    def integer(self, key: str, low: int, high: int, rule: str, default=None):
        value = self.entry.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.fail(rule, f"'{key}' must be a whole number from {low} to {high}, got {value!r}", key)
            return default
        return value


def naming_rule(kind: str) -> str:
    """The rule that names an organization of this kind: R5.1a departments, R5.1c subunits, R5.1b the rest."""
    return {"department": "R5.1a", "subunit": "R5.1c"}.get(kind, "R5.1b")


def _is_name_character(character: str, punctuation: frozenset) -> bool:
    category = unicodedata.category(character)
    return category[0] in "LM" or (category == "Nd" and "&" in punctuation)


def _read(inventory: Inventory, path: str, check, fast: bool = True, text: str | None = None):
    """Parse ``path`` (or ``text``, read from it already) and run ``check(path, data, problems)`` on it, returning
    its result.

    Clean files are parsed once by the fast parser. A file with problems is parsed again with line
    numbers and checked again, so every problem names its line (the result of that pass is kept).
    """
    problems: list[Problem] = []
    data = load(path, problems, fast=fast, text=text)
    if data is None and not problems:
        problems.append(Problem(path, 1, "schema", "the file is empty; delete it or give it content"))
    result = check(path, data, problems) if data is not None else None
    if problems and fast:
        return _read(inventory, path, check, fast=False, text=text)
    inventory.problems.extend(problems)
    return result


_PERSON_FIELDS = tuple(attribute.name for attribute in fields(Person))


def _people_to_json(people: list[Person]) -> list[list]:
    return [[getattr(person, name) for name in _PERSON_FIELDS] for person in people]


def _people_from_json(saved) -> list[Person] | None:
    if isinstance(saved, list) and all(isinstance(row, list) and len(row) == len(_PERSON_FIELDS) for row in saved):
        return [Person(*row) for row in saved]
    return None


def _pins_from_json(saved) -> dict[str, str] | None:
    return saved if isinstance(saved, dict) and all(isinstance(address, str) for address in saved.values()) else None


def _read_kept(inventory: Inventory, path: str, check, checked: CheckedFiles | None, to_json, from_json):
    """``_read``, or what the same check returned when this very text of ``path`` passed it before, read back from
    ``checked`` (issue 19: a merge request changes one file of a hundred). ``to_json`` and ``from_json`` turn the
    check's result into JSON data and back (None when the data is not one)."""
    if checked is None:
        return _read(inventory, path, check)
    problems: list[Problem] = []
    text = read_text(path, problems)
    if text is None:
        inventory.problems.extend(problems)
        return None
    saved = checked.get(path, text)
    kept = from_json(saved) if saved is not None else None
    if kept is not None:
        return kept
    before = len(inventory.problems)
    result = _read(inventory, path, check, text=text)
    if len(inventory.problems) == before:
        checked.put(path, text, to_json(result))
    return result


def _check_policy(inventory: Inventory):
    def check(path: str, data, problems: list[Problem]) -> None:
        top = _Checker(problems, path, data, "policy file")
        top.only_keys(frozenset(("domain", "webmail_host", "department", "policy")))
        domain = top.text("domain", required=False, rule="R3.1") or DEFAULT_DOMAIN
        if not _HOST_NAME.match(domain):
            top.fail("R3.1", f"domain {domain!r} is not a lowercase domain name", "domain")
        inventory.domain = domain
        webmail_host = top.text("webmail_host", required=False) or f"mail.{domain}"
        if not _HOST_NAME.match(webmail_host) and top.ok:
            top.fail("R3.1", f"webmail_host {webmail_host!r} is not a lowercase DNS host name", "webmail_host")
        inventory.webmail_host = webmail_host
        inventory.department = top.text("department", required=False, pattern=_ID)

        block = _Checker(problems, path, top.entry.get("policy") or Entry(), "policy")
        block.only_keys(frozenset(POLICY_BOUNDS) | {"password", "quota_warning_percent", "password_reminder_days",
                                                    "operators_mailbox", "lists_outside_members", "support_contact"})
        # The regulation's bounds and the rules between keys, written once in _regulation (R6.1b, R8.1, R9).
        for key, rule, message in _regulation.policy_problems(dict(block.entry)):
            if key != "password" and not key.startswith("password."):  # the password block is PasswordPolicy's
                block.fail(rule, message, key)
        try:
            password_policy = _password.PasswordPolicy.from_dict(block.entry.get("password") or {})
        except ValueError as error:
            block.fail("R6.2", str(error), "password")
            password_policy = _password.PasswordPolicy()
        # postmaster@ and abuse@ go to the operators' mailbox (RFC 5321 4.5.1, RFC 2142; R12.5): an address of
        # this domain, which resolve() checks is an active mailbox of the inventory.
        operators = block.text("operators_mailbox", required=False, rule="R12.5")
        if operators is not None and not (operators.endswith("@" + domain)
                                          and _naming.is_valid_local_part(operators[: -len(domain) - 1])):
            block.fail("R12.5", f"'operators_mailbox' {operators!r} must be a mailbox address in {domain}",
                       "operators_mailbox")
        inventory.operators_mailbox_line = getattr(block.entry, "key_lines", {}).get("operators_mailbox", 1)
        # Whether lists may have members outside the domain (issue 17), and who helps staff (R10.1d, R10.2d).
        outside = block.entry.get("lists_outside_members", False)
        if not isinstance(outside, bool):
            block.fail("schema", f"'lists_outside_members' must be true or false, got {outside!r}",
                       "lists_outside_members")
        block.text("support_contact", required=False, rule="R10.1d")
        policy = _regulation.resolve(dict(block.entry) if block.ok else {})
        policy["password_reminder_days"] = sorted(policy["password_reminder_days"], reverse=True)
        policy["password"] = asdict(password_policy)
        policy.setdefault("lists_outside_members", False)
        policy.setdefault("support_contact", "")  # empty: the operators' mailbox (the welcome mail names it)
        inventory.policy = policy

    return check


def _check_organizations(inventory: Inventory):
    def check(path: str, data, problems: list[Problem]) -> None:
        entries = _top_list(path, data, "organizations", problems)
        if entries is None:
            return
        inventory.organizations.clear()
        for index, entry in enumerate(entries):
            organization = _check_organization(problems, path, entry, line_of(entries, index), inventory.domain)
            if organization is None:
                continue
            first = inventory.organizations.get(organization.id)
            if first is not None:
                problems.append(Problem(path, organization.line, "duplicate-id",
                                        f"organization '{organization.id}': id already used at {first.file}:{first.line}"))
                continue
            inventory.organizations[organization.id] = organization
        _name_organizations(inventory, problems)

    return check


def _top_list(path: str, data, key: str, problems: list[Problem]):
    """The list under the file's one top-level ``key``; a Problem for anything else at the top."""
    if not isinstance(data, dict):
        problems.append(Problem(path, getattr(data, "line", 1), "schema", f"expected a mapping with a list under '{key}'"))
        return None
    for other in data:
        if other != key:
            line = getattr(data, "key_lines", {}).get(other, 1)
            problems.append(Problem(path, line, "schema", f"unknown top-level key {other!r} (allowed: {key})"))
    entries = data.get(key)
    if not isinstance(entries, list):
        problems.append(Problem(path, getattr(data, "line", 1), "schema", f"expected a list under '{key}'"))
        return None
    return entries


def _check_organization(problems: list[Problem], path: str, entry, line: int = 0,
                        domain: str = DEFAULT_DOMAIN) -> Organization | None:
    check = _Checker(problems, path, entry, "organization", line)
    org_id = check.text("id", pattern=_ID)
    if org_id:
        check.what = f"organization '{org_id}'"
    check.only_keys(ORGANIZATION_KEYS)
    name = check.name("name", _ORGANIZATION_PUNCTUATION, "schema")
    kind = check.choice("kind", ORGANIZATION_KINDS, "department")
    rule = naming_rule(kind)
    abbreviation = check.text("abbreviation", required=kind in ("department", "subunit"), pattern=_ABBREVIATION, rule=rule)
    parent = check.text("parent", required=kind == "subunit", pattern=_ID, rule="R5.1c")
    if parent and kind != "subunit":
        check.fail("R5.1c", "only a subunit has a 'parent'")
    quota = check.integer("quota_mb", 1, 1_048_576, "R9.2a")
    state = check.choice("state", ORGANIZATION_STATES, "active")
    request = check.text("request", required=False)
    delegates = _check_delegates(check)
    migrate_from = _migration.check_migrate_from(_Checker, check, domain)
    if not (check.ok and org_id and name):
        return None
    return Organization(org_id, name, kind, abbreviation, parent, quota, state, request, path, check.line,
                        delegates=delegates, migrate_from=migrate_from,
                        delegates_line=getattr(check.entry, "key_lines", {}).get("delegates", check.line))


def _check_delegates(check: _Checker) -> tuple[str, ...]:
    """``delegates: [person ids]``: who may use the organization's mailbox with their own login (issue 17)."""
    value = check.entry.get("delegates")
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) and _ID.match(item) for item in value):
        check.fail("schema", f"'delegates' must be a list of person ids matching {_ID.pattern}, got {value!r}",
                   "delegates")
        return ()
    if len(set(value)) != len(value):
        check.fail("schema", "'delegates' names a person twice", "delegates")
        return ()
    return tuple(value)


def _check_delegates_known(inventory: Inventory) -> None:
    """Each delegate is a person of the inventory who has a mailbox: a typo must not silently grant nothing."""
    people = {person.id: person for person in inventory.people}
    for org in inventory.organizations.values():
        for person_id in org.delegates:
            person = people.get(person_id)
            if person is None or person.state == "absent":
                why = "is not in the inventory" if person is None else "is removed (state: absent)"
                inventory.problems.append(Problem(org.file, org.delegates_line, "unknown-delegate",
                                                  f"organization '{org.id}': delegate '{person_id}' {why}"))


def _name_organizations(inventory: Inventory, problems: list[Problem]) -> None:
    """Give each organization its mailbox local part (R5.1a-c) and its people's agency part (R5.2)."""
    for org in inventory.organizations.values():
        if org.kind == "subunit":
            continue
        try:
            org.local_part = _naming.organization_local_part(org.kind, org.name, org.abbreviation, None)
        except ValueError as error:
            problems.append(Problem(org.file, org.line, naming_rule(org.kind), f"organization '{org.id}': {error}"))
        org.agency_part = org.local_part
    for org in inventory.organizations.values():
        if org.kind != "subunit":
            continue
        parent = inventory.organizations.get(org.parent)
        if parent is None or parent.kind == "subunit":
            what = "unknown" if parent is None else "a subunit, which cannot have subunits"
            problems.append(Problem(org.file, org.line, "R5.1c", f"organization '{org.id}': parent '{org.parent}' is {what}"))
            continue
        try:
            org.local_part = _naming.organization_local_part(org.kind, org.name, org.abbreviation, parent.local_part)
        except ValueError as error:
            problems.append(Problem(org.file, org.line, "R5.1c", f"organization '{org.id}': {error}"))
        org.agency_part = parent.agency_part


def _check_people(inventory: Inventory):
    def check(path: str, data, problems: list[Problem]) -> list[Person]:
        entries = _top_list(path, data, "people", problems)
        if entries is None:
            return []
        people = [_check_person(inventory, problems, path, entry, line_of(entries, index))
                  for index, entry in enumerate(entries)]
        return [person for person in people if person is not None]

    return check


def _check_person(inventory: Inventory, problems: list[Problem], path: str, entry, line: int = 0) -> Person | None:
    check = _Checker(problems, path, entry, "person", line)
    person_id = check.text("id", pattern=_ID)
    if person_id:
        check.what = f"person '{person_id}'"
    check.only_keys(PERSON_KEYS)
    name = check.name("name", _NAME_PUNCTUATION, "R5.2")
    org_id = check.text("organization", pattern=_ID)
    request = check.text("request", rule="R7.1c")
    quota = check.integer("quota_mb", 1, 1_048_576, "R9.2a")
    state = check.choice("state", PERSON_STATES, "active")
    reason = check.text("reason", required=state == "suspended", rule="R8.2")
    leave_until = check.day("leave_until", "R8.2a")
    restore = _check_restore(check, state)
    migrate_from = _migration.check_migrate_from(_Checker, check, inventory.domain)
    store = check.text("store", required=False, pattern=_STORE)
    if org_id:
        org = inventory.organizations.get(org_id)
        if org is None:
            check.fail("unknown-organization", f"organization '{org_id}' is not in organizations.yml", "organization")
        elif org.state == "absent" and state != "absent":
            check.fail("unknown-organization", f"organization '{org_id}' is dissolved (state: absent)", "organization")
    if not check.ok:
        return None
    return Person(person_id, name, org_id, request, quota, state, reason, leave_until, path, check.line, restore,
                  migrate_from, store)


def _check_restore(check: _Checker, state: str) -> dict | None:
    """R8.3a: ``restore: {request: "45/QĐ-SKHCN", date: 2026-12-01}``, the agency's written request to lift
    a suspension made by the lifecycle or an operator (the converge honours it when dated on or after it)."""
    entry = check.entry.get("restore")
    if entry is None:
        return None
    inner = _Checker(check.problems, check.path, entry, f"{check.what} restore", check.line)
    inner.only_keys(RESTORE_KEYS)
    request = inner.text("request", rule="R8.3a")
    when = inner.day("date", "R8.3a", required=True)
    if when and when > date.today().isoformat():
        # A request is dated when the agency signs it; a future date would lift every later suspension.
        inner.fail("R8.3a", f"'date' {when} is in the future; a restore request is dated no later than today", "date")
    if state != "active":
        inner.fail("R8.3a", f"a restore request needs state: active, got {state!r}")
    if not inner.ok:
        check.ok = False
        return None
    return {"request": request, "date": when}


def _check_lock(inventory: Inventory):
    def check(path: str, data, problems: list[Problem]) -> dict[str, str]:
        pinned = data.get("addresses") if isinstance(data, dict) else None
        if not isinstance(pinned, dict):
            problems.append(Problem(path, getattr(data, "line", 1), "schema", "expected a mapping under 'addresses'"))
            return {}
        for other in set(data) - {"addresses"}:
            problems.append(Problem(path, data.key_lines.get(other, 1) if hasattr(data, "key_lines") else 1, "schema",
                                    f"unknown top-level key {other!r} (allowed: addresses)"))
        key_lines = getattr(pinned, "key_lines", {})
        owners: dict[str, str] = {}
        suffix = "@" + inventory.domain
        for key, address in pinned.items():
            line = key_lines.get(key, getattr(pinned, "line", 1))
            if not _LOCK_KEY.match(key):
                problems.append(Problem(path, line, "schema", f"lock key {key!r} must be org:<id> or person:<id>"))
            elif (not isinstance(address, str) or not address.endswith(suffix)
                  or not _naming.is_valid_local_part(address[: -len(suffix)]) or len(address) - len(suffix) > MAX_LOCAL_PART):
                problems.append(Problem(path, line, "R5", f"{key}: {address!r} is not a valid address at {inventory.domain}"))
            elif address in owners:
                problems.append(Problem(path, line, "duplicate-address",
                                        f"{address} is pinned to both {owners[address]} and {key}"))
            else:
                owners[address] = key
        return dict(pinned)

    return check


def _legacy_aliases(inventory: Inventory) -> list:
    """The old system's addresses named by ``migrate_from.address``, kept as aliases of the new mailbox (issue 17)."""
    owners = [(f"org:{org.id}", org, org.id) for org in inventory.organizations.values()]
    owners += [(f"person:{person.id}", person, person.organization) for person in inventory.people]
    aliases = []
    for key, owner, organization in owners:
        address = (owner.migrate_from or {}).get("address")
        if address and owner.state != "absent":
            line = _line_of(owner.file, owner) if isinstance(owner, Person) else owner.line  # people are read fast
            aliases.append(_aliases.Alias(address, "role", organization, owner.name, [(key, line)], None, False,
                                          None, owner.file, line, legacy=True))
    return aliases


def migrations(inventory: Inventory, addresses: dict[str, str]) -> list[dict]:
    """The imports from the old system: {key, address, host, port, tls, user} of each entry with ``migrate_from``
    and a mailbox (R7.2: none for a mailbox being deleted)."""
    found = []
    owners = [(f"org:{org.id}", org) for org in inventory.organizations.values()]
    owners += [(f"person:{person.id}", person) for person in inventory.people]
    for key, owner in owners:
        if owner.migrate_from and owner.state != "absent" and key in addresses:
            legacy = {name: owner.migrate_from[name] for name in ("host", "port", "tls", "user")}
            found.append({"key": key, "address": addresses[key], **legacy})
    return found


def _check_aliases(inventory: Inventory):
    def check(path: str, data, problems: list[Problem]) -> list:
        return _aliases.check_aliases(_Checker, inventory, path, data, problems, _top_list)

    return check


def people_lines(path: str) -> dict[str, int]:
    """The line of each person id in a people file, read again with line numbers (for reports only)."""
    data = load(path, [], fast=False)
    entries = data.get("people") if isinstance(data, dict) else None
    return {entry["id"]: entry.line for entry in entries or () if isinstance(entry, dict) and "id" in entry}


def _line_of(path: str, person: Person) -> int:
    return person.line or people_lines(path).get(person.id, 1)


def _people_files(inventory: Inventory) -> list[str]:
    """The regular ``*.yml`` files of ``people/``; a Problem for anything else there (issue 10).

    A ``.yaml`` file, a hidden file or a folder there would otherwise be skipped silently, and a symlink
    could lead out of the inventory.
    """
    folder = os.path.join(inventory.path, PEOPLE_DIR)
    try:
        names = sorted(os.listdir(folder))
    except FileNotFoundError:
        return []
    except OSError as error:
        inventory.problems.append(Problem(folder, 1, "file", error.strerror or str(error)))
        return []
    files = []
    for name in names:
        path = os.path.join(folder, name)
        if name.startswith(".") or not name.endswith(".yml"):
            inventory.problems.append(Problem(path, 1, "file", "people/ holds only <agency>.yml files; rename or remove it"))
        elif stat.S_ISREG(os.lstat(path).st_mode):
            files.append(path)
        else:
            inventory.problems.append(Problem(path, 1, "file", "is not a regular file (a symlink, folder or pipe)"))
    return files


def load_inventory(path: str, cache_dir: str | None = None) -> Inventory:
    """Read and validate every file of the inventory; problems are collected, never raised.

    With ``cache_dir``, a people file or address lock whose exact text passed its checks before, in an inventory of the
    same domain and organization states, is read back from there instead of checked again (_checked_files.py, issue
    19)."""
    inventory = Inventory(path=path.rstrip("/") or path)
    if not os.path.isdir(path):
        inventory.problems.append(Problem(path, 1, "file", "inventory folder not found"))
        return inventory
    policy_path = os.path.join(inventory.path, POLICY_FILE)
    if os.path.exists(policy_path):
        _read(inventory, policy_path, _check_policy(inventory), fast=False)
    else:
        _check_policy(inventory)(policy_path, Entry(), inventory.problems)
    _read(inventory, os.path.join(inventory.path, ORGANIZATIONS_FILE), _check_organizations(inventory), fast=False)
    if not inventory.organizations:
        inventory.problems.append(Problem(os.path.join(inventory.path, ORGANIZATIONS_FILE), 1, "schema", "no organizations"))
    if inventory.department and inventory.department not in inventory.organizations:
        inventory.problems.append(Problem(policy_path, 1, "R7.3",
                                          f"department '{inventory.department}' is not in organizations.yml"))

    seen: dict[str, Person] = {}
    # What the checks of one people file read from the rest of the inventory (_check_person). Not today's date: a
    # restore request dated no later than the day it was checked stays so on every later day (R8.3a).
    checked = CheckedFiles(cache_dir, {
        "domain": inventory.domain, "organizations": {org.id: org.state for org in inventory.organizations.values()},
    }) if cache_dir else None
    for people_path in _people_files(inventory):
        for person in _read_kept(inventory, people_path, _check_people(inventory), checked,
                                 _people_to_json, _people_from_json) or ():
            first = seen.get(person.id)
            if first is not None:
                where = f"{first.file}:{_line_of(first.file, first)}"
                inventory.problems.append(Problem(people_path, _line_of(people_path, person), "duplicate-id",
                                                  f"person '{person.id}': id already used at {where}"))
                continue
            seen[person.id] = person
            inventory.people.append(person)
    _check_delegates_known(inventory)
    aliases_path = os.path.join(inventory.path, _aliases.ALIASES_FILE)
    if os.path.lexists(aliases_path):  # optional (issue 17)
        inventory.aliases = _read(inventory, aliases_path, _check_aliases(inventory), fast=False) or []
    inventory.aliases.extend(_legacy_aliases(inventory))
    if os.path.lexists(inventory.lock_path):
        inventory.pinned = _read_kept(inventory, inventory.lock_path, _check_lock(inventory), checked, dict,
                                      _pins_from_json) or {}
        if not inventory.pinned and not inventory.problems:
            # An emptied lock would pin every address anew and hand mailboxes to other people (R5.3).
            inventory.problems.append(Problem(inventory.lock_path, 1, "R5.3",
                                              "pins no address: restore it from git (git checkout -- addresses.lock.yml); "
                                              "only a brand-new inventory starts without this file"))
    return inventory


def _allocate(inventory: Inventory) -> tuple[dict[str, str], dict[str, str]]:
    """Addresses for every key: the pinned one, or a new one that clashes with nothing ever issued (R5.3)."""
    addresses = dict(inventory.pinned)
    domain = inventory.domain
    taken = {address.split("@", 1)[0] for address in addresses.values()}  # local parts: the lock has one domain
    allocated: dict[str, str] = {}

    def issue(key: str, local_part: str) -> None:
        addresses[key] = allocated[key] = f"{local_part}@{domain}"
        taken.add(local_part)

    # Organizations first (parents before their subunits), so a person never takes an agency's address.
    for org in sorted(inventory.organizations.values(), key=lambda o: (o.kind == "subunit", o.id)):
        key = f"org:{org.id}"
        if key in addresses or org.state == "absent" or not org.local_part:
            continue
        if len(org.local_part) > MAX_LOCAL_PART:
            inventory.problems.append(Problem(
                org.file, org.line, naming_rule(org.kind),
                f"organization '{org.id}': address {org.local_part}@{domain} has more than {MAX_LOCAL_PART} characters "
                "before the @ (RFC 5321); shorten its abbreviation or name"))
            continue
        if org.local_part in taken:
            inventory.problems.append(
                Problem(org.file, org.line, "R5.3", f"organization '{org.id}': address {org.local_part}@{domain} is already "
                        "issued; set a distinct 'abbreviation'")
            )
            continue
        issue(key, org.local_part)
    # A person is never given an alias's address (issue 17); an organization's address is fixed by R5.1, so an
    # alias that takes it is the one refused (_aliases.resolve_aliases).
    taken.update(alias.address.split("@", 1)[0] for alias in inventory.aliases)
    for person in sorted(inventory.people, key=lambda p: p.id):
        key = f"person:{person.id}"
        if key in addresses or person.state == "absent":
            continue
        agency = inventory.organizations[person.organization].agency_part
        try:
            local_part = _naming.first_free_person_local_part(person.name, agency, taken)
            if len(local_part) > MAX_LOCAL_PART:
                raise ValueError(f"address {local_part}@{domain} has more than {MAX_LOCAL_PART} characters before the @ "
                                 "(RFC 5321); shorten the name or the agency's abbreviation")
        except ValueError as error:
            line = _line_of(person.file, person)
            inventory.problems.append(Problem(person.file, line, "R5.2", f"person '{person.id}': {error}"))
            continue
        issue(key, local_part)
    return addresses, allocated


def resolve(inventory: Inventory) -> Resolution:
    """Allocate addresses and build the desired mailbox set the ``mailboxes`` module converges."""
    addresses, allocated = _allocate(inventory)
    default_quota = inventory.policy.get("default_quota_mb", POLICY_BOUNDS["default_quota_mb"].default)
    mailboxes: list[dict] = []
    for org in inventory.organizations.values():
        address = addresses.get(f"org:{org.id}")
        if address is None:
            continue
        delegates = sorted(addresses[f"person:{person_id}"] for person_id in org.delegates
                           if f"person:{person_id}" in addresses)
        mailboxes.append({
            "address": address, "kind": "organization", "owner_id": org.id, "display_name": org.name,
            "organization": org.id, "quota_mb": org.quota_mb or default_quota, "state": org.state,
            "reason": None, "request": org.request, "leave_until": None,
            # Only when present, as "restore" below: older mailboxes modules do not know the key.
            **({"delegates": delegates} if delegates else {}),
        })
    for person in inventory.people:
        address = addresses.get(f"person:{person.id}")
        if address is None:
            continue
        mailboxes.append({
            "address": address, "kind": "person", "owner_id": person.id, "display_name": person.name,
            "organization": person.organization, "quota_mb": person.quota_mb or default_quota,
            "state": person.state, "reason": person.reason, "request": person.request,
            "leave_until": person.leave_until,
            # Only when present: older mailboxes modules do not know the key.
            **({"restore": person.restore} if person.restore else {}),
            **({"store": person.store} if person.store else {}),  # issue 15
        })
    _resolve_operators_mailbox(inventory, addresses, mailboxes)
    aliases = _aliases.resolve_aliases(inventory, addresses, mailboxes)
    return Resolution(addresses, allocated, mailboxes, aliases)


def _resolve_operators_mailbox(inventory: Inventory, addresses: dict[str, str], mailboxes: list[dict]) -> None:
    """policy.operators_mailbox (RFC 5321 4.5.1, RFC 2142; R12.5): the one written, which must be an active
    mailbox of the inventory, or else the department's mailbox (the one that receives the summaries, R7.3)."""
    active = {mailbox["address"] for mailbox in mailboxes if mailbox["state"] == "active"}
    written = inventory.policy.get("operators_mailbox")
    if not written:
        department = addresses.get(f"org:{inventory.department}", "")
        inventory.policy["operators_mailbox"] = department if department in active else ""
        return
    if written not in active:
        inventory.problems.append(Problem(
            os.path.join(inventory.path, POLICY_FILE), inventory.operators_mailbox_line, "R12.5",
            f"policy: 'operators_mailbox' {written!r} is not an active mailbox of this inventory: "
            "postmaster@ and abuse@ would go nowhere"))


# R11.2: what an entry's request reference covers. A change of any of these is a new request of the agency
# (R7.1a, R7.1b), and the lists the agencies keep name each one, so it carries a reference of its own.
REQUESTED_PERSON_FIELDS = ("name", "organization", "quota_mb", "state", "reason")
REQUESTED_ORGANIZATION_FIELDS = ("name", "kind", "abbreviation", "parent", "quota_mb", "state")


def unreferenced_changes(base: Inventory, current: Inventory) -> list[Problem]:
    """R11.2, for a merge request: every entry that changed against ``base`` (the target branch) names a request
    other than the one it had, so a removal (state: absent), a suspension or a change is never recorded under
    the request that created the mailbox. An organization's change needs a request at all (R7.1b)."""
    problems = []
    before = {person.id: person for person in base.people}
    for person in current.people:
        old = before.get(person.id)
        changed = [field for field in REQUESTED_PERSON_FIELDS
                   if old is not None and getattr(old, field) != getattr(person, field)]
        if changed and person.request == old.request:
            problems.append(Problem(person.file, _line_of(person.file, person), "R11.2", (
                f"person '{person.id}': {', '.join(changed)} changed under the same request '{person.request}'; "
                "a change or removal carries the reference of its own request")))
    for org in current.organizations.values():
        old = base.organizations.get(org.id)
        changed = [field for field in REQUESTED_ORGANIZATION_FIELDS
                   if old is not None and getattr(old, field) != getattr(org, field)]
        if changed and (not org.request or org.request == old.request):
            problems.append(Problem(org.file, org.line, "R11.2", (
                f"organization '{org.id}': {', '.join(changed)} changed "
                + (f"under the same request '{org.request}'" if org.request else "without a 'request'")
                + "; a change or removal carries the reference of its own request (R7.1b)")))
    return problems


def render_lock(addresses: dict[str, str]) -> str:
    """The lock file's text: one sorted line per key, so a merge request shows exactly the new lines."""
    lines = [
        "---",
        "# Pinned mailbox addresses (R5.3). Written by the sonla.mail tools when a new person or",
        "# organization appears; review the new lines, commit them, never edit existing ones.",
        "addresses:",
    ]
    lines.extend(f"  {key}: {addresses[key]}" for key in sorted(addresses))
    return "\n".join(lines) + "\n"


def write_lock(inventory: Inventory, addresses: dict[str, str]) -> None:
    """Replace the lock file atomically: a reader sees the old file or the new one, never half of one."""
    descriptor, temporary = tempfile.mkstemp(dir=inventory.path, prefix=f".{LOCK_FILE}.")
    with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
        stream.write(render_lock(addresses))
    os.chmod(temporary, 0o644)
    os.replace(temporary, inventory.lock_path)


RESOLVED_KEYS = ("path", "domain", "department", "organizations", "mailboxes", "aliases")
RESOLVED_MAX_AGE_SECONDS = 86_400


def write_resolved(result: dict, folder: str) -> str:
    """Save what later tasks of the same run read (the desired mailboxes, organizations, domain) to a new
    private file in ``folder`` and return its path: the inventory is resolved once per run and handed on
    by path (STYLE.md). Files older than a day, from earlier runs, are deleted."""
    os.makedirs(folder, mode=0o700, exist_ok=True)
    cutoff = time.time() - RESOLVED_MAX_AGE_SECONDS
    for name in os.listdir(folder):
        old = os.path.join(folder, name)
        if name.endswith(".json") and os.path.getmtime(old) < cutoff:
            os.unlink(old)
    descriptor, path = tempfile.mkstemp(dir=folder, prefix="resolved-", suffix=".json")  # 0600
    with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
        # dumps, not dump: Python's encoder in C serves only a whole-string encode (0.2 s against 0.5 s at 50,000).
        stream.write(json.dumps({key: result[key] for key in RESOLVED_KEYS}, ensure_ascii=False))
    return path


def read_resolved(path: str) -> dict:
    """What ``write_resolved`` saved; ValueError when the file is not one."""
    with open(path, encoding="utf-8") as stream:
        data = json.load(stream)
    if not isinstance(data, dict) or set(data) != set(RESOLVED_KEYS):
        raise ValueError(f"{path} is not a resolved inventory written by sonla.mail.mail_inventory")
    return data


class InventoryProblems(Exception):
    """The inventory has problems; nothing was written. ``problems`` holds every one of them."""

    SHOWN = 20

    def __init__(self, problems: list[Problem]):
        self.problems = [str(problem) for problem in problems]
        shown = "\n".join(self.problems[: self.SHOWN])
        more = f"\n... and {len(self.problems) - self.SHOWN} more" if len(self.problems) > self.SHOWN else ""
        super().__init__(f"{len(self.problems)} problem(s) in the mail inventory; nothing was changed:\n{shown}{more}")


def converge_inventory(path: str, pin: bool = True, check_mode: bool = False, diff: bool = False,
                       cache_dir: str | None = None) -> dict:
    """What the ``mail_inventory`` module and action plugin return: load, validate, pin new addresses.

    Raises InventoryProblems before writing anything when the inventory has any problem.
    """
    inventory = load_inventory(path, cache_dir)
    if inventory.problems:
        raise InventoryProblems(inventory.problems)
    resolution = resolve(inventory)
    if inventory.problems:
        raise InventoryProblems(inventory.problems)
    changed = bool(resolution.allocated) and pin
    result = {
        "changed": changed,
        "path": os.path.abspath(path),
        "domain": inventory.domain,
        "webmail_host": inventory.webmail_host,
        "department": inventory.department,
        "policy": inventory.policy,
        "organizations": [
            {"id": org.id, "name": org.name, "kind": org.kind, "parent": org.parent,
             "address": resolution.addresses.get(f"org:{org.id}")}
            for org in inventory.organizations.values()
        ],
        "mailboxes": resolution.mailboxes,
        "aliases": resolution.aliases,  # expanded to their members (_aliases.py, issue 17)
        "migrations": migrations(inventory, resolution.addresses),  # imports from the old system (_migration.py)
        # The few entries the lifecycle needs (R8.2a, R8.3a): far cheaper to template than the whole set.
        "notified": [mailbox for mailbox in resolution.mailboxes if mailbox.get("leave_until") or mailbox.get("restore")],
        "allocated": resolution.allocated,
    }
    if diff and resolution.allocated:
        result["diff"] = {
            "before_header": inventory.lock_path, "after_header": inventory.lock_path, "before": "",
            "after": "".join(f"{key}: {address}\n" for key, address in sorted(resolution.allocated.items())),
        }
    if changed and not check_mode:
        write_lock(inventory, resolution.addresses)
    return result
