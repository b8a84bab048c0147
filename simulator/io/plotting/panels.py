"""The single-panel figures of one :class:`Results`: daily series over time, differences, subgroups, members.

Every function takes a :class:`~simulator.experiments.experiment.Results`, draws on ``ax`` if
given (else on a new figure), and returns the figure.  Bands and error bars are 95% Student-t
intervals over replications.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from simulator.experiments.statistics import t_interval
from simulator.io.plotting.canvas import add_legend, date_axis, figure_and_axes, style_axes
from simulator.io.plotting.series import (
    RATE_PARTS,
    ROLLING_DAYS,
    Band,
    bin_labels,
    daily_bands,
    dates,
    group_stats,
    has_series,
    member_frame,
    policy_colors,
    policy_order,
)
from simulator.io.tables import METRIC_LABELS, METRIC_UNITS, RATE_METRICS, RowFormat, scale_of

if TYPE_CHECKING:
    from simulator.experiments.experiment import Results

BREAKDOWN_LABELS: dict[str, str] = {
    "personalization_band": "personalization band", "seat_type": "seat type", "behaviour": "behaviour",
    "group": "recruiter group",
}
"""Recruiter subgroupings (``by``) in plain words."""

BREAKDOWN_METRIC_AXES: dict[str, str] = {
    "response_rate": "response rate (%)",
    "net_credit_burn_per_recruiter": "net credits burned per recruiter (credits)",
    "sent_per_recruiter": "InMails sent per recruiter",
    "acceptance_rate": "acceptance rate (%)",
}
"""Axis label of a breakdown metric."""

MEMBER_QUANTITIES: dict[str, str] = {"received": "InMails received", "unanswered": "InMails left unanswered"}
"""``member_distribution`` quantities and their axis labels."""


# --------------------------------------------------------------------------- drawing helpers


def whiskers(estimate: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """The ``xerr``/``yerr`` of an interval around ``estimate``: never negative, 0 where unknown.

    An interval of fewer than two replications is NaN (no whisker is drawn); a bound a hair on the
    wrong side of its estimate (round-off) gives a zero-length whisker rather than matplotlib's
    "must not contain negative values" error.
    """
    est = np.asarray(estimate, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        err = np.vstack([np.atleast_1d(est - np.asarray(low, dtype=np.float64)),
                         np.atleast_1d(np.asarray(high, dtype=np.float64) - est)])
    return np.where(np.isfinite(err) & (err > 0), err, 0.0)


def _draw_bands(ax: Axes, results: Results, bands: dict[str, Band], *, suffix: str = "",
                linestyle: str = "-") -> None:
    """Each policy's mean line and its 95% band (when there is one) over calendar dates."""
    colors = policy_colors(results)
    for policy, band in bands.items():
        x = dates(results, band.day)
        if np.isfinite(band.low).any():
            ax.fill_between(x, band.low, band.high, color=colors[policy], alpha=0.18, linewidth=0,
                            label=f"_{policy}{suffix} 95% CI", gid=f"band:{policy}{suffix}")
        ax.plot(x, band.mean, color=colors[policy], linewidth=1.8, linestyle=linestyle, label=f"{policy}{suffix}",
                gid=f"mean:{policy}{suffix}")
    date_axis(ax)


