"""Monte Carlo experiments: replications of every policy on common random numbers, and their statistics.

Replication ``i`` of every policy is run with ``replication_seed(root_seed, i)``, so the policies
face the same members, recruiters and random streams; differences are taken replication by
replication (paired) and summarized with Student-t intervals.  Replications can run on any
:class:`concurrent.futures.Executor` (serial, a process pool, Dask: :mod:`simulator.experiments.runner`);
results are collected by (policy, index), never by completion order, so the numbers do not
depend on the executor or the number of workers.  With a :class:`~simulator.experiments.runner.TaskStore`
each finished replication is written to its own file at once, and a resumed run computes only
the missing ones.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from simulator.core.config import Market
from simulator.core.metrics import BREAKDOWN_KEYS, BREAKDOWN_METRICS
from simulator.experiments.budget import Limits, admit, experiment_workload
from simulator.experiments.comparison import (
    COMPARISON_COLUMNS,
    MAIN_METRICS,
    compare,
    precision_half_widths,
    summarize,
)
from simulator.experiments.replication import (
    MEMBER_COLUMNS,
    RECORD_FORMAT,
    Record,
    ReplicationError,
    breakdown_frame,
    empty_member_frame,
    member_distribution_frame,
    record_store,
    replication_frame,
    replication_record,
    run_records,
    run_single,
    timeseries_frame,
)
from simulator.experiments.runner import Progress, SerialExecutor, TaskStore, executor_slots, open_executor
from simulator.experiments.statistics import CONFIDENCE
from simulator.scenario import Overrides, Scenario, load_scenario, with_changes

__all__ = [
    "COMPARISON_COLUMNS", "CONFIDENCE", "MAIN_METRICS", "MEMBER_COLUMNS", "RECORD_FORMAT", "PrecisionReport",
    "Progress", "Record", "ReplicationError", "Results", "SerialExecutor", "compare", "empty_member_frame",
    "member_distribution_frame", "precision_half_widths", "record_store", "replication_record", "run_experiment",
    "run_scenario", "run_single", "summarize",
]



@dataclass(frozen=True)
class PrecisionReport:
    """How a ``--precision`` run ended."""

    target: float
    reached: bool
    replications: int
    cap: int
    half_widths: dict[str, float]

    @property
    def message(self) -> str:
        worst = max(self.half_widths.items(), key=lambda kv: kv[1]) if self.half_widths else ("-", math.nan)
        if self.reached:
            return (f"precision target {self.target:g} reached after {self.replications} replications "
                    f"(widest half-width: {worst[0]} {worst[1]:.3g})")
        return (f"replication cap {self.cap} hit before the precision target {self.target:g} "
                f"(widest half-width: {worst[0]} {worst[1]:.3g})")


def run_experiment(
    scenario: Scenario, *, replications: int | None = None, root_seed: int | None = None,
    executor: Executor | None = None, workers: int | None = None, dask: str | None = None,
    precision: float | None = None, max_replications: int | None = None, indices: Sequence[int] | None = None,
    progress: Progress | None = None, store: TaskStore | None = None, timeseries: bool = True,
    memory_limit: int | None = None, memory_check: bool = True, markets: Mapping[int, Market] | None = None,
) -> Results:
    """Run the scenario's policies on common random numbers and return :class:`Results`.

    ``executor``: any ``concurrent.futures.Executor`` (left open); else ``workers`` > 1 starts a
    process pool, ``dask`` (an address or ``"local"``) a Dask executor, otherwise replications run
    serially.  ``precision``: keep adding replications until the 95% CI half-width of every main
    difference (:data:`MAIN_METRICS`: response-rate difference in absolute terms, net-credit-burn
    change relative to the baseline) is at most ``precision``, or ``max_replications`` is reached.
    ``indices``: run only these replication indices (e.g. ``[7]`` to re-run replication 7 alone).
    ``store``: write each finished replication there and reuse the ones it already holds (resume).
    ``timeseries=False``: workers do not return the daily series (no ``timeseries``).
    ``markets``: the market of each replication index (a run across plausible worlds,
    :mod:`simulator.experiments.world_study`); default the scenario's market for every replication.
    The work and memory are checked first (:func:`simulator.experiments.budget.admit`: the task limit,
    ``workers`` capped at the tasks; ``memory_limit`` in bytes overrides the available memory;
    ``memory_check=False`` skips it).
    Raises :class:`ReplicationError` when replications fail, :class:`~simulator.experiments.runner.RunInterrupted`
    on Ctrl-C.
    """
    scenario = with_changes(scenario, replications=replications, root_seed=root_seed,
                            max_replications=max_replications)
    if not timeseries and scenario.run.record_daily:
        scenario = dataclasses.replace(scenario, run=dataclasses.replace(scenario.run, record_daily=False))
    if precision is not None and precision <= 0:
        raise ValueError(f"precision must be > 0, got {precision}")
    npol = len(scenario.policies)
    n0 = scenario.replications
    if precision is not None:  # a CI needs a few replications to start from
        n0 = max(n0, min(3, scenario.max_replications))
    if memory_check:  # before any list of indices is made
        count = scenario.max_replications if precision is not None else len(indices) if indices is not None else n0
        concurrent = executor_slots(executor) if executor is not None else max(1, workers or 1)
        capped = admit(experiment_workload(scenario, count),
                       Limits(concurrent, memory_limit, local=dask in (None, "local")))
        workers = capped if executor is None else workers
    first = list(indices) if indices is not None else list(range(n0))
    total = len(first) * npol
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    report: PrecisionReport | None = None
    with (open_executor(workers or 1, dask) if executor is None else contextlib.nullcontext(executor)) as ex:
        records = run_records(scenario, first, ex, tick, store, markets)
        n = len(first)
        while precision is not None and indices is None:
            widths = precision_half_widths(replication_frame(records.values()), scenario.baseline)
            worst = max(widths.values(), default=math.inf)
            cap = scenario.max_replications
            if worst <= precision or n >= cap:
                report = PrecisionReport(precision, worst <= precision, n, cap, widths)
                break
            needed = math.ceil(n * (worst / precision) ** 2 * 1.1) if math.isfinite(worst) else 2 * n
            new_n = min(cap, max(n + 1, min(needed, 4 * n)))
            total += (new_n - n) * npol
            records.update(run_records(scenario, range(n, new_n), ex, tick, store, markets))
            n = new_n
    if indices is None:
        scenario = with_changes(scenario, replications=n)
    ordered = [records[(p, i)] for i in sorted({i for _, i in records}) for p in scenario.policy_names]
    return Results(
        scenario=scenario,
        replications=replication_frame(ordered),
        timeseries=timeseries_frame(ordered),
        breakdown_replications=breakdown_frame(ordered),
        precision=report,
        member_distribution=member_distribution_frame(ordered),
    )


def run_scenario(source: str | Path | Mapping[str, Any], overrides: Overrides = (), **options: Any) -> Results:
    """Load a scenario (file path or mapping, with ``--set``-style overrides) and run it.

    ``options`` go to :func:`run_experiment` (``replications``, ``root_seed``, ``workers``,
    ``precision``, ...).  The notebook one-liner::

        res = run_scenario("scenarios/old_vs_new.yaml", ["market.members.count=20000"], replications=5)
        res.comparison, res.summary, res.replications, res.timeseries
    """
    return run_experiment(load_scenario(source, overrides), **options)


# --------------------------------------------------------------------------- results


@dataclass
class Results:
    """The outcome of an experiment, as pandas DataFrames.

    ``replications``: one row per (policy, replication) with ``seed`` (the root seed; replication
    ``r`` used ``replication_seed(seed, r)``) and a column per metric.  ``timeseries``: tidy daily
    series (policy, replication, day, metric, value).  ``breakdown_replications``: per recruiter
    subgroup (by, label), policy and replication.  ``member_distribution``: active members per
    count bin (policy, replication, quantity, bin, members; ``bin`` is the lower edge of a
    :data:`~simulator.core.metrics.MEMBER_BINS` bin); empty when not recorded (an old run folder).
    The statistics are derived from these.
    """

    scenario: Scenario
    replications: pd.DataFrame
    timeseries: pd.DataFrame
    breakdown_replications: pd.DataFrame
    precision: PrecisionReport | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    member_distribution: pd.DataFrame = field(default_factory=empty_member_frame)

    @property
    def baseline(self) -> str:
        return self.scenario.baseline

    @property
    def n_replications(self) -> int:
        return int(self.replications["replication"].nunique())

    @cached_property
    def summary(self) -> pd.DataFrame:
        """policy, metric, mean, std, ci_low, ci_high, n."""
        return summarize(self.replications)

    @cached_property
    def comparison(self) -> pd.DataFrame:
        """Paired differences against the baseline (see :func:`compare`)."""
        return compare(self.replications, self.baseline)

    @cached_property
    def breakdowns(self) -> pd.DataFrame:
        """Per recruiter subgroup: by, label, policy, metric, mean, std, ci_low, ci_high, n."""
        return summarize(self.breakdown_replications, BREAKDOWN_METRICS, keys=("by", "label"))

    @cached_property
    def breakdown_comparison(self) -> pd.DataFrame:
        """Per recruiter subgroup: the paired difference against the baseline (who wins, who loses)."""
        return compare(self.breakdown_replications, self.baseline, BREAKDOWN_METRICS, keys=("by", "label"))

    @cached_property
    def group_outcomes(self) -> pd.DataFrame:
        """Per recruiter subgroup: responses, rate, stock-outs, credits per response vs the baseline, losers marked."""
        from simulator.experiments.group_outcomes import group_outcomes

        return group_outcomes(self.breakdown_replications, self.baseline)

    def breakdown(self, by: str) -> pd.DataFrame:
        """:attr:`breakdown_comparison` for one key (``seat_type``, ``personalization_band``, ...)."""
        if by not in BREAKDOWN_KEYS:
            raise ValueError(f"breakdown key must be one of {', '.join(BREAKDOWN_KEYS)}, got {by!r}")
        bc = self.breakdown_comparison
        return bc[bc["by"] == by].drop(columns="by").reset_index(drop=True)

    def pairing(self, metrics: Sequence[str] = ("response_rate", "net_credit_burn")) -> pd.DataFrame:
        """How much the pairing (common random numbers) shrank each comparison's CI."""
        c = self.comparison
        cols = ["policy", "metric", "ci_low", "ci_high", "unpaired_ci_low", "unpaired_ci_high", "ci_shrink"]
        return c[c["metric"].isin(metrics)][cols].reset_index(drop=True)
