# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What ``sonla.mail.config_files`` does to each file, decided without touching the server (issue 19).

A role's configuration files are written by one task, in one module run on the server, instead of a template
task per file (each one a stat and a file module run even when nothing changes). Every file is still compared
whole, so a hand edit is found and undone as before.
"""

from __future__ import annotations

from dataclasses import dataclass

ADDED, UPDATED, UNCHANGED = "added", "updated", "unchanged"


@dataclass(frozen=True)
class Attributes:
    owner: str
    group: str
    mode: int

    def describe(self) -> str:
        return f"owner {self.owner}, group {self.group}, mode {self.mode:04o}\n"


@dataclass(frozen=True)
class FilePlan:
    dest: str
    status: str  # ADDED, UPDATED or UNCHANGED
    write: bool  # the content differs (or the file is new): write it whole
    diff: dict | None  # Ansible's diff (before/after with headers), None when unchanged


def parse_mode(mode: str | int, dest: str) -> int:
    """An octal mode as roles write it ("0644"); a number is refused, since YAML reads 0644 as 420."""
    if isinstance(mode, int) or not mode.isdigit() or any(digit > "7" for digit in mode) or len(mode) > 4:
        raise ValueError(f"{dest}: mode must be an octal string such as '0644', not {mode!r}")
    return int(mode, 8)


def plan_file(dest: str, want: bytes, want_attributes: Attributes,
              have: bytes | None, have_attributes: Attributes | None) -> FilePlan:
    """Compare one desired file with what the server holds (``have`` None: no such file)."""
    if have is None:
        return FilePlan(dest, ADDED, True, {"before_header": dest, "before": "", "after_header": dest,
                                            "after": _text(want)})
    write = have != want
    if not write and have_attributes == want_attributes:
        return FilePlan(dest, UNCHANGED, False, None)
    diff = {"before_header": dest, "after_header": dest, "before": "", "after": ""}
    if write:
        diff["before"], diff["after"] = _text(have), _text(want)
    if have_attributes != want_attributes:
        diff["before"] = have_attributes.describe() + diff["before"]
        diff["after"] = want_attributes.describe() + diff["after"]
    return FilePlan(dest, UPDATED, write, diff)


def plan_directory(path: str, want_attributes: Attributes, have_attributes: Attributes | None) -> FilePlan:
    """Compare one desired folder with what the server holds (``have_attributes`` None: no such folder)."""
    if have_attributes is None:
        return FilePlan(path, ADDED, True, {"before_header": path, "before": "", "after_header": path,
                                            "after": "folder, " + want_attributes.describe()})
    if have_attributes == want_attributes:
        return FilePlan(path, UNCHANGED, False, None)
    return FilePlan(path, UPDATED, False, {"before_header": path, "before": "folder, " + have_attributes.describe(),
                                           "after_header": path, "after": "folder, " + want_attributes.describe()})


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")
