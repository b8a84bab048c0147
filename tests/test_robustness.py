"""Regret and satisficing on a hand-computed policies x worlds matrix (exact), and the Wilson interval."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from simulator.experiments.robustness import (
    ALL_REQUIREMENTS,
    ROBUSTNESS_COLUMNS,
    regret,
    robustness,
    wilson_interval,
    world_means,
)
from simulator.scenario.decision import Requirement

# 3 policies x 4 worlds (per-world means)
MEANS = {
    "A": {"response_rate": np.array([0.20, 0.30, 0.10, 0.25]), "net_credit_burn": np.array([100., 200., 150., 120.])},
    "B": {"response_rate": np.array([0.22, 0.28, 0.12, 0.25]), "net_credit_burn": np.array([90., 140., 150., 130.])},
    "C": {"response_rate": np.array([0.18, 0.31, 0.05, 0.20]), "net_credit_burn": np.array([110., 190., 100., 120.])},
}
REQUIREMENTS = (Requirement("response_rate", ">=", 0.2), Requirement("net_credit_burn", "<=", 150.0))


def value(table: pd.DataFrame, policy: str, metric: str, statistic: str) -> float:
    row = table[(table["policy"] == policy) & (table["metric"] == metric) & (table["statistic"] == statistic)]
    assert len(row) == 1
    return float(row["value"].iloc[0])


def test_regret_is_the_shortfall_from_each_worlds_best_in_the_metrics_direction() -> None:
    # response rate: higher is better; the best per world is 0.22, 0.31, 0.12, 0.25
    r = regret(MEANS, "response_rate")
    assert r["A"] == pytest.approx([0.02, 0.01, 0.02, 0.0])
    assert r["B"] == pytest.approx([0.0, 0.03, 0.0, 0.0])
    assert r["C"] == pytest.approx([0.04, 0.0, 0.07, 0.05])
    # net credit burn: lower is better; the best per world is 90, 140, 100, 120
    burn = regret(MEANS, "net_credit_burn")
    assert burn["A"].tolist() == [10.0, 60.0, 50.0, 0.0]
    assert burn["B"].tolist() == [0.0, 0.0, 50.0, 10.0]
    assert burn["C"].tolist() == [20.0, 50.0, 0.0, 0.0]


def test_the_tidy_table_by_hand() -> None:
    table = robustness(MEANS, REQUIREMENTS, metrics=("response_rate", "net_credit_burn"))
    assert list(table.columns) == list(ROBUSTNESS_COLUMNS)
    assert value(table, "A", "net_credit_burn", "mean") == 30.0
    assert value(table, "B", "net_credit_burn", "mean") == 15.0
    assert value(table, "C", "net_credit_burn", "mean") == 17.5
    assert value(table, "A", "net_credit_burn", "max") == 60.0
    # 90th percentile of 4 worlds (Hazen positions 1/8 .. 7/8): past 7/8, the largest
    assert value(table, "C", "net_credit_burn", "q90") == 50.0
    assert value(table, "B", "response_rate", "mean") == pytest.approx(0.0075)
    assert value(table, "C", "response_rate", "max") == pytest.approx(0.07)
    # satisficing: A meets both in worlds 0 and 3; B in 0, 1, 3; C only in 3
    assert value(table, "A", "response_rate >= 0.2", "share") == 0.75
    assert value(table, "A", "net_credit_burn <= 150", "share") == 0.75
    assert value(table, "A", ALL_REQUIREMENTS, "share") == 0.5
    assert value(table, "B", ALL_REQUIREMENTS, "share") == 0.75
    assert value(table, "C", ALL_REQUIREMENTS, "share") == 0.25
    assert value(table, "C", ALL_REQUIREMENTS, "worlds") == 4
    low, high = wilson_interval(3, 4)
    assert (value(table, "B", ALL_REQUIREMENTS, "ci_low"), value(table, "B", ALL_REQUIREMENTS, "ci_high")) == (
        low, high)


def test_no_requirements_no_satisficing_rows_and_undirected_metrics_have_no_regret() -> None:
    means = {p: {**m, "sent": m["net_credit_burn"]} for p, m in MEANS.items()}
    table = robustness(means, (), metrics=("response_rate", "sent"))
    assert set(table["measure"]) == {"regret"}
    assert set(table["metric"]) == {"response_rate"}


def test_wilson_interval_matches_published_values() -> None:
    # Newcombe (1998), table I: 0/10 -> [0, 0.2775]; 3/4 (computed the same way) -> [0.3006, 0.9544]
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(3, 4) == pytest.approx((0.3006, 0.9544), abs=1e-4)
    assert wilson_interval(10, 10)[1] == 1.0
    assert all(np.isnan(wilson_interval(0, 0)))


def test_world_means_average_each_draws_replications_in_replication_order() -> None:
    outcomes = pd.DataFrame({"replication": [3, 2, 1, 0, 0, 1, 2, 3], "policy": ["A"] * 4 + ["B"] * 4,
                             "x": [4.0, 3.0, 2.0, 1.0, 10.0, 20.0, 30.0, 40.0]})
    means = world_means(outcomes, ["A", "B"], ["x"], per_world=2)
    assert means["A"]["x"].tolist() == [1.5, 3.5]
    assert means["B"]["x"].tolist() == [15.0, 35.0]


policies_by_worlds = st.integers(1, 4).flatmap(lambda p: st.integers(1, 6).flatmap(lambda w: arrays(
    np.float64, (p, w, 2), elements=st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False))))


@settings(max_examples=150, deadline=None)
@given(values=policies_by_worlds, bound=st.floats(-1e6, 1e6, allow_nan=False))
def test_regret_and_satisficing_invariants(values: np.ndarray, bound: float) -> None:
    means = {f"p{k}": {"response_rate": values[k, :, 0], "net_credit_burn": values[k, :, 1]}
             for k in range(values.shape[0])}
    for metric in ("response_rate", "net_credit_burn"):
        r = np.vstack(list(regret(means, metric).values()))
        assert (r >= 0).all()
        assert (r.min(axis=0) == 0).all()  # some policy is the best of each world
    requirements = (Requirement("response_rate", ">=", bound), Requirement("net_credit_burn", "<=", bound))
    table = robustness(means, requirements, metrics=("response_rate",))
    for policy in means:
        shares = table[(table["policy"] == policy) & (table["statistic"] == "share")].set_index("metric")["value"]
        assert 0.0 <= shares[ALL_REQUIREMENTS] <= min(shares[r.text] for r in requirements) <= 1.0
        low = value(table, policy, ALL_REQUIREMENTS, "ci_low")
        high = value(table, policy, ALL_REQUIREMENTS, "ci_high")
        assert 0.0 <= low <= shares[ALL_REQUIREMENTS] <= high <= 1.0
