"""pydantic's validation errors, as issues an analyst can act on.

pydantic reports a location like ``('market', 'recruiters', 2, 'int', 'count')`` and a terse type
code; this module turns it into the data path (``market.recruiters.bulk.count``), the line that set
it, the value given, and a message naming what is allowed (with "did you mean" for typos).
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import BaseModel, ValidationError

from simulator.scenario.errors import NO_VALUE, Issue, PathT
from simulator.scenario.locations import Loc, child_value, issue_at
from simulator.scenario.schema import ScenarioSchema

_TYPE_MESSAGES: dict[str, str] = {
    "finite_number": "must be a finite number (not .nan or .inf)",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "bool_type": "must be true or false (also on/off, yes/no)",
    "string_type": "must be text",
    "list_type": "must be a list (lines starting with '-')",
    "dict_type": "must be a mapping (key: value lines)",
    "model_type": "must be a mapping (key: value lines)",
    "model_attributes_type": "must be a mapping (key: value lines)",
    "date_type": "must be a date like 2015-02-01",
    "date_parsing": "must be a date like 2015-02-01",
    "date_from_datetime_parsing": "must be a date like 2015-02-01",
    "date_from_datetime_inexact": "must be a date like 2015-02-01 (no time of day)",
    "missing": "required field is missing",
    "string_too_short": "must not be empty",
    "too_short": "must not be empty",
    "string_pattern_mismatch": "may contain only letters, digits, '_' and '-'",
}

_NUMBER_ERRORS = frozenset({"int_type", "int_from_float", "float_type"})
"""Type errors of a number field: their message also names the field's range."""


def _schema_at(schema: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The schema class that holds the field at ``loc`` (for listing allowed keys)."""
    holder = _type_at(schema, loc[:-1])
    while typing.get_origin(holder) in (Annotated, typing.Union, types.UnionType):
        holder = next(arg for arg in typing.get_args(holder) if arg is not type(None))
    return holder if isinstance(holder, type) and issubclass(holder, BaseModel) else None


def _range_missed(schema: type[BaseModel], loc: Sequence[str | int], value: Any) -> str | None:
    """The range of the number field at ``loc`` (``in [0, 1e+09]``) if ``value`` is a number outside it.

    A float such as 1e10 given for a whole number breaks the range too: say so, not only "whole".
    """
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    stack: list[Any] = [_type_at(schema, loc)]
    while stack:
        current = stack.pop()
        for part in typing.get_args(current):
            stack.append(part)
            check = getattr(part, "func", None)
            text = getattr(check, "range_text", None)
            if isinstance(text, str) and check is not None:
                try:
                    check(value)
                except ValueError:
                    return text.removeprefix("must be ")
                return None
    return None


def _type_at(schema: type[BaseModel], segments: Sequence[str | int]) -> Any:
    """The annotation of the value at ``segments`` inside ``schema`` (None if the path leaves it)."""
    current: Any = schema
    position = 0
    for _ in range(200):
        origin = typing.get_origin(current)
        if position == len(segments):
            return current
        if isinstance(current, type) and issubclass(current, BaseModel):
            info = current.model_fields.get(str(segments[position]))
            if info is None:
                return None
            current, position = info.annotation, position + 1
            if info.metadata:  # pydantic moves the outermost Annotated[...] extras here
                current = Annotated[(current, *info.metadata)]
        elif origin is Annotated:
            current = typing.get_args(current)[0]
        elif origin in (typing.Union, types.UnionType):
            branches = [arg for arg in typing.get_args(current) if arg is not type(None)]
            if position < len(segments):
                segment = segments[position]
                if isinstance(segment, str) and "[" in segment:
                    position += 1  # a union branch tag such as 'list[...]'
            current = branches[0]
        elif origin is dict and position < len(segments):
            current, position = typing.get_args(current)[1], position + 1
        elif origin is list and position < len(segments):
            current, position = typing.get_args(current)[0], position + 1
        else:
            return None
    return None


def _clean_loc(data: Any, loc: Sequence[str | int]) -> tuple[PathT, Any]:
    """Drop pydantic-internal segments (union tags, '[key]'); return the data path and its value."""
    path: list[str | int] = []
    current = data
    for position, segment in enumerate(loc):
        last = position == len(loc) - 1
        child = child_value(current, segment)
        if child is not NO_VALUE:
            path.append(segment)
            current = child
        elif last and isinstance(segment, str) and not segment.startswith(("[", "function")) and "[" not in segment:
            path.append(segment)
            current = NO_VALUE
    return tuple(path), current


def _suggest(word: str, allowed: Sequence[str]) -> str | None:
    """The allowed name a typo most likely meant (shared prefix first, then similarity)."""
    close = difflib.get_close_matches(word, allowed, n=4, cutoff=0.6)
    if not close:
        return None
    return max(close, key=lambda candidate: (candidate[:3] == word[:3], -close.index(candidate)))


def _unknown_field_message(loc: Sequence[str | int], path: PathT) -> str:
    """'unknown field', the likely intended name, and the names allowed there."""
    holder = _schema_at(ScenarioSchema, loc)
    allowed = [name for name in holder.model_fields if name != "target"] if holder else []
    message = "unknown field"
    close = _suggest(str(path[-1]) if path else "", allowed)
    if close:
        message += f"; did you mean {close!r}?"
    if allowed:
        message += ("" if close else ".") + " Allowed: " + ", ".join(allowed)
    return message


def validation_issues(exc: ValidationError, data: Any, marks: Mapping[PathT, Loc], file: str | None) -> list[Issue]:
    """One issue per problem pydantic found in ``data`` (the scenario mapping)."""
    found: list[tuple[PathT, Any, str, str]] = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        path, value = _clean_loc(data, loc)
        error_type = error["type"]
        if error_type == "extra_forbidden":
            message = _unknown_field_message(loc, path)
        elif error_type == "literal_error":
            expected = error.get("ctx", {}).get("expected", "")
            choices = re.findall(r"'([^']*)'", str(expected))
            message = "must be one of: " + ", ".join(choices) if choices else error["msg"]
            if "[key]" in loc:
                message = "unknown name; " + message
                value = path[-1] if path else value
        elif error_type == "value_error":
            message = str(error.get("ctx", {}).get("error", error["msg"]))
        else:
            message = _TYPE_MESSAGES.get(error_type, error["msg"])
            allowed = _range_missed(ScenarioSchema, loc, value) if error_type in _NUMBER_ERRORS else None
            if allowed:
                message += f" {allowed}"
            if error_type == "missing":
                value = NO_VALUE
        found.append((path, value, message, error_type))
    # A union (e.g. a dict-or-list field) reports one error per branch: keep the informative ones.
    deeper = {path[:length] for path, *_ in found for length in range(len(path))}
    kept: dict[tuple[PathT, str], tuple[PathT, Any, str]] = {}
    for path, value, message, error_type in found:
        is_type = error_type.endswith("_type")
        if is_type and path in deeper:
            continue
        if is_type and any(other == path and not other_type.endswith("_type")
                           for other, _, _, other_type in found):
            continue
        kept.setdefault((path, message), (path, value, message))
    return [issue_at(data, marks, file, path, value, message) for path, value, message in kept.values()]
