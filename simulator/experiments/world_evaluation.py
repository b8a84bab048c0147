"""Worlds -> replications -> target values, as resumable runner tasks.

A world is one value per uncertain parameter; :func:`world_task` builds its market
(:func:`~simulator.scenario.uncertain.world_market`), runs its replications through
:func:`simulator.core.batch.run_replications` (one batch, so a batched engine makes it fast) with
the replication seeds ``0..R-1`` of the scenario's root seed - the **same seeds in every world**
(common random numbers: two worlds differ by their parameters, not by their luck) - and returns the
observables the targets read.  After the first replication it may stop (early rejection,
:func:`~simulator.experiments.target_bands.early_reject`).

:class:`WorldEvaluator` is the ABC's distance callback: it runs a batch of worlds as tasks on any
executor, keyed ``(batch label, row)`` and written to a :class:`TaskStore` as they finish, so an
interrupted calibration resumes where it stopped and the order of completion never matters.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field

import numpy as np

from simulator.core.batch import ReplicationJob, run_replications
from simulator.core.config import ConfigError, Market, Policy, RunConfig
from simulator.core.seeding import replication_seed
from simulator.experiments.objective import CalibrationRunError
from simulator.experiments.observation import observe
from simulator.experiments.runner import Progress, Task, TaskKey, TaskStore, failure_report, run_tasks
from simulator.experiments.target_bands import Band, early_reject, world_distance
from simulator.scenario.uncertain import UncertainParameter, world_market


@dataclass(frozen=True)
class WorldObservation:
    """A world's parameter values and, per replication run, the observables ``keys`` (rows x keys).

    ``invalid``: why the world could not be built (a value outside a field's allowed range); such
    a world has no rows and counts as infinitely far from every band.
    """

    values: np.ndarray
    keys: tuple[str, ...]
    rows: np.ndarray
    invalid: str = ""

    def means(self) -> dict[str, float]:
        if len(self.rows) == 0:
            return {k: math.nan for k in self.keys}
        return {k: float(v) for k, v in zip(self.keys, np.mean(self.rows, axis=0), strict=True)}

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"values": self.values, "keys": np.array(self.keys, dtype=str), "rows": self.rows,
                "invalid": np.array(self.invalid)}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> WorldObservation:
        return cls(np.asarray(arrays["values"], dtype=np.float64), tuple(str(k) for k in arrays["keys"]),
                   np.asarray(arrays["rows"], dtype=np.float64).reshape(-1, len(arrays["keys"])),
                   str(arrays["invalid"]))


@dataclass(frozen=True)
class Setting:
    """A (run settings, policy) pair a world runs: the fitted policy's, a comparison's, another file's."""

    name: str
    policy: Policy
    run: RunConfig


@dataclass(frozen=True)
class EarlyRule:
    """Early rejection after the first replication: the bands, single-replication SDs and the tolerance."""

    bands: tuple[Band, ...]
    sds: tuple[tuple[str, float], ...]
    tolerance: float


def series(obs: WorldObservation, setting: str, key: str) -> np.ndarray:
    """Observable ``key`` under ``setting``, per replication (``setting/key``; plain ``key`` when one setting ran)."""
    column = f"{setting}/{key}"
    j = obs.keys.index(column) if column in obs.keys else obs.keys.index(key)
    return obs.rows[:, j]


def band_values(bands: Sequence[Band], obs: WorldObservation, fitted: str) -> np.ndarray:
    """Each band's value per replication (replications x bands): its observable under its setting (``fitted``
    when it names none), or a comparison's paired change against its baseline in the same replication."""
    out = np.empty((len(obs.rows), len(bands)))
    for j, band in enumerate(bands):
        x = series(obs, band.setting or fitted, band.key)
        if band.baseline is not None:
            base = series(obs, band.baseline, band.key)
            with np.errstate(divide="ignore", invalid="ignore"):
                x = x / base - 1.0 if band.relative else x - base
        out[:, j] = x
    return out


def band_means(bands: Sequence[Band], obs: WorldObservation, fitted: str) -> dict[str, float]:
    """``{band.column: mean over replications}`` (NaN for a world without replications)."""
    if len(obs.rows) == 0:
        return {b.column: math.nan for b in bands}
    values = band_values(bands, obs, fitted)
    return {b.column: float(v) for b, v in zip(bands, np.mean(values, axis=0), strict=True)}


def world_task(market: Market, parameters: tuple[UncertainParameter, ...], values: np.ndarray,
               settings: tuple[Setting, ...], root_seed: int, indices: tuple[int, ...],
               keys: tuple[str, ...], early: EarlyRule | None = None) -> WorldObservation:
    """Run one world's replications ``indices`` of every setting (the same seeds for each: common random
    numbers); observe ``keys`` (``setting/key`` when several settings run).  With ``early``, the first
    replication of every setting runs first and the world stops there when a band is already far outside.
    A picklable task for any executor."""
    columns = keys if len(settings) == 1 else tuple(f"{s.name}/{k}" for s in settings for k in keys)
    try:
        built = world_market(market, parameters, [float(v) for v in values])
    except (ConfigError, KeyError) as exc:
        return WorldObservation(np.asarray(values, dtype=np.float64), columns, np.empty((0, len(columns))),
                                str(exc) or type(exc).__name__)

    def rows_of(todo: Sequence[int]) -> list[list[float]]:
        jobs = [ReplicationJob(built, s.policy, dataclasses.replace(s.run, record_daily=True),  # sanctioned_share
                               replication_seed(root_seed, i)) for i in todo for s in settings]  # reads the daily
        flat = []
        for job, result in zip(jobs, run_replications(jobs), strict=True):
            seen = observe(result, built, job.policy)
            flat.append([seen.get(k, math.nan) for k in keys])
        per = len(settings)
        return [[x for part in flat[j * per:(j + 1) * per] for x in part] for j in range(len(todo))]

    rows: list[list[float]] = []
    todo = list(indices)
    if early is not None and todo:
        rows += rows_of(todo[:1])
        todo = todo[1:]
        first = WorldObservation(np.asarray(values, dtype=np.float64), columns, np.asarray(rows, dtype=np.float64))
        if early_reject(early.bands, band_means(early.bands, first, settings[0].name), dict(early.sds),
                        early.tolerance):
            todo = []
    if todo:
        rows += rows_of(todo)
    return WorldObservation(np.asarray(values, dtype=np.float64), columns,
                            np.asarray(rows, dtype=np.float64).reshape(-1, len(columns)))


@dataclass
class WorldEvaluator:
    """The ABC distance callback on the simulator: each batch of worlds is run as keyed, stored tasks.

    ``settings``: the (run settings, policy) pairs the bands need, the fitted policy's first; every world
    runs all of them on the same seeds.  ``replications`` per world (the rule of
    :func:`replications_needed`), seeds ``0..R-1`` in every world; ``sds`` (by :attr:`Band.column`)
    enable early rejection.  ``observations[label]`` keeps every world's result;
    ``replications_run`` counts the replications behind them (early rejections cost one; a world read
    back from the store counts too, ``reused`` says how many worlds were).
    """

    market: Market
    parameters: tuple[UncertainParameter, ...]
    settings: tuple[Setting, ...]
    root_seed: int
    bands: tuple[Band, ...]
    replications: int
    executor: Executor
    store: TaskStore | None = None
    sds: Mapping[str, float] | None = None
    progress: Progress | None = None
    observations: dict[str, list[WorldObservation]] = field(default_factory=dict)
    replications_run: int = 0
    worlds_run: int = 0
    reused: int = 0

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(b.key for b in self.bands))

    @property
    def fitted(self) -> str:
        return self.settings[0].name

    def values(self, obs: WorldObservation) -> np.ndarray:
        """The bands' values per replication of one world (replications x bands)."""
        return band_values(self.bands, obs, self.fitted)

    def observe(self, label: str, thetas: np.ndarray, indices: Sequence[int], early: EarlyRule | None = None,
                settings: tuple[Setting, ...] | None = None,
                keys: tuple[str, ...] | None = None) -> list[WorldObservation]:
        """Run (or reuse from the store) each row of ``thetas`` as task ``(label, row)``; results in row order."""
        pols = settings or self.settings
        use_keys = keys or self.keys
        tasks = [Task(TaskKey(label, i), world_task,
                      (self.market, self.parameters, np.asarray(theta, dtype=np.float64), pols,
                       self.root_seed, tuple(indices), use_keys, early)) for i, theta in enumerate(thetas)]

        def done(key: TaskKey) -> None:
            self.worlds_run += 1
            if self.progress is not None:
                self.progress(self.worlds_run, self.worlds_run)

        run = run_tasks(tasks, self.executor, self.store, on_done=done)
        if run.failures:
            raise CalibrationRunError(f"{len(run.failures)} world(s) failed:\n{failure_report(run.failures)}")
        out: list[WorldObservation] = []
        stale = []
        for task in tasks:
            obs: WorldObservation = run.results[task.key]
            if not np.array_equal(obs.values, task.args[2]):
                stale.append(task)
            out.append(obs)
        if stale:  # a stored file of another design (cannot happen with a matching fingerprint): recompute
            assert self.store is not None
            for task in stale:
                self.store.path(task.key).unlink(missing_ok=True)
            return self.observe(label, thetas, indices, early, settings, keys)
        self.reused += run.reused
        self.replications_run += sum(len(o.rows) * len(pols) for o in out)
        self.observations[label] = out
        return out

    def __call__(self, label: str, thetas: np.ndarray, tolerance: float) -> np.ndarray:
        early = None
        if self.sds is not None:
            early = EarlyRule(self.bands, tuple(sorted(self.sds.items())), tolerance)
        obs = self.observe(label, thetas, range(self.replications), early)
        return np.array([math.inf if o.invalid else world_distance(self.bands, band_means(self.bands, o, self.fitted))
                         for o in obs])
