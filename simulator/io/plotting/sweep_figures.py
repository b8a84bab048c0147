"""Figures of a parameter sweep (``inmail-sim sweep``): a metric against each swept value, and a 2-D heatmap.

They take the tidy table of :mod:`simulator.experiments.sweep` (``sweep.csv`` as a DataFrame)
and return a figure; bands and error bars are 95% CIs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import Normalize, TwoSlopeNorm
from matplotlib.figure import Figure

from simulator.io.plotting.canvas import PALETTE, ReportFigure
from simulator.io.plotting.panels import whiskers
from simulator.io.tables import METRIC_LABELS, METRIC_UNITS, MISSING, RATE_METRICS, scale_of

SWEEP_MAX_LINES = 6
"""At most this many lines per panel (combinations of the other swept values); beyond, they are averaged."""

SWEEP_LINESTYLES: tuple[str, ...] = ("-", "--", ":", "-.")
"""One line style per policy."""


_SCALED_COLUMNS: tuple[str, ...] = ("mean", "ci_low", "ci_high", "diff", "diff_ci_low", "diff_ci_high")


def _displayed(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The rows of ``metric`` in its display unit (rates in %, their differences in points), as ``run`` shows them."""
    rows = table[table["metric"] == metric].copy()
    scale = scale_of(metric)
    if scale != 1.0:
        for column in _SCALED_COLUMNS:
            rows[column] = rows[column] * scale
    return rows


def axis_label(metric: str, difference: bool = False) -> str:
    """``response rate, %`` (``..., points`` for a difference of rates)."""
    unit = "points" if difference and metric in RATE_METRICS else METRIC_UNITS.get(metric, "")
    label = METRIC_LABELS.get(metric, metric)
    return f"{label}, {unit}" if unit else label


def _is_numeric(values: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(values)) and not pd.api.types.is_bool_dtype(values)


def _positions(values: pd.Series) -> tuple[np.ndarray, list[Any] | None]:
    """x positions of swept values: the numbers themselves, or 0, 1, ... with labels for anything else."""
    if _is_numeric(values):
        return values.to_numpy(dtype=np.float64), None
    categories = list(dict.fromkeys(values.astype(str)))
    positions = values.astype(str).map({category: i for i, category in enumerate(categories)})
    return positions.to_numpy(dtype=np.float64), categories


def _band(ax: Axes, x: np.ndarray, y: np.ndarray, low: np.ndarray, high: np.ndarray, label: str,
          color: str, style: str) -> None:
    """A line with markers and its CI band, drawn in increasing x."""
    order = np.argsort(x, kind="stable")
    ax.plot(x[order], y[order], marker="o", ms=3, color=color, linestyle=style, label=label)
    ax.fill_between(x[order], low[order], high[order], color=color, alpha=0.15, linewidth=0)


def _lines(ax: Axes, rows: pd.DataFrame, path: str, others: Sequence[str], columns: tuple[str, str, str],
           label: str, scattered: bool, style: str) -> None:
    """One band per combination of the other swept values (colour), averaged when there are too many."""
    y, low, high = columns
    colors = list(PALETTE)
    if scattered:
        x, _ = _positions(rows[path])
        mean = rows[y].to_numpy(dtype=np.float64)
        err = whiskers(mean, rows[low].to_numpy(dtype=np.float64), rows[high].to_numpy(dtype=np.float64))
        ax.errorbar(x, mean, yerr=err, fmt="o" if style == "-" else "s", ms=3, capsize=2, alpha=0.7, label=label)
        return
    groups: list[tuple[Any, pd.DataFrame]] = list(rows.groupby(list(others), sort=False)) if others else [((), rows)]
    averaged = len(groups) > SWEEP_MAX_LINES
    if averaged:
        groups = [((), rows.groupby(path, sort=False)[[y, low, high]].mean().reset_index())]
    for k, (key, group) in enumerate(groups):
        key = key if isinstance(key, tuple) else (key,)
        if averaged:
            extra = "mean over the other parameters"
        else:
            extra = ", ".join(f"{other.split('.')[-1]}={value}" for other, value in zip(others, key, strict=False))
        x, _ = _positions(group[path])
        _band(ax, x, group[y].to_numpy(dtype=np.float64), group[low].to_numpy(dtype=np.float64),
              group[high].to_numpy(dtype=np.float64), f"{label} ({extra})" if extra else label,
              colors[k % len(colors)], style)


