"""World sets: a posterior file checked row by row, the prior's Latin hypercube, the resampling rule,
and the market of each replication."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scenario_helpers import tiny

from simulator.experiments.design import PURPOSE_WORLDS, design_rng
from simulator.experiments.worlds import (
    PRIOR,
    WorldsFileError,
    plan_worlds,
    prior_worlds,
    read_posterior,
    systematic_resample,
    world_markets,
)
from simulator.scenario import load_scenario
from simulator.scenario.uncertain import Prior, UncertainParameter

PARAMETERS = (
    UncertainParameter("personalization_effect", (("market.response.personalization_effect", 1.0),),
                       Prior("uniform", 0.5, 2.4)),
    UncertainParameter("fatigue", (("market.fatigue.sensitivity", 1.0),), Prior("loguniform", 0.02, 0.2)),
)


def posterior(tmp_path: Path, text: str, name: str = "posterior.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


GOOD = "world,weight,personalization_effect,fatigue\n7,0.5,1.0,0.05\n8,0.0,2.0,0.1\n9,1.5,1.5,0.08\n"


def test_a_good_posterior_is_read_with_normalised_weights(tmp_path: Path) -> None:
    ws = read_posterior(posterior(tmp_path, GOOD), PARAMETERS)
    assert read_posterior(tmp_path, PARAMETERS).digest() == ws.digest()  # the folder: its posterior.csv
    assert ws.names == ("personalization_effect", "fatigue")
    assert ws.ids == (7, 8, 9)
    assert ws.weights.tolist() == [0.25, 0.0, 0.75]
    assert ws.values.tolist() == [[1.0, 0.05], [2.0, 0.1], [1.5, 0.08]]
    # the columns may come in any order
    shuffled = "fatigue,world,personalization_effect,weight\n0.05,7,1.0,0.5\n0.1,8,2.0,0.0\n0.08,9,1.5,1.5\n"
    assert read_posterior(posterior(tmp_path, shuffled, "b.csv"), PARAMETERS).digest() == ws.digest()


@pytest.mark.parametrize(("text", "expected"), [
    ("world,weight,personalization_effect\n1,1,1.0\n", r"missing column fatigue; expected the columns world, "
                                                       r"weight, personalization_effect, fatigue"),
    ("world,personalization_effect,fatigue\n1,1.0,0.1\n", "missing column weight"),
    ("world,weight,personalization_effect,fatigue,colour\n1,1,1.0,0.1,red\n", "unknown column colour"),
    ("world,weight,personalization_effect,fatigue\n1,1,nan,0.1\n2,1,1.0,0.1\n",
     r"posterior.csv:2: world 1, column personalization_effect = nan: not a finite number"),
    ("world,weight,personalization_effect,fatigue\n1,1,1.0,inf\n", r":2: world 1, column fatigue = inf: not a finite"),
    ("world,weight,personalization_effect,fatigue\n1,1,1.0,abc\n", r"column fatigue = abc: not a finite number"),
    ("world,weight,personalization_effect,fatigue\n1,1,1.0,0.1\n2,-0.5,1.0,0.1\n",
     r"posterior.csv:3: world 2, column weight = -0.5: a weight must be >= 0"),
    ("world,weight,personalization_effect,fatigue\n1,,1.0,0.1\n", r"column weight = nan: not a finite number"),
    ("world,weight,personalization_effect,fatigue\n1,0,1.0,0.1\n2,0,1.0,0.1\n",
     r"column weight: every weight is 0"),
    ("world,weight,personalization_effect,fatigue\n1,1,3.0,0.1\n",
     r"column personalization_effect = 3.0: outside the support of its prior \(uniform: \[0.5, 2.4\]\)"),
    ("world,weight,personalization_effect,fatigue\n1,1,1.0,0.1\n1,1,1.0,0.1\n", "world ids must be present and unique"),
    ("world,weight,personalization_effect,fatigue\n", "no worlds"),
    ("", "cannot be read as a CSV file"),
])
def test_a_bad_posterior_names_the_file_line_and_column(tmp_path: Path, text: str, expected: str) -> None:
    path = posterior(tmp_path, text)
    with pytest.raises(WorldsFileError, match=expected) as info:
        read_posterior(path, PARAMETERS)
    assert str(path) in str(info.value)


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    text = "world,weight,personalization_effect,fatigue\n1,-1,nan,0.1\n2,1,1.0,5\n"
    with pytest.raises(WorldsFileError) as info:
        read_posterior(posterior(tmp_path, text), PARAMETERS)
    message = str(info.value)
    assert "3 problems" in message and ":2: world 1, column weight" in message
    assert ":2: world 1, column personalization_effect" in message and ":3: world 2, column fatigue = 5" in message


def test_a_missing_or_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(WorldsFileError, match=r"--worlds .*nothere.csv: no such file"):
        read_posterior(tmp_path / "nothere.csv", PARAMETERS)
    with pytest.raises(WorldsFileError, match=r"posterior.csv: no such file"):
        read_posterior(tmp_path, PARAMETERS)  # a folder without posterior.csv
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"world,weight\n\xff\xfe\x00\x81,1\n")
    with pytest.raises(WorldsFileError, match=r"binary.csv: cannot be read as a CSV file"):
        read_posterior(binary, PARAMETERS)
    with pytest.raises(WorldsFileError, match=r"no uncertain: block"):
        read_posterior(posterior(tmp_path, GOOD), ())


def test_systematic_resampling_is_deterministic_proportional_and_skips_zero_weights() -> None:
    weights = np.array([0.0, 0.5, 0.0, 0.25, 0.25, 0.0])
    rows = systematic_resample(weights, 40, design_rng(11, PURPOSE_WORLDS))
    assert rows.tolist() == systematic_resample(weights, 40, design_rng(11, PURPOSE_WORLDS)).tolist()
    counts = np.bincount(rows, minlength=6)
    assert counts.tolist() == [0, 20, 0, 10, 10, 0]  # systematic: within one of p W, here exact
    uneven = systematic_resample(np.array([1.0, 2.0, 4.0]), 10, design_rng(3, PURPOSE_WORLDS))
    assert all(abs(c - e) < 1 for c, e in zip(np.bincount(uneven, minlength=3), [10 / 7, 20 / 7, 40 / 7],
                                              strict=True))


def test_prior_worlds_fill_the_priors_one_point_per_stratum() -> None:
    ws = prior_worlds(PARAMETERS, 20, root_seed=5)
    assert ws.source == PRIOR and ws.ids == tuple(range(20)) and ws.values.shape == (20, 2)
    assert ws.digest() == prior_worlds(PARAMETERS, 20, root_seed=5).digest()
    assert ws.digest() != prior_worlds(PARAMETERS, 20, root_seed=6).digest()
    u = (ws.values[:, 0] - 0.5) / 1.9  # uniform: back to [0, 1)
    assert sorted(np.floor(u * 20).astype(int).tolist()) == list(range(20))  # Latin hypercube strata
    assert (ws.values[:, 1] >= 0.02).all() and (ws.values[:, 1] <= 0.2).all()
    with pytest.raises(WorldsFileError, match="at least 2 worlds"):
        prior_worlds(PARAMETERS, 1, root_seed=5)


def test_the_plan_maps_replication_i_to_draw_i_over_r(tmp_path: Path) -> None:
    plan = plan_worlds(read_posterior(posterior(tmp_path, GOOD), PARAMETERS), 4, 3, root_seed=1)
    assert plan.replications == 12 and plan.count == 4
    frame = plan.replication_frame()
    assert list(frame.columns) == ["replication", "world", "personalization_effect", "fatigue"]
    assert frame["replication"].tolist() == list(range(12))
    assert 8 not in frame["world"].tolist()  # weight 0
    for draw in range(4):
        assert frame["world"].iloc[3 * draw: 3 * draw + 3].nunique() == 1
    with pytest.raises(WorldsFileError, match="at least 2 replications per world"):
        plan_worlds(plan.world_set, 4, 1, root_seed=1)


def test_each_replication_gets_its_worlds_market_and_a_refused_value_names_row_and_column(tmp_path: Path) -> None:
    scenario = load_scenario(tiny())
    plan = plan_worlds(read_posterior(posterior(tmp_path, GOOD), PARAMETERS), 3, 2, root_seed=1)
    markets = world_markets(scenario.market, PARAMETERS, plan)
    assert sorted(markets) == list(range(6))
    values = plan.replication_frame()
    for i, market in markets.items():
        assert market.response.personalization_effect == values["personalization_effect"].iloc[i]
        assert market.fatigue.sensitivity == values["fatigue"].iloc[i]
    wide = (UncertainParameter("personalization_effect", (("market.response.personalization_effect", 1.0),),
                               Prior("uniform", 0.0, 1000.0)),)
    text = "world,weight,personalization_effect\nw1,1,1.0\nw2,1,999\n"
    big = plan_worlds(read_posterior(posterior(tmp_path, text, "wide.csv"), wide), 4, 2, root_seed=1)
    with pytest.raises(WorldsFileError, match=r"wide.csv:3: world w2, column personalization_effect = 999: the market "
                                              r"refuses it"):
        world_markets(scenario.market, wide, big)
