"""The fatigue clocks of a batch: every replication's decay, scale and population total as arrays.

:class:`~simulator.core.members.FatigueClock` keeps, per replication, the day, the scale
``decay ** (day - ref)`` and the members' total fatigue (decayed by one multiplication a day).
Here the totals and scales of the whole batch are arrays; the two exponentials a clock works out
each day depend only on its decay and on the day differences, which every replication with the
same decay and reference day shares, so each is computed once per group and day by the clock's own
scalar expression (the same bits) and applied to the group with elementwise float64 products.
The rare rescale (a scale below ``1 / RESCALE_AT``) runs per replication by the clock's rule.
At the end the clocks and members get their final state back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from simulator.core.members import FatigueClock

if TYPE_CHECKING:
    from simulator.core.engine import Simulation


class BatchFatigue:
    """Fatigue clocks and totals of the replications of a batch (those with fatigue on)."""

    def __init__(self, sims: list[Simulation], seat_counts: np.ndarray) -> None:
        self.sims = sims
        fatigue = [s.market.fatigue for s in sims]
        self.on = np.array([f.enabled for f in fatigue], dtype=bool)
        self.any_on = bool(self.on.any())
        self.all_on = bool(self.on.all())
        self.clocks = [s.fatigue for s in sims]
        self.total = np.array([s.members.total_fatigue for s in sims], dtype=np.float64)
        self.scale = np.array([c.scale for c in self.clocks], dtype=np.float64)
        self.count = np.array([s.members.count for s in sims], dtype=np.float64)
        self.weight_bulk = np.array([f.weight_bulk for f in fatigue], dtype=np.float64)
        self.weight_pers = np.array([f.weight_personalized for f in fatigue], dtype=np.float64)
        self.equal = self.weight_bulk == self.weight_pers
        self.day = self.clocks[0].day if sims else 0
        groups: dict[tuple[float, int], list[int]] = {}
        for i, clock in enumerate(self.clocks):
            if self.on[i]:
                groups.setdefault((clock.log_decay, clock.ref), []).append(i)
        self.groups = {key: np.array(idx, dtype=np.int64) for key, idx in groups.items()}
        self.seat_counts = 2 * seat_counts

    def advance(self, day: int) -> None:
        """``FatigueClock.advance(day)`` for every replication with fatigue on."""
        if not self.any_on:
            return
        step = day - self.day
        rescaled: list[tuple[float, int]] = []
        for (log_decay, ref), idx in self.groups.items():
            factor = float(np.exp(log_decay * step))
            scale = float(np.exp(log_decay * (day - ref)))
            self.total[idx] *= factor
            self.scale[idx] = scale
            if scale < 1.0 / FatigueClock.RESCALE_AT:
                rescaled.append((log_decay, ref))
        self.day = day
        for key in rescaled:
            idx = self.groups.pop(key)
            for i in idx.tolist():
                self.sims[i].members.fatigue *= float(self.scale[i])
            self.scale[idx] = 1.0
            self.groups.setdefault((key[0], day), idx)

    def scale32(self) -> np.ndarray:
        """Each replication's scale as float32 (the factor of today's stored fatigue)."""
        return self.scale.astype(np.float32)

    def weights(self) -> tuple[np.ndarray, np.ndarray]:
        """Per replication, as float32: the equal weight over the scale, and one over the scale (0 when off)."""
        with np.errstate(divide="ignore"):
            equal = np.where(self.on, self.weight_bulk / self.scale, 0.0).astype(np.float32)
            inverse = np.where(self.on, 1.0 / self.scale, 0.0).astype(np.float32)
        return equal, inverse

    def add_totals(self, sent: np.ndarray, bulk: np.ndarray) -> None:
        """The day's fatigue added to each replication's total (as ``FatigueClock.add`` is told)."""
        sent_f = sent.astype(np.float64)
        bulk_f = bulk.astype(np.float64)
        added = np.where(self.equal, self.weight_bulk * sent_f,
                         self.weight_pers * (sent_f - bulk_f) + self.weight_bulk * bulk_f)
        take = self.on & (sent > 0)
        self.total[take] += added[take]

    def mean(self) -> np.ndarray:
        """Mean member fatigue of every replication (0 where fatigue is off)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.on, self.total / self.count, 0.0)

    def finish(self) -> None:
        """Give the clocks and members their final state (what the result summary reads)."""
        refs = {int(i): ref for (_, ref), idx in self.groups.items() for i in idx.tolist()}
        for i, (s, clock) in enumerate(zip(self.sims, self.clocks, strict=True)):
            if self.on[i]:
                s.members.total_fatigue = float(self.total[i])
                clock.day, clock.scale, clock.ref = self.day, float(self.scale[i]), refs[i]
