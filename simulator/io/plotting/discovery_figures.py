"""The trade-off figure of ``inmail-sim discover``: coverage against density along PRIM's peeling trajectory.

Each peeling step is a point (colour = number of restricted parameters); the step the choice rule
picked is ringed, the reported box (after dropping insignificant edges and pasting) is a star, and
the rule's coverage floor is a dashed line.
Moving along the trajectory buys density (how pure the box is) with coverage (how much of the
condition it explains).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import BoundaryNorm, ListedColormap, to_rgba
from matplotlib.figure import Figure

from simulator.io.plotting.canvas import PALETTE, figure_and_axes, style_axes


def tradeoff(trajectory: pd.DataFrame, reported: tuple[float, float] | None = None, ax: Axes | None = None, *,
             title: str = "", min_coverage: float | None = None) -> Figure:
    """Coverage (x) vs density (y) of every step of ``trajectory`` (``trajectory.csv``'s columns);
    ``reported``: (coverage, density) of the reported box, drawn as a star; ``min_coverage``: the choice
    rule's coverage floor, a dashed line."""
    fig, ax = figure_and_axes(ax, (6.4, 4.4))
    counts = trajectory["n_restricted"].to_numpy(dtype=int) if len(trajectory) else np.zeros(0, dtype=int)
    top = int(counts.max()) if len(counts) else 0
    steps = colormaps["viridis"].resampled(max(top, 1))
    colours = ListedColormap(np.vstack([to_rgba("0.6"), steps(np.arange(max(top, 1)))])[: top + 1])
    norm = BoundaryNorm(np.arange(-0.5, top + 1.5), colours.N)
    coverage = trajectory["coverage"].to_numpy(dtype=float)
    density = trajectory["density"].to_numpy(dtype=float)
    ax.plot(coverage, density, color="0.75", linewidth=0.8, zorder=1)
    points = ax.scatter(coverage, density, c=counts, cmap=colours, norm=norm, s=22, zorder=2, gid="trajectory")
    chosen = trajectory["chosen"].astype(bool).to_numpy() if len(trajectory) else np.zeros(0, dtype=bool)
    if chosen.any():
        ax.scatter(coverage[chosen], density[chosen], s=140, facecolors="none", edgecolors="black",
                   linewidths=1.4, zorder=3, label="chosen step", gid="chosen")
    if reported is not None:
        ax.scatter([reported[0]], [reported[1]], marker="*", s=220, color=PALETTE[1], edgecolors="black",
                   linewidths=0.6, zorder=4, label="reported box", gid="reported")
    if len(trajectory):
        bar = fig.colorbar(points, ax=ax, ticks=np.arange(top + 1), pad=0.02)
        bar.set_label("restricted parameters")
    if min_coverage is not None and min_coverage > 0:
        ax.axvline(min_coverage, color="0.4", linestyle="--", linewidth=0.8, label="coverage floor",
                   gid="min_coverage")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    style_axes(ax, title or "PRIM peeling trajectory", "density (share of the box where it holds)",
               "coverage (share of the worlds where it holds that are in the box)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(frameon=False, fontsize=9, loc="lower left")
    return fig
