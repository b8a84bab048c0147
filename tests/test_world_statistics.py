"""The numbers of a worlds comparison from a W x R matrix of paired differences: exact cases,
statistical checks of the variance decomposition, and invariants (hypothesis)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from simulator.core.metrics import METRIC_DIRECTIONS, METRIC_NAMES
from simulator.experiments.statistics import t_interval
from simulator.experiments.world_statistics import (
    WORLDS_COMPARISON_COLUMNS,
    difference_statistics,
    variance_components,
    weighted_quantile,
    world_effects,
    worlds_comparison,
)

# --------------------------------------------------------------------------- exact


def test_weighted_quantile_is_hazen_with_equal_weights_and_clamps_at_the_ends() -> None:
    v = np.array([3.0, -1.0, 2.0, 0.0])
    w = np.full(4, 0.25)
    # sorted -1, 0, 2, 3 at plotting positions 0.125, 0.375, 0.625, 0.875
    assert weighted_quantile(v, w, 0.125) == -1.0
    assert weighted_quantile(v, w, 0.5) == 1.0
    assert weighted_quantile(v, w, 0.75) == 2.5
    assert weighted_quantile(v, w, 0.05) == -1.0 and weighted_quantile(v, w, 0.99) == 3.0
    assert weighted_quantile(v, np.array([0.0, 0.0, 1.0, 0.0]), 0.3) == 2.0  # all weight on one value
    assert math.isnan(weighted_quantile(np.array([]), np.array([]), 0.5))


def test_p_better_mc_share_and_ranges_on_a_constructed_case() -> None:
    """No within-world noise: the per-world means are the world effects, exactly."""
    per_world = np.array([-1.0, 2.0, 3.0, 0.0])
    d = np.repeat(per_world[:, None], 2, axis=1)
    up = difference_statistics(d, +1)
    assert up["p_better"] == 0.5  # 2 and 3 are better; 0 is a tie, not better
    assert difference_statistics(d, -1)["p_better"] == 0.25
    assert math.isnan(difference_statistics(d, None)["p_better"])
    assert up["diff_mean"] == 1.0 and up["mc_share"] == 0.0
    assert (up["worlds_q025"], up["worlds_q10"], up["worlds_q90"], up["worlds_q975"]) == (-1.0, -1.0, 3.0, 3.0)
    _, low, high = t_interval(per_world)
    assert (up["mc_ci_low"], up["mc_ci_high"]) == (low, high)
    weighted = difference_statistics(d, +1, np.array([0.1, 0.2, 0.3, 0.4]))
    assert weighted["p_better"] == pytest.approx(0.5) and difference_statistics(
        d, -1, np.array([0.1, 0.2, 0.3, 0.4]))["p_better"] == pytest.approx(0.1)
    assert weighted["diff_mean"] == pytest.approx(0.1 * -1 + 0.2 * 2 + 0.3 * 3)


def test_identical_differences_have_no_spread_and_no_variance_to_share() -> None:
    d = np.full((5, 3), 2.5)
    out = difference_statistics(d, +1)
    assert out["diff_mean"] == 2.5 and out["p_better"] == 1.0
    assert {out[k] for k in ("worlds_q025", "worlds_q10", "worlds_q90", "worlds_q975", "mc_ci_low")} == {2.5}
    assert math.isnan(out["mc_share"])


def test_variance_components_by_hand() -> None:
    d = np.array([[1.0, 3.0], [5.0, 7.0], [9.0, 11.0]])
    between, within = variance_components(d)
    assert within == 2.0  # each row: variance 2
    # world means 2, 6, 10: sample variance 16, less the noise of a mean of 2 (2 / 2 = 1)
    assert between == pytest.approx(15.0)
    effects = world_effects(d)
    assert effects == pytest.approx(6.0 + math.sqrt(15.0 / 16.0) * np.array([-4.0, 0.0, 4.0]))


# --------------------------------------------------------------------------- statistical


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_mc_share_is_near_1_for_identical_worlds_and_near_0_for_very_different_ones(seed: int) -> None:
    """W = 400 worlds x R = 2; d = b_w + e_wr with sd(e) = 1.

    Identical worlds (sd(b) = 0): the estimate of sigma_b^2 has standard error about
    sqrt(2 / (R^2 (W - 1))) = 0.035, so mc_share >= 1 / (1 + 4 x 0.035) = 0.88 (4 standard errors).
    Very different worlds (sd(b) = 10): mc_share = 1 / 101 = 0.0099 with a relative standard error of
    about sqrt(2 / W) = 7%, so it stays below 0.02.
    """
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=(400, 2))
    same = difference_statistics(noise + 0.3, +1)
    assert same["mc_share"] >= 0.88
    # the spread across identical worlds collapses towards the mean (it is noise, not assumptions)
    raw_width = np.quantile(noise.mean(axis=1), 0.975) - np.quantile(noise.mean(axis=1), 0.025)
    assert same["worlds_q975"] - same["worlds_q025"] < 0.6 * raw_width
    effects = rng.normal(scale=10.0, size=(400, 1))
    apart = difference_statistics(noise + effects, +1)
    assert apart["mc_share"] < 0.02
    # and the range across worlds is that of the effects: 95% of N(0, 10^2) is about +-19.6
    assert apart["worlds_q975"] - apart["worlds_q025"] == pytest.approx(39.2, rel=0.15)


# --------------------------------------------------------------------------- invariants


matrices = st.integers(2, 8).flatmap(lambda w: st.integers(2, 4).flatmap(lambda r: arrays(
    np.float64, (w, r), elements=st.floats(-1e3, 1e3, allow_nan=False, allow_subnormal=False))))


@settings(max_examples=200, deadline=None)
@given(d=matrices, direction=st.sampled_from([1, -1, None]))
def test_ranges_nest_and_hold_the_mean_and_p_better_agrees_with_them(d: np.ndarray, direction: int | None) -> None:
    out = difference_statistics(d, direction)
    eps = 1e-9 * (1 + np.abs(d).max())
    assert out["worlds_q025"] <= out["worlds_q10"] + eps
    assert out["worlds_q10"] <= out["worlds_q90"] + eps
    assert out["worlds_q90"] <= out["worlds_q975"] + eps
    assert out["mc_ci_low"] <= out["diff_mean"] <= out["mc_ci_high"]
    # the range across worlds never extends past the spread of the raw world means
    means = d.mean(axis=1)
    assert means.min() - eps <= out["worlds_q025"] and out["worlds_q975"] <= means.max() + eps
    if direction is None:
        assert math.isnan(out["p_better"])
    else:
        assert 0.0 <= out["p_better"] <= 1.0
        # Hazen positions (k - 1/2) / W: a 10% quantile above 0 leaves fewer than 0.1 W + 1/2 worlds at or below it
        low_tail = out["worlds_q10"] if direction == 1 else -out["worlds_q90"]
        if low_tail > eps:
            assert out["p_better"] > 0.9 - 0.5 / d.shape[0]
    assert math.isnan(out["mc_share"]) or 0.0 <= out["mc_share"] <= 1.0


def test_the_table_has_one_row_per_policy_and_metric_and_the_directions() -> None:
    rng = np.random.default_rng(0)
    rows = []
    for rep in range(6):
        for policy in ("old", "new", "alt"):
            rows.append({"replication": rep, "world": rep // 2, "policy": policy,
                         **{m: rng.normal() for m in METRIC_NAMES}})
    table = worlds_comparison(pd.DataFrame(rows), "old", ["old", "new", "alt"], per_world=2)
    assert list(table.columns) == list(WORLDS_COMPARISON_COLUMNS)
    assert list(table["policy"].drop_duplicates()) == ["new", "alt"]
    assert len(table) == 2 * len(METRIC_NAMES)
    undirected = table[~table["metric"].isin(list(METRIC_DIRECTIONS))]
    assert undirected["p_better"].isna().all() and table[table["metric"].isin(list(METRIC_DIRECTIONS))][
        "p_better"].notna().all()
