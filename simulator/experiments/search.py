"""``inmail-sim optimize``: a noise-aware multi-objective search of the ``optimize:`` block's levers.

1. The presets old_2014, new_2015 (and the base) are evaluated with ``reevaluate`` replications: they
   fix the constraints' ``baseline`` and each objective's typical spread (the old-new difference).
2. Generation by generation (:mod:`.search_driver`), each trial starts with ``replications`` replications
   on the common seed bank; batches of that size are added to the trials whose objectives are not yet
   known to the precision rule (CI half-width <= ``precision`` x spread) or whose constraint CI still
   straddles its bound, up to ``max_replications``.  A constraint is met only when its CI bound meets it.
3. The feasible non-dominated trials are re-evaluated with ``reevaluate`` replications, checked again
   and the dominated ones dropped: that is the Pareto set.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simulator.core.config import Market, Policy
from simulator.core.presets import preset
from simulator.experiments.budget import BYTES_PER_OBSERVATION, Workload
from simulator.experiments.replication import record_store
from simulator.experiments.runner import Progress
from simulator.experiments.search_driver import DriveSettings, Outcome, drive, finished_trials, open_study
from simulator.experiments.search_evaluation import (
    Score,
    TrialEvaluator,
    metric_matrix,
    plain_score,
    robust_score,
    world_means,
)
from simulator.experiments.search_front import REFERENCE, hypervolume, non_dominated, normalise
from simulator.experiments.search_space import lever_settings, trial_block, trial_policy
from simulator.scenario import Issue, Scenario, ScenarioError
from simulator.scenario.optimize_schema import OptimizeSpec

STORE_FOLDER = "replications"
JOURNAL = "study.journal"
REFERENCE_PRESETS = ("old_2014", "new_2015")


@dataclass(frozen=True)
class SearchSettings:
    """What the command line may change: trials, seed, plausible worlds, an early stop (tests)."""

    trials: int | None = None
    seed: int | None = None
    worlds: tuple[Market, ...] = ()
    worlds_info: dict[str, Any] | None = None
    stop_after: int | None = None


@dataclass
class SearchResult:
    scenario: Scenario
    spec: OptimizeSpec
    trials: pd.DataFrame
    pareto: pd.DataFrame
    references: pd.DataFrame
    hypervolume: pd.DataFrame
    blocks: dict[str, dict[str, Any]]
    policies: dict[str, Policy]
    info: dict[str, Any]
    finished: bool = True
    reference_scores: dict[str, Score] = field(default_factory=dict)


def optimize_spec(scenario: Scenario) -> OptimizeSpec:
    """The scenario's ``optimize:`` block, or a scenario error saying it is missing."""
    if scenario.optimize is None:
        raise ScenarioError([Issue(scenario.source, None, "optimize", [],
                                   "inmail-sim optimize needs an optimize: block (base, levers, objectives; see "
                                   "scenarios/design_2015.yaml and docs/optimize.md)")])
    return scenario.optimize


def reference_names(spec: OptimizeSpec) -> list[str]:
    """The presets evaluated like a trial: old_2014, new_2015 and the base if it is another."""
    return list(dict.fromkeys([*REFERENCE_PRESETS, spec.base]))


def replication_counts(spec: OptimizeSpec, worlds: int = 0) -> tuple[int, int, int]:
    """Replications of a trial at first, at most, and of a preset or Pareto policy (re-evaluation).

    Robust mode (``worlds`` > 0): ``robust.replications`` per world and trial, not grown; the final count is a
    whole number of rounds over the worlds, at least four per world."""
    if worlds:
        first = spec.robust_replications * worlds
        return first, first, max(4 * spec.robust_replications, math.ceil(spec.reevaluate / worlds)) * worlds
    return spec.replications, spec.max_replications, spec.reevaluate


def search_workload(scenario: Scenario, trials: int | None = None, worlds: int = 0) -> Workload:
    """An upper estimate of the replications a search runs, for the task and memory limits (``admit``):
    the presets and every trial at their most, and every trial re-evaluated as if all were on the front."""
    spec = optimize_spec(scenario)
    trials = trials or spec.trials
    _, most, final = replication_counts(spec, worlds)
    presets = len(reference_names(spec))
    tasks = presets * final + trials * most + trials * final
    breakdown = (f"{presets} presets x {final} + {trials:,} trials x up to {most} + up to {trials:,} Pareto "
                 f"policies x {final} replications (an upper estimate)")
    return Workload("optimize", scenario, tasks, breakdown,
                    "fewer --trials (or optimize.trials), a smaller optimize.max_replications or optimize.reevaluate",
                    result_bytes=tasks * BYTES_PER_OBSERVATION)


