"""PRIM (simulator.experiments.prim): a planted box is found, quasi-p tells real restrictions from noise,
bootstrap stability, and the invariants of peeling and of the choice rule."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.experiments.prim import (
    Box,
    PrimSettings,
    choose,
    drop_insignificant,
    find_box,
    measure,
    peel,
    prim,
    quasi_p,
    stability,
)

NAMES = ("a", "b", "c", "d")
PLANTED_LOW, PLANTED_HIGH = np.array([0.2, 0.6]), np.array([0.5, 1.0])


def planted(seed: int, n: int = 2000, inside_p: float = 0.9, outside_p: float = 0.1) -> tuple[np.ndarray, ...]:
    """4 uniform dimensions; y = 1 with probability 0.9 in [0.2, 0.5] x [0.6, 1.0] (on a, b), 0.1 outside."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(n, 4))
    inside = np.all((x[:, :2] >= PLANTED_LOW) & (x[:, :2] <= PLANTED_HIGH), axis=1)
    y = (rng.uniform(size=n) < np.where(inside, inside_p, outside_p)).astype(float)
    return x, y, inside


def test_planted_box_is_recovered_over_30_datasets() -> None:
    """30 datasets of 2,000 points (planted coverage ~0.55, density ~0.9, mass 0.12), min_coverage 0.4.

    Measured over these seeds: mean |bound error| <= 0.015, max 0.063; coverage 0 to 0.11 below the
    planted box's (the choice rule trades a little coverage for density); density within 0.021.
    The tolerances are those figures with a margin; a wrong edge (a peel from the wrong side, a
    missed dimension) is off by >= 0.2.
    """
    errors, coverage_gaps, density_gaps = [], [], []
    for seed in range(30):
        x, y, inside = planted(seed)
        _, _, box = find_box(x, y, PrimSettings(min_coverage=0.4))
        assert box is not None
        assert set(box.restricted) == {0, 1}, f"seed {seed}: restricted {box.restricted}"
        errors.append([box.low[0] - 0.2, box.high[0] - 0.5, box.low[1] - 0.6])
        assert box.high[1] == x[:, 1].max()  # b's upper edge is the prior's: not restricted
        coverage_gaps.append(box.coverage - y[inside].sum() / y.sum())
        density_gaps.append(box.density - y[inside].mean())
    errors_abs = np.abs(np.array(errors))
    assert errors_abs.max() < 0.08
    assert errors_abs.mean() < 0.03
    assert min(coverage_gaps) > -0.15 and max(coverage_gaps) < 0.02
    assert np.max(np.abs(density_gaps)) < 0.04


def test_default_settings_find_the_box_when_coverage_is_high() -> None:
    """outside 0.05: the planted box covers ~0.7 of the 1s, above the default coverage floor 0.5."""
    x, y, _ = planted(3, outside_p=0.05)
    result = prim(x, y, NAMES)
    assert result.box is not None and set(result.box.restricted) == {0, 1}
    assert result.box.density > 0.85 and result.box.coverage > 0.6
    frame = result.restrictions()
    assert list(frame["dimension"]) == ["a", "b"]
    assert np.allclose(frame["low"], [0.2, 0.6], atol=0.05)


def test_quasi_p_small_for_real_restrictions_large_for_a_noise_one() -> None:
    """Box = the planted box plus c <= 0.8 (c is noise). Over 20 datasets the real restrictions have
    quasi-p < 1e-10; the noise one's median is > 0.2 (under the null it is roughly uniform, so
    below 0.05 in about 1 dataset in 20, and its median is ~0.5)."""
    noise = []
    for seed in range(20):
        x, y, _ = planted(seed)
        prior_low, prior_high = x.min(axis=0), x.max(axis=0)
        low = np.array([0.2, 0.6, prior_low[2], prior_low[3]])
        high = np.array([0.5, prior_high[1], 0.8, prior_high[3]])
        box = measure(x, y, low, high, prior_low, prior_high)
        assert box.restricted == (0, 1, 2)
        p = quasi_p(x, y, box, prior_low, prior_high)
        assert p[0] < 1e-10 and p[1] < 1e-10
        noise.append(p[2])
        dropped = drop_insignificant(x, y, box, 0.05, prior_low, prior_high)
        assert set(dropped.restricted) >= {0, 1}
    assert np.median(noise) > 0.2


def test_quasi_p_exact_small_case() -> None:
    """Four points: the box [0.5, 1] holds 2 points, both 1; without the restriction 4 points, 2 of them 1:
    quasi-p = P(Binom(2, 0.5) >= 2) = 0.25."""
    x = np.array([[0.0], [0.25], [0.5], [1.0]])
    y = np.array([0.0, 0.0, 1.0, 1.0])
    box = measure(x, y, np.array([0.5]), np.array([1.0]), np.array([0.0]), np.array([1.0]))
    assert (box.coverage, box.density, box.mass) == (1.0, 1.0, 0.5)
    assert quasi_p(x, y, box, np.array([0.0]), np.array([1.0]))[0] == pytest.approx(0.25)


