"""Parameter sweeps: run the scenario at many parameter values and tabulate how the comparison moves.

The design (the ``sweep:`` block and its points) is :mod:`simulator.experiments.design`; the files
are written by :func:`simulator.io.study_files.write_sweep`.

The ``sweep:`` block of a scenario (validated for shape in ``scenario.py``) names dotted parameter
paths - the same paths as ``--set`` - with either a list of values / ``{low, high, num}`` per path
(``method: grid``, the cartesian product) or ``{low, high}`` ranges sampled with ``n`` quasi-random
points (``method: lhs | sobol | halton``, :mod:`scipy.stats.qmc`, seeded from the root seed).  Each
point is the scenario with those values applied as overrides, so a bad path or value is reported
like any scenario error, at the line of the sweep entry.

Seeds (common random numbers): replication ``i`` of every policy *at every point* uses
``replication_seed(root_seed, i)``, so a task's seed depends only on (root seed, replication index).
Policies are paired within a point, and points share their random streams, so the curve over a
parameter is not jagged by sampling noise (``seeds: per_point`` gives every point its own root
seed derived from (root seed, point id) instead).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simulator.core.config import Market, Policy, RunConfig
from simulator.core.metrics import METRIC_NAMES
from simulator.experiments.budget import Limits, capped_workers
from simulator.experiments.design import Point, SweepSpec, check_sweep, plan_sweep, sweep_spec, sweep_workload
from simulator.experiments.experiment import compare, run_single, summarize
from simulator.experiments.point_comparison import (
    POINT_COMPARISON_COLUMNS,
    PointSpec,
    PointSpecError,
    compare_points,
    find_point,
    reference_pairs,
)
from simulator.experiments.runner import (
    Progress,
    Task,
    TaskFailure,
    TaskKey,
    TaskStore,
    executor_slots,
    failure_report,
    open_executor,
    run_tasks,
)
from simulator.scenario import Scenario, with_changes

__all__ = [
    "SUMMARY_METRICS", "TABLE_COLUMNS", "TASKS_FOLDER", "PointRecord", "PointSpecError", "Records", "SweepError",
    "SweepResults",
    "check_points_memory", "check_sweep", "plan_sweep", "point_fingerprint", "run_points", "run_sweep",
    "run_task", "sweep_spec", "sweep_workload", "task_owners", "task_store",
]

SUMMARY_METRICS: tuple[str, ...] = ("response_rate", "net_credit_burn")
"""Metrics the printed summary shows (those the sweep computes; else its first metric)."""

TABLE_COLUMNS: tuple[str, ...] = (
    "policy", "metric", "mean", "ci_low", "ci_high", "n", "diff", "diff_ci_low", "diff_ci_high",
    "rel_change", "p_value",
)
"""Columns of ``sweep.csv`` after ``point`` and the swept parameters (one column per path)."""

TASKS_FOLDER = "replications"
"""Subfolder of the output folder holding one file per finished task (kept for ``--resume``; the
same folder ``run`` uses, so ``--force`` clears it)."""


# --------------------------------------------------------------------------- running


@dataclass(frozen=True)
class PointRecord:
    """What one (point, policy, replication) returns: its metrics, and the digest of the point it ran."""

    point: int
    policy: str
    replication: int
    fingerprint: str
    metrics: dict[str, float]

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays for the task file (:class:`~simulator.experiments.runner.TaskStore`); no pickle."""
        meta = {"format": 1, "point": self.point, "policy": self.policy, "replication": self.replication,
                "fingerprint": self.fingerprint}
        return {"meta": np.array(json.dumps(meta)), "metric_names": np.array(list(self.metrics), dtype=str),
                "metric_values": np.array(list(self.metrics.values()), dtype=np.float64)}

    @classmethod
    def from_arrays(cls, a: Mapping[str, np.ndarray]) -> PointRecord:
        meta = json.loads(str(a["meta"][()]))
        if meta.get("format") != 1:
            raise ValueError(f"sweep task file format {meta.get('format')!r}, expected 1")
        return cls(point=int(meta["point"]), policy=str(meta["policy"]), replication=int(meta["replication"]),
                   fingerprint=str(meta["fingerprint"]),
                   metrics={str(k): float(v) for k, v in zip(a["metric_names"], a["metric_values"], strict=True)})


