"""discover judges a condition per world: the replications of one world draw are pooled by their mean."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from simulator.experiments.discovery import discover
from tests.discovery_helpers import fabricate_run


def _two_replications_per_world(folder: Path) -> Path:
    """Double every world of the fabricated run: replications 2w and 2w+1 run in world w.

    In the copy, the first replication of a world says the new policy gains 0.03 and the second that
    it loses 0.01: the world's mean gain (+0.01) decides, so the condition "< 0" holds in no world.
    """
    fabricate_run(folder, n=60)
    worlds = pd.read_csv(folder / "worlds.csv")
    outcomes = pd.read_csv(folder / "world_outcomes.csv")
    doubled = pd.concat([worlds, worlds], ignore_index=True).sort_values("replication", kind="stable")
    doubled["replication"] = np.arange(len(doubled))
    rows = []
    for policy, shift in (("old", (0.0, 0.0)), ("new", (0.03, -0.01))):
        mine = outcomes[outcomes["policy"] == policy].set_index("replication").loc[worlds["replication"]]
        for k in (0, 1):
            part = mine.reset_index(drop=True).copy()
            part["replication"] = 2 * np.arange(len(part)) + k
            base = outcomes[outcomes["policy"] == "old"].set_index("replication").loc[worlds["replication"]]
            part["response_rate"] = base["response_rate"].to_numpy() + shift[k]
            rows.append(part)
    pd.concat(rows, ignore_index=True).to_csv(folder / "world_outcomes.csv", index=False)
    doubled.to_csv(folder / "worlds.csv", index=False)
    return folder


def test_replications_of_one_world_are_one_world(tmp_path: Path) -> None:
    run = _two_replications_per_world(tmp_path / "run")
    res = discover(run, where="diff.response_rate < 0", resamples=5)
    assert res.n_worlds == 60  # 120 replications in 60 worlds
    assert res.n_true == 0  # each world's mean difference is +0.01, though half its replications lose
    assert set(res.data["replications"]) == {2}
    more = discover(run, where="diff.response_rate > 0.005", resamples=5)
    assert more.n_true == 60
