"""Global sensitivity: which assumptions drive the answer (Sobol indices and a tornado chart).

Outputs are named ``diff.METRIC`` (the paired difference ``policy - baseline``), ``POLICY.METRIC``
or a bare ``METRIC`` (of the compared policy); the defaults are the response-rate difference and
the compared policy's net credit burn.  Inputs are dotted parameter paths with ranges (the
``sensitivity:`` block, or the ranges of the ``sweep:`` block), sampled uniformly (log-uniformly
with ``log: true``).

The estimators are :mod:`simulator.experiments.sobol` and :mod:`simulator.experiments.tornado`; the files
are written by :func:`simulator.io.study_files.write_sensitivity`.

* **Sobol indices** - first-order ``S1`` (the share of the output variance explained by the input
  alone) and total ``ST`` (including its interactions), with the Saltelli (2010) estimators of
  :func:`scipy.stats.sobol_indices` on a scrambled Sobol' design A, B, AB.  Cost: ``N (d + 2)``
  evaluations for ``N`` base samples and ``d`` inputs; each evaluation runs every needed policy
  ``replications`` times.  The CIs are BCa bootstrap intervals over the ``N`` rows, as in
  ``SobolResult.bootstrap``, but computed with :func:`scipy.stats.bootstrap` on a generator derived
  from the root seed, so they are reproducible.  (scipy is used rather than SALib: it is already a
  dependency, takes precomputed model outputs, and gives the same Saltelli estimators.)
  When an output's indices are not yet trustworthy (first-order above total or summing above 1
  beyond their CIs, or CIs wider than +-0.05), :attr:`SensitivityResults.warnings` says so and
  suggests the ``n`` that would do (:func:`simulator.experiments.sobol.sample_warnings`).
* **Tornado** - one at a time around the scenario as written: each input at its ``low`` and
  ``high`` with the others untouched (``2 d + 1`` evaluations), sorted by swing.

Evaluations use common random numbers (replication ``i`` of every point uses
``replication_seed(root, i)``), so an output is a deterministic function of the inputs for a given
root seed: the indices describe the sensitivity of the ``replications``-replication mean, and
sampling noise does not masquerade as an input effect.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from simulator.core.metrics import CURRENT_METRICS, METRIC_NAMES, canonical_metric
from simulator.experiments.budget import (
    BYTES_PER_POINT,
    BYTES_PER_STUDY_TASK,
    Limits,
    Workload,
    admit,
    capped_workers,
)
from simulator.experiments.design import (
    PURPOSE_BOOTSTRAP,
    PURPOSE_SENSITIVITY,
    Parameter,
    Point,
    build_points,
    design_rng,
    parse_parameter,
)
from simulator.experiments.runner import Progress, TaskStore, open_executor
from simulator.experiments.sobol import TARGET_HALF_WIDTH, ab_matrices, saltelli_design, sobol_analyse, sobol_table
from simulator.experiments.sweep import Records, check_points_memory, run_points
from simulator.experiments.tornado import tornado_analyse, tornado_points, tornado_table
from simulator.scenario import Issue, PathT, Scenario, ScenarioError, with_changes

__all__ = [
    "DEFAULT_OUTPUTS", "TARGET_HALF_WIDTH", "Output", "SensitivityPlan", "SensitivityResults", "SensitivitySpec",
    "check_sensitivity", "current_value", "evaluation_design", "needed_policies", "parse_output", "plan_sensitivity",
    "run_sensitivity", "sensitivity_spec", "sensitivity_workload", "sobol_analyse", "sobol_table", "tornado_analyse",
    "tornado_table",
]

DEFAULT_OUTPUTS: tuple[str, ...] = ("diff.response_rate", "net_credit_burn")


# --------------------------------------------------------------------------- the spec


@dataclass(frozen=True)
class Output:
    """An analysed output: ``metric`` of ``policy``, minus the baseline's when ``diff``."""

    name: str
    metric: str
    policy: str
    diff: bool


