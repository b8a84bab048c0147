"""A fabricated run folder with worlds (the COMMON16 format), for the discovery tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from simulator.core.metrics import METRIC_NAMES

PARAMETERS = ("personalization_effect", "check_interval_median", "noise")


def fabricate_run(folder: Path, n: int = 400, seed: int = 1, policies: tuple[str, ...] = ("old", "new"),
                  flip: str = "planted") -> Path:
    """``n`` worlds; ``new`` loses on response rate (with probability 0.9) when personalization_effect < 0.7
    and check_interval_median > 4, and wins elsewhere (with probability 0.9). ``flip``: "planted", "never",
    "always"."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    worlds = pd.DataFrame({
        "replication": np.arange(n), "world": rng.integers(0, 10 * n, n),
        "personalization_effect": rng.uniform(0.4, 1.2, n),
        "check_interval_median": rng.uniform(1.0, 8.0, n),
        "noise": rng.uniform(0.0, 1.0, n),
    })
    inside = (worlds["personalization_effect"] < 0.7) & (worlds["check_interval_median"] > 4)
    loses = rng.uniform(size=n) < np.where(inside, 0.9, 0.1)
    if flip != "planted":
        loses[:] = flip == "always"
    base = rng.uniform(0.10, 0.20, n)  # the baseline's response rate; another policy's is base -/+ 0.01
    rows = []
    for policy in policies:
        metrics = {m: rng.uniform(1, 100, n) for m in METRIC_NAMES}
        metrics["response_rate"] = base if policy == policies[0] else base + np.where(loses, -0.01, 0.01)
        rows.append(pd.DataFrame({"replication": worlds["replication"], "world": worlds["world"], "policy": policy,
                                  **metrics}))
    outcomes = pd.concat(rows, ignore_index=True)
    worlds.to_csv(folder / "worlds.csv", index=False)
    outcomes.to_csv(folder / "world_outcomes.csv", index=False)
    manifest = {"package": "inmail-sim", "baseline": policies[0], "policies": list(policies), "root_seed": 7,
                "worlds": {"source": "prior", "count": n, "parameters": list(PARAMETERS)}}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return folder
