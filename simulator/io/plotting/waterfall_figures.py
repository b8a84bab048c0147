"""Waterfall charts of ``inmail-sim explain``: how the baseline's mean becomes the new policy's mean.

From the baseline's mean, one step per mechanism's Shapley contribution (95% CI as an error bar),
to the new policy's mean; the rows are those of ``explain.csv``
(:mod:`simulator.experiments.explain`).
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from simulator.io.plotting.canvas import PALETTE, ReportFigure, figure_and_axes, style_axes
from simulator.io.tables import METRIC_LABELS


def waterfall(rows: pd.DataFrame, ax: Axes | None = None, *, title: str = "") -> Figure:
    """One decomposition (rows of ``explain.csv`` for one metric and decomposition, ``total`` included)."""
    fig, ax = figure_and_axes(ax, (6.4, 3.6))
    steps = rows[rows["mechanism"] != "total"]
    metric = str(rows["metric"].iloc[0])
    scale = 100.0 if metric.endswith(("rate", "share")) else 1.0
    base = float(rows["baseline_mean"].iloc[0]) * scale
    new = float(rows["policy_mean"].iloc[0]) * scale
    labels = [str(rows["baseline"].iloc[0])]
    level = base
    levels = [base, new]
    ax.bar(0, base, color=PALETTE[0], width=0.6, gid="bar:baseline")
    for position, step in enumerate(steps.itertuples(index=False), start=1):
        change = float(step.contribution) * scale
        err = np.array([[change - float(step.ci_low) * scale], [float(step.ci_high) * scale - change]])
        err = np.where(np.isfinite(err), np.abs(err), 0.0)
        color = PALETTE[2] if change >= 0 else PALETTE[1]
        ax.bar(position, change, bottom=level, color=color, width=0.6, gid=f"bar:{step.mechanism}")
        ax.errorbar(position, level + change, yerr=err, color="0.2", capsize=3, linewidth=1)
        ax.plot([position - 0.7, position + 0.3], [level, level], color="0.5", linewidth=0.6)
        level += change
        levels += [level, level + float(err[1, 0]), level - float(err[0, 0])]
        labels.append(textwrap.fill(str(step.label), 12))
    last = len(labels)
    ax.bar(last, new, color=PALETTE[3], width=0.6, gid="bar:policy")
    labels.append(str(rows["policy"].iloc[0]))
    ax.set_xticks(range(last + 1), labels, fontsize=8)
    finite = [value for value in levels if np.isfinite(value)]
    low, high = min(finite), max(finite)
    pad = 0.15 * (high - low) + 1e-9
    ax.set_ylim(max(0.0, low - pad) if low >= 0 else low - pad, high + pad)
    unit = f"{METRIC_LABELS.get(metric, metric)}{' (%)' if scale == 100.0 else ''}"
    style_axes(ax, title or metric, unit)
    return fig


def waterfall_figure(table: pd.DataFrame, metrics: Sequence[str]) -> Figure:
    """Both decompositions (by rule, by channel) of each metric, one row of panels per metric."""
    fig = ReportFigure(figsize=(13.0, 3.8 * len(metrics)), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(metrics), 2, squeeze=False))
    titles = {"rule": "by rule change", "channel": "by channel (switched off in both worlds)"}
    for i, metric in enumerate(metrics):
        for j, kind in enumerate(("rule", "channel")):
            rows = table[(table["metric"] == metric) & (table["decomposition"] == kind)]
            if rows.empty:
                axes[i, j].set_visible(False)
                continue
            waterfall(rows.reset_index(drop=True), axes[i, j], title=f"{metric}: {titles[kind]}")
    return fig
