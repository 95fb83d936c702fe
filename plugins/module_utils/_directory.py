# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The directory export for the province's other systems (R10.1b; schema in docs/directory.md).

Every converge writes the same directory as JSON and CSV: the mailboxes that exist, their display names
and agencies, and the aliases. It never carries a secret (password hashes, one-time passwords) or a state
that reveals a suspension: a suspended mailbox still receives mail (R8.1) and is listed like any other,
with no state, date or reason. Deleted and revoked mailboxes are gone from the user database, so from
here too.

The files change only when their content does, so a converge that changes nothing rewrites nothing.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import tempfile

from ansible_collections.sonla.mail.plugins.module_utils._userdb import table_columns

SCHEMA_NAME = "sonla.mail.directory"
SCHEMA_VERSION = 1
JSON_NAME = "directory.json"
CSV_NAME = "directory.csv"
CSV_HEADER = ("address", "type", "kind", "display_name", "organization", "organization_name", "agency",
              "agency_name")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(text: str) -> str:
    """A CSV cell a spreadsheet shows as text (OWASP's CSV injection advice)."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def build(connection: sqlite3.Connection, organizations: list[dict], domain: str) -> dict:
    """The directory as a JSON-ready dict, read from the user database and the inventory's organizations."""
    orgs = {org["id"]: org for org in organizations}

    def agency_of(org_id: str) -> str:
        org = orgs.get(org_id) or {}
        return org["parent"] if org.get("kind") == "subunit" and org.get("parent") in orgs else org_id

    places: dict[str, dict] = {}  # one per organization, not per row: 627 instead of 50,000 at the province's size

    def place(org_id: str) -> dict:
        if org_id not in places:
            agency = agency_of(org_id)
            places[org_id] = {"organization": org_id, "organization_name": (orgs.get(org_id) or {}).get("name", ""),
                              "agency": agency, "agency_name": (orgs.get(agency) or {}).get("name", "")}
        return places[org_id]

    # Only these columns are read: nothing else of a row can leak into the export.
    mailboxes = [{"address": row[0], "kind": row[1], "display_name": row[2], **place(row[3])}
                 for row in connection.execute(
                     "SELECT address, kind, display_name, organization FROM mailbox ORDER BY address")]
    aliases = []
    has_aliases = table_columns(connection, "alias")
    if has_aliases:
        aliases = [{"address": row[0], "kind": row[1], "display_name": row[2], **place(row[3])}
                   for row in connection.execute(
                       "SELECT address, kind, display_name, organization FROM alias ORDER BY address")]
    agencies = sorted({mailbox["agency"] for mailbox in mailboxes} | {alias["agency"] for alias in aliases})
    return {
        "schema": SCHEMA_NAME, "version": SCHEMA_VERSION, "domain": domain,
        "agencies": [{"id": agency, "name": (orgs.get(agency) or {}).get("name", ""),
                      "kind": (orgs.get(agency) or {}).get("kind", "")} for agency in agencies],
        "mailboxes": mailboxes, "aliases": aliases,
    }


def render_json(directory: dict) -> str:
    # Compact: Python's encoder in C serves no indented dump, which took 0.4 s of each converge at 50,000 mailboxes
    # against 0.15 s (issue 19). Consumers read JSON, not lines; `python3 -m json.tool` indents it for a person.
    return json.dumps(directory, ensure_ascii=False, sort_keys=True) + "\n"


def render_csv(directory: dict) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180
    writer.writerow(CSV_HEADER)
    for kind, entries in (("mailbox", directory["mailboxes"]), ("alias", directory["aliases"])):
        for entry in entries:
            writer.writerow((entry["address"], kind, entry["kind"], _cell(entry["display_name"]), entry["organization"],
                             _cell(entry["organization_name"]), entry["agency"], _cell(entry["agency_name"])))
    return buffer.getvalue()


def changed_files(folder: str, directory: dict) -> dict[str, str]:
    """The files of ``folder`` whose content differs from ``directory``'s: {path: new content}."""
    wanted = {os.path.join(folder, JSON_NAME): render_json(directory),
              os.path.join(folder, CSV_NAME): render_csv(directory)}
    changed = {}
    for path, text in wanted.items():
        try:
            with open(path, encoding="utf-8", newline="") as stream:
                if stream.read() == text:
                    continue
        except FileNotFoundError:
            pass
        changed[path] = text
    return changed


def write(files: dict[str, str], mode: int = 0o644) -> None:
    """Replace each file atomically: a consumer reads the old file or the new one, never half of one."""
    for path, text in files.items():
        folder = os.path.dirname(path)
        os.makedirs(folder, mode=0o755, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=".directory-")
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
