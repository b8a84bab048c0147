"""The public entry points that return presentable results (``from simulator import run_scenario``).

The experiments layer computes; this module, above io, wraps what it returns in
:class:`~simulator.io.view.ResultsView` so that a notebook can print, plot and write it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from simulator.experiments import experiment
from simulator.experiments.discovery import DiscoveryResult, discover
from simulator.io.discovery_files import tradeoff_figure
from simulator.io.run_comparison import compare_runs
from simulator.io.run_index import list_runs
from simulator.io.view import ResultsView
from simulator.scenario import Overrides, Scenario, load_scenario

Results = ResultsView
"""The results type of the public API."""

__all__ = ["DiscoveryResult", "Results", "compare_runs", "discover", "list_runs", "run_experiment", "run_scenario",
           "tradeoff_figure"]


def run_experiment(scenario: Scenario, **options: Any) -> ResultsView:
    """:func:`simulator.experiments.experiment.run_experiment`, returning :class:`ResultsView`."""
    return ResultsView.of(experiment.run_experiment(scenario, **options))


def run_scenario(source: str | Path | Mapping[str, Any], overrides: Overrides = (), scale: float | None = None,
                 **options: Any) -> ResultsView:
    """Load a scenario (file path or mapping, with ``--set``-style overrides) and run it.

    ``scale`` (in (0, 10]) multiplies members and every recruiter group together after the
    overrides: ``scale=0.2`` is a quick look at a fifth of the market that keeps the answer.

    ``options`` go to :func:`run_experiment` (``replications``, ``root_seed``, ``workers``,
    ``precision``, ...).  The notebook one-liner::

        res = run_scenario("scenarios/old_vs_new.yaml", ["market.members.count=20000"], replications=5)
        res.comparison, res.summary, res.replications, res.timeseries
    """
    return ResultsView.of(experiment.run_experiment(load_scenario(source, overrides, scale=scale), **options))
