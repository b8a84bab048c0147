"""The design of a sweep: the ``sweep:`` block, its points, and the random numbers that place them.

The ``sweep:`` block of a scenario (validated for shape in ``scenario.py``) names dotted parameter
paths - the same paths as ``--set`` - with either a list of values / ``{low, high, num}`` per path
(``method: grid``, the cartesian product) or ``{low, high}`` ranges sampled with ``n`` quasi-random
points (``method: lhs | sobol | halton``, :mod:`scipy.stats.qmc`, seeded from the root seed).  Each
point is the scenario with those values applied as overrides, so a bad path or value is reported
like any scenario error, at the line of the sweep entry.  Sensitivity analysis builds its
evaluations as points too.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy.stats import qmc

from simulator.core.metrics import METRIC_NAMES, canonical_metric
from simulator.experiments.budget import BYTES_PER_POINT, BYTES_PER_STUDY_TASK, Limits, Workload, admit
from simulator.experiments.point_comparison import PointSpec, PointSpecError, reference_pairs
from simulator.scenario import Issue, PathT, Scenario, ScenarioError, load_scenario

SWEEPABLE_ROOTS: tuple[str, ...] = ("market", "policies", "horizon_days", "start_date")
"""Top-level fields a sweep may vary (not the seeds, replications or the sweep block itself)."""

DESIGN_SPAWN_KEY = 2**32 - 8
"""First spawn-key entry of design / bootstrap random numbers; replication indices never reach it."""

PURPOSE_SWEEP, PURPOSE_SENSITIVITY, PURPOSE_BOOTSTRAP, PURPOSE_POINT_SEED = 0, 1, 2, 3
PURPOSE_WORLDS, PURPOSE_CALIBRATION, PURPOSE_DISCOVERY, PURPOSE_SEARCH = 4, 5, 6, 7
"""Design streams of the world draws, the Bayesian calibration, PRIM's resampling and the policy search."""

# --------------------------------------------------------------------------- random numbers


def design_rng(seed: int, purpose: int) -> np.random.Generator:
    """A generator for design points (or bootstrap resamples) derived from ``seed`` alone."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(DESIGN_SPAWN_KEY, purpose)))


def point_root_seed(root_seed: int, point: int) -> int:
    """Root seed of point ``point`` under ``seeds: per_point`` (a function of both, nothing else)."""
    ss = np.random.SeedSequence(root_seed, spawn_key=(DESIGN_SPAWN_KEY, PURPOSE_POINT_SEED, point))
    return int(ss.generate_state(1, dtype=np.uint32)[0])


def qmc_engine(cls: type, d: int, rng: np.random.Generator, **kw: Any) -> Any:
    try:
        return cls(d, rng=rng, **kw)
    except TypeError:  # scipy < 1.15 calls it seed
        return cls(d, seed=rng, **kw)


def unit_sample(method: str, n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` points in ``[0, 1)^d`` from a scrambled QMC design (``lhs``, ``sobol``, ``halton``)."""
    if method == "lhs":
        return qmc_engine(qmc.LatinHypercube, d, rng).random(n)
    if method == "halton":
        return qmc_engine(qmc.Halton, d, rng, scramble=True).random(n)
    if method == "sobol":
        if n & (n - 1):
            raise ValueError(f"sobol needs n a power of 2, got {n}")
        return qmc_engine(qmc.Sobol, d, rng, scramble=True).random_base2(int(math.log2(n)))
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
    reference: PointSpec | None = None
    """``sweep.reference``: the point every point is compared with (None: no such comparison)."""

    @property
    def paths(self) -> list[str]:
        return [p.path for p in self.parameters]

    @property
    def size(self) -> int:
        """How many points the design has, counted without building it (a grid: the product of its axes'
        lengths, at most - integer rounding can merge neighbours; QMC: ``n``)."""
        if self.method != "grid":
            return int(self.n or 0)
        return math.prod(len(p.values) if p.values is not None else int(p.num or 0) for p in self.parameters)


def sweep_workload(scenario: Scenario, spec: SweepSpec) -> Workload:
    """The sweep's tasks (at most points x policies x replications) and memory, counted from the spec alone."""
    points = spec.size
    return Workload.of_counts(
        "sweep", scenario, [(points, "points"), (len(scenario.policies), "policies"),
                            (spec.replications, "replications")],
        "fewer sweep values (or a smaller sweep.n), or fewer --replications",
        bytes_per_task=BYTES_PER_STUDY_TASK, design_bytes=points * BYTES_PER_POINT)


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
        metrics=tuple(canonical_metric(m) for m in raw["metrics"]) if raw.get("metrics") else METRIC_NAMES,
        reference=raw.get("reference"),
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


def plan_sweep(scenario: Scenario, replications: int | None = None, *,
               limits: Limits | None = None) -> tuple[SweepSpec, list[Point]]:
    """The checked spec and every point, built and validated (raises :class:`ScenarioError`).

    The design's size is checked against ``limits`` (:func:`simulator.experiments.budget.admit`) before
    a single point is built.
    """
    spec = sweep_spec(scenario, replications)
    admit(sweep_workload(scenario, spec), limits)
    points = build_points(scenario, design(spec), seeds=spec.seeds)
    if spec.reference is not None:
        try:
            reference_pairs(points, spec.reference, spec.paths)
        except PointSpecError as exc:
            raise ScenarioError([scenario.issue(("sweep", "reference"), str(exc), spec.reference)]) from None
    return spec, points


def check_sweep(scenario: Scenario, limits: Limits | None = None) -> list[Point]:
    """Everything ``inmail-sim validate`` checks of a sweep block: the spec, its size and every point."""
    return plan_sweep(scenario, limits=limits)[1]


def _describe(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items())
