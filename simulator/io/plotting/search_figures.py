"""Figures of a policy search (``inmail-sim optimize``): the Pareto set and the convergence of the search.

``pareto.png``: every pair of objectives (the first against each other one; one panel for two
objectives), all trials faint, the re-evaluated Pareto policies with 95% CI whiskers, the presets
old_2014 and new_2015 marked; at most :data:`MAX_LABELS` Pareto policies are named (the best at each
objective, then evenly spaced along the first), so a front of a hundred stays readable; pareto.csv
has them all.  ``convergence.png``: the hypervolume of the feasible front by trial.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from simulator.io.plotting.canvas import PALETTE, ReportFigure, add_legend, style_axes
from simulator.io.plotting.panels import whiskers
from simulator.io.tables import METRIC_LABELS

PRESET_MARKERS = {"old_2014": ("s", PALETTE[1]), "new_2015": ("D", PALETTE[2])}
MAX_LABELS = 12
"""Pareto policies named on the figure at most."""


def labelled(pareto: pd.DataFrame, objectives: Sequence[tuple[str, str]], limit: int = MAX_LABELS) -> list[int]:
    """Row positions of the Pareto policies to name: all if few, else the best at each objective,
    then evenly spaced along the first objective, ``limit`` in all."""
    n = len(pareto)
    if n <= limit:
        return list(range(n))
    picks: list[int] = []
    for metric, direction in objectives:
        values = pareto[f"{metric}_mean"].to_numpy(dtype=np.float64)
        best = int(np.argmax(values) if direction == "maximize" else np.argmin(values))
        if best not in picks:
            picks.append(best)
    order = np.argsort(pareto[f"{objectives[0][0]}_mean"].to_numpy(dtype=np.float64), kind="stable")
    for pos in np.linspace(0, n - 1, limit).round().astype(int):
        if len(picks) >= limit:
            break
        if int(order[pos]) not in picks:
            picks.append(int(order[pos]))
    return sorted(picks[:limit])


def _label(metric: str, direction: str) -> str:
    return f"{METRIC_LABELS.get(metric, metric)} ({'higher' if direction == 'maximize' else 'lower'} is better)"


def pareto_figure(trials: pd.DataFrame, pareto: pd.DataFrame, references: pd.DataFrame,
                  objectives: Sequence[tuple[str, str]]) -> Figure:
    """Objective pairs: trials (grey; infeasible hollow), Pareto policies with CI whiskers, presets marked."""
    pairs = [(objectives[0], other) for other in objectives[1:]] or [(objectives[0], objectives[0])]
    fig = ReportFigure(figsize=(5.2 * len(pairs), 4.4), layout="constrained")
    axes = fig.subplots(1, len(pairs), squeeze=False)[0]
    for ax, ((xm, xd), (ym, yd)) in zip(axes, pairs, strict=True):
        ok = trials["feasible"].astype(bool) if len(trials) else pd.Series(dtype=bool)
        for feasible, face in ((True, "#bbbbbb"), (False, "none")):
            rows = trials[ok == feasible] if len(trials) else trials
            ax.scatter(rows.get(f"{xm}_mean", []), rows.get(f"{ym}_mean", []), s=16, facecolors=face,
                       edgecolors="#999999", linewidths=0.7,
                       label="trial" if feasible else "trial (constraint not met)")
        if len(pareto):
            ax.errorbar(pareto[f"{xm}_mean"], pareto[f"{ym}_mean"],
                        xerr=whiskers(pareto[f"{xm}_mean"], pareto[f"{xm}_ci_low"], pareto[f"{xm}_ci_high"]),
                        yerr=whiskers(pareto[f"{ym}_mean"], pareto[f"{ym}_ci_low"], pareto[f"{ym}_ci_high"]),
                        fmt="o", color=PALETTE[0], ms=5, capsize=2, label="Pareto policy (re-evaluated)")
            for _, row in pareto.iloc[labelled(pareto, objectives)].iterrows():
                ax.annotate(str(row["name"]).removeprefix("pareto_"), (row[f"{xm}_mean"], row[f"{ym}_mean"]),
                            fontsize=7, xytext=(3, 3), textcoords="offset points")
        for _, row in references.iterrows():
            marker, color = PRESET_MARKERS.get(str(row["name"]), ("^", PALETTE[3]))
            ax.errorbar([row[f"{xm}_mean"]], [row[f"{ym}_mean"]],
                        xerr=whiskers(row[f"{xm}_mean"], row[f"{xm}_ci_low"], row[f"{xm}_ci_high"]),
                        yerr=whiskers(row[f"{ym}_mean"], row[f"{ym}_ci_low"], row[f"{ym}_ci_high"]),
                        fmt=marker, color=color, ms=7, capsize=2, label=str(row["name"]))
        style_axes(ax, "Pareto set", _label(ym, yd), _label(xm, xd))
    add_legend(axes[0])
    return fig


def convergence_figure(curve: pd.DataFrame) -> Figure:
    """Hypervolume of the feasible front (normalised objectives) after each trial."""
    fig = ReportFigure(figsize=(6.0, 3.6), layout="constrained")
    ax = fig.subplots()
    if len(curve):
        ax.step(curve["trial"].to_numpy(), curve["hypervolume"].to_numpy(dtype=np.float64), where="post",
                color=PALETTE[0])
    style_axes(ax, "Search convergence", "hypervolume (normalised objectives)", "trial")
    return fig
