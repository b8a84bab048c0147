"""Evaluating search trials: replications as keyed runner tasks on one seed bank, and their scores.

Replication ``i`` of every trial and preset runs with ``replication_seed(root_seed, i)`` (common random
numbers: trials differ by their rules, not their luck), as task ``(label, i)`` written to a
:class:`~simulator.experiments.runner.TaskStore` as it finishes; many trials' replications go to the
executor together and small markets run batched (:func:`~simulator.experiments.replication.replication_records`).

Plain mode: a trial's score for metric M is the mean over its replications with a 95% t-interval.
Robust mode (plausible worlds): replication ``i`` runs in world ``i mod W``, so adding replications adds
them to every world alike; the score is a stated quantile of the W world means, with the distribution-free
order-statistic interval of that quantile, and a constraint holds when the world means meet it in at
least a stated share of the worlds.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from simulator.core.config import Market, Policy, RunConfig
from simulator.experiments.replication import Record, ReplicationError, replication_record, replication_records
from simulator.experiments.runner import Progress, Task, TaskKey, TaskStore, run_tasks
from simulator.experiments.statistics import contain, t_interval
from simulator.scenario.optimize_schema import Constraint, Objective


@dataclass(frozen=True)
class Score:
    """A trial's (or preset's) objectives and constraints, as the output files show them."""

    means: dict[str, float]
    low: dict[str, float]
    high: dict[str, float]
    constraint_values: tuple[float, ...]
    constraint_bounds: tuple[float, ...]
    constraint_met: tuple[bool, ...]
    replications: int
    worlds: int

    @property
    def feasible(self) -> bool:
        return all(self.constraint_met)

    def to_json(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Score:
        d: dict[str, Any] = dict(data)
        for key in ("constraint_values", "constraint_bounds", "constraint_met"):
            d[key] = tuple(d[key])
        return cls(**d)


@dataclass
class TrialEvaluator:
    """Runs (or reads back) replications ``0..n-1`` of labelled policies; counts the time spent simulating."""

    market: Market
    run: RunConfig
    root_seed: int
    executor: Executor
    store: TaskStore | None = None
    worlds: tuple[Market, ...] = ()
    progress: Progress | None = None
    simulation_seconds: float = 0.0
    computed: int = 0
    reused: int = 0
    done: int = field(default=0)

    def market_of(self, index: int) -> Market:
        return self.worlds[index % len(self.worlds)] if self.worlds else self.market

    def records(self, wanted: Mapping[str, tuple[Policy, int]]) -> dict[str, list[Record]]:
        """``{label: (policy, n)}`` -> each label's first ``n`` replication records (in index order)."""
        run = dataclasses.replace(self.run, record_daily=False)
        tasks = [Task(TaskKey(label, i), replication_record, (self.market_of(i), policy, run, self.root_seed, i),
                      replication_records)
                 for label, (policy, n) in wanted.items() for i in range(n)]

        def on_done(_key: TaskKey) -> None:
            self.done += 1
            if self.progress is not None:
                self.progress(self.done, self.done)

        started = time.perf_counter()
        result = run_tasks(tasks, self.executor, self.store, on_done=on_done)
        self.simulation_seconds += time.perf_counter() - started
        if result.failures:
            raise ReplicationError(result.failures, result.finished, result.total)
        self.computed += result.computed
        self.reused += result.reused
        out: dict[str, list[Record]] = {label: [] for label in wanted}
        for task in tasks:
            out[task.key.policy].append(result.results[task.key])
        return out


def metric_matrix(records: Sequence[Record], metrics: Sequence[str]) -> np.ndarray:
    """Replications x metrics."""
    return np.array([[r.metrics[m] for m in metrics] for r in records], dtype=np.float64).reshape(-1, len(metrics))


def plain_score(values: np.ndarray, metrics: Sequence[str], constraints: Sequence[Constraint],
                bounds: Sequence[float]) -> Score:
    """Means with 95% t-intervals; a constraint is met only when its CI bound meets it."""
    mean, low, high = t_interval(values)
    low, high = contain(mean, low, high)
    m = {k: float(v) for k, v in zip(metrics, np.atleast_1d(mean), strict=True)}
    lo = {k: float(v) for k, v in zip(metrics, np.atleast_1d(low), strict=True)}
    hi = {k: float(v) for k, v in zip(metrics, np.atleast_1d(high), strict=True)}
    met = tuple(bool(hi[c.metric] <= b) if c.op == "<=" else bool(lo[c.metric] >= b)
                for c, b in zip(constraints, bounds, strict=True))
    return Score(m, lo, hi, tuple(m[c.metric] for c in constraints), tuple(float(b) for b in bounds), met,
                 len(values), 0)


def world_means(values: np.ndarray, worlds: int) -> np.ndarray:
    """Worlds x metrics: the mean of the replications of each world (replication i is in world i mod W)."""
    n = len(values) - len(values) % worlds
    return values[:n].reshape(-1, worlds, values.shape[1]).mean(axis=0)


def quantile_interval(sorted_values: np.ndarray, q: float) -> tuple[float, float]:
    """Distribution-free 95% interval of the ``q``-quantile from order statistics (binomial ranks)."""
    n = len(sorted_values)
    lo = int(stats.binom.ppf(0.025, n, q))
    hi = int(stats.binom.ppf(0.975, n, q)) + 1
    return float(sorted_values[max(lo - 1, 0)]), float(sorted_values[min(hi - 1, n - 1)])


def robust_score(values: np.ndarray, metrics: Sequence[str], objectives: Sequence[Objective],
                 constraints: Sequence[Constraint], bounds: Sequence[float], worlds: int,
                 quantile: float | None, share: float) -> Score:
    """Objectives: the stated quantile of the world means (default 0.25 of a maximized metric, 0.75 of a
    minimized one); constraints: the share of worlds whose mean meets the bound, met at >= ``share``."""
    by_world = world_means(values, worlds)
    direction = {o.metric: o.sign for o in objectives}
    means: dict[str, float] = {}
    low: dict[str, float] = {}
    high: dict[str, float] = {}
    for j, metric in enumerate(metrics):
        q = robust_quantile(direction.get(metric, 1), quantile)
        column = np.sort(by_world[:, j])
        means[metric] = float(np.quantile(column, q))
        a, b = quantile_interval(column, q)
        low[metric], high[metric] = min(a, means[metric]), max(b, means[metric])
    shares = []
    for c, b in zip(constraints, bounds, strict=True):
        column = by_world[:, list(metrics).index(c.metric)]
        shares.append(float(np.mean(column <= b) if c.op == "<=" else np.mean(column >= b)))
    return Score(means, low, high, tuple(shares), tuple(share for _ in constraints),
                 tuple(s >= share for s in shares), len(values), worlds)


def robust_quantile(sign: int, quantile: float | None) -> float:
    """The quantile scored: as given for a maximized metric and mirrored (1 - q) for a minimized one."""
    q = 0.25 if quantile is None else quantile
    return q if sign > 0 else 1.0 - q
