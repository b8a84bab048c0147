"""ABC (stage 1 rejection and ABC-SMC) on toys whose posterior is known exactly."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
from scipy import integrate, stats

from simulator.experiments.abc import (
    SmcSettings,
    abc_posterior,
    effective_sample_size,
    kernel_covariance,
    prior_design,
    weighted_quantile,
)
from simulator.scenario.uncertain import Prior


class NormalPrior:
    """A standard normal prior (the toy's conjugate-style case; not a scenario prior kind)."""

    def ppf(self, u: np.ndarray) -> np.ndarray:
        return np.asarray(stats.norm.ppf(np.clip(u, 1e-12, 1 - 1e-12)), dtype=np.float64)

    def logpdf(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(stats.norm.logpdf(x), dtype=np.float64)


LOW, HIGH, NOISE = 1.5, 2.0, 0.3
"""The toy: y = theta + N(0, NOISE^2); the published band [LOW, HIGH]; prior theta ~ N(0, 1)."""


def noisy_band(label: str, thetas: np.ndarray, tolerance: float) -> np.ndarray:
    """Band distance of the toy's y (noise from the batch label and row: deterministic)."""
    seed = int.from_bytes(hashlib.sha256(label.encode()).digest()[:8], "little")
    y = thetas[:, 0] + NOISE * np.random.default_rng(seed).standard_normal(len(thetas))
    return np.maximum(0.0, np.maximum(LOW - y, y - HIGH)) / (HIGH - LOW)


def exact_posterior() -> tuple[float, dict[float, float]]:
    """Mean and quantiles of p(theta) ~ phi(theta) P(LOW <= theta + e <= HIGH), by quadrature."""
    def dens(t: float) -> float:
        return float(stats.norm.pdf(t) * (stats.norm.cdf((HIGH - t) / NOISE) - stats.norm.cdf((LOW - t) / NOISE)))

    z = integrate.quad(dens, -6, 8)[0]
    mean = integrate.quad(lambda t: t * dens(t), -6, 8)[0] / z
    grid = np.linspace(-3, 5, 8001)
    cdf = np.cumsum([dens(t) for t in grid]) * (grid[1] - grid[0]) / z
    return mean, {q: float(np.interp(q, cdf, grid)) for q in (0.1, 0.5, 0.9)}


def test_abc_smc_matches_the_exact_posterior_of_a_noisy_band() -> None:
    """Prior acceptance is ~4%, so stage 1 (1,000 worlds) accepts too few and ABC-SMC runs down to tolerance 0.

    Tolerance: 4 standard errors with the ESS as sample size - mean: posterior sd / sqrt(ESS);
    quantile q: sqrt(q(1-q)/ESS) / density at the quantile (the density bounded below by the
    normal's at 1.5 sd, i.e. using sd * 2.6 as 1/f).
    """
    particles = 1500
    res = abc_posterior(noisy_band, [NormalPrior()], particles, 1000, np.random.default_rng(7))
    assert res.stage == 2 and res.converged and res.tolerance == 0.0
    assert [g.tolerance for g in res.generations[1:]] == sorted((g.tolerance for g in res.generations[1:]),
                                                                 reverse=True)
    mean, quantiles = exact_posterior()
    x, w = res.thetas[:, 0], res.weights
    ess = res.ess
    assert ess > 0.3 * particles
    sd = math.sqrt(float(np.sum(w * (x - np.sum(w * x)) ** 2)))
    assert abs(float(np.sum(w * x)) - mean) < 4 * sd / math.sqrt(ess)
    for q, exact in quantiles.items():
        assert abs(weighted_quantile(x, w, q) - exact) < 4 * math.sqrt(q * (1 - q) / ess) * sd * 2.6


def sum_band(label: str, thetas: np.ndarray, tolerance: float) -> np.ndarray:
    """Deterministic 2-D toy: y = theta1 + theta2 must lie in [1.6, 1.8] (a ridge in the unit square)."""
    y = thetas.sum(axis=1)
    return np.maximum(0.0, np.maximum(1.6 - y, y - 1.8)) / 0.2


def test_a_ridge_keeps_its_width_and_stage_1_suffices_when_it_accepts_enough() -> None:
    """Uniform priors on [0, 1]^2: the posterior is uniform on the strip 1.6 <= t1 + t2 <= 1.8 (area 0.06)."""
    priors = [Prior("uniform", 0.0, 1.0), Prior("uniform", 0.0, 1.0)]
    res = abc_posterior(sum_band, priors, 200, 4000, np.random.default_rng(3))
    assert res.stage == 1  # ~6% of 4,000 design worlds accepted: no SMC needed
    assert len(res.thetas) == pytest.approx(0.06 * 4000, rel=0.15)  # LHS: close to the strip's area
    y = res.thetas.sum(axis=1)
    assert np.all((y >= 1.6) & (y <= 1.8))
    # exact marginal of t1 on the strip: support [0.6, 1], mean = 0.8 + small; the ridge spans 0.6..1
    assert res.thetas[:, 0].min() < 0.65 and res.thetas[:, 0].max() > 0.95
    res2 = abc_posterior(sum_band, priors, 300, 600, np.random.default_rng(3))
    assert res2.stage == 2 and res2.converged
    y2 = res2.thetas.sum(axis=1)
    assert np.all((y2 >= 1.6) & (y2 <= 1.8))
    # exact marginal mean of t1 on the strip: E = (int t1 * len(t1) dt1) / area, computed on a fine grid
    t = np.linspace(0, 1, 100_001)
    length = np.clip(np.minimum(1.0, 1.8 - t) - np.maximum(0.0, 1.6 - t), 0, None)
    exact = float(np.sum(t * length) / np.sum(length))
    x, w = res2.thetas[:, 0], res2.weights
    sd = math.sqrt(float(np.sum(w * (x - np.sum(w * x)) ** 2)))
    assert abs(float(np.sum(w * x)) - exact) < 4 * sd / math.sqrt(res2.ess)


def test_same_generator_same_posterior() -> None:
    a = abc_posterior(noisy_band, [NormalPrior()], 200, 300, np.random.default_rng(11))
    b = abc_posterior(noisy_band, [NormalPrior()], 200, 300, np.random.default_rng(11))
    assert np.array_equal(a.thetas, b.thetas) and np.array_equal(a.weights, b.weights)


def test_helpers() -> None:
    assert effective_sample_size(np.array([1.0, 1.0, 1.0, 1.0])) == pytest.approx(4.0)
    assert effective_sample_size(np.array([1.0, 0.0, 0.0])) == pytest.approx(1.0)
    assert weighted_quantile(np.array([3.0, 1.0, 2.0]), np.ones(3), 0.5) == 2.0
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4000, 2)) * [1.0, 3.0]
    cov = kernel_covariance(x, np.ones(4000))
    assert np.allclose(np.diag(cov), [2.0, 18.0], rtol=0.1)
    d = prior_design([Prior("uniform", 2.0, 4.0)], 100, rng)
    assert np.all((d >= 2) & (d <= 4)) and np.histogram(d, bins=10, range=(2, 4))[0].tolist() == [10] * 10
    with pytest.raises(ValueError, match="particles"):
        abc_posterior(sum_band, [Prior("uniform", 0, 1)], 0, 10, rng)
    with pytest.raises(ValueError, match="quantile"):
        SmcSettings(10, quantile=1.0)


