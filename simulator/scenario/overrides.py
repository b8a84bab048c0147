"""``--set PATH=VALUE`` overrides: parsing them and applying them to a scenario mapping.

A path is dotted field names; a list item is named by its ``name`` or by its index
(``market.recruiters.bulk.count=5``, ``market.recruiters.0.count=5``).  A segment is read as a name
first: an item whose ``name`` is exactly that text wins, even when it is a number (a group named
``"0"``); otherwise digits are an index from 0 to the list's length - 1.  Negative indices (Python's
count from the end) are refused, so a path always means one item, whatever the list's length.

The value is read as YAML (``off``, ``[1, 2]``, ``{a: 1}``);
``null`` (or nothing after ``=``) removes what was set, back to the preset's or default value.
A key that holds dots (an ``optimize:`` lever such as ``refund.window_days``) is reached by its dotted
name: ``optimize.levers.refund.window_days=[10, 60]``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from typing import Any

from simulator.scenario.errors import NO_VALUE, SET_SOURCE, Issue, PathT, ScenarioError, format_path, show_value
from simulator.scenario.files import is_under, parse_yaml
from simulator.scenario.locations import Loc, item_name, list_index

Overrides = Sequence[str] | Mapping[str, Any]
"""``"path=value"`` strings (values parsed as YAML) or a ``{path: value}`` mapping."""


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``path=value`` into path segments and the YAML-parsed value."""
    if "=" not in text:
        raise ScenarioError([Issue(SET_SOURCE, None, text, NO_VALUE,
                                   "expected path=value, e.g. market.members.count=200000")])
    path_text, value_text = text.split("=", 1)
    segments = path_text.strip().split(".")
    if not path_text.strip() or any(not segment.strip() for segment in segments):
        raise ScenarioError([Issue(SET_SOURCE, None, path_text, NO_VALUE,
                                   "bad path: use dotted field names, e.g. policies.new.refund.window_days")])
    try:
        value = parse_yaml(value_text, SET_SOURCE)[0] if value_text.strip() else None
    except ScenarioError as exc:
        why = exc.issues[0].message if exc.issues else "unreadable"
        raise ScenarioError([Issue(SET_SOURCE, None, path_text, value_text,
                                   f"value is not valid YAML: {why}")]) from None
    return [segment.strip() for segment in segments], value


def _bad_list_item(items: list[Any], segment: str, label: str, shown_path: str) -> ScenarioError:
    """The error for a list item that is neither an index nor the ``name`` of an item."""
    names = [name for name in map(item_name, items) if name is not None]
    allowed = f"an index 0..{len(items) - 1}" if items else "nothing (the list is empty)"
    if names:
        allowed += " or a name: " + ", ".join(names)
    why = " (negative indices are not accepted)" if re.fullmatch(r"-\d+", segment) else ""
    return ScenarioError([Issue(label, None, shown_path, NO_VALUE,
                                f"bad --set path: no item {segment!r} in this list{why}; allowed: {allowed}")])


def apply_override(data: dict[str, Any], marks: dict[PathT, Loc], text: str, value: Any = NO_VALUE) -> None:
    """Apply one ``path=value`` override in place (``value`` given: ``text`` is just the path)."""
    if value is NO_VALUE:
        segments, value = parse_override(text)
        label = f"{SET_SOURCE} {text}"
    else:
        segments = text.split(".")
        label = f"{SET_SOURCE} {text}={show_value(value)}"
    segments = _join_dotted_keys(data, segments)
    current: Any = data
    path: list[str | int] = []
    for depth, segment in enumerate(segments):
        last = depth == len(segments) - 1
        key: str | int
        if isinstance(current, dict):
            key = segment
            if not last and (segment not in current or current[segment] is None):
                current[segment] = {}
                marks[(*path, segment)] = Loc(label, None)
        elif isinstance(current, list):
            index = list_index(current, segment)
            if index is None:
                raise _bad_list_item(current, segment, label, format_path(segments[: depth + 1]))
            key = index
        else:
            parent = format_path(segments[:depth]) or "(top level)"
            raise ScenarioError([Issue(label, None, format_path(segments[: depth + 1]), NO_VALUE,
                                       f"bad --set path: {parent} is {show_value(current)}, "
                                       "not a mapping or list, so it has no field " + repr(segment))])
        path.append(key)
        if last and value is None and isinstance(current, dict):
            current.pop(key, None)  # null: back to "not given"
        elif last:
            current[key] = copy.deepcopy(value)
        else:
            current = current[key]
    target = tuple(path)
    for located in [where for where in marks if is_under(where, target)]:
        del marks[located]
    marks[target] = Loc(label, None)


def _join_dotted_keys(data: dict[str, Any], segments: list[str]) -> list[str]:
    """The path with segments joined where a mapping's key holds dots (``optimize.levers.refund.window_days``:
    the lever ``refund.window_days``).  A segment that is a key itself always wins; only when it is not,
    the longest run of segments that spells an existing dotted key is taken as one."""
    out: list[str] = []
    current: Any = data
    depth = 0
    while depth < len(segments):
        step = 1
        if isinstance(current, dict) and segments[depth] not in current:
            for end in range(len(segments), depth + 1, -1):
                if ".".join(segments[depth:end]) in current:
                    step = end - depth
                    break
        key = ".".join(segments[depth:depth + step])
        out.append(key)
        current = current.get(key) if isinstance(current, dict) else None
        depth += step
    return out


def apply_overrides(data: dict[str, Any], marks: dict[PathT, Loc], overrides: Overrides) -> list[Issue]:
    """Apply every override in place; return the problems of those that could not be applied."""
    issues: list[Issue] = []
    items = overrides.items() if isinstance(overrides, Mapping) else ((text, NO_VALUE) for text in overrides)
    for text, value in items:
        try:
            apply_override(data, marks, text, value)
        except ScenarioError as exc:
            issues += exc.issues
    return issues


def override_texts(overrides: Overrides) -> list[str]:
    """The overrides as ``path=value`` strings (what ``Scenario.overrides`` records)."""
    if isinstance(overrides, Mapping):
        return [f"{path}={show_value(value, 1000)}" for path, value in overrides.items()]
    return list(overrides)
