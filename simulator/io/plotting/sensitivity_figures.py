"""Figures of a sensitivity analysis (``inmail-sim sensitivity``): Sobol indices and a tornado chart.

They take the tidy tables of :mod:`simulator.experiments.sensitivity` (``sensitivity.csv``,
``tornado.csv`` as DataFrames) and return a figure.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from simulator.io.plotting.canvas import PALETTE, ReportFigure
from simulator.io.tables import MISSING


def _short_path(path: str) -> str:
    """The last three parts of a dotted parameter path."""
    parts = path.split(".")
    return ".".join(parts[-3:]) if len(parts) > 3 else path


def _value_text(value: Any) -> str:
    """An input value: 3 significant digits for a float, :data:`MISSING` for NaN, as written otherwise."""
    if isinstance(value, float):
        return f"{value:.3g}" if math.isfinite(value) else MISSING
    return str(value)


def plot_sobol(indices: pd.DataFrame, output: str) -> Figure:
    """First-order (S1) and total (ST) Sobol indices of one output, with bootstrap CIs, largest ST on top."""
    rows = indices[indices["output"] == output].sort_values("ST", ascending=True)
    y = np.arange(len(rows))
    fig = ReportFigure(figsize=(7.0, 1.0 + 0.45 * len(rows)), layout="constrained")
    ax = fig.subplots()
    height = 0.38
    for k, (column, label) in enumerate((("S1", "first order S1"), ("ST", "total ST"))):
        value = rows[column].to_numpy(dtype=np.float64)
        low = rows[f"{column}_ci_low"].to_numpy(dtype=np.float64)
        high = rows[f"{column}_ci_high"].to_numpy(dtype=np.float64)
        err = np.vstack([np.clip(value - low, 0, None), np.clip(high - value, 0, None)])
        err = np.where(np.isfinite(err), err, 0.0)
        ax.barh(y + (k - 0.5) * height, value, height=height, xerr=err, capsize=2, label=label, color=PALETTE[k])
    ax.set_yticks(y, [_short_path(p) for p in rows["parameter"]])
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
    for column, half_width, label, color in (("effect_low", "effect_low_hw", "input at low", PALETTE[0]),
                                             ("effect_high", "effect_high_hw", "input at high", PALETTE[1])):
        value = rows[column].to_numpy(dtype=np.float64)
        err = rows[half_width].to_numpy(dtype=np.float64)
        ax.barh(y, value, left=base, height=0.6, color=color, alpha=0.75, label=label,
                xerr=np.where(np.isfinite(err), err, 0.0), capsize=2)
    labels = [f"{_short_path(row['parameter'])}\n{_value_text(row['low'])} / {_value_text(row['high'])}"
              for row in rows.to_dict("records")]
    ax.set_yticks(y, labels, fontsize=8)
    ax.axvline(base, color="0.2", lw=1.0)
    ax.set_xlabel(f"{output} (base {base:.4g})")
    ax.set_title(f"Tornado: {output}\none input at its low / high, the others as in the scenario (95% CI)",
                 fontsize=9)
    ax.legend(fontsize=8, loc="best")
    ax.grid(axis="x", alpha=0.3)
    return fig
