"""Bayesian calibration: the worlds (values of the uncertain parameters) consistent with the published figures.

Priors: the scenario's ``uncertain:`` block.  Targets: the ``calibration:`` block's (the figures of
POLICY_FACTS 5 by default), read as bands with uniform observation error
(:mod:`simulator.experiments.target_bands`), so the posterior is the prior restricted to the worlds
whose simulated figures all lie in their bands.  Steps:

1. pilot: a few prior worlds x 8 replications give each target's single-replication SD, hence the
   replications per world (SE <= a quarter of the band width) and the early-rejection rule;
2. stage 1: a space-filling design over the priors, accepted at distance 0 (:mod:`.abc`);
3. stage 2, if stage 1 accepted fewer than ``worlds``: ABC-SMC from stage 1's best worlds;
4. posterior predictive (:mod:`.posterior_predictive`): every posterior world on *fresh*
   replications (indices R..2R-1), so the share inside each band is an honest check, not the
   acceptance rule read back; every validation figure (e.g. the 2015 credit change, on another
   scenario file's policies and dates) is predicted per world too.

A target or figure may be a policy comparison or name another file's policies: each world then runs
every (run settings, policy) pair they need (:func:`spec_settings`) on the same replication seeds.

Every random number comes from ``design_rng(root_seed, PURPOSE_CALIBRATION)`` and the replication
seeds; worlds run as keyed runner tasks, so the posterior is the same serially, on processes or
on Dask, and an interrupted calibration resumes from its stored worlds.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simulator.experiments.abc import AbcResult, Generation, abc_posterior, prior_design, weighted_quantile
from simulator.experiments.budget import Workload
from simulator.experiments.calibration_spec import (
    DEFAULT_TARGETS,
    Check,
    FreeParameter,
    Target,
    calibration_spec,
    setting_name,
    target_issues,
)
from simulator.experiments.design import PURPOSE_CALIBRATION, design_rng
from simulator.experiments.posterior_predictive import posterior_predictive
from simulator.experiments.provenance import run_fingerprint
from simulator.experiments.runner import Progress, TaskStore
from simulator.experiments.target_bands import Band, bands_of, pooled_sd, replications_needed
from simulator.experiments.world_evaluation import Setting, WorldEvaluator, WorldObservation
from simulator.scenario import Scenario, ScenarioError, load_scenario
from simulator.scenario.uncertain import Prior, UncertainParameter

PILOT_WORLDS, PILOT_REPLICATIONS = 8, 8
"""The pilot that sets the replications per world: prior worlds (an LHS) x replications each."""
STORE_FOLDER = "worlds"
"""Subfolder of the output folder holding one file per finished world (what a resumed run reuses)."""


@dataclass(frozen=True)
class BayesSettings:
    """How much work: accepted worlds, stage-1 design size, replications per world (None: the pilot's rule)."""

    worlds: int = 500
    design: int | None = None
    sampler: str = "lhs"
    replications: int | None = None
    predictive: bool = True

    @property
    def design_size(self) -> int:
        return self.design or 2 * self.worlds


@dataclass(frozen=True)
class BayesSpec:
    """What is calibrated against what: the fitted policy, the uncertain parameters, the bands, the checks."""

    policy: str
    parameters: tuple[UncertainParameter, ...]
    targets: tuple[Target, ...]
    checks: tuple[Check, ...]
    held_out: tuple[Target, ...] = ()
    """Targets left out of the fit and predicted like the checks (leave-one-out, ``validate-model``)."""

    @property
    def bands(self) -> tuple[Band, ...]:
        return bands_of(self.targets)

    @property
    def check_bands(self) -> tuple[Band, ...]:
        """What the posterior predicts besides the targets: the validation figures, then the held-out targets."""
        return (*(Band.of_check(c) for c in self.checks), *bands_of(self.held_out))

    def settings_wanted(self) -> list[tuple[Path | None, str]]:
        """(file or None, policy) of every setting the targets and then the checks need, the fitted policy first."""
        out: list[tuple[Path | None, str]] = [(None, self.policy)]
        for t in self.targets:
            out += [(t.scenario, p) for p in (t.policy, t.baseline) if p is not None]
        for c in self.checks:
            out += [(c.scenario, p) for p in (c.policy, c.baseline) if p is not None]
        for t in self.held_out:
            out += [(t.scenario, p) for p in (t.policy, t.baseline) if p is not None]
        return list(dict.fromkeys(out))

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.parameters]


