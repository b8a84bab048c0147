"""Model quantities for the published anecdotes and the one figure no target reads (``validate-model``).

* **48% of B2B decision makers ignore non-personalized messages** (seed 000):
  :func:`ignore_share` = ``1 - E[p(answer | pi=0)] / E[p(answer | pi=1)]`` over the active members
  of a market - the share of the members who would answer a fully personalized message that do
  not answer a generic one.  Exact (Gauss-Hermite over the members' logit heterogeneity); fatigue
  multiplies both probabilities alike, so it cancels.
* **One research user's 30-40% -> 0.05%** (seed 003) and the **4-seat team whose pool "never exceeded
  400" under the new policy while "upwards of 900-1000" accrued per month before** (seed 003, a
  comment): :func:`anecdote_task` runs a world's market under two settings (old_2014 and new_2015
  with their dates) on the same seed and measures the share of seats whose response rate falls from
  >= 30% to < 1%, the largest pool of four average seats under the new rule, and the credits coming
  into four average seats per month (allotments plus refunds) under the old rule.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from simulator.core.batch import ReplicationJob, run_replications
from simulator.core.config import ConfigError, Market
from simulator.core.metrics import ReplicationResult
from simulator.core.seeding import replication_seed
from simulator.experiments.observation import Observation
from simulator.experiments.world_evaluation import Setting
from simulator.scenario.uncertain import UncertainParameter, world_market

TEAM_SEATS = 4
"""The anecdote's team: four seats."""
HIGH_RATE, COLLAPSED_RATE, MIN_SENT = 0.30, 0.01, 20
"""A seat 'falls from 30-40% to 0.05%' when its rate is >= 30% under the old rule and < 1% under the new,
counted among seats that sent at least ``MIN_SENT`` InMails under both (a rate of 3 InMails says nothing)."""
DAYS_PER_MONTH = 365.25 / 12


def _logistic(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def ignore_share(market: Market, nodes: int = 64) -> float:
    """``1 - E[p(answer | pi=0)] / E[p(answer | pi=1)]`` over the market's active members (see the module)."""
    resp = market.response
    x, w = np.polynomial.hermite_e.hermegauss(nodes)  # probabilists' Hermite: E over N(0, 1)
    w = w / w.sum()
    eta = resp.member_heterogeneity_sd * x
    low = high = total = 0.0
    for seg in market.members.segments:
        weight = seg.share * seg.active_share
        base = np.log(seg.base_response / (1.0 - seg.base_response))
        for pi, acc in ((0.0, "low"), (1.0, "high")):
            p = float(np.sum(w * _logistic(base + eta + resp.personalization_effect
                                           * (pi - resp.reference_personalization))))
            if acc == "low":
                low += weight * p
            else:
                high += weight * p
        total += weight
    return 1.0 - low / high if high > 0 else float("nan")


def seat_rates(result: ReplicationResult) -> tuple[np.ndarray, np.ndarray]:
    """(response rate, InMails sent) per seat."""
    sent = np.asarray(result.recruiters.sent, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(sent > 0, np.asarray(result.recruiters.responses, dtype=np.float64) / sent, np.nan)
    return rate, sent


def anecdote_values(old: ReplicationResult, new: ReplicationResult) -> dict[str, float]:
    """The anecdotes' quantities from one replication of each rule on the same seed (the same seats)."""
    rate_old, sent_old = seat_rates(old)
    rate_new, sent_new = seat_rates(new)
    both = (sent_old >= MIN_SENT) & (sent_new >= MIN_SENT)
    high = both & (rate_old >= HIGH_RATE)
    collapsed = high & (rate_new < COLLAPSED_RATE)
    seats = max(len(sent_old), 1)
    days_old = max(len(old.daily["credits_granted"]), 1)
    incoming = float(np.sum(old.daily["credits_granted"]) + np.sum(old.daily["credits_refunded"]))
    return {
        "seat_collapse_share": float(collapsed.sum() / high.sum()) if high.sum() else 0.0,
        "seats_high_before": float(high.sum()),
        "seats_collapsed": float(collapsed.sum()),
        "team_pool_max_new": TEAM_SEATS * float(np.max(new.daily["balance"], initial=0.0)) / seats,
        "team_inflow_per_month_old": TEAM_SEATS * incoming / seats / days_old * DAYS_PER_MONTH,
    }


def anecdote_task(market: Market, parameters: tuple[UncertainParameter, ...], values: np.ndarray,
                  old: Setting, new: Setting, root_seed: int, index: int) -> Observation:
    """One world's anecdote quantities from replication ``index`` of both settings (a picklable task)."""
    try:
        built = world_market(market, parameters, [float(v) for v in values])
    except (ConfigError, KeyError):
        return Observation({})
    jobs = [ReplicationJob(built, s.policy, dataclasses.replace(s.run, record_daily=True),
                           replication_seed(root_seed, index)) for s in (old, new)]
    first, second = run_replications(jobs)
    return Observation(anecdote_values(first, second))