def _no_series(ax: Axes) -> None:
    """An empty panel that says why it is empty."""
    ax.annotate("daily series not recorded in this run\n(run without --no-timeseries to see it)", (0.5, 0.5),
                xycoords="axes fraction", ha="center", va="center", fontsize=9, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def _timeseries(results: Results, ax: Axes | None, metric: str, title: str, ylabel: str, **band: Any) -> Figure:
    """One daily series per policy with its band (``band``: the options of :func:`daily_bands`)."""
    fig, ax = figure_and_axes(ax)
    needed = RATE_PARTS.get(metric, (metric,))
    if all(has_series(results, series) for series in needed):
        _draw_bands(ax, results, daily_bands(results, metric, **band))
    else:
        _no_series(ax)
    style_axes(ax, title, ylabel)
    add_legend(ax)
    return fig


def group_slots(results: Results, frame: pd.DataFrame
                ) -> tuple[list[str], list[tuple[str, pd.DataFrame, np.ndarray]]]:
    """Where per-group values go: the labels in order, and per policy its rows (indexed by label, in
    label order) and x positions - policies side by side within a label."""
    labels = list(dict.fromkeys(frame["label"]))
    policies = [p for p in policy_order(results) if p in set(frame["policy"])]
    width = 0.7 / max(len(policies), 1)
    return labels, [(policy, frame[frame["policy"] == policy].set_index("label").reindex(labels),
                     np.arange(len(labels)) + (j - (len(policies) - 1) / 2) * width)
                    for j, policy in enumerate(policies)]


def group_errorbars(ax: Axes, results: Results, stats_frame: pd.DataFrame, scale: float = 1.0,
                    marks: dict[tuple[str, str], bool] | None = None) -> list[str]:
    """Dots with 95% CI per (label, policy), policies side by side within a label; returns the labels."""
    colors = policy_colors(results)
    labels, slots = group_slots(results, stats_frame)
    for policy, rows, x in slots:
        mean = rows["mean"].to_numpy(dtype=np.float64) * scale
        low = rows["ci_low"].to_numpy(dtype=np.float64) * scale
        high = rows["ci_high"].to_numpy(dtype=np.float64) * scale
        ax.errorbar(x, mean, yerr=whiskers(mean, low, high), fmt="o", color=colors[policy], markersize=6, capsize=3,
                    linewidth=1.4, label=policy, gid=f"groups:{policy}")
        if marks:
            for at, label, top in zip(x, labels, np.where(np.isfinite(high), high, mean), strict=True):
                if marks.get((label, policy)):
                    ax.annotate("*", (at, top), xytext=(0, 2), textcoords="offset points", ha="center",
                                va="bottom", color=colors[policy], fontsize=12, fontweight="bold")
    ax.set_xticks(np.arange(len(labels)), [short_label(label) for label in labels])
    ax.set_xlim(-0.6, len(labels) - 0.4)
    if marks:  # room for the stars above the highest interval
        bottom, top = ax.get_ylim()
        ax.set_ylim(bottom, top + 0.08 * (top - bottom))
    return labels


def significance_marks(comparison: pd.DataFrame, by: str, metric: str) -> dict[tuple[str, str], bool]:
    """(label, policy) -> whether the paired difference of ``metric`` by ``by`` is significant."""
    compared = comparison[(comparison["by"] == by) & (comparison["metric"] == metric)]
    return {(row.label, row.policy): bool(row.significant) for row in compared.itertuples()}


def short_label(label: str) -> str:
    """A subgroup label as a tick: spaces for underscores, wrapped at 14 characters."""
    return textwrap.fill(str(label).replace("professional_services", "prof. services").replace("_", " "), 14)


# --------------------------------------------------------------------------- panels


def response_rate(results: Results, ax: Axes | None = None, *, window: int = ROLLING_DAYS) -> Figure:
    """Response rate of the InMails sent each day ((accepted + declined) / sent, %), per policy, with a 95% band."""
    return _timeseries(results, ax, "response_rate", f"Response rate ({window}-day rolling)",
                       "response rate of InMails sent (%)", window=window, scale=100.0)


def acceptance_rate(results: Results, ax: Axes | None = None, *, window: int = ROLLING_DAYS) -> Figure:
    """Acceptance rate of the InMails sent each day (accepted / sent, %), per policy, with a 95% band."""
    return _timeseries(results, ax, "acceptance_rate", f"Acceptance rate ({window}-day rolling)",
                       "acceptance rate of InMails sent (%)", window=window, scale=100.0)


def credit_balance(results: Results, ax: Axes | None = None) -> Figure:
    """Unspent credits at the end of each day, per recruiter, per policy, with a 95% band."""
    return _timeseries(results, ax, "balance", "Credit balance", "unspent credits per recruiter (credits)",
                       per_recruiter=True)


def net_credit_burn(results: Results, ax: Axes | None = None, *, cumulative: bool = True) -> Figure:
    """Credits spent minus credits refunded, per recruiter (cumulative since the start by default)."""
    title = "Net credit burn, cumulative" if cumulative else "Net credit burn per day"
    unit = "credits per recruiter" if cumulative else "credits per recruiter per day"
    return _timeseries(results, ax, "net_credit_burn", title, f"spent - refunded ({unit})",
                       cumulative=cumulative, per_recruiter=True)


def member_fatigue(results: Results, ax: Axes | None = None) -> Figure:
    """Mean member fatigue at the end of each day (all members), per policy, with a 95% band."""
    return _timeseries(results, ax, "mean_member_fatigue", "Member fatigue",
                       "mean fatigue per member (InMail weight)")


def threshold_events(results: Results, ax: Axes | None = None) -> Figure:
    """Cumulative threshold warnings (solid) and Improvement Periods started (dashed), per policy."""
    fig, ax = figure_and_axes(ax)
    if has_series(results, "warnings") and has_series(results, "improvement_periods"):
        _draw_bands(ax, results, daily_bands(results, "warnings", cumulative=True), suffix=": warnings")
        _draw_bands(ax, results, daily_bands(results, "improvement_periods", cumulative=True),
                    suffix=": Improvement Periods", linestyle="--")
    else:
        _no_series(ax)
    style_axes(ax, "Threshold warnings and Improvement Periods", "cumulative count (recruiters' seats)")
    add_legend(ax)
    return fig


def in_improvement(results: Results, ax: Axes | None = None) -> Figure:
    """Recruiters whose bulk InMail is disabled (in an Improvement Period) each day, per policy."""
    return _timeseries(results, ax, "in_improvement", "Recruiters in an Improvement Period",
                       "recruiters (bulk InMail disabled)")


def differences(results: Results, ax: Axes | None = None, *, metrics: Sequence[str] | None = None) -> Figure:
    """Forest plot: relative change (policy - baseline) / baseline, %, with its 95% paired CI, every metric.

    Relative change puts metrics of every scale on one axis; the axis is linear within +/-10% and
    logarithmic beyond.  Filled dots are significant at 5%.  With one policy compared, the
    absolute difference and its CI, in the metric's unit, are written at the right.  A metric
    whose baseline mean is 0 has no relative change: only its absolute difference is written.
    """
    comparison = results.comparison
    names = list(metrics or dict.fromkeys(comparison["metric"]))
    fig, ax = figure_and_axes(ax, (10, 0.3 * len(names) + 1.6))
    colors = policy_colors(results)
    others = [p for p in policy_order(results) if p != results.baseline and p in set(comparison["policy"])]
    step = 0.6 / max(len(others), 1)
    rows_y = np.arange(len(names))[::-1].astype(np.float64)
    extent = [0.0]
    for j, policy in enumerate(others):
        rows = comparison[comparison["policy"] == policy].set_index("metric").reindex(names)
        y = rows_y - (j - (len(others) - 1) / 2) * step
        rel = rows["rel_change"].to_numpy(dtype=np.float64) * 100
        low = rows["rel_ci_low"].to_numpy(dtype=np.float64) * 100
        high = rows["rel_ci_high"].to_numpy(dtype=np.float64) * 100
        extent += [value for value in np.concatenate([low, high, rel]) if math.isfinite(value)]
        sig = rows["significant"].fillna(False).to_numpy(dtype=bool)
        ax.errorbar(rel, y, xerr=whiskers(rel, low, high), fmt="none", ecolor=colors[policy], elinewidth=1.6,
                    capsize=3, gid=f"ci:{policy}")
        ax.scatter(rel[sig], y[sig], color=colors[policy], s=36, zorder=3,
                   label=f"{policy} - {results.baseline}: significant", gid=f"sig:{policy}")
        ax.scatter(rel[~sig], y[~sig], facecolor="white", edgecolor=colors[policy], s=36, zorder=3,
                   linewidth=1.4, label=f"{policy} - {results.baseline}: not significant", gid=f"nonsig:{policy}")
        for row_y, rel_change, row in zip(y, rel, rows.itertuples(), strict=True):
            if not math.isfinite(rel_change):
                ax.annotate("baseline is 0: see the difference" if len(others) == 1 else "baseline is 0", (0, row_y),
                            xytext=(4, 0), textcoords="offset points", va="center", fontsize=8, color="0.4")
            if len(others) == 1:
                ax.annotate(_abs_diff_text(str(row.Index), row), (1.0, row_y), xycoords=("axes fraction", "data"),
                            xytext=(8, 0), textcoords="offset points", va="center", fontsize=8.5,
                            color="0.15" if bool(row.significant) else "0.5")
    ax.axvline(0, color="0.3", linewidth=0.9)
    ax.set_xscale("symlog", linthresh=10, linscale=1.0)
    ax.set_xlim(_symlog_limit(min(extent), -1), _symlog_limit(max(extent), 1))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:+.0f}%" if value else "0"))
    ax.set_yticks(rows_y, [_metric_label(metric) for metric in names])
    ax.set_ylim(-0.7, len(names) - 0.3)
    style_axes(ax, f"Paired differences against {results.baseline}", "",
               "relative change (%, 95% CI; linear within ±10%, log scale beyond)")
    ax.grid(False, axis="y")
    ax.legend(frameon=False, fontsize=9, loc="upper center", bbox_to_anchor=(0.5, -0.07 * 22 / (len(names) + 2)),
              ncols=2)
    if len(others) == 1:
        ax.annotate("difference [95% CI]", (1.0, 1.0), xycoords="axes fraction", xytext=(8, 4),
                    textcoords="offset points", fontsize=9, fontweight="bold", va="bottom")
    return fig


