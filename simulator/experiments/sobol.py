"""Sobol indices from precomputed model outputs: the Saltelli (2010) estimators with BCa bootstrap CIs.

First-order ``S1`` (the share of the output variance explained by an input alone) and total ``ST``
(including its interactions), with the estimators of :func:`scipy.stats.sobol_indices` on a
scrambled Sobol' design A, B, AB (``N (d + 2)`` evaluations for ``N`` base samples and ``d``
inputs).  The CIs are BCa bootstrap intervals over the ``N`` rows, computed with
:func:`scipy.stats.bootstrap` on a generator derived from the root seed, so they are reproducible.

:func:`sample_warnings` says when the indices of an output are not yet trustworthy: a first-order
index above its total index beyond their CIs (``S1_ci_low > ST_ci_high``; impossible for the true
indices), first-order indices summing above 1 beyond their CIs (``sum S1_ci_low > 1``; also
impossible), or CIs wider than a target half-width (default +-0.05; the indices cannot be ranked).
The CI half-width shrinks ~ ``1 / sqrt(N)``, so ``N * (widest / (0.8 target))^2`` (rounded up to a
power of 2, with a 20% margin because a half-width measured on a small sample is itself noisy) is
the base sample that brings the widest half-width below the target.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.stats import qmc

from simulator.experiments.design import PURPOSE_BOOTSTRAP, PURPOSE_SENSITIVITY, Parameter, design_rng, qmc_engine
from simulator.experiments.statistics import CONFIDENCE, contain


def saltelli_design(d: int, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Unit matrices A and B, each ``(n, d)``: the two halves of a scrambled 2d-dim Sobol' sample
    (as :func:`scipy.stats.sobol_indices` draws them)."""
    ab = qmc_engine(qmc.Sobol, 2 * d, rng, scramble=True, bits=64).random(n)
    return ab[:, :d], ab[:, d:]


