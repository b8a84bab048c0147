"""``results.plot``: every figure of one :class:`Results` as a method, for notebooks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from simulator.io.plotting import panels, report_figures

if TYPE_CHECKING:
    from simulator.experiments.experiment import Results


def _with_figure_docs(cls: type) -> type:
    """Give each public method the docstring of the figure function of the same name (one text, two places)."""
    for name, method in vars(cls).items():
        figure = getattr(panels, name, None) or getattr(report_figures, name, None)
        if callable(figure) and callable(method) and not name.startswith("_"):
            method.__doc__ = figure.__doc__
    return cls


@_with_figure_docs
class ResultsPlots:
    """``results.plot``: the figures of one :class:`Results`, for notebooks.

    Each method returns a matplotlib figure (``ax=`` draws into an existing axes instead)::

        results.plot.response_rate()                 # one panel
        results.plot.breakdown("seat_type", "net_credit_burn_per_recruiter")
        results.plot.winners_losers()                # the report's figures: rates, credits, differences,
                                                     # winners_losers, members, threshold
    """

    def __init__(self, results: Results) -> None:
        self._results = results

    def __repr__(self) -> str:
        names = [name for name in dir(self) if not name.startswith("_")]
        return f"<plots: {', '.join(names)}>"

    def response_rate(self, ax: Axes | None = None, **options: Any) -> Figure:
        return panels.response_rate(self._results, ax, **options)

    def acceptance_rate(self, ax: Axes | None = None, **options: Any) -> Figure:
        return panels.acceptance_rate(self._results, ax, **options)

    def credit_balance(self, ax: Axes | None = None) -> Figure:
        return panels.credit_balance(self._results, ax)

    def net_credit_burn(self, ax: Axes | None = None, **options: Any) -> Figure:
        return panels.net_credit_burn(self._results, ax, **options)

    def member_fatigue(self, ax: Axes | None = None) -> Figure:
        return panels.member_fatigue(self._results, ax)

    def member_distribution(self, quantity: str = "received", ax: Axes | None = None) -> Figure:
        return panels.member_distribution(self._results, quantity, ax)

    def threshold_events(self, ax: Axes | None = None) -> Figure:
        return panels.threshold_events(self._results, ax)

    def in_improvement(self, ax: Axes | None = None) -> Figure:
        return panels.in_improvement(self._results, ax)

    def threshold_share(self, by: str = "group", ax: Axes | None = None, **options: Any) -> Figure:
        return panels.threshold_share(self._results, by, ax, **options)

    def differences(self, ax: Axes | None = None, **options: Any) -> Figure:
        return panels.differences(self._results, ax, **options)

    def breakdown(self, by: str = "personalization_band", metric: str = "response_rate",
                  ax: Axes | None = None) -> Figure:
        return panels.breakdown(self._results, by, metric, ax)

    def rates(self) -> Figure:
        return report_figures.rates(self._results)

    def credits(self) -> Figure:
        return report_figures.credits(self._results)

    def winners_losers(self) -> Figure:
        return report_figures.winners_losers(self._results)

    def members(self) -> Figure:
        return report_figures.members(self._results)

    def threshold(self, by: str = "group") -> Figure:
        return report_figures.threshold(self._results, by)
