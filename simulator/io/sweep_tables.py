"""The printed tables of a sweep (what ``inmail-sim sweep`` prints), in ``run``'s units and formats.

Rates are shown in % and their differences in percentage points, everything else in its unit
(:data:`simulator.io.tables.METRIC_UNITS`); the numbers of a row share the decimals that its
difference's CI supports (:class:`simulator.io.tables.RowFormat`).  The CSV files keep fractions.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

import pandas as pd

from simulator.experiments.statistics import ALPHA
from simulator.experiments.sweep import SUMMARY_METRICS, SweepResults
from simulator.io.tables import METRIC_UNITS, RowFormat, compact_interval, pct, pval, scale_of

__all__ = ["SWEEP_UNITS_NOTE", "format_point_comparison", "format_sweep"]

SWEEP_UNITS_NOTE = ("rates in %, their differences in percentage points; other metrics in their units\n"
                    "95% CIs; * = significant at 5% (CI excludes 0); change = diff / the compared-with mean")
"""The units lines, stated once under the header."""

_NUMBER_WIDTHS = (9, 9, 9, 20, 7, 7)
"""reference mean, compared mean, diff, 95% CI of diff, change, p (+ mark)."""


def _value(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _value_columns(frame: pd.DataFrame, paths: Sequence[str]) -> list[tuple[str, str, int]]:
    """(column, heading, width) of the swept values: the last part of each path, as wide as needed."""
    out = []
    for path in paths:
        head = path.split(".")[-1]
        width = max([len(head), *(len(_value(v)) for v in frame[path])]) if len(frame) else len(head)
        out.append((path, head, min(width, 24)))
    return out


def _number_cells(metric: str, ref_mean: float, mean: float, diff: float, low: float, high: float,
                  change: float, p_value: float, significant: bool) -> str:
    """The numbers of one row, in the metric's display unit, aligned to :data:`_NUMBER_WIDTHS`."""
    scale = scale_of(metric)
    ref_mean, mean, diff, low, high = (v * scale for v in (ref_mean, mean, diff, low, high))
    number = RowFormat([ref_mean, mean, diff, low, high], 0.5 * (high - low))
    w_ref, w_mean, w_diff, w_ci, w_change, w_p = _NUMBER_WIDTHS
    interval = number.interval(low, high)
    if len(interval) > w_ci:
        interval = compact_interval(low, high)
    mark = "*" if significant else ""
    return (f"{number(ref_mean):>{w_ref}} {number(mean):>{w_mean}} {number(diff, True):>{w_diff}} "
            f"{interval:>{w_ci}} {pct(change):>{w_change}} {pval(p_value) + mark:>{w_p}}")


def _heading(lead: str, ref_name: str, name: str) -> str:
    w_ref, w_mean, w_diff, w_ci, w_change, w_p = _NUMBER_WIDTHS
    return (f"{lead} {ref_name[:w_ref]:>{w_ref}} {name[:w_mean]:>{w_mean}} {'diff':>{w_diff}} "
            f"{'95% CI of diff':>{w_ci}} {'change':>{w_change}} {'p':>{w_p}}")


def _cut(line: str, width: int) -> str:
    line = line.rstrip()
    return line if len(line) <= width else line[: width - 3] + "..."


def _lead(row: dict[str, Any], columns: Sequence[tuple[str, str, int]]) -> str:
    return f"{row['point']:>5} " + " ".join(f"{_value(row[c])[:w]:>{w}}" for c, _, w in columns)


def _lead_heading(columns: Sequence[tuple[str, str, int]]) -> str:
    return f"{'point':>5} " + " ".join(f"{h[:w]:>{w}}" for _, h, w in columns)


def _shown_metrics(res: SweepResults, metrics: Sequence[str] | None) -> list[str]:
    if metrics is not None:
        return [m for m in metrics if m in res.spec.metrics]
    return [m for m in SUMMARY_METRICS if m in res.spec.metrics] or list(res.spec.metrics[:1])


def _baseline_block(res: SweepResults, metric: str, columns: Sequence[tuple[str, str, int]]) -> list[str]:
    """``policy - baseline`` of ``metric`` at every point, one block per non-baseline policy."""
    table = res.table
    rows = table[table["metric"] == metric]
    base = rows[rows["policy"] == res.baseline].set_index("point")["mean"]
    lines: list[str] = []
    if len(res.scenario.policy_names) == 1:
        return _means_block(res, metric, rows, columns)
    for policy in [p for p in res.scenario.policy_names if p != res.baseline]:
        lines.append(f"{metric} ({METRIC_UNITS.get(metric, '')}): {policy} - {res.baseline} at each point "
                     f"(paired, {res.spec.replications} replications)")
        lines.append(_heading(_lead_heading(columns), res.baseline, policy))
        for row in rows[rows["policy"] == policy].to_dict("records"):
            sig = bool(row["diff_ci_low"] > 0 or row["diff_ci_high"] < 0) and bool(row["p_value"] < ALPHA)
            lines.append(_lead(row, columns) + " " + _number_cells(
                metric, base[row["point"]], row["mean"], row["diff"], row["diff_ci_low"], row["diff_ci_high"],
                row["rel_change"], row["p_value"], sig))
        lines.append("")
    return lines