class _Problem:
    """The simulation behind the search: references, bounds, spreads, and trial scoring."""

    def __init__(self, scenario: Scenario, spec: OptimizeSpec, evaluator: TrialEvaluator) -> None:
        self.scenario, self.spec, self.evaluator = scenario, spec, evaluator
        self.metrics = list(dict.fromkeys([o.metric for o in spec.objectives]
                                          + [c.metric for c in spec.constraints]))
        self.worlds = len(evaluator.worlds)
        self.first, _, self.final = replication_counts(spec, self.worlds)
        names = reference_names(spec)
        policies = {f"ref-{n}": _named(preset(n), f"ref-{n}") for n in names}
        records = evaluator.records({label: (p, self.final) for label, p in policies.items()})
        values = {label[4:]: metric_matrix(recs, self.metrics) for label, recs in records.items()}
        base_means = dict(zip(self.metrics, values[spec.base].mean(axis=0), strict=True))
        self.bounds = [c.bound(float(base_means[c.metric])) for c in spec.constraints]
        self.world_bounds: list[np.ndarray] = []
        if self.worlds:  # a baseline bound holds world by world: factor x the base's mean in that world
            base_worlds = world_means(values[spec.base], self.worlds)
            self.world_bounds = [c.bound(base_worlds[:, self.metrics.index(c.metric)]) if c.relative
                                 else np.full(self.worlds, c.factor) for c in spec.constraints]
        self.spread = self._spreads(values, base_means)
        self.references = {name: self.score(v) for name, v in values.items()}
        self.values: dict[str, np.ndarray] = dict(values)
        """Replications x metrics of each preset (by name) and of each policy last scored (by label)."""

    def _spreads(self, values: Mapping[str, np.ndarray], base: Mapping[str, float]) -> dict[str, float]:
        """Per metric: the largest difference between the presets' means (10% of the base's value if none)."""
        means = np.array([v.mean(axis=0) for v in values.values()])
        out = {}
        for j, m in enumerate(self.metrics):
            spread = float(means[:, j].max() - means[:, j].min())
            out[m] = spread if spread > 0 else (0.1 * abs(base[m]) or 1.0)
        return out

    def score(self, values: np.ndarray) -> Score:
        spec = self.spec
        if self.worlds:
            return robust_score(values, self.metrics, spec.objectives, spec.constraints, self.world_bounds,
                                self.worlds,
                                spec.robust_quantile, spec.robust_share)
        return plain_score(values, self.metrics, spec.constraints, self.bounds)

    def settled(self, score: Score) -> bool:
        """The precision rule: objectives known to ``precision`` x spread and no constraint CI on its bound."""
        for o in self.spec.objectives:
            half = (score.high[o.metric] - score.low[o.metric]) / 2.0
            if not (math.isfinite(half) and half <= self.spec.precision * self.spread[o.metric]):
                return False
        for c, b in zip(self.spec.constraints, self.bounds, strict=True):
            if score.low[c.metric] < b < score.high[c.metric]:
                return False
        return True

    def scores(self, policies: Mapping[str, Policy], start: int, stop: int) -> dict[str, Score]:
        """Replications ``start``.. of each policy, more in batches of ``start`` while unsettled, up to ``stop``."""
        counts = dict.fromkeys(policies, start)
        while True:
            records = self.evaluator.records({k: (policies[k], n) for k, n in counts.items()})
            self.values |= {k: metric_matrix(recs, self.metrics) for k, recs in records.items()}
            scores = {k: self.score(self.values[k]) for k in records}
            grow = [k for k, s in scores.items() if counts[k] < stop and not self.worlds and not self.settled(s)]
            if not grow:
                return scores
            for k in grow:
                counts[k] = min(counts[k] + start, stop)

    def violations(self, score: Score) -> tuple[float, ...]:
        """Per constraint, how far it is from met (<= 0: met), relative to the bound's size."""
        out = []
        for c, b, value in zip(self.spec.constraints, score.constraint_bounds, score.constraint_values, strict=True):
            if self.worlds:
                out.append(b - value)
                continue
            scale = abs(b) or 1.0
            edge = score.high[c.metric] - b if c.op == "<=" else b - score.low[c.metric]
            out.append(edge / scale)
        return tuple(out)

    def evaluate(self, batch: Sequence[tuple[int, dict[str, Any]]]) -> list[Outcome]:
        """One generation: build each trial's policy, score them together, return outcomes in order."""
        policies: dict[str, Policy] = {}
        failed: dict[int, str] = {}
        for number, settings in batch:
            try:
                policies[label(number)] = trial_policy(label(number), self.spec.base, settings)
            except ValueError as exc:
                failed[number] = str(exc)
        before = self.evaluator.simulation_seconds
        scores = self.scores(policies, self.first, self.spec.max_replications) if policies else {}
        spent = self.evaluator.simulation_seconds - before
        reps = sum(s.replications for s in scores.values()) or 1
        outcomes = []
        for number, _ in batch:
            if number in failed:
                outcomes.append(Outcome(None, attrs={"error": failed[number], "seconds": 0.0}))
                continue
            s = scores[label(number)]
            values = tuple(s.means[o.metric] for o in self.spec.objectives)
            outcomes.append(Outcome(values, self.violations(s),
                                    {"score": s.to_json(), "seconds": spent * s.replications / reps}))
        return outcomes


