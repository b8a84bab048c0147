"""Where a value of a scenario came from, and how to name its path for an analyst.

While a scenario is read, every value's path is mapped to a :class:`Loc` (file and line, or the
``--set`` argument that set it).  An issue found later, at any depth, is reported at the line of
the nearest located ancestor, with list items named by their ``name`` rather than their index.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from simulator.scenario.errors import NO_VALUE, Issue, PathT


@dataclass(frozen=True)
class Loc:
    """Where a value came from: a file and 1-based line, or a ``--set`` argument (line None)."""

    file: str
    line: int | None


def item_name(item: Any) -> str | None:
    """The ``name`` of a list item as text (None if it has none)."""
    if not isinstance(item, dict) or item.get("name") is None:
        return None
    return str(item["name"])


def list_index(items: list[Any], segment: str) -> int | None:
    """The position ``segment`` names in ``items``: the item whose ``name`` is exactly ``segment``, else the
    index 0..len-1 it spells (digits only: no sign, no leading zero); None when it names nothing.

    One rule for ``--set`` paths and for locating an error, so a group named "0" is never index 0.
    """
    for index, item in enumerate(items):
        if item_name(item) == segment:
            return index
    if re.fullmatch(r"0|[1-9]\d*", segment) and int(segment) < len(items):
        return int(segment)
    return None


def child_value(parent: Any, segment: str | int) -> Any:
    """``parent[segment]`` for a mapping key or an in-range list index, else ``NO_VALUE``."""
    if isinstance(parent, dict) and segment in parent:
        return parent[segment]
    if isinstance(parent, list) and isinstance(segment, int) and 0 <= segment < len(parent):
        return parent[segment]
    return NO_VALUE


def value_at(data: Any, path: PathT) -> Any:
    """The value at ``path`` inside ``data``, or ``NO_VALUE`` where the path leads nowhere."""
    current = data
    for segment in path:
        current = child_value(current, segment)
        if current is NO_VALUE:
            return NO_VALUE
    return current


def named_path(data: Any, path: PathT) -> str:
    """Dotted path using an item's ``name`` instead of its list index when it has one."""
    out: list[str] = []
    current = data
    for segment in path:
        if isinstance(current, list) and isinstance(segment, int) and 0 <= segment < len(current):
            item = current[segment]
            name = item.get("name") if isinstance(item, dict) else None
            named = isinstance(name, str) and name and list_index(current, name) == segment
            out.append(str(name) if named else str(segment))
            current = item
        elif isinstance(current, dict) and segment in current:
            out.append(str(segment))
            current = current[segment]
        else:
            out.append(str(segment))
            current = None
    return ".".join(out)


def locate(marks: Mapping[PathT, Loc], path: PathT, default_file: str | None) -> Loc:
    """The location of ``path`` or of its nearest located ancestor."""
    for length in range(len(path), -1, -1):
        loc = marks.get(path[:length])
        if loc is not None:
            return loc
    return Loc(default_file or "<scenario>", None)


def issue_at(data: Any, marks: Mapping[PathT, Loc], file: str | None, path: PathT, value: Any,
             message: str) -> Issue:
    """An :class:`Issue` at ``path`` of ``data``, located at its file and line."""
    loc = locate(marks, path, file)
    return Issue(loc.file, loc.line, named_path(data, path), value, message)
