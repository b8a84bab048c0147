"""Policy differences across plausible worlds: Monte Carlo noise and assumption spread, kept apart.

Within world draw ``w`` every policy runs on the same seeds, so ``d[w, r]`` = policy - baseline in
replication ``r`` is a paired difference.  A one-way random-effects model ``d[w, r] = mu + b[w] + e[w, r]``
splits its variance into the between-world part ``sigma_b^2`` (the assumptions) and the within-world part
``sigma_e^2`` (Monte Carlo), estimated by the method of moments (ANOVA; ``sigma_b^2`` truncated at 0).

* ``diff_mean``: the mean over draws of the per-world mean difference (draws are equally likely).
* ``mc_ci_low/high``: the Student-t interval (:func:`~simulator.experiments.statistics.t_interval`) of
  that mean over the ``W`` per-world means - its Monte Carlo precision (the finite replications *and*
  the finite world sample); it shrinks as the run grows.
* ``worlds_q*``: weighted quantiles of the per-world differences.  A per-world mean carries Monte Carlo
  noise of variance ``sigma_e^2 / R``, which would widen the spread; each is therefore pulled towards
  ``diff_mean`` by ``sqrt(sigma_b^2 / (sigma_b^2 + sigma_e^2 / R))`` (a constrained-Bayes shrinkage: the
  pulled values have the estimated between-world variance).  Identical worlds give a zero-width range.
* ``p_better``: the weighted share of worlds whose (pulled) difference is strictly on the better side
  (:data:`~simulator.core.metrics.METRIC_DIRECTIONS`); NaN for a metric without a direction.
* ``mc_share``: ``sigma_e^2 / (sigma_e^2 + sigma_b^2)``, the share of a single replication's difference
  variance that is Monte Carlo; NaN when the difference never varies.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from simulator.core.metrics import METRIC_DIRECTIONS, METRIC_NAMES
from simulator.experiments.statistics import t_interval

WORLDS_COMPARISON_COLUMNS: tuple[str, ...] = (
    "policy", "metric", "diff_mean", "mc_ci_low", "mc_ci_high", "worlds_q10", "worlds_q90",
    "worlds_q025", "worlds_q975", "p_better", "mc_share",
)
"""Columns of ``worlds_comparison.csv``."""

QUANTILES: dict[str, float] = {"worlds_q10": 0.10, "worlds_q90": 0.90, "worlds_q025": 0.025, "worlds_q975": 0.975}


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The ``q`` quantile of a weighted sample: linear between the mid-points of each value's weight.

    With equal weights this is Hazen's rule (``(k - 1/2) / n`` plotting positions); a constant sample
    gives that constant; NaN for an empty sample.
    """
    v = np.asarray(values, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    keep = np.isfinite(v) & (w > 0)
    if not keep.any():
        return math.nan
    order = np.argsort(v[keep], kind="stable")
    v, w = v[keep][order], w[keep][order]
    positions = (np.cumsum(w) - 0.5 * w) / w.sum()
    return float(np.interp(q, positions, v))


def variance_components(d: np.ndarray, weights: np.ndarray | None = None) -> tuple[float, float]:
    """``(sigma_b^2, sigma_e^2)`` of a ``W x R`` array (one-way random effects, method of moments).

    ``sigma_e^2`` is the pooled within-world variance; ``sigma_b^2`` the weighted variance of the world
    means less their expected Monte Carlo part, truncated at 0.  Needs ``W >= 2`` and ``R >= 2``.
    """
    d = np.asarray(d, dtype=np.float64)
    n_worlds, per_world = d.shape
    p = _normalised(weights, n_worlds)
    within = float(np.mean(np.var(d, axis=1, ddof=1)))
    means = d.mean(axis=1)
    grand = float(np.sum(p * means))
    spread = float(np.sum(p * (means - grand) ** 2))
    noise = within / per_world
    between = (spread - float(np.sum(p * (1.0 - p))) * noise) / (1.0 - float(np.sum(p * p)))
    return max(0.0, between), within


def world_effects(d: np.ndarray, weights: np.ndarray | None = None, centre: float | None = None) -> np.ndarray:
    """The per-world mean differences pulled towards ``centre`` (default their weighted mean) so that their
    spread is ``sigma_b`` (see the module docstring)."""
    d = np.asarray(d, dtype=np.float64)
    p = _normalised(weights, d.shape[0])
    means = d.mean(axis=1)
    grand = float(np.sum(p * means)) if centre is None else centre
    between, within = variance_components(d, p)
    total = between + within / d.shape[1]
    if not between > 0 or not total > 0:
        return np.full(d.shape[0], grand)
    return grand + math.sqrt(between / total) * (means - grand)


def _normalised(weights: np.ndarray | None, n: int) -> np.ndarray:
    p = np.full(n, 1.0 / n) if weights is None else np.asarray(weights, dtype=np.float64)
    return p / p.sum()


def difference_statistics(d: np.ndarray, direction: int | None, weights: np.ndarray | None = None
                          ) -> dict[str, float]:
    """Every number of a ``worlds_comparison`` row from the ``W x R`` paired differences ``d``.

    ``weights``: of the world draws (default equal, as the draws of a plan are).  The MC CI is the
    t-interval of the (unweighted) per-world means; with unequal weights only the centre moves.
    """
    d = np.asarray(d, dtype=np.float64)
    p = _normalised(weights, d.shape[0])
    means = d.mean(axis=1)
    mean, low, high = t_interval(means)
    centre = float(mean) if weights is None else float(np.sum(p * means))
    if weights is not None:
        low, high = low - mean + centre, high - mean + centre
    effects = world_effects(d, p, centre)
    between, within = variance_components(d, p)
    out = {"diff_mean": centre, "mc_ci_low": float(low), "mc_ci_high": float(high)}
    out.update({name: weighted_quantile(effects, p, q) for name, q in QUANTILES.items()})
    out["p_better"] = math.nan if not direction else share_of(direction * effects > 0, None if weights is None else p)
    total = between + within
    out["mc_share"] = within / total if total > 0 else math.nan
    return out


def share_of(mask: np.ndarray, weights: np.ndarray | None) -> float:
    """The (weighted) share of ``mask``: a count over the total when the weights are equal (exact)."""
    if weights is None:
        return np.count_nonzero(mask) / len(mask)
    return min(1.0, float(np.sum(weights[mask])))


def draw_matrix(outcomes: pd.DataFrame, policy: str, metric: str, per_world: int) -> np.ndarray:
    """``W x R`` values of ``metric`` for ``policy`` (rows: world draws; ``outcomes`` has ``replication``)."""
    rows = outcomes[outcomes["policy"] == policy].sort_values("replication", kind="stable")
    values = rows[metric].to_numpy(dtype=np.float64)
    return values.reshape(-1, per_world)


def worlds_comparison(outcomes: pd.DataFrame, baseline: str, policies: Sequence[str], per_world: int,
                      metrics: Sequence[str] = METRIC_NAMES) -> pd.DataFrame:
    """One row per (policy other than the baseline, metric) with :data:`WORLDS_COMPARISON_COLUMNS`.

    ``outcomes``: one row per (replication, policy), replications ``0 .. W R - 1`` (``world_outcomes.csv``).
    """
    rows = []
    base = {m: draw_matrix(outcomes, baseline, m, per_world) for m in metrics}
    for policy in policies:
        if policy == baseline:
            continue
        for metric in metrics:
            d = draw_matrix(outcomes, policy, metric, per_world) - base[metric]
            rows.append({"policy": policy, "metric": metric,
                         **difference_statistics(d, METRIC_DIRECTIONS.get(metric))})
    return pd.DataFrame(rows, columns=list(WORLDS_COMPARISON_COLUMNS))
