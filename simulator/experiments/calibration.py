"""Calibration: fit free market parameters so that the baseline world reproduces published figures.

The ``calibration:`` block of a scenario (shape checked in ``scenario.py``) names

* **free parameters**: market fields by dotted path (the paths of ``--set``), each with a range;
  ``paths: {a: 1, b: 2}`` ties several fields to one value (field ``b`` gets twice the value);
* **targets**: quantities of one replication of the fitted policy (:func:`observe`) with a point
  ``value``, a band ``low``..``high`` or a one-sided bound - by default the figures of
  POLICY_FACTS section 5 (:data:`DEFAULT_TARGETS`);
* **validation** figures *not* used in fitting: policy comparisons the fitted market predicts.

The objective is the weighted sum of squared target residuals (:meth:`Target.residual`) plus a
small ridge towards the starting values (``regularization``), minimized with
``scipy.optimize.minimize`` (Nelder-Mead or Powell, bounded) over the unit cube of the ranges.
Every evaluation runs the *same* replication indices ``0..replications-1`` (common random
numbers), so the objective is a deterministic function of the parameters, not a noisy one.
The achieved-vs-target table is then computed on fresh replications (indices after those used
in fitting), so its confidence intervals are honest.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

from simulator.core.config import SEAT_TYPES, Dist, Market, Policy, RunConfig
from simulator.core.members import apportion
from simulator.core.metrics import (
    BREAKDOWN_KEYS,
    BREAKDOWN_METRICS,
    METRIC_NAMES,
    PERSONALIZATION_BANDS,
    ReplicationResult,
    breakdown_arrays,
    ratio,
)
from simulator.experiments.experiment import compare, run_experiment, run_single
from simulator.experiments.runner import Task, TaskKey, failure_report, open_executor, run_tasks
from simulator.scenario import Issue, Overrides, PathT, Scenario, ScenarioError, load_scenario, scenario_yaml

CONFIDENCE = 0.95
BOUND_Z = 1.645
"""A one-sided bound must hold at the one-sided 95% confidence limit of the fitting mean."""

# --------------------------------------------------------------------------- observables

SEGMENT_KEY = "member_segment"
"""Breakdown by the *receiving member's* segment (the engine's breakdowns are by recruiter)."""

SEGMENT_METRICS: tuple[str, ...] = ("response_rate", "received", "responses")
SEGMENT_EXTREMES: tuple[str, ...] = ("lowest", "highest")
"""Labels that pick, in each replication, the segment with the lowest / highest response rate."""

SEAT_SHARES: tuple[str, ...] = ("sanctioned_share", "warned_share", "improvement_share")
"""Threshold bite, as shares of the seats the threshold reviews (``Threshold.seat_types``):
``sanctioned_share`` = seats in an Improvement Period on an average sending day,
``warned_share`` = seats warned at least once, ``improvement_share`` = seats with at least one
Improvement Period (the last two over the whole run)."""

DIAGNOSTICS: tuple[str, ...] = (
    "response_rate", "member_segment:lowest:response_rate", "member_segment:highest:response_rate",
    "personalization_band:low:response_rate", "personalization_band:mid:response_rate",
    "personalization_band:high:response_rate", "sanctioned_share", "warned_share", "improvement_share",
    "warnings", "improvement_periods", "sent", "sent_bulk",
)
"""Observables reported at the start and fitted values besides the targets."""


def observable_key(metric: str, by: str | None = None, label: str | None = None) -> str:
    """``response_rate``, ``group:agency:response_rate``, ``member_segment:lowest:response_rate``."""
    return metric if by is None else f"{by}:{label}:{metric}"


@dataclass(frozen=True)
class Observation:
    """Named scalar observables of one replication (picklable; storable by :class:`runner.TaskStore`)."""

    values: dict[str, float]

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"names": np.array(list(self.values), dtype=str),
                "values": np.array(list(self.values.values()), dtype=np.float64)}

    @classmethod
    def from_arrays(cls, a: Mapping[str, np.ndarray]) -> Observation:
        return cls({str(k): float(v) for k, v in zip(a["names"], a["values"], strict=True)})


def segment_bounds(market: Market) -> list[tuple[str, int, int]]:
    """(name, first member, end) of each member segment: members are sorted by segment (``build_members``)."""
    segs = market.members.segments
    sizes = apportion(market.members.count, np.array([s.share for s in segs], dtype=np.float64))
    ends = np.cumsum(sizes)
    return [(s.name, int(e - n), int(e)) for s, n, e in zip(segs, sizes, ends, strict=True)]


def observe(result: ReplicationResult, market: Market, policy: Policy) -> dict[str, float]:
    """Every observable of one replication: metrics, recruiter breakdowns, member segments, threshold bite."""
    out = {k: float(v) for k, v in result.metrics.items()}
    t = result.recruiters
    for by in BREAKDOWN_KEYS:
        for label, values in breakdown_arrays(t, by).items():
            for m, v in values.items():
                out[observable_key(m, by, label)] = float(v)
    if result.member_received is not None and result.member_unanswered is not None:
        rates: dict[str, float] = {}
        for name, lo, hi in segment_bounds(market):
            received = float(result.member_received[lo:hi].sum())
            responses = received - float(result.member_unanswered[lo:hi].sum())
            out[observable_key("received", SEGMENT_KEY, name)] = received
            out[observable_key("responses", SEGMENT_KEY, name)] = responses
            out[observable_key("response_rate", SEGMENT_KEY, name)] = ratio(responses, received)
            if received > 0:
                rates[name] = ratio(responses, received)
        for label, pick in (("lowest", min), ("highest", max)):
            name = pick(rates, key=lambda n: rates[n]) if rates else None
            for m in SEGMENT_METRICS:
                out[observable_key(m, SEGMENT_KEY, label)] = out[observable_key(m, SEGMENT_KEY, name)] if name else 0.0
    reviewed = np.isin(t.seat_type, policy.threshold.seat_types)
    n = int(reviewed.sum())
    in_ip = result.daily.get("in_improvement")
    out["sanctioned_share"] = ratio(float(np.mean(in_ip)), n) if in_ip is not None and len(in_ip) else 0.0
    out["warned_share"] = ratio(float((t.warnings[reviewed] > 0).sum()), n)
    out["improvement_share"] = ratio(float((t.improvement_periods[reviewed] > 0).sum()), n)
    return out


def observe_task(market: Market, policy: Policy, run: RunConfig, root_seed: int, index: int) -> Observation:
    """One replication's observables (a picklable task for any executor)."""
    run = dataclasses.replace(run, record_daily=True)  # sanctioned_share reads the daily series
    return Observation(observe(run_single(market, policy, run, root_seed, index), market, policy))


