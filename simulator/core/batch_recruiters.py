"""The recruiters of a batch of replications: stacked arrays, per-seat copies of each market's parameters.

The same arithmetic as :mod:`simulator.core.recruiters`, element by element, with every
market parameter an array over seats (equal within a replication), so one pass serves the whole
batch and each seat's numbers are bit for bit those of its replication run alone.  Only the
Poisson draws are per replication (each from its own stream, into one stacked buffer).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.core.recruiters import MAX_DAILY_INMAILS, AdaptTerms, Recruiters
from simulator.core.sampling import MIN_TABLE_DRAWS, poisson

STACKED_FIELDS: tuple[str, ...] = ("skill", "budget", "pers0", "bulk0", "vol0", "pers", "bulk", "vol",
                                   "ewma_spent", "ewma_refunded")
"""Recruiter arrays the daily step reads or writes; each replication's ``Recruiters`` keeps views of them."""


@dataclass
class BatchRecruiters:
    """Stacked recruiter state plus per-seat market parameters (arrays over the batch's seats)."""

    rec: dict[str, np.ndarray]
    counts: np.ndarray           # seats per replication
    off: np.ndarray              # seat offsets (K + 1)
    minutes_bulk: np.ndarray     # sending.minutes_bulk
    minutes_span: np.ndarray     # minutes_personalized - minutes_bulk
    ref: np.ndarray              # adaptation.cost_reference
    cost_factor: np.ndarray      # weight_cost / max(1 - ref, 1e-9)
    w_scarcity: np.ndarray
    w_warning: np.ndarray
    w_improvement: np.ndarray
    memory_days: np.ndarray
    terms: AdaptTerms
    lam: np.ndarray              # per replication [bulk R_i | one-to-one R_i] blocks
    both: np.ndarray             # the Poisson draws, same layout
    bulk_pos: np.ndarray         # position of each seat's bulk mean in ``lam``
    one_pos: np.ndarray
    edges: list[int]             # 2 x seat offsets: each replication's block of ``lam``

    @classmethod
    def stack(cls, recs: list[Recruiters], markets: list, seat_off: np.ndarray) -> BatchRecruiters:
        counts = np.diff(seat_off)

        def per_seat(values: list[float]) -> np.ndarray:
            return np.repeat(np.asarray(values, dtype=np.float64), counts)

        stacked = {}
        for name in STACKED_FIELDS:
            stacked[name] = np.concatenate([getattr(r, name) for r in recs]).astype(np.float64)
            for i, r in enumerate(recs):
                setattr(r, name, stacked[name][int(seat_off[i]):int(seat_off[i + 1])])
        sending = [m.sending for m in markets]
        adaptation = [s.adaptation for s in sending]
        terms = [AdaptTerms.of(r, a) for r, a in zip(recs, adaptation, strict=True)]
        seat = np.arange(int(seat_off[-1]))
        rep_start = np.repeat(seat_off[:-1], counts)
        bulk_pos = seat + rep_start  # replication i's block starts at 2 off_i: bulk first
        return cls(
            rec=stacked, counts=counts, off=seat_off,
            minutes_bulk=per_seat([s.minutes_bulk for s in sending]),
            minutes_span=per_seat([s.minutes_personalized - s.minutes_bulk for s in sending]),
            ref=per_seat([a.cost_reference for a in adaptation]),
            cost_factor=per_seat([a.weight_cost / max(1.0 - a.cost_reference, 1e-9) for a in adaptation]),
            w_scarcity=per_seat([a.weight_scarcity for a in adaptation]),
            w_warning=per_seat([a.weight_warning for a in adaptation]),
            w_improvement=per_seat([a.weight_improvement for a in adaptation]),
            memory_days=per_seat([a.memory_days for a in adaptation]),
            terms=AdaptTerms(step=np.concatenate([t.step for t in terms]).astype(np.float64),
                             pers_span=np.concatenate([t.pers_span for t in terms]).astype(np.float64),
                             vol_cut=np.concatenate([t.vol_cut for t in terms]).astype(np.float64)),
            lam=np.empty(2 * seat.size), both=np.empty(2 * seat.size, dtype=np.int64),
            bulk_pos=bulk_pos, one_pos=bulk_pos + np.repeat(counts, counts), edges=(2 * seat_off).tolist(),
        )

    def desired_sends(self, day_factor: np.ndarray, bulk_allowed: np.ndarray,
                      rngs: list[np.random.Generator]) -> tuple[np.ndarray, np.ndarray]:
        """``recruiters.desired_sends`` for every seat (``day_factor`` per seat; one Poisson call per replication)."""
        rec, lam = self.rec, self.lam
        vol = rec["vol"] * day_factor
        np.minimum(vol, MAX_DAILY_INMAILS, out=vol)
        lam_bulk = vol * rec["bulk"]
        vol -= lam_bulk
        lam[self.bulk_pos] = lam_bulk
        lam[self.one_pos] = vol
        both = self.both
        for rng, a, b in zip(rngs, self.edges, self.edges[1:]):  # noqa: B905 - edges has one more entry
            if b - a < MIN_TABLE_DRAWS:  # what poisson() does here, without its checks
                both[a:b] = rng.poisson(lam[a:b])
            else:
                both[a:b] = poisson(lam[a:b], rng)
        n_bulk, n_one = both.take(self.bulk_pos), both.take(self.one_pos)
        if not bulk_allowed.all():
            n_bulk[~bulk_allowed] = 0
        minutes = self.minutes_span * rec["pers"]
        minutes += self.minutes_bulk
        minutes *= n_one
        minutes += n_bulk * self.minutes_bulk
        over = (minutes > rec["budget"]).nonzero()[0]
        if over.size:
            scale = rec["budget"][over] / minutes[over]
            n_one[over] = np.floor(n_one[over] * scale)
            n_bulk[over] = np.floor(n_bulk[over] * scale)
        return n_one, n_bulk

    def pressure(self, balance_per_head: np.ndarray, days_to_grant: np.ndarray,
                 warned: np.ndarray | None, in_improvement: np.ndarray | None,
                 anticipation: np.ndarray | None = None) -> np.ndarray:
        """``recruiters.pressure`` for every seat (``days_to_grant``: max(days, 1) per seat, float64)."""
        rec, ref = self.rec, self.ref
        spent = rec["ewma_spent"]
        c = np.maximum(spent, 1e-9)
        np.divide(rec["ewma_refunded"], c, out=c)
        np.subtract(1.0, c, out=c)
        idle = (spent <= 1e-9).nonzero()[0]
        if idle.size:
            c[idle] = ref[idle]
        np.maximum(c, 0.0, out=c)
        p = c - ref
        np.maximum(p, 0.0, out=p)
        p *= self.cost_factor
        need = rec["vol"] * c
        need *= days_to_grant
        need += 1.0
        scarcity = np.divide(balance_per_head, need, out=need)
        np.subtract(1.0, scarcity, out=scarcity)
        np.maximum(scarcity, 0.0, out=scarcity)
        scarcity *= self.w_scarcity
        p += scarcity
        if warned is not None:
            p += self.w_warning * warned
        if in_improvement is not None:
            p += self.w_improvement * in_improvement
        if anticipation is not None:
            p += anticipation
        return np.minimum(p, 1.0, out=p)

    def remember(self, spent: np.ndarray, refunded: np.ndarray) -> None:
        rec = self.rec
        w = 1.0 / self.memory_days
        rec["ewma_spent"] += w * (spent - rec["ewma_spent"])
        rec["ewma_refunded"] += w * (refunded - rec["ewma_refunded"])

    def adapt(self, p: np.ndarray) -> None:
        """``recruiters.adapt`` for every seat (the batch adapts only when all its replications do)."""
        rec, k = self.rec, self.terms
        move = k.pers_span * p
        move += rec["pers0"]
        move -= rec["pers"]
        move *= k.step
        rec["pers"] += move
        np.multiply(rec["bulk0"], p, out=move)
        np.subtract(rec["bulk0"], move, out=move)
        move -= rec["bulk"]
        move *= k.step
        rec["bulk"] += move
        np.multiply(k.vol_cut, p, out=move)
        np.subtract(rec["vol0"], move, out=move)
        move -= rec["vol"]
        move *= k.step
        rec["vol"] += move
