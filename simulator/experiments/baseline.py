"""Regression tests on summary statistics: store a run's means and standard errors, check later runs against them.

A *baseline* (a small JSON file) holds, per policy and metric, the mean over replications, its
standard error and the number of replications, plus the same for every policy's paired difference
to the scenario's baseline policy (row ``"new - old"``), together with what produced them: root
seed, package and numpy versions, the overrides and a hash of the resolved scenario.

Two ways to check a new run against it:

* ``exact``: same seed, same number of replications, same ``inmail-sim`` and numpy versions ->
  every stored number must be reproduced up to float round-off (relative 1e-9).  If the seed,
  the replications or the versions differ, exact mode does not apply: :class:`ExactNotApplicableError`
  (exit code 2 on the command line) says so and points to statistical mode.
* ``statistical``: any seed, any version.  Each difference ``now - stored`` is divided by its
  standard error ``sqrt(se_stored**2 + se_now**2)`` and tested with a two-sided Welch t-test;
  the p-values are Holm-corrected over all tested rows so that the chance of *any* false alarm
  on an unchanged model is at most ``alpha`` (default 1%).  Rows with no spread in either run
  (e.g. ``credits_granted`` with fixed seat counts) are compared exactly (relative 1e-9) instead.

A changed scenario is detected through the hash of its :data:`MODEL_KEYS` and refused
(:class:`ScenarioChangedError`) unless explicitly allowed.
"""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from simulator.core.metrics import CURRENT_METRICS, METRIC_NAMES, canonical_metric
from simulator.experiments.baseline_check import CheckReport, compare_baselines, holm, render_report
from simulator.experiments.baseline_file import (
    DEFAULT_ALPHA,
    DIFF_SEP,
    MODEL_KEYS,
    Baseline,
    BaselineError,
    BaselineMismatchError,
    ExactNotApplicableError,
    ScenarioChangedError,
    Stat,
    config_hash,
    current_versions,
    dumps,
    load_baseline,
    write_baseline_file,
)
from simulator.experiments.budget import Limits, admit, experiment_workload
from simulator.experiments.experiment import Results, run_experiment
from simulator.experiments.power import ReplicationPlan, holm_family_size, parse_detect, plan_table
from simulator.experiments.provenance import git_revision, scenario_hash
from simulator.experiments.runner import Progress
from simulator.scenario import load_scenario

__all__ = [
    "DEFAULT_ALPHA", "DIFF_SEP", "MODEL_KEYS", "Baseline", "BaselineError", "BaselineMismatchError", "CheckReport",
    "ExactNotApplicableError", "ReplicationPlan", "ScenarioChangedError", "Stat", "assert_matches_baseline",
    "baseline_from_results", "check_results", "check_scenario", "compare_baselines", "dumps", "holm", "load_baseline",
    "plan_replications", "render_report", "rerun", "save_baseline", "statistics_of",
]


def _stat(values: np.ndarray) -> Stat:
    n = int(values.size)
    mean = float(values.mean()) if n else math.nan
    se = float(values.std(ddof=1) / math.sqrt(n)) if n >= 2 else math.nan
    return Stat(mean, se, n)


def statistics_of(results: Results, metrics: Sequence[str] = METRIC_NAMES) -> dict[str, dict[str, Stat]]:
    """Per policy and metric the mean, standard error and n; then every paired difference to the baseline."""
    reps = results.replications
    names = results.scenario.policy_names
    wide = {p: reps[reps["policy"] == p].set_index("replication").sort_index() for p in names}
    out: dict[str, dict[str, Stat]] = {
        p: {m: _stat(wide[p][m].to_numpy(dtype=np.float64)) for m in metrics} for p in names
    }
    base = wide[results.baseline]
    for p in names:
        if p == results.baseline:
            continue
        common = wide[p].index.intersection(base.index)
        out[f"{p}{DIFF_SEP}{results.baseline}"] = {
            m: _stat(wide[p].loc[common, m].to_numpy(dtype=np.float64) - base.loc[common, m].to_numpy(dtype=np.float64))
            for m in metrics
        }
    return out


