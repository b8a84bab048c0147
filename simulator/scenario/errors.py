"""Problems in a scenario: :class:`Issue` (where, what was given, what is allowed) and :class:`ScenarioError`.

Every step of loading (reading YAML, ``extends:``, ``--set``, validation, building config objects)
reports what it finds as issues; they are raised together, so an analyst fixes everything in one go.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

PathT = tuple[str | int, ...]
"""A location inside the scenario mapping, e.g. ``("market", "recruiters", 2, "count")``."""

SET_SOURCE = "--set"
"""The ``file`` of an issue found in a ``--set`` override (listed after the files' issues)."""


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
        return f"{where}: {head}: {self.message}"


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


def show_value(value: Any, limit: int = 60) -> str:
    """A value as the analyst wrote it in YAML, cut to ``limit`` characters."""
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
    return text if len(text) <= limit else text[: limit - 3] + "..."


def format_path(path: Iterable[str | int]) -> str:
    """``("market", "members", "count")`` -> ``"market.members.count"``."""
    return ".".join(str(segment) for segment in path)
