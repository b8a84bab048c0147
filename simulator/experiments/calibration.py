"""Calibration: fit free market parameters so that the baseline world reproduces published figures.

The ``calibration:`` block (:mod:`simulator.experiments.calibration_spec`) names the free
parameters, the targets and the validation figures; :mod:`simulator.experiments.objective` fits
them on common random numbers.  The achieved-vs-target table is then computed on fresh
replications (indices after those used in fitting), so its confidence intervals are honest, and
every validation figure is predicted at the start and the fitted values.  The files are written
by :func:`simulator.io.study_files.write_calibration`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simulator.experiments.budget import Limits, admit
from simulator.experiments.calibration_spec import (
    DEFAULT_TARGETS,
    CalibrationSpec,
    Check,
    FreeParameter,
    PathError,
    Target,
    apply_values,
    calibration_spec,
    calibration_workload,
    config_value,
    describe_spec,
    parameter_overrides,
)
from simulator.experiments.experiment import compare, run_experiment
from simulator.experiments.objective import CalibrationRunError, Evaluation, Objective, minimize, run_observations
from simulator.experiments.observation import observe
from simulator.experiments.runner import Progress, open_executor
from simulator.experiments.statistics import t_interval
from simulator.scenario import Overrides, Scenario, ScenarioError, load_scenario

__all__ = [
    "DEFAULT_TARGETS", "DIAGNOSTICS", "CalibrationResult", "CalibrationRunError", "CalibrationSpec", "Check",
    "Evaluation", "FreeParameter", "Objective", "PathError", "Target", "applicable_overrides", "apply_values",
    "calibrate", "calibrated_mapping", "calibration_spec", "calibration_workload", "config_value", "describe_spec",
    "format_calibration",
    "observe", "parameter_overrides", "run_check", "target_table",
]

DIAGNOSTICS: tuple[str, ...] = (
    "response_rate", "member_segment:lowest:response_rate", "member_segment:highest:response_rate",
    "personalization_band:low:response_rate", "personalization_band:mid:response_rate",
    "personalization_band:high:response_rate", "sanctioned_share", "warned_share", "improvement_share",
    "warnings", "improvement_periods", "sent", "sent_bulk",
)
"""Observables reported at the start and fitted values besides the targets."""



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


def _interval(values: np.ndarray) -> tuple[float, float, float]:
    """Mean and Student-t interval of one observable over replications, as plain floats."""
    mean, low, high = t_interval(values)
    return float(mean), float(low), float(high)


def target_table(spec: CalibrationSpec, observed: Mapping[str, np.ndarray], at: str) -> pd.DataFrame:
    """Achieved vs target (mean and 95% CI over replications) for every target and diagnostic."""
    rows = []
    for target in spec.targets:
        mean, low, high = _interval(observed[target.key])
        rows.append({"at": at, "quantity": target.name, "key": target.key, "target": target.describe(),
                     "mean": mean, "ci_low": low, "ci_high": high, "n": len(observed[target.key]),
                     "met": target.met(mean), "residual": target.residual(mean), "source": target.source})
    seen = {target.key for target in spec.targets}
    for key in DIAGNOSTICS:
        if key in seen or key not in observed:
            continue
        mean, low, high = _interval(observed[key])
        rows.append({"at": at, "quantity": key, "key": key, "target": "", "mean": mean, "ci_low": low,
                     "ci_high": high, "n": len(observed[key]), "met": None, "residual": math.nan,
                     "source": "diagnostic"})
    return pd.DataFrame(rows)


def _agrees(check: Check, ci_low: float, ci_high: float) -> str:
    """``yes`` if the CI lies inside the published figure, ``no`` if wholly outside, ``partly`` else."""
    if check.low is None and check.high is None:
        return ""
    low = -math.inf if check.low is None else check.low
    high = math.inf if check.high is None else check.high
    if low <= ci_low and ci_high <= high:
        return "yes"
    if ci_high < low or ci_low > high:
        return "no"
    return "partly"


def _published(check: Check) -> str:
    """The published figure as text (empty when the check has none)."""
    if check.low is None and check.high is None:
        return ""
    if check.high is None:
        return f">= {check.low:g}"
    if check.low is None:
        return f"<= {check.high:g}"
    return f"{check.low:g} .. {check.high:g}"


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


def run_check(scenario: Scenario, check: Check, overrides: Mapping[str, Any], replications: int,
              executor: Executor, at: str, check_overrides: Overrides = ()) -> dict[str, Any]:
    """One validation comparison at the given market values: the policy vs its scenario's baseline.

    ``check_overrides``: applied to the check's own scenario file where they apply (see
    :func:`applicable_overrides`) - the size overrides the calibrated scenario was loaded with.
    """
    base = (scenario if check.scenario is None
            else load_scenario(check.scenario, applicable_overrides(check.scenario, check_overrides)))
    world = apply_values(base, overrides)
    policy = check.policy or next(p for p in world.policy_names if p != world.baseline)
    if policy not in world.policies:
        raise ScenarioError([scenario.issue(("calibration", "validation"), f"{check.name}: scenario has no policy "
                                            f"{policy!r}; its policies: {', '.join(world.policies)}")])
    world = dataclasses.replace(world, policies={k: v for k, v in world.policies.items()
                                                 if k in (world.baseline, policy)})
    results = run_experiment(world, replications=replications, executor=executor, timeseries=False,
                             memory_check=False)  # admitted up front with the whole calibration
    comp = compare(results.replications, world.baseline, [check.metric])
    row = comp[comp["policy"] == policy].iloc[0]
    est, lo, hi = ((row["rel_change"], row["rel_ci_low"], row["rel_ci_high"]) if check.relative
                   else (row["diff"], row["ci_low"], row["ci_high"]))
    return {"check": check.name, "at": at, "scenario": world.name, "baseline": world.baseline, "policy": policy,
            "metric": check.metric, "measure": "relative change" if check.relative else "difference",
            "baseline_mean": row["baseline_mean"], "policy_mean": row["policy_mean"],
            "estimate": est, "ci_low": lo, "ci_high": hi, "n": int(row["n"]),
            "published": _published(check),
            "agrees": _agrees(check, lo, hi), "source": check.source}


def calibrate(scenario: Scenario, executor: Executor | None = None, *, workers: int = 1,
              spec: CalibrationSpec | None = None, out: str | Path | None = None,
              progress: Progress | None = None, validation: bool = True,
              check_overrides: Overrides = (), limits: Limits | None = None) -> CalibrationResult:
    """Fit the spec's free parameters, check the fit on fresh replications, and run the validation figures.

    ``executor``: any ``concurrent.futures.Executor``; without one, ``workers`` local processes (1:
    in this process).  ``out``: a folder for ``calibration_trace.csv``, written one evaluation at a
    time.  ``check_overrides``: the overrides ``scenario`` was loaded with; those that also apply to
    a validation figure's own scenario file (its size, say) are applied there too.  On Ctrl-C the
    result so far is returned with ``status == "interrupted"`` (best evaluation as the fitted
    values; no check, no validation).  The work is checked against ``limits``
    (:func:`simulator.experiments.budget.admit`) before anything runs.
    """
    spec = spec or calibration_spec(scenario)
    if executor is None:
        workers = admit(calibration_workload(scenario, spec, validation),
                        dataclasses.replace(limits or Limits(), workers=workers))
        with open_executor(workers) as ex:
            return calibrate(scenario, ex, spec=spec, out=out, progress=progress, validation=validation,
                             check_overrides=check_overrides, limits=limits)
    admit(calibration_workload(scenario, spec, validation), limits)
    trace = None
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        trace = Path(out) / "calibration_trace.csv"
    checks = spec.checks if validation else ()
    steps_after = 2 + 2 * len(checks)  # the fit's check at start and fitted values, then each validation twice
    objective = Objective(scenario, spec, executor, trace, progress, steps_after)
    start = tuple(p.clip(p.start) for p in spec.parameters)
    try:
        objective.evaluate(start)
        fit = minimize(objective)
        status = "converged" if fit.success else "stopped"
        message = str(fit.message)
    except KeyboardInterrupt:
        best = objective.best
        fitted = best.theta if best is not None else start
        return CalibrationResult(scenario, spec, start, fitted, objective.evaluations, "interrupted",
                                 f"interrupted after {len(objective.evaluations)} evaluations",
                                 _parameter_frame(spec, start, fitted))
    best = objective.best
    assert best is not None
    fitted = tuple(p.clip(_round_sig(x)) for p, x in zip(spec.parameters, best.theta, strict=True))
    evaluations = len(objective.evaluations)
    result = CalibrationResult(scenario, spec, start, fitted, objective.evaluations, status,
                               f"{message} ({evaluations} evaluations, loss {best.loss:.4g})",
                               _parameter_frame(spec, start, fitted))

    def step_done(step: int) -> None:
        if progress is not None:
            progress(evaluations + step, evaluations + steps_after)

    calibrated = apply_values(scenario, result.overrides)
    result.calibrated = calibrated
    first = spec.replications
    fresh = list(range(first, first + spec.check_replications))
    start_scenario = apply_values(scenario, parameter_overrides(scenario, spec.parameters, start))
    tables = []
    for step, (at, world) in enumerate((("start", start_scenario), ("fitted", calibrated)), start=1):
        observed = run_observations(world, spec.policy, fresh, executor, f"check-{at}")
        tables.append(target_table(spec, observed, at))
        step_done(step)
    result.targets = pd.concat(tables, ignore_index=True)
    if checks:
        rows = []
        start_overrides = parameter_overrides(scenario, spec.parameters, start)
        for check in checks:
            for at, values in (("start", start_overrides), ("fitted", result.overrides)):
                rows.append(run_check(scenario, check, values, spec.check_replications, executor, at,
                                      check_overrides))
                step_done(2 + len(rows))
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
