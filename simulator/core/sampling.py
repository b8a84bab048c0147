"""Exact Poisson draws for many recruiters at once, faster than ``Generator.poisson`` on long arrays.

``Generator.poisson`` costs about 45 ns a draw for the small means of a recruiter's daily volume
(it multiplies uniforms until their product falls below exp(-lambda)); two draws per recruiter and
day are a fifth of the engine's time at 10,000 recruiters.  :func:`poisson` draws from the same
distribution with two uniforms per draw and a handful of whole-array numpy operations:

* lambda = g + r with g = j * H on a grid of step H = 1/8 and 0 <= r < H (exact: H is a power of 2);
* X ~ Poisson(g) by inversion of a tabulated CDF, started from a guide table so that a draw needs
  about one comparison (the guide-table method of Chen and Asau, 1974);
* Y ~ Poisson(r) by inversion from exp(-r) (one step covers all but r**2 / 2 < 0.8% of the mass),
  worked out only for the v >= exp(-H) (12% of draws) that can give Y >= 1;
* X + Y ~ Poisson(lambda) (a sum of independent Poisson variables).

Means above :data:`TABLE_MAX` (a bulk sender's busy day) fall back to ``Generator.poisson``.  The
fixed cost of the operations (about 15 us) and the cache lines of the tables make it slower than
``Generator.poisson`` inside the engine for short arrays, so :func:`poisson` uses the table only
from :data:`MIN_TABLE_DRAWS` draws on.  Measured: 20,000 draws take 300 us against 740 us; 2,000
draws 51 us against 72 us when timed alone, but the engine at 1,000 recruiters ran 3.5% slower
with the table (10 interleaved runs), so short arrays keep ``Generator.poisson``.
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

STEPS_BEFORE_SEARCH = 3
"""Whole-array steps up from the guide; the draws still unresolved (tail buckets, where the CDF
creeps toward 1 over many k) then get a binary search of their row each.  Without the cut the
step loop ran about 19 times a day at 10,000 recruiters for a handful of tail draws."""

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


@lru_cache(maxsize=1)
def _guide_bytes() -> np.ndarray:
    """The guide table as uint8 (every k is below the 184 columns): one 64-byte cache line per row.

    The engine touches a few hundred rows a day; with int64 entries each row's guide spans eight
    cache lines, which were mostly evicted by the next day (measured: the draws ran slower inside
    the engine than alone).
    """
    _, guide, cols = _tables()
    if cols > 256:  # pragma: no cover - TABLE_MAX would have to grow past ~150
        raise ValueError(f"the guide's k must fit a byte; the table has {cols} columns")
    return guide.astype(np.uint8)


_NO_REMAINDER_BELOW = math.exp(-GRID_STEP) * (1.0 - 1e-12)
"""v below this gives Y = 0 for every remainder r < H (P(Y = 0) = exp(-r) > exp(-H)): no exp needed."""


def poisson(lam: np.ndarray, rng: np.random.Generator, *, table: bool | None = None) -> np.ndarray:
    """One Poisson(``lam[i]``) draw per entry (int64) from ``rng``; ``lam`` finite and >= 0.

    ``table``: force (True) or forbid (False) the table method; by default it is used from
    :data:`MIN_TABLE_DRAWS` draws on.  Either way the draws are exact and reproducible.
    """
    lam = np.asarray(lam, dtype=np.float64)
    if not (lam.size >= MIN_TABLE_DRAWS if table is None else table):
        return rng.poisson(lam).astype(np.int64, copy=False)
    n = lam.size
    if n == 0:
        return np.empty(lam.shape, dtype=np.int64)
    cdf, _, cols = _tables()
    guide = _guide_bytes()
    uv = rng.random(2 * n)  # u for X, v for Y: the same numbers as two calls of n
    u, v = uv[:n], uv[n:]
    row = (lam * (1.0 / GRID_STEP)).astype(np.int64)  # lambda / H = row + rem / H; truncation is floor here
    big = None
    if float(lam.max()) > TABLE_MAX:  # beyond the table: drawn directly at the end (row 0 and no remainder here)
        big = lam > TABLE_MAX
        row[big] = 0

    # X ~ Poisson(row H): the smallest k with u < F_row(k), searched upward from the guide
    b = (u * GUIDE_BUCKETS).astype(np.int64)  # bucket floor(u G) of the row (exact: G is a power of 2)
    b += row * GUIDE_BUCKETS
    row *= cols
    flat = guide.take(b) + row  # flat index of F_row(k) for the bucket's first candidate k
    up = (u >= cdf.take(flat)).nonzero()[0]
    for _ in range(STEPS_BEFORE_SEARCH):
        if not up.size:
            break
        flat[up] += 1
        up = up[u[up] >= cdf[flat[up]]]
    for i in up.tolist():  # the few draws deep in a tail (a bucket spanning many k): search their row
        start = int(row[i])
        flat[i] = start + int(np.searchsorted(cdf[start:start + cols], u[i], side="right"))
    k = np.subtract(flat, row, out=flat)

    # Y ~ Poisson(rem): the smallest y with v < P(Y <= y), by the pmf recursion; only the few v that
    # could give y >= 1 (v >= exp(-H) > 0.88) are looked at
    cand = (v >= _NO_REMAINDER_BELOW).nonzero()[0]
    if big is not None:
        cand = cand[~big[cand]]
    r = lam[cand] - (row[cand] // cols) * GRID_STEP  # exact: lam = row H + rem (row holds row * cols now)
    t = np.exp(-r)
    vv = v[cand]
    keep = vv >= t
    more, t, r, vv = cand[keep], t[keep], r[keep], vv[keep]
    cum = t.copy()
    y = 0
    while more.size:
        y += 1
        k[more] += 1
        t = t * r / y
        cum = cum + t
        keep = (vv >= cum) & (t > 0)  # t = 0: no mass left at double precision
        more, t, r, cum, vv = more[keep], t[keep], r[keep], cum[keep], vv[keep]
    if big is not None:
        k[big] = rng.poisson(lam[big])
    return k.reshape(lam.shape)