def spec_settings(scenario: Scenario, spec: BayesSpec, *, checks: bool = True) -> tuple[Setting, ...]:
    """The (run settings, policy) pairs a world runs: the fitted policy's first, then those the targets
    (and, with ``checks``, the validation figures) name; another file's pairs keep its dates and rules
    and run on this scenario's market."""
    wanted = spec.settings_wanted()
    if not checks:
        used = {b.setting for b in spec.bands} | {b.baseline for b in spec.bands}
        wanted = [w for w in wanted if w == (None, spec.policy) or setting_name(*w) in used]
    files: dict[Path, Scenario] = {}
    out = []
    for path, policy in wanted:
        where = scenario if path is None else files.setdefault(path, load_scenario(path))
        out.append(Setting(setting_name(path, policy), where.policies[policy], where.run))
    return tuple(out)


def bayes_spec(scenario: Scenario, parameters: Sequence[UncertainParameter] | None = None) -> BayesSpec:
    """Priors from ``scenario.uncertain`` (or ``parameters``), targets and checks from ``calibration:``.

    Without a ``calibration:`` block the baseline policy is fitted to the default figures. Raises
    :class:`ScenarioError` for no uncertain parameters or a target naming no observable.
    """
    params = tuple(parameters if parameters is not None else scenario.uncertain)
    if not params:
        raise ScenarioError([scenario.issue(("uncertain",), "no uncertain: block in this scenario: Bayesian "
                                            "calibration needs priors over the parameters it calibrates (see "
                                            "docs/calibration.md); or use --method point with calibration.parameters")])
    if isinstance(scenario.resolved.get("calibration"), dict):
        spec = calibration_spec(scenario, require_parameters=False)
        return BayesSpec(spec.policy, params, spec.targets, spec.checks)
    issues = [i for t in DEFAULT_TARGETS for i in target_issues(scenario, t, ("calibration", "targets"))]
    if issues:
        raise ScenarioError(issues)
    return BayesSpec(scenario.baseline, params, DEFAULT_TARGETS, ())


def uniform_priors(parameters: Sequence[FreeParameter]) -> tuple[UncertainParameter, ...]:
    """The point fit's free parameters as uncertain parameters with uniform priors over their ranges."""
    return tuple(UncertainParameter(p.name, p.paths, Prior("uniform", p.low, p.high), "calibration range")
                 for p in parameters)


def bayes_workload(scenario: Scenario, spec: BayesSpec, settings: BayesSettings) -> Workload:
    """An upper estimate of the replications: pilot, design, about six SMC generations, the predictive."""
    r = settings.replications or 4
    smc = 6 * 3 * settings.worlds
    fit = len(spec_settings(scenario, spec, checks=False))
    every = len(spec_settings(scenario, spec))
    tasks = (PILOT_WORLDS * PILOT_REPLICATIONS * fit + (settings.design_size + smc) * r * fit
             + (settings.worlds * r * every if settings.predictive else 0))
    return Workload("calibrate", scenario, tasks,
                    f"pilot {PILOT_WORLDS} x {PILOT_REPLICATIONS} + ({settings.design_size:,} design + ~{smc:,} "
                    f"SMC worlds) x ~{r} replications + predictive", "fewer --worlds or a smaller --scale")


