"""Figures of experiment results - the only module that imports matplotlib.

Every plot function takes a :class:`~simulator.experiments.experiment.Results`, draws on ``ax`` if given
(else on a new figure), and returns the figure.  Figures are made with
:class:`matplotlib.figure.Figure`, not pyplot: nothing global is touched, nothing stays open,
no display is needed (rendering uses Agg), and a notebook shows the returned figure.  A policy
has the same colour in every figure (scenario order, baseline first).  Bands and error bars are
95% Student-t intervals over replications.

Notebook use: ``results.plot.response_rate()``, ``results.plot.winners_losers()``, ...
(:class:`ResultsPlots`); files: :func:`write_figures` (what ``inmail-sim run`` does).
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter
from scipy import stats

from simulator.io.tables import METRIC_LABELS, METRIC_UNITS, RATE_METRICS

if TYPE_CHECKING:
    from simulator.experiments.experiment import Results

PALETTE: tuple[str, ...] = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
"""Okabe-Ito colours (readable by colour-blind readers); the baseline takes the first."""

CONFIDENCE = 0.95
ROLLING_DAYS = 7
"""Daily rates are shown as 7-day rolling ratios (sums of responses / sums of sent): weekends send less."""

BREAKDOWN_PANELS: tuple[str, ...] = ("personalization_band", "seat_type", "behaviour")
BREAKDOWN_LABELS: dict[str, str] = {
    "personalization_band": "personalization band", "seat_type": "seat type", "behaviour": "behaviour",
    "group": "recruiter group",
}
BREAKDOWN_METRIC_AXES: dict[str, str] = {
    "response_rate": "response rate (%)",
    "net_credit_burn_per_recruiter": "net credits burned per recruiter (credits)",
    "sent_per_recruiter": "InMails sent per recruiter",
    "acceptance_rate": "acceptance rate (%)",
}

MEMBER_QUANTITIES: dict[str, str] = {"received": "InMails received", "unanswered": "InMails left unanswered"}
"""``member_distribution`` quantities and their axis labels."""


# --------------------------------------------------------------------------- data


def policy_order(results: Results) -> list[str]:
    """The scenario's policies (baseline first) that have data."""
    present = set(results.replications["policy"])
    return [p for p in results.scenario.policy_names if p in present]


def policy_colors(results: Results) -> dict[str, str]:
    """One colour per policy, the same in every figure of these results."""
    return {p: PALETTE[i % len(PALETTE)] for i, p in enumerate(results.scenario.policy_names)}