# --------------------------------------------------------------------------- the spec


@dataclass(frozen=True)
class FreeParameter:
    """One free parameter: the fields it sets, as (dotted path, factor) pairs, and its range."""

    name: str
    paths: tuple[tuple[str, float], ...]
    low: float
    high: float
    start: float
    integer: bool = False

    def clip(self, x: float) -> float:
        x = min(max(float(x), self.low), self.high)
        return float(round(x)) if self.integer else x


@dataclass(frozen=True)
class Target:
    """A figure to reproduce: a point ``value``, a band ``[low, high]`` or a one-sided bound.

    Residual (what the objective squares): a point, ``(x - value) / scale``.  A band is a range,
    not a point: the residual is 0 in its middle half (a quarter of the width from either edge,
    a margin against Monte Carlo noise) and grows linearly outside it, reaching 1 at an edge.
    A one-sided bound is a constraint: 0 when the one-sided 95% confidence limit of the mean over
    the fitting replications (``mean + 1.645 SE``) meets it, else the excess divided by ``scale``
    (default: a quarter of the bound; for a band: a quarter of its width).  The margins keep a
    fit that meets a figure on its own seeds from missing it on fresh ones.
    """

    name: str
    metric: str
    by: str | None = None
    label: str | None = None
    value: float | None = None
    low: float | None = None
    high: float | None = None
    scale: float | None = None
    weight: float = 1.0
    source: str = ""

    @property
    def key(self) -> str:
        return observable_key(self.metric, self.by, self.label)

    @property
    def kind(self) -> str:
        if self.value is not None:
            return "point"
        return "band" if self.low is not None and self.high is not None else "bound"

    def _scale(self) -> float:
        if self.scale is not None:
            return self.scale
        if self.kind == "point":
            assert self.value is not None
            return abs(self.value) * 0.05 or 1.0
        if self.kind == "band":
            assert self.low is not None and self.high is not None
            return 0.25 * (self.high - self.low)
        bound = self.high if self.high is not None else self.low
        return abs(bound or 0.0) * 0.25 or 1.0

    def residual(self, x: float, se: float = 0.0) -> float:
        """The residual of mean ``x``; ``se``, its standard error, makes a bound demand a safety margin."""
        s = self._scale()
        if self.kind == "point":
            assert self.value is not None
            return (x - self.value) / s
        if self.kind == "band":
            assert self.low is not None and self.high is not None
            quarter = 0.25 * (self.high - self.low)
            centre = 0.5 * (self.low + self.high)
            return math.copysign(max(0.0, abs(x - centre) - quarter), x - centre) / s
        if self.high is not None:
            return max(0.0, x + BOUND_Z * se - self.high) / s
        assert self.low is not None
        return max(0.0, self.low - x + BOUND_Z * se) / s

    def met(self, x: float) -> bool:
        """Whether ``x`` satisfies the figure (a point: within one scale)."""
        if self.kind == "point":
            return abs(self.residual(x)) <= 1.0
        return (self.low is None or x >= self.low) and (self.high is None or x <= self.high)

    def describe(self) -> str:
        if self.kind == "point":
            return f"= {self.value:g}"
        if self.kind == "band":
            return f"{self.low:g} .. {self.high:g}"
        return f"<= {self.high:g}" if self.high is not None else f">= {self.low:g}"


DEFAULT_TARGETS: tuple[Target, ...] = (
    Target("lowest_segment", "response_rate", SEGMENT_KEY, "lowest", low=0.16, high=0.19,
           source="POLICY_FACTS 5, seed 004: the lowest response rates across industries, regions and groups "
                  "are 16-19% (here: the member segment with the lowest rate, all senders)"),
    Target("good_senders", "response_rate", "personalization_band", "high", low=0.20, high=0.30,
           source="POLICY_FACTS 5, seed 001: 20-30% is 'generally considered optimal', with targeted content "
                  "(here: recruiters in the high personalization band)"),
    Target("threshold_bite", "sanctioned_share", high=0.02,
           source="POLICY_FACTS 3, 5, seed 004: 'indiscriminate use' of bulk InMail is by fewer than 2% of "
                  "users (here: seats in an Improvement Period on an average day)"),
)
"""The published figures the baseline world is fitted to when the block gives no ``targets``."""


