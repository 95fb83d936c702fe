# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""YAML loading that remembers line numbers, so every problem names its file and line.

Parsing is bounded whatever the input (issue 10): only regular files inside the inventory are opened
(no symlink, pipe or device), a file may hold at most ``MAX_FILE_BYTES``, and anchors, aliases and tags
are refused before anything is built, so no alias bomb or recursive alias can expand.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass

try:  # PyYAML comes with Ansible; only the controller reads inventories
    import yaml
except ImportError:  # pragma: no cover - reported by load()
    yaml = None

try:  # a Rust YAML parser, ~10x faster than libyaml's: the 50,000-person lint depends on it
    import yaml_rs
except ImportError:  # pragma: no cover - the line-tracking parser alone is correct, only slower
    yaml_rs = None

# libyaml composes several times faster than pure Python
_Loader = getattr(yaml, "CSafeLoader", None) or getattr(yaml, "SafeLoader", None)


# An inventory file of the whole province (50,000 people) is about 5 MB; anything far larger is not one.
MAX_FILE_BYTES = 32 * 1024 * 1024
MAX_DEPTH = 32  # nesting of mappings and lists; the inventory needs 4

# Characters that must never reach an operator's terminal or a report as they are: C0 and C1 controls,
# DEL, and the bidirectional and line/paragraph separators that reorder or split a line (issue 10).
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` with every control, bidi or separator character shown as an escape, for reports."""
    return _UNPRINTABLE.sub(lambda match: match.group().encode("unicode_escape").decode("ascii"), text)


def has_unprintable(text: str) -> bool:
    # isprintable() is the fast path (most text): it is False for every character _UNPRINTABLE names.
    return not text.isprintable() and _UNPRINTABLE.search(text) is not None


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    rule: str
    message: str

    def __str__(self) -> str:
        # One problem is one line: a newline in a file name or a value cannot forge another.
        return printable(f"{self.file}:{max(self.line, 1)}: {self.rule}: {self.message}")


class Entry(dict):
    """A YAML mapping that knows the line it starts on and the line of each key (1-based)."""

    __slots__ = ("key_lines", "line")


class Items(list):
    """A YAML sequence that knows the line of each item (1-based), so a bad scalar item names its line."""

    __slots__ = ("item_lines", "line")


def line_of(items, index: int, default: int = 0) -> int:
    """The line of item ``index`` of a sequence read with line numbers, else ``default``."""
    lines = getattr(items, "item_lines", None)
    return lines[index] if lines and index < len(lines) else default


# Plain scalars are read by YAML 1.2's core schema, as the fast parser does, so both paths agree:
# "yes" and "on" stay text, dates stay text.
_NULLS = frozenset(("", "~", "null", "Null", "NULL"))
_TRUE = frozenset(("true", "True", "TRUE"))
_FALSE = frozenset(("false", "False", "FALSE"))
_INT = re.compile(r"^[-+]?(0o[0-7]+|0x[0-9a-fA-F]+|[0-9]+)$")
_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")


def _scalar(node: yaml.ScalarNode):
    value = node.value
    if node.style:  # quoted or block scalars are always text ('' or None means plain)
        return value
    if value in _NULLS:
        return None
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    if _INT.match(value):
        return int(value, 0) if value.lstrip("+-")[:2] in ("0o", "0x") else int(value)
    if _FLOAT.match(value):
        return float(value)
    return value


def _construct(node, path: str, problems: list[Problem]):
    if isinstance(node, yaml.ScalarNode):
        return _scalar(node)
    if isinstance(node, yaml.SequenceNode):
        items = Items(_construct(item, path, problems) for item in node.value)
        items.line = node.start_mark.line + 1
        items.item_lines = [item.start_mark.line + 1 for item in node.value]
        return items
    entry = Entry()
    entry.line = node.start_mark.line + 1
    entry.key_lines = key_lines = {}
    for key_node, value_node in node.value:
        key = _construct(key_node, path, problems)
        line = key_node.start_mark.line + 1
        if not isinstance(key, str):
            problems.append(Problem(path, line, "schema", f"key {key!r} is not text"))
            continue
        if key in entry:
            problems.append(Problem(path, line, "schema", f"duplicate key '{key}'"))
        key_lines[key] = line
        entry[key] = _construct(value_node, path, problems)
    return entry


def read_text(path: str, problems: list[Problem]) -> str | None:
    """The UTF-8 text of a regular file of at most MAX_FILE_BYTES; else a Problem and None.

    A symlink is refused, not followed (it could lead out of the inventory), and its target is never read;
    a pipe or device is refused before it is opened, so nothing can make the loader wait.
    """
    try:
        info = os.lstat(path)
    except OSError as error:
        problems.append(Problem(path, 1, "file", error.strerror or str(error)))
        return None
    if stat.S_ISLNK(info.st_mode):
        problems.append(Problem(path, 1, "file", "is a symbolic link; inventory files must be regular files"))
        return None
    if not stat.S_ISREG(info.st_mode):
        problems.append(Problem(path, 1, "file", "is not a regular file"))
        return None
    if info.st_size > MAX_FILE_BYTES:
        problems.append(Problem(path, 1, "file", f"is {info.st_size} bytes; an inventory file holds at most {MAX_FILE_BYTES}"))
        return None
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(descriptor, "rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        problems.append(Problem(path, 1, "file", error.strerror or str(error)))
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        problems.append(Problem(path, line, "R3.4", f"not UTF-8 text ({error.reason} at byte {error.start})"))
        return None
    if "\x00" in text:
        problems.append(Problem(path, text.count("\n", 0, text.index("\x00")) + 1, "R3.4", "holds a NUL character"))
        return None
    return text


# What could start an anchor, alias or tag, or nest deeper than an inventory does: a deep indent, a tab, or
# block entries nested on one line ("- - - -"). Neither parser may see deep nesting: both recurse, and the
# fast one crashes the process. Only a file that holds one of these is scanned token by token.
_MAY_NEED_SCAN_MARKS = ("&", "*", "!", "\t", "\n" + " " * 48)
_NESTED_ENTRIES = re.compile(r"[-?][ \t]+[-?]")
_FEATURES = {"AnchorToken": "an anchor (&)", "AliasToken": "an alias (*)", "TagToken": "a tag (!)"}
_OPENING = frozenset(("FlowMappingStartToken", "FlowSequenceStartToken", "BlockMappingStartToken", "BlockSequenceStartToken"))
_CLOSING = frozenset(("FlowMappingEndToken", "FlowSequenceEndToken", "BlockEndToken"))


def _refuse_features(text: str, path: str, problems: list[Problem]) -> bool:
    """Add a Problem and return True when the text uses anchors, aliases or tags, or nests too deep.

    None of these has a use in an inventory, and refusing them before composing is what bounds the
    parser: an alias bomb or a recursive alias is never expanded. Scanning tokens is linear in the text.
    """
    if (not any(mark in text for mark in _MAY_NEED_SCAN_MARKS) and not _NESTED_ENTRIES.search(text)
            and text.count("[") + text.count("{") < MAX_DEPTH):
        return False  # the common case, decided in a few fast passes over the text
    depth = 0
    try:
        for token in yaml.scan(text, Loader=_Loader):
            kind = type(token).__name__
            feature = _FEATURES.get(kind)
            if feature:
                problems.append(Problem(path, token.start_mark.line + 1, "yaml",
                                        f"{feature} is not allowed in an inventory file; write the value out"))
                return True
            if kind in _OPENING:
                depth += 1
                if depth > MAX_DEPTH:
                    problems.append(Problem(path, token.start_mark.line + 1, "yaml", f"nested deeper than {MAX_DEPTH} levels"))
                    return True
            elif kind in _CLOSING:
                depth -= 1
    except yaml.YAMLError:
        return False  # compose reports it, with its line
    return False


def load(path: str, problems: list[Problem], fast: bool = False, text: str | None = None):
    """Parse one YAML file (or ``text``, what read_text gave for it); on any error add a Problem and return None.

    ``fast`` parses without line numbers (mappings are plain dicts, dates are ``datetime.date``):
    callers re-read a file with ``fast=False`` only when it has problems to report.
    """
    if yaml is None:
        raise ImportError("the Python library 'PyYAML' is needed to read inventories")
    if text is None:
        text = read_text(path, problems)
    if text is None or _refuse_features(text, path, problems):
        return None
    if fast and yaml_rs is not None:
        try:
            return yaml_rs.loads(text)
        except yaml_rs.YAMLDecodeError:
            pass  # the line-tracking parser below reports it with its line
    try:
        node = yaml.compose(text, Loader=_Loader)
    except RecursionError:
        problems.append(Problem(path, 1, "yaml", f"nested deeper than {MAX_DEPTH} levels"))
        return None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        reason = getattr(error, "problem", None) or str(error)
        context, context_mark = getattr(error, "context", None), getattr(error, "context_mark", None)
        if context and context_mark is not None:
            reason += f" ({context} started on line {context_mark.line + 1})"
        problems.append(Problem(path, line, "yaml", f"invalid YAML: {reason}"))
        return None
    if node is None:
        return None
    return _construct(node, path, problems)