def run_task(fingerprint: str, point: int, market: Market, policy: Policy, run: RunConfig, root_seed: int,
             index: int) -> PointRecord:
    """One (point, policy, replication) - what a worker runs."""
    result = run_single(market, policy, run, root_seed, index)
    return PointRecord(point, policy.name, index, fingerprint,
                       {k: float(result.metrics[k]) for k in METRIC_NAMES})


def run_task_batch(args: list[tuple[str, int, Market, Policy, RunConfig, int, int]]) -> list[PointRecord]:
    """:func:`run_task` of each args, computed as one batch."""
    from simulator.experiments.replication import run_singles

    results = run_singles([a[2:] for a in args])
    return [PointRecord(point, policy.name, index, fingerprint, {k: float(r.metrics[k]) for k in METRIC_NAMES})
            for r, (fingerprint, point, _, policy, _, _, index) in zip(results, args, strict=True)]


def point_fingerprint(point: Point) -> str:
    """A digest of everything that determines a point's numbers (not its replication count)."""
    data = {k: v for k, v in point.scenario.resolved.items()
            if k not in ("replications", "max_replications", "sweep", "sensitivity", "name", "description")}
    text = json.dumps({"scenario": data, "root_seed": point.root_seed}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def task_store(folder: str | Path, resume: bool = True) -> TaskStore:
    """The task files of a sweep or sensitivity run (``folder/replications``, one ``.npz`` per task).

    ``resume``: keep the files already there (a task is reused only if its point is unchanged);
    otherwise they are deleted first.
    """
    store = TaskStore(Path(folder) / TASKS_FOLDER, PointRecord.from_arrays)
    if not resume:
        store.clear()
    return store


class SweepError(RuntimeError):
    """Tasks failed; ``failures`` names each (point, policy, replication) and why.  Finished ones are kept."""

    def __init__(self, failures: Sequence[TaskFailure], finished: int, total: int) -> None:
        self.failures, self.finished, self.total = list(failures), finished, total
        super().__init__(f"{len(self.failures)} of {total} tasks failed ({finished} finished):\n"
                         f"{failure_report(self.failures)}")


Records = dict[tuple[int, str, int], dict[str, float]]
"""Metrics keyed by (point id, policy, replication index)."""

Owners = dict[tuple[int, str], int]
"""(point id, policy) -> the point whose tasks give that policy's replications there."""


def task_owners(points: Sequence[Point], policies: Sequence[str] | None = None, *, share: bool = True) -> Owners:
    """Which point runs the replications of each (point, policy); ``share``: once per distinct input.

    A policy whose market, rules, calendar and root seed are the same at two points (a sweep of
    another policy's lever, under ``seeds: common``) gets the same numbers at both: its
    replications run at the first such point only and are reused at the others.  Anything the
    lever touches (a market path, ``horizon_days``, per-point seeds) makes the inputs differ, and
    then every point runs its own.  ``share=False``: every point runs every policy.
    """
    owners: Owners = {}
    first: dict[str, int] = {}
    for point in points:
        sc = point.scenario
        run = replace(sc.run, record_daily=False)
        for name in (policies if policies is not None else sc.policy_names):
            if not share:
                owners[(point.id, name)] = point.id
                continue
            inputs = repr((name, sc.market, sc.policies[name], run, point.root_seed))  # frozen config: exact
            owners[(point.id, name)] = first.setdefault(inputs, point.id)
    return owners


def run_points(points: Sequence[Point], replications: int, executor: Executor, *,
               progress: Progress | None = None, store: TaskStore | None = None,
               policies: Sequence[str] | None = None, owners: Owners | None = None) -> Records:
    """Run every point x policy x replication on ``executor`` (:func:`simulator.experiments.runner.run_tasks`).

    Results are keyed by (point, policy, index), never ordered by completion, so they do not
    depend on the executor or the number of workers.  Each finished task is written to ``store``
    at once; tasks already there for an unchanged point are not run again.  ``policies``: run
    only these (default: all of the scenario's).  ``owners`` (:func:`task_owners`): run each
    (point, policy) only at its owner point and copy the owner's records to the others.
    Raises :class:`SweepError` if any task failed.
    """
    fingerprints = {point.id: point_fingerprint(point) for point in points}
    owners = owners if owners is not None else task_owners(points, policies, share=False)
    tasks: list[Task] = []
    for point in points:
        scenario = point.scenario
        lean_run = replace(scenario.run, record_daily=False)
        for i in range(replications):
            for name in (policies if policies is not None else scenario.policy_names):
                if owners[(point.id, name)] != point.id:
                    continue
                tasks.append(Task(TaskKey(name, i, point.id), run_task,
                                  (fingerprints[point.id], point.id, scenario.market, scenario.policies[name],
                                   lean_run, point.root_seed, i), run_task_batch))

    def reuse(rec: PointRecord) -> PointRecord | None:
        ok = fingerprints.get(rec.point) == rec.fingerprint and list(rec.metrics) == list(METRIC_NAMES)
        return rec if ok else None

    done = 0

    def tick(_key: TaskKey) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, len(tasks))

    if progress is not None:
        progress(0, len(tasks))
    run = run_tasks(tasks, executor, store, reuse=reuse, on_done=tick)
    if run.failures:
        raise SweepError(run.failures, run.finished, run.total)
    computed: Records = {}
    for key, record in run.results.items():
        assert key.point is not None  # every sweep task belongs to a point
        computed[(key.point, key.policy, key.replication)] = record.metrics
    return {(point, name, i): computed[(owner, name, i)]
            for (point, name), owner in owners.items() for i in range(replications)}