def _symlog_limit(value: float, side: int) -> float:
    """The axis end on ``side`` (-1 left, +1 right) a little beyond ``value`` on a symlog axis with linthresh 10."""
    if value * side <= 10:
        return 15.0 * side
    return max(value * 1.6, -100.0) if value >= -100 else value * 1.6


def _metric_label(metric: str) -> str:
    """A metric in plain words, with ``(%)`` for a rate."""
    words = METRIC_LABELS.get(metric, metric.replace("_", " "))
    return f"{words} (%)" if metric in RATE_METRICS else words


def _abs_diff_text(metric: str, row: Any) -> str:
    """The absolute difference of a comparison row and its CI, in the metric's unit (rates in pp)."""
    scale = scale_of(metric)
    diff, low, high = row.diff * scale, row.ci_low * scale, row.ci_high * scale
    number = RowFormat([diff, low, high], 0.5 * (row.ci_high - row.ci_low) * scale)
    unit = "pp" if metric in RATE_METRICS else METRIC_UNITS.get(metric, "")
    unit = "" if unit in ("count", "index", "%") else f" {unit}"
    return f"{number(diff, True)}{unit} {number.interval(low, high)}"


def breakdown(results: Results, by: str = "personalization_band", metric: str = "response_rate",
              ax: Axes | None = None) -> Figure:
    """Winners and losers: one breakdown metric per recruiter subgroup and policy, mean with 95% CI.

    ``by``: ``personalization_band``, ``seat_type``, ``behaviour`` or ``group``; ``metric``: a
    breakdown metric, e.g. ``response_rate`` or ``net_credit_burn_per_recruiter``.  A star marks a
    subgroup whose paired difference against the baseline is significant at 5%.
    """
    breakdowns = results.breakdowns
    rows = breakdowns[(breakdowns["by"] == by) & (breakdowns["metric"] == metric)]
    if rows.empty:
        raise ValueError(f"no breakdown {metric!r} by {by!r} in these results")
    marks = significance_marks(results.breakdown_comparison, by, metric)
    fig, ax = figure_and_axes(ax)
    scale = 100.0 if metric in RATE_METRICS else 1.0
    group_errorbars(ax, results, rows, scale, marks)
    ylabel = BREAKDOWN_METRIC_AXES.get(metric, metric.replace("_", " "))
    style_axes(ax, f"{ylabel.split(' (')[0].capitalize()} by {BREAKDOWN_LABELS.get(by, by)}", ylabel)
    if metric not in RATE_METRICS:
        ax.set_ylim(bottom=min(0.0, ax.get_ylim()[0]))
    ax.grid(False, axis="x")
    add_legend(ax)
    return fig