def baseline_from_results(results: Results, metrics: Sequence[str] = METRIC_NAMES,
                          scenario_file: str | None = None) -> Baseline:
    """The :class:`Baseline` of an experiment's results."""
    sc = results.scenario
    unknown = [m for m in metrics if m not in results.replications.columns]
    if unknown:
        raise BaselineError(f"unknown metric(s) {', '.join(unknown)}; allowed: {', '.join(METRIC_NAMES)}")
    return Baseline(
        scenario=sc.name, scenario_hash=scenario_hash(sc, MODEL_KEYS), config_hash=config_hash(sc),
        root_seed=int(sc.root_seed), replications=results.n_replications, baseline_policy=sc.baseline,
        policies=tuple(sc.policy_names), overrides=tuple(sc.overrides), versions=current_versions(),
        stats=statistics_of(results, metrics), scenario_file=scenario_file or sc.source,
        created=dt.datetime.now().astimezone().isoformat(timespec="seconds"), git_revision=git_revision()["revision"],
    )


def save_baseline(results: Results, path: str | Path, metrics: Sequence[str] = METRIC_NAMES,
                  scenario_file: str | None = None, force: bool = False) -> Baseline:
    """Write the baseline of ``results`` to ``path`` (JSON, written atomically); needs >= 2 replications.

    An existing file that is not a baseline is not replaced unless ``force``.
    """
    if results.n_replications < 2:
        raise BaselineError(f"a baseline needs a standard error, so at least 2 replications (10+ recommended); "
                            f"got {results.n_replications}")
    base = baseline_from_results(results, metrics, scenario_file)
    write_baseline_file(base, path, force)
    return base


# --------------------------------------------------------------------------- entry points


def check_results(results: Results, baseline: str | Path | Baseline, mode: str = "statistical",
                  alpha: float = DEFAULT_ALPHA, allow_changed_scenario: bool = False,
                  metrics: Sequence[str] | None = None, allow_missing: bool = False) -> CheckReport:
    """Compare ``results`` with a baseline (file or object); ``metrics`` limits the check to some metrics.

    Rows the file should hold but lacks fail the check unless ``allow_missing`` (then skipped).
    """
    stored = baseline if isinstance(baseline, Baseline) else load_baseline(baseline)
    if metrics is not None:
        stored = _only(stored, metrics)
    names = list(metrics) if metrics is not None else sorted({m for ms in stored.stats.values() for m in ms},
                                                             key=_metric_order)
    names = [m for m in names if m in results.replications.columns] or list(METRIC_NAMES)
    now = baseline_from_results(results, names)
    return compare_baselines(stored, now, mode, alpha, allow_changed_scenario, allow_missing)


def _metric_order(m: str) -> tuple[int, str]:
    return (METRIC_NAMES.index(m) if m in METRIC_NAMES else len(METRIC_NAMES), m)


def _only(stored: Baseline, metrics: Sequence[str]) -> Baseline:
    """The baseline restricted to ``metrics`` (each must be in it)."""
    keep = set(metrics)
    missing = keep - {m for row in stored.stats.values() for m in row}
    if missing:
        raise BaselineError(f"{stored.source or 'baseline'}: has no metric(s) {', '.join(sorted(missing))}")
    return replace(stored, stats={name: {m: s for m, s in row.items() if m in keep}
                                  for name, row in stored.stats.items()},
                   metrics=None if stored.metrics is None else tuple(m for m in stored.metrics if m in keep))


def assert_matches_baseline(results: Results, path: str | Path, mode: str = "statistical",
                            alpha: float = DEFAULT_ALPHA, allow_changed_scenario: bool = False,
                            metrics: Sequence[str] | None = None, allow_missing: bool = False) -> CheckReport:
    """For analysts' pytest suites: raise :class:`BaselineMismatchError` (an AssertionError) if a number moved.

    ``results`` must come from the scenario the baseline was saved from (same resolved scenario,
    same overrides); in ``"statistical"`` mode any seed and number of replications will do.
    A changed scenario or an inapplicable exact mode raises :class:`BaselineError`.
    Returns the report when everything matches.
    """
    report = check_results(results, path, mode, alpha, allow_changed_scenario, metrics, allow_missing)
    if not report.ok:
        raise BaselineMismatchError(report.render(only_failures=True))
    return report


def rerun(scenario_file: str | Path, baseline: Baseline, *, seed: int | None = None,
          replications: int | None = None, workers: int | None = None,
          progress: Progress | None = None, limits: Limits | None = None) -> Results:
    """Run ``scenario_file`` with the baseline's overrides (and its seed and replications unless given).

    The replications a check asks for (a stored ``replications`` too) are checked against ``limits``
    (:func:`simulator.experiments.budget.admit`) before any run.
    """
    scenario = load_scenario(scenario_file, list(baseline.overrides))
    count = replications or baseline.replications
    workers = admit(experiment_workload(scenario, count, "baseline check", lower=CHECK_LOWER),
                    replace(limits or Limits(), workers=workers or 1))
    return run_experiment(scenario, replications=count, root_seed=baseline.root_seed if seed is None else seed,
                          workers=workers, progress=progress, memory_check=False)


