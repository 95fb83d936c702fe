# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the checks of an inventory file returned, kept on the controller by the file's exact content (issue 19).

Checking the 50,000 people of the province's inventory against the naming and request rules (R5.2, R7.1c, R8.2,
R8.3a, R9.2a) costs most of a second on every run, though a merge request changes one or two of the hundred
files. A file whose checks found no problem is read back from here instead of checked again, as long as all of
these are the same as when it was checked:

* the file's bytes and path;
* the code of the checks: every ``module_utils`` file of this collection, and the fast YAML parser's version;
* the ``context`` the caller gives: what the checks of one file read from the rest of the inventory (the domain,
  each organization's state).

Anything else (another byte, a dissolved organization, an upgraded collection) is another key, so the file is
checked again. Checks across files (duplicate ids, address allocation, aliases) are never kept: they run every time
on what the files gave. A file with a problem is never kept either, so every problem is found and reported anew.
Entries are JSON, in a private folder (0700, files 0600); an unreadable or damaged entry is checked again, and an
unusable folder only costs the time it would have saved. Entries unused for ``MAX_AGE_SECONDS`` are deleted.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from contextlib import suppress
from functools import lru_cache

try:
    import yaml_rs
except ImportError:  # the fast parser is optional (_yaml_lines.py)
    yaml_rs = None

MAX_AGE_SECONDS = 30 * 86_400
_TOUCH_AFTER_SECONDS = 86_400  # a used entry's age is refreshed at most daily: one utime per file per day


@lru_cache(maxsize=1)
def code_digest() -> str:
    """A digest of the code that checks: this collection's module_utils and the fast parser's version."""
    digest = hashlib.sha256(f"yaml_rs {getattr(yaml_rs, '__version__', None)}\n".encode())
    folder = os.path.dirname(os.path.abspath(__file__))
    for name in sorted(os.listdir(folder)):
        if name.endswith(".py"):
            with open(os.path.join(folder, name), "rb") as stream:
                digest.update(name.encode() + b"\0" + stream.read() + b"\0")
    return digest.hexdigest()


class CheckedFiles:
    """Clean check results by file content, in ``folder``; ``context`` is what else the checks read (JSON data)."""

    def __init__(self, folder: str, context):
        self.folder = folder
        self._prefix = hashlib.sha256(json.dumps([code_digest(), context], sort_keys=True).encode()).digest()
        self.usable = self._prepare()

    def _prepare(self) -> bool:
        try:
            os.makedirs(self.folder, mode=0o700, exist_ok=True)
            os.chmod(self.folder, 0o700)  # also when it already existed with a looser mode
            cutoff = time.time() - MAX_AGE_SECONDS
            with os.scandir(self.folder) as entries:
                for entry in entries:
                    if entry.stat().st_mtime < cutoff:  # unused entries, and the temporary file of a crashed run
                        os.unlink(entry.path)
        except OSError:
            return False
        return True

    def _entry(self, path: str, text: str) -> str:
        key = hashlib.sha256(self._prefix + path.encode() + b"\0" + text.encode()).hexdigest()
        return os.path.join(self.folder, key + ".json")

    def get(self, path: str, text: str):
        """What the checks of ``path`` returned when it held this ``text``, else None."""
        if not self.usable:
            return None
        entry = self._entry(path, text)
        try:
            with open(entry, encoding="utf-8") as stream:
                saved = json.load(stream)
            if time.time() - os.stat(entry).st_mtime > _TOUCH_AFTER_SECONDS:
                os.utime(entry)
        except (OSError, ValueError):
            return None
        return saved

    def put(self, path: str, text: str, result) -> None:
        """Keep what the checks of ``path`` holding ``text`` returned (JSON data), when they found no problem."""
        if not self.usable:
            return
        temporary = None
        try:
            descriptor, temporary = tempfile.mkstemp(dir=self.folder, prefix=".", suffix=".tmp")  # 0600
            with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
                stream.write(json.dumps(result, ensure_ascii=False))
            os.replace(temporary, self._entry(path, text))
        except OSError:  # only the next run's time is lost
            if temporary is not None:
                with suppress(OSError):
                    os.unlink(temporary)