@dataclass(frozen=True)
class Check:
    """A validation figure: ``metric`` of ``policy`` vs its scenario's baseline, predicted by the fitted market."""

    name: str
    scenario: Path | None
    policy: str | None
    metric: str = "response_rate"
    relative: bool = True
    low: float | None = None
    high: float | None = None
    source: str = ""


@dataclass(frozen=True)
class CalibrationSpec:
    """The validated ``calibration:`` block."""

    policy: str
    parameters: tuple[FreeParameter, ...]
    targets: tuple[Target, ...]
    checks: tuple[Check, ...]
    replications: int
    check_replications: int
    method: str
    max_evaluations: int
    tolerance: float
    regularization: float

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.parameters]

    @property
    def start(self) -> np.ndarray:
        return np.array([p.start for p in self.parameters], dtype=np.float64)


# ----------------------------------------------------------------- paths into the config objects


class PathError(ValueError):
    """A calibration path that does not name a numeric market field."""


def config_value(scenario: Scenario, path: str) -> tuple[Any, Any]:
    """(value, parent object) of the market field at a dotted ``path``, defaults included.

    List items (segments, recruiter groups) are addressed by name or index, as in ``--set``.
    """
    segs = path.split(".")
    if segs[0] != "market" or len(segs) < 2:
        raise PathError("a calibration fits the market: paths start with 'market.' (the policies are what "
                        "the model compares, so a policy rule is not a free parameter)")
    obj: Any = scenario.market
    parent: Any = None
    for i, seg in enumerate(segs[1:], start=1):
        parent = obj
        if isinstance(obj, tuple):
            names = [getattr(x, "name", None) for x in obj]
            if seg in names:
                obj = obj[names.index(seg)]
            elif seg.lstrip("-").isdigit() and -len(obj) <= int(seg) < len(obj):
                obj = obj[int(seg)]
            else:
                raise PathError(f"{'.'.join(segs[:i])} has no item {seg!r}; allowed: "
                                + ", ".join(str(n) for n in names if n))
        elif dataclasses.is_dataclass(obj):
            fields = [f.name for f in dataclasses.fields(obj)]
            if seg not in fields:
                raise PathError(f"{'.'.join(segs[:i])} has no field {seg!r}; allowed: " + ", ".join(fields))
            obj = getattr(obj, seg)
        else:
            raise PathError(f"{'.'.join(segs[:i])} is {obj!r}, not a mapping or list")
    if isinstance(obj, bool) or not isinstance(obj, (int, float)):
        raise PathError(f"{path} is not a number (it is {type(obj).__name__}); a free parameter must be numeric")
    return obj, parent


def parameter_overrides(scenario: Scenario, params: Sequence[FreeParameter], theta: Sequence[float]) -> dict[str, Any]:
    """``{path: value}`` overrides that put the parameters at ``theta`` (for ``load_scenario``).

    A field of a distribution (``check_interval_days.a``) is written with its whole
    distribution (``{kind, a, b}``): a lone ``a`` would otherwise turn it into a fixed value.
    """
    out: dict[str, Any] = {}
    for p, x in zip(params, theta, strict=True):
        for path, factor in p.paths:
            value: float | int = float(f"{p.clip(x) * factor:.10g}")  # no 0.31889999999999996 in files
            old, parent = config_value(scenario, path)
            if isinstance(old, int):
                value = round(value)
            head, _, leaf = path.rpartition(".")
            if isinstance(parent, Dist):
                dist = out.get(head) or {"kind": parent.kind, "a": parent.a, "b": parent.b}
                out[head] = {**dist, leaf: float(value)}
            else:
                out[path] = value
    return out


def apply_values(scenario: Scenario, overrides: Mapping[str, Any]) -> Scenario:
    """The scenario with ``overrides`` applied (source, seeds and replications kept)."""
    sc = load_scenario(scenario.resolved, dict(overrides))
    return dataclasses.replace(sc, source=scenario.source, locations=scenario.locations)


# --------------------------------------------------------------------------- reading the block


def _target_issues(scenario: Scenario, t: Target, loc: PathT) -> list[Issue]:
    """Problems with a target's metric / by / label in this scenario."""
    m = scenario.market
    if t.by is None:
        allowed = [*METRIC_NAMES, *SEAT_SHARES]
        if t.metric not in allowed:
            return [scenario.issue((*loc, "metric"), "unknown metric; allowed: " + ", ".join(allowed)
                                   + " (or by + label for a breakdown)", t.metric)]
        return []
    if t.by == SEGMENT_KEY:
        metrics, labels = SEGMENT_METRICS, [s.name for s in m.members.segments] + list(SEGMENT_EXTREMES)
    elif t.by in BREAKDOWN_KEYS:
        metrics = BREAKDOWN_METRICS
        labels = {"seat_type": list(SEAT_TYPES), "personalization_band": list(PERSONALIZATION_BANDS),
                  "behaviour": ["fixed", "adaptive"], "group": [g.name for g in m.recruiters]}[t.by]
    else:
        return [scenario.issue((*loc, "by"), "unknown breakdown; allowed: "
                               + ", ".join([*BREAKDOWN_KEYS, SEGMENT_KEY]), t.by)]
    issues = []
    if t.metric not in metrics:
        issues.append(scenario.issue((*loc, "metric"), f"unknown metric for by: {t.by}; allowed: "
                                     + ", ".join(metrics), t.metric))
    if t.label not in labels:
        issues.append(scenario.issue((*loc, "label"), f"unknown label for by: {t.by}; allowed: "
                                     + ", ".join(labels), t.label))
    return issues