CHECK_LOWER = ("check with fewer --replications (statistical mode takes any number: `baseline plan` says how many "
               "a wanted sensitivity needs)")


def check_scenario(scenario_file: str | Path, baseline: str | Path | Baseline, mode: str = "statistical", *,
                   seed: int | None = None, replications: int | None = None, alpha: float = DEFAULT_ALPHA,
                   allow_changed_scenario: bool = False, workers: int | None = None,
                   progress: Progress | None = None, limits: Limits | None = None,
                   allow_missing: bool = False) -> CheckReport:
    """Re-run a scenario as the baseline was made (its overrides, seed and replications unless given) and check it.

    Problems that need no run (changed scenario, exact mode not applicable, more work than ``limits``
    allow) are raised before anything is simulated.
    """
    stored = baseline if isinstance(baseline, Baseline) else load_baseline(baseline)
    scenario = load_scenario(scenario_file, list(stored.overrides))
    planned = Baseline(
        scenario=scenario.name, scenario_hash=scenario_hash(scenario, MODEL_KEYS), config_hash=config_hash(scenario),
        root_seed=stored.root_seed if seed is None else seed, replications=replications or stored.replications,
        baseline_policy=scenario.baseline, policies=tuple(scenario.policy_names), overrides=stored.overrides,
        versions=current_versions(), stats={},
    )
    compare_baselines(stored, planned, mode, alpha, allow_changed_scenario)  # raises before the run
    if mode == "statistical" and planned.replications < 2:
        raise BaselineError("statistical mode needs at least 2 replications")
    results = rerun(scenario_file, stored, seed=seed, replications=replications, workers=workers, progress=progress,
                    limits=limits)
    return check_results(results, stored, mode, alpha, allow_changed_scenario, allow_missing=allow_missing)


def plan_replications(scenario_file: str | Path, detect: str, metric: str = "response_rate",
                      alpha: float = DEFAULT_ALPHA, *, against: str | Path | None = None, pilot: int = 10,
                      seed: int | None = None, overrides: Sequence[str] = (), workers: int | None = None,
                      progress: Progress | None = None, limits: Limits | None = None) -> ReplicationPlan:
    """How many replications a check needs to detect ``detect`` (``0.1pp``, ``2%``, ``0.003``) in ``metric``.

    The per-replication spread comes from a pilot run of ``pilot`` replications, or from the stored
    baseline ``against`` (then also: the replications of a check against that file as it is).
    ``alpha`` is the check's family-wise rate; see :mod:`simulator.experiments.power` for the formula.
    """
    metric = canonical_metric(metric)
    if metric not in METRIC_NAMES:
        raise BaselineError(f"--metric {metric!r}: unknown metric; allowed: {', '.join(CURRENT_METRICS)}")
    if not 0.0 < alpha < 1.0:
        raise BaselineError(f"--alpha {alpha}: the family-wise false-alarm rate must be in (0, 1)")
    wanted = parse_detect(detect, metric)
    if against is not None:
        stored = load_baseline(against)
        scenario = load_scenario(scenario_file, list(stored.overrides))
        if scenario_hash(scenario, MODEL_KEYS) != stored.scenario_hash:
            raise ScenarioChangedError(f"{against}: the scenario changed since this baseline was saved; plan with a "
                                       "pilot run instead (leave out --against)")
        if not any(metric in ms for ms in stored.stats.values()):
            raise BaselineError(f"{against}: has no metric {metric!r}")
        stats, source = stored.stats, f"{against} ({stored.replications} replications, seed {stored.root_seed})"
    else:
        if pilot < 2:
            raise BaselineError(f"--pilot {pilot}: a spread needs at least 2 replications (10+ recommended)")
        scenario = load_scenario(scenario_file, list(overrides))
        workers = admit(experiment_workload(scenario, pilot, "baseline plan", lower="a smaller --pilot"),
                        replace(limits or Limits(), workers=workers or 1))
        results = run_experiment(scenario, replications=pilot, root_seed=seed, workers=workers, progress=progress,
                                 memory_check=False)
        stats = statistics_of(results)
        source = f"a pilot run of {pilot} replications (seed {results.scenario.root_seed})"
    tested = holm_family_size(stats)
    table = plan_table(stats, metric, wanted, alpha, tested, against=against is not None)
    return ReplicationPlan(table, metric, wanted, alpha, tested, source)
