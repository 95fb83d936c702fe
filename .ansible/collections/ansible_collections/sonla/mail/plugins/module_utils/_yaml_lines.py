# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""YAML loading that remembers line numbers, so every problem names its file and line."""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

try:  # a Rust YAML parser, ~10x faster than libyaml's: the 50,000-person lint depends on it
    import yaml_rs
except ImportError:  # pragma: no cover - the line-tracking parser alone is correct, only slower
    yaml_rs = None

try:  # libyaml composes several times faster than pure Python
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - PyYAML without libyaml
    from yaml import SafeLoader as _Loader


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.rule}: {self.message}"


class Entry(dict):
    """A YAML mapping that knows the line it starts on and the line of each key (1-based)."""

    __slots__ = ("key_lines", "line")


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
        return [_construct(item, path, problems) for item in node.value]
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


def load(path: str, problems: list[Problem], fast: bool = False):
    """Parse one YAML file; on any error add a Problem and return None.

    ``fast`` parses without line numbers (mappings are plain dicts, dates are ``datetime.date``):
    callers re-read a file with ``fast=False`` only when it has problems to report.
    """
    try:
        with open(path, encoding="utf-8") as stream:
            text = stream.read()
    except UnicodeDecodeError as error:
        problems.append(Problem(path, 1, "R3.4", f"not UTF-8 text ({error.reason} at byte {error.start})"))
        return None
    except OSError as error:
        problems.append(Problem(path, 0, "file", error.strerror or str(error)))
        return None
    if fast and yaml_rs is not None:
        try:
            return yaml_rs.loads(text)
        except yaml_rs.YAMLDecodeError:
            pass  # the line-tracking parser below reports it with its line
    try:
        node = yaml.compose(text, Loader=_Loader)
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
