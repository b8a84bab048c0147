"""The statistics of replications: per-policy summaries and paired comparisons against the baseline.

Differences are taken replication by replication (paired: common random numbers) and summarized
with the Student-t intervals of :mod:`simulator.experiments.statistics`.  Rows come out in the
order of the input (keys as first seen, policies as first seen, metrics as listed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from simulator.core.metrics import METRIC_NAMES
from simulator.experiments.statistics import ALPHA, contain, t_half_width, t_quantile_dof

MAIN_METRICS: tuple[tuple[str, bool], ...] = (("response_rate", False), ("net_credit_burn", True))
"""The main comparison: (metric, judged relative to the baseline?) - what ``--precision`` targets."""


def _long(frame: pd.DataFrame, keys: Sequence[str], metrics: Sequence[str]) -> pd.DataFrame:
    return frame.melt(id_vars=[*keys, "policy", "replication"], value_vars=list(metrics),
                      var_name="metric", value_name="value")


def _in_input_order(out: pd.DataFrame, frame: pd.DataFrame, keys: Sequence[str],
                    metrics: Sequence[str]) -> pd.DataFrame:
    """Sort rows by (keys as first seen in ``frame``, policy as first seen, metric as listed)."""
    cols: list[str] = []
    ranks: dict[str, pd.Series] = {}
    if keys:
        seen = frame[list(keys)].drop_duplicates()
        rank = {tuple(row): i for i, row in enumerate(seen.itertuples(index=False))}
        ranks["_k"] = pd.Series([rank[tuple(r)] for r in out[list(keys)].itertuples(index=False)], index=out.index)
        cols.append("_k")
    pol_rank = {p: i for i, p in enumerate(frame["policy"].drop_duplicates())}
    ranks["_p"] = out["policy"].map(pol_rank)
    met_rank = {m: i for i, m in enumerate(metrics)}
    ranks["_m"] = out["metric"].map(met_rank)
    cols += ["_p", "_m"]
    tmp = out.assign(**ranks).sort_values(cols, kind="stable")
    return tmp.drop(columns=cols).reset_index(drop=True)


def summarize(frame: pd.DataFrame, metrics: Sequence[str] = METRIC_NAMES, keys: Sequence[str] = ()) -> pd.DataFrame:
    """Per policy (and ``keys``) and metric: mean, std, 95% t-interval, n.

    Never NaN for finite data: with a single replication there is no spread to estimate, so
    ``std`` is reported as 0 and the interval collapses to the mean (read ``n``); identical
    replications give ``std`` 0 and the interval [mean, mean] as well.
    """
    long = _long(frame, keys, metrics)
    g = long.groupby([*keys, "policy", "metric"], sort=False)["value"]
    out = g.agg(mean="mean", std="std", n="count").reset_index()
    single = out["n"].to_numpy() < 2
    out["std"] = np.where(single, 0.0, out["std"].to_numpy(dtype=np.float64))
    hw = np.where(single, 0.0, t_half_width(out["std"].to_numpy(), out["n"].to_numpy()))
    mean = out["mean"].to_numpy(dtype=np.float64)
    out["ci_low"], out["ci_high"] = contain(mean, mean - hw, mean + hw)
    out = out[[*keys, "policy", "metric", "mean", "std", "ci_low", "ci_high", "n"]]
    return _in_input_order(out, frame, keys, metrics)


COMPARISON_COLUMNS: tuple[str, ...] = (
    "metric", "baseline", "policy", "diff", "ci_low", "ci_high", "rel_change", "p_value",
    "baseline_mean", "policy_mean", "n", "rel_ci_low", "rel_ci_high",
    "unpaired_ci_low", "unpaired_ci_high", "ci_shrink", "significant",
)
"""Columns of :func:`compare` (the first eight are the ``comparison.csv`` contract)."""


def compare(frame: pd.DataFrame, baseline: str, metrics: Sequence[str] = METRIC_NAMES,
            keys: Sequence[str] = ()) -> pd.DataFrame:
    """Paired differences of every other policy against ``baseline``, replication by replication.

    ``diff``/``ci_*``/``p_value``: mean of (policy - baseline) over the replications both have, its
    95% t-interval and two-sided paired t-test p-value.  ``rel_*``: the same divided by the
    baseline mean.  ``unpaired_*``: the Welch interval that ignores the pairing; ``ci_shrink`` is
    how much narrower the paired interval is (0.8 = 80% narrower).

    Degenerate cases, chosen so that no 0/0 NaN leaks into the tables: with one replication the
    intervals collapse to ``diff`` (as in :func:`summarize`), ``ci_shrink`` is 0 and ``p_value``
    is left empty (no test is possible; ``significant`` is false).  With a baseline mean of 0,
    ``rel_*`` are 0 when the policy does not differ at all and empty otherwise (a change from 0
    has no relative size).  Every interval holds its estimate (:func:`~simulator.experiments.statistics.contain`):
    ``rel_change`` is ``diff / baseline mean`` while its bounds are ``(diff -+ hw) / baseline mean``,
    and round-off could otherwise leave it a hair outside a collapsed interval.
    """
    empty = pd.DataFrame(columns=[*keys, *COMPARISON_COLUMNS])
    long = _long(frame, keys, metrics)
    idx = [*keys, "metric", "replication"]
    by_policy = {p: g.set_index(idx)["value"] for p, g in long.groupby("policy", sort=False)}
    if baseline not in by_policy:
        return empty
    base = by_policy[baseline]
    gkeys = [*keys, "metric"]
    parts = []
    for pol, values in by_policy.items():
        if pol == baseline:
            continue
        pair = pd.concat({"b": base, "p": values}, axis=1, join="inner").dropna()
        pair["d"] = pair["p"] - pair["b"]
        g = pair.groupby(level=gkeys, sort=False)
        agg = pd.DataFrame({
            "baseline_mean": g["b"].mean(), "policy_mean": g["p"].mean(), "diff": g["d"].mean(),
            "sd_d": g["d"].std(), "sd_b": g["b"].std(), "sd_p": g["p"].std(), "n": g["d"].count(),
        }).reset_index()
        agg["baseline"] = baseline
        agg["policy"] = pol
        parts.append(agg)
    if not parts:
        return empty
    out = pd.concat(parts, ignore_index=True)
    n = out["n"].to_numpy(dtype=np.float64)
    diff = out["diff"].to_numpy(dtype=np.float64)
    sd_d = out["sd_d"].to_numpy(dtype=np.float64)
    dof = np.where(n >= 2, n - 1, np.nan)
    hw = np.where(n >= 2, t_half_width(sd_d, n), 0.0)
    out["ci_low"], out["ci_high"] = contain(diff, diff - hw, diff + hw)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = 2.0 * stats.t.sf(np.abs(diff / (sd_d / np.sqrt(n))), dof)
    p = np.where((n >= 2) & (sd_d == 0), np.where(diff == 0, 1.0, 0.0), p)
    out["p_value"] = np.where(n < 2, np.nan, p)
    bmean = out["baseline_mean"].to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        nothing = (diff == 0) & (hw == 0)  # no difference at all: relative change 0 even from a zero baseline
        scale = np.where(bmean != 0, 1.0 / bmean, np.where(nothing, 0.0, np.nan))
        rel = np.where(bmean != 0, diff / bmean, np.where(nothing, 0.0, np.nan))
        ends = ((diff - hw) * scale, (diff + hw) * scale)  # swapped by a negative baseline mean
        out["rel_change"] = rel
        out["rel_ci_low"], out["rel_ci_high"] = contain(rel, np.minimum(*ends), np.maximum(*ends))
        vb = out["sd_b"].to_numpy(dtype=np.float64) ** 2 / n
        vp = out["sd_p"].to_numpy(dtype=np.float64) ** 2 / n
        welch_df = (vb + vp) ** 2 / (vb**2 / (n - 1) + vp**2 / (n - 1))
        welch_df = np.where(np.isfinite(welch_df), welch_df, dof)
        uhw = np.where(n >= 2, t_quantile_dof(welch_df) * np.sqrt(vb + vp), 0.0)
        out["unpaired_ci_low"], out["unpaired_ci_high"] = contain(diff, diff - uhw, diff + uhw)
        out["ci_shrink"] = np.where(uhw > 0, 1.0 - hw / uhw, 0.0)
    out["significant"] = (out["p_value"] < ALPHA) & ((out["ci_low"] > 0) | (out["ci_high"] < 0))
    return _in_input_order(out[[*keys, *COMPARISON_COLUMNS]], frame, keys, metrics)


def precision_half_widths(frame: pd.DataFrame, baseline: str) -> dict[str, float]:
    """CI half-widths of the main comparison (see :data:`MAIN_METRICS`), keyed ``policy:metric``.

    With a single policy, the half-widths of its own means are used instead.
    """
    names = [m for m, _ in MAIN_METRICS]
    relative = dict(MAIN_METRICS)
    out: dict[str, float] = {}
    if frame["replication"].nunique() < 2:  # no spread to estimate yet: not known to any precision
        return {f"{p}:{m}": math.inf for p in frame["policy"].drop_duplicates() for m in names}
    if frame["policy"].nunique() > 1:
        comp = compare(frame, baseline, names)
        for row in comp.itertuples(index=False):
            lo, hi = (row.rel_ci_low, row.rel_ci_high) if relative[row.metric] else (row.ci_low, row.ci_high)
            out[f"{row.policy}:{row.metric}"] = _finite_half(lo, hi)
    else:
        summ = summarize(frame, names)
        for row in summ.itertuples(index=False):
            hw = 0.5 * (row.ci_high - row.ci_low)
            if relative[row.metric]:
                hw = hw / abs(row.mean) if row.mean else math.inf
            out[f"{row.policy}:{row.metric}"] = hw if math.isfinite(hw) else math.inf
    return out


def _finite_half(lo: float, hi: float) -> float:
    hw = 0.5 * (float(hi) - float(lo))
    return hw if math.isfinite(hw) else math.inf