def ab_matrices(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``AB[i]`` = A with column ``i`` taken from B; shape ``(d, n, d)``."""
    d = A.shape[1]
    AB = np.repeat(A[None, :, :], d, axis=0)
    for i in range(d):
        AB[i, :, i] = B[:, i]
    return AB


def saltelli_2010(f_A: np.ndarray, f_B: np.ndarray, f_AB: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First-order and total indices, shapes ``(s, d)`` (Saltelli et al. 2010, Table 2 b and f; the
    estimator of scipy's ``sobol_indices``).  ``f_A``, ``f_B``: ``(s, n)``; ``f_AB``: ``(d, s, n)``."""
    var = np.var([f_A, f_B], axis=(0, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        s1 = np.mean(f_B * (f_AB - f_A), axis=-1) / var
        st = 0.5 * np.mean((f_A - f_AB) ** 2, axis=-1) / var
    return s1.T, st.T


def _bootstrap(statistic: Callable[[np.ndarray], np.ndarray], n: int, n_resamples: int, confidence: float,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """BCa bootstrap interval of a row-resampled statistic (percentile if BCa is degenerate)."""
    def run(method: str) -> Any:
        kw = {"n_resamples": n_resamples, "confidence_level": confidence, "method": method, "vectorized": False}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                return stats.bootstrap((np.arange(n),), statistic, rng=rng, **kw)
            except TypeError:  # scipy < 1.15
                return stats.bootstrap((np.arange(n),), statistic, random_state=rng, **kw)

    res = run("BCa")
    lo, hi = np.asarray(res.confidence_interval.low), np.asarray(res.confidence_interval.high)
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        res = run("percentile")
        lo, hi = np.asarray(res.confidence_interval.low), np.asarray(res.confidence_interval.high)
    return lo, hi


TARGET_HALF_WIDTH = 0.05
"""The CI half-width below which Sobol indices count as precise enough to rank inputs."""


MARGIN = 0.8
""":func:`suggested_n` aims at ``MARGIN * target``: a half-width measured on a small sample is itself noisy."""


def suggested_n(n: int, half_width: float, target: float = TARGET_HALF_WIDTH) -> int:
    """The power of 2 base sample (at least ``2 n``) that brings ``half_width`` at ``n`` below ``target``.

    Bootstrap CI half-widths shrink ~ ``1 / sqrt(n)``: ``n * (half_width / (MARGIN * target))^2``.
    """
    need = n * (half_width / (MARGIN * target)) ** 2
    return 2 ** max(math.ceil(math.log2(max(need, 2 * n))), 1)


def sample_warnings(table: pd.DataFrame, target: float = TARGET_HALF_WIDTH) -> dict[str, str]:
    """Per output, why its indices are not yet trustworthy and the ``n`` that would do (absent when fine).

    Outputs without CIs (no bootstrap) are not judged.
    """
    out: dict[str, str] = {}
    for output, t in table.groupby("output", sort=False):
        bounds = t[["S1_ci_low", "S1_ci_high", "ST_ci_low", "ST_ci_high"]].to_numpy(dtype=np.float64)
        if not np.isfinite(bounds).all():
            continue
        reasons = []
        above = t.loc[t["S1_ci_low"] > t["ST_ci_high"], "parameter"].astype(str).tolist()
        if above:
            reasons.append("first-order above total beyond their CIs for " + ", ".join(above))
        if t["S1_ci_low"].sum() > 1.0:
            reasons.append(f"first-order indices sum to {t['S1'].sum():.2f}, above 1 beyond their CIs")
        widest = float(np.max(bounds[:, [1, 3]] - bounds[:, [0, 2]]) / 2.0)
        if widest > target:
            reasons.append(f"CIs up to +-{widest:.2f} wide (target +-{target:g})")
        if reasons:
            n = int(t["n"].iloc[0])
            out[str(output)] = (f"{output}: the Sobol sample is too small (n = {n}): {'; '.join(reasons)}. "
                                f"CI half-widths shrink ~ 1/sqrt(n): n = {suggested_n(n, widest, target)} would "
                                f"bring the widest (+-{widest:.2f}) below +-{target:g}")
    return out


def sobol_table(f_A: np.ndarray, f_B: np.ndarray, f_AB: np.ndarray, parameters: Sequence[str],
                outputs: Sequence[str], *, n_resamples: int = 999, confidence: float = CONFIDENCE,
                rng: np.random.Generator | None = None, target: float = TARGET_HALF_WIDTH) -> pd.DataFrame:
    """Sobol indices with bootstrap CIs as a tidy table.

    ``f_A``, ``f_B``: ``(s, n)`` outputs at the rows of A and B; ``f_AB``: ``(d, s, n)``.  Point
    estimates come from :func:`scipy.stats.sobol_indices`; the CIs resample the ``n`` rows
    (``n_resamples`` = 0: no CIs).  An output that does not vary gets indices 0.  The last column,
    ``warning``, holds the output's :func:`sample_warnings` text (empty when the indices are fine).
    """
    f_A, f_B = np.atleast_2d(f_A).astype(np.float64), np.atleast_2d(f_B).astype(np.float64)
    f_AB = np.asarray(f_AB, dtype=np.float64).reshape(len(parameters), f_A.shape[0], f_A.shape[1])
    s, n = f_A.shape
    res = stats.sobol_indices(func={"f_A": f_A, "f_B": f_B, "f_AB": f_AB}, n=n, method=saltelli_2010)
    s1 = np.asarray(res.first_order).reshape(s, -1)
    st = np.asarray(res.total_order).reshape(s, -1)
    lo = np.full((2, s, len(parameters)), np.nan)
    hi = np.full((2, s, len(parameters)), np.nan)
    if n_resamples > 0:
        mean = np.mean([f_A, f_B], axis=(0, -1)).reshape(-1, 1)
        a, b, ab = f_A - mean, f_B - mean, f_AB - mean

        def statistic(idx: np.ndarray) -> np.ndarray:
            x1, xt = saltelli_2010(a[:, idx], b[:, idx], ab[..., idx])
            return np.nan_to_num(np.stack([x1, xt]), nan=0.0, posinf=0.0, neginf=0.0)

        varies = np.var([f_A, f_B], axis=(0, -1)) > 0
        if varies.any():
            lo, hi = _bootstrap(statistic, n, n_resamples, confidence, rng or np.random.default_rng(0))
        lo[:, ~varies], hi[:, ~varies] = 0.0, 0.0
        lo, hi = contain(np.stack([s1, st]), lo, hi)  # a bootstrap interval holds its estimate too
    rows = []
    for k, out in enumerate(outputs):
        for j, par in enumerate(parameters):
            rows.append({"output": out, "parameter": par, "S1": s1[k, j], "S1_ci_low": lo[0, k, j],
                         "S1_ci_high": hi[0, k, j], "ST": st[k, j], "ST_ci_low": lo[1, k, j],
                         "ST_ci_high": hi[1, k, j], "n": n})
    table = pd.DataFrame(rows)
    warned = sample_warnings(table, target)
    table["warning"] = [warned.get(out, "") for out in table["output"]]
    return table


def sobol_analyse(func: Callable[[np.ndarray], np.ndarray], parameters: Sequence[Parameter], n: int, *,
                  seed: int, outputs: Sequence[str] | None = None, n_resamples: int = 999,
                  confidence: float = CONFIDENCE, target: float = TARGET_HALF_WIDTH) -> pd.DataFrame:
    """Sobol indices of a vectorized ``func`` (``(m, d)`` input values -> ``(m,)`` or ``(m, s)``).

    The same design, estimator and bootstrap as the simulator's analysis (used to check them on
    test functions with known indices).  Integer parameters are rounded.
    """
    A_u, B_u = saltelli_design(len(parameters), n, design_rng(seed, PURPOSE_SENSITIVITY))
    AB_u = ab_matrices(A_u, B_u)
    d = len(parameters)

    def values(u: np.ndarray) -> np.ndarray:
        return np.column_stack([np.asarray(p.scale(u[:, j]), dtype=np.float64) for j, p in enumerate(parameters)])

    def f(u: np.ndarray) -> np.ndarray:
        y = np.asarray(func(values(u)), dtype=np.float64)
        return (y[:, None] if y.ndim == 1 else y).T  # (s, m)

    f_A, f_B = f(A_u), f(B_u)
    f_AB = np.stack([f(AB_u[i]) for i in range(d)])
    names = list(outputs) if outputs is not None else [f"y{k}" for k in range(f_A.shape[0])]
    return sobol_table(f_A, f_B, f_AB, [p.path for p in parameters], names, n_resamples=n_resamples,
                       confidence=confidence, rng=design_rng(seed, PURPOSE_BOOTSTRAP), target=target)
