"""The ``calibration:`` block of a scenario, read and checked: free parameters, targets, validation figures.

Free parameters are market fields by dotted path (the paths of ``--set``), each with a range;
``paths: {a: 1, b: 2}`` ties several fields to one value (field ``b`` gets twice the value).
Targets are observables of one replication (:mod:`simulator.experiments.observation`) with a point
``value``, a band ``low``..``high`` or a one-sided bound - by default the figures of POLICY_FACTS
section 5 (:data:`DEFAULT_TARGETS`).  A target may also be a policy comparison (``policy`` vs
``baseline``, ``relative``), observed under another file's policies and run settings
(``scenario:``) with this scenario's market (:func:`setting_name`).  Validation figures
(:class:`Check`) are policy comparisons the fitted market predicts, not used in fitting.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from simulator.core.config import SEAT_TYPES, Dist
from simulator.core.metrics import (
    BREAKDOWN_KEYS,
    BREAKDOWN_METRICS,
    CURRENT_METRICS,
    METRIC_NAMES,
    PERSONALIZATION_BANDS,
    canonical_metric,
)
from simulator.experiments.budget import BYTES_PER_OBSERVATION, Limits, Workload, admit
from simulator.experiments.observation import (
    SEAT_SHARES,
    SEGMENT_EXTREMES,
    SEGMENT_KEY,
    SEGMENT_METRICS,
)
from simulator.experiments.published_figures import BOUND_Z, DEFAULT_TARGETS, Check, Target, setting_name
from simulator.scenario import Issue, PathT, Scenario, ScenarioError, load_scenario
from simulator.scenario.confinement import confinement_problem, file_kind_problem, outside_allowed

__all__ = ["BOUND_Z", "DEFAULT_TARGETS", "CalibrationSpec", "Check", "FreeParameter", "PathError", "Target",
           "apply_values", "calibration_spec", "calibration_workload", "config_value", "describe_spec",
           "parameter_overrides", "setting_name", "target_issues"]

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


def target_issues(scenario: Scenario, t: Target, loc: PathT) -> list[Issue]:
    """Problems with a target's metric / by / label in this scenario."""
    m = scenario.market
    if t.by is None:
        if canonical_metric(t.metric) not in [*METRIC_NAMES, *SEAT_SHARES]:
            allowed = [*CURRENT_METRICS, *SEAT_SHARES]
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


def _other_scenario(scenario: Scenario, raw: Any, loc: PathT) -> tuple[Scenario | None, list[Issue]]:
    """The scenario file a figure names (``scenario:``, relative to this file); ``None`` when none is named."""
    if raw is None:
        return None, []
    base = Path(scenario.source).parent if scenario.source else Path.cwd()
    path = (base / raw).resolve()
    confined = None if outside_allowed(None) else confinement_problem(str(raw), path, base.resolve())
    problem = confined or file_kind_problem(path)  # the rule of extends: (no file outside the folder tree)
    if problem is not None:
        return None, [scenario.issue(loc, problem, raw)]
    try:
        return load_scenario(path), []
    except ScenarioError as exc:
        return None, [scenario.issue(loc, f"cannot be loaded: {exc}", raw)]


def _policy_issues(scenario: Scenario, where: Scenario, names: Mapping[str, Any], loc: PathT) -> list[Issue]:
    """Each named policy (``policy``, ``baseline``) must be one of ``where``'s."""
    return [scenario.issue((*loc, field), f"must name one of the policies of {where.name}: "
                           + ", ".join(where.policies), value)
            for field, value in names.items() if value is not None and value not in where.policies]


def _check(scenario: Scenario, raw: Mapping[str, Any], loc: PathT) -> tuple[Check | None, list[Issue]]:
    other, issues = _other_scenario(scenario, raw.get("scenario"), (*loc, "scenario"))
    if issues:
        return None, issues
    where = other or scenario
    metric = canonical_metric(raw.get("metric", "response_rate"))
    if metric not in METRIC_NAMES:
        return None, [scenario.issue((*loc, "metric"), "unknown metric; allowed: " + ", ".join(CURRENT_METRICS),
                                     metric)]
    issues = _policy_issues(scenario, where, {"policy": raw.get("policy"), "baseline": raw.get("baseline")}, loc)
    if issues:
        return None, issues
    baseline = raw.get("baseline") or where.baseline
    policy = raw.get("policy") or next((p for p in where.policy_names if p != baseline), baseline)
    path = Path(where.source).resolve() if other is not None and where.source else None
    return Check(str(raw["name"]), path, policy, metric, bool(raw.get("relative", True)),
                 raw.get("low"), raw.get("high"), str(raw.get("source", "")), baseline), []


