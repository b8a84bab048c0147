"""Panels of who ends up worse off: per recruiter subgroup, the change in responses and the stock-outs.

Losers are marked as in the printed table (:func:`simulator.experiments.group_outcomes.worse_off`):
a subgroup whose 95% paired CI of responses lies below zero, or of stock-out days above zero,
gets a red "worse off" label.  Every function draws on ``ax`` if given and returns the figure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from simulator.io.plotting.canvas import add_legend, figure_and_axes, style_axes
from simulator.io.plotting.panels import (
    BREAKDOWN_LABELS,
    group_errorbars,
    group_slots,
    short_label,
    significance_marks,
    whiskers,
)
from simulator.io.plotting.series import outcome_stats, policy_colors
from simulator.io.tables import ratio_text

if TYPE_CHECKING:
    import pandas as pd

    from simulator.experiments.experiment import Results

LOSER_COLOR = "#B2182B"
"""The colour of a "worse off" mark."""

OUTCOME_AXES: dict[str, str] = {
    "stockout_days_per_recruiter": "days short of credits per recruiter",
    "credits_per_response": "net credits per response (credits)",
}
"""Axis label of a level panel of :func:`group_outcome`."""


def _outcomes(results: Results, by: str, metric: str) -> pd.DataFrame:
    """The rows of ``results.group_outcomes`` for one subgrouping and metric (error if there are none)."""
    outcomes = results.group_outcomes
    rows = outcomes[(outcomes["by"] == by) & (outcomes["metric"] == metric)]
    if rows.empty:
        raise ValueError(f"no group outcome {metric!r} by {by!r} in these results (one policy only?)")
    return rows


def _mark_loser(ax: Axes, x: float, y: float, text: str) -> None:
    """A red "worse off" label just below a point."""
    ax.annotate(text, (x, y), xytext=(0, -4), textcoords="offset points", ha="center", va="top", fontsize=8,
                color=LOSER_COLOR, fontweight="bold", gid="worse_off")


def responses_change(results: Results, by: str = "seat_type", ax: Axes | None = None) -> Figure:
    """Paired relative change in responses (policy - baseline, %) per subgroup, 95% CI; losers in red.

    Filled dots: the CI excludes zero; a subgroup whose CI lies below zero is labelled "worse off".
    """
    rows = _outcomes(results, by, "responses")
    fig, ax = figure_and_axes(ax)
    colors = policy_colors(results)
    labels, slots = group_slots(results, rows)
    for policy, of_policy, x in slots:
        rel, low, high = (of_policy[c].to_numpy(dtype=np.float64) * 100 for c in ("rel_change", "rel_ci_low",
                                                                                   "rel_ci_high"))
        sig = of_policy["significant"].fillna(False).to_numpy(dtype=bool)
        ax.errorbar(x, rel, yerr=whiskers(rel, low, high), fmt="none",
                    ecolor=colors[policy], elinewidth=1.5, capsize=3, gid=f"change_ci:{policy}")
        ax.scatter(x, rel, s=36, zorder=3, color=[colors[policy] if s else "white" for s in sig],
                   edgecolors=colors[policy], linewidths=1.4, label=f"{policy} - {results.baseline}",
                   gid=f"change:{policy}")
        for at, bottom, loser in zip(x, np.where(np.isfinite(low), low, rel), of_policy["worse_off"], strict=True):
            if bool(loser):
                _mark_loser(ax, at, bottom, "worse off")
    ax.axhline(0, color="0.3", linewidth=0.9)
    ax.set_xticks(np.arange(len(labels)), [short_label(label) for label in labels])
    ax.set_xlim(-0.6, len(labels) - 0.4)
    bottom, top = ax.get_ylim()
    ax.set_ylim(bottom - 0.12 * (top - bottom), top)  # room for the labels under the lowest interval
    ax.yaxis.set_major_formatter(PercentFormatter(100))  # decimals from the axis range: no two ticks alike
    style_axes(ax, f"Change in responses by {BREAKDOWN_LABELS.get(by, by)}",
               "responses vs baseline (%, paired 95% CI)")
    ax.grid(False, axis="x")
    add_legend(ax)
    return fig


def group_outcome(results: Results, by: str = "seat_type", metric: str = "stockout_days_per_recruiter",
                  ax: Axes | None = None) -> Figure:
    """One group outcome per subgroup and policy (mean, 95% CI over replications), losers marked.

    ``metric``: ``stockout_days_per_recruiter`` (the ratio policy/baseline is written under each
    compared policy's dot, red "worse off" when its paired CI lies above zero) or
    ``credits_per_response`` (net credits burned per response; * = paired difference significant).
    """
    if metric not in OUTCOME_AXES:
        raise ValueError(f"metric must be one of {', '.join(OUTCOME_AXES)}, got {metric!r}")
    levels = outcome_stats(results, by, metric)
    if levels.empty:
        raise ValueError(f"no breakdown by {by!r} in these results")
    marks = significance_marks(results.group_outcomes, by, metric)
    fig, ax = figure_and_axes(ax)
    labels = group_errorbars(ax, results, levels, 1.0, marks if metric == "credits_per_response" else None)
    ax.set_ylim(bottom=0)
    if metric == "stockout_days_per_recruiter":
        outcomes = results.group_outcomes
        _ratio_labels(ax, results, levels, outcomes[(outcomes["by"] == by) & (outcomes["metric"] == metric)], labels)
    style_axes(ax, f"{OUTCOME_AXES[metric].split(' (')[0].capitalize()} by {BREAKDOWN_LABELS.get(by, by)}",
               OUTCOME_AXES[metric])
    ax.grid(False, axis="x")
    add_legend(ax)
    return fig


def _ratio_labels(ax: Axes, results: Results, levels: pd.DataFrame, compared: pd.DataFrame,
                  labels: list[str]) -> None:
    """Above each compared policy's dot, at the top: the ratio policy/baseline of stock-out days, red when worse off."""
    places = {(label, policy): at for policy, _, x in group_slots(results, levels)[1]
              for label, at in zip(labels, x, strict=True)}
    bottom, top = ax.get_ylim()
    ax.set_ylim(bottom, top + 0.25 * (top - bottom))
    for row in compared.itertuples():
        if (row.label, row.policy) not in places:
            continue
        x = places[(row.label, row.policy)]
        text = ratio_text(float(row.ratio))
        worse = bool(row.worse_off)
        ax.annotate(f"{text}\nworse off" if worse else text, (x, 0.98), xycoords=("data", "axes fraction"),
                    ha="center", va="top", fontsize=7.5, color=LOSER_COLOR if worse else "0.35",
                    fontweight="bold" if worse else "normal", gid="worse_off" if worse else "ratio")