def _parameter(scenario: Scenario, raw: Mapping[str, Any], loc: PathT) -> tuple[FreeParameter | None, list[Issue]]:
    if raw.get("path") is not None:
        paths: list[tuple[str, float]] = [(raw["path"], 1.0)]
        ploc: PathT = (*loc, "path")
    elif isinstance(raw.get("paths"), dict):
        paths = [(str(k), float(v)) for k, v in raw["paths"].items()]
        ploc = (*loc, "paths")
    else:
        paths = [(str(k), 1.0) for k in raw["paths"]]
        ploc = (*loc, "paths")
    issues: list[Issue] = []
    values: list[float] = []
    integer = False
    for path, factor in paths:
        try:
            value, _ = config_value(scenario, path)
        except PathError as exc:
            issues.append(scenario.issue(ploc, str(exc), path))
            continue
        if factor <= 0:
            issues.append(scenario.issue(ploc, f"factor of {path} must be > 0, got {factor:g}", factor))
        integer |= isinstance(value, int)
        values.append(float(value) / factor if factor > 0 else math.nan)
    if issues:
        return None, issues
    lo, hi = float(raw["low"]), float(raw["high"])
    start = raw.get("start")
    if start is None:
        start = min(max(values[0], lo), hi)
    name = raw.get("name") or paths[0][0].removeprefix("market.")
    return FreeParameter(str(name), tuple(paths), lo, hi, float(start), integer), []


def _check(scenario: Scenario, raw: Mapping[str, Any], loc: PathT) -> tuple[Check | None, list[Issue]]:
    path = None
    if raw.get("scenario") is not None:
        base = Path(scenario.source).parent if scenario.source else Path.cwd()
        path = (base / raw["scenario"]).resolve()
        if not path.is_file():
            return None, [scenario.issue((*loc, "scenario"), f"file not found: {path}", raw["scenario"])]
    metric = raw.get("metric", "response_rate")
    if metric not in METRIC_NAMES:
        return None, [scenario.issue((*loc, "metric"), "unknown metric; allowed: " + ", ".join(METRIC_NAMES),
                                     metric)]
    if path is None and raw.get("policy") is not None and raw["policy"] not in scenario.policies:
        return None, [scenario.issue((*loc, "policy"), "must name one of the policies: "
                                     + ", ".join(scenario.policies), raw["policy"])]
    return Check(str(raw["name"]), path, raw.get("policy"), metric, bool(raw.get("relative", True)),
                 raw.get("low"), raw.get("high"), str(raw.get("source", ""))), []


def calibration_spec(scenario: Scenario, *, replications: int | None = None, check_replications: int | None = None,
                     max_evaluations: int | None = None) -> CalibrationSpec:
    """Read and check the scenario's ``calibration:`` block; raise :class:`ScenarioError` listing every problem."""
    raw = scenario.resolved.get("calibration")
    if not isinstance(raw, dict):
        raise ScenarioError([scenario.issue(("calibration",), "no calibration: block in this scenario; add one "
                                                              "(see docs/calibration.md)")])
    issues: list[Issue] = []
    policy = raw.get("policy") or scenario.baseline
    if policy not in scenario.policies:
        issues.append(scenario.issue(("calibration", "policy"), "must name one of the policies: "
                                     + ", ".join(scenario.policies), policy))
    params: list[FreeParameter] = []
    for i, entry in enumerate(raw["parameters"]):
        p, errs = _parameter(scenario, entry, ("calibration", "parameters", i))
        issues += errs
        if p is not None:
            params.append(p)
    names = [p.name for p in params]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        issues.append(scenario.issue(("calibration", "parameters"), f"two parameters are named {dup!r}; "
                                     "give each a distinct name"))
    targets: list[Target] = []
    if raw.get("targets") is None:
        targets = list(DEFAULT_TARGETS)
    for i, entry in enumerate(raw.get("targets") or []):
        fields = {k: entry.get(k) for k in ("metric", "by", "label", "value", "low", "high", "scale")}
        t = Target(name=str(entry.get("name") or entry.get("label") or entry["metric"]),
                   weight=float(entry.get("weight", 1.0)), source=str(entry.get("source", "")), **fields)
        errs = _target_issues(scenario, t, ("calibration", "targets", i))
        issues += errs
        if not errs:
            targets.append(t)
    checks: list[Check] = []
    for i, entry in enumerate(raw.get("validation") or []):
        c, errs = _check(scenario, entry, ("calibration", "validation", i))
        issues += errs
        if c is not None:
            checks.append(c)
    if issues:
        raise ScenarioError(issues)
    return CalibrationSpec(
        policy=policy, parameters=tuple(params), targets=tuple(targets), checks=tuple(checks),
        replications=int(replications or raw.get("replications", 4)),
        check_replications=int(check_replications or raw.get("check_replications", 10)),
        method=str(raw.get("method", "nelder-mead")),
        max_evaluations=int(max_evaluations or raw.get("max_evaluations", 80)),
        tolerance=float(raw.get("tolerance", 0.002)), regularization=float(raw.get("regularization", 0.01)),
    )