def _target(scenario: Scenario, entry: Mapping[str, Any], loc: PathT, comparisons: bool) -> tuple[Target | None,
                                                                                                 list[Issue]]:
    """One ``targets:`` entry; a comparison (``baseline:``) only where ``comparisons`` are allowed."""
    fields: dict[str, Any] = {k: entry.get(k) for k in ("metric", "by", "label", "value", "low", "high", "scale")}
    other, issues = _other_scenario(scenario, entry.get("scenario"), (*loc, "scenario"))
    where = other or scenario
    issues += _policy_issues(scenario, where, {"policy": entry.get("policy"), "baseline": entry.get("baseline")},
                             loc)
    if entry.get("baseline") is not None and not comparisons:
        issues.append(scenario.issue((*loc, "baseline"), "a comparison target needs --method bayes (the point "
                                     "fit observes one policy); allowed here: a target without baseline:",
                                     entry.get("baseline")))
    if entry.get("baseline") is not None and entry.get("policy") is None:
        issues.append(scenario.issue((*loc, "policy"), "a comparison target names the policy compared with its "
                                     "baseline; allowed: " + ", ".join(where.policies)))
    if other is not None and entry.get("policy") is None:
        issues.append(scenario.issue((*loc, "policy"), f"a target on {where.name} names one of its policies: "
                                     + ", ".join(where.policies)))
    t = Target(name=str(entry.get("name") or entry.get("label") or entry["metric"]),
               weight=float(entry.get("weight", 1.0)), source=str(entry.get("source", "")),
               policy=entry.get("policy"), baseline=entry.get("baseline"),
               relative=bool(entry.get("relative", True)),
               scenario=Path(where.source).resolve() if other is not None and where.source else None, **fields)
    issues += target_issues(scenario, t, loc)
    return (None if issues else t), issues


def calibration_spec(scenario: Scenario, *, replications: int | None = None, check_replications: int | None = None,
                     max_evaluations: int | None = None, require_parameters: bool = True) -> CalibrationSpec:
    """Read and check the scenario's ``calibration:`` block; raise :class:`ScenarioError` listing every problem.

    ``require_parameters=False``: the block may have no ``parameters`` (Bayesian calibration takes its
    parameters from the ``uncertain:`` block)."""
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
    if require_parameters and not raw.get("parameters"):
        issues.append(scenario.issue(("calibration", "parameters"), "the point fit needs free parameters: add "
                                     "calibration.parameters (or use --method bayes with an uncertain: block)"))
    for i, entry in enumerate(raw.get("parameters") or []):
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
        t, errs = _target(scenario, entry, ("calibration", "targets", i), comparisons=not require_parameters)
        issues += errs
        if t is not None:
            targets.append(t)
    figures = [t.name for t in targets] + [str(c.get("name")) for c in raw.get("validation") or []]
    for dup in sorted({n for n in figures if figures.count(n) > 1}):
        issues.append(scenario.issue(("calibration",), f"two targets or validation figures are named {dup!r}; "
                                     "give each a distinct name"))
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


def calibration_workload(scenario: Scenario, spec: CalibrationSpec, validation: bool = True) -> Workload:
    """The fit (evaluations x replications; an optimizer may overshoot ``max_evaluations`` by a simplex), the
    check of the fit at the start and fitted values, and each validation figure's two policies twice."""
    evaluations = spec.max_evaluations + len(spec.parameters) + 2
    checks = len(spec.checks) if validation else 0
    tasks = evaluations * spec.replications + 2 * spec.check_replications + 4 * checks * spec.check_replications
    breakdown = (f"{evaluations:,} evaluations x {spec.replications:,} replications + 2 checks x "
                 f"{spec.check_replications:,} replications + {checks} validation figures x 4 x "
                 f"{spec.check_replications:,} replications")
    kept = 2 * max(spec.replications, spec.check_replications) * BYTES_PER_OBSERVATION
    return Workload("calibrate", scenario, tasks, breakdown, "a smaller calibration.max_evaluations "
                    "(--max-evaluations), fewer --replications or --check-replications", kept)


def describe_spec(scenario: Scenario, limits: Limits | None = None) -> str:
    """What ``inmail-sim validate`` says about a calibration block (raises :class:`ScenarioError` if bad, or
    if its work is past ``limits``).  A block without ``parameters`` is the Bayesian calibration's
    (priors from the ``uncertain:`` block; comparison targets allowed)."""
    raw = scenario.resolved.get("calibration")
    point = not (isinstance(raw, dict) and not raw.get("parameters") and scenario.uncertain)
    spec = calibration_spec(scenario, require_parameters=point)
    if point:
        admit(calibration_workload(scenario, spec), limits)
        lines = [f"  calibration: fits {', '.join(spec.names)} on policy {spec.policy} "
                 f"({spec.replications} replications per evaluation, at most {spec.max_evaluations} evaluations)"]
    else:
        lines = [f"  calibration (Bayesian, `inmail-sim calibrate` / `validate-model`): the uncertain: block "
                 f"on policy {spec.policy}"]
    lines += [f"    target {t.name}: {t.key}"
              + (f" of {t.policy} vs {t.baseline} ({'relative' if t.relative else 'difference'})"
                 if t.baseline else f" under {t.policy}" if t.policy else "") + f" {t.describe()}"
              for t in spec.targets]
    lines += [f"    validation {c.name}: {c.metric} of {c.policy} vs {c.baseline}"
              + (f" in {c.scenario.name}" if c.scenario else "") for c in spec.checks]
    return "\n".join(lines)
