"""Exact Poisson draws for many recruiters at once, faster than ``Generator.poisson`` on long arrays.

``Generator.poisson`` costs about 45 ns a draw for the small means of a recruiter's daily volume
(it multiplies uniforms until their product falls below exp(-lambda)); two draws per recruiter and
day are a fifth of the engine's time at 10,000 recruiters.  :func:`poisson` draws from the same
distribution with two uniforms per draw and a handful of whole-array numpy operations:

* lambda = g + r with g = j * H on a grid of step H = 1/8 and 0 <= r < H (exact: H is a power of 2);
* X ~ Poisson(g) by inversion of a tabulated CDF, started from a guide table so that a draw needs
  about one comparison (the guide-table method of Chen and Asau, 1974);
* Y ~ Poisson(r) by inversion from exp(-r) (one step covers all but r**2 / 2 < 0.8% of the mass);
* X + Y ~ Poisson(lambda) (a sum of independent Poisson variables).

Means above :data:`TABLE_MAX` (a bulk sender's busy day) fall back to ``Generator.poisson``.  The
fixed cost of the operations makes it slower than ``Generator.poisson`` for short arrays, so
:func:`poisson` uses the table only from :data:`MIN_TABLE_DRAWS` draws on.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

GRID_STEP = 1.0 / 8.0
"""H: the tabulated means are multiples of H (a power of two, so lambda - j H is exact)."""

TABLE_MAX = 64.0
"""Means up to this are drawn from the table; larger ones by ``Generator.poisson``."""

GUIDE_BUCKETS = 64
"""Guide-table buckets per tabulated mean: the search from the guide is about one step."""

MIN_TABLE_DRAWS = 8192
"""Below this many draws ``Generator.poisson`` is as fast (measured) and is used instead."""


@lru_cache(maxsize=1)
def _tables() -> tuple[np.ndarray, np.ndarray, int]:
    """(CDF table flattened by row, guide table flattened by row, columns per row); built once (~20 ms)."""
    rows = round(TABLE_MAX / GRID_STEP) + 1
    cols = int(TABLE_MAX + 12.0 * math.sqrt(TABLE_MAX) + 24)  # the mass beyond is below 1e-20 in every row
    means = np.arange(rows) * GRID_STEP
    k = np.arange(cols, dtype=np.float64)
    log_fact = np.array([math.lgamma(x + 1.0) for x in range(cols)])
    with np.errstate(divide="ignore", invalid="ignore"):  # mean 0: log 0 = -inf; its pmf is 1 at k = 0 only
        log_pmf = k[None, :] * np.log(means)[:, None] - means[:, None] - log_fact[None, :]
    log_pmf[0] = -np.inf
    log_pmf[0, 0] = 0.0
    cdf = np.minimum(np.cumsum(np.exp(log_pmf), axis=1), 1.0)  # no scipy: it would slow every import
    cdf[:, -1] = 1.0  # every search ends inside its row
    levels = np.arange(GUIDE_BUCKETS) / GUIDE_BUCKETS
    guide = np.stack([np.searchsorted(cdf[j], levels, side="right") for j in range(rows)])  # first k: F(k) > b/G
    return np.ascontiguousarray(cdf).reshape(-1), guide.astype(np.int64).reshape(-1), cols


def poisson(lam: np.ndarray, rng: np.random.Generator, *, table: bool | None = None) -> np.ndarray:
    """One Poisson(``lam[i]``) draw per entry (int64) from ``rng``; ``lam`` finite and >= 0.

    ``table``: force (True) or forbid (False) the table method; by default it is used from
    :data:`MIN_TABLE_DRAWS` draws on.  Either way the draws are exact and reproducible.
    """
    lam = np.asarray(lam, dtype=np.float64)
    if not (lam.size >= MIN_TABLE_DRAWS if table is None else table):
        return rng.poisson(lam).astype(np.int64, copy=False)
    out = np.empty(lam.shape, dtype=np.int64)
    if lam.size == 0:
        return out
    cdf, guide, cols = _tables()
    big = lam > TABLE_MAX
    u = rng.random(lam.size)
    v = rng.random(lam.size)
    rem, row = np.modf(lam * (1.0 / GRID_STEP))  # lambda / H = row + rem / H, both exact
    rem *= GRID_STEP
    if big.any():  # beyond the table: drawn directly at the end (row 0 and no remainder here)
        row[big] = 0.0
        rem[big] = 0.0

    # X ~ Poisson(row H): the smallest k with u < F_row(k), searched upward from the guide
    k = guide[((row + u) * GUIDE_BUCKETS).astype(np.int64)]  # bucket floor(u G) of the row
    start = (row * cols).astype(np.int64)
    flat = start + k  # flat index of F_row(k)
    up = (u >= cdf[flat]).nonzero()[0]
    while up.size:
        flat[up] += 1
        up = up[u[up] >= cdf[flat[up]]]
    k = flat - start

    # Y ~ Poisson(rem): the smallest y with v < P(Y <= y), by the pmf recursion for the few past y = 0
    term = np.exp(-rem)
    more = (v >= term).nonzero()[0]
    n = 0
    t, r, cum, vv = term[more], rem[more], term[more].copy(), v[more]
    while more.size:
        n += 1
        k[more] += 1
        t = t * r / n
        cum = cum + t
        keep = (vv >= cum) & (t > 0)  # t = 0: no mass left at double precision
        more, t, r, cum, vv = more[keep], t[keep], r[keep], cum[keep], vv[keep]
    np.copyto(out, k)
    if big.any():
        out[big] = rng.poisson(lam[big])
    return out
