"""The table-inversion Poisson sampler: exact distribution, edge cases, reproducibility."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from simulator.core.sampling import GRID_STEP, MIN_TABLE_DRAWS, TABLE_MAX, _tables, poisson


def test_tabulated_cdf_is_the_poisson_cdf() -> None:
    cdf, guide, cols = _tables()
    rows = cdf.size // cols
    means = np.arange(rows) * GRID_STEP
    ref = stats.poisson.cdf(np.arange(cols)[None, :], means[:, None])
    np.testing.assert_allclose(cdf.reshape(rows, cols)[:, :-1], ref[:, :-1], rtol=0, atol=1e-12)
    assert means[-1] == TABLE_MAX
    assert (1.0 - ref[:, -2]).max() < 1e-15  # the last column (forced to 1) carries no real mass
    # the guide entry of bucket b is the first k with F(k) > b / G: searching from it never skips a draw
    g = guide.reshape(rows, -1)
    levels = np.arange(g.shape[1]) / g.shape[1]
    table = cdf.reshape(rows, cols)
    for j in (0, 1, 17, rows - 1):
        assert all(table[j, g[j, b]] > levels[b] and (g[j, b] == 0 or table[j, g[j, b] - 1] <= levels[b])
                   for b in range(g.shape[1]))


@pytest.mark.parametrize("lam", [0.01, 0.125, 0.3, 1.0, 2.99, 3.7, 9.875, 12.345, 40.0, 63.99, 64.0, 64.5, 300.0])
def test_draws_follow_the_poisson_distribution(lam: float) -> None:
    """n = 200,000 draws per mean: the sample mean within 4 standard errors, and a chi-square test of
    the frequencies (cells with >= 20 expected) at the 0.1% level."""
    n = 200_000
    x = poisson(np.full(n, lam), np.random.default_rng(int(lam * 1000)), table=True)
    se = np.sqrt(lam / n)
    assert abs(x.mean() - lam) < 4 * se
    ks = np.arange(int(lam + 12 * np.sqrt(lam) + 12))
    expected = stats.poisson.pmf(ks, lam) * n
    observed = np.bincount(x, minlength=ks.size)[: ks.size]
    keep = expected >= 20
    chi2 = float(((observed[keep] - expected[keep]) ** 2 / expected[keep]).sum())
    dof = int(keep.sum()) - 1
    if dof > 0:
        assert stats.chi2.sf(chi2, dof) > 1e-3


def test_mixed_means_match_numpy_in_distribution() -> None:
    """Per-entry means (a recruiter day: lognormal volumes, some above the table): the table
    draws and Generator.poisson agree on the total within 4 standard errors (n = 20,000 x 20)."""
    rng = np.random.default_rng(7)
    lam = np.exp(rng.normal(np.log(3.0), 1.0, 20_000))
    assert (lam > TABLE_MAX).any()
    a = np.array([poisson(lam, rng, table=True).sum() for _ in range(20)], dtype=np.float64)
    se = np.sqrt(lam.sum() / 20)
    assert abs(a.mean() - lam.sum()) < 4 * se


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.0, 200.0, allow_nan=False), min_size=0, max_size=50), st.integers(0, 2**32 - 1))
def test_draws_are_counts_and_reproducible(lams: list[float], seed: int) -> None:
    lam = np.array(lams, dtype=np.float64)
    a = poisson(lam, np.random.default_rng(seed), table=True)
    b = poisson(lam, np.random.default_rng(seed), table=True)
    assert a.dtype == np.int64 and a.shape == lam.shape
    assert (a >= 0).all()
    assert (a[lam == 0] == 0).all()
    np.testing.assert_array_equal(a, b)


def test_short_arrays_use_generator_poisson() -> None:
    lam = np.full(MIN_TABLE_DRAWS - 1, 2.5)
    np.testing.assert_array_equal(poisson(lam, np.random.default_rng(3)), np.random.default_rng(3).poisson(lam))
    assert not np.array_equal(poisson(lam, np.random.default_rng(3), table=True), np.random.default_rng(3).poisson(lam))


def test_draws_are_the_plain_inversion_of_their_uniforms() -> None:
    """Exact: with the same two uniforms per entry (u then v, one call of 2n), a plain search of the
    tabulated CDF for X and a plain inversion from exp(-rem) for Y give the sampler's counts; the
    guide table and the v >= exp(-H) shortcut only save work (n = 50,000 means, some at the edges)."""
    rng = np.random.default_rng(11)
    lam = np.exp(rng.normal(np.log(3.0), 1.0, 50_000))
    lam[:40] = np.r_[0.0, GRID_STEP, np.nextafter(GRID_STEP, 0), 1e-300, np.arange(36) * 1.75]
    lam = np.minimum(lam, TABLE_MAX)
    got = poisson(lam, np.random.default_rng(5), table=True)
    uv = np.random.default_rng(5).random(2 * lam.size)
    u, v = uv[: lam.size], uv[lam.size:]
    cdf, _, cols = _tables()
    table = cdf.reshape(-1, cols)
    row = np.floor(lam / GRID_STEP).astype(np.int64)
    x = np.array([np.searchsorted(table[j], ui, side="right") for j, ui in zip(row, u, strict=True)])
    rem = lam - row * GRID_STEP
    y = np.zeros_like(x)
    for i in range(lam.size):
        term = cum = np.exp(-rem[i])
        while v[i] >= cum and term > 0:
            y[i] += 1
            term *= rem[i] / y[i]
            cum += term
    np.testing.assert_array_equal(got, x + y)
    assert (y > 0).sum() > 100  # the remainder part is exercised