@dataclass(frozen=True)
class SensitivitySpec:
    """The validated ``sensitivity:`` block (parameters possibly taken from ``sweep:``)."""

    parameters: tuple[Parameter, ...]
    block: str
    outputs: tuple[Output, ...]
    policy: str
    n: int
    replications: int
    bootstrap: int
    confidence: float
    seed: int
    sobol: bool
    tornado: bool

    @property
    def paths(self) -> list[str]:
        return [p.path for p in self.parameters]

    @property
    def evaluations(self) -> int:
        """Scenario evaluations: ``N (d + 2)`` for Sobol plus ``2 d + 1`` for the tornado."""
        d = len(self.parameters)
        return (self.n * (d + 2) if self.sobol else 0) + (2 * d + 1 if self.tornado else 0)


def parse_output(text: str, scenario: Scenario, policy: str) -> Output | str:
    """An :class:`Output` from ``diff.METRIC``, ``POLICY.METRIC`` or ``METRIC``; else an error message."""
    head, _, metric = text.rpartition(".")
    metric = canonical_metric(metric)
    if metric not in METRIC_NAMES:
        return f"unknown metric {metric!r}; allowed: " + ", ".join(CURRENT_METRICS)
    if head == "diff":
        return Output(text, metric, policy, True)
    if head == "":
        return Output(text, metric, policy, False)
    if head not in scenario.policies:
        return (f"unknown policy {head!r}; write diff.METRIC (policy - baseline), POLICY.METRIC or METRIC; "
                "policies: " + ", ".join(scenario.policies))
    return Output(text, metric, head, False)


def _sweep_ranges(scenario: Scenario) -> dict[str, Any]:
    """The sweep block's parameters as ranges (a list of numbers becomes [min, max])."""
    out: dict[str, Any] = {}
    for path, entry in ((scenario.resolved.get("sweep") or {}).get("parameters") or {}).items():
        if isinstance(entry, dict):
            out[path] = {k: v for k, v in entry.items() if k != "num"}
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in entry) and len(set(entry)) > 1:
            out[path] = {"low": min(entry), "high": max(entry),
                         "integer": all(isinstance(v, int) for v in entry)}
    return out


def sensitivity_spec(scenario: Scenario, *, n: int | None = None, replications: int | None = None,
                     sobol: bool | None = None, tornado: bool | None = None) -> SensitivitySpec:
    """Read and check the ``sensitivity:`` block; raise :class:`ScenarioError` listing every problem."""
    raw = scenario.resolved.get("sensitivity") or {}
    issues: list[Issue] = []
    block = "sensitivity" if raw.get("parameters") else "sweep"
    entries = raw.get("parameters") or _sweep_ranges(scenario)
    if not entries:
        raise ScenarioError([scenario.issue(("sensitivity",), "no parameters to analyse: give "
                                            "sensitivity.parameters {path: {low, high}} or a sweep block with ranges")])
    params: list[Parameter] = []
    for path, entry in entries.items():
        p, errs = parse_parameter(scenario, block, path, entry)
        issues += errs
        if p is not None:
            params.append(p)
    others = [p for p in scenario.policy_names if p != scenario.baseline]
    policy = raw.get("policy") or (others[0] if others else scenario.baseline)
    if policy not in scenario.policies:
        issues.append(scenario.issue(("sensitivity", "policy"), "must name one of the policies: "
                                     + ", ".join(scenario.policies), policy))
    outputs: list[Output] = []
    for k, text in enumerate(raw.get("outputs") or DEFAULT_OUTPUTS):
        o = parse_output(text, scenario, policy)
        if isinstance(o, str):
            issues.append(scenario.issue(("sensitivity", "outputs", k), o, text))
        elif o.diff and policy == scenario.baseline:
            issues.append(scenario.issue(("sensitivity", "policy"), "a diff.* output needs a policy other than "
                                         f"the baseline {scenario.baseline!r}", policy))
        else:
            outputs.append(o)
    n_ = int(n or raw.get("n", 32))
    if n_ & (n_ - 1):
        where: PathT = ("sensitivity", "n")
        issues.append(scenario.issue(where, "the Sobol' design needs a power of 2 (e.g. 16, 32, 64)", n_))
    if issues:
        raise ScenarioError(issues)
    return SensitivitySpec(
        parameters=tuple(params), block=block, outputs=tuple(outputs), policy=policy, n=n_,
        replications=int(replications or raw.get("replications", 2)), bootstrap=int(raw.get("bootstrap", 999)),
        confidence=float(raw.get("confidence", 0.95)),
        seed=int(raw["seed"]) if raw.get("seed") is not None else scenario.root_seed,
        sobol=bool(raw.get("sobol", True)) if sobol is None else sobol,
        tornado=bool(raw.get("tornado", True)) if tornado is None else tornado,
    )


