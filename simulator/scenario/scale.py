"""``scale: F`` / ``--scale F``: a smaller (or larger) copy of a market that keeps the answer.

Shrinking members alone gives every member more InMails (more fatigue, lower response rates),
so a quick look would answer a different question.  Scaling multiplies the member count and every
recruiter group's count by the same factor, so members per recruiter, each group's share of the
recruiters and every per-recruiter quantity (team size, allotments, volumes, rates) stay as they
were.  Counts are rounded half up; a group that had recruiters keeps at least one team (its
``team_size``, or all of it when smaller), so no seat type or behaviour vanishes.

Scaling is applied to the built :class:`~simulator.core.config.Market`, after ``extends:``,
``--set`` and sweep points, so that defaults (a market without a ``recruiters:`` list) scale too;
the resolved scenario keeps ``scale: F`` and the unscaled counts, so loading it again reproduces
the run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Annotated, Any

from simulator.core.config import Market, RecruiterGroup
from simulator.scenario.schema_fields import in_range

MAX_SCALE = 10.0
"""Largest factor accepted (a scale-up beyond ten times is a different study; the memory check still applies)."""
ScaleFactor = Annotated[float, in_range(0, MAX_SCALE, lo_open=True)]
"""The schema type of ``scale:``: a number in (0, 10]."""
MIN_GROUP_RECRUITERS = 10
"""A scaled group with fewer recruiters than this gets a warning: its share is rounded and its results noisy."""
LOAD_CHANGE_WARN = 0.20
"""Relative change in members per recruiter, caused by ``--set``, above which ``run`` and ``validate`` warn."""


def check_scale(value: float) -> float:
    """``value`` if it is a number in (0, MAX_SCALE], else ``ValueError`` naming the allowed range."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_SCALE:
        raise ValueError(f"scale must be a number in (0, {MAX_SCALE:g}], got {value!r}")
    return float(value)


def scaled_count(count: int, factor: float) -> int:
    """``count * factor`` rounded half up (not to even: 0.5 of 45 is 23, not 22)."""
    return math.floor(count * factor + 0.5)


def scaled_group_count(count: int, team_size: int, factor: float) -> int:
    """A group's recruiters at ``factor``, never fewer than one team (or all it had, when fewer)."""
    if count <= 0:
        return 0
    return max(min(count, max(1, team_size)), scaled_count(count, factor))


def scale_market(market: Market, factor: float) -> Market:
    """``market`` with members and every recruiter group scaled together (``factor`` 1: unchanged)."""
    if factor == 1:
        return market
    members = replace(market.members, count=max(1, scaled_count(market.members.count, factor)))
    groups = tuple(replace(group, count=scaled_group_count(group.count, group.team_size, factor))
                   for group in market.recruiters)
    return replace(market, members=members, recruiters=groups)


def members_per_recruiter(market: Market) -> float:
    """Members per recruiter (the per-member InMail load at a fixed sending behaviour); inf without recruiters."""
    recruiters = market.recruiter_count
    return market.members.count / recruiters if recruiters else float("inf")


def smallest_scale(market: Market, min_recruiters: int = MIN_GROUP_RECRUITERS) -> float:
    """The smallest factor at which every non-empty group keeps ``min_recruiters`` (or all it has)."""
    needs = [min(min_recruiters, group.count) / group.count for group in market.recruiters if group.count > 0]
    return max(needs, default=0.0)


def small_group_note(full: Market, scaled: Market, factor: float,
                     min_recruiters: int = MIN_GROUP_RECRUITERS) -> str | None:
    """A warning naming the groups that ``factor`` leaves with fewer than ``min_recruiters`` recruiters."""
    if factor >= 1:
        return None
    small = [(before, after) for before, after in zip(full.recruiters, scaled.recruiters, strict=True)
             if 0 < after.count < min(min_recruiters, before.count)]
    if not small:
        return None
    listed = ", ".join(f"{after.name} {after.count} ({_share(after, scaled):.1%} of recruiters, "
                       f"{_share(before, full):.1%} at scale 1)" for before, after in small)
    return (f"scale {factor:g} leaves {len(small)} recruiter group(s) with fewer than {min_recruiters} "
            f"recruiters: {listed}; their breakdown rows are noisy and rounding moves their shares; every group "
            f"keeps >= {min_recruiters} recruiters from scale {smallest_scale(full, min_recruiters):.2g} up")


def _share(group: RecruiterGroup, market: Market) -> float:
    total = market.recruiter_count
    return group.count / total if total else 0.0


SET_ADVICE = "for a smaller copy of the same market use --scale F (members and recruiters together) instead"
FLOOR_ADVICE = "each group keeps at least one team; use a larger scale"


def load_change_note(before: Market, after: Market, cause: str = "the --set overrides",
                     advice: str = SET_ADVICE) -> str | None:
    """A warning when ``cause`` moves members per recruiter by more than :data:`LOAD_CHANGE_WARN`."""
    was, now = members_per_recruiter(before), members_per_recruiter(after)
    if was in (0.0, float("inf")) or now == float("inf"):
        return None
    change = now / was - 1
    if abs(change) <= LOAD_CHANGE_WARN:
        return None
    return (f"{cause} change(s) members per recruiter from {was:,.1f} to {now:,.1f} ({change:+.0%}): every "
            f"member gets {1 / (1 + change):.2g}x the InMails, so response rates and differences move; {advice}")


def with_scale(overrides: Any, factor: float) -> Any:
    """``overrides`` (strings or a mapping) with ``scale=factor`` last (it wins over a ``--set scale=``)."""
    if isinstance(overrides, Mapping):
        out = {path: value for path, value in overrides.items() if path != "scale"}
        out["scale"] = factor
        return out
    return [*overrides, f"scale={factor!r}"]