def _means_block(res: SweepResults, metric: str, rows: pd.DataFrame,
                 columns: Sequence[tuple[str, str, int]]) -> list[str]:
    """A single-policy sweep: the mean of ``metric`` and its 95% CI at every point."""
    lines = [f"{metric} ({METRIC_UNITS.get(metric, '')}): {res.baseline} at each point "
             f"({res.spec.replications} replications)", f"{_lead_heading(columns)} {'mean':>9} {'95% CI':>20}"]
    scale = scale_of(metric)
    for row in rows.to_dict("records"):
        mean, low, high = (row[c] * scale for c in ("mean", "ci_low", "ci_high"))
        number = RowFormat([mean, low, high], 0.5 * (high - low))
        lines.append(f"{_lead(row, columns)} {number(mean):>9} {f'[{number(low)}, {number(high)}]':>20}")
    return [*lines, ""]


def format_point_comparison(res: SweepResults, frame: pd.DataFrame, title: str,
                            metrics: Sequence[str] | None = None, width: int = 100) -> str:
    """A :meth:`SweepResults.against` / :meth:`~SweepResults.compare` frame as text, per metric and policy."""
    columns = _value_columns(frame, res.spec.paths)
    runs_at = res.tasks.get("points_run", {})
    shared = [name for name, k in runs_at.items() if k == 1 and len(res.points) > 1]
    lines = [title]
    if shared:
        lines.append(", ".join(shared) + ": the same at every point (not touched by the swept levers), not shown")
    for metric in _shown_metrics(res, metrics):
        rows = frame[frame["metric"] == metric]
        for policy in [p for p in rows["policy"].drop_duplicates() if p not in shared]:
            part = rows[rows["policy"] == policy]
            paired = "paired" if bool(part["paired"].all()) else "not paired (per-point seeds): Welch"
            lines.append(f"{metric} ({METRIC_UNITS.get(metric, '')}), policy {policy}: point - reference ({paired})")
            lines.append(_heading(_lead_heading(columns) + "   ref", "reference", "point"))
            for row in part.to_dict("records"):
                lines.append(_lead(row, columns) + f" {row['reference']:>5} " + _number_cells(
                    metric, row["reference_mean"], row["point_mean"], row["diff"], row["ci_low"], row["ci_high"],
                    row["rel_change"], row["p_value"], bool(row["significant"])))
            lines.append("")
    return "\n".join(_cut(line, width) for line in lines).rstrip() + "\n"


def format_sweep(res: SweepResults, metrics: Sequence[str] | None = None, width: int = 100) -> str:
    """The sweep's printout: header, units, ``policy - baseline`` at every point, and the reference comparison.

    ``metrics``: the metrics shown (default: response rate and net credit burn, when swept).
    """
    spec = res.spec
    tasks = res.tasks
    head = [f"sweep of {res.scenario.name}: {len(res.points)} points x {len(res.scenario.policies)} policies x "
            f"{spec.replications} replications ({spec.method}), root seed {res.scenario.root_seed}, "
            + ("common random numbers" if spec.seeds == "common" else "per-point seeds")]
    if tasks.get("shared_policies"):
        runs_at = ", ".join(f"{name} at {tasks['points_run'][name]}" for name in tasks["shared_policies"])
        head.append(f"{tasks['run']} of {tasks['planned']} runs: {runs_at} of {len(res.points)} points (the same "
                    "inputs elsewhere: reused, not re-run)")
    head = [wrapped for line in head for wrapped in textwrap.wrap(line, width, subsequent_indent="  ")]
    head += [*SWEEP_UNITS_NOTE.splitlines(), ""]
    columns = _value_columns(res.point_frame, spec.paths)
    lines = [*head]
    for metric in _shown_metrics(res, metrics):
        lines += _baseline_block(res, metric, columns)
    text = "\n".join(_cut(line, width) for line in lines).rstrip() + "\n"
    if res.reference_table is not None:
        ref = spec.reference
        named = ref if isinstance(ref, int) else ", ".join(f"{k}={v}" for k, v in dict(ref or {}).items())
        text += "\n" + format_point_comparison(res, res.reference_table, f"against the reference ({named})",
                                               metrics, width)
    if "compare" in res.extra:
        a, b = (res.point(p) for p in res.extra["compare"])
        text += "\n" + format_point_comparison(res, res.compare(a.id, b.id), f"point {a.id} against point {b.id}",
                                               metrics, width)
    return text
