"""Figures of the report's face-validity section: the run's series beside the documents' figures.

The frames come from :mod:`simulator.io.face_validity`; each band is the range across replications.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from simulator.io.plotting.canvas import PALETTE, add_legend, date_axis, figure_and_axes, panel_grid, style_axes


def _colour(policies: Sequence[str], name: str) -> str:
    return PALETTE[list(policies).index(name) % len(PALETTE)]


def _band(ax: Axes, frame: pd.DataFrame, x: str, prefix: str, colour: str, label: str) -> None:
    """A line of ``{prefix}mean`` with the shaded range ``{prefix}low`` .. ``{prefix}high``."""
    dates = pd.to_datetime(frame[x])
    ax.fill_between(dates, 100 * frame[f"{prefix}low"], 100 * frame[f"{prefix}high"], color=colour, alpha=0.18,
                    linewidth=0)
    ax.plot(dates, 100 * frame[f"{prefix}mean"], color=colour, linewidth=1.6, marker=".", label=label)


def response_rate_figure(weekly: pd.DataFrame, policies: Sequence[str], switches: Mapping[str, dt.date],
                         optimal: tuple[float, float], bar: float | None = None, ax: Axes | None = None) -> Figure:
    """Weekly response rate per policy (band: range across replications), the switch dates marked,
    the documents' "optimal" band shaded and the threshold's bar dashed."""
    fig, ax = figure_and_axes(ax, (9.0, 4.8))
    ax.axhspan(100 * optimal[0], 100 * optimal[1], color="0.85", alpha=0.5, linewidth=0,
               label=f"documents: {100 * optimal[0]:.0f}-{100 * optimal[1]:.0f}% 'optimal'")
    if bar is not None:
        ax.axhline(100 * bar, color="0.3", linestyle="--", linewidth=1, label=f"threshold bar {100 * bar:.0f}%")
    for name in policies:
        rows = weekly[weekly["policy"] == name]
        if not rows.empty:
            _band(ax, rows, "week", "", _colour(policies, name), name)
    for name, date in sorted(switches.items(), key=lambda item: item[1]):
        ax.axvline(pd.Timestamp(date), color=_colour(policies, name), linestyle=":", linewidth=1.4)
        ax.annotate(f"{name} switches {date:%Y-%m-%d}", (pd.Timestamp(date), 0.02), xycoords=("data", "axes fraction"),
                    xytext=(-3, 0), textcoords="offset points", rotation=90, ha="right", va="bottom", fontsize=8,
                    color="0.25")
    date_axis(ax)
    style_axes(ax, "Response rate by week (band: range across replications)", "response rate (%)")
    add_legend(ax, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncols=3)
    return fig


def threshold_share_figure(monthly: pd.DataFrame, policies: Sequence[str], bound: float) -> Figure:
    """Per month: reviewed seats warned, and in an Improvement Period on an average day, against the bound."""
    fig, axes = panel_grid(1, 2, (11.0, 3.8))
    titles = (("warned_", "Reviewed seats warned that month"), ("ip_", "Reviewed seats in an Improvement Period"))
    for ax, (prefix, title) in zip(axes, titles, strict=True):
        ax.axhline(100 * bound, color="0.3", linestyle="--", linewidth=1,
                   label=f"documents: under {100 * bound:.0f}% misuse bulk")
        for name in policies:
            rows = monthly[monthly["policy"] == name]
            if not rows.empty:
                _band(ax, rows, "month", prefix, _colour(policies, name), name)
        date_axis(ax)
        style_axes(ax, title, "share of reviewed seats (%)")
        ax.set_ylim(bottom=0)
        add_legend(ax, loc="upper right")
    return fig


__all__ = ["response_rate_figure", "threshold_share_figure"]
