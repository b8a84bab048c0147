"""Dotted market paths (``market.response.personalization_effect``): what they name and what is allowed.

An uncertain assumption names market fields by the same dotted paths as ``--set`` (list items by
their ``name`` or index).  :func:`market_field` follows a path through the built :class:`Market` and
says what it found - a continuous number, with its current value and its path with list items named
- or why the path cannot carry an uncertain assumption, naming what is allowed at the point where it
went wrong.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from simulator.core.config import Dist, Market

POLICY_REFUSAL = ("a policy is what a scenario compares, not an assumption about the world: an uncertain "
                  "parameter sets market fields (paths start with 'market.')")
"""Why a ``policies.`` path cannot be uncertain."""

COUNT_REFUSAL = ("is a whole-number count: counts set the simulated market's size and shape (use --scale, "
                 "--set or a sweep), and a count rounded from a continuous prior would make the prior a "
                 "staircase; an uncertain parameter sets continuous fields")
"""Why an integer field cannot be uncertain."""

DIST_PARTS = {"fixed": "a = the value", "uniform": "a = low, b = high", "beta": "a = mean, b = concentration",
              "lognormal": "a = median, b = log-sd"}
"""What ``a`` and ``b`` of each distribution kind mean (named in the message for a bare distribution)."""


_INDEX = re.compile(r"0|[1-9][0-9]*")
"""A list index as a path writes it (ASCII digits, no sign, no leading zero), as for ``--set``."""


def _index(items: tuple[Any, ...], seg: str) -> int | None:
    """The index ``seg`` spells in ``items``, or None."""
    return int(seg) if _INDEX.fullmatch(seg) and int(seg) < len(items) else None


class MarketPathError(ValueError):
    """A path that names no continuous market field; the message says what is allowed."""


@dataclass(frozen=True)
class MarketField:
    """A continuous market field: its path with list items named, and its value in the market."""

    path: str
    value: float


def _choices(obj: Any) -> list[str]:
    """The names a path may take below ``obj`` (sub-sections and numeric fields; no text or switches)."""
    if isinstance(obj, tuple):
        return [str(getattr(item, "name", index)) for index, item in enumerate(obj)]
    return [f.name for f in dataclasses.fields(obj)
            if not isinstance(getattr(obj, f.name), (str, bool)) and getattr(obj, f.name) is not None]


def _step(obj: Any, seg: str, where: str) -> Any:
    """The child ``seg`` of ``obj`` (a tuple item by name, then by index; a dataclass field)."""
    if isinstance(obj, tuple):
        names = [getattr(item, "name", None) for item in obj]
        if seg in names:
            return obj[names.index(seg)]
        index = _index(obj, seg)
        if index is not None:
            return obj[index]
        raise MarketPathError(f"{where} has no item {seg!r}; allowed: {', '.join(_choices(obj))}")
    if not dataclasses.is_dataclass(obj):
        raise MarketPathError(f"{where} is a number, it has no field {seg!r}")
    if seg not in {f.name for f in dataclasses.fields(obj)}:
        raise MarketPathError(f"{where} has no field {seg!r}; allowed: {', '.join(_choices(obj))}")
    return getattr(obj, seg)


def _segment_name(obj: Any, seg: str) -> str:
    """``seg`` as a name when ``obj`` is a list whose item it picks has one."""
    index = _index(obj, seg) if isinstance(obj, tuple) and seg not in [getattr(i, "name", None) for i in obj] else None
    return seg if index is None else str(getattr(obj[index], "name", seg))


def market_field(market: Market, path: str) -> MarketField:
    """The continuous market field ``path`` names; ``MarketPathError`` says why a path names none."""
    segs = path.split(".")
    if segs[0] == "policies":
        raise MarketPathError(POLICY_REFUSAL)
    if segs[0] != "market" or len(segs) < 2 or not all(segs):
        raise MarketPathError("not a market field: an uncertain parameter sets market fields, e.g. "
                              "market.response.personalization_effect; allowed below market: "
                              + ", ".join(_choices(market)))
    obj: Any = market
    named = ["market"]
    for seg in segs[1:]:
        child = _step(obj, seg, ".".join(named))
        named.append(_segment_name(obj, seg))
        obj = child
    shown = ".".join(named)
    if isinstance(obj, Dist):
        raise MarketPathError(f"is a distribution ({obj.kind}): name one of its numbers, {shown}.a or {shown}.b "
                              f"({DIST_PARTS[obj.kind]})")
    if isinstance(obj, bool):
        raise MarketPathError("is a switch (true/false), not a number")
    if isinstance(obj, int):
        raise MarketPathError(COUNT_REFUSAL)
    if not isinstance(obj, float):
        allowed = _choices(obj) if dataclasses.is_dataclass(obj) or isinstance(obj, tuple) else []
        raise MarketPathError("is not a number" + (f"; allowed below it: {', '.join(allowed)}" if allowed else ""))
    return MarketField(shown, float(obj))
