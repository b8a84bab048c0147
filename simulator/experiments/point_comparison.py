"""Comparisons between sweep points: point A against point B, or every point against a reference.

A point is named by its id or by its swept values (``{"window_days": 90}``; a key is a swept path
or its unique last part).  A *partial* reference - some swept parameters only - compares each point
with the point that has the reference's values for those parameters and its own values for the
others (``{window_days: 90}`` on a window x fatigue grid: every window against 90 days, at each
fatigue level).

The differences are paired replication by replication, with the same statistics as ``run``'s
comparison (:func:`simulator.experiments.comparison.compare`): under ``seeds: common`` replication
``i`` of every point uses the same seed, so the two points face the same market (common random
numbers).  Points with different seeds (``seeds: per_point``) are not paired: their CI and p-value
are Welch's (``paired`` is false).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

from simulator.experiments.comparison import compare
from simulator.experiments.statistics import ALPHA, contain

if TYPE_CHECKING:
    from simulator.experiments.design import Point

__all__ = ["POINT_COMPARISON_COLUMNS", "PointSpec", "PointSpecError", "compare_points", "describe_point",
           "find_point", "parse_point_spec", "reference_pairs"]

PointSpec = int | Mapping[str, Any]
"""A point: its id, or ``{swept path (or its unique last part): value}``."""

POINT_COMPARISON_COLUMNS: tuple[str, ...] = (
    "point", "reference", "policy", "metric", "reference_mean", "point_mean", "diff", "ci_low", "ci_high",
    "rel_change", "rel_ci_low", "rel_ci_high", "p_value", "n", "paired", "significant",
)
"""Columns of :func:`compare_points` (after ``point`` and ``reference`` come the point's swept values)."""

_REFERENCE_ARM, _POINT_ARM = "reference", "point"


class PointSpecError(ValueError):
    """A point specification that names no point of the design (the message lists the allowed ones)."""


def parse_point_spec(text: str) -> PointSpec:
    """``"window_days=90,sensitivity=0.08"``, ``"point=3"`` or ``"3"`` as a :data:`PointSpec`."""
    import yaml

    text = text.strip()
    if text.isdigit():
        return int(text)
    out: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise PointSpecError(f"{text!r}: write NAME=VALUE[,NAME=VALUE...] (e.g. window_days=90) or a point id")
        out[key.strip()] = yaml.safe_load(value.strip())
    if set(out) == {"point"} and isinstance(out["point"], int):
        return int(out["point"])
    if not out:
        raise PointSpecError("an empty point: write NAME=VALUE (e.g. window_days=90) or a point id")
    return out


def describe_point(point: Point) -> str:
    """``point 3 (window_days=30, sensitivity=0.08)``."""
    values = ", ".join(f"{path.split('.')[-1]}={value}" for path, value in point.values.items())
    return f"point {point.id} ({values})"


def _allowed(points: Sequence[Point]) -> str:
    """The points a spec may name, for error messages (the first 20)."""
    shown = [describe_point(p) for p in points[:20]]
    more = f", ... ({len(points)} points)" if len(points) > 20 else ""
    return "; ".join(shown) + more


def _resolve_keys(spec: Mapping[str, Any], paths: Sequence[str]) -> dict[str, Any]:
    """Keys of ``spec`` as full swept paths (a key may be a path's unique last part)."""
    out: dict[str, Any] = {}
    for key, value in spec.items():
        matches = [p for p in paths if p == key or p.endswith("." + key)]
        if len(matches) != 1:
            what = "is ambiguous: it ends " + " and ".join(matches) if matches else "is not a swept parameter"
            raise PointSpecError(f"{key!r} {what}; the swept parameters: " + ", ".join(paths))
        out[matches[0]] = value
    return out


def _same(a: Any, b: Any) -> bool:
    """Whether two swept values are the same (numbers to 1e-9 relative, anything else exactly)."""
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b))
    if numbers:
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return bool(a == b) or str(a) == str(b)


def _matching(points: Sequence[Point], values: Mapping[str, Any]) -> Point | None:
    return next((p for p in points if all(_same(p.values[k], v) for k, v in values.items())), None)


def find_point(points: Sequence[Point], spec: PointSpec, paths: Sequence[str]) -> Point:
    """The one point ``spec`` names; :class:`PointSpecError` listing the allowed points otherwise."""
    if isinstance(spec, int):
        found = next((p for p in points if p.id == spec), None)
        if found is None:
            raise PointSpecError(f"no point {spec}; the points: {_allowed(points)}")
        return found
    values = _resolve_keys(spec, paths)
    candidates = [p for p in points if all(_same(p.values[k], v) for k, v in values.items())]
    if len(candidates) != 1:
        named = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in values.items())
        why = "matches no point" if not candidates else f"matches {len(candidates)} points: name every swept parameter"
        raise PointSpecError(f"{named} {why}; the points: {_allowed(points)}")
    return candidates[0]


