"""Results with their presentation: the printed table, the figures and the run folder.

:class:`ResultsView` is what the public API hands to analysts (``res.table()``, ``res.plot.response_rate()``,
``res.write(dir)``); the experiments layer computes a plain :class:`~simulator.experiments.experiment.Results`
and knows nothing of tables, figures or files.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from simulator.experiments.experiment import Results

if TYPE_CHECKING:
    from simulator.io.plotting import ResultsPlots


@dataclasses.dataclass
class ResultsView(Results):
    """:class:`Results` plus ``table()``, ``plot`` and ``write()``."""

    @classmethod
    def of(cls, results: Results) -> ResultsView:
        """The same results (no copy of the frames), with the presentation methods."""
        if isinstance(results, cls):
            return results
        return cls(**{f.name: getattr(results, f.name) for f in dataclasses.fields(results)})

    def table(self, width: int = 100) -> str:
        """The comparison as printed by ``inmail-sim run``."""
        from simulator.io.tables import format_results

        return format_results(self, width)

    @property
    def plot(self) -> ResultsPlots:
        """Figures of these results (``results.plot.response_rate()``, ...; see :mod:`simulator.io.plotting`)."""
        from simulator.io.plotting import ResultsPlots  # matplotlib is imported only when plotting

        return ResultsPlots(self)

    def write(self, out: str | Path) -> Path:
        """Write the run folder (the same files as ``inmail-sim run --out``)."""
        from simulator.io.outputs import write_run

        return write_run(self, out)