def member_distribution(results: Results, quantity: str = "received", ax: Axes | None = None) -> Figure:
    """How InMails are spread over active members: share of active members per count bin, per policy.

    ``quantity``: ``received`` or ``unanswered``.  Needs the per-replication histogram
    (``results.member_distribution``): bars are the mean share over replications, whiskers its
    95% CI.  Without it (an old run folder), the mean per active member with its 95% CI is drawn
    and the axis label says that the distribution was not recorded.
    """
    if quantity not in MEMBER_QUANTITIES:
        raise ValueError(f"quantity must be one of {', '.join(MEMBER_QUANTITIES)}, got {quantity!r}")
    fig, ax = figure_and_axes(ax)
    frame = member_frame(results)
    what = MEMBER_QUANTITIES[quantity]
    colors = policy_colors(results)
    if frame is None or quantity not in set(frame["quantity"]):
        metric = {"received": "inmails_per_active_member", "unanswered": "unanswered_per_active_member"}[quantity]
        summary = results.summary[results.summary["metric"] == metric]
        policies = [p for p in policy_order(results) if p in set(summary["policy"])]
        for i, policy in enumerate(policies):
            row = summary[summary["policy"] == policy].iloc[0]
            err = whiskers(np.array([row["mean"]]), np.array([row["ci_low"]]), np.array([row["ci_high"]]))
            ax.errorbar([i], [row["mean"]], yerr=err, fmt="o", color=colors[policy], markersize=7, capsize=4,
                        label=policy, gid=f"member_mean:{policy}")
        ax.set_xticks(range(len(policies)), policies)
        ax.set_xlim(-0.6, len(policies) - 0.4)
        style_axes(ax, f"{what} per active member", f"{what} per active member (mean)",
                   "mean over the run (the per-member distribution was not recorded)")
        return fig
    rows = frame[frame["quantity"] == quantity]
    edges = sorted(int(edge) for edge in rows["bin"].unique())
    policies = [p for p in policy_order(results) if p in set(rows["policy"])]
    width = 0.8 / max(len(policies), 1)
    for j, policy in enumerate(policies):
        histogram = rows[rows["policy"] == policy].pivot_table(index="replication", columns="bin", values="members",
                                                               aggfunc="sum").reindex(columns=edges).fillna(0.0)
        counts = histogram.to_numpy(dtype=np.float64)
        totals = counts.sum(axis=1, keepdims=True)
        share = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0) * 100
        mean, low, high = t_interval(share)
        x = np.arange(len(edges)) + (j - (len(policies) - 1) / 2) * width
        ax.bar(x, mean, width=width, color=colors[policy], alpha=0.85, label=policy, gid=f"hist:{policy}")
        ax.errorbar(x, mean, yerr=whiskers(mean, low, high), fmt="none",
                    ecolor="0.2", elinewidth=0.9, capsize=2)
    ax.set_xticks(np.arange(len(edges)), bin_labels(edges), rotation=45 if len(edges) > 8 else 0)
    style_axes(ax, f"{what} per active member", "share of active members (%)", f"{what} over the run")
    ax.grid(False, axis="x")
    add_legend(ax)
    return fig


