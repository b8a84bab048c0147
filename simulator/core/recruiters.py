"""The recruiters (the agents): who they are, how much they want to send, and how they adapt.

All recruiters live in parallel arrays; one call decides everybody's sends for a day.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.core.config import POOLABLE_SEATS, SEAT_TYPES, Adaptation, Market, SendingModel
from simulator.core.members import apportion, draw
from simulator.core.metrics import PERSONALIZATION_BANDS
from simulator.core.sampling import poisson

MAX_DAILY_INMAILS = 1e6
"""Cap on a recruiter's expected InMails a day (keeps absurd volume distributions finite)."""


@dataclass
class Recruiters:
    """Recruiter arrays (index = recruiter id)."""

    seat: np.ndarray            # int8 index into SEAT_TYPES
    group: np.ndarray           # int16 index into market.recruiters
    adaptive: np.ndarray        # bool
    team: np.ndarray            # int64 global team id (teams never span groups)
    segment: np.ndarray         # int16 target segment
    skill: np.ndarray           # float64 targeting skill in [0, 1]
    budget: np.ndarray          # float64 minutes per day
    pers0: np.ndarray           # initial personalization in [0, 1]
    bulk0: np.ndarray           # initial bulk share in [0, 1]
    vol0: np.ndarray            # initial desired InMails per weekday
    pers: np.ndarray            # current personalization
    bulk: np.ndarray            # current bulk share
    vol: np.ndarray             # current desired volume
    ewma_spent: np.ndarray      # recent credits spent per day
    ewma_refunded: np.ndarray   # recent credits refunded per day

    @property
    def count(self) -> int:
        return int(self.seat.size)

    def poolable(self) -> np.ndarray:
        """Whether each recruiter's seat type may pool credits with its team."""
        ok = np.array([s in POOLABLE_SEATS for s in SEAT_TYPES])
        return ok[self.seat]

    def personalization_band(self) -> np.ndarray:
        """'low' / 'mid' / 'high' by initial personalization (thirds of [0, 1])."""
        idx = np.minimum((self.pers0 * 3.0).astype(np.int64), 2)
        return np.asarray(PERSONALIZATION_BANDS, dtype=object)[idx]