def reference_pairs(points: Sequence[Point], spec: PointSpec, paths: Sequence[str]) -> list[tuple[int, int]]:
    """(point, its reference point) for every point; a partial ``spec`` keeps each point's other values."""
    if isinstance(spec, int):
        ref = find_point(points, spec, paths)
        return [(p.id, ref.id) for p in points]
    values = _resolve_keys(spec, paths)
    if _matching(points, values) is None:
        named = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in values.items())
        raise PointSpecError(f"{named} matches no point; the points: {_allowed(points)}")
    pairs: list[tuple[int, int]] = []
    lacking: list[int] = []
    for p in points:
        match = _matching(points, {**p.values, **values})
        if match is None:
            lacking.append(p.id)
        else:
            pairs.append((p.id, match.id))
    if lacking:
        raise PointSpecError(f"points {lacking[:10]} have no counterpart with "
                             + ", ".join(f"{k.split('.')[-1]}={v}" for k, v in values.items())
                             + ": name every swept parameter (or a point id); the points: " + _allowed(points))
    return pairs


def compare_points(frame: pd.DataFrame, points: Sequence[Point], pairs: Sequence[tuple[int, int]],
                   metrics: Sequence[str]) -> pd.DataFrame:
    """``point - reference`` per pair, policy and metric, from the per-replication ``frame``.

    ``frame`` has ``point, policy, replication`` and a column per metric (``SweepResults.replications``).
    Paired (``paired`` true) when the two points ran the same seeds; Welch's interval otherwise.
    """
    by_id = {p.id: p for p in points}
    arms = []
    for k, (point, ref) in enumerate(pairs):
        for arm, pid in ((_REFERENCE_ARM, ref), (_POINT_ARM, point)):
            rows = frame[frame["point"] == pid]
            arms.append(rows.assign(pair=k, of_policy=rows["policy"], policy=arm)
                        [["pair", "of_policy", "policy", "replication", *metrics]])
    long = pd.concat(arms, ignore_index=True)
    comp = compare(long, _REFERENCE_ARM, metrics, keys=("pair", "of_policy"))
    paired = np.array([by_id[pairs[k][0]].root_seed == by_id[pairs[k][1]].root_seed for k in comp["pair"]],
                      dtype=bool)
    comp["paired"] = paired
    if not paired.all():
        _use_welch(comp, long, ~paired)
    comp["point"] = [pairs[k][0] for k in comp["pair"]]
    comp["reference"] = [pairs[k][1] for k in comp["pair"]]
    comp = comp.rename(columns={"of_policy": "policy_name"}).drop(columns="policy").rename(
        columns={"policy_name": "policy", "baseline_mean": "reference_mean", "policy_mean": "point_mean"})
    return comp[list(POINT_COMPARISON_COLUMNS)].reset_index(drop=True)


def _use_welch(comp: pd.DataFrame, long: pd.DataFrame, rows: np.ndarray) -> None:
    """Unpaired points: Welch's interval and test in place of the paired ones (in ``comp``, in place)."""
    comp.loc[rows, "ci_low"] = comp.loc[rows, "unpaired_ci_low"]
    comp.loc[rows, "ci_high"] = comp.loc[rows, "unpaired_ci_high"]
    for i in np.flatnonzero(rows):
        row = comp.iloc[i]
        sel = long[(long["pair"] == row["pair"]) & (long["of_policy"] == row["of_policy"])]
        a = sel.loc[sel["policy"] == _POINT_ARM, row["metric"]].to_numpy(dtype=np.float64)
        b = sel.loc[sel["policy"] == _REFERENCE_ARM, row["metric"]].to_numpy(dtype=np.float64)
        p = np.nan
        if min(len(a), len(b)) >= 2:
            with np.errstate(invalid="ignore", divide="ignore"):
                p = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
            if not math.isfinite(p):  # no spread at all
                p = 1.0 if row["diff"] == 0 else 0.0
        comp.iat[i, comp.columns.get_loc("p_value")] = p
        reference = row["baseline_mean"]
        if reference != 0:  # divided by the signed reference mean, ordered, and holding rel_change
            bounds = sorted((row["unpaired_ci_low"] / reference, row["unpaired_ci_high"] / reference))
            low, high = contain(row["rel_change"], bounds[0], bounds[1])
            comp.iat[i, comp.columns.get_loc("rel_ci_low")] = float(low)
            comp.iat[i, comp.columns.get_loc("rel_ci_high")] = float(high)
        sig = p < ALPHA and (row["unpaired_ci_low"] > 0 or row["unpaired_ci_high"] < 0)
        comp.iat[i, comp.columns.get_loc("significant")] = bool(sig)