def check_points_memory(points: Sequence[Point], executor: Executor | None, workers: int | None,
                        limit: int | None = None) -> None:
    """Refuse (``MemoryLimitError``, exit 2) a sweep whose largest point would not fit in memory."""
    from simulator.scenario.memory import check_memory, estimate

    if not points:
        return
    slots = executor_slots(executor) if executor is not None else max(1, workers or 1)
    lean = [replace(pt.scenario, run=replace(pt.scenario.run, record_daily=False)) for pt in points]
    worst = max(lean, key=lambda sc: estimate(sc, slots, 1).total)
    check_memory(worst, concurrent=slots, limit=limit, replications=1)


def run_sweep(scenario: Scenario, *, replications: int | None = None, executor: Executor | None = None,
              workers: int | None = None, dask: str | None = None, progress: Progress | None = None,
              store: TaskStore | None = None, memory_limit: int | None = None,
              plan: tuple[SweepSpec, list[Point]] | None = None, share: bool = True) -> SweepResults:
    """Run the scenario's sweep and return :class:`SweepResults`.

    ``replications`` overrides the block's (or the scenario's) replications per point and policy.
    ``executor``: any ``concurrent.futures.Executor`` (left open); else ``workers`` processes or
    ``dask`` (an address or ``"local"``), see :func:`simulator.experiments.runner.open_executor`.  ``store``
    (:func:`task_store`): write each finished task there at once and reuse the ones it holds.
    Raises :class:`SweepError` when tasks fail and :class:`~simulator.experiments.runner.RunInterrupted` on
    Ctrl-C (finished tasks stay in the store).  ``plan``: :func:`plan_sweep`'s result, if already made.
    ``share``: a policy the swept levers do not touch runs once, not at every point (:func:`task_owners`;
    the same numbers either way); ``False`` re-runs it everywhere.
    """
    local = dask in (None, "local")
    spec, points = plan if plan is not None else plan_sweep(
        scenario, replications, limits=Limits(workers or 1, memory_limit, local=local))
    owners = task_owners(points, share=share)
    workers = capped_workers(workers or 1, len(owners) * spec.replications)[0]
    if local:
        check_points_memory(points, executor, workers, memory_limit)
    opener = open_executor(workers, dask) if executor is None else contextlib.nullcontext(executor)
    with opener as ex:
        records = run_points(points, spec.replications, ex, progress=progress, store=store, owners=owners)
    runs_at = {name: sum(o == pid for (pid, n), o in owners.items() if n == name) for name in scenario.policy_names}
    tasks = {"planned": len(owners) * spec.replications, "run": sum(runs_at.values()) * spec.replications,
             "shared_policies": [name for name, k in runs_at.items() if k < len(points)],
             "points_run": runs_at}
    return SweepResults(scenario=with_changes(scenario, replications=spec.replications), spec=spec,
                        points=points, replications=_replication_frame(points, records, spec), tasks=tasks)