def build_recruiters(market: Market, rng: np.random.Generator, cost_reference: float) -> Recruiters:
    """Draw the recruiters of every group, in group order (same for every policy)."""
    nseg = len(market.members.segments)
    seg_share = np.array([s.share for s in market.members.segments], dtype=np.float64)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in (
        "seat", "group", "adaptive", "team", "segment", "skill", "budget", "pers0", "bulk0", "vol0")}
    next_team = 0
    for group_index, group in enumerate(market.recruiters):
        n = group.count
        weights = np.array(group.segment_weights, dtype=np.float64) if group.segment_weights is not None else seg_share
        parts["seat"].append(np.full(n, SEAT_TYPES.index(group.seat_type), dtype=np.int8))
        parts["group"].append(np.full(n, group_index, dtype=np.int16))
        parts["adaptive"].append(np.full(n, group.behaviour == "adaptive", dtype=bool))
        parts["team"].append(next_team + np.arange(n, dtype=np.int64) // group.team_size)
        next_team += -(-n // group.team_size)
        seg = np.repeat(np.arange(nseg, dtype=np.int16), apportion(n, weights)) if n else np.zeros(0, np.int16)
        parts["segment"].append(rng.permutation(seg))
        parts["pers0"].append(np.clip(draw(group.personalization, n, rng), 0.0, 1.0))
        parts["skill"].append(np.clip(draw(group.targeting_skill, n, rng), 0.0, 1.0))
        parts["vol0"].append(np.maximum(draw(group.daily_volume, n, rng), 0.0))
        parts["bulk0"].append(np.clip(draw(group.bulk_share, n, rng), 0.0, 1.0))
        parts["budget"].append(np.maximum(draw(group.time_budget_minutes, n, rng), 0.0))
    drawn = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in parts.items()}
    vol0 = drawn["vol0"].astype(np.float64)
    return Recruiters(
        seat=drawn["seat"].astype(np.int8), group=drawn["group"].astype(np.int16),
        adaptive=drawn["adaptive"].astype(bool), team=drawn["team"].astype(np.int64),
        segment=drawn["segment"].astype(np.int16), skill=drawn["skill"],
        budget=drawn["budget"], pers0=drawn["pers0"], bulk0=drawn["bulk0"], vol0=vol0,
        pers=drawn["pers0"].copy(), bulk=drawn["bulk0"].copy(), vol=vol0.copy(),
        ewma_spent=vol0.copy(), ewma_refunded=vol0 * (1.0 - cost_reference),
    )


def one_to_one_minutes(rec: Recruiters, sending: SendingModel) -> np.ndarray:
    """Minutes a one-to-one InMail takes: from the bulk cost at personalization 0 to the full cost at 1."""
    return sending.minutes_bulk + (sending.minutes_personalized - sending.minutes_bulk) * rec.pers


def desired_sends(
    rec: Recruiters, sending: SendingModel, day_factor: float, bulk_allowed: np.ndarray, rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Today's wished-for (one-to-one, bulk) InMails per recruiter, within each one's time budget.

    Counts are Poisson around ``vol * day_factor`` split by the bulk share; bulk is dropped where
    it is not allowed (Improvement Period); if the InMails need more minutes than the budget,
    both kinds are scaled down by the same factor.
    """
    R = rec.count
    lam = np.empty(2 * R)  # bulk first, then one-to-one: one call draws both
    vol = np.multiply(rec.vol, day_factor, out=lam[R:])
    np.minimum(vol, MAX_DAILY_INMAILS, out=vol)  # Poisson refuses absurd rates
    np.multiply(vol, rec.bulk, out=lam[:R])
    vol -= lam[:R]  # lam (1 - b) as lam - lam b: one pass fewer
    both = poisson(lam, rng)
    n_bulk, n_one = both[:R], both[R:]
    if not bulk_allowed.all():
        n_bulk[~bulk_allowed] = 0
    minutes = n_one * one_to_one_minutes(rec, sending)
    minutes += n_bulk * sending.minutes_bulk
    over = (minutes > rec.budget).nonzero()[0]
    if over.size:  # minutes > budget >= 0 there, so the scale is finite
        scale = rec.budget[over] / minutes[over]
        n_one[over] = np.floor(n_one[over] * scale)
        n_bulk[over] = np.floor(n_bulk[over] * scale)
    return n_one, n_bulk


def pressure(
    rec: Recruiters, adaptation: Adaptation, balance_per_head: np.ndarray, days_to_grant: int,
    warned: np.ndarray | bool, in_improvement: np.ndarray | bool, anticipation: np.ndarray | None = None,
) -> np.ndarray:
    """The incentive pressure P in [0, 1] each recruiter feels (docs/model.md, 'Adaptation').

    cost      = clip((c - c_ref) / (1 - c_ref), 0, 1), c = 1 - refunded/spent over the recent past
    scarcity  = clip(1 - balance / (expected net credit need until the next grant), 0, 1)

    Only the bounds that can bind are applied: refunds and balances are never negative, so c <= 1,
    cost <= 1, scarcity <= 1 and P >= 0 hold without clipping (fewer passes over the recruiters).
    ``warned`` and ``in_improvement`` may be ``False`` when nobody is in that state; ``anticipation``
    (:mod:`simulator.core.anticipation`, None when off) is added before the final clip.
    """
    ref = adaptation.cost_reference
    spent = rec.ewma_spent
    c = np.maximum(spent, 1e-9)
    np.divide(rec.ewma_refunded, c, out=c)
    np.subtract(1.0, c, out=c)
    idle = (spent <= 1e-9).nonzero()[0]
    if idle.size:
        c[idle] = ref
    np.maximum(c, 0.0, out=c)
    p = c - ref
    np.maximum(p, 0.0, out=p)
    p *= adaptation.weight_cost / max(1.0 - ref, 1e-9)
    need = rec.vol * c
    need *= max(days_to_grant, 1)
    need += 1.0
    scarcity = np.divide(balance_per_head, need, out=need)
    np.subtract(1.0, scarcity, out=scarcity)
    np.maximum(scarcity, 0.0, out=scarcity)
    scarcity *= adaptation.weight_scarcity
    p += scarcity
    if np.any(warned):
        p += adaptation.weight_warning * np.asarray(warned)
    if np.any(in_improvement):
        p += adaptation.weight_improvement * np.asarray(in_improvement)
    if anticipation is not None:
        p += anticipation
    return np.minimum(p, 1.0, out=p)


@dataclass(frozen=True)
class AdaptTerms:
    """What :func:`adapt` needs that does not change from day to day (work it out once per run)."""

    step: np.ndarray      # speed for adaptive recruiters, 0 for fixed ones
    pers_span: np.ndarray  # (1 - pi0) * max_personalization_shift: personalization target = pi0 + span * P
    vol_cut: np.ndarray   # V0 * max_volume_cut: volume target = V0 - cut * P

    @classmethod
    def of(cls, rec: Recruiters, adaptation: Adaptation) -> AdaptTerms:
        return cls(step=adaptation.speed * rec.adaptive,
                   pers_span=(1.0 - rec.pers0) * adaptation.max_personalization_shift,
                   vol_cut=rec.vol0 * adaptation.max_volume_cut)


def adapt(rec: Recruiters, adaptation: Adaptation, p: np.ndarray, terms: AdaptTerms | None = None) -> None:
    """Move adaptive recruiters a share ``speed`` of the way to the targets set by pressure ``p``.

    ``terms``: :meth:`AdaptTerms.of` ``(rec, adaptation)``, when the caller keeps it across days.
    """
    if not adaptation.enabled:
        return
    k = AdaptTerms.of(rec, adaptation) if terms is None else terms
    move = k.pers_span * p  # personalization target pi0 + span * P
    move += rec.pers0
    move -= rec.pers
    move *= k.step  # 0 for fixed recruiters: their state is left exactly as is
    rec.pers += move
    np.multiply(rec.bulk0, p, out=move)  # bulk target b0 * (1 - P) = b0 - b0 * P
    np.subtract(rec.bulk0, move, out=move)
    move -= rec.bulk
    move *= k.step
    rec.bulk += move
    np.multiply(k.vol_cut, p, out=move)  # volume target V0 * (1 - cut * P) = V0 - V0 cut * P
    np.subtract(rec.vol0, move, out=move)
    move -= rec.vol
    move *= k.step
    rec.vol += move


def remember(rec: Recruiters, adaptation: Adaptation, spent: np.ndarray, refunded: np.ndarray) -> None:
    """Update each recruiter's memory of credits spent and refunded (exponential, ``memory_days``)."""
    w = 1.0 / adaptation.memory_days
    rec.ewma_spent += w * (spent - rec.ewma_spent)
    rec.ewma_refunded += w * (refunded - rec.ewma_refunded)