# --------------------------------------------------------------------------- the simulator


def current_value(scenario: Scenario, path: str) -> Any:
    """The value the scenario uses at ``path`` (as written in the file, else the default), or None."""
    cur: Any = scenario.resolved
    for seg in path.split("."):
        if isinstance(cur, dict):
            cur = cur.get(seg)
        elif isinstance(cur, list):
            named = [x for x in cur if isinstance(x, dict) and x.get("name") == seg]
            index = int(seg) if seg.lstrip("-").isdigit() and -len(cur) <= int(seg) < len(cur) else None
            cur = named[0] if named else (cur[index] if index is not None else None)
        else:
            cur = None
        if cur is None:
            return _config_value(scenario, path)
    return cur


def _config_value(scenario: Scenario, path: str) -> Any:
    """The value at ``path`` in the built config objects (defaults included), or None."""
    segs = path.split(".")
    cur: Any
    if segs[0] == "market":
        cur, rest = scenario.market, segs[1:]
    elif segs[0] == "policies" and len(segs) > 2 and segs[1] in scenario.policies:
        pol = scenario.policies[segs[1]]
        cur, rest = (pol.phase, segs[2:]) if segs[2] in ("refund", "allotments", "accrual", "pooling") \
            else (pol, segs[2:])
    elif segs[0] == "horizon_days":
        return scenario.run.horizon_days
    else:
        return None
    for seg in rest:
        if isinstance(cur, tuple):
            cur = next((x for x in cur if getattr(x, "name", None) == seg), None)
        else:
            cur = getattr(cur, seg, None)
        if cur is None:
            return None
    return cur if isinstance(cur, (int, float, str, bool)) else str(cur)


@dataclass
class SensitivityResults:
    """Sobol indices, the tornado and every evaluation behind them."""

    scenario: Scenario
    spec: SensitivitySpec
    samples: pd.DataFrame
    indices: pd.DataFrame
    tornado: pd.DataFrame
    extra: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def output_names(self) -> list[str]:
        return [o.name for o in self.spec.outputs]

    @property
    def warnings(self) -> list[str]:
        """Per output whose Sobol indices are not yet trustworthy, why and the ``n`` that would do."""
        if self.indices.empty or "warning" not in self.indices.columns:
            return []
        return [w for w in dict.fromkeys(self.indices["warning"]) if w]

    def text(self) -> str:
        """A short printout: indices and swings, largest first."""
        sp = self.spec
        lines = [f"sensitivity of {self.scenario.name}: {len(sp.parameters)} inputs, {sp.evaluations} evaluations "
                 f"x {sp.replications} replications; policy {sp.policy} vs {self.scenario.baseline}"]
        lines += [f"WARNING: {w}" for w in self.warnings]
        for out in self.output_names:
            lines.append(f"\n{out}")
            if not self.indices.empty:
                ind = self.indices[self.indices["output"] == out].sort_values("ST", ascending=False)
                lines.append(f"  {'input':<44} {'S1 [95% CI]':>24} {'ST [95% CI]':>24}")
                for r in ind.to_dict("records"):
                    lines.append(f"  {_cut(r['parameter'], 44):<44} {_ci(r['S1'], r['S1_ci_low'], r['S1_ci_high']):>24}"
                                 f" {_ci(r['ST'], r['ST_ci_low'], r['ST_ci_high']):>24}")
            if not self.tornado.empty:
                tor = self.tornado[self.tornado["output"] == out]
                lines.append(f"  tornado (base {tor['output_base'].iloc[0]:.4g}): swing low -> high")
                for r in tor.to_dict("records"):
                    lines.append(f"  {_cut(r['parameter'], 44):<44} {_short(r['low'])} -> {_short(r['high'])}: "
                                 f"{r['swing']:+.4g}")
        return "\n".join(lines)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else "..." + text[-(width - 3):]