def label(number: int) -> str:
    return f"trial{number:05d}"


def _named(policy: Policy, name: str) -> Policy:
    from dataclasses import replace

    return replace(policy, name=name)


def run_search(scenario: Scenario, executor: Executor, *, out: str | Path | None = None,
               settings: SearchSettings | None = None, progress: Progress | None = None) -> SearchResult:
    """Search the levers of ``scenario.optimize``; with ``out``, the study and every replication are kept there."""
    from simulator.experiments.search_tables import assemble

    started = time.perf_counter()
    settings = settings or SearchSettings()
    spec = optimize_spec(scenario)
    seed = settings.seed if settings.seed is not None else (spec.seed if spec.seed is not None
                                                            else scenario.root_seed)
    folder = Path(out) if out is not None else None
    store = record_store(folder / STORE_FOLDER) if folder is not None else None
    evaluator = TrialEvaluator(scenario.market, scenario.run, scenario.root_seed, executor, store,
                               settings.worlds, progress)
    problem = _Problem(scenario, spec, evaluator)
    study = open_study([o.direction for o in spec.objectives], str(folder / JOURNAL) if folder else None)
    trials = settings.trials or spec.trials
    drive_settings = DriveSettings(spec.levers, trials, spec.population, spec.sampler, seed, settings.stop_after)
    base = base_settings(spec)
    if base is not None and not study.trials:
        study.enqueue_trial(base)  # trial 0 is the base preset itself: how far is it from the front?
    finished = drive(study, drive_settings, problem.evaluate)
    told = finished_trials(study)
    return assemble(problem, told, finished, seed=seed, trials=trials, started=started, worlds=settings.worlds_info)


def base_settings(spec: OptimizeSpec) -> dict[str, Any] | None:
    """The base preset's values of the levers, if every one lies in its lever's range or choices."""
    from simulator.scenario.optimize_schema import base_value

    values = {}
    for lever in spec.levers:
        value = base_value(spec.base, lever.path)
        inside = (value in lever.choices if lever.kind == "choice"
                  else lever.low is not None and lever.high is not None and lever.low <= value <= lever.high)
        if not inside:
            return None
        values[lever.path] = value
    return values


def pareto_candidates(rows: pd.DataFrame, spec: OptimizeSpec) -> list[int]:
    """Row positions of the feasible trials no other feasible trial dominates on the objective means, and
    of the trial of the base preset's own rules (trial 0, when the levers' ranges hold it): re-evaluated
    with the others, it is either kept or dropped for a policy no worse on every objective."""
    feasible = rows[rows["feasible"].astype(bool)]
    if feasible.empty:
        return []
    points = minimisation(feasible, spec)
    keep = list(feasible.index[non_dominated(points)])
    if base_settings(spec) is not None and len(rows) and int(rows.iloc[0]["trial"]) == 0 \
            and bool(rows.iloc[0]["feasible"]):
        keep.append(rows.index[0])
    return list(dict.fromkeys(keep))


def minimisation(frame: pd.DataFrame, spec: OptimizeSpec) -> np.ndarray:
    """The objective means of ``frame``'s rows in minimization form (maximized ones negated)."""
    return np.column_stack([-o.sign * frame[f"{o.metric}_mean"].to_numpy(dtype=np.float64)
                            for o in spec.objectives])


