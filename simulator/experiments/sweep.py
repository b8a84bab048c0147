"""Parameter sweeps: run the scenario at many parameter values and tabulate how the comparison moves.

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
import itertools
import json
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from functools import cached_property, partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import qmc

from simulator.core.config import Market, Policy, RunConfig
from simulator.core.metrics import METRIC_NAMES
from simulator.experiments.experiment import compare, run_single, summarize
from simulator.experiments.runner import (
    Task,
    TaskFailure,
    TaskKey,
    TaskStore,
    executor_slots,
    failure_report,
    open_executor,
    run_tasks,
)
from simulator.scenario import Issue, PathT, Scenario, ScenarioError, load_scenario, with_changes

SWEEPABLE_ROOTS: tuple[str, ...] = ("market", "policies", "horizon_days", "start_date")
"""Top-level fields a sweep may vary (not the seeds, replications or the sweep block itself)."""

DESIGN_SPAWN_KEY = 2**32 - 8
"""First spawn-key entry of design / bootstrap random numbers; replication indices never reach it."""

PURPOSE_SWEEP, PURPOSE_SENSITIVITY, PURPOSE_BOOTSTRAP, PURPOSE_POINT_SEED = 0, 1, 2, 3

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

Progress = Callable[[int, int], None]


# --------------------------------------------------------------------------- random numbers


def design_rng(seed: int, purpose: int) -> np.random.Generator:
    """A generator for design points (or bootstrap resamples) derived from ``seed`` alone."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(DESIGN_SPAWN_KEY, purpose)))


def point_root_seed(root_seed: int, point: int) -> int:
    """Root seed of point ``point`` under ``seeds: per_point`` (a function of both, nothing else)."""
    ss = np.random.SeedSequence(root_seed, spawn_key=(DESIGN_SPAWN_KEY, PURPOSE_POINT_SEED, point))
    return int(ss.generate_state(1, dtype=np.uint32)[0])


def _qmc_engine(cls: type, d: int, rng: np.random.Generator, **kw: Any) -> Any:
    try:
        return cls(d, rng=rng, **kw)
    except TypeError:  # scipy < 1.15 calls it seed
        return cls(d, seed=rng, **kw)


