"""The report's figures of one :class:`Results` (several panels each), as PNG bytes or files.

:data:`FIGURES` lists them in report order; ``inmail-sim run`` writes them with
:func:`write_figures` and ``inmail-sim report`` embeds them (:func:`render_figures`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from matplotlib.figure import Figure

from simulator.experiments.runner import atomic_write
from simulator.io.plotting.canvas import panel_grid, render_png, shared_legend
from simulator.io.plotting.group_outcome_panels import group_outcome, responses_change
from simulator.io.plotting.panels import (
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

if TYPE_CHECKING:
    from simulator.experiments.experiment import Results

BREAKDOWN_PANELS: tuple[str, ...] = ("personalization_band", "seat_type", "behaviour")
"""The recruiter subgroupings of :func:`winners_losers`, one row of panels each."""

FIGURES_DIR = "figures"
"""The sub-folder of a run folder that holds the figures."""


def rates(results: Results) -> Figure:
    """Response and acceptance rate over time, per policy (two panels)."""
    fig, axes = panel_grid(1, 2, (11, 4))
    response_rate(results, axes[0])
    acceptance_rate(results, axes[1])
    shared_legend(fig, axes)
    return fig


def credits(results: Results) -> Figure:
    """Credit balance and cumulative net credit burn per recruiter over time (two panels)."""
    fig, axes = panel_grid(1, 2, (11, 4))
    credit_balance(results, axes[0])
    net_credit_burn(results, axes[1])
    shared_legend(fig, axes)
    return fig


WINNERS_LOSERS_COLUMNS = 4
"""Panels per subgrouping: change in responses, response rate, stock-out days, credits per response."""


def winners_losers(results: Results, keys: Sequence[str] = BREAKDOWN_PANELS) -> Figure:
    """Who ends up worse off, by personalization band, seat type and behaviour (one row each).

    Per row: the paired change in responses (losers labelled "worse off"), the response rate, the
    days short of credits per recruiter (ratio policy/baseline written on top, red when worse off)
    and the net credits burned per response.  With one policy there is no change: the rate and
    net credits per recruiter are drawn instead.
    """
    present = set(results.breakdowns["by"])
    keys = [key for key in keys if key in present]
    if results.group_outcomes.empty:
        fig, axes = panel_grid(len(keys), 2, (11, 3.3 * len(keys)))
        for i, by in enumerate(keys):
            breakdown(results, by, "response_rate", axes[2 * i])
            breakdown(results, by, "net_credit_burn_per_recruiter", axes[2 * i + 1])
        shared_legend(fig, axes)
        return fig
    cols = WINNERS_LOSERS_COLUMNS
    fig, axes = panel_grid(len(keys), cols, (20, 3.6 * len(keys)))
    for i, by in enumerate(keys):
        responses_change(results, by, axes[cols * i])
        breakdown(results, by, "response_rate", axes[cols * i + 1])
        group_outcome(results, by, "stockout_days_per_recruiter", axes[cols * i + 2])
        group_outcome(results, by, "credits_per_response", axes[cols * i + 3])
    shared_legend(fig, [axes[1], *axes[:1], *axes[2:]])  # the policies' colours, from a panel of levels
    return fig


def members(results: Results) -> Figure:
    """The member side: InMails received and unanswered per active member, and fatigue over time."""
    fig, axes = panel_grid(1, 3, (14, 4.2))
    member_distribution(results, "received", axes[0])
    member_distribution(results, "unanswered", axes[1])
    member_fatigue(results, axes[2])
    shared_legend(fig, axes)
    return fig


def threshold(results: Results, by: str = "group") -> Figure:
    """The response-rate threshold: events over time, seats in an Improvement Period, who is caught."""
    fig, axes = panel_grid(2, 2, (11, 7.5))
    threshold_events(results, axes[0])
    in_improvement(results, axes[1])
    threshold_share(results, by, axes[2], metric="warnings")
    threshold_share(results, by, axes[3], metric="improvement_periods")
    shared_legend(fig, axes, keep=[axes[0]])
    return fig


@dataclass(frozen=True)
class FigureSpec:
    """A report figure: file name, heading, what it shows."""

    name: str
    title: str
    caption: str
    make: Callable[[Results], Figure]


FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec("rates", "Response and acceptance rates over time",
               "Rates of the InMails sent each day (eventual outcomes), as 7-day rolling ratios; line = mean over "
               "replications, band = 95% confidence interval.", rates),
    FigureSpec("credits", "Credits over time",
               "Left: unspent credits per recruiter at the end of each day. Right: credits spent minus credits "
               "refunded per recruiter, cumulative since the start. Band = 95% CI over replications.", credits),
    FigureSpec("differences", "Every metric: what changes, and how sure we are",
               "Relative change of each metric against the baseline with its 95% paired CI (common random "
               "numbers); filled = significant at 5%. The absolute difference is written at the right.", differences),
    FigureSpec("winners_losers", "Winners and losers among recruiters",
               "Per recruiter subgroup (one row per subgrouping): the paired change in responses against the "
               "baseline (95% CI; filled = CI excludes 0), the response rate, the days short of credits per "
               "recruiter (ratio policy/baseline on top) and the net credits burned per response (mean, 95% CI; "
               "* = paired difference significant). Red \"worse off\": the CI of responses lies below 0 or that "
               "of stock-out days above 0.", winners_losers),
    FigureSpec("members", "The member side",
               "Share of active members by the number of InMails they received (left) and left unanswered "
               "(middle) over the run - bars: mean over replications, whiskers: 95% CI - and the mean member "
               "fatigue over time (band = 95% CI).", members),
    FigureSpec("threshold", "The response-rate threshold",
               "Warnings and Improvement Periods over time (cumulative), recruiters in an Improvement Period, "
               "and the share of each recruiter group that the threshold catches (95% CI).", threshold),
)
"""The figures ``inmail-sim run`` writes and the report shows, in report order."""


def render_figures(results: Results, dpi: int = 110, errors: dict[str, str] | None = None,
                   executor: Executor | None = None) -> dict[str, bytes]:
    """Every figure of :data:`FIGURES` as PNG bytes; a figure that fails is left out and noted in ``errors``.

    With an ``executor`` (e.g. the run's worker pool) each figure is drawn as one task, the
    slowest first, and comes back as PNG bytes: the figures are independent, so they draw in
    parallel.  Without one they are drawn here, one after the other.  Either way the result
    is in report order and holds the same images.
    """
    drawn: dict[str, Callable[[], bytes]]
    if executor is None:
        drawn = {spec.name: functools.partial(draw_png, spec.make, results, dpi) for spec in FIGURES}
    else:
        futures = {spec.name: executor.submit(draw_png, spec.make, results, dpi)
                   for spec in sorted(FIGURES, key=lambda spec: spec.name not in SLOWEST_FIRST)}
        drawn = {spec.name: futures[spec.name].result for spec in FIGURES}
    out: dict[str, bytes] = {}
    for name, png in drawn.items():
        try:
            out[name] = png()
        except Exception as exc:  # one broken figure must not cost the others
            if errors is None:
                raise
            errors[name] = f"{type(exc).__name__}: {exc}"
    return out


SLOWEST_FIRST: tuple[str, ...] = ("threshold", "winners_losers", "members")
"""The figures with the most panels, submitted first so that no worker is left with one at the end."""


def draw_png(make: Callable[[Results], Figure], results: Results, dpi: int) -> bytes:
    """``make(results)`` as PNG bytes: one figure, as a task of a worker pool."""
    return render_png(make(results), dpi)


class FigureError(RuntimeError):
    """Some figures could not be drawn (the others were written)."""


def _bytes_writer(data: bytes) -> Callable[[Path], int]:
    """A function that writes ``data`` to the file it is given."""
    return lambda path: path.write_bytes(data)


def write_pngs(pngs: dict[str, bytes], folder: str | Path) -> dict[str, Path]:
    """Write PNG bytes as ``folder/figures/NAME.png`` (atomically); return the paths."""
    target = Path(folder) / FIGURES_DIR
    target.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, data in pngs.items():
        path = target / f"{name}.png"
        atomic_write(path, _bytes_writer(data))
        paths[name] = path
    return paths


def write_figures(results: Results, folder: str | Path, dpi: int = 110,
                  executor: Executor | None = None) -> dict[str, Path]:
    """Draw every figure of :data:`FIGURES` into ``folder/figures/NAME.png``; return the paths.

    ``executor``: draw the figures as parallel tasks on it (see :func:`render_figures`).
    Raises :class:`FigureError` naming the figures that failed, after writing all the others.
    """
    errors: dict[str, str] = {}
    paths = write_pngs(render_figures(results, dpi, errors, executor), folder)
    if errors:
        raise FigureError("; ".join(f"{name}: {why}" for name, why in errors.items()))
    return paths
