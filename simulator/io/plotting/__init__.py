"""Figures of experiment results - the only package that imports matplotlib.

Every figure is a :class:`matplotlib.figure.Figure` made without pyplot (nothing global is
touched, nothing stays open, no display is needed) that a notebook shows when a cell returns it.
A policy has the same colour in every figure; bands and error bars are 95% Student-t intervals
over replications.  The modules, by what they draw:

- :mod:`.canvas`: palette, figures, axes styling, legends, PNG bytes;
- :mod:`.series`: the numbers of the figures of one Results (daily bands, subgroup intervals);
- :mod:`.panels`: single-panel figures of one Results (rates over time, differences, subgroups);
- :mod:`.report_figures`: the report's figures (:data:`FIGURES`) and writing them as PNG files;
- :mod:`.results_plots`: ``results.plot`` for notebooks (:class:`ResultsPlots`);
- :mod:`.sweep_figures`, :mod:`.sensitivity_figures`, :mod:`.waterfall_figures`: the figures of
  ``inmail-sim sweep``, ``sensitivity`` and ``explain``;
- :mod:`.world_figures`: the per-world differences of a run across plausible worlds (:func:`plot_worlds`).

Notebook use: ``results.plot.response_rate()``, ``results.plot.winners_losers()``, ...; files:
:func:`write_figures` (what ``inmail-sim run`` does; ``executor=`` draws the figures as parallel
tasks, as ``run --workers K`` does on its pool).  Every name below is importable from here.
"""

from __future__ import annotations

from simulator.io.plotting.canvas import PALETTE, ReportFigure, render_png
from simulator.io.plotting.panels import (
    BREAKDOWN_LABELS,
    BREAKDOWN_METRIC_AXES,
    MEMBER_QUANTITIES,
    acceptance_rate,
    breakdown,
    credit_balance,
    differences,
    in_improvement,
    member_distribution,
    member_fatigue,
    net_credit_burn,
    response_rate,
    threshold_events,
    threshold_share,
)
from simulator.io.plotting.report_figures import (
    BREAKDOWN_PANELS,
    FIGURES,
    FIGURES_DIR,
    FigureError,
    FigureSpec,
    credits,
    members,
    rates,
    render_figures,
    threshold,
    winners_losers,
    write_figures,
    write_pngs,
)
from simulator.io.plotting.results_plots import ResultsPlots
from simulator.io.plotting.sensitivity_figures import plot_sobol, plot_tornado
from simulator.io.plotting.series import (
    RATE_PARTS,
    ROLLING_DAYS,
    Band,
    bin_labels,
    daily_bands,
    group_stats,
    has_series,
    member_frame,
    policy_colors,
    policy_order,
)
from simulator.io.plotting.sweep_figures import SWEEP_LINESTYLES, SWEEP_MAX_LINES, plot_sweep, plot_sweep_heatmap
from simulator.io.plotting.waterfall_figures import waterfall, waterfall_figure
from simulator.io.plotting.world_figures import per_world_differences, plot_worlds, world_differences

__all__ = [
    "BREAKDOWN_LABELS", "BREAKDOWN_METRIC_AXES", "BREAKDOWN_PANELS", "FIGURES", "FIGURES_DIR", "MEMBER_QUANTITIES",
    "PALETTE", "RATE_PARTS", "ROLLING_DAYS", "SWEEP_LINESTYLES", "SWEEP_MAX_LINES",
    "Band", "FigureError", "FigureSpec", "ReportFigure", "ResultsPlots",
    "acceptance_rate", "bin_labels", "breakdown", "credit_balance", "credits", "daily_bands", "differences",
    "group_stats", "has_series", "in_improvement", "member_distribution", "member_fatigue", "member_frame",
    "members", "net_credit_burn", "per_world_differences", "plot_sobol", "plot_sweep", "plot_sweep_heatmap",
    "plot_tornado", "plot_worlds", "policy_colors", "policy_order", "rates", "render_figures", "render_png",
    "response_rate", "threshold", "threshold_events", "threshold_share", "waterfall", "waterfall_figure",
    "winners_losers", "world_differences", "write_figures", "write_pngs",
]
