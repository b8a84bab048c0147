"""The posterior predictive: every posterior world again, on fresh replications, for every figure.

Each posterior world runs every setting the targets and the validation figures need (their
policies with their run settings, another file's included) on the replication seeds ``R..2R-1``
- fresh, so the share of the posterior inside a band is a check, not the acceptance rule read
back.  A figure's value in a world is the mean over those replications of its per-replication
value (a comparison: the paired change, common random numbers); across worlds the posterior
weights give its distribution: mean, median, 90% and 95% intervals, share inside the band.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from simulator.experiments.abc import weighted_quantile
from simulator.experiments.target_bands import Band
from simulator.experiments.world_evaluation import Setting, WorldEvaluator, band_means


def _finite_or_nan(x: float) -> float:
    return x if math.isfinite(x) else math.nan


def figure_summary(band: Band, x: np.ndarray, w: np.ndarray) -> dict[str, float]:
    """Weighted mean, quantiles and share inside the band of per-world values ``x`` (NaN worlds dropped)."""
    ok = np.isfinite(x)
    x, w = x[ok], w[ok]
    if len(x) == 0 or w.sum() <= 0:
        return {k: math.nan for k in ("mean", "q025", "q05", "median", "q95", "q975", "inside_share")}
    w = w / w.sum()
    out = {"mean": float(np.sum(w * x))}
    for name, q in (("q025", 0.025), ("q05", 0.05), ("median", 0.5), ("q95", 0.95), ("q975", 0.975)):
        out[name] = weighted_quantile(x, w, q)
    out["inside_share"] = float(np.sum(w * band.inside(x))) if band.kind != "none" else math.nan
    return out


def posterior_predictive(evaluator: WorldEvaluator, bands: Sequence[Band], checks: Sequence[Band],
                         settings: tuple[Setting, ...], thetas: np.ndarray, weights: np.ndarray,
                         replications: int) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, np.ndarray]]:
    """(per target: band, weighted mean, 95% interval, share inside; per validation figure: its predicted
    distribution; per figure name: each world's value)."""
    figures = [*bands, *checks]
    keys = tuple(dict.fromkeys(b.key for b in figures))
    indices = range(replications, 2 * replications)
    obs = evaluator.observe("predictive", thetas, indices, None, settings, keys)
    fitted = settings[0].name
    per_world = [band_means(figures, o, fitted) for o in obs]
    values = {b.name: np.array([m[b.column] for m in per_world]) for b in figures}
    w = np.asarray(weights, dtype=np.float64)
    rows = []
    for band in bands:
        s = figure_summary(band, values[band.name], w)
        rows.append({"target": band.name, "key": band.key, "low": band.low, "high": band.high, "mean": s["mean"],
                     "q025": s["q025"], "q975": s["q975"], "inside_share": s["inside_share"]})
    check_rows = []
    for band in checks:
        s = figure_summary(band, values[band.name], w)
        check_rows.append({"check": band.name, "policy": band.setting, "baseline": band.baseline,
                           "metric": band.key, "measure": "relative change" if band.relative else "difference",
                           **{k: s[k] for k in ("mean", "q025", "q05", "median", "q95", "q975")},
                           "low": _finite_or_nan(band.low), "high": _finite_or_nan(band.high),
                           "inside_share": s["inside_share"], "source": band.source})
    return pd.DataFrame(rows), pd.DataFrame(check_rows), values