def _short(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _ci(v: float, lo: float, hi: float) -> str:
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return f"{v:.3f}"
    return f"{v:.3f} [{lo:.3f}, {hi:.3f}]"


def needed_policies(spec: SensitivitySpec, scenario: Scenario) -> list[str]:
    """The policies the outputs need (the baseline for differences), baseline first."""
    want = {o.policy for o in spec.outputs} | ({scenario.baseline} if any(o.diff for o in spec.outputs) else set())
    return [p for p in scenario.policy_names if p in want]


def _output_values(records: Records, point: int, spec: SensitivitySpec, baseline: str) -> np.ndarray:
    """``(s, r)``: each output in each replication at one point."""
    out = np.empty((len(spec.outputs), spec.replications))
    for k, o in enumerate(spec.outputs):
        for i in range(spec.replications):
            v = records[(point, o.policy, i)][o.metric]
            out[k, i] = v - records[(point, baseline, i)][o.metric] if o.diff else v
    return out


def evaluation_design(spec: SensitivitySpec) -> tuple[list[tuple[str, int]], list[dict[str, Any]]]:
    """Every evaluation: its (design, row) label - ``A``, ``B``, ``AB<i>`` (Sobol), ``tornado`` - and values."""
    d = len(spec.parameters)
    labels: list[tuple[str, int]] = []
    values: list[dict[str, Any]] = []
    if spec.sobol:
        A_u, B_u = saltelli_design(d, spec.n, design_rng(spec.seed, PURPOSE_SENSITIVITY))
        AB_u = ab_matrices(A_u, B_u)
        for label, mat in [("A", A_u), ("B", B_u)] + [(f"AB{i}", AB_u[i]) for i in range(d)]:
            cols = [p.scale(mat[:, j]) for j, p in enumerate(spec.parameters)]
            for row, vals in enumerate(zip(*cols, strict=True)):
                labels.append((label, row))
                values.append(dict(zip(spec.paths, vals, strict=True)))
    if spec.tornado:
        for row, pt in enumerate(tornado_points(spec.parameters)):
            labels.append(("tornado", row))
            values.append(pt)
    return labels, values


SensitivityPlan = tuple[SensitivitySpec, list[tuple[str, int]], list[Point]]
"""The checked spec, each evaluation's (design, row) label, and the evaluations as sweep points."""


def sensitivity_workload(scenario: Scenario, spec: SensitivitySpec) -> Workload:
    """The analysis' tasks (``evaluations x needed policies x replications``) and memory (the evaluations as
    points, the bootstrap's resampled rows), counted from the spec alone."""
    bootstrap = spec.bootstrap * spec.n * 16 if spec.sobol else 0  # resample indices and the statistic's rows
    return Workload.of_counts(
        "sensitivity", scenario, [(spec.evaluations, "evaluations"),
                                  (len(needed_policies(spec, scenario)), "policies"),
                                  (spec.replications, "replications")],
        "a smaller sensitivity.n (--samples), fewer parameters, or fewer --replications",
        bytes_per_task=BYTES_PER_STUDY_TASK, design_bytes=spec.evaluations * BYTES_PER_POINT + bootstrap)


def plan_sensitivity(scenario: Scenario, *, n: int | None = None, replications: int | None = None,
                     sobol: bool | None = None, tornado: bool | None = None,
                     limits: Limits | None = None) -> SensitivityPlan:
    """Check the spec and its size (against ``limits``, before anything is built), then build and validate
    every evaluation; raises :class:`ScenarioError`."""
    spec = sensitivity_spec(scenario, n=n, replications=replications, sobol=sobol, tornado=tornado)
    admit(sensitivity_workload(scenario, spec), limits)
    labels, values = evaluation_design(spec)
    return spec, labels, build_points(scenario, values, block=spec.block)


def check_sensitivity(scenario: Scenario, limits: Limits | None = None) -> SensitivitySpec:
    """Everything ``inmail-sim validate`` checks of a sensitivity analysis: the spec, its size and every
    evaluation."""
    return plan_sensitivity(scenario, limits=limits)[0]


def run_sensitivity(scenario: Scenario, *, n: int | None = None, replications: int | None = None,
                    sobol: bool | None = None, tornado: bool | None = None, executor: Executor | None = None,
                    workers: int | None = None, dask: str | None = None, progress: Progress | None = None,
                    store: TaskStore | None = None, memory_limit: int | None = None,
                    plan: SensitivityPlan | None = None) -> SensitivityResults:
    """Sobol indices and the tornado of the scenario's outputs over its parameter ranges.

    Every evaluation (Sobol rows and tornado points) runs in one batch on the executor, with the
    same options as :func:`simulator.experiments.sweep.run_sweep` (``store``: one file per finished task,
    reused when present).  ``plan``: :func:`plan_sensitivity`'s result, if already made.
    """
    local = dask in (None, "local")
    if plan is None:
        plan = plan_sensitivity(scenario, n=n, replications=replications, sobol=sobol, tornado=tornado,
                                limits=Limits(workers or 1, memory_limit, local=local))
    spec, design_rows, points = plan
    d = len(spec.parameters)
    policies = needed_policies(spec, scenario)
    workers = capped_workers(workers or 1, len(points) * len(policies) * spec.replications)[0]
    if local:
        check_points_memory(points, executor, workers, memory_limit)
    opener = open_executor(workers, dask) if executor is None else contextlib.nullcontext(executor)
    with opener as ex:
        records = run_points(points, spec.replications, ex, progress=progress, store=store, policies=policies)
    y = np.stack([_output_values(records, pt.id, spec, scenario.baseline) for pt in points])  # (m, s, r)
    names = [o.name for o in spec.outputs]
    samples = _samples_frame(points, design_rows, spec, y)
    indices = pd.DataFrame()
    tor = pd.DataFrame()
    labels = [lab for lab, _ in design_rows]
    if spec.sobol:
        mean = y.mean(axis=-1)  # (m, s)
        pick = {lab: mean[[k for k, x in enumerate(labels) if x == lab]].T for lab in dict.fromkeys(labels)}
        f_AB = np.stack([pick[f"AB{i}"] for i in range(d)])
        indices = sobol_table(pick["A"], pick["B"], f_AB, spec.paths, names, n_resamples=spec.bootstrap,
                              confidence=spec.confidence, rng=design_rng(spec.seed, PURPOSE_BOOTSTRAP))
    if spec.tornado:
        rows = [k for k, x in enumerate(labels) if x == "tornado"]
        base = {p: current_value(scenario, p) for p in spec.paths}
        tor = tornado_table(y[rows], spec.parameters, names, base, confidence=spec.confidence)
    return SensitivityResults(scenario=with_changes(scenario), spec=spec, samples=samples, indices=indices,
                              tornado=tor)


def _samples_frame(points: Sequence[Point], rows: Sequence[tuple[str, int]], spec: SensitivitySpec,
                   y: np.ndarray) -> pd.DataFrame:
    recs = []
    for pt, (label, row), vals in zip(points, rows, y, strict=True):
        rec: dict[str, Any] = {"evaluation": pt.id, "design": label, "row": row}
        rec |= {p: pt.values.get(p) for p in spec.paths}
        rec |= {o.name: float(vals[k].mean()) for k, o in enumerate(spec.outputs)}
        recs.append(rec)
    return pd.DataFrame(recs)
