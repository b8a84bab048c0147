"""Who ends up worse off: per recruiter subgroup, the paired changes an analyst judges a policy by.

From the per-replication breakdown (``Results.breakdown_replications``) each subgroup gets, per
replication, its responses, response rate, stock-out days per recruiter and net credits per
response; the ratios are taken replication by replication and *then* paired against the
baseline (:func:`~simulator.experiments.comparison.compare`), so their intervals are right.
A subgroup is **worse off** when the 95% paired CI of its responses lies entirely below zero,
or that of its stock-out days entirely above zero (:func:`worse_off`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from simulator.experiments.comparison import compare

GROUP_KEYS: tuple[str, ...] = ("by", "label")
"""The columns that name a recruiter subgroup in a breakdown frame."""

GROUP_OUTCOME_METRICS: tuple[str, ...] = (
    "recruiters", "responses", "response_rate", "stockout_days_per_recruiter", "credits_per_response",
)
"""The per-subgroup quantities of :func:`group_outcomes`, in table order."""

LOSS_DIRECTIONS: dict[str, int] = {"responses": -1, "stockout_days_per_recruiter": +1}
"""The quantities a subgroup can lose on, and the sign of a change that is a loss."""

WORSE_OFF_RULE = "worse off: the 95% paired CI of responses lies below 0, or that of stock-out days above 0"
"""The marking rule in one line (printed under the tables)."""


def group_outcome_replications(breakdown_replications: pd.DataFrame) -> pd.DataFrame:
    """Per (by, label, policy, replication): the :data:`GROUP_OUTCOME_METRICS` of the subgroup.

    ``credits_per_response`` = net credit burn / responses of that replication (NaN without a
    response: that replication is left out of the pairing for this quantity only);
    ``stockout_days_per_recruiter`` = stock-out recruiter-days / recruiters.
    """
    frame = breakdown_replications
    responses = frame["responses"].astype(np.float64)
    recruiters = frame["recruiters"].astype(np.float64)
    out = frame[[*GROUP_KEYS, "policy", "replication"]].copy()
    out["recruiters"] = recruiters
    out["responses"] = responses
    out["response_rate"] = frame["response_rate"].astype(np.float64)
    out["stockout_days_per_recruiter"] = (frame["stockout_recruiter_days"].astype(np.float64)
                                          / recruiters.where(recruiters > 0))
    out["credits_per_response"] = frame["net_credit_burn"].astype(np.float64) / responses.where(responses > 0)
    return out


def worse_off(metric: str, ci_low: float, ci_high: float) -> bool:
    """Whether a paired CI shows a loss on ``metric``: it excludes zero on the losing side.

    Responses are lost when the whole interval is below 0; stock-out days when it is above 0.
    An interval that touches or spans 0 is no evidence of a loss; metrics outside
    :data:`LOSS_DIRECTIONS` are never losses.
    """
    sign = LOSS_DIRECTIONS.get(metric, 0)
    if not (math.isfinite(ci_low) and math.isfinite(ci_high)):
        return False
    return (sign < 0 and ci_high < 0) or (sign > 0 and ci_low > 0)


def better_off(metric: str, ci_low: float, ci_high: float) -> bool:
    """Whether a paired CI shows a gain on ``metric`` (the mirror of :func:`worse_off`)."""
    sign = LOSS_DIRECTIONS.get(metric, 0)
    if not (math.isfinite(ci_low) and math.isfinite(ci_high)):
        return False
    return (sign < 0 and ci_low > 0) or (sign > 0 and ci_high < 0)


def group_outcomes(breakdown_replications: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """Paired comparison of every subgroup's outcomes against ``baseline``, with the loss marks.

    The columns of :func:`compare` (by, label, metric, policy, diff, ci_low, ci_high, rel_change,
    ...) plus ``ratio`` (policy mean / baseline mean; NaN from a zero baseline), ``worse_off`` and
    ``better_off`` (:func:`worse_off`, :func:`better_off` of the row's interval).
    """
    frame = group_outcome_replications(breakdown_replications)
    out = compare(frame, baseline, GROUP_OUTCOME_METRICS, keys=GROUP_KEYS)
    base = out["baseline_mean"].to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["ratio"] = np.where(base != 0, out["policy_mean"].to_numpy(dtype=np.float64) / base, np.nan)
    marks = list(zip(out["metric"], out["ci_low"].astype(np.float64), out["ci_high"].astype(np.float64), strict=True))
    out["worse_off"] = pd.Series([worse_off(*mark) for mark in marks], index=out.index, dtype=bool)
    out["better_off"] = pd.Series([better_off(*mark) for mark in marks], index=out.index, dtype=bool)
    return out


def group_verdicts(outcomes: pd.DataFrame) -> pd.DataFrame:
    """One row per (policy, by, label): ``worse_off`` / ``better_off`` on any loss quantity, and on which.

    Columns: policy, by, label, worse_off, better_off, lost_on (the quantities of
    :data:`LOSS_DIRECTIONS` it is worse off on, comma-separated).  ``better_off`` means a gain
    on some quantity and a loss on none.
    """
    columns = ["policy", *GROUP_KEYS, "worse_off", "better_off", "lost_on"]
    rows = outcomes[outcomes["metric"].isin(list(LOSS_DIRECTIONS))]
    out = []
    for (policy, by, label), group in rows.groupby(["policy", *GROUP_KEYS], sort=False):
        lost = [m for m in LOSS_DIRECTIONS if bool(group.loc[group["metric"] == m, "worse_off"].any())]
        gained = bool(group["better_off"].any())
        out.append({"policy": policy, "by": by, "label": label, "worse_off": bool(lost),
                    "better_off": gained and not lost, "lost_on": ", ".join(lost)})
    return pd.DataFrame(out, columns=columns)
