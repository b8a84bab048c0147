"""The public entry points that return presentable results (``from simulator import run_scenario``).

The experiments layer computes; this module, above io, wraps what it returns in
:class:`~simulator.io.view.ResultsView` so that a notebook can print, plot and write it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from simulator.experiments import experiment
from simulator.experiments.discovery import DiscoveryResult, discover
from simulator.io.discovery_files import tradeoff_figure
from simulator.io.run_comparison import compare_runs
from simulator.io.run_index import list_runs
from simulator.io.view import ResultsView
from simulator.io.world_files import WorldsView
from simulator.scenario import Overrides, Scenario, load_scenario
from simulator.scenario.decision import Requirement
from simulator.scenario.uncertain import UncertainParameter

Results = ResultsView
"""The results type of the public API."""

__all__ = ["DiscoveryResult", "Results", "WorldsView", "compare_runs", "discover", "list_runs", "optimize",
           "run_experiment", "run_scenario", "run_worlds", "tradeoff_figure"]


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


def run_worlds(source: str | Path | Mapping[str, Any] | Scenario, overrides: Overrides = (), *,
               worlds: str | Path | None = None, world_count: int | None = None,
               replications: int | None = None, scale: float | None = None,
               uncertain: Sequence[UncertainParameter] | None = None,
               decision: Sequence[Requirement] | None = None,
               **options: Any) -> WorldsView:
    """Run a scenario's policies across plausible worlds; ``.worlds_comparison`` and ``.robustness`` answer.

    ``worlds``: ``"prior"`` or a ``posterior.csv`` path (default: the scenario's ``worlds:`` key);
    ``world_count``: world draws (default 40); ``replications``: per world (default 2, at least 2).
    ``uncertain`` / ``decision``: the uncertain parameters and requirements (default: the scenario's
    ``uncertain:`` and ``decision:`` blocks).  ``options`` go to the runner (``workers``, ``dask``,
    ``executor``, ``progress``, ...)::

        res = run_worlds("scenarios/old_vs_new.yaml", worlds="prior", world_count=20)
        res.worlds_comparison, res.robustness, print(res.table())
    """
    from simulator.experiments.world_study import run_worlds as run

    scenario = source if isinstance(source, Scenario) else load_scenario(source, overrides, scale=scale)
    parameters = tuple(uncertain if uncertain is not None else scenario.uncertain)
    requirements = tuple(decision if decision is not None else scenario.decision)
    where = worlds if worlds is not None else scenario.worlds
    if where is None:
        raise ValueError("run_worlds needs worlds='prior' or a posterior.csv path (or a worlds: key in the scenario)")
    return WorldsView(run(scenario, parameters, where, requirements=requirements, world_count=world_count,
                          per_world=replications, **options))


def optimize(source: str | Path | Mapping[str, Any] | Scenario, overrides: Overrides = (), *,
             scale: float | None = None, out: str | Path | None = None, workers: int = 1, dask: str | None = None,
             trials: int | None = None, seed: int | None = None, worlds: str | None = None,
             world_count: int | None = None, stop_after: int | None = None) -> Any:
    """Search the scenario's ``optimize:`` levers (``inmail-sim optimize``); returns the
    :class:`~simulator.experiments.search.SearchResult` (``.trials``, ``.pareto``, ``.references``,
    ``.hypervolume``, ``.blocks``, ``.info``).  With ``out`` the study and every replication are kept there
    (calling again resumes) and the output files are written::

        res = optimize("scenarios/design_2015.yaml", scale=0.2, trials=32, out="runs/design")
        res.pareto, res.blocks["pareto_01"]
    """
    from simulator.experiments.runner import open_executor
    from simulator.experiments.search import SearchSettings, run_search, search_worlds
    from simulator.io.search_files import write_search

    scenario = source if isinstance(source, Scenario) else load_scenario(source, overrides, scale=scale)
    markets, info = search_worlds(scenario, worlds, world_count) if worlds is not None else ((), None)
    settings = SearchSettings(trials=trials, seed=seed, worlds=markets, worlds_info=info, stop_after=stop_after)
    with open_executor(workers, dask) as executor:
        result = run_search(scenario, executor, out=out, settings=settings)
    if out is not None:
        write_search(result, out)
    return result