def unit_sample(method: str, n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` points in ``[0, 1)^d`` from a scrambled QMC design (``lhs``, ``sobol``, ``halton``)."""
    if method == "lhs":
        return _qmc_engine(qmc.LatinHypercube, d, rng).random(n)
    if method == "halton":
        return _qmc_engine(qmc.Halton, d, rng, scramble=True).random(n)
    if method == "sobol":
        if n & (n - 1):
            raise ValueError(f"sobol needs n a power of 2, got {n}")
        return _qmc_engine(qmc.Sobol, d, rng, scramble=True).random_base2(int(math.log2(n)))
    raise ValueError(f"unknown method {method!r}; allowed: lhs, sobol, halton")


# --------------------------------------------------------------------------- the spec


@dataclass(frozen=True)
class Parameter:
    """One swept path: explicit ``values`` (grid) or a range ``[low, high]``."""

    path: str
    values: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    num: int | None = None
    integer: bool = False
    log: bool = False

    @property
    def is_range(self) -> bool:
        return self.values is None

    def scale(self, u: np.ndarray) -> list[Any]:
        """Map unit-interval numbers onto the range (log scale if ``log``; whole numbers if ``integer``)."""
        assert self.low is not None and self.high is not None
        u = np.asarray(u, dtype=np.float64)
        if self.log:
            x = np.exp(np.log(self.low) + u * (np.log(self.high) - np.log(self.low)))
        else:
            x = self.low + u * (self.high - self.low)
        if self.integer:
            return [int(v) for v in np.clip(np.round(x), math.ceil(self.low), math.floor(self.high))]
        return [float(v) for v in x]

    def grid_values(self) -> list[Any]:
        """The values of a grid axis: the list as given, or ``num`` evenly spaced points (both ends in)."""
        if self.values is not None:
            return list(self.values)
        assert self.num is not None
        out = self.scale(np.linspace(0.0, 1.0, self.num))
        return list(dict.fromkeys(out))  # integer rounding can merge neighbours


@dataclass(frozen=True)
class SweepSpec:
    """The validated ``sweep:`` block."""

    method: str
    parameters: tuple[Parameter, ...]
    n: int | None
    seed: int
    seeds: str
    replications: int
    metrics: tuple[str, ...]

    @property
    def paths(self) -> list[str]:
        return [p.path for p in self.parameters]


def _path_issues(scenario: Scenario, block: str, path: str, loc: PathT) -> list[Issue]:
    segs = path.split(".")
    if any(not s.strip() for s in segs):
        return [scenario.issue(loc, "bad path: use dotted field names, e.g. policies.new.refund.window_days")]
    if segs[0] not in SWEEPABLE_ROOTS:
        return [scenario.issue(loc, f"a {block} cannot vary {segs[0]!r}; paths start with one of: "
                                    + ", ".join(SWEEPABLE_ROOTS))]
    policies = scenario.resolved.get("policies") or {}
    if segs[0] == "policies" and (len(segs) < 2 or segs[1] not in policies):
        # --set may create a policy; a sweep that does so is a typo
        return [scenario.issue(loc, "a policies.* path must name a policy of the scenario: "
                                    + ", ".join(policies))]
    return []


def parse_parameter(scenario: Scenario, block: str, path: str, raw: Any) -> tuple[Parameter | None, list[Issue]]:
    """A :class:`Parameter` from one entry of ``{block}.parameters`` (shape already validated)."""
    loc: PathT = (block, "parameters", path)
    issues = _path_issues(scenario, block, path, loc)
    if issues:
        return None, issues
    if isinstance(raw, list):
        return Parameter(path, values=tuple(raw)), []
    lo, hi = float(raw["low"]), float(raw["high"])
    integer = raw.get("integer")
    if integer is None:
        integer = _needs_integer(scenario, path, lo, hi)
    if integer and math.ceil(lo) > math.floor(hi):
        return None, [scenario.issue(loc, f"no whole number between low={lo:g} and high={hi:g}", raw)]
    return Parameter(path, low=lo, high=hi, num=raw.get("num"), integer=bool(integer),
                     log=bool(raw.get("log", False))), []


def _needs_integer(scenario: Scenario, path: str, lo: float, hi: float) -> bool:
    """Whether the field at ``path`` takes whole numbers: try a fractional value and see."""
    probe = 0.5 * (lo + hi)
    probe = probe + 0.25 if float(probe).is_integer() else probe
    try:
        load_scenario(scenario.resolved, {path: probe})
    except ScenarioError as exc:
        return any(i.message.startswith("must be a whole number") for i in exc.issues)
    return False


def sweep_spec(scenario: Scenario, replications: int | None = None) -> SweepSpec:
    """Read and check the scenario's ``sweep:`` block; raise :class:`ScenarioError` listing every problem."""
    raw = scenario.resolved.get("sweep")
    if not isinstance(raw, dict):
        raise ScenarioError([scenario.issue(("sweep",), "no sweep: block in this scenario; add one "
                                                        "(see docs/scenarios.md, 'Sweeps')")])
    method = raw.get("method", "grid")
    issues: list[Issue] = []
    params: list[Parameter] = []
    for path, entry in raw["parameters"].items():
        p, errs = parse_parameter(scenario, "sweep", path, entry)
        issues += errs
        if p is None:
            continue
        loc: PathT = ("sweep", "parameters", path)
        if method == "grid" and p.is_range and p.num is None:
            issues.append(scenario.issue(loc, "a grid needs a list of values or {low, high, num}", entry))
        elif method != "grid" and not p.is_range:
            issues.append(scenario.issue(loc, f"method {method} samples ranges: give {{low, high}}, not a list",
                                         entry))
        elif method != "grid" and p.num is not None:
            issues.append(scenario.issue((*loc, "num"), f"num is for method grid; method {method} takes the "
                                                        "number of points from sweep.n", p.num))
        params.append(p)
    n = raw.get("n")
    if method == "grid" and n is not None:
        issues.append(scenario.issue(("sweep", "n"), "n is for lhs/sobol/halton; a grid's points come from "
                                                     "the parameters' values", n))
    if method != "grid" and n is None:
        issues.append(scenario.issue(("sweep", "method"), f"method {method} needs n, the number of points",
                                     method))
    if method == "sobol" and n is not None and n & (n - 1):
        issues.append(scenario.issue(("sweep", "n"), "sobol needs a power of 2 (e.g. 16, 32, 64); "
                                                     "use lhs or halton for other sizes", n))
    if issues:
        raise ScenarioError(issues)
    return SweepSpec(
        method=method, parameters=tuple(params), n=n,
        seed=int(raw["seed"]) if raw.get("seed") is not None else scenario.root_seed,
        seeds=raw.get("seeds", "common"),
        replications=int(replications or raw.get("replications") or scenario.replications),
        metrics=tuple(raw.get("metrics") or METRIC_NAMES),
    )


# --------------------------------------------------------------------------- the design


def design(spec: SweepSpec) -> list[dict[str, Any]]:
    """The sweep's points as ``{path: value}`` mappings, in a fixed order.

    Grid: the cartesian product of the axes, the last parameter varying fastest.  QMC: ``n``
    points of the scrambled design seeded by ``spec.seed`` (the same seed gives the same points).
    """
    if spec.method == "grid":
        axes = [p.grid_values() for p in spec.parameters]
        return [dict(zip(spec.paths, combo, strict=True)) for combo in itertools.product(*axes)]
    assert spec.n is not None
    u = unit_sample(spec.method, spec.n, len(spec.parameters), design_rng(spec.seed, PURPOSE_SWEEP))
    cols = [p.scale(u[:, j]) for j, p in enumerate(spec.parameters)]
    return [dict(zip(spec.paths, row, strict=True)) for row in zip(*cols, strict=True)]


@dataclass(frozen=True)
class Point:
    """One design point: its values, the scenario with them applied, and the root seed it runs with."""

    id: int
    values: dict[str, Any]
    scenario: Scenario
    root_seed: int


def _relocate(scenario: Scenario, block: str, point: int, values: Mapping[str, Any],
              exc: ScenarioError) -> list[Issue]:
    """Issues of a point's overrides, moved to the line of the sweep entry that caused them."""
    out = []
    for i in exc.issues:
        path = next((p for p in values if i.path == p or i.path.startswith(p + ".")
                     or (i.file or "").startswith(f"--set {p}")), None)
        if path is None:  # a problem elsewhere that these values bring about
            out.append(scenario.issue((block,), f"{i.path}: {i.message} (at {block} point {point}: "
                                                f"{_describe(values)})"))
            continue
        msg = i.message if i.path == path else f"{i.path}: {i.message}"
        out.append(scenario.issue((block, "parameters", path), msg, values[path]))
    return out


def build_points(scenario: Scenario, values: Sequence[Mapping[str, Any]], *, block: str = "sweep",
                 seeds: str = "common") -> list[Point]:
    """Apply each point's values to the scenario; raise :class:`ScenarioError` for any that does not fit.

    Every point is validated before anything runs; each problem is reported once, at the sweep
    entry's file and line, with the first point that shows it.
    """
    points: list[Point] = []
    issues: dict[tuple[str, str], Issue] = {}
    for k, vals in enumerate(values):
        try:
            sc = load_scenario(scenario.resolved, dict(vals))
        except ScenarioError as exc:
            for i in _relocate(scenario, block, k, vals, exc):
                issues.setdefault((i.path, i.message.split(" (at ")[0]), i)
            continue
        sc = _with_source(sc, scenario)
        seed = scenario.root_seed if seeds == "common" else point_root_seed(scenario.root_seed, k)
        points.append(Point(k, dict(vals), sc, seed))
    if issues:
        raise ScenarioError(list(issues.values()))
    return points


def _with_source(sc: Scenario, parent: Scenario) -> Scenario:
    return replace(sc, source=parent.source, overrides=parent.overrides + sc.overrides)


def plan_sweep(scenario: Scenario, replications: int | None = None) -> tuple[SweepSpec, list[Point]]:
    """The checked spec and every point, built and validated (raises :class:`ScenarioError`)."""
    spec = sweep_spec(scenario, replications)
    return spec, build_points(scenario, design(spec), seeds=spec.seeds)


def check_sweep(scenario: Scenario) -> list[Point]:
    """Everything ``inmail-sim validate`` checks of a sweep block: the spec and every point."""
    return plan_sweep(scenario)[1]


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
    fps = {pt.id: point_fingerprint(pt) for pt in points}
    tasks: list[Task] = []
    for pt in points:
        sc = pt.scenario
        run = replace(sc.run, record_daily=False)
        for i in range(replications):
            for name in (policies if policies is not None else sc.policy_names):
                tasks.append(Task(TaskKey(name, i, pt.id), run_task,
                                  (fps[pt.id], pt.id, sc.market, sc.policies[name], run, pt.root_seed, i)))

    def reuse(rec: PointRecord) -> PointRecord | None:
        ok = fps.get(rec.point) == rec.fingerprint and list(rec.metrics) == list(METRIC_NAMES)
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
    return {(k.point, k.policy, k.replication): r.metrics for k, r in run.results.items()}


def _describe(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items())


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

    def write(self, out: str | Path, **manifest_kw: Any) -> Path:
        """Write ``sweep.csv``, ``sweep_points.csv``, ``sweep_replications.csv``, figures and a manifest."""
        from simulator.io.outputs import atomic_write

        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        files = {
            "sweep.csv": self.table, "sweep_points.csv": self.point_frame,
            "sweep_replications.csv": self.replications,
        }
        for name, frame in files.items():
            atomic_write(folder / name, lambda p, f=frame: f.to_csv(p, index=False))
        atomic_write(folder / "scenario.resolved.yaml",
                     lambda p: p.write_text(self.scenario.resolved_yaml(), encoding="utf-8"))
        figures = self.write_figures(folder)
        names = [*files, "scenario.resolved.yaml", *figures, "manifest.json"]
        man = sweep_manifest(self, names, **manifest_kw) | {"figure_errors": self.extra.get("figure_errors", {})}
        atomic_write(folder / "manifest.json",
                     lambda p: p.write_text(json.dumps(man, indent=2, default=str) + "\n", encoding="utf-8"))
        return folder

    def write_figures(self, folder: Path) -> list[str]:
        """Metric and difference vs each swept parameter; a heatmap for two-parameter grids (``figures/``)."""
        from simulator.io import plotting
        makers: dict[str, Callable[[], Any]] = {}
        metrics = [m for m in MAIN_PLOT_METRICS if m in self.spec.metrics] or list(self.spec.metrics[:1])
        scattered = self.spec.method != "grid"
        for metric in metrics:
            makers[f"sweep_{metric}"] = partial(plotting.plot_sweep, self.table, self.spec.paths, metric,
                                                self.baseline, scattered=scattered)
            if self.spec.method == "grid" and len(self.spec.paths) == 2:
                for pol in [p for p in self.scenario.policy_names if p != self.baseline]:
                    makers[f"sweep_heatmap_{metric}_{pol}"] = partial(
                        plotting.plot_sweep_heatmap, self.table, self.spec.paths[0], self.spec.paths[1], metric,
                        pol, self.baseline)
        return write_figure_files(makers, folder, self.extra)

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


def write_figure_files(makers: Mapping[str, Callable[[], Any]], folder: Path, extra: dict[str, Any]) -> list[str]:
    """Draw each figure into ``folder/figures/NAME.png``; one that fails is noted in ``extra`` and skipped."""
    from simulator.io import plotting
    pngs: dict[str, bytes] = {}
    for name, make in makers.items():
        try:
            pngs[name] = plotting.render_png(make())
        except Exception as exc:  # a broken figure must not cost the tables
            extra.setdefault("figure_errors", {})[name] = f"{type(exc).__name__}: {exc}"
    paths = plotting.write_pngs(pngs, folder)
    return [f"{plotting.FIGURES_DIR}/{p.name}" for p in paths.values()]


def sweep_manifest(res: SweepResults, files: Iterable[str], *, argv: Sequence[str] | None = None,
                   started: Any = None, finished: Any = None, workers: int | None = None,
                   executor: str | None = None) -> dict[str, Any]:
    """What is needed to reproduce the sweep."""
    from simulator.io.outputs import git_revision, package_version, run_fingerprint

    sc, spec = res.scenario, res.spec
    git = git_revision()
    return {
        "package": "inmail-sim", "version": package_version(), "git_revision": git["revision"],
        "git_dirty": git["dirty"], "kind": "sweep", "fingerprint": run_fingerprint(sc),
        "scenario": sc.name, "scenario_file": sc.source,
        "overrides": list(sc.overrides), "baseline": sc.baseline, "policies": sc.policy_names,
        "root_seed": sc.root_seed, "method": spec.method, "design_seed": spec.seed, "points": len(res.points),
        "parameters": spec.paths, "replications": spec.replications, "seeds": spec.seeds,
        "seeding": ("replication i of every policy at every point uses SeedSequence(root_seed, spawn_key=(i,))"
                    if spec.seeds == "common" else
                    "replication i of every policy at point p uses SeedSequence(point seed, spawn_key=(i,)); "
                    "point seeds are in sweep_points.csv"),
        "tasks": len(res.replications), "workers": workers, "executor": executor,
        "command": " ".join(argv) if argv else None,
        "started": started.isoformat(timespec="seconds") if started else None,
        "finished": finished.isoformat(timespec="seconds") if finished else None,
        "numpy_version": np.__version__, "pandas_version": pd.__version__, "pid": os.getpid(),
        "files": list(files),
    }
