"""The numbers a figure of one :class:`Results` draws: daily bands, subgroup intervals, member histograms.

Bands and error bars are Student-t intervals over replications
(:func:`simulator.experiments.statistics.t_interval`, 95% by default).  A policy has the same
colour in every figure (scenario order, baseline first).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from simulator.experiments.statistics import t_interval
from simulator.io.plotting.canvas import PALETTE

if TYPE_CHECKING:
    from simulator.experiments.experiment import Results

ROLLING_DAYS = 7
"""Daily rates are shown as 7-day rolling ratios (sums of responses / sums of sent): weekends send less."""

RATE_PARTS: dict[str, tuple[str, str]] = {
    "response_rate": ("responses", "sent"),
    "acceptance_rate": ("accepted", "sent"),
}
"""A daily rate as (numerator series, denominator series)."""


def policy_order(results: Results) -> list[str]:
    """The scenario's policies (baseline first) that have data."""
    present = set(results.replications["policy"])
    return [p for p in results.scenario.policy_names if p in present]


def policy_colors(results: Results) -> dict[str, str]:
    """One colour per policy, the same in every figure of these results."""
    return {policy: PALETTE[i % len(PALETTE)] for i, policy in enumerate(results.scenario.policy_names)}


def has_series(results: Results, metric: str) -> bool:
    """Whether the daily series ``metric`` was kept (a run with ``--no-timeseries`` keeps none)."""
    timeseries = results.timeseries
    return bool(len(timeseries)) and bool((timeseries["metric"] == metric).any())


def _wide(results: Results, metric: str) -> dict[str, np.ndarray]:
    """policy -> array [replication, day] of one daily series."""
    timeseries = results.timeseries
    rows = timeseries[timeseries["metric"] == metric]
    if rows.empty:
        raise ValueError(f"no daily series {metric!r} in these results")
    out: dict[str, np.ndarray] = {}
    for policy in policy_order(results):
        of_policy = rows[rows["policy"] == policy]
        if of_policy.empty:
            continue
        out[policy] = _grid(of_policy)
    return out


def _grid(rows: pd.DataFrame) -> np.ndarray:
    """The ``value`` column as an array [replication, day] (sorted; the first value where one repeats).

    A numpy scatter instead of ``pivot_table``: the figures read a dozen series, and the pivot cost
    a quarter of their drawing time.
    """
    replications, rep_index = np.unique(rows["replication"].to_numpy(), return_inverse=True)
    days, day_index = np.unique(rows["day"].to_numpy(), return_inverse=True)
    grid = np.full((replications.size, days.size), np.nan)
    values = rows["value"].to_numpy(dtype=np.float64)
    grid[rep_index[::-1], day_index[::-1]] = values[::-1]  # reversed, so the first of duplicates is kept
    return grid


def _rolling_sum(days: np.ndarray, window: int) -> np.ndarray:
    """Trailing sum over ``window`` days along axis 1 (shorter at the start)."""
    if window <= 1:
        return days
    running = np.cumsum(np.nan_to_num(days), axis=1)
    out = running.copy()
    out[:, window:] = running[:, window:] - running[:, :-window]
    return out


@dataclass(frozen=True)
class Band:
    """A daily series per policy: mean over replications and its 95% band."""

    day: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    n: int


def daily_bands(results: Results, metric: str, *, window: int = 1, cumulative: bool = False,
                per_recruiter: bool = False, scale: float = 1.0) -> dict[str, Band]:
    """policy -> :class:`Band` of a daily series.

    Rates (``response_rate``, ``acceptance_rate``) are ratios of ``window``-day sums per
    replication; ``cumulative`` sums over days first; ``per_recruiter`` divides by the number of
    recruiters in the market; ``scale`` multiplies at the end (100 for %).
    """
    if metric in RATE_PARTS:
        numerators, denominators = (_wide(results, part) for part in RATE_PARTS[metric])
        data = {}
        for policy, numerator in numerators.items():
            denominator = _rolling_sum(denominators[policy], window)
            with np.errstate(invalid="ignore", divide="ignore"):
                data[policy] = np.where(denominator > 0, _rolling_sum(numerator, window) / denominator, np.nan)
    else:
        data = _wide(results, metric)
    recruiters = max(results.scenario.market.recruiter_count, 1)
    out: dict[str, Band] = {}
    for policy, values in data.items():
        if cumulative:
            values = np.cumsum(np.nan_to_num(values), axis=1)
        if per_recruiter:
            values = values / recruiters
        mean, low, high = t_interval(values * scale)
        if values.size and np.nanmin(values) >= 0:  # a count or a rate: the band stays above 0
            low = np.maximum(low, 0.0)
        out[policy] = Band(np.arange(values.shape[1]), mean, low, high, values.shape[0])
    return out


