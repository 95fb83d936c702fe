# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The provincial address book of the webmail (issue 17, docs/webmail.md): every active mailbox, by agency.

Built from the user database into a small SQLite file of its own that the webmail reads (the sonla_directory
Roundcube plugin): names, addresses and agencies only, so PHP never opens the file that holds password hashes.
Each name also has a folded form (lower case, no diacritics, đ as d), so "nguyen van an" finds "Nguyễn Văn An";
the plugin folds what is typed the same way (same steps, PHP's intl Normalizer).
"""

from __future__ import annotations

import functools
import os
import sqlite3
import tempfile
import unicodedata

from ansible_collections.sonla.mail.plugins.module_utils import _userdb

DIRECTORY_SCHEMA = """
CREATE TABLE agency (
    id   TEXT PRIMARY KEY,                  -- inventory id of the organization
    name TEXT NOT NULL                      -- its display name, UTF-8 (R3.4)
);
CREATE TABLE entry (
    address TEXT PRIMARY KEY,
    name    TEXT NOT NULL,
    folded  TEXT NOT NULL,                  -- fold(name) || ' ' || address, what a search matches
    agency  TEXT NOT NULL REFERENCES agency (id),
    kind    TEXT NOT NULL                   -- person or organization
);
CREATE INDEX entry_agency ON entry (agency, name);
"""


def fold(text: str) -> str:
    """Lower case without diacritics: "Nguyễn Văn Đức" -> "nguyen van duc"; spaces collapsed.

    Word by word: the province's 50,000 names share a few thousand words, each folded once (issue 19: the address
    book of every converge spent 0.4 s here). Nothing a word's folding does reaches past its spaces."""
    return " ".join(folded for folded in map(_fold_word, text.split()) if folded)


@functools.lru_cache(maxsize=65536)
def _fold_word(word: str) -> str:
    decomposed = unicodedata.normalize("NFD", word.replace("đ", "d").replace("Đ", "D"))
    return "".join(character for character in decomposed if unicodedata.category(character) != "Mn").lower()


def read_entries(userdb: sqlite3.Connection) -> tuple[list[tuple[str, str]], list[tuple[str, str, str, str, str]]]:
    """The agencies (organizations that have a mailbox) and every active mailbox, from the user database."""
    agencies = userdb.execute(
        "SELECT owner_id, display_name FROM mailbox WHERE kind = 'organization' ORDER BY owner_id").fetchall()
    known = {agency for agency, _ in agencies}
    rows = userdb.execute(
        "SELECT address, display_name, organization, kind FROM mailbox WHERE state = 'active' ORDER BY address")
    entries = [(address, name, f"{fold(name)} {address}", agency, kind)
               for address, name, agency, kind in rows if agency in known]
    return [tuple(agency) for agency in agencies], entries


def write_directory(userdb_path: str, path: str) -> bool:
    """Rebuild the address book file from the user database (a SQLite file, or on several hosts the shared PostgreSQL
    one, read as the webmail's role); replace it only when its content changed.

    Returns whether it changed. The new file is written aside and renamed: the webmail reads the old file or
    the new one, never half of one.
    """
    if _userdb.is_postgres(userdb_path):
        userdb = _userdb.connect(userdb_path, upgrade=False)
    else:
        userdb = sqlite3.connect(f"file:{userdb_path}?mode=ro", uri=True)
    try:
        agencies, entries = read_entries(userdb)
    finally:
        userdb.close()
    if os.path.exists(path) and _content(path) == (agencies, entries):
        return False
    descriptor, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".directory-", suffix=".sqlite")
    os.close(descriptor)
    try:
        connection = sqlite3.connect(temporary)
        with connection:
            connection.executescript(DIRECTORY_SCHEMA)
            connection.executemany("INSERT INTO agency (id, name) VALUES (?, ?)", agencies)
            connection.executemany("INSERT INTO entry (address, name, folded, agency, kind) VALUES (?, ?, ?, ?, ?)",
                                   entries)
        connection.close()
        os.chmod(temporary, 0o644)  # names and addresses the whole province may read; no secrets
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    return True


def _content(path: str):
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        agencies = [tuple(row) for row in connection.execute("SELECT id, name FROM agency ORDER BY id")]
        entries = [tuple(row) for row in connection.execute(
            "SELECT address, name, folded, agency, kind FROM entry ORDER BY address")]
        return agencies, entries
    except sqlite3.DatabaseError:
        return None
    finally:
        connection.close()