def describe_spec(scenario: Scenario) -> str:
    """What ``inmail-sim validate`` says about a calibration block (raises :class:`ScenarioError` if bad)."""
    spec = calibration_spec(scenario)
    lines = [f"  calibration: fits {', '.join(spec.names)} on policy {spec.policy} "
             f"({spec.replications} replications per evaluation, at most {spec.max_evaluations} evaluations)"]
    lines += [f"    target {t.name}: {t.key} {t.describe()}" for t in spec.targets]
    lines += [f"    validation {c.name}: {c.metric} of {c.policy or 'the first non-baseline policy'}"
              + (f" in {c.scenario.name}" if c.scenario else "") for c in spec.checks]
    return "\n".join(lines)


# --------------------------------------------------------------------------- evaluating


Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: stage is ``fit``, ``check`` or ``validation``."""


class CalibrationRunError(RuntimeError):
    """Replications failed during calibration."""


def run_observations(scenario: Scenario, policy: str, indices: Sequence[int], executor: Executor,
                     label: str = "calibration") -> dict[str, np.ndarray]:
    """Observables of ``policy`` for each replication index: ``{key: values in index order}``."""
    pol = scenario.policies[policy]
    tasks = [Task(TaskKey(label, i), observe_task, (scenario.market, pol, scenario.run, scenario.root_seed, i))
             for i in indices]
    run = run_tasks(tasks, executor)
    if run.failures:
        raise CalibrationRunError(f"{len(run.failures)} replication(s) failed:\n{failure_report(run.failures)}")
    obs = [run.results[t.key].values for t in tasks]
    keys = list(obs[0])
    return {k: np.array([o.get(k, math.nan) for o in obs], dtype=np.float64) for k in keys}


def t_interval(values: np.ndarray) -> tuple[float, float, float]:
    """Mean and 95% Student-t interval of a sample (NaN interval for n < 2)."""
    v = np.asarray(values, dtype=np.float64)
    mean = float(v.mean()) if v.size else math.nan
    if v.size < 2:
        return mean, math.nan, math.nan
    hw = float(stats.t.ppf(0.5 + CONFIDENCE / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return mean, mean - hw, mean + hw


@dataclass
class Evaluation:
    """One objective evaluation: parameter values, target means (and standard errors), loss."""

    number: int
    theta: tuple[float, ...]
    means: dict[str, float]
    loss: float
    seconds: float
    ses: dict[str, float] = field(default_factory=dict)


class Objective:
    """The calibration objective on common random numbers, with a cache and an on-disk trace."""

    def __init__(self, scenario: Scenario, spec: CalibrationSpec, executor: Executor,
                 trace: Path | None = None, progress: Progress | None = None) -> None:
        self.scenario, self.spec, self.executor = scenario, spec, executor
        self.indices = list(range(spec.replications))
        self.evaluations: list[Evaluation] = []
        self._cache: dict[tuple[float, ...], Evaluation] = {}
        self.trace = trace
        self.progress = progress
        if trace is not None:
            header = ["evaluation", *spec.names, "loss", *[t.name for t in spec.targets], "seconds"]
            with trace.open("w", newline="", encoding="utf-8") as fh:
                csv.writer(fh).writerow(header)

    def theta(self, u: np.ndarray) -> tuple[float, ...]:
        """Parameter values from unit-cube coordinates (clipped; whole numbers where needed)."""
        return tuple(p.clip(p.low + float(np.clip(x, 0.0, 1.0)) * (p.high - p.low))
                     for p, x in zip(self.spec.parameters, u, strict=True))

    def unit(self, theta: Sequence[float]) -> np.ndarray:
        return np.array([(x - p.low) / (p.high - p.low) for p, x in zip(self.spec.parameters, theta, strict=True)])

    def loss_of(self, theta: Sequence[float], means: Mapping[str, float], ses: Mapping[str, float] | None = None,
                ) -> float:
        ses = ses or {}
        fit = sum(t.weight * t.residual(means[t.key], ses.get(t.key, 0.0)) ** 2 for t in self.spec.targets)
        ridge = sum(((x - p.start) / (p.high - p.low)) ** 2 for p, x in zip(self.spec.parameters, theta, strict=True))
        return float(fit + self.spec.regularization * ridge)

    def evaluate(self, theta: tuple[float, ...]) -> Evaluation:
        key = tuple(round(x, 12) for x in theta)
        if key in self._cache:
            return self._cache[key]
        t0 = time.monotonic()
        sc = apply_values(self.scenario, parameter_overrides(self.scenario, self.spec.parameters, theta))
        obs = run_observations(sc, self.spec.policy, self.indices, self.executor)
        means = {t.key: float(np.mean(obs[t.key])) for t in self.spec.targets}
        n = len(self.indices)
        ses = {t.key: float(np.std(obs[t.key], ddof=1) / math.sqrt(n)) if n > 1 else 0.0 for t in self.spec.targets}
        ev = Evaluation(len(self.evaluations), theta, means, self.loss_of(theta, means, ses),
                        time.monotonic() - t0, ses)
        self.evaluations.append(ev)
        self._cache[key] = ev
        self._write(ev)
        if self.progress is not None:
            self.progress("fit", len(self.evaluations), self.spec.max_evaluations)
        return ev

    def __call__(self, u: np.ndarray) -> float:
        return self.evaluate(self.theta(u)).loss

    def _write(self, ev: Evaluation) -> None:
        if self.trace is None:
            return
        row = [ev.number, *ev.theta, ev.loss, *[ev.means[t.key] for t in self.spec.targets], round(ev.seconds, 3)]
        with self.trace.open("a", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerow(row)

    @property
    def best(self) -> Evaluation | None:
        return min(self.evaluations, key=lambda e: e.loss) if self.evaluations else None


def minimize(objective: Objective) -> optimize.OptimizeResult:
    """Bounded Nelder-Mead (initial simplex 20% of each range) or Powell over the unit cube."""
    spec = objective.spec
    k = len(spec.parameters)
    u0 = np.clip(objective.unit(spec.start), 0.0, 1.0)
    bounds = [(0.0, 1.0)] * k
    if spec.method == "powell":
        return optimize.minimize(objective, u0, method="Powell", bounds=bounds,
                                 options={"maxfev": spec.max_evaluations, "xtol": spec.tolerance,
                                          "ftol": spec.tolerance})
    simplex = [u0]
    for j in range(k):
        step = 0.2 if u0[j] + 0.2 <= 1.0 else -0.2
        v = u0.copy()
        v[j] += step
        simplex.append(v)
    return optimize.minimize(objective, u0, method="Nelder-Mead", bounds=bounds,
                             options={"maxfev": spec.max_evaluations, "xatol": spec.tolerance,
                                      "fatol": spec.tolerance, "initial_simplex": np.array(simplex)})


# --------------------------------------------------------------------------- the whole calibration


def _round_sig(x: float, digits: int = 4) -> float:
    """``x`` to ``digits`` significant digits: fitted values are not known better than that."""
    return float(f"{x:.{digits}g}")


@dataclass
class CalibrationResult:
    """What ``inmail-sim calibrate`` reports; the DataFrames are the CSV files it writes."""

    scenario: Scenario
    spec: CalibrationSpec
    start: tuple[float, ...]
    fitted: tuple[float, ...]
    evaluations: list[Evaluation]
    status: str
    message: str
    parameters: pd.DataFrame
    targets: pd.DataFrame = field(default_factory=pd.DataFrame)
    validation: pd.DataFrame = field(default_factory=pd.DataFrame)
    calibrated: Scenario | None = None

    @property
    def overrides(self) -> dict[str, Any]:
        """The fitted values as ``{path: value}`` overrides (``--set`` paths)."""
        return parameter_overrides(self.scenario, self.spec.parameters, self.fitted)

    @property
    def trace(self) -> pd.DataFrame:
        rows = [{"evaluation": e.number, **dict(zip(self.spec.names, e.theta, strict=True)), "loss": e.loss,
                 **{t.name: e.means[t.key] for t in self.spec.targets}} for e in self.evaluations]
        return pd.DataFrame(rows)


def _parameter_frame(spec: CalibrationSpec, start: Sequence[float], fitted: Sequence[float]) -> pd.DataFrame:
    rows = []
    for p, s, f in zip(spec.parameters, start, fitted, strict=True):
        at_bound = "low" if math.isclose(f, p.low) else "high" if math.isclose(f, p.high) else ""
        rows.append({"parameter": p.name, "paths": "; ".join(f"{path} x{fac:g}" if fac != 1 else path
                                                            for path, fac in p.paths),
                     "low": p.low, "high": p.high, "start": s, "fitted": f, "at_bound": at_bound})
    return pd.DataFrame(rows)


def target_table(spec: CalibrationSpec, obs: Mapping[str, np.ndarray], at: str) -> pd.DataFrame:
    """Achieved vs target (mean and 95% CI over replications) for every target and diagnostic."""
    rows = []
    for t in spec.targets:
        mean, lo, hi = t_interval(obs[t.key])
        rows.append({"at": at, "quantity": t.name, "key": t.key, "target": t.describe(), "mean": mean,
                     "ci_low": lo, "ci_high": hi, "n": len(obs[t.key]), "met": t.met(mean),
                     "residual": t.residual(mean), "source": t.source})
    seen = {t.key for t in spec.targets}
    for key in DIAGNOSTICS:
        if key in seen or key not in obs:
            continue
        mean, lo, hi = t_interval(obs[key])
        rows.append({"at": at, "quantity": key, "key": key, "target": "", "mean": mean, "ci_low": lo,
                     "ci_high": hi, "n": len(obs[key]), "met": None, "residual": math.nan, "source": "diagnostic"})
    return pd.DataFrame(rows)


def _agrees(c: Check, lo: float, hi: float) -> str:
    """``yes`` if the CI lies inside the published figure, ``no`` if wholly outside, ``partly`` else."""
    if c.low is None and c.high is None:
        return ""
    a = -math.inf if c.low is None else c.low
    b = math.inf if c.high is None else c.high
    if a <= lo and hi <= b:
        return "yes"
    if hi < a or lo > b:
        return "no"
    return "partly"


def applicable_overrides(source: str | Path, overrides: Overrides) -> Overrides:
    """The ``--set``-style overrides that also load on scenario file ``source`` (same kind as given).

    A validation figure runs on its own scenario file; the calibrated scenario's size overrides
    (member count, horizon, a recruiter group both files have) should shrink it too, while an
    override naming something that file does not have is left out.
    """
    def loads(item: Overrides) -> bool:
        try:
            load_scenario(source, item)
        except ScenarioError:
            return False
        return True

    if isinstance(overrides, Mapping):
        return {k: v for k, v in overrides.items() if loads({k: v})}
    return [o for o in overrides if loads([o])]


def run_check(scenario: Scenario, c: Check, overrides: Mapping[str, Any], replications: int,
              executor: Executor, at: str, check_overrides: Overrides = ()) -> dict[str, Any]:
    """One validation comparison at the given market values: the policy vs its scenario's baseline.

    ``check_overrides``: applied to the check's own scenario file where they apply (see
    :func:`applicable_overrides`) - the size overrides the calibrated scenario was loaded with.
    """
    base = scenario if c.scenario is None else load_scenario(c.scenario, applicable_overrides(c.scenario,
                                                                                             check_overrides))
    sc = apply_values(base, overrides)
    policy = c.policy or next(p for p in sc.policy_names if p != sc.baseline)
    if policy not in sc.policies:
        raise ScenarioError([scenario.issue(("calibration", "validation"), f"{c.name}: scenario has no policy "
                                            f"{policy!r}; its policies: {', '.join(sc.policies)}")])
    sc = dataclasses.replace(sc, policies={k: v for k, v in sc.policies.items() if k in (sc.baseline, policy)})
    res = run_experiment(sc, replications=replications, executor=executor, timeseries=False)
    comp = compare(res.replications, sc.baseline, [c.metric])
    row = comp[comp["policy"] == policy].iloc[0]
    est, lo, hi = ((row["rel_change"], row["rel_ci_low"], row["rel_ci_high"]) if c.relative
                   else (row["diff"], row["ci_low"], row["ci_high"]))
    return {"check": c.name, "at": at, "scenario": sc.name, "baseline": sc.baseline, "policy": policy,
            "metric": c.metric, "measure": "relative change" if c.relative else "difference",
            "baseline_mean": row["baseline_mean"], "policy_mean": row["policy_mean"],
            "estimate": est, "ci_low": lo, "ci_high": hi, "n": int(row["n"]),
            "published": ("" if c.low is None and c.high is None else
                          f">= {c.low:g}" if c.high is None else f"<= {c.high:g}" if c.low is None
                          else f"{c.low:g} .. {c.high:g}"),
            "agrees": _agrees(c, lo, hi), "source": c.source}


def calibrate(scenario: Scenario, executor: Executor | None = None, *, workers: int = 1,
              spec: CalibrationSpec | None = None, out: str | Path | None = None,
              progress: Progress | None = None, validation: bool = True,
              check_overrides: Overrides = ()) -> CalibrationResult:
    """Fit the spec's free parameters, check the fit on fresh replications, and run the validation figures.

    ``executor``: any ``concurrent.futures.Executor``; without one, ``workers`` local processes (1:
    in this process).  ``out``: a folder for ``calibration_trace.csv``, written one evaluation at a
    time.  ``check_overrides``: the overrides ``scenario`` was loaded with; those that also apply to
    a validation figure's own scenario file (its size, say) are applied there too.  On Ctrl-C the
    result so far is returned with ``status == "interrupted"`` (best evaluation as the fitted
    values; no check, no validation).
    """
    if executor is None:
        with open_executor(workers) as ex:
            return calibrate(scenario, ex, spec=spec, out=out, progress=progress, validation=validation,
                             check_overrides=check_overrides)
    spec = spec or calibration_spec(scenario)
    trace = None
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        trace = Path(out) / "calibration_trace.csv"
    obj = Objective(scenario, spec, executor, trace, progress)
    start = tuple(p.clip(p.start) for p in spec.parameters)
    try:
        obj.evaluate(start)
        res = minimize(obj)
        status = "converged" if res.success else "stopped"
        message = str(res.message)
    except KeyboardInterrupt:
        best = obj.best
        fitted = best.theta if best is not None else start
        return CalibrationResult(scenario, spec, start, fitted, obj.evaluations, "interrupted",
                                 f"interrupted after {len(obj.evaluations)} evaluations",
                                 _parameter_frame(spec, start, fitted))
    best = obj.best
    assert best is not None
    fitted = tuple(p.clip(_round_sig(x)) for p, x in zip(spec.parameters, best.theta, strict=True))
    result = CalibrationResult(scenario, spec, start, fitted, obj.evaluations, status,
                               f"{message} ({len(obj.evaluations)} evaluations, loss {best.loss:.4g})",
                               _parameter_frame(spec, start, fitted))
    calibrated = apply_values(scenario, result.overrides)
    result.calibrated = calibrated
    first = spec.replications
    fresh = list(range(first, first + spec.check_replications))
    start_sc = apply_values(scenario, parameter_overrides(scenario, spec.parameters, start))
    tables = []
    for n, (at, sc) in enumerate((("start", start_sc), ("fitted", calibrated))):
        tables.append(target_table(spec, run_observations(sc, spec.policy, fresh, executor, f"check-{at}"), at))
        if progress is not None:
            progress("check", n + 1, 2)
    result.targets = pd.concat(tables, ignore_index=True)
    if validation and spec.checks:
        rows = []
        start_over = parameter_overrides(scenario, spec.parameters, start)
        total = 2 * len(spec.checks)
        for c in spec.checks:
            for at, over in (("start", start_over), ("fitted", result.overrides)):
                rows.append(run_check(scenario, c, over, spec.check_replications, executor, at, check_overrides))
                if progress is not None:
                    progress("validation", len(rows), total)
        result.validation = pd.DataFrame(rows)
    return result


# --------------------------------------------------------------------------- output


def calibrated_mapping(result: CalibrationResult, extends: str) -> dict[str, Any]:
    """A scenario mapping that ``extends`` the input file and sets the fitted values.

    A fitted field inside a list (a segment, a recruiter group) brings the whole list along,
    because ``extends`` replaces lists rather than merging them.
    """
    sc = result.calibrated or apply_values(result.scenario, result.overrides)
    data = sc.resolved
    child: dict[str, Any] = {"extends": extends, "name": f"{result.scenario.name}_calibrated",
                             "description": f"{result.scenario.name} with the market fitted by inmail-sim calibrate"}
    for path in result.overrides:
        segs = path.split(".")
        cur: Any = data
        prefix: list[str] = []
        for seg in segs:
            prefix.append(seg)
            cur = cur[seg]
            if isinstance(cur, list):
                break
        node = child
        for seg in prefix[:-1]:
            node = node.setdefault(seg, {})
        node[prefix[-1]] = cur
    child["calibration"] = None  # the block's relative paths belong to the input file
    return child


def _fmt(x: Any) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def format_calibration(result: CalibrationResult) -> str:
    """The summary ``inmail-sim calibrate`` prints: parameters, targets, validation."""
    lines = [f"calibration of {result.scenario.name} (policy {result.spec.policy}): {result.status} - "
             f"{result.message}", "", "parameters:"]
    for r in result.parameters.itertuples(index=False):
        flag = f"  (at the {r.at_bound} end of the range)" if r.at_bound else ""
        lines.append(f"  {r.parameter:<38} {_fmt(r.start):>9} -> {_fmt(r.fitted):<9} "
                     f"[{_fmt(r.low)}, {_fmt(r.high)}]{flag}")
    if not result.targets.empty:
        n = int(result.targets["n"].iloc[0])
        lines += ["", f"achieved vs target (mean [95% CI] over {n} fresh replications):"]
        lines.append(f"  {'quantity':<40} {'target':<12} {'start':<24} {'fitted':<24} met")
        t = result.targets
        for q in dict.fromkeys(t["quantity"]):
            rows = {r.at: r for r in t[t["quantity"] == q].itertuples(index=False)}
            s, f = rows.get("start"), rows.get("fitted")

            def cell(r: Any) -> str:
                if r is None:
                    return "-"
                f = ",.0f" if abs(r.mean) >= 100 else ".4f"
                return f"{r.mean:{f}} [{r.ci_low:{f}}, {r.ci_high:{f}}]"

            met = "" if f is None or f.met is None else ("yes" if f.met else "NO")
            lines.append(f"  {q:<40} {(f.target if f is not None else ''):<12} {cell(s):<24} {cell(f):<24} {met}")
    if not result.validation.empty:
        lines += ["", "validation (figures not used in fitting; estimate [95% CI]):"]
        for r in result.validation.itertuples(index=False):
            unit = "relative" if r.measure == "relative change" else "diff"
            lines.append(f"  {r.check:<22} {r.at:<7} {r.policy} vs {r.baseline}, {r.metric} {unit}: "
                         f"{r.estimate:+.4f} [{r.ci_low:+.4f}, {r.ci_high:+.4f}]"
                         + (f"  published {r.published}: {r.agrees}" if r.published else ""))
    return "\n".join(lines)


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _atomic_csv(path: Path, frame: pd.DataFrame) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    frame.to_csv(tmp, index=False)
    os.replace(tmp, path)


def write_calibration(result: CalibrationResult, out: str | Path, *, argv: Sequence[str] | None = None,
                      scenario_out: str | Path | None = None) -> list[Path]:
    """Write the calibration folder; return the files written (the manifest last).

    ``calibration_parameters.csv``, ``calibration_targets.csv``, ``calibration_validation.csv``,
    ``calibrated.yaml`` (or ``scenario_out``: a scenario extending the input with the fitted values,
    ready for ``inmail-sim run``) and ``calibration.json``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, frame in (("calibration_parameters.csv", result.parameters), ("calibration_targets.csv", result.targets),
                        ("calibration_validation.csv", result.validation)):
        if not frame.empty:
            _atomic_csv(out / name, frame)
            written.append(out / name)
    if result.status != "interrupted" and result.scenario.source:
        target = Path(scenario_out) if scenario_out else out / "calibrated.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        rel = os.path.relpath(Path(result.scenario.source).resolve(), target.parent.resolve())
        header = (f"generated by inmail-sim calibrate {result.scenario.source} on {dt.date.today().isoformat()}\n"
                  f"{result.status}: {result.message}\n"
                  "run it with: inmail-sim run " + str(target))
        _atomic_text(target, scenario_yaml(calibrated_mapping(result, Path(rel).as_posix()), header))
        written.append(target)
    manifest = {
        "scenario": result.scenario.source, "policy": result.spec.policy, "status": result.status,
        "message": result.message, "method": result.spec.method, "replications": result.spec.replications,
        "check_replications": result.spec.check_replications, "root_seed": result.scenario.root_seed,
        "fit_replication_indices": list(range(result.spec.replications)),
        "check_replication_indices": list(range(result.spec.replications,
                                                result.spec.replications + result.spec.check_replications)),
        "start": dict(zip(result.spec.names, result.start, strict=True)),
        "fitted": dict(zip(result.spec.names, result.fitted, strict=True)),
        "overrides": result.overrides, "evaluations": len(result.evaluations),
        "argv": list(argv) if argv is not None else None,
    }
    _atomic_text(out / "calibration.json", json.dumps(manifest, indent=2, default=str) + "\n")
    written.append(out / "calibration.json")
    return written


def overrides_text(overrides: Mapping[str, Any]) -> list[str]:
    """The fitted values as ``--set`` arguments (e.g. to apply them to another scenario)."""
    def show(v: Any) -> str:
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k}: {show(x)}" for k, x in v.items()) + "}"
        return f"{v:.6g}" if isinstance(v, float) else str(v)

    return [f"{k}={show(v)}" for k, v in overrides.items()]
