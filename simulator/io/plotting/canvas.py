"""What every figure is drawn on: the palette, figures without pyplot, axes styling, legends, PNG bytes.

Figures are :class:`matplotlib.figure.Figure` objects, not pyplot ones: nothing global is touched,
nothing stays open, no display is needed (rendering uses Agg), and a notebook shows the returned
figure (:class:`ReportFigure`).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from typing import Any

import matplotlib.dates as mdates
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

PALETTE: tuple[str, ...] = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
"""Okabe-Ito colours (readable by colour-blind readers); the baseline takes the first."""

PANEL_SIZE: tuple[float, float] = (6.4, 4.0)
"""Size (inches) of a figure of one panel."""


class ReportFigure(Figure):
    """A matplotlib ``Figure`` that shows itself in Jupyter as a PNG, with no pyplot state.

    The figures are made without pyplot (nothing accumulates in scripts or long sweeps), so no
    backend registers them with IPython; ``_repr_png_`` lets a notebook display the figure a
    cell returns, with or without ``%matplotlib inline``.
    """

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=100)
        return buffer.getvalue()


def figure_and_axes(ax: Axes | None, size: tuple[float, float] = PANEL_SIZE) -> tuple[Figure, Axes]:
    """``ax`` and its figure, or a new one-panel :class:`ReportFigure` of ``size`` when ``ax`` is None."""
    if ax is not None:
        return ax.figure, ax  # type: ignore[return-value]
    fig = ReportFigure(figsize=size, layout="constrained")
    return fig, fig.add_subplot()


def panel_grid(rows: int, cols: int, size: tuple[float, float]) -> tuple[Figure, list[Axes]]:
    """A new figure of ``rows`` x ``cols`` panels and its axes, row by row."""
    fig = ReportFigure(figsize=size, layout="constrained")
    return fig, list(np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel())


def style_axes(ax: Axes, title: str, ylabel: str, xlabel: str | None = None) -> None:
    """The house style of a panel: title at the left, light grid, no top or right spine."""
    ax.set_title(title, fontsize=11, loc="left")
    ax.set_ylabel(ylabel)
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    ax.grid(True, alpha=0.3, linewidth=0.6)
    ax.spines[["top", "right"]].set_visible(False)


def date_axis(ax: Axes) -> None:
    """Concise date ticks (3 to 8 of them) on the x axis."""
    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def add_legend(ax: Axes, **kwargs: Any) -> None:
    """A frameless legend, if the panel has anything labelled."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(frameon=False, fontsize=9, **kwargs)


def shared_legend(fig: Figure, axes: Sequence[Axes], keep: Sequence[Axes] = ()) -> None:
    """One legend of the policies above the panels instead of one per panel.

    Axes in ``keep`` keep their own legend (e.g. one that also explains line styles); then no
    figure legend is added unless none of them has a legend.
    """
    handles, labels = next((found for found in (a.get_legend_handles_labels() for a in axes if a not in keep)
                            if found[0]), ([], []))
    for panel in axes:
        legend = panel.get_legend()
        if panel not in keep and legend is not None:
            legend.remove()
    if handles and not any(a.get_legend() is not None for a in keep):
        fig.legend(handles, labels, loc="outside upper center", ncols=min(len(labels), 6), frameon=False)


def render_png(fig: Figure, dpi: int = 110) -> bytes:
    """The figure as PNG bytes, laid out once and drawn once.

    ``savefig`` on a figure with a layout engine first draws the whole figure without output
    (to size the text), lays it out, then draws it again; the layout needs only the text sizes,
    which the engine measures itself.  So the layout runs here, at the output dpi, and the
    figure is saved without its engine (restored afterwards): the same pixels, one draw fewer.
    """
    engine = fig.get_layout_engine()
    buffer = io.BytesIO()
    if engine is None or not fig.axes:
        fig.savefig(buffer, format="png", dpi=dpi, facecolor="white")
        return buffer.getvalue()
    shown_dpi = fig.dpi
    try:
        fig.dpi = dpi
        with contextlib.suppress(ValueError):  # as Figure.draw does: keep the positions it had
            engine.execute(fig)
        fig.set_layout_engine(None)
        fig.savefig(buffer, format="png", dpi=dpi, facecolor="white")
    finally:
        fig.set_layout_engine(engine)
        fig.dpi = shown_dpi
    return buffer.getvalue()