def test_a_generation_that_accepts_nothing_keeps_the_last_population() -> None:
    """SMC proposals that never meet the tolerance (here: every proposal infinitely far) stop the run after
    10 x particles proposals; the stage-1 population comes back, marked not converged, at its tolerance."""
    def design_only(label: str, thetas: np.ndarray, tolerance: float) -> np.ndarray:
        if label == "design":
            return 1.0 + thetas[:, 0]
        return np.full(len(thetas), np.inf)

    res = abc_posterior(design_only, [Prior("uniform", 0.0, 1.0)], 20, 40, np.random.default_rng(2))
    assert not res.converged and len(res.weights) == 20
    assert res.generations[-1].accepted == 0 and res.generations[-1].proposed >= 200
    assert res.tolerance == res.generations[0].tolerance == pytest.approx(float(np.max(res.distances)))


def test_the_kernel_floor_keeps_a_collapsed_population_proposing_new_worlds() -> None:
    """A population resampled onto one world has zero covariance; the floor keeps the kernel's SD at
    KERNEL_FLOOR x the prior's 90% range, and leaves a wide covariance alone."""
    from simulator.experiments.abc import KERNEL_FLOOR, floored, prior_scales

    priors = [Prior("uniform", 0.0, 10.0), Prior("uniform", 0.0, 1.0)]
    scales = prior_scales(priors)
    assert np.allclose(scales, [9.0, 0.9])
    copies = np.tile([[4.0, 0.5]], (20, 1))
    cov = kernel_covariance(copies, np.full(20, 1 / 20))
    out = floored(cov[None], scales)[0]
    assert np.allclose(np.diag(out), (KERNEL_FLOOR * scales) ** 2, rtol=1e-6)
    wide = np.array([[[4.0, 0.1], [0.1, 0.09]]])
    assert np.array_equal(floored(wide, scales), wide)
    np.linalg.cholesky(out)  # positive definite


def test_tied_distances_lower_the_tolerance_by_half_not_to_zero() -> None:
    """All distances tied at the top: the next tolerance is half of it (a jump to 0 accepted nothing)."""
    from simulator.experiments.abc import next_tolerance

    w = np.full(5, 0.2)
    assert next_tolerance(np.full(5, 0.4), w, 0.5) == pytest.approx(0.2)
    assert next_tolerance(np.array([0.0, 0.0, 0.0, 0.4, 0.4]), w, 0.5) == 0.0  # the median is below the top
    assert next_tolerance(np.array([0.1, 0.4, 0.4, 0.4, 0.4]), w, 0.5) == pytest.approx(0.2)
    assert next_tolerance(np.array([0.3, 0.4, 0.4, 0.4, 0.4]), w, 0.5) == pytest.approx(0.3)


def test_truncated_weights_cap_a_dominant_world_and_keep_uniform_ones() -> None:
    """One weight a million times the others is capped at sqrt(n) x the mean; equal weights stay equal."""
    from simulator.experiments.abc import truncated_weights

    n = 100
    raw = np.ones(n)
    raw[0] = 1e6
    w = truncated_weights(raw)
    assert w.sum() == pytest.approx(1.0)
    assert w[0] == pytest.approx(math.sqrt(n) / n, rel=1e-9)  # capped at sqrt(n) x the mean 1/n
    assert effective_sample_size(w) > 50  # without the cap: about 1
    assert np.allclose(truncated_weights(np.full(n, 3.0)), 1 / n)
    ranked = truncated_weights(np.arange(1.0, n + 1))  # the order of the weights is kept
    assert np.all(np.diff(ranked) >= 0)