def threshold_share(results: Results, by: str = "group", ax: Axes | None = None, *,
                    metric: str = "warnings") -> Figure:
    """Share of recruiters warned (``metric="warnings"``, %), or Improvement Periods per 100 recruiters.

    A warning is given once per seat, so warnings / recruiters is the share of recruiters the
    threshold caught at all; Improvement Periods (extensions count again) are per 100 recruiters.
    """
    if metric not in ("warnings", "improvement_periods"):
        raise ValueError(f"metric must be 'warnings' or 'improvement_periods', got {metric!r}")
    frame = group_stats(results, by,
                        lambda rows: 100.0 * rows[metric] / rows["recruiters"].where(rows["recruiters"] > 0))
    fig, ax = figure_and_axes(ax)
    group_errorbars(ax, results, frame)
    if metric == "warnings":
        style_axes(ax, f"Recruiters warned, by {BREAKDOWN_LABELS.get(by, by)}", "recruiters warned (%)")
    else:
        style_axes(ax, f"Improvement Periods, by {BREAKDOWN_LABELS.get(by, by)}",
                   "Improvement Periods per 100 recruiters")
    ax.set_ylim(bottom=0)
    ax.grid(False, axis="x")
    if len(ax.get_xticks()) > 4:
        ax.tick_params(axis="x", labelrotation=20)
    add_legend(ax)
    return fig
