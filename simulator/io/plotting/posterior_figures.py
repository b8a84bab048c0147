"""The figures of ``inmail-sim calibrate --method bayes``: the weighted posterior in pairs, and the
posterior predictive of each target against its published band."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from simulator.io.plotting.canvas import PALETTE, panel_grid, style_axes

PAIR_PANEL = 2.3
"""Inches per panel of the pairs figure."""


def weighted_correlation(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    """The weighted Pearson correlation (0 when either is constant): a ridge between two parameters has |r|
    near 1."""
    w = w / w.sum()
    dx, dy = x - w @ x, y - w @ y
    sx, sy = float(w @ dx**2), float(w @ dy**2)
    return float(w @ (dx * dy)) / math.sqrt(sx * sy) if sx > 0 and sy > 0 else 0.0


def posterior_pairs(posterior: pd.DataFrame, names: Sequence[str],
                    ranges: Sequence[tuple[float, float]]) -> Figure:
    """Pairwise weighted 2-D histograms (below the diagonal), weighted marginal histograms (diagonal).

    Each off-diagonal panel shows the weighted correlation.  Each axis spans the parameter's prior
    range (``ranges``: the prior's 0.5%-99.5% quantiles for an unbounded prior), so how much the data
    narrowed it - and a ridge between two parameters - shows.
    """
    k = len(names)
    fig, axes = panel_grid(k, k, (PAIR_PANEL * k + 0.6, PAIR_PANEL * k + 0.4))
    w = posterior["weight"].to_numpy(dtype=np.float64)
    for i in range(k):
        for j in range(k):
            ax = axes[i * k + j]
            xi, xj = posterior[names[j]].to_numpy(), posterior[names[i]].to_numpy()
            if i == j:
                ax.hist(xi, bins=30, range=ranges[j], weights=w, color=PALETTE[0], alpha=0.85)
                ax.set_xlim(ranges[j])
                ax.set_yticks([])
            elif i > j:
                ax.hist2d(xi, xj, bins=30, range=[ranges[j], ranges[i]], weights=w, cmap="Blues", cmin=1e-12)
                ax.text(0.97, 0.95, f"r = {weighted_correlation(xi, xj, w):+.2f}", transform=ax.transAxes,
                        ha="right", va="top", fontsize=7, color="#333333")
                ax.set_xlim(ranges[j])
                ax.set_ylim(ranges[i])
            else:
                ax.set_axis_off()
                continue
            if i == k - 1:
                ax.set_xlabel(names[j], fontsize=8)
            if j == 0 and i > 0:
                ax.set_ylabel(names[i], fontsize=8)
            ax.tick_params(labelsize=7)
    fig.suptitle("Posterior of the uncertain parameters (axes: prior range)", fontsize=11)
    return fig


def predictive_intervals(predictive: pd.DataFrame) -> Figure:
    """Each target's posterior-predictive 95% interval and mean against its published band (shaded)."""
    n = len(predictive)
    fig, axes = panel_grid(n, 1, (6.4, 1.5 * n + 0.6))
    for ax, r in zip(axes, predictive.itertuples(index=False), strict=True):
        low = r.low if math.isfinite(r.low) else min(0.0, r.q025)
        high = r.high if math.isfinite(r.high) else max(r.q975, r.low) * 1.2
        ax.axvspan(low, high, color=PALETTE[2], alpha=0.25, label="published band")
        ax.plot([r.q025, r.q975], [0, 0], color=PALETTE[0], linewidth=3, label="predictive 95%")
        ax.plot([r.mean], [0], "o", color=PALETTE[1], label="mean")
        ax.set_yticks([])
        style_axes(ax, f"{r.target}: {r.inside_share:.0%} inside", "")
        span = [min(low, r.q025), max(high, r.q975)]
        pad = 0.1 * (span[1] - span[0] or 1.0)
        ax.set_xlim(span[0] - pad, span[1] + pad)
    axes[0].legend(fontsize=7, loc="upper right", frameon=False)
    return fig
