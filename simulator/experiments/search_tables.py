"""The tables of a finished (or stopped) search: trials, presets, Pareto set, hypervolume, search.json.

Column layout (the output folder contract, docs/optimize.md): ``trial, state, <lever paths>``, then per
objective metric M ``M_mean, M_ci_low, M_ci_high``, per constraint i ``constraint_<i>_value,
constraint_<i>_bound, constraint_<i>_met``, then ``feasible, replications, worlds, seconds``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from simulator.experiments.search_evaluation import Score
from simulator.experiments.search_space import lever_settings, trial_block, trial_policy

if TYPE_CHECKING:
    import optuna

    from simulator.experiments.search import SearchResult, _Problem
    from simulator.scenario.optimize_schema import OptimizeSpec


def score_columns(score: Score | None, spec: OptimizeSpec) -> dict[str, Any]:
    """The objective and constraint columns of one row (NaN / False for a failed trial)."""
    nan = float("nan")
    row: dict[str, Any] = {}
    for o in spec.objectives:
        row[f"{o.metric}_mean"] = score.means[o.metric] if score else nan
        row[f"{o.metric}_ci_low"] = score.low[o.metric] if score else nan
        row[f"{o.metric}_ci_high"] = score.high[o.metric] if score else nan
    for i in range(len(spec.constraints)):
        row[f"constraint_{i}_value"] = score.constraint_values[i] if score else nan
        row[f"constraint_{i}_bound"] = score.constraint_bounds[i] if score else nan
        row[f"constraint_{i}_met"] = bool(score.constraint_met[i]) if score else False
    row["feasible"] = bool(score.feasible) if score else False
    row["replications"] = score.replications if score else 0
    row["worlds"] = score.worlds if score else 0
    return row


def trial_rows(told: Sequence[optuna.trial.FrozenTrial], spec: OptimizeSpec) -> pd.DataFrame:
    """One row per told trial, by trial number."""
    rows = []
    for t in sorted(told, key=lambda t: t.number):
        raw = t.user_attrs.get("score")
        score = Score.from_json(raw) if raw else None
        state = "failed" if score is None else ("complete" if score.feasible else "infeasible")
        rows.append({"trial": t.number, "state": state, **lever_settings(t.params, spec.levers),
                     **score_columns(score, spec), "seconds": float(t.user_attrs.get("seconds", 0.0))})
    columns = ["trial", "state", *(lever.path for lever in spec.levers),
               *score_columns(None, spec), "seconds"]
    return pd.DataFrame(rows, columns=columns)


def reference_rows(problem: _Problem) -> pd.DataFrame:
    rows = [{"name": name, **score_columns(score, problem.spec)} for name, score in problem.references.items()]
    return pd.DataFrame(rows)


def assemble(problem: _Problem, told: Sequence[optuna.trial.FrozenTrial], finished: bool, *, seed: int,
             trials: int, started: float, worlds: dict[str, Any] | None) -> SearchResult:
    """Re-evaluate the Pareto candidates (if the search finished) and build every table."""
    from simulator.experiments.search import (
        SearchResult,
        hypervolume_curve,
        label,
        pareto_candidates,
        pareto_rows,
    )

    spec = problem.spec
    frame = trial_rows(told, spec)
    references = reference_rows(problem)
    curve, hv_rule = hypervolume_curve(frame, references, spec)
    pareto = pd.DataFrame(columns=["name", *frame.columns, "reevaluated_replications"])
    blocks: dict[str, dict[str, Any]] = {}
    policies = {name: trial_policy(name, name, {}) for name in problem.references}
    if finished:
        pareto, blocks = pareto_rows(problem, frame, pareto_candidates(frame, spec))
        for _, row in pareto.iterrows():
            policies[str(row["name"])] = trial_policy(str(row["name"]), spec.base, _row_settings(row, spec))
    best = best_under_constraints(pareto, spec)
    closest = closest_to_new_2015(problem, pareto, references, hv_rule)
    total = time.perf_counter() - started
    simulation = problem.evaluator.simulation_seconds
    info = {
        "scenario": problem.scenario.name, "base": spec.base,
        "levers": [{"path": lv.path, "kind": lv.kind, "low": lv.low, "high": lv.high,
                    "choices": list(lv.choices) or None} for lv in spec.levers],
        "objectives": [{"metric": o.metric, "direction": o.direction} for o in spec.objectives],
        "constraints": [{"text": c.text, "metric": c.metric, "op": c.op, "bound": b,
                         **({"bound_per_world": problem.world_bounds[i].tolist()} if problem.worlds else {})}
                        for i, (c, b) in enumerate(zip(spec.constraints, problem.bounds, strict=True))],
        "sampler": {"name": "NSGAIISampler" if spec.sampler == "nsga2" else "TPESampler",
                    "population": spec.population, "library": "optuna",
                    "seeding": "generation g's sampler is seeded with the g-th draw of design_rng(seed, "
                               "PURPOSE_SEARCH=7); trials are asked a generation at a time and told in trial order"},
        "trials": trials, "trials_told": len(frame), "finished": finished, "seed": seed,
        "root_seed": problem.scenario.root_seed,
        "worlds": worlds,
        "precision": precision_rule(problem),
        "replications": {"simulated": problem.evaluator.computed, "read_back": problem.evaluator.reused,
                         "trial_total": int(frame["replications"].sum()) if len(frame) else 0},
        "hypervolume": hv_rule,
        "seconds": {"total": round(total, 3), "simulation": round(simulation, 3),
                    "search_overhead": round(total - simulation, 3)},
        "best_under_constraints": best,
        "closest_to_new_2015": closest,
        "replication_files": f"replications/r<index>-{label(0)}.npz (trial 0), r<index>-ref-<preset>.npz",
    }
    return SearchResult(problem.scenario, spec, frame, pareto, references, curve, blocks, policies, info, finished,
                        dict(problem.references))


def precision_rule(problem: _Problem) -> dict[str, Any]:
    """The stated precision rule of search.json."""
    spec = problem.spec
    if problem.worlds:
        return {"rule": f"robust: {spec.robust_replications} replication(s) per world and trial (replication i "
                        f"runs in world i mod {problem.worlds}); objective = the "
                        f"{spec.robust_quantile or 0.25:g} quantile of the world means of a maximized metric "
                        f"(1 - that of a minimized one), CI from order statistics; a constraint is met in a world "
                        f"when its world mean meets it (a baseline bound: factor x the base preset's mean in that "
                        f"world), and overall in >= {spec.robust_share:g} of the worlds",
                "reevaluated_replications": problem.final}
    return {"rule": f"start with {spec.replications} replications (seeds replication_seed(root_seed, i), i = 0..; "
                    f"the same for every trial), add {spec.replications} at a time while an objective's 95% CI "
                    f"half-width exceeds {spec.precision:g} x its spread or a constraint's CI contains its bound, "
                    f"up to {spec.max_replications}; a constraint is met only when its CI bound meets it",
            "fraction": spec.precision, "start": spec.replications, "max": spec.max_replications,
            "spread": problem.spread, "spread_rule": "largest difference between the presets' means (old_2014, "
                                                     "new_2015, base) on reevaluated replications",
            "reevaluated_replications": problem.final}


def closest_to_new_2015(problem: _Problem, pareto: pd.DataFrame, references: pd.DataFrame,
                        hv_rule: dict[str, Any]) -> dict[str, Any] | None:
    """How far new_2015 is from the front (:mod:`.search_distance`); adds ``dominates_new_2015`` and
    ``distance_to_new_2015`` to ``pareto`` (in place)."""
    from simulator.experiments.search import label
    from simulator.experiments.search_distance import COMPARED_WITH, distance_to_front

    values = None
    if not problem.worlds:  # robust scores are quantiles: a paired mean difference is not their CI
        values = {str(row["name"]): problem.values[label(int(row["trial"]))] for _, row in pareto.iterrows()
                  if label(int(row["trial"])) in problem.values}
        if COMPARED_WITH in problem.values:
            values[COMPARED_WITH] = problem.values[COMPARED_WITH]
    found = distance_to_front(pareto, references, problem.spec, hv_rule, values, problem.metrics)
    if found is None:
        return None
    distances = found.pop("distances")
    pareto[f"dominates_{COMPARED_WITH}"] = [name in found["dominated_by"] for name in pareto["name"]]
    pareto[f"distance_to_{COMPARED_WITH}"] = [distances[str(name)] for name in pareto["name"]]
    return found


def _row_settings(row: pd.Series, spec: OptimizeSpec) -> dict[str, Any]:
    return lever_settings({lv.path: row[lv.path] for lv in spec.levers}, spec.levers)


def best_under_constraints(pareto: pd.DataFrame, spec: OptimizeSpec) -> list[dict[str, str]]:
    """Per objective, the Pareto policy best at it (every Pareto policy meets every constraint)."""
    text = " and ".join(c.text for c in spec.constraints) or "no constraints"
    out: list[dict[str, str]] = []
    if pareto.empty:
        return out
    for o in spec.objectives:
        column = pareto[f"{o.metric}_mean"].astype(float)
        name = pareto.loc[column.idxmax() if o.sign > 0 else column.idxmin(), "name"]
        out.append({"constraints": text, "objective": f"{o.direction} {o.metric}", "name": str(name)})
    return out


__all__ = ["assemble", "trial_block"]