def hypervolume_curve(trials: pd.DataFrame, references: pd.DataFrame, spec: OptimizeSpec
                      ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``trial, hypervolume`` of the feasible trials up to each trial; objectives normalised to [0, 1] by the
    range of the feasible trials' and the presets' means (in minimization form), reference point 1.1."""
    feasible = trials[trials["feasible"].astype(bool)]
    pool = pd.concat([feasible, references], ignore_index=True)
    if pool.empty:
        return pd.DataFrame({"trial": trials["trial"], "hypervolume": 0.0}), {}
    z = minimisation(pool, spec)
    low, high = z.min(axis=0), z.max(axis=0)
    ref = np.full(len(spec.objectives), REFERENCE)
    values = []
    points = minimisation(trials, spec) if len(trials) else np.empty((0, len(spec.objectives)))
    ok = trials["feasible"].astype(bool).to_numpy()
    for k in range(len(trials)):
        chosen = points[: k + 1][ok[: k + 1]]
        values.append(hypervolume(normalise(chosen, low, high), ref) if len(chosen) else 0.0)
    rule = {"space": "minimization (maximized objectives negated)",
            "low": dict(zip([o.metric for o in spec.objectives], low.tolist(), strict=True)),
            "high": dict(zip([o.metric for o in spec.objectives], high.tolist(), strict=True)),
            "normalised": "(z - low) / (high - low) over the feasible trials and the presets",
            "reference_point": REFERENCE}
    return pd.DataFrame({"trial": trials["trial"].to_numpy(), "hypervolume": values}), rule


def pareto_rows(problem: _Problem, trials: pd.DataFrame, candidates: Sequence[int]
                ) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """Re-evaluate the candidate rows on ``problem.final`` replications (the first ones come back from the
    store), keep the feasible non-dominated ones: ``pareto.csv`` rows (``pareto_01``, ...) and policy blocks."""
    from simulator.experiments.search_tables import score_columns

    spec = problem.spec
    settings = {int(trials.loc[i, "trial"]): {lv.path: trials.loc[i, lv.path] for lv in spec.levers}
                for i in candidates}
    settings = {n: lever_settings(s, spec.levers) for n, s in settings.items()}
    unique: dict[str, int] = {}
    for n, s in settings.items():
        unique.setdefault(repr(sorted(s.items())), n)
    kept = list(unique.values())
    policies = {label(n): trial_policy(label(n), spec.base, settings[n]) for n in kept}
    scores = problem.scores(policies, problem.final, problem.final) if policies else {}
    rows = []
    for n in kept:
        score = scores[label(n)]
        row = trials[trials["trial"] == n].iloc[0].to_dict()
        row |= score_columns(score, spec)
        row["replications"] = int(trials.loc[trials["trial"] == n, "replications"].iloc[0])
        row["reevaluated_replications"] = score.replications
        rows.append(row)
    frame = pd.DataFrame(rows, columns=[*trials.columns, "reevaluated_replications"])
    frame = frame[frame["feasible"].astype(bool)].reset_index(drop=True)
    if len(frame):
        frame = frame.iloc[non_dominated(minimisation(frame, spec))].reset_index(drop=True)
    names = [f"pareto_{k + 1:02d}" for k in range(len(frame))]
    frame.insert(0, "name", names)
    blocks = {name: trial_block(spec.base, lever_settings({lv.path: row[lv.path] for lv in spec.levers},
                                                          spec.levers))
              for name, (_, row) in zip(names, frame.iterrows(), strict=True)}
    return frame, blocks


__all__ = ["SearchResult", "SearchSettings", "optimize_spec", "run_search", "search_workload", "trial_block"]


DEFAULT_WORLD_COUNT = 8
"""Worlds of a robust search when ``--world-count`` is not given (every trial runs in each)."""


def search_worlds(scenario: Scenario, where: str, count: int | None = None) -> tuple[tuple[Market, ...],
                                                                                     dict[str, Any]]:
    """The markets of a robust search: ``where`` is ``prior`` (the ``uncertain:`` block, Latin hypercube) or a
    posterior.csv (systematic resample by weight), ``count`` worlds, as ``run --worlds`` draws them.

    Raises :class:`~simulator.experiments.worlds.WorldsFileError` for a bad file or count (bad input).
    """
    from simulator.experiments.worlds import PRIOR, plan_worlds, prior_worlds, read_posterior, world_markets

    count = count or DEFAULT_WORLD_COUNT
    world_set = (prior_worlds(scenario.uncertain, count, scenario.root_seed) if where == PRIOR
                 else read_posterior(where, scenario.uncertain))
    plan = plan_worlds(world_set, count, 2, scenario.root_seed)
    markets = world_markets(scenario.market, scenario.uncertain, plan)
    spec = optimize_spec(scenario)
    q = spec.robust_quantile if spec.robust_quantile is not None else 0.25
    info = {"source": world_set.source, "count": count,
            "score": {"maximize": f"the {q:g} quantile of the world means",
                      "minimize": f"the {1 - q:g} quantile of the world means",
                      "constraints": f"met in at least {spec.robust_share:g} of the worlds",
                      "replications_per_world": spec.robust_replications,
                      "rule": "replication i runs in world i mod count"},
            "sha256": world_set.digest()}
    return tuple(markets[2 * w] for w in range(count)), info
