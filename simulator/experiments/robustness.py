"""Which policy holds up across plausible worlds: regret against each world's best, and satisficing.

Both work on per-world means: ``means[policy][metric]`` is an array over the world draws (the mean of
the draw's replications; every policy ran on the same seeds there).

* **Regret** on a metric with a direction (:data:`~simulator.core.metrics.METRIC_DIRECTIONS`): in each
  world, how far a policy falls short of the best policy of that world (0 for the best; in the metric's
  units, always >= 0).  Reported: the weighted mean, the weighted 90th percentile and the maximum.
* **Satisficing**: the weighted share of worlds where a policy meets every requirement of the scenario's
  ``decision:`` block (and the share for each requirement alone), with a 95% Wilson score interval over
  the ``W`` world draws (the draws are equally likely, so the count of worlds that satisfice is binomial).

``robustness.csv`` is tidy: ``policy, measure, metric, statistic, value`` with ``measure`` ``regret`` or
``satisficing`` and ``metric`` the metric name, a requirement's text or ``all requirements``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from simulator.core.metrics import METRIC_DIRECTIONS
from simulator.experiments.statistics import CONFIDENCE
from simulator.experiments.world_statistics import share_of, weighted_quantile
from simulator.scenario.decision import Requirement, satisfices

ROBUSTNESS_COLUMNS: tuple[str, ...] = ("policy", "measure", "metric", "statistic", "value")
"""Columns of ``robustness.csv``."""

ROBUSTNESS_METRICS: tuple[str, ...] = (
    "response_rate", "responses", "net_credit_burn", "credits_per_response", "stockout_recruiter_days",
    "unanswered_per_active_member",
)
"""The headline metrics whose regret is reported (plus every metric a decision requirement names)."""

ALL_REQUIREMENTS = "all requirements"

Means = Mapping[str, Mapping[str, np.ndarray]]
"""policy -> metric -> per-world means (one entry per world draw)."""


def wilson_interval(successes: float, n: float, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion (NaN for ``n`` = 0)."""
    if n <= 0:
        return math.nan, math.nan
    z = float(stats.norm.ppf(0.5 + confidence / 2.0))
    phat = successes / n
    centre = (phat + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low = 0.0 if successes <= 0 else max(0.0, centre - half)
    return low, 1.0 if successes >= n else min(1.0, centre + half)


def regret(means: Means, metric: str) -> dict[str, np.ndarray]:
    """Per policy, the per-world shortfall from the best policy of that world on ``metric`` (>= 0)."""
    direction = METRIC_DIRECTIONS[metric]
    scores = {p: direction * np.asarray(m[metric], dtype=np.float64) for p, m in means.items()}
    best = np.max(np.vstack(list(scores.values())), axis=0)
    return {p: best - s for p, s in scores.items()}


def regret_rows(means: Means, metrics: Sequence[str], weights: np.ndarray) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for metric in metrics:
        for policy, r in regret(means, metric).items():
            for statistic, value in (("mean", float(np.sum(weights * r) / np.sum(weights))),
                                     ("q90", weighted_quantile(r, weights, 0.90)),
                                     ("max", float(np.max(r)))):
                rows.append({"policy": policy, "measure": "regret", "metric": metric, "statistic": statistic,
                             "value": value})
    return rows


def satisficing_rows(means: Means, requirements: Sequence[Requirement], weights: np.ndarray | None = None
                     ) -> list[dict[str, object]]:
    """Share of worlds meeting each requirement and all of them, with the Wilson interval of the latter.

    ``weights``: of the worlds (default equal: the shares are counts over the number of worlds, exactly).
    """
    rows: list[dict[str, object]] = []
    if not requirements:
        return rows
    w = None if weights is None else np.asarray(weights, dtype=np.float64) / np.sum(weights)
    for policy, m in means.items():
        for requirement in requirements:
            met = requirement.met(m[requirement.metric])
            rows.append({"policy": policy, "measure": "satisficing", "metric": requirement.text,
                         "statistic": "share", "value": share_of(met, w)})
        ok = satisfices(tuple(requirements), {k: np.asarray(v) for k, v in m.items()})
        n = len(ok)
        share = share_of(ok, w)
        low, high = wilson_interval(share * n, n)
        rows += [{"policy": policy, "measure": "satisficing", "metric": ALL_REQUIREMENTS, "statistic": s, "value": v}
                 for s, v in (("share", share), ("ci_low", low), ("ci_high", high), ("worlds", float(n)))]
    return rows


def robustness(means: Means, requirements: Sequence[Requirement] = (), weights: np.ndarray | None = None,
               metrics: Sequence[str] = ROBUSTNESS_METRICS) -> pd.DataFrame:
    """The tidy robustness table (:data:`ROBUSTNESS_COLUMNS`) of per-world means ``means``."""
    first = next(iter(means.values()))
    n = len(next(iter(first.values())))
    w = np.full(n, 1.0 / n) if weights is None else np.asarray(weights, dtype=np.float64)
    wanted = list(dict.fromkeys([*metrics, *(r.metric for r in requirements)]))
    scored = [m for m in wanted if m in METRIC_DIRECTIONS and m in first]
    rows = regret_rows(means, scored, w) + satisficing_rows(means, requirements, weights)
    return pd.DataFrame(rows, columns=list(ROBUSTNESS_COLUMNS))


def world_means(outcomes: pd.DataFrame, policies: Sequence[str], metrics: Sequence[str], per_world: int
                ) -> dict[str, dict[str, np.ndarray]]:
    """policy -> metric -> mean of each world draw's ``per_world`` replications (``outcomes`` by replication)."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for policy in policies:
        rows = outcomes[outcomes["policy"] == policy].sort_values("replication", kind="stable")
        out[policy] = {m: rows[m].to_numpy(dtype=np.float64).reshape(-1, per_world).mean(axis=1) for m in metrics}
    return out