def test_a_far_edge_peel_is_dropped_on_its_own() -> None:
    """b restricted on both edges, the upper one (0.95) is noise: dropping per edge keeps b >= 0.6 only."""
    x, y, _ = planted(5)
    prior_low, prior_high = x.min(axis=0), x.max(axis=0)
    low = np.array([0.2, 0.6, prior_low[2], prior_low[3]])
    high = np.array([0.5, 0.95, prior_high[2], prior_high[3]])
    box = drop_insignificant(x, y, measure(x, y, low, high, prior_low, prior_high), 0.05, prior_low, prior_high)
    assert box.restricted == (0, 1)
    assert box.low[1] == 0.6 and box.high[1] == prior_high[1]


def test_stability_shares() -> None:
    """40 bootstrap resamples of one dataset: a and b restricted in >= 90% of them, c and d in <= 20%;
    the bounds' 10-90% spread of a's lower edge brackets 0.2 within 0.05."""
    x, y, _ = planted(1, outside_p=0.05)
    table = stability(x, y, NAMES, PrimSettings(), np.random.default_rng(11), resamples=40)
    share = dict(zip(table["dimension"], table["restricted_share_in_resamples"], strict=True))
    assert share["a"] >= 0.9 and share["b"] >= 0.9
    assert share["c"] <= 0.2 and share["d"] <= 0.2
    a = table.set_index("dimension").loc["a"]
    assert a["low_resample_q10"] > 0.15 and a["low_resample_q90"] < 0.25


def test_seeded_result_is_reproducible() -> None:
    x, y, _ = planted(2)
    one = prim(x, y, NAMES, rng=np.random.default_rng(5), resamples=5)
    two = prim(x, y, NAMES, rng=np.random.default_rng(5), resamples=5)
    assert one.restrictions().equals(two.restrictions())
    assert one.trajectory.equals(two.trajectory)


def test_density_nondecreasing_in_a_clean_case() -> None:
    """y = 1 exactly inside the planted box: every peel keeps or raises the density, which ends at 1."""
    for seed in range(5):
        x, _, inside = planted(seed)
        boxes = peel(x, inside.astype(float), 0.05, 0.05, x.min(axis=0), x.max(axis=0))
        density = np.array([b.density for b in boxes])
        assert np.all(np.diff(density) >= -1e-12)
        assert density[-1] == 1.0


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(20, 300), d=st.integers(1, 4),
       alpha=st.floats(0.02, 0.3), min_mass=st.floats(0.02, 0.5), discrete=st.booleans())
def test_peeling_invariants(seed: int, n: int, d: int, alpha: float, min_mass: float, discrete: bool) -> None:
    """Any data (ties included): mass strictly decreases, boxes are nested, coverage never rises, every box
    keeps at least min_mass of the points, and the measures agree with a direct count."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 4, size=(n, d)).astype(float) if discrete else rng.normal(size=(n, d))
    y = (rng.uniform(size=n) < 0.3).astype(float)
    if y.sum() == 0:
        y[0] = 1.0
    boxes = peel(x, y, alpha, min_mass, x.min(axis=0), x.max(axis=0))
    assert boxes[0].mass == 1.0 and boxes[0].restricted == ()
    for before, after in itertools.pairwise(boxes):
        assert after.mass < before.mass
        assert np.all(after.low >= before.low) and np.all(after.high <= before.high)
        assert after.coverage <= before.coverage + 1e-12
        assert after.mass >= min_mass - 1e-12
    last = boxes[-1]
    inside = np.all((x >= last.low) & (x <= last.high), axis=1)
    assert last.mass == pytest.approx(inside.mean())
    assert last.density == pytest.approx(y[inside].mean())


def _box(coverage: float, density: float) -> Box:
    return Box(np.zeros(1), np.ones(1), coverage, density, coverage, ())


def test_choice_rule() -> None:
    """Densest with coverage >= 0.5; of those within 0.02 of it, the largest coverage; None if none qualifies."""
    boxes = [_box(1.0, 0.3), _box(0.8, 0.6), _box(0.7, 0.89), _box(0.6, 0.9), _box(0.45, 0.99)]
    assert choose(boxes, PrimSettings()) == 2
    assert choose(boxes, PrimSettings(density_tolerance=0.0)) == 3
    assert choose(boxes, PrimSettings(min_coverage=0.4)) == 4
    assert choose(boxes, PrimSettings(threshold=0.95)) is None


def test_bad_settings_and_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="alpha"):
        PrimSettings(alpha=0.0)
    with pytest.raises(ValueError, match="min_coverage"):
        PrimSettings(min_coverage=1.5)
    with pytest.raises(ValueError, match="y 0 or 1"):
        prim(np.zeros((3, 1)), np.array([0.0, 2.0, 1.0]), ["a"])
    with pytest.raises(ValueError, match="must agree"):
        prim(np.zeros((3, 2)), np.zeros(3), ["a"])
