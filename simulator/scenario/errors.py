"""Problems in a scenario: :class:`Issue` (where, what was given, what is allowed) and :class:`ScenarioError`.

Every step of loading (reading YAML, ``extends:``, ``--set``, validation, building config objects)
reports what it finds as issues; they are raised together, so an analyst fixes everything in one go.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

PathT = tuple[str | int, ...]
"""A location inside the scenario mapping, e.g. ``("market", "recruiters", 2, "count")``."""

SET_SOURCE = "--set"
"""The ``file`` of an issue found in a ``--set`` override (listed after the files' issues)."""


SAFE_NAME_PATTERN = r"^[A-Za-z0-9_-]+$"
"""Names that become file or folder names (scenario and policy names): no '/', '..', spaces or controls."""
SAFE_NAME_RULE = "may contain only letters, digits, '_' and '-' (pattern ^[A-Za-z0-9_-]+$)"
"""The rule of :data:`SAFE_NAME_PATTERN`, as messages state it."""


def safe_name(name: str) -> bool:
    """Whether ``name`` matches :data:`SAFE_NAME_PATTERN` (safe as a file or folder name)."""
    return re.fullmatch(SAFE_NAME_PATTERN, name) is not None


class _NoValue:
    """The marker for "no value to show" (``None`` is a value: YAML's ``null``)."""

    def __repr__(self) -> str:
        return "<no value>"


NO_VALUE: Any = _NoValue()


@dataclass(frozen=True)
class Issue:
    """One problem in a scenario: where it is, what was given, and what is allowed."""

    file: str | None
    line: int | None
    path: str
    value: Any
    message: str

    def render(self) -> str:
        """``file:line: path = value: message`` (parts that are unknown are left out)."""
        where = self.file or "<scenario>"
        if self.line is not None:
            where += f":{self.line}"
        head = self.path or "(top level)"
        if self.value is not NO_VALUE:
            head += f" = {show_value(self.value)}"
        return printable(f"{where}: {head}: {self.message}")


def _issue_order(issue: Issue) -> tuple[bool, str, int]:
    """Files first (by name and line), ``--set`` overrides last."""
    return (issue.file or "").startswith(SET_SOURCE), issue.file or "", issue.line or 0


class ScenarioError(ValueError):
    """Invalid scenario input; ``issues`` lists every problem found (the CLI exits with code 2)."""

    def __init__(self, issues: Sequence[Issue]) -> None:
        self.issues: list[Issue] = sorted(issues, key=_issue_order)
        super().__init__(self.render())

    def render(self) -> str:
        count = len(self.issues)
        lines = [f"invalid scenario: {count} problem{'s' if count != 1 else ''}"]
        lines += ["  " + issue.render() for issue in self.issues]
        return "\n".join(lines)


def printable(text: str) -> str:
    """``text`` with every control or invisible formatting character as a visible escape (``\\x1b``, ``\\n``).

    Names and values come from files and command lines: printed raw, an ESC sequence or a carriage
    return could rewrite the terminal or fake a line of output.
    """
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() or char == " " else _escape(char) for char in text)


def _escape(char: str) -> str:
    """One non-printable character as Python writes it in a string literal."""
    if unicodedata.category(char) == "Zs":  # a non-breaking or other space: visible enough
        return char
    return repr(char)[1:-1] if char not in "'\"" else char


def show_value(value: Any, limit: int = 60) -> str:
    """A value as the analyst wrote it in YAML, cut to ``limit`` characters, control characters escaped."""
    if isinstance(value, (dict, list)):
        text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    elif isinstance(value, str):
        text = repr(value)
    elif value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = str(value)
    text = printable(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def format_path(path: Iterable[str | int]) -> str:
    """``("market", "members", "count")`` -> ``"market.members.count"``."""
    return ".".join(str(segment) for segment in path)