def t_interval(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and 95% t-interval over axis 0 (replications), NaN-aware; NaN bounds when n < 2."""
    values = np.asarray(values, dtype=np.float64)
    n = np.sum(np.isfinite(values), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nanmean(values, axis=0) if values.size else np.full(values.shape[1:], np.nan)
        sd = np.nanstd(values, axis=0, ddof=1) if values.shape[0] > 1 else np.full(mean.shape, np.nan)
        q = stats.t.ppf(0.5 + CONFIDENCE / 2, np.where(n >= 2, n - 1, np.nan))
        hw = q * sd / np.sqrt(n)
    return mean, mean - hw, mean + hw


def _wide(results: Results, metric: str) -> dict[str, np.ndarray]:
    """policy -> array [replication, day] of one daily series."""
    ts = results.timeseries
    sub = ts[ts["metric"] == metric]
    if sub.empty:
        raise ValueError(f"no daily series {metric!r} in these results")
    out: dict[str, np.ndarray] = {}
    for pol in policy_order(results):
        p = sub[sub["policy"] == pol]
        if p.empty:
            continue
        out[pol] = p.pivot_table(index="replication", columns="day", values="value", aggfunc="first").to_numpy(
            dtype=np.float64)
    return out


def _rolling_sum(a: np.ndarray, window: int) -> np.ndarray:
    """Trailing sum over ``window`` days along axis 1 (shorter at the start)."""
    if window <= 1:
        return a
    c = np.cumsum(np.nan_to_num(a), axis=1)
    out = c.copy()
    out[:, window:] = c[:, window:] - c[:, :-window]
    return out


@dataclass(frozen=True)
class Band:
    """A daily series per policy: mean over replications and its 95% band."""

    day: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    n: int


RATE_PARTS: dict[str, tuple[str, str]] = {
    "response_rate": ("responses", "sent"),
    "acceptance_rate": ("accepted", "sent"),
}


def daily_bands(results: Results, metric: str, *, window: int = 1, cumulative: bool = False,
                per_recruiter: bool = False, scale: float = 1.0) -> dict[str, Band]:
    """policy -> :class:`Band` of a daily series.

    Rates (``response_rate``, ``acceptance_rate``) are ratios of ``window``-day sums per
    replication; ``cumulative`` sums over days first; ``per_recruiter`` divides by the number of
    recruiters in the market; ``scale`` multiplies at the end (100 for %).
    """
    if metric in RATE_PARTS:
        top, bottom = (_wide(results, m) for m in RATE_PARTS[metric])
        data = {}
        for pol, num in top.items():
            den = _rolling_sum(bottom[pol], window)
            with np.errstate(invalid="ignore", divide="ignore"):
                data[pol] = np.where(den > 0, _rolling_sum(num, window) / den, np.nan)
    else:
        data = _wide(results, metric)
    recruiters = max(results.scenario.market.recruiter_count, 1)
    out: dict[str, Band] = {}
    for pol, a in data.items():
        if cumulative:
            a = np.cumsum(np.nan_to_num(a), axis=1)
        if per_recruiter:
            a = a / recruiters
        mean, lo, hi = t_interval(a * scale)
        if a.size and np.nanmin(a) >= 0:  # a count or a rate: the band stays above 0
            lo = np.maximum(lo, 0.0)
        out[pol] = Band(np.arange(a.shape[1]), mean, lo, hi, a.shape[0])
    return out


def _dates(results: Results, days: np.ndarray) -> np.ndarray:
    start = np.datetime64(results.scenario.run.start_date, "D")
    return start + days.astype("timedelta64[D]")


def group_stats(results: Results, by: str, value: Callable[[pd.DataFrame], pd.Series]) -> pd.DataFrame:
    """Per recruiter subgroup and policy: mean and 95% CI over replications of ``value(rows)``.

    ``value`` maps the per-replication breakdown rows (``breakdown_replications``) to one number
    per row, e.g. ``lambda r: r["warnings"] / r["recruiters"]``.  Columns: label, policy, mean,
    ci_low, ci_high, n.
    """
    br = results.breakdown_replications
    sub = br[br["by"] == by].copy()
    sub["_v"] = value(sub).astype(np.float64)
    rows = []
    for (label, pol), g in sub.groupby(["label", "policy"], sort=False):
        mean, lo, hi = t_interval(g["_v"].to_numpy()[:, None])
        rows.append({"label": label, "policy": pol, "mean": mean[0], "ci_low": lo[0], "ci_high": hi[0],
                     "n": len(g)})
    return pd.DataFrame(rows, columns=["label", "policy", "mean", "ci_low", "ci_high", "n"])


def member_frame(results: Results) -> pd.DataFrame | None:
    """The per-replication histogram of active members (policy, replication, quantity, bin, members), if recorded.

    ``results.member_distribution`` (``member_distribution.csv`` of a run folder); ``None`` when
    it is empty (results loaded from a run folder written before the histograms were recorded).
    """
    frame = results.member_distribution
    return None if frame.empty else frame


def bin_labels(edges: Sequence[int]) -> list[str]:
    """Labels of count bins given their lower edges: ``0, 1, 2, 3-4, 5-9, ..., 500+``."""
    edges = [int(e) for e in edges]
    out = []
    for i, e in enumerate(edges):
        if i + 1 == len(edges):
            out.append(f"{e}+")
        elif edges[i + 1] == e + 1:
            out.append(str(e))
        else:
            out.append(f"{e}-{edges[i + 1] - 1}")
    return out


# --------------------------------------------------------------------------- drawing helpers


class ReportFigure(Figure):
    """A matplotlib ``Figure`` that shows itself in Jupyter as a PNG, with no pyplot state.

    The figures are made without pyplot (nothing accumulates in scripts or long sweeps), so no
    backend registers them with IPython; ``_repr_png_`` lets a notebook display the figure a
    cell returns, with or without ``%matplotlib inline``.
    """

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.savefig(buf, format="png", dpi=100)
        return buf.getvalue()


def _axes(ax: Axes | None, size: tuple[float, float] = (6.4, 4.0)) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax  # type: ignore[return-value]
    fig = ReportFigure(figsize=size, layout="constrained")
    return fig, fig.add_subplot()


def _style(ax: Axes, title: str, ylabel: str, xlabel: str | None = None) -> None:
    ax.set_title(title, fontsize=11, loc="left")
    ax.set_ylabel(ylabel)
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    ax.grid(True, alpha=0.3, linewidth=0.6)
    ax.spines[["top", "right"]].set_visible(False)


def _date_axis(ax: Axes) -> None:
    loc = mdates.AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))


def _draw_bands(ax: Axes, results: Results, bands: dict[str, Band], *, suffix: str = "",
                linestyle: str = "-") -> None:
    colors = policy_colors(results)
    for pol, b in bands.items():
        x = _dates(results, b.day)
        if np.isfinite(b.low).any():
            ax.fill_between(x, b.low, b.high, color=colors[pol], alpha=0.18, linewidth=0,
                            label=f"_{pol}{suffix} 95% CI", gid=f"band:{pol}{suffix}")
        ax.plot(x, b.mean, color=colors[pol], linewidth=1.8, linestyle=linestyle, label=f"{pol}{suffix}",
                gid=f"mean:{pol}{suffix}")
    _date_axis(ax)


def _legend(ax: Axes, **kwargs: Any) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(frameon=False, fontsize=9, **kwargs)


def has_series(results: Results, metric: str) -> bool:
    """Whether the daily series ``metric`` was kept (a run with ``--no-timeseries`` keeps none)."""
    ts = results.timeseries
    return bool(len(ts)) and bool((ts["metric"] == metric).any())


def _no_series(ax: Axes) -> None:
    ax.annotate("daily series not recorded in this run\n(run without --no-timeseries to see it)", (0.5, 0.5),
                xycoords="axes fraction", ha="center", va="center", fontsize=9, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def _timeseries(results: Results, ax: Axes | None, metric: str, title: str, ylabel: str, **band: Any) -> Figure:
    fig, ax = _axes(ax)
    needed = RATE_PARTS.get(metric, (metric,))
    if all(has_series(results, m) for m in needed):
        _draw_bands(ax, results, daily_bands(results, metric, **band))
    else:
        _no_series(ax)
    _style(ax, title, ylabel)
    _legend(ax)
    return fig


def _group_errorbars(ax: Axes, results: Results, stats_frame: pd.DataFrame, scale: float = 1.0,
                     marks: dict[tuple[str, str], bool] | None = None) -> list[str]:
    """Dots with 95% CI per (label, policy), policies side by side within a label; returns the labels."""
    colors = policy_colors(results)
    labels = list(dict.fromkeys(stats_frame["label"]))
    pols = [p for p in policy_order(results) if p in set(stats_frame["policy"])]
    width = 0.7 / max(len(pols), 1)
    for j, pol in enumerate(pols):
        s = stats_frame[stats_frame["policy"] == pol].set_index("label").reindex(labels)
        x = np.arange(len(labels)) + (j - (len(pols) - 1) / 2) * width
        mean = s["mean"].to_numpy(dtype=np.float64) * scale
        lo = s["ci_low"].to_numpy(dtype=np.float64) * scale
        hi = s["ci_high"].to_numpy(dtype=np.float64) * scale
        err = np.vstack([np.nan_to_num(mean - lo), np.nan_to_num(hi - mean)])
        ax.errorbar(x, mean, yerr=err, fmt="o", color=colors[pol], markersize=6, capsize=3, linewidth=1.4,
                    label=pol, gid=f"groups:{pol}")
        if marks:
            for xi, label, top in zip(x, labels, np.where(np.isfinite(hi), hi, mean), strict=True):
                if marks.get((label, pol)):
                    ax.annotate("*", (xi, top), xytext=(0, 2), textcoords="offset points", ha="center",
                                va="bottom", color=colors[pol], fontsize=12, fontweight="bold")
    ax.set_xticks(np.arange(len(labels)), [_short_label(lb) for lb in labels])
    ax.set_xlim(-0.6, len(labels) - 0.4)
    if marks:  # room for the stars above the highest interval
        lo, hi = ax.get_ylim()
        ax.set_ylim(lo, hi + 0.08 * (hi - lo))
    return labels


def _short_label(label: str) -> str:
    return textwrap.fill(str(label).replace("professional_services", "prof. services").replace("_", " "), 14)


# --------------------------------------------------------------------------- single-panel plots


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
    fig, ax = _axes(ax)
    if has_series(results, "warnings") and has_series(results, "improvement_periods"):
        _draw_bands(ax, results, daily_bands(results, "warnings", cumulative=True), suffix=": warnings")
        _draw_bands(ax, results, daily_bands(results, "improvement_periods", cumulative=True),
                    suffix=": Improvement Periods", linestyle="--")
    else:
        _no_series(ax)
    _style(ax, "Threshold warnings and Improvement Periods", "cumulative count (recruiters' seats)")
    _legend(ax)
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
    comp = results.comparison
    names = list(metrics or dict.fromkeys(comp["metric"]))
    fig, ax = _axes(ax, (10, 0.3 * len(names) + 1.6))
    colors = policy_colors(results)
    others = [p for p in policy_order(results) if p != results.baseline and p in set(comp["policy"])]
    step = 0.6 / max(len(others), 1)
    y0 = np.arange(len(names))[::-1].astype(np.float64)
    extent = [0.0]
    for j, pol in enumerate(others):
        c = comp[comp["policy"] == pol].set_index("metric").reindex(names)
        y = y0 - (j - (len(others) - 1) / 2) * step
        rel = c["rel_change"].to_numpy(dtype=np.float64) * 100
        lo = c["rel_ci_low"].to_numpy(dtype=np.float64) * 100
        hi = c["rel_ci_high"].to_numpy(dtype=np.float64) * 100
        extent += [v for v in np.concatenate([lo, hi, rel]) if math.isfinite(v)]
        sig = c["significant"].fillna(False).to_numpy(dtype=bool)
        err = np.vstack([np.nan_to_num(rel - lo), np.nan_to_num(hi - rel)])
        ax.errorbar(rel, y, xerr=err, fmt="none", ecolor=colors[pol], elinewidth=1.6, capsize=3,
                    gid=f"ci:{pol}")
        ax.scatter(rel[sig], y[sig], color=colors[pol], s=36, zorder=3,
                   label=f"{pol} - {results.baseline}: significant", gid=f"sig:{pol}")
        ax.scatter(rel[~sig], y[~sig], facecolor="white", edgecolor=colors[pol], s=36, zorder=3,
                   linewidth=1.4, label=f"{pol} - {results.baseline}: not significant", gid=f"nonsig:{pol}")
        for yi, r, row in zip(y, rel, c.itertuples(), strict=True):
            if not math.isfinite(r):
                ax.annotate("baseline is 0: see the difference" if len(others) == 1 else "baseline is 0", (0, yi),
                            xytext=(4, 0), textcoords="offset points", va="center", fontsize=8, color="0.4")
            if len(others) == 1:
                ax.annotate(_abs_diff_text(str(row.Index), row), (1.0, yi), xycoords=("axes fraction", "data"),
                            xytext=(8, 0), textcoords="offset points", va="center", fontsize=8.5,
                            color="0.15" if bool(row.significant) else "0.5")
    ax.axvline(0, color="0.3", linewidth=0.9)
    ax.set_xscale("symlog", linthresh=10, linscale=1.0)
    ax.set_xlim(_symlog_limit(min(extent), -1), _symlog_limit(max(extent), 1))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:+.0f}%" if v else "0"))
    ax.set_yticks(y0, [_metric_label(m) for m in names])
    ax.set_ylim(-0.7, len(names) - 0.3)
    _style(ax, f"Paired differences against {results.baseline}", "",
           "relative change (%, 95% CI; linear within ±10%, log scale beyond)")
    ax.grid(False, axis="y")
    ax.legend(frameon=False, fontsize=9, loc="upper center", bbox_to_anchor=(0.5, -0.07 * 22 / (len(names) + 2)),
              ncols=2)
    if len(others) == 1:
        ax.annotate("difference [95% CI]", (1.0, 1.0), xycoords="axes fraction", xytext=(8, 4),
                    textcoords="offset points", fontsize=9, fontweight="bold", va="bottom")
    return fig


def _symlog_limit(v: float, side: int) -> float:
    """The axis end on ``side`` (-1 left, +1 right) a little beyond ``v`` on a symlog axis with linthresh 10."""
    if v * side <= 10:
        return 15.0 * side
    return max(v * 1.6, -100.0) if v >= -100 else v * 1.6


def _metric_label(metric: str) -> str:
    words = METRIC_LABELS.get(metric, metric.replace("_", " "))
    return f"{words} (%)" if metric in RATE_METRICS else words


def _abs_diff_text(metric: str, row: Any) -> str:
    from simulator.io.tables import RowFormat, scale_of

    k = scale_of(metric)
    f = RowFormat([row.diff * k, row.ci_low * k, row.ci_high * k], 0.5 * (row.ci_high - row.ci_low) * k)
    unit = "pp" if metric in RATE_METRICS else METRIC_UNITS.get(metric, "")
    unit = "" if unit in ("count", "index", "%") else f" {unit}"
    return f"{f(row.diff * k, True)}{unit} {f.interval(row.ci_low * k, row.ci_high * k)}"


def breakdown(results: Results, by: str = "personalization_band", metric: str = "response_rate",
              ax: Axes | None = None) -> Figure:
    """Winners and losers: one breakdown metric per recruiter subgroup and policy, mean with 95% CI.

    ``by``: ``personalization_band``, ``seat_type``, ``behaviour`` or ``group``; ``metric``: a
    breakdown metric, e.g. ``response_rate`` or ``net_credit_burn_per_recruiter``.  A star marks a
    subgroup whose paired difference against the baseline is significant at 5%.
    """
    bd = results.breakdowns
    sub = bd[(bd["by"] == by) & (bd["metric"] == metric)]
    if sub.empty:
        raise ValueError(f"no breakdown {metric!r} by {by!r} in these results")
    bc = results.breakdown_comparison
    sig = bc[(bc["by"] == by) & (bc["metric"] == metric)]
    marks = {(r.label, r.policy): bool(r.significant) for r in sig.itertuples()}
    fig, ax = _axes(ax)
    scale = 100.0 if metric in RATE_METRICS else 1.0
    _group_errorbars(ax, results, sub, scale, marks)
    ylabel = BREAKDOWN_METRIC_AXES.get(metric, metric.replace("_", " "))
    _style(ax, f"{ylabel.split(' (')[0].capitalize()} by {BREAKDOWN_LABELS.get(by, by)}", ylabel)
    if metric not in RATE_METRICS:
        ax.set_ylim(bottom=min(0.0, ax.get_ylim()[0]))
    ax.grid(False, axis="x")
    _legend(ax)
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
    fig, ax = _axes(ax)
    frame = member_frame(results)
    what = MEMBER_QUANTITIES[quantity]
    colors = policy_colors(results)
    if frame is None or quantity not in set(frame["quantity"]):
        metric = {"received": "inmails_per_active_member", "unanswered": "unanswered_per_active_member"}[quantity]
        summ = results.summary[results.summary["metric"] == metric]
        pols = [p for p in policy_order(results) if p in set(summ["policy"])]
        for i, pol in enumerate(pols):
            r = summ[summ["policy"] == pol].iloc[0]
            err = [[np.nan_to_num(r["mean"] - r["ci_low"])], [np.nan_to_num(r["ci_high"] - r["mean"])]]
            ax.errorbar([i], [r["mean"]], yerr=err, fmt="o", color=colors[pol], markersize=7, capsize=4,
                        label=pol, gid=f"member_mean:{pol}")
        ax.set_xticks(range(len(pols)), pols)
        ax.set_xlim(-0.6, len(pols) - 0.4)
        _style(ax, f"{what} per active member", f"{what} per active member (mean)",
               "mean over the run (the per-member distribution was not recorded)")
        return fig
    sub = frame[frame["quantity"] == quantity]
    edges = sorted(int(b) for b in sub["bin"].unique())
    pols = [p for p in policy_order(results) if p in set(sub["policy"])]
    width = 0.8 / max(len(pols), 1)
    for j, pol in enumerate(pols):
        p = sub[sub["policy"] == pol].pivot_table(index="replication", columns="bin", values="members",
                                                  aggfunc="sum").reindex(columns=edges).fillna(0.0)
        counts = p.to_numpy(dtype=np.float64)
        totals = counts.sum(axis=1, keepdims=True)
        share = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0) * 100
        mean, lo, hi = t_interval(share)
        x = np.arange(len(edges)) + (j - (len(pols) - 1) / 2) * width
        ax.bar(x, mean, width=width, color=colors[pol], alpha=0.85, label=pol, gid=f"hist:{pol}")
        ax.errorbar(x, mean, yerr=np.vstack([np.nan_to_num(mean - lo), np.nan_to_num(hi - mean)]), fmt="none",
                    ecolor="0.2", elinewidth=0.9, capsize=2)
    ax.set_xticks(np.arange(len(edges)), bin_labels(edges), rotation=45 if len(edges) > 8 else 0)
    _style(ax, f"{what} per active member", "share of active members (%)", f"{what} over the run")
    ax.grid(False, axis="x")
    _legend(ax)
    return fig


def threshold_share(results: Results, by: str = "group", ax: Axes | None = None, *,
                    metric: str = "warnings") -> Figure:
    """Share of recruiters warned (``metric="warnings"``, %), or Improvement Periods per 100 recruiters.

    A warning is given once per seat, so warnings / recruiters is the share of recruiters the
    threshold caught at all; Improvement Periods (extensions count again) are per 100 recruiters.
    """
    if metric not in ("warnings", "improvement_periods"):
        raise ValueError(f"metric must be 'warnings' or 'improvement_periods', got {metric!r}")
    frame = group_stats(results, by, lambda r: 100.0 * r[metric] / r["recruiters"].where(r["recruiters"] > 0))
    fig, ax = _axes(ax)
    _group_errorbars(ax, results, frame)
    if metric == "warnings":
        _style(ax, f"Recruiters warned, by {BREAKDOWN_LABELS.get(by, by)}", "recruiters warned (%)")
    else:
        _style(ax, f"Improvement Periods, by {BREAKDOWN_LABELS.get(by, by)}", "Improvement Periods per 100 recruiters")
    ax.set_ylim(bottom=0)
    ax.grid(False, axis="x")
    if len(ax.get_xticks()) > 4:
        ax.tick_params(axis="x", labelrotation=20)
    _legend(ax)
    return fig


# --------------------------------------------------------------------------- report figures (several panels)


def _panels(rows: int, cols: int, size: tuple[float, float]) -> tuple[Figure, np.ndarray]:
    fig = ReportFigure(figsize=size, layout="constrained")
    return fig, np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()


def _shared_legend(fig: Figure, axes: Sequence[Axes], keep: Sequence[Axes] = ()) -> None:
    """One legend of the policies above the panels instead of one per panel.

    Axes in ``keep`` keep their own legend (e.g. one that also explains line styles); then no
    figure legend is added unless none of them has a legend.
    """
    handles, labels = next((hl for hl in (a.get_legend_handles_labels() for a in axes if a not in keep) if hl[0]),
                           ([], []))
    for a in axes:
        if a not in keep and a.get_legend() is not None:
            a.get_legend().remove()
    if handles and not any(a.get_legend() is not None for a in keep):
        fig.legend(handles, labels, loc="outside upper center", ncols=min(len(labels), 6), frameon=False)


def rates(results: Results) -> Figure:
    """Response and acceptance rate over time, per policy (two panels)."""
    fig, ax = _panels(1, 2, (11, 4))
    response_rate(results, ax[0])
    acceptance_rate(results, ax[1])
    _shared_legend(fig, ax)
    return fig


def credits(results: Results) -> Figure:
    """Credit balance and cumulative net credit burn per recruiter over time (two panels)."""
    fig, ax = _panels(1, 2, (11, 4))
    credit_balance(results, ax[0])
    net_credit_burn(results, ax[1])
    _shared_legend(fig, ax)
    return fig


def winners_losers(results: Results, keys: Sequence[str] = BREAKDOWN_PANELS) -> Figure:
    """Response rate and net credits burned per recruiter by personalization band, seat type and behaviour."""
    present = set(results.breakdowns["by"])
    keys = [k for k in keys if k in present]
    fig, ax = _panels(len(keys), 2, (11, 3.3 * len(keys)))
    for i, by in enumerate(keys):
        breakdown(results, by, "response_rate", ax[2 * i])
        breakdown(results, by, "net_credit_burn_per_recruiter", ax[2 * i + 1])
    _shared_legend(fig, ax)
    return fig


def members(results: Results) -> Figure:
    """The member side: InMails received and unanswered per active member, and fatigue over time."""
    fig, ax = _panels(1, 3, (14, 4.2))
    member_distribution(results, "received", ax[0])
    member_distribution(results, "unanswered", ax[1])
    member_fatigue(results, ax[2])
    _shared_legend(fig, ax)
    return fig


def threshold(results: Results, by: str = "group") -> Figure:
    """The response-rate threshold: events over time, seats in an Improvement Period, who is caught."""
    fig, ax = _panels(2, 2, (11, 7.5))
    threshold_events(results, ax[0])
    in_improvement(results, ax[1])
    threshold_share(results, by, ax[2], metric="warnings")
    threshold_share(results, by, ax[3], metric="improvement_periods")
    _shared_legend(fig, ax, keep=[ax[0]])
    return fig


@dataclass(frozen=True)
class FigureSpec:
    """A report figure: file name, heading, what it shows."""

    name: str
    title: str
    caption: str
    make: Callable[[Results], Figure]


FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec("rates", "Response and acceptance rates over time",
               "Rates of the InMails sent each day (eventual outcomes), as 7-day rolling ratios; line = mean over "
               "replications, band = 95% confidence interval.", rates),
    FigureSpec("credits", "Credits over time",
               "Left: unspent credits per recruiter at the end of each day. Right: credits spent minus credits "
               "refunded per recruiter, cumulative since the start. Band = 95% CI over replications.", credits),
    FigureSpec("differences", "Every metric: what changes, and how sure we are",
               "Relative change of each metric against the baseline with its 95% paired CI (common random "
               "numbers); filled = significant at 5%. The absolute difference is written at the right.", differences),
    FigureSpec("winners_losers", "Winners and losers among recruiters",
               "Response rate and net credits burned per recruiter, per recruiter subgroup and policy (mean, 95% "
               "CI); * = the paired difference against the baseline is significant at 5%.", winners_losers),
    FigureSpec("members", "The member side",
               "Share of active members by the number of InMails they received (left) and left unanswered "
               "(middle) over the run - bars: mean over replications, whiskers: 95% CI - and the mean member "
               "fatigue over time (band = 95% CI).", members),
    FigureSpec("threshold", "The response-rate threshold",
               "Warnings and Improvement Periods over time (cumulative), recruiters in an Improvement Period, "
               "and the share of each recruiter group that the threshold catches (95% CI).", threshold),
)
"""The figures ``inmail-sim run`` writes and the report shows, in report order."""


def render_png(fig: Figure, dpi: int = 110) -> bytes:
    """The figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    return buf.getvalue()


def render_figures(results: Results, dpi: int = 110,
                   errors: dict[str, str] | None = None) -> dict[str, bytes]:
    """Every figure of :data:`FIGURES` as PNG bytes; a figure that fails is left out and noted in ``errors``."""
    out: dict[str, bytes] = {}
    for spec in FIGURES:
        try:
            out[spec.name] = render_png(spec.make(results), dpi)
        except Exception as exc:  # one broken figure must not cost the others
            if errors is None:
                raise
            errors[spec.name] = f"{type(exc).__name__}: {exc}"
    return out


class FigureError(RuntimeError):
    """Some figures could not be drawn (the others were written)."""


FIGURES_DIR = "figures"


def write_pngs(pngs: dict[str, bytes], folder: str | Path) -> dict[str, Path]:
    """Write PNG bytes as ``folder/figures/NAME.png`` (atomically); return the paths."""
    from simulator.io.outputs import atomic_write

    target = Path(folder) / FIGURES_DIR
    target.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, data in pngs.items():
        path = target / f"{name}.png"
        atomic_write(path, lambda p, data=data: p.write_bytes(data))
        paths[name] = path
    return paths


def write_figures(results: Results, folder: str | Path, dpi: int = 110) -> dict[str, Path]:
    """Draw every figure of :data:`FIGURES` into ``folder/figures/NAME.png``; return the paths.

    Raises :class:`FigureError` naming the figures that failed, after writing all the others.
    """
    errors: dict[str, str] = {}
    paths = write_pngs(render_figures(results, dpi, errors), folder)
    if errors:
        raise FigureError("; ".join(f"{k}: {v}" for k, v in errors.items()))
    return paths


# --------------------------------------------------------------------------- notebook accessor


class ResultsPlots:
    """``results.plot``: the figures of one :class:`Results`, for notebooks.

    Each method returns a matplotlib figure (``ax=`` draws into an existing axes instead)::

        results.plot.response_rate()                 # one panel
        results.plot.breakdown("seat_type", "net_credit_burn_per_recruiter")
        results.plot.winners_losers()                # the report's figures: rates, credits, differences,
                                                     # winners_losers, members, threshold
    """

    def __init__(self, results: Results) -> None:
        self._results = results

    def __repr__(self) -> str:
        names = [n for n in dir(self) if not n.startswith("_")]
        return f"<plots: {', '.join(names)}>"

    def response_rate(self, ax: Axes | None = None, **kw: Any) -> Figure:
        return response_rate(self._results, ax, **kw)

    def acceptance_rate(self, ax: Axes | None = None, **kw: Any) -> Figure:
        return acceptance_rate(self._results, ax, **kw)

    def credit_balance(self, ax: Axes | None = None) -> Figure:
        return credit_balance(self._results, ax)

    def net_credit_burn(self, ax: Axes | None = None, **kw: Any) -> Figure:
        return net_credit_burn(self._results, ax, **kw)

    def member_fatigue(self, ax: Axes | None = None) -> Figure:
        return member_fatigue(self._results, ax)

    def member_distribution(self, quantity: str = "received", ax: Axes | None = None) -> Figure:
        return member_distribution(self._results, quantity, ax)

    def threshold_events(self, ax: Axes | None = None) -> Figure:
        return threshold_events(self._results, ax)

    def in_improvement(self, ax: Axes | None = None) -> Figure:
        return in_improvement(self._results, ax)

    def threshold_share(self, by: str = "group", ax: Axes | None = None, **kw: Any) -> Figure:
        return threshold_share(self._results, by, ax, **kw)

    def differences(self, ax: Axes | None = None, **kw: Any) -> Figure:
        return differences(self._results, ax, **kw)

    def breakdown(self, by: str = "personalization_band", metric: str = "response_rate",
                  ax: Axes | None = None) -> Figure:
        return breakdown(self._results, by, metric, ax)

    def rates(self) -> Figure:
        return rates(self._results)

    def credits(self) -> Figure:
        return credits(self._results)

    def winners_losers(self) -> Figure:
        return winners_losers(self._results)

    def members(self) -> Figure:
        return members(self._results)

    def threshold(self, by: str = "group") -> Figure:
        return threshold(self._results, by)


for _name in list(vars(ResultsPlots)):
    _fn = globals().get(_name)
    _method = vars(ResultsPlots)[_name]
    if callable(_fn) and callable(_method) and not _name.startswith("_"):
        _method.__doc__ = _fn.__doc__
del _name, _fn, _method


# --------------------------------------------------------------------------- sweeps and sensitivity (issue 8)
# Figures of simulator.experiments.sweep and simulator.experiments.sensitivity: they take those modules' tidy tables
# (sweep.csv, sensitivity.csv, tornado.csv as DataFrames) and return a Figure.

SWEEP_MAX_LINES = 6
"""At most this many lines per panel (combinations of the other swept values); beyond, they are averaged."""


def _sweep_numeric(values: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(values)) and not pd.api.types.is_bool_dtype(values)


def _sweep_positions(values: pd.Series) -> tuple[np.ndarray, list[Any] | None]:
    """x positions of swept values: the numbers themselves, or 0, 1, ... with labels for anything else."""
    if _sweep_numeric(values):
        return values.to_numpy(dtype=np.float64), None
    cats = list(dict.fromkeys(values.astype(str)))
    return values.astype(str).map({c: i for i, c in enumerate(cats)}).to_numpy(dtype=np.float64), cats


SWEEP_LINESTYLES: tuple[str, ...] = ("-", "--", ":", "-.")


def _sweep_band(ax: Axes, x: np.ndarray, y: np.ndarray, lo: np.ndarray, hi: np.ndarray, label: str,
                color: str, style: str) -> None:
    order = np.argsort(x, kind="stable")
    ax.plot(x[order], y[order], marker="o", ms=3, color=color, linestyle=style, label=label)
    ax.fill_between(x[order], lo[order], hi[order], color=color, alpha=0.15, linewidth=0)


def _sweep_lines(ax: Axes, rows: pd.DataFrame, path: str, others: Sequence[str], cols: tuple[str, str, str],
                 label: str, scattered: bool, style: str) -> None:
    """One band per combination of the other swept values (colour), averaged when there are too many."""
    y, lo, hi = cols
    colors = list(PALETTE)
    if scattered:
        x, _ = _sweep_positions(rows[path])
        mean = rows[y].to_numpy(dtype=np.float64)
        err = np.vstack([mean - rows[lo].to_numpy(dtype=np.float64), rows[hi].to_numpy(dtype=np.float64) - mean])
        ax.errorbar(x, mean, yerr=err, fmt="o" if style == "-" else "s", ms=3, capsize=2, alpha=0.7, label=label)
        return
    groups: list[tuple[Any, pd.DataFrame]] = list(rows.groupby(list(others), sort=False)) if others else [((), rows)]
    averaged = len(groups) > SWEEP_MAX_LINES
    if averaged:
        groups = [((), rows.groupby(path, sort=False)[[y, lo, hi]].mean().reset_index())]
    for k, (key, g) in enumerate(groups):
        key = key if isinstance(key, tuple) else (key,)
        if averaged:
            extra = "mean over the other parameters"
        else:
            extra = ", ".join(f"{o.split('.')[-1]}={v}" for o, v in zip(others, key, strict=False))
        x, _ = _sweep_positions(g[path])
        _sweep_band(ax, x, g[y].to_numpy(dtype=np.float64), g[lo].to_numpy(dtype=np.float64),
                    g[hi].to_numpy(dtype=np.float64), f"{label} ({extra})" if extra else label,
                    colors[k % len(colors)], style)


def plot_sweep(table: pd.DataFrame, paths: Sequence[str], metric: str, baseline: str, *,
               scattered: bool = False) -> Figure:
    """Top row: ``metric`` per policy vs each swept parameter; bottom row: the paired difference to
    the baseline.  Bands (grids) or error bars (scattered QMC points) are 95% CIs."""
    rows = table[table["metric"] == metric]
    ncol = len(paths)
    fig = ReportFigure(figsize=(4.2 * ncol + 0.8, 6.4), layout="constrained")
    axes = fig.subplots(2, ncol, squeeze=False)
    for j, path in enumerate(paths):
        others = [p for p in paths if p != path]
        top, bottom = axes[0][j], axes[1][j]
        for k, (pol, g) in enumerate(rows.groupby("policy", sort=False)):
            style = SWEEP_LINESTYLES[k % len(SWEEP_LINESTYLES)]
            _sweep_lines(top, g, path, others, ("mean", "ci_low", "ci_high"), str(pol), scattered, style)
            if pol != baseline:
                _sweep_lines(bottom, g, path, others, ("diff", "diff_ci_low", "diff_ci_high"),
                             f"{pol} - {baseline}", scattered, SWEEP_LINESTYLES[(k - 1) % len(SWEEP_LINESTYLES)])
        bottom.axhline(0.0, color="0.5", lw=0.8)
        _, cats = _sweep_positions(rows[path])
        for ax in (top, bottom):
            if cats is not None:
                ax.set_xticks(range(len(cats)), cats, rotation=30, ha="right")
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=6)
        bottom.set_xlabel(path)
        if j == 0:
            top.set_ylabel(metric)
            bottom.set_ylabel(f"{metric}: policy - {baseline}")
    fig.suptitle(f"{metric} across the sweep (95% CI)")
    return fig