def plot_sweep(table: pd.DataFrame, paths: Sequence[str], metric: str, baseline: str, *,
               scattered: bool = False) -> Figure:
    """Top row: ``metric`` per policy vs each swept parameter; bottom row: the paired difference to
    the baseline.  Bands (grids) or error bars (scattered QMC points) are 95% CIs."""
    rows = _displayed(table, metric)
    ncol = len(paths)
    fig = ReportFigure(figsize=(4.2 * ncol + 0.8, 6.4), layout="constrained")
    axes = fig.subplots(2, ncol, squeeze=False)
    for j, path in enumerate(paths):
        others = [p for p in paths if p != path]
        top, bottom = axes[0][j], axes[1][j]
        for k, (policy, group) in enumerate(rows.groupby("policy", sort=False)):
            style = SWEEP_LINESTYLES[k % len(SWEEP_LINESTYLES)]
            _lines(top, group, path, others, ("mean", "ci_low", "ci_high"), str(policy), scattered, style)
            if policy != baseline:
                _lines(bottom, group, path, others, ("diff", "diff_ci_low", "diff_ci_high"),
                       f"{policy} - {baseline}", scattered, SWEEP_LINESTYLES[(k - 1) % len(SWEEP_LINESTYLES)])
        bottom.axhline(0.0, color="0.5", lw=0.8)
        _, categories = _positions(rows[path])
        for ax in (top, bottom):
            if categories is not None:
                ax.set_xticks(range(len(categories)), categories, rotation=30, ha="right")
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=6)
        bottom.set_xlabel(path)
        if j == 0:
            top.set_ylabel(axis_label(metric))
            bottom.set_ylabel(f"policy - {baseline}, " + axis_label(metric, difference=True).split(", ")[-1])
    fig.suptitle(f"{METRIC_LABELS.get(metric, metric)} ({metric}) across the sweep (95% CI)")
    return fig


def _signed(value: float) -> str:
    """A difference with its sign and 3 significant digits; :data:`MISSING` when there is none."""
    return f"{value:+.3g}" if math.isfinite(value) else MISSING


def plot_sweep_heatmap(table: pd.DataFrame, x_path: str, y_path: str, metric: str, policy: str,
                       baseline: str) -> Figure:
    """The paired difference ``policy - baseline`` of ``metric`` over a two-parameter grid.

    Cells show the difference and its 95% CI; ``*`` marks CIs that exclude zero.
    """
    rows = _displayed(table, metric)
    rows = rows[rows["policy"] == policy]
    xs = list(dict.fromkeys(rows[x_path]))
    ys = list(dict.fromkeys(rows[y_path]))
    grid = np.full((len(ys), len(xs)), np.nan)
    text: dict[tuple[int, int], str] = {}
    for row in rows.to_dict("records"):
        i, j = ys.index(row[y_path]), xs.index(row[x_path])
        grid[i, j] = row["diff"]
        sig = "*" if row["diff_ci_low"] > 0 or row["diff_ci_high"] < 0 else ""
        text[(i, j)] = (f"{_signed(row['diff'])}{sig}\n"
                        f"[{_signed(row['diff_ci_low'])}, {_signed(row['diff_ci_high'])}]")
    fig = ReportFigure(figsize=(1.3 * len(xs) + 2.5, 0.8 * len(ys) + 2.0), layout="constrained")
    ax = fig.subplots()
    finite = grid[np.isfinite(grid)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (-1.0, 1.0)
    if low < 0 < high:  # both signs: a diverging map centred on "no difference"
        span = max(-low, high)
        norm: Normalize = TwoSlopeNorm(vcenter=0.0, vmin=-span, vmax=span)
        cmap = "RdBu"
    else:  # one sign: a sequential map over the range, so the cells can be told apart
        norm = Normalize(vmin=low, vmax=high if high > low else low + 1e-12)
        cmap = "Blues" if low >= 0 else "Reds_r"
    image = ax.imshow(grid, cmap=cmap, norm=norm, aspect="auto", origin="lower")
    for (i, j), cell in text.items():
        shade = float(norm(grid[i, j])) if np.isfinite(grid[i, j]) else 0.5
        dark = shade > 0.75 or (cmap != "Blues" and shade < 0.25)
        ax.text(j, i, cell, ha="center", va="center", fontsize=7, color="white" if dark else "black")
    ax.set_xticks(range(len(xs)), [str(x) for x in xs])
    ax.set_yticks(range(len(ys)), [str(y) for y in ys])
    ax.set_xlabel(x_path)
    ax.set_ylabel(y_path)
    fig.colorbar(image, ax=ax, label=f"{policy} - {baseline}: " + axis_label(metric, difference=True))
    ax.set_title(f"{metric}: {policy} - {baseline} (95% CI; * excludes 0)", fontsize=9)
    return fig
