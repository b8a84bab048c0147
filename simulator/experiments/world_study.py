"""A run across plausible worlds: every policy in every world draw, on common random numbers within each.

The replications are the ordinary tasks of a run (:func:`~simulator.experiments.experiment.run_experiment`
with a market per replication index), so the task store, resume, progress and every executor work as in
a plain run and give the same numbers.  Replication ``i`` uses ``replication_seed(root_seed, i)`` and the
market of world draw ``i // R`` (:class:`~simulator.experiments.worlds.WorldPlan`).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from simulator.core.metrics import METRIC_NAMES
from simulator.experiments.experiment import Results, run_experiment
from simulator.experiments.robustness import ROBUSTNESS_METRICS, robustness, world_means
from simulator.experiments.world_statistics import worlds_comparison
from simulator.experiments.worlds import (
    DEFAULT_PER_WORLD,
    DEFAULT_WORLD_COUNT,
    PRIOR,
    WorldPlan,
    WorldSet,
    plan_worlds,
    prior_worlds,
    read_posterior,
    world_markets,
    worlds_summary,
)
from simulator.scenario import Scenario, with_changes
from simulator.scenario.decision import Requirement
from simulator.scenario.uncertain import UncertainParameter


@dataclass
class WorldResults:
    """The outcome of a run across worlds: the plain :class:`Results` (replication ``i`` in world draw
    ``i // R``) plus the worlds tables."""

    results: Results
    plan: WorldPlan
    requirements: tuple[Requirement, ...] = ()

    @property
    def scenario(self) -> Scenario:
        return self.results.scenario

    @cached_property
    def worlds(self) -> pd.DataFrame:
        """``worlds.csv``: replication, world, one column per uncertain parameter."""
        return self.plan.replication_frame()

    @cached_property
    def world_outcomes(self) -> pd.DataFrame:
        """``world_outcomes.csv``: replication, world, policy, every metric (replication order, then policy)."""
        reps = self.results.replications
        ids = self.worlds.set_index("replication")["world"]
        out = reps[["replication", "policy", *METRIC_NAMES]].copy()
        out.insert(1, "world", ids.reindex(out["replication"]).to_numpy())
        return out.reset_index(drop=True)

    @cached_property
    def worlds_comparison(self) -> pd.DataFrame:
        """``worlds_comparison.csv`` (:mod:`simulator.experiments.world_statistics`)."""
        sc = self.scenario
        return worlds_comparison(self.world_outcomes, sc.baseline, sc.policy_names, self.plan.per_world)

    @cached_property
    def robustness(self) -> pd.DataFrame:
        """``robustness.csv`` (:mod:`simulator.experiments.robustness`)."""
        metrics = list(dict.fromkeys([*ROBUSTNESS_METRICS, *(r.metric for r in self.requirements)]))
        means = world_means(self.world_outcomes, self.scenario.policy_names, metrics, self.plan.per_world)
        return robustness(means, self.requirements)

    @property
    def manifest_entry(self) -> dict[str, Any]:
        """The manifest's ``worlds`` entry."""
        return worlds_summary(self.plan)


def world_set(scenario: Scenario, parameters: Sequence[UncertainParameter], source: str | Path,
              count: int) -> WorldSet:
    """The worlds named by ``source``: ``"prior"`` (``count`` Latin-hypercube draws) or a posterior file."""
    if str(source) == PRIOR:
        return prior_worlds(parameters, count, scenario.root_seed)
    return read_posterior(source, parameters)


def prepare_worlds(scenario: Scenario, parameters: Sequence[UncertainParameter], source: str | Path, *,
                   world_count: int | None = None, per_world: int | None = None) -> tuple[Scenario, WorldPlan]:
    """The plan of a run across worlds and the scenario to run (``replications`` = W x R)."""
    count = DEFAULT_WORLD_COUNT if world_count is None else world_count
    plan = plan_worlds(world_set(scenario, parameters, source, count), count,
                       DEFAULT_PER_WORLD if per_world is None else per_world, scenario.root_seed)
    return with_changes(scenario, replications=plan.replications), plan


def run_worlds(scenario: Scenario, parameters: Sequence[UncertainParameter], source: str | Path, *,
               requirements: Sequence[Requirement] = (), world_count: int | None = None,
               per_world: int | None = None, plan: WorldPlan | None = None, executor: Executor | None = None,
               **options: Any) -> WorldResults:
    """Run every policy of ``scenario`` in ``world_count`` plausible worlds, ``per_world`` replications each.

    ``source``: ``"prior"`` or a ``posterior.csv`` path; ``parameters``: the uncertain parameters (the
    scenario's ``uncertain:`` block); ``requirements``: the ``decision:`` block (satisficing).  ``plan``: a
    plan made by :func:`prepare_worlds` (then ``source``, ``world_count`` and ``per_world`` are not read
    again).  ``options`` go to :func:`~simulator.experiments.experiment.run_experiment` (``workers``,
    ``dask``, ``store``, ``progress``, ``timeseries``, ...); ``precision``, ``indices`` and
    ``replications`` are not available here.
    """
    for refused in ("precision", "indices", "replications"):
        if options.get(refused) is not None:
            raise ValueError(f"{refused} cannot be used in a run across worlds")
    if plan is None:
        scenario, plan = prepare_worlds(scenario, parameters, source, world_count=world_count, per_world=per_world)
    else:
        scenario = with_changes(scenario, replications=plan.replications)
    markets = world_markets(scenario.market, parameters, plan)
    results = run_experiment(scenario, executor=executor, markets=markets, **options)
    return WorldResults(results, plan, tuple(requirements))


def with_worlds_fingerprint(fingerprint: dict[str, Any], plan: WorldPlan) -> dict[str, Any]:
    """A run folder's fingerprint with the worlds added (a resume must use the same worlds)."""
    return {**fingerprint, "worlds": plan.fingerprint()}
