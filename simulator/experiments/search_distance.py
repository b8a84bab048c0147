"""How far a preset (new_2015) is from the Pareto front a search found.

A front of a hundred policies answers "what is possible", not "what should change": an analyst
asks which policies beat the current rule and by how much.  Three answers, all on the re-evaluated
means of ``pareto.csv`` and ``references.csv`` (the same seeds):

* ``dominated_by``: the Pareto policies no worse than the preset on every objective and better on
  one (minimization form, as :func:`~simulator.experiments.search_front.dominates`);
* ``nearest``: the Pareto policy nearest to the preset in the normalised objective space of the
  hypervolume (each objective scaled by the range of the feasible trials and presets), and that
  distance - 0 only when the preset is on the front;
* ``gain``: the largest gain in the first objective among the Pareto policies no worse than the preset
  on the objectives of the other direction (with ``maximize responses, minimize net_credit_burn``:
  the most extra answers at the preset's credit burn or lower), with the 95% t-interval of the paired
  differences over the common replications (replication i of both runs on the same seed).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from simulator.experiments.search_front import dominates, normalise
from simulator.experiments.statistics import t_interval
from simulator.scenario.optimize_schema import Objective, OptimizeSpec

COMPARED_WITH = "new_2015"
"""The preset the front is measured against (the rule in force)."""


def _points(frame: pd.DataFrame, objectives: tuple[Objective, ...]) -> np.ndarray:
    return np.column_stack([-o.sign * frame[f"{o.metric}_mean"].to_numpy(dtype=np.float64) for o in objectives])


def budget_objectives(spec: OptimizeSpec) -> tuple[Objective, ...]:
    """The objectives the first one is traded against: those of the other direction (else all the others)."""
    first = spec.objectives[0]
    other = tuple(o for o in spec.objectives[1:] if o.direction != first.direction)
    return other or spec.objectives[1:]


def distance_to_front(pareto: pd.DataFrame, references: pd.DataFrame, spec: OptimizeSpec,
                      hv_rule: Mapping[str, Any], values: Mapping[str, np.ndarray] | None = None,
                      metrics: list[str] | None = None, reference: str = COMPARED_WITH) -> dict[str, Any] | None:
    """``dominated_by``, ``nearest`` and ``gain`` of ``reference`` against the front (None: nothing to compare).

    ``values`` maps the Pareto names and ``reference`` to their replications x ``metrics`` matrices (same
    seeds, row i = replication i); without them the gain has no CI."""
    if pareto.empty or "name" not in references or reference not in set(references["name"]):
        return None
    objectives = spec.objectives
    ref_row = references[references["name"] == reference].iloc[0]
    ref = _points(ref_row.to_frame().T, objectives)[0]
    front = _points(pareto, objectives)
    names = [str(n) for n in pareto["name"]]
    pool = np.vstack([front, _points(references, objectives)])
    low = np.array([hv_rule.get("low", {}).get(o.metric, np.nan) for o in objectives], dtype=np.float64)
    high = np.array([hv_rule.get("high", {}).get(o.metric, np.nan) for o in objectives], dtype=np.float64)
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
        low, high = pool.min(axis=0), pool.max(axis=0)
    distance = np.sqrt(((normalise(front, low, high) - normalise(ref[None, :], low, high)) ** 2).sum(axis=1))
    nearest = int(np.argmin(distance))
    return {
        "reference": reference,
        "dominated_by": [n for n, p in zip(names, front, strict=True) if dominates(p, ref)],
        "nearest": {"name": names[nearest], "distance": float(distance[nearest]),
                    "space": "objective means in minimization form, normalised as the hypervolume (search.json "
                             "hypervolume.low/high); Euclidean"},
        "distances": dict(zip(names, distance.tolist(), strict=True)),
        "gain": _gain(pareto, ref_row, spec, values, metrics, reference),
    }


def _gain(pareto: pd.DataFrame, ref_row: pd.Series, spec: OptimizeSpec, values: Mapping[str, np.ndarray] | None,
          metrics: list[str] | None, reference: str) -> dict[str, Any]:
    """The largest gain in the first objective at the reference's level of the budget objectives or better."""
    first, budget = spec.objectives[0], budget_objectives(spec)
    at = " and ".join(f"{o.metric} {'<=' if o.sign < 0 else '>='} {reference}'s" for o in budget) or "anywhere"
    rule = {"objective": f"{first.direction} {first.metric}", "at": at}
    ok = np.ones(len(pareto), dtype=bool)
    for o in budget:
        column = pareto[f"{o.metric}_mean"].to_numpy(dtype=np.float64)
        ok &= (o.sign * column) >= o.sign * float(ref_row[f"{o.metric}_mean"])
    if not ok.any():
        return rule | {"name": None, "note": f"no Pareto policy is at {at}"}
    column = first.sign * pareto[f"{first.metric}_mean"].to_numpy(dtype=np.float64)
    best = int(np.flatnonzero(ok)[np.argmax(column[ok])])
    name = str(pareto.iloc[best]["name"])
    policy_mean = float(pareto.iloc[best][f"{first.metric}_mean"])
    ref_mean = float(ref_row[f"{first.metric}_mean"])
    out = rule | {"name": name, "policy_mean": policy_mean, "reference_mean": ref_mean,
                  "difference": policy_mean - ref_mean,
                  "relative": (policy_mean - ref_mean) / ref_mean if ref_mean else None,
                  "ci_low": None, "ci_high": None, "ci": "not computed (robust mode or no replications at hand)"}
    if values is not None and metrics is not None and name in values and reference in values:
        j = metrics.index(first.metric)
        n = min(len(values[name]), len(values[reference]))
        mean, low, high = t_interval(values[name][:n, j] - values[reference][:n, j])
        out |= {"difference": float(mean), "ci_low": float(low), "ci_high": float(high),
                "ci": f"95% t-interval of the paired differences over {n} common replications (same seeds)"}
    return out