def dates(results: Results, days: np.ndarray) -> np.ndarray:
    """Calendar dates of simulation days (day 0 is the scenario's start date)."""
    start = np.datetime64(results.scenario.run.start_date, "D")
    return start + days.astype("timedelta64[D]")


def group_stats(results: Results, by: str, value: Callable[[pd.DataFrame], pd.Series]) -> pd.DataFrame:
    """Per recruiter subgroup and policy: mean and 95% CI over replications of ``value(rows)``.

    ``value`` maps the per-replication breakdown rows (``breakdown_replications``) to one number
    per row, e.g. ``lambda r: r["warnings"] / r["recruiters"]``.  Columns: label, policy, mean,
    ci_low, ci_high, n.
    """
    breakdowns = results.breakdown_replications
    rows = breakdowns[breakdowns["by"] == by].copy()
    rows["_v"] = value(rows).astype(np.float64)
    out = []
    for (label, policy), group in rows.groupby(["label", "policy"], sort=False):
        mean, low, high = t_interval(group["_v"].to_numpy())
        out.append({"label": label, "policy": policy, "mean": float(mean), "ci_low": float(low),
                    "ci_high": float(high), "n": len(group)})
    return pd.DataFrame(out, columns=["label", "policy", "mean", "ci_low", "ci_high", "n"])


def outcome_stats(results: Results, by: str, metric: str) -> pd.DataFrame:
    """Per recruiter subgroup and policy: mean and 95% CI over replications of a group outcome.

    ``metric``: one of :data:`~simulator.experiments.group_outcomes.GROUP_OUTCOME_METRICS`
    (e.g. ``stockout_days_per_recruiter``, ``credits_per_response``), computed replication by
    replication; a replication where it is undefined (no response) is left out.  Columns as
    :func:`group_stats`.
    """
    from simulator.experiments.group_outcomes import group_outcome_replications

    breakdowns = results.breakdown_replications
    rows = group_outcome_replications(breakdowns[breakdowns["by"] == by])
    out = []
    for (label, policy), group in rows.groupby(["label", "policy"], sort=False):
        values = group[metric].to_numpy(dtype=np.float64)
        values = values[np.isfinite(values)]
        mean, low, high = t_interval(values) if len(values) else (np.nan, np.nan, np.nan)
        out.append({"label": label, "policy": policy, "mean": float(mean), "ci_low": float(low),
                    "ci_high": float(high), "n": len(values)})
    return pd.DataFrame(out, columns=["label", "policy", "mean", "ci_low", "ci_high", "n"])


def member_frame(results: Results) -> pd.DataFrame | None:
    """The per-replication histogram of active members (policy, replication, quantity, bin, members), if recorded.

    ``results.member_distribution`` (``member_distribution.csv`` of a run folder); ``None`` when
    it is empty (results loaded from a run folder written before the histograms were recorded).
    """
    frame = results.member_distribution
    return None if frame.empty else frame


def bin_labels(edges: Sequence[int]) -> list[str]:
    """Labels of count bins given their lower edges: ``0, 1, 2, 3-4, 5-9, ..., 500+``."""
    edges = [int(edge) for edge in edges]
    out = []
    for i, edge in enumerate(edges):
        if i + 1 == len(edges):
            out.append(f"{edge}+")
        elif edges[i + 1] == edge + 1:
            out.append(str(edge))
        else:
            out.append(f"{edge}-{edges[i + 1] - 1}")
    return out
