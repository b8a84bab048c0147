"""The figure of a run across plausible worlds: each world's policy difference, and the two kinds of interval.

One panel per headline metric: a histogram of the per-world mean differences (policy minus baseline,
paired within each world draw), the 80% and 95% ranges across worlds and the 95% Monte Carlo interval
of the mean (both from ``worlds_comparison.csv``), and zero.  A per-world mean carries the Monte Carlo
noise of the world's few replications, which the ranges remove
(:mod:`simulator.experiments.world_statistics`), so a few worlds may lie beyond them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from simulator.experiments.world_statistics import draw_matrix
from simulator.io.plotting.canvas import PALETTE, panel_grid, style_axes
from simulator.io.tables import METRIC_LABELS, RATE_METRICS, scale_of

if TYPE_CHECKING:
    from simulator.io.world_files import WorldsView

WORLD_FIGURE_METRICS: tuple[str, ...] = ("response_rate", "responses", "net_credit_burn",
                                         "unanswered_per_active_member")
"""The panels of :func:`world_differences`: the answer's metrics and total responses (whose sign can flip)."""


def per_world_differences(outcomes: pd.DataFrame, baseline: str, per_world: int,
                          metrics: Sequence[str] = WORLD_FIGURE_METRICS) -> pd.DataFrame:
    """``policy, metric, draw, diff``: each world draw's mean paired difference (policy minus baseline).

    ``outcomes``: ``world_outcomes.csv`` (one row per replication and policy; replication ``i`` in draw
    ``i // per_world``).  Values in the stored units (rates as fractions).
    """
    rows = []
    policies = [p for p in dict.fromkeys(outcomes["policy"]) if p != baseline]
    for metric in [m for m in metrics if m in outcomes.columns]:
        base = draw_matrix(outcomes, baseline, metric, per_world)
        for policy in policies:
            means = (draw_matrix(outcomes, policy, metric, per_world) - base).mean(axis=1)
            rows.append(pd.DataFrame({"policy": policy, "metric": metric, "draw": np.arange(len(means)),
                                      "diff": means}))
    if not rows:
        return pd.DataFrame(columns=["policy", "metric", "draw", "diff"])
    return pd.concat(rows, ignore_index=True)


def _unit(metric: str) -> str:
    return "points" if metric in RATE_METRICS else ""


def difference_panel(ax: Axes, differences: pd.DataFrame, comparison: pd.DataFrame, metric: str,
                     colors: dict[str, str]) -> None:
    """One metric: per policy a histogram of the per-world differences and, above it, the intervals."""
    k = scale_of(metric)
    of_metric = differences[differences["metric"] == metric]
    policies = list(dict.fromkeys(of_metric["policy"]))
    values = of_metric["diff"].to_numpy(dtype=float) * k
    finite = values[np.isfinite(values)]
    bins = list(np.histogram_bin_edges(finite, bins=min(30, max(5, len(finite) // 3)))) if len(finite) else 10
    top = 1.0
    for policy in policies:
        mine = of_metric.loc[of_metric["policy"] == policy, "diff"].to_numpy(dtype=float) * k
        counts, _, _ = ax.hist(mine[np.isfinite(mine)], bins=bins, color=colors.get(policy, PALETTE[1]), alpha=0.45,
                               label=f"{policy}: one world each", gid=f"hist-{policy}")
        top = max(top, float(np.max(counts, initial=0.0)))
    for i, policy in enumerate(policies):
        row = comparison[(comparison["policy"] == policy) & (comparison["metric"] == metric)]
        if row.empty:
            continue
        r = row.iloc[0]
        y = top * (1.12 + 0.16 * i)
        color = colors.get(policy, PALETTE[1])
        label = i == 0
        ax.plot([r["worlds_q025"] * k, r["worlds_q975"] * k], [y, y], color=color, linewidth=2, alpha=0.5,
                solid_capstyle="butt", gid=f"worlds95-{policy}", label="95% of worlds" if label else None)
        ax.plot([r["worlds_q10"] * k, r["worlds_q90"] * k], [y, y], color=color, linewidth=6,
                solid_capstyle="butt", gid=f"worlds80-{policy}", label="80% of worlds" if label else None)
        ax.errorbar([r["diff_mean"] * k], [y], xerr=[[(r["diff_mean"] - r["mc_ci_low"]) * k],
                                                    [(r["mc_ci_high"] - r["diff_mean"]) * k]],
                    fmt="o", color="black", markersize=4, capsize=4, linewidth=1.5, zorder=4, gid=f"mc-{policy}",
                    label="mean, 95% Monte Carlo CI" if label else None)
    ax.axvline(0, color="0.3", linewidth=0.9, linestyle="--", zorder=0)
    ax.set_ylim(0, top * (1.3 + 0.16 * max(len(policies) - 1, 0)))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    unit = _unit(metric)
    style_axes(ax, METRIC_LABELS.get(metric, metric), "worlds",
               f"difference{' (' + unit + ')' if unit else ''}")


def world_differences(differences: pd.DataFrame, comparison: pd.DataFrame, *, baseline: str = "",
                      metrics: Sequence[str] = WORLD_FIGURE_METRICS,
                      colors: dict[str, str] | None = None) -> Figure:
    """The per-world differences of ``metrics`` (a panel each) with the intervals of ``comparison``.

    ``differences``: :func:`per_world_differences`; ``comparison``: ``worlds_comparison.csv``.  Above
    each histogram: thick bar = 80% of worlds, thin bar = 95% of worlds, black dot and whiskers = the
    mean with its 95% Monte Carlo interval.
    """
    shown = [m for m in metrics if (differences["metric"] == m).any()]
    if not shown:
        raise ValueError("no per-world differences to draw (no policy besides the baseline?)")
    policies = list(dict.fromkeys(differences["policy"]))
    colors = colors or {p: PALETTE[(i + 1) % len(PALETTE)] for i, p in enumerate(policies)}
    cols = 2 if len(shown) > 1 else 1
    rows = (len(shown) + cols - 1) // cols
    fig, axes = panel_grid(rows, cols, (11 if cols == 2 else 6.4, 3.6 * rows))
    for ax, metric in zip(axes, shown, strict=False):
        difference_panel(ax, differences, comparison, metric, colors)
    for ax in axes[len(shown):]:
        ax.set_visible(False)
    against = f" - {baseline}" if baseline else " - baseline"
    fig.suptitle(f"{' / '.join(policies)}{against} in each plausible world", fontsize=11)
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 4), frameon=False)
    return fig


def plot_worlds(res: WorldsView, metrics: Sequence[str] = WORLD_FIGURE_METRICS) -> Figure:
    """:func:`world_differences` of what :func:`simulator.run_worlds` returned (a notebook's one-liner)."""
    study = res.study
    scenario = study.scenario
    colors = {p: PALETTE[i % len(PALETTE)] for i, p in enumerate(scenario.policy_names)}
    differences = per_world_differences(res.world_outcomes, scenario.baseline, study.plan.per_world, metrics)
    return world_differences(differences, res.worlds_comparison, baseline=scenario.baseline, metrics=metrics,
                             colors=colors)
