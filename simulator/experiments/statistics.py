"""The one Student-t interval of the project: every CI of a mean over replications comes from here.

``confidence`` is two-sided (0.95 gives the 2.5% and 97.5% quantiles); a sample of fewer than two
values has no interval (NaN bounds), never a zero-width one.  Every interval the project reports
passes through :func:`contain`, so it holds its own estimate even when the bounds were computed by
a different float expression than the estimate (``diff / mean`` against ``(diff - hw) / |mean|``).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
"""The default two-sided confidence level of every interval the simulator reports."""

ALPHA = 1.0 - CONFIDENCE
"""The significance level of the two-sided tests that go with :data:`CONFIDENCE` intervals."""


def contain(estimate: np.ndarray | float, low: np.ndarray | float, high: np.ndarray | float
            ) -> tuple[np.ndarray, np.ndarray]:
    """``(low, high)`` widened just enough to hold ``estimate``: ``low <= estimate <= high`` wherever all are known.

    Only round-off can put an estimate outside its own interval (a collapsed interval of one
    replication, or bounds and estimate computed by different float expressions); a bound that
    already holds the estimate is returned unchanged, bit for bit.  NaN bounds (no interval: fewer
    than two replications) and a NaN estimate are left as they are.
    """
    est = np.asarray(estimate, dtype=np.float64)
    lo = np.asarray(low, dtype=np.float64)
    hi = np.asarray(high, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(lo > est, est, lo)[()], np.where(hi < est, est, hi)[()]


def t_quantile_dof(dof: np.ndarray | float, confidence: float = CONFIDENCE) -> np.ndarray:
    """Two-sided Student-t quantile for ``dof`` degrees of freedom (e.g. Welch's); NaN where ``dof`` is NaN."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    with np.errstate(invalid="ignore"):
        return np.asarray(stats.t.ppf(0.5 + confidence / 2.0, dof))


def t_quantile(n: np.ndarray | float, confidence: float = CONFIDENCE) -> np.ndarray:
    """Two-sided Student-t quantile for a mean of ``n`` values (``n - 1`` degrees of freedom); NaN for n < 2."""
    n = np.asarray(n, dtype=np.float64)
    return t_quantile_dof(np.where(n >= 2, n - 1, np.nan), confidence)


def t_half_width(sd: np.ndarray | float, n: np.ndarray | float, confidence: float = CONFIDENCE) -> np.ndarray:
    """Half-width of the Student-t interval of a mean from its sample ``sd`` and size ``n`` (NaN when n < 2)."""
    sd = np.asarray(sd, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return t_quantile(n, confidence) * sd / np.sqrt(np.asarray(n, dtype=np.float64))


def t_interval(values: np.ndarray, confidence: float = CONFIDENCE, axis: int = 0
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and Student-t interval along ``axis`` (replications), ignoring NaN values.

    Returns ``(mean, low, high)``: scalars for a 1-D sample, arrays over the other axes otherwise.
    """
    v = np.moveaxis(np.asarray(values, dtype=np.float64), axis, 0)
    finite = np.isfinite(v)
    n = finite.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        if v.shape[0] == 0:
            mean = np.full(v.shape[1:], np.nan)[()]
        elif finite.all():
            mean = v.mean(axis=0)
        else:
            mean = np.nanmean(v, axis=0)
        if v.shape[0] < 2:
            sd = np.full(np.shape(mean), np.nan)[()]
        elif finite.all():
            sd = v.std(axis=0, ddof=1)
        else:
            sd = np.nanstd(v, axis=0, ddof=1)
        hw = t_half_width(sd, n, confidence)[()]
    low, high = contain(mean, mean - hw, mean + hw)
    return mean, low, high