@dataclass
class BayesResult:
    """The weighted posterior, its predictive and how it was computed (what the output files hold)."""

    scenario: Scenario
    spec: BayesSpec
    settings: BayesSettings
    abc: AbcResult
    replications: int
    sds: dict[str, float]
    simulations: int
    seconds: float
    predictive: pd.DataFrame = field(default_factory=pd.DataFrame)
    checks: pd.DataFrame = field(default_factory=pd.DataFrame)
    reused_worlds: int = 0
    figure_values: dict[str, np.ndarray] = field(default_factory=dict)
    """Per target and validation figure (by name): each posterior world's predictive value (fresh replications)."""

    @property
    def posterior(self) -> pd.DataFrame:
        """``world, weight, <parameters>`` (weights sum to 1)."""
        frame = pd.DataFrame(self.abc.thetas, columns=self.spec.names)
        frame.insert(0, "weight", self.abc.weights)
        frame.insert(0, "world", np.arange(len(frame)))
        return frame

    def parameter_table(self) -> pd.DataFrame:
        """Per parameter: prior 90% range, posterior median and 90% interval, how much narrower."""
        rows = []
        for j, p in enumerate(self.spec.parameters):
            x = self.abc.thetas[:, j]
            w = self.abc.weights
            lo, med, hi = (weighted_quantile(x, w, q) for q in (0.05, 0.5, 0.95))
            plo, phi = (float(v) for v in p.prior.ppf(np.array([0.05, 0.95])))
            rows.append({"parameter": p.name, "prior_low": p.prior.low, "prior_high": p.prior.high,
                         "prior_q05": plo, "prior_q95": phi, "posterior_q05": lo, "posterior_median": med,
                         "posterior_q95": hi, "narrowing": 1.0 - (hi - lo) / (phi - plo) if phi > plo else 0.0})
        return pd.DataFrame(rows)

    def manifest(self) -> dict[str, Any]:
        gens = self.abc.generations
        return {
            "method": "bayes", "scenario": self.scenario.source, "policy": self.spec.policy,
            "stage": self.abc.stage, "converged": self.abc.converged,
            "tolerance_schedule": [g.tolerance for g in gens],
            "generations": [{"stage": g.stage, "tolerance": g.tolerance, "proposed": g.proposed,
                             "accepted": g.accepted, "acceptance_rate": g.acceptance, "ess": g.ess} for g in gens],
            "design_worlds_meeting_every_band": self.abc.design_at_zero,
            "accepted_worlds": len(self.abc.weights), "effective_sample_size": self.abc.ess,
            "simulations": {"worlds_proposed": int(sum(g.proposed for g in gens)),
                            "worlds_simulated": self.abc.simulations, "pilot_worlds": PILOT_WORLDS,
                            "predictive_worlds": len(self.abc.weights) if not self.predictive.empty else 0,
                            "replications": self.simulations, "worlds_reused_from_store": self.reused_worlds},
            "minutes": self.seconds / 60.0, "root_seed": self.scenario.root_seed,
            "seeds": {"design": f"design_rng(root_seed, PURPOSE_CALIBRATION={PURPOSE_CALIBRATION})",
                      "fit_replication_indices": list(range(self.replications)),
                      "predictive_replication_indices": list(range(self.replications, 2 * self.replications))},
            "replications_per_world": self.replications,
            "replication_rule": "smallest R with single-replication SD / sqrt(R) <= width / 4 for every target "
                                f"(SDs from a pilot of {PILOT_WORLDS} prior worlds x {PILOT_REPLICATIONS} "
                                "replications), within [2, 32]",
            "single_replication_sd": self.sds,
            "scale": self.scenario.resolved.get("scale", 1.0),
            "members": self.scenario.market.members.count, "recruiters": self.scenario.market.recruiter_count,
            "settings": {"worlds": self.settings.worlds, "design": self.settings.design_size,
                         "sampler": self.settings.sampler},
            "parameters": [{"name": p.name, "paths": [list(x) for x in p.paths], "prior": {
                "kind": p.prior.kind, "a": p.prior.a, "b": p.prior.b, "lower": _finite(p.prior.lower),
                "upper": _finite(p.prior.upper)}} for p in self.spec.parameters],
            "targets": [{"name": b.name, "key": b.key, "band": b.describe(), "width": b.width}
                        for b in self.spec.bands],
        }


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _fingerprint(scenario: Scenario, spec: BayesSpec, settings: BayesSettings) -> dict[str, Any]:
    return {**run_fingerprint(scenario), "policy": spec.policy, "parameters": repr(spec.parameters),
            "bands": repr(spec.bands), "checks": repr(spec.check_bands), "settings": repr(settings),
            "runs": repr(spec_settings(scenario, spec))}


def open_store(out: Path, fingerprint: dict[str, Any]) -> TaskStore:
    """The world store in ``out``; emptied when it holds the worlds of another scenario, seed or setting."""
    store = TaskStore(out / STORE_FOLDER, WorldObservation.from_arrays)
    stamp = out / STORE_FOLDER / "fingerprint.json"
    text = json.dumps(fingerprint, sort_keys=True, default=str)
    if not stamp.is_file() or stamp.read_text(encoding="utf-8") != text:
        store.clear()
        stamp.write_text(text, encoding="utf-8")
    return store


def bayes_calibrate(scenario: Scenario, executor: Executor, *, spec: BayesSpec | None = None,
                    settings: BayesSettings | None = None, out: str | Path | None = None,
                    progress: Progress | None = None,
                    on_generation: Any = None) -> BayesResult:
    """The weighted posterior of the uncertain parameters given the targets (see the module docstring)."""
    started = time.monotonic()
    spec = spec or bayes_spec(scenario)
    settings = settings or BayesSettings()
    store = open_store(Path(out), _fingerprint(scenario, spec, settings)) if out is not None else None
    rng = design_rng(scenario.root_seed, PURPOSE_CALIBRATION)
    pilot_rng = np.random.default_rng(int(rng.integers(2**62)))
    priors = [p.prior for p in spec.parameters]
    evaluator = WorldEvaluator(scenario.market, spec.parameters, spec_settings(scenario, spec, checks=False),
                               scenario.root_seed, spec.bands, PILOT_REPLICATIONS, executor, store,
                               progress=progress)
    pilot = evaluator.observe("pilot", prior_design(priors, PILOT_WORLDS, pilot_rng), range(PILOT_REPLICATIONS))
    valid = [evaluator.values(o) for o in pilot if not o.invalid and len(o.rows)]
    sd = pooled_sd(valid) if valid else np.full(len(spec.bands), math.inf)
    sds = {b.column: float(v) for b, v in zip(spec.bands, sd, strict=True)}
    replications = settings.replications or replications_needed(spec.bands, sds)
    evaluator.replications, evaluator.sds = replications, sds
    result = abc_posterior(evaluator, priors, settings.worlds, settings.design_size, rng, settings.sampler,
                           progress=on_generation)
    bayes = BayesResult(scenario, spec, settings, result, replications, sds, 0, 0.0)
    if settings.predictive:
        pred = posterior_predictive(evaluator, spec.bands, spec.check_bands, spec_settings(scenario, spec),
                                    result.thetas, result.weights, replications)
        bayes.predictive, bayes.checks, bayes.figure_values = pred
    bayes.simulations = evaluator.replications_run
    bayes.reused_worlds = evaluator.reused
    bayes.seconds = time.monotonic() - started
    return bayes


