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
from simulator.experiments.design import Point, SweepSpec, check_sweep, plan_sweep, sweep_spec
from simulator.experiments.experiment import compare, run_single, summarize
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
    "MAIN_PLOT_METRICS", "TABLE_COLUMNS", "TASKS_FOLDER", "PointRecord", "Records", "SweepError", "SweepResults",
    "check_points_memory", "check_sweep", "plan_sweep", "point_fingerprint", "run_points", "run_sweep",
    "run_task", "sweep_spec", "task_store",
]

MAIN_PLOT_METRICS: tuple[str, ...] = ("response_rate", "net_credit_burn")
"""Metrics plotted by default (when the sweep computes them)."""

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


def run_points(points: Sequence[Point], replications: int, executor: Executor, *,
               progress: Progress | None = None, store: TaskStore | None = None,
               policies: Sequence[str] | None = None) -> Records:
    """Run every point x policy x replication on ``executor`` (:func:`simulator.experiments.runner.run_tasks`).

    Results are keyed by (point, policy, index), never ordered by completion, so they do not
    depend on the executor or the number of workers.  Each finished task is written to ``store``
    at once; tasks already there for an unchanged point are not run again.  ``policies``: run
    only these (default: all of the scenario's).  Raises :class:`SweepError` if any task failed.
    """
    fingerprints = {point.id: point_fingerprint(point) for point in points}
    tasks: list[Task] = []
    for point in points:
        scenario = point.scenario
        lean_run = replace(scenario.run, record_daily=False)
        for i in range(replications):
            for name in (policies if policies is not None else scenario.policy_names):
                tasks.append(Task(TaskKey(name, i, point.id), run_task,
                                  (fingerprints[point.id], point.id, scenario.market, scenario.policies[name],
                                   lean_run, point.root_seed, i)))

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
    records: Records = {}
    for key, record in run.results.items():
        assert key.point is not None  # every sweep task belongs to a point
        records[(key.point, key.policy, key.replication)] = record.metrics
    return records


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
              plan: tuple[SweepSpec, list[Point]] | None = None) -> SweepResults:
    """Run the scenario's sweep and return :class:`SweepResults`.

    ``replications`` overrides the block's (or the scenario's) replications per point and policy.
    ``executor``: any ``concurrent.futures.Executor`` (left open); else ``workers`` processes or
    ``dask`` (an address or ``"local"``), see :func:`simulator.experiments.runner.open_executor`.  ``store``
    (:func:`task_store`): write each finished task there at once and reuse the ones it holds.
    Raises :class:`SweepError` when tasks fail and :class:`~simulator.experiments.runner.RunInterrupted` on
    Ctrl-C (finished tasks stay in the store).  ``plan``: :func:`plan_sweep`'s result, if already made.
    """
    spec, points = plan if plan is not None else plan_sweep(scenario, replications)
    if dask is None or dask == "local":
        check_points_memory(points, executor, workers, memory_limit)
    opener = open_executor(workers or 1, dask) if executor is None else contextlib.nullcontext(executor)
    with opener as ex:
        records = run_points(points, spec.replications, ex, progress=progress, store=store)
    return SweepResults(scenario=with_changes(scenario, replications=spec.replications), spec=spec,
                        points=points, replications=_replication_frame(points, records, spec))


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
    """

    scenario: Scenario
    spec: SweepSpec
    points: Sequence[Point]
    replications: pd.DataFrame
    extra: dict[str, Any] = field(default_factory=dict)

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

    def text(self, width: int = 100) -> str:
        """A short printout: the main difference at every point."""
        t = self.table
        metric = next((m for m in MAIN_PLOT_METRICS if m in self.spec.metrics), self.spec.metrics[0])
        rows = t[(t["metric"] == metric) & (t["policy"] != self.baseline)]
        lines = [f"sweep of {self.scenario.name}: {len(self.points)} points x {len(self.scenario.policies)} "
                 f"policies x {self.spec.replications} replications ({self.spec.method}); "
                 f"{metric}: policy - {self.baseline} (95% CI)"]
        for r in rows.to_dict("records"):
            vals = ", ".join(f"{p.split('.')[-1]}={_short(r[p])}" for p in self.spec.paths)
            line = (f"  {r['point']:>3} {vals}  {r['policy']}: {_fmt(r['diff'])} "
                    f"[{_fmt(r['diff_ci_low'])}, {_fmt(r['diff_ci_high'])}]")
            lines.append(line if len(line) <= width else line[: width - 3] + "...")
        return "\n".join(lines)


def _short(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _fmt(v: float) -> str:
    return "nan" if v is None or not np.isfinite(v) else f"{v:+.4g}"