def _replication_frame(points: Sequence[Point], records: Records, spec: SweepSpec) -> pd.DataFrame:
    rows = []
    for pt in points:
        for i in range(spec.replications):
            for name in pt.scenario.policy_names:
                rows.append({"point": pt.id, "policy": name, "replication": i, "seed": pt.root_seed,
                             **records[(pt.id, name, i)]})
    return pd.DataFrame(rows, columns=["point", "policy", "replication", "seed", *METRIC_NAMES])


# --------------------------------------------------------------------------- results


def _cell(value: Any) -> Any:
    """A swept value as a table cell: numbers and text as they are, anything else as compact YAML."""
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    import yaml

    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()


@dataclass
class SweepResults:
    """The outcome of a sweep, as pandas DataFrames.

    ``replications``: one row per (point, policy, replication) with a column per metric.
    ``points``: point id, the swept values, the root seed.  ``table``: ``sweep.csv``.
    ``tasks``: ``planned`` (points x policies x replications), ``run`` (distinct tasks: a policy is not
    re-run at points that differ only in levers it does not see), ``shared_policies`` (those) and
    ``points_run`` (per policy, at how many points it ran).
    """

    scenario: Scenario
    spec: SweepSpec
    points: Sequence[Point]
    replications: pd.DataFrame
    extra: dict[str, Any] = field(default_factory=dict)
    tasks: dict[str, Any] = field(default_factory=dict)

    @property
    def baseline(self) -> str:
        return self.scenario.baseline

    @cached_property
    def point_frame(self) -> pd.DataFrame:
        """point, one column per swept path, seed."""
        rows = [{"point": p.id, **{k: _cell(v) for k, v in p.values.items()}, "seed": p.root_seed}
                for p in self.points]
        return pd.DataFrame(rows, columns=["point", *self.spec.paths, "seed"])

    @cached_property
    def table(self) -> pd.DataFrame:
        """``sweep.csv``: point, swept values, policy, metric, mean, CI, n, paired difference and its CI."""
        metrics = list(self.spec.metrics)
        frame = self.replications
        summ = summarize(frame, metrics, keys=("point",))
        comp = compare(frame, self.baseline, metrics, keys=("point",))
        comp = comp.rename(columns={"ci_low": "diff_ci_low", "ci_high": "diff_ci_high"})
        comp = comp[["point", "policy", "metric", "diff", "diff_ci_low", "diff_ci_high", "rel_change", "p_value"]]
        out = summ.merge(comp, on=["point", "policy", "metric"], how="left", sort=False)
        out = self.point_frame.drop(columns="seed").merge(out, on="point", how="right", sort=False)
        return out[["point", *self.spec.paths, *TABLE_COLUMNS]].reset_index(drop=True)

    def point(self, spec: PointSpec) -> Point:
        """The point ``spec`` names (an id or ``{path or its last part: value}``); :class:`PointSpecError` else."""
        return find_point(self.points, spec, self.spec.paths)

    def against(self, reference: PointSpec | None = None) -> pd.DataFrame:
        """Every point minus ``reference`` (default: ``sweep.reference``), per policy and metric.

        A partial reference (some swept parameters) keeps each point's other values.  Columns:
        ``point, reference``, the point's swept values, then :data:`POINT_COMPARISON_COLUMNS`;
        paired on common random numbers.  Raises :class:`PointSpecError` for a point not in the design.
        """
        spec = reference if reference is not None else self.spec.reference
        if spec is None:
            raise PointSpecError("no reference point: give one (e.g. {'window_days': 90}) or set sweep.reference")
        return self._compared(reference_pairs(self.points, spec, self.spec.paths))

    def compare(self, a: PointSpec, b: PointSpec) -> pd.DataFrame:
        """Point ``a`` minus point ``b``, per policy and metric (paired; columns as :meth:`against`)."""
        return self._compared([(self.point(a).id, self.point(b).id)])

    @cached_property
    def reference_table(self) -> pd.DataFrame | None:
        """:meth:`against` the scenario's ``sweep.reference`` (``sweep_reference.csv``); None without one."""
        return None if self.spec.reference is None else self.against()

    def _compared(self, pairs: Sequence[tuple[int, int]]) -> pd.DataFrame:
        out = compare_points(self.replications, self.points, pairs, self.spec.metrics)
        values = self.point_frame.drop(columns="seed")
        out = out.merge(values, on="point", how="left", sort=False)
        return out[["point", "reference", *self.spec.paths, *POINT_COMPARISON_COLUMNS[2:]]]