def describe_generation(gen: Generation) -> str:
    """One line per stage / generation, for progress notes."""
    return (f"stage {gen.stage}: tolerance {gen.tolerance:.3g}, accepted {gen.accepted:,} of {gen.proposed:,} "
            f"({gen.acceptance:.1%}), ESS {gen.ess:,.0f}")


def format_bayes(result: BayesResult) -> str:
    """The printed summary: how, per parameter prior vs posterior, per target the predictive inside share."""
    abc = result.abc
    lines = [f"Bayesian calibration of {result.scenario.name} (policy {result.spec.policy}): "
             f"{len(abc.weights):,} worlds, ESS {abc.ess:,.0f}, stage {abc.stage}"
             + ("" if abc.converged else f" (NOT converged: final tolerance {abc.tolerance:.3g})"),
             f"  {result.simulations:,} replications ({result.replications} per world), "
             f"{result.seconds / 60:.1f} minutes; tolerance schedule "
             + ", ".join(f"{g.tolerance:.3g}" for g in abc.generations), "",
             "parameters (prior 90% range -> posterior median [90% interval], narrower by):"]
    for r in result.parameter_table().itertuples(index=False):
        lines.append(f"  {r.parameter:<34} [{r.prior_q05:.4g}, {r.prior_q95:.4g}] -> {r.posterior_median:.4g} "
                     f"[{r.posterior_q05:.4g}, {r.posterior_q95:.4g}]  {r.narrowing:.0%}")
    if not result.predictive.empty:
        lines += ["", "posterior predictive on fresh replications (mean [95%], share inside the band):"]
        for band, r in zip(result.spec.bands, result.predictive.itertuples(index=False), strict=True):
            lines.append(f"  {r.target:<20} {band.describe():<14} {r.mean:.4f} [{r.q025:.4f}, {r.q975:.4f}]  "
                         f"{r.inside_share:.0%}")
    if not result.checks.empty:
        lines += ["", "predictions (validation figures; posterior mean, median [90%] [95%]):"]
        for r in result.checks.itertuples(index=False):
            lines.append(f"  {r.check:<20} {r.policy} vs {r.baseline} {r.metric} {r.measure}: {r.mean:+.4f}, "
                         f"{r.median:+.4f} [{r.q05:+.4f}, {r.q95:+.4f}] [{r.q025:+.4f}, {r.q975:+.4f}]")
    return "\n".join(lines)


def scale_check(full: Scenario, scaled: Scenario, spec: BayesSpec, thetas: np.ndarray, replications: int,
                executor: Executor) -> pd.DataFrame:
    """Each target's mean at ``scaled``'s scale vs the full market, per world (rows of ``thetas``).

    ``z`` = difference / its standard error (independent replications at the two sizes): |z| within
    about 2 says the smaller market gives the same answer within Monte Carlo error.
    """
    rows = []
    per_size = {}
    for name, sc in (("full", full), ("scaled", scaled)):
        ev = WorldEvaluator(sc.market, spec.parameters, spec_settings(sc, spec, checks=False), sc.root_seed,
                            spec.bands, replications, executor)
        per_size[name] = [ev.values(o) for o in ev.observe(f"scale-{name}", thetas, range(replications))]
    for i, (a, b) in enumerate(zip(per_size["full"], per_size["scaled"], strict=True)):
        for j, key in enumerate(band.column for band in spec.bands):
            x, y = a[:, j], b[:, j]
            se = math.sqrt(np.var(x, ddof=1) / len(x) + np.var(y, ddof=1) / len(y))
            diff = float(np.mean(y) - np.mean(x))
            rows.append({"world": i, "target": key, "full": float(np.mean(x)), "scaled": float(np.mean(y)),
                         "diff": diff, "se": se, "z": diff / se if se > 0 else math.nan})
    return pd.DataFrame(rows)
