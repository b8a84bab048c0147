"""A small hand-made ``inmail-sim optimize`` output folder, written per the output folder contract.

The readers (report, notebook 06, bench_search) are tested against it without running a search:
three levers, two objectives (maximize response_rate, minimize net_credit_burn), one constraint, six
trials of which two form the Pareto set, and the presets old_2014 and new_2015 as references.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
LEVERS: list[dict[str, Any]] = [
    {"path": "refund.window_days", "kind": "int", "low": 7, "high": 120, "choices": None},
    {"path": "refund.kind", "kind": "choice", "low": None, "high": None, "choices": ["on_silence", "on_response"]},
    {"path": "threshold.min_rate", "kind": "float", "low": 0.05, "high": 0.25, "choices": None},
]
OBJECTIVES: list[dict[str, str]] = [{"metric": "response_rate", "direction": "maximize"},
                                    {"metric": "net_credit_burn", "direction": "minimize"}]
CONSTRAINT: dict[str, Any] = {"text": "net_credit_burn <= 1.1 * baseline", "metric": "net_credit_burn", "op": "<=",
                              "bound": 55_000.0}
SECONDS = {"total": 40.0, "simulation": 36.0, "search_overhead": 4.0}

# trial, state, window, kind, min_rate, response rate (mean, half CI), burn (mean, half CI), feasible
TRIALS: list[tuple[int, str, int, str, float, float, float, float, float, bool]] = [
    (0, "complete", 90, "on_response", 0.15, 0.231, 0.004, 48_000.0, 900.0, True),
    (1, "complete", 30, "on_response", 0.10, 0.244, 0.003, 51_000.0, 800.0, True),
    (2, "infeasible", 7, "on_silence", 0.20, 0.205, 0.004, 61_000.0, 900.0, False),
    (3, "complete", 60, "on_response", 0.22, 0.238, 0.004, 46_500.0, 700.0, True),
    (4, "complete", 120, "on_silence", 0.05, 0.201, 0.004, 53_000.0, 900.0, True),
    (5, "failed", 45, "on_response", 0.12, float("nan"), float("nan"), float("nan"), float("nan"), False),
]
PARETO_TRIALS = (1, 3)
REFERENCES: list[tuple[str, float, float, float, float]] = [
    ("old_2014", 0.210, 0.004, 52_000.0, 900.0),
    ("new_2015", 0.232, 0.004, 50_000.0, 900.0),
]


def _objective_cells(rate: float, rate_half: float, burn: float, burn_half: float) -> dict[str, float]:
    return {"response_rate_mean": rate, "response_rate_ci_low": rate - rate_half,
            "response_rate_ci_high": rate + rate_half, "net_credit_burn_mean": burn,
            "net_credit_burn_ci_low": burn - burn_half, "net_credit_burn_ci_high": burn + burn_half}


def _constraint_cells(burn: float, burn_half: float) -> dict[str, Any]:
    value = burn + burn_half
    return {"constraint_0_value": value, "constraint_0_bound": CONSTRAINT["bound"],
            "constraint_0_met": bool(value <= CONSTRAINT["bound"])}


def trials_frame() -> pd.DataFrame:
    """``trials.csv`` of the fixture."""
    rows = []
    for trial, state, window, kind, min_rate, rate, rate_half, burn, burn_half, feasible in TRIALS:
        rows.append({"trial": trial, "state": state, "refund.window_days": window, "refund.kind": kind,
                     "threshold.min_rate": min_rate, **_objective_cells(rate, rate_half, burn, burn_half),
                     **_constraint_cells(burn, burn_half), "feasible": feasible, "replications": 4 + trial % 3,
                     "worlds": 0, "seconds": 5.0 + trial})
    return pd.DataFrame(rows)


def pareto_frame() -> pd.DataFrame:
    """``pareto.csv``: the Pareto trials re-evaluated (slightly moved means, narrower CIs)."""
    trials = trials_frame().set_index("trial").loc[list(PARETO_TRIALS)].reset_index()
    trials.insert(0, "name", [f"pareto_{i + 1:02d}" for i in range(len(trials))])
    trials["reevaluated_replications"] = 20
    return trials


def write_search_folder(folder: Path, *, figures: bool = True, base: str = "new_2015") -> Path:
    """Write the fixture optimize folder into ``folder`` (created) and return it."""
    folder.mkdir(parents=True, exist_ok=True)
    trials_frame().to_csv(folder / "trials.csv", index=False)
    pareto = pareto_frame()
    pareto.to_csv(folder / "pareto.csv", index=False)
    references = pd.DataFrame([{"name": name, **_objective_cells(*values), **_constraint_cells(*values[2:])}
                               for name, *values in REFERENCES])
    references.to_csv(folder / "references.csv", index=False)
    pd.DataFrame({"trial": range(len(TRIALS)), "hypervolume": [0.10, 0.30, 0.30, 0.52, 0.52, 0.52]}).to_csv(
        folder / "hypervolume.csv", index=False)
    policies = {row["name"]: {"preset": base, "refund": {"window_days": int(row["refund.window_days"]),
                                                         "kind": row["refund.kind"]},
                              "threshold": {"min_rate": float(row["threshold.min_rate"])}}
                for _, row in pareto.iterrows()}
    (folder / "pareto_policies.yaml").write_text(yaml.safe_dump({"policies": policies}, sort_keys=False))
    meta = {"scenario": "scenarios/design_2015.yaml", "base": base, "levers": LEVERS, "objectives": OBJECTIVES,
            "constraints": [CONSTRAINT], "sampler": {"name": "NSGAIISampler", "population": 3, "library": "optuna"},
            "trials": len(TRIALS), "trials_told": len(TRIALS), "finished": True, "seed": 7, "worlds": None,
            "precision": {"rule": "start with 4 replications, add 4 while unsettled, up to 12", "fraction": 0.1},
            "seconds": SECONDS,
            "best_under_constraints": [
                {"constraints": CONSTRAINT["text"], "objective": "maximize response_rate", "name": "pareto_01"},
                {"constraints": "response_rate >= 0.30", "objective": "minimize net_credit_burn", "name": "new_2015"}]}
    (folder / "search.json").write_text(json.dumps(meta, indent=2))
    if figures:
        (folder / "pareto.png").write_bytes(PNG)
        (folder / "convergence.png").write_bytes(PNG)
    return folder