def plot_sweep_heatmap(table: pd.DataFrame, x_path: str, y_path: str, metric: str, policy: str,
                       baseline: str) -> Figure:
    """The paired difference ``policy - baseline`` of ``metric`` over a two-parameter grid.

    Cells show the difference and its 95% CI; ``*`` marks CIs that exclude zero.
    """
    rows = table[(table["metric"] == metric) & (table["policy"] == policy)]
    xs = list(dict.fromkeys(rows[x_path]))
    ys = list(dict.fromkeys(rows[y_path]))
    grid = np.full((len(ys), len(xs)), np.nan)
    text: dict[tuple[int, int], str] = {}
    for r in rows.to_dict("records"):
        i, j = ys.index(r[y_path]), xs.index(r[x_path])
        grid[i, j] = r["diff"]
        sig = "*" if r["diff_ci_low"] > 0 or r["diff_ci_high"] < 0 else ""
        text[(i, j)] = f"{r['diff']:+.3g}{sig}\n[{r['diff_ci_low']:+.3g}, {r['diff_ci_high']:+.3g}]"
    fig = ReportFigure(figsize=(1.3 * len(xs) + 2.5, 0.8 * len(ys) + 2.0), layout="constrained")
    ax = fig.subplots()
    from matplotlib.colors import Normalize, TwoSlopeNorm

    finite = grid[np.isfinite(grid)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (-1.0, 1.0)
    if lo < 0 < hi:  # both signs: a diverging map centred on "no difference"
        span = max(-lo, hi)
        norm: Normalize = TwoSlopeNorm(vcenter=0.0, vmin=-span, vmax=span)
        cmap = "RdBu"
    else:  # one sign: a sequential map over the range, so the cells can be told apart
        norm = Normalize(vmin=lo, vmax=hi if hi > lo else lo + 1e-12)
        cmap = "Blues" if lo >= 0 else "Reds_r"
    im = ax.imshow(grid, cmap=cmap, norm=norm, aspect="auto", origin="lower")
    for (i, j), t in text.items():
        shade = float(norm(grid[i, j])) if np.isfinite(grid[i, j]) else 0.5
        dark = shade > 0.75 or (cmap != "Blues" and shade < 0.25)
        ax.text(j, i, t, ha="center", va="center", fontsize=7, color="white" if dark else "black")
    ax.set_xticks(range(len(xs)), [str(x) for x in xs])
    ax.set_yticks(range(len(ys)), [str(y) for y in ys])
    ax.set_xlabel(x_path)
    ax.set_ylabel(y_path)
    fig.colorbar(im, ax=ax, label=f"{metric}: {policy} - {baseline}")
    ax.set_title(f"{metric}: {policy} - {baseline} (95% CI; * excludes 0)", fontsize=9)
    return fig


def _sweep_short_path(path: str) -> str:
    parts = path.split(".")
    return ".".join(parts[-3:]) if len(parts) > 3 else path


def plot_sobol(indices: pd.DataFrame, output: str) -> Figure:
    """First-order (S1) and total (ST) Sobol indices of one output, with bootstrap CIs, largest ST on top."""
    rows = indices[indices["output"] == output].sort_values("ST", ascending=True)
    y = np.arange(len(rows))
    fig = ReportFigure(figsize=(7.0, 1.0 + 0.45 * len(rows)), layout="constrained")
    ax = fig.subplots()
    h = 0.38
    for k, (col, label) in enumerate((("S1", "first order S1"), ("ST", "total ST"))):
        v = rows[col].to_numpy(dtype=np.float64)
        lo = rows[f"{col}_ci_low"].to_numpy(dtype=np.float64)
        hi = rows[f"{col}_ci_high"].to_numpy(dtype=np.float64)
        err = np.vstack([np.clip(v - lo, 0, None), np.clip(hi - v, 0, None)])
        err = np.where(np.isfinite(err), err, 0.0)
        ax.barh(y + (k - 0.5) * h, v, height=h, xerr=err, capsize=2, label=label, color=PALETTE[k])
    ax.set_yticks(y, [_sweep_short_path(p) for p in rows["parameter"]])
    ax.axvline(0.0, color="0.5", lw=0.8)
    ax.set_xlabel("share of output variance (95% bootstrap CI)")
    n = int(rows["n"].iloc[0]) if len(rows) else 0
    ax.set_title(f"Sobol indices of {output} (N = {n})", fontsize=10)
    ax.legend(fontsize=8, loc="best")
    ax.grid(axis="x", alpha=0.3)
    return fig


def plot_tornado(tornado: pd.DataFrame, output: str) -> Figure:
    """One-at-a-time effects of each input's low and high value on one output, largest swing on top."""
    rows = tornado[tornado["output"] == output].iloc[::-1]
    y = np.arange(len(rows))
    fig = ReportFigure(figsize=(7.0, 1.0 + 0.45 * len(rows)), layout="constrained")
    ax = fig.subplots()
    base = float(rows["output_base"].iloc[0]) if len(rows) else 0.0
    for col, hw, label, color in (("effect_low", "effect_low_hw", "input at low", PALETTE[0]),
                                  ("effect_high", "effect_high_hw", "input at high", PALETTE[1])):
        v = rows[col].to_numpy(dtype=np.float64)
        err = rows[hw].to_numpy(dtype=np.float64)
        ax.barh(y, v, left=base, height=0.6, color=color, alpha=0.75, label=label,
                xerr=np.where(np.isfinite(err), err, 0.0), capsize=2)
    labels = [f"{_sweep_short_path(r['parameter'])}\n{_sweep_value(r['low'])} / {_sweep_value(r['high'])}"
              for r in rows.to_dict("records")]
    ax.set_yticks(y, labels, fontsize=8)
    ax.axvline(base, color="0.2", lw=1.0)
    ax.set_xlabel(f"{output} (base {base:.4g})")
    ax.set_title(f"Tornado: {output}\none input at its low / high, the others as in the scenario (95% CI)",
                 fontsize=9)
    ax.legend(fontsize=8, loc="best")
    ax.grid(axis="x", alpha=0.3)
    return fig


def _sweep_value(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


# --------------------------------------------------------------------------- effect decomposition (issue 8, explain)
# Waterfall charts of ``inmail-sim explain`` (simulator/explain.py): from the baseline's mean, one
# step per mechanism's Shapley contribution (95% CI as an error bar), to the new policy's mean.


def waterfall(rows: pd.DataFrame, ax: Axes | None = None, *, title: str = "") -> Figure:
    """One decomposition (rows of ``explain.csv`` for one metric and decomposition, ``total`` included)."""
    fig, ax = _axes(ax, (6.4, 3.6))
    steps = rows[rows["mechanism"] != "total"]
    metric = str(rows["metric"].iloc[0])
    scale = 100.0 if metric.endswith(("rate", "share")) else 1.0
    base = float(rows["baseline_mean"].iloc[0]) * scale
    new = float(rows["policy_mean"].iloc[0]) * scale
    labels = [str(rows["baseline"].iloc[0])]
    level = base
    levels = [base, new]
    ax.bar(0, base, color=PALETTE[0], width=0.6, gid="bar:baseline")
    for k, r in enumerate(steps.itertuples(index=False), start=1):
        d = float(r.contribution) * scale
        err = np.array([[d - float(r.ci_low) * scale], [float(r.ci_high) * scale - d]])
        err = np.where(np.isfinite(err), np.abs(err), 0.0)
        color = PALETTE[2] if d >= 0 else PALETTE[1]
        ax.bar(k, d, bottom=level, color=color, width=0.6, gid=f"bar:{r.mechanism}")
        ax.errorbar(k, level + d, yerr=err, color="0.2", capsize=3, linewidth=1)
        ax.plot([k - 0.7, k + 0.3], [level, level], color="0.5", linewidth=0.6)
        level += d
        levels += [level, level + float(err[1, 0]), level - float(err[0, 0])]
        labels.append(textwrap.fill(str(r.label), 12))
    k = len(labels)
    ax.bar(k, new, color=PALETTE[3], width=0.6, gid="bar:policy")
    labels.append(str(rows["policy"].iloc[0]))
    ax.set_xticks(range(k + 1), labels, fontsize=8)
    finite = [x for x in levels if np.isfinite(x)]
    lo, hi = min(finite), max(finite)
    pad = 0.15 * (hi - lo) + 1e-9
    ax.set_ylim(max(0.0, lo - pad) if lo >= 0 else lo - pad, hi + pad)
    unit = f"{METRIC_LABELS.get(metric, metric)}{' (%)' if scale == 100.0 else ''}"
    _style(ax, title or metric, unit)
    return fig


def waterfall_figure(table: pd.DataFrame, metrics: Sequence[str]) -> Figure:
    """Both decompositions (by rule, by channel) of each metric, one row of panels per metric."""
    fig = ReportFigure(figsize=(13.0, 3.8 * len(metrics)), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(metrics), 2, squeeze=False))
    titles = {"rule": "by rule change", "channel": "by channel (switched off in both worlds)"}
    for i, m in enumerate(metrics):
        for j, kind in enumerate(("rule", "channel")):
            rows = table[(table["metric"] == m) & (table["decomposition"] == kind)]
            if rows.empty:
                axes[i, j].set_visible(False)
                continue
            waterfall(rows.reset_index(drop=True), axes[i, j], title=f"{m}: {titles[kind]}")
    return fig
