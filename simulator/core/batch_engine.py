"""K replications in one pass: one daily step for the whole batch, each replication bit for bit as alone.

Each replication is first set up as a :class:`~simulator.core.engine.Simulation` (same draws of
members and recruiters); then its per-seat and per-member arrays are stacked along one axis
(replication ``i``'s seats at ``[off_i, off_i + R_i)``, its members likewise) and its own
arrays become views of the stacked ones, so the summary of each replication is the unbatched
one.  The daily step runs every mechanism once for the batch; only the random draws are per
replication - each from its own streams, reset every morning as alone (``day_streams``), in
the same calls and sizes, written into one stacked buffer.  Every other operation is element
by element (or an integer sum), so the numbers do not depend on the batch.

The calendar is an explicit loop with the same order of the day as the simpy one:
expiries, switch, grants (per replication, rare), then the day.
"""

from __future__ import annotations

import numpy as np

from simulator.core.anticipation import AnticipationTerms
from simulator.core.batch_day import BatchDay
from simulator.core.batch_fatigue import BatchFatigue
from simulator.core.batch_ledger import BatchLedger, LedgerView, segment_sums
from simulator.core.batch_recruiters import BatchRecruiters
from simulator.core.batch_streams import DayStreams
from simulator.core.batch_threshold import BatchBook
from simulator.core.batch_timeline import Timeline
from simulator.core.counters import CountBuffer, Done, ScatterCount
from simulator.core.engine import DAILY_SERIES, Simulation
from simulator.core.ledger import pay
from simulator.core.metrics import ReplicationResult
from simulator.core.platform_targeting import surface


class BatchSimulation(BatchDay):
    """State and calendar of K replications with the same horizon (all adapting, or none)."""

    def __init__(self, sims: list[Simulation]) -> None:
        self.sims = sims
        self.k = k = len(sims)
        self.horizon = sims[0].horizon
        self.n_days = max(s.n_days for s in sims)
        seats = np.array([s.rec.count for s in sims], dtype=np.int64)
        members = np.array([s.members.count for s in sims], dtype=np.int64)
        self.seat_off = off = np.concatenate([[0], np.cumsum(seats)])
        self.member_off = moff = np.concatenate([[0], np.cumsum(members)])
        self.kind_off = 2 * off
        self.rep_of_seat = np.repeat(np.arange(k), seats)
        n_seats = int(off[-1])
        self._stack_members(sims, moff)
        self.rec = BatchRecruiters.stack([s.rec for s in sims], [s.market for s in sims], off)
        self.ledger = BatchLedger([s.ledger for s in sims], off)
        self.book = BatchBook([s.book for s in sims], off, self.horizon)
        self.refund_cal = np.zeros((self.n_days + 1) * n_seats, dtype=np.int32)  # flat (day, seat)
        self.kind_start = np.concatenate([s._kind_start + moff[i] for i, s in enumerate(sims)])
        self.kind_size = np.concatenate([s._kind_size for s in sims])
        self.kind_skill = np.concatenate([s._kind_skill for s in sims])
        self.kind_weight = np.concatenate([s._kind_weight for s in sims])
        self._platform(sims)
        self.anticipation = AnticipationTerms.stack([s.anticipation for s in sims], seats)
        self.kind_index = np.arange(2 * n_seats)
        self.kind_counts = np.zeros(2 * n_seats, dtype=np.int64)
        self.tallies = {name: np.zeros(n_seats, dtype=np.int64)
                        for name in ("sent", "bulk", "responses", "accepted", "stockout")}
        self.responses_counter = CountBuffer(self.tallies["responses"])
        self.accepted_counter = CountBuffer(self.tallies["accepted"])
        self.daily = {name: np.zeros((k, self.horizon), dtype=np.float64) for name in DAILY_SERIES}
        self.timeline = Timeline(sims, self.ledger, self.daily)
        for i, s in enumerate(sims):
            cols = slice(int(off[i]), int(off[i + 1]))
            s.seat_sent, s.seat_bulk = self.tallies["sent"][cols], self.tallies["bulk"][cols]
            s.seat_responses, s.seat_accepted = self.tallies["responses"][cols], self.tallies["accepted"][cols]
            s.seat_stockout_days = self.tallies["stockout"][cols]
            s._responses_counter = Done(s.seat_responses)  # type: ignore[assignment]
            s._accepted_counter = Done(s.seat_accepted)  # type: ignore[assignment]
            s.daily = {name: self.daily[name][i] for name in DAILY_SERIES}
            s.ledger = LedgerView(self.ledger, i)  # type: ignore[assignment]
        fatigue = [s.market.fatigue for s in sims]
        self.fatigue_on = [f.enabled for f in fatigue]
        self.fatigue = BatchFatigue(sims, seats)
        self.seat_n = np.maximum(seats, 1).astype(np.float64)
        self.rec_empty = seats == 0
        self.sensitivity = np.array([-f.sensitivity if f.enabled else 0.0 for f in fatigue], dtype=np.float32)
        self.equal_weights = np.repeat(np.array([f.weight_bulk == f.weight_personalized for f in fatigue]), 2 * seats)
        self.observation = np.array([s.market.response.observation_days for s in sims], dtype=np.int64)
        self.same_size = bool((seats == seats[0]).all())
        response = [s.market.response for s in sims]
        self.bulk_factor = np.repeat(np.array([r.bulk_personalization_factor for r in response]), seats)
        self.ref_pers = np.repeat(np.array([r.reference_personalization for r in response], dtype=np.float32),
                                  2 * seats)
        self.effect = np.repeat(np.array([r.personalization_effect for r in response], dtype=np.float32), 2 * seats)
        self.sending = [s.rng.sending for s in sims]
        self.targeting = [s.rng.targeting for s in sims]
        self.outcomes = [s.rng.outcomes for s in sims]
        self.streams = DayStreams([pair for s in sims for pair in s._day_streams])
        self.adapting = [s.market.sending.adaptation.enabled and bool(s.rec.adaptive.any()) for s in sims]

    def _platform(self, sims: list[Simulation]) -> None:
        """Platform targeting of the batch: per-(recruiter, kind) probability and candidates (0 where not served)."""
        self.platform_on = [s._kind_platform is not None for s in sims]
        self.kind_platform = np.concatenate([np.zeros(2 * s.rec.count, dtype=np.float32) if s._kind_platform is None
                                             else s._kind_platform for s in sims])
        counts = {s.market.platform_targeting.candidates for s, on in zip(sims, self.platform_on, strict=True) if on}
        self.candidates: int | np.ndarray = counts.pop() if len(counts) == 1 else np.concatenate(
            [np.full(2 * s.rec.count, s.market.platform_targeting.candidates if on else 0, dtype=np.int64)
             for s, on in zip(sims, self.platform_on, strict=True)])

    def _stack_members(self, sims: list[Simulation], moff: np.ndarray) -> None:
        """One member table for the batch; each replication's members become views of it."""
        self.records = np.concatenate([s.members.records for s in sims])
        hot = self.records.view(np.float32).reshape(-1, 4)
        self.hot = hot
        self.received = np.zeros(self.records.size, dtype=np.int32)
        self.answered = np.zeros(self.records.size, dtype=np.int32)
        self.received_counter = ScatterCount(self.received)
        self.answered_counter = ScatterCount(self.answered)
        for i, s in enumerate(sims):
            rows = slice(int(moff[i]), int(moff[i + 1]))
            m = s.members
            m.records, m.score, m.fatigue = self.records[rows], hot[rows, 0], hot[rows, 1]
            m.inv_log_miss, m.openness = hot[rows, 2], hot[rows, 3]
            m.received, m.answered = self.received[rows], self.answered[rows]
            s.received, s.answered = Done(m.received), Done(m.answered)  # type: ignore[assignment]

    # ------------------------------------------------------------------ running

    def execute(self) -> list[ReplicationResult]:
        """Run the batch's calendar to its last refund and summarize each replication (``Simulation.result``)."""
        for s in self.sims:
            s._record_means()
        self.means = np.array([s._means for s in self.sims], dtype=np.float64).reshape(self.k, 3)
        self._offsets()
        with np.errstate(over="ignore"):
            for day in range(self.n_days):
                self.timeline.before_day(day)
                if day < self.horizon:
                    self.send(day)
                self.credit_refunds(day)
                if day < self.horizon:
                    if self.book.any_enabled:
                        self.review(day)
                    if all(self.adapting):
                        self.adapt_recruiters(day)
        self.responses_counter.flush()
        self.accepted_counter.flush()
        self.received_counter.flush()
        self.answered_counter.flush()
        self.fatigue.finish()
        for s, means in zip(self.sims, self.means.tolist(), strict=True):
            s._means = (means[0], means[1], means[2])
        seats = self.refund_cal.reshape(self.n_days + 1, -1)
        for i, s in enumerate(self.sims):
            s.refund_cal = seats[:, int(self.seat_off[i]):int(self.seat_off[i + 1])]
        return [s.result() for s in self.sims]

    def _offsets(self) -> None:
        """The answer logit offset of every (recruiter, kind) of the batch, from each replication's own."""
        self.offset = np.concatenate([s._offset for s in self.sims])

    def _record_means(self) -> None:
        """``Simulation._record_means`` for the whole batch (the recruiters changed)."""
        rec, k = self.rec.rec, self.k
        if self.same_size and self.seat_off[-1]:
            sums = [a.reshape(k, -1).sum(axis=1) for a in (rec["pers"], rec["bulk"], rec["vol"])]
        else:
            sums = [np.array([float(a[int(self.seat_off[i]):int(self.seat_off[i + 1])].sum()) for i in range(k)])
                    for a in (rec["pers"], rec["bulk"], rec["vol"])]
        means = self.means
        for j in range(3):
            np.divide(sums[j], self.seat_n, out=means[:, j])
        offset = self.offset
        offset[0::2] = rec["pers"]
        offset[1::2] = rec["pers"] * self.bulk_factor
        offset -= self.ref_pers
        offset *= self.effect

    def send(self, day: int) -> None:
        """The daily sending step of every replication (``Simulation.send``, sub-step by sub-step)."""
        self.streams.reset(day)
        self.fatigue.advance(day)
        n_one, n_bulk, sends, short = self._decide_and_pay(day)
        counts = self.kind_counts
        counts[0::2], counts[1::2] = n_one, n_bulk
        kind = self.kind_index.repeat(counts)
        per_rep = segment_sums(counts, self.kind_off, self.ledger.nonempty)
        bounds = np.concatenate([[0], np.cumsum(per_rep)])
        receiver, rows = self._target(kind, bounds)
        responded, delay, responder, accepted = self._resolve(kind, rows, bounds)
        self._book_refunds(day, sends, responder, delay)
        self.book.record(day, sends, responder, delay)
        bulk = segment_sums(n_bulk, self.seat_off, self.ledger.nonempty)
        self._mark_members(kind, receiver, bounds, bulk, responded)
        self._tally(day, sends, n_bulk, short, per_rep, bulk, responded, bounds, responder, accepted)

    def _decide_and_pay(self, day: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        wanted = self.rec.desired_sends(self.timeline.day_factor(day), self.book.bulk_allowed(day), self.sending)
        n_one, n_bulk, allowed, short = pay(self.ledger, *wanted)
        self.spent_today = allowed
        return n_one, n_bulk, allowed, short

    def _draw(self, streams: list[np.random.Generator], bounds: np.ndarray, dtype: type,
              only: list[bool] | None = None) -> np.ndarray:
        """Per replication ``rng.random(n_i, dtype)`` into one stacked buffer (``bounds``: K + 1 offsets).

        An empty draw consumes nothing from a stream, so replications without draws are skipped;
        ``only``: draw just for the replications marked True (the others get 1.0).
        """
        edges = bounds.tolist()
        out: np.ndarray = np.empty(edges[-1], dtype=dtype) if only is None else np.ones(edges[-1], dtype=dtype)
        for i, (rng, a, b) in enumerate(zip(streams, edges, edges[1:])):  # noqa: B905 - edges has one more entry
            if b > a and (only is None or only[i]):
                rng.random(dtype=dtype, out=out[a:b])
        return out

    def _target(self, kind: np.ndarray, bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``Simulation._target`` for every InMail of the batch (member indices are batch-wide)."""
        streams = self.targeting
        start = self.kind_start.take(kind)
        size = self.kind_size.take(kind)
        receiver = self._draw(streams, bounds, np.float64)
        receiver *= size
        receiver = start + receiver.astype(np.int64)
        look = (self._draw(streams, bounds, np.float32) < self.kind_skill.take(kind)).nonzero()[0]
        look_bounds = np.searchsorted(look, bounds)
        second = start.take(look) + (self._draw(streams, look_bounds, np.float64) * size.take(look)).astype(np.int64)
        rows = self.records.take(receiver)
        second_rows = self.records.take(second)
        better = (second_rows.view(np.float32)[0::4] > rows.view(np.float32).take(4 * look)).nonzero()[0]
        swap = look.take(better)
        receiver[swap] = second.take(better)
        rows[swap] = second_rows.take(better)
        if any(self.platform_on):  # the platform's candidates, after every draw above, as alone
            steer = (self._draw(streams, bounds, np.float32, self.platform_on)
                     < self.kind_platform.take(kind)).nonzero()[0]
            rounds = self.candidates if isinstance(self.candidates, int) else self.candidates.take(kind.take(steer))
            surface(receiver, rows, start, size, steer, rounds,
                    lambda idx: self._draw(streams, np.searchsorted(idx, bounds), np.float64), self.records.take)
        return receiver, rows.view(np.float32).reshape(kind.size, 4)

    def _resolve(self, kind: np.ndarray, rows: np.ndarray,
                 bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``Simulation._resolve`` for every InMail: (responded, delay, responder seat, accepted seat)."""
        counts = np.diff(bounds)
        z = self.offset.take(kind)
        z += rows[:, 0]
        np.negative(z, out=z)
        np.exp(z, out=z)
        z += np.float32(1.0)
        scale = self.fatigue.scale32()
        if any(self.fatigue_on):
            p = rows[:, 1] * per_inmail(scale, counts)
            p *= per_inmail(self.sensitivity, counts)
            np.exp(p, out=p)
            p /= z
            if not all(self.fatigue_on):
                off = np.repeat(~np.array(self.fatigue_on), counts)
                p[off] = np.reciprocal(z[off])
        else:
            p = np.reciprocal(z, out=z)
        streams = self.outcomes
        answered = (self._draw(streams, bounds, np.float32) < p).nonzero()[0]
        answered_rows = rows.take(answered, axis=0)
        a_bounds = np.searchsorted(answered, bounds)
        delay = _delays(answered_rows[:, 2], self._draw(streams, a_bounds, np.float32))
        observed = (delay <= per_inmail(self.observation, np.diff(a_bounds))).nonzero()[0]
        responded, responded_delay = answered.take(observed), delay.take(observed)
        r_bounds = np.searchsorted(responded, bounds)
        accepted = responded[self._draw(streams, r_bounds, np.float32) < answered_rows[:, 3].take(observed)]
        return responded, responded_delay, kind.take(responded) >> 1, kind.take(accepted) >> 1



def per_inmail(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """One value per replication repeated for its ``counts`` entries; the value itself (a 0-d array of
    the same dtype, so the arithmetic is the same) when every replication has the same one."""
    if values.size and bool((values == values[0]).all()):
        return values[0:1].reshape(())
    return np.repeat(values, counts)


def _delays(inv_log_miss: np.ndarray, u: np.ndarray) -> np.ndarray:
    """``members.response_delay`` from uniforms already drawn (float32, one per answer)."""
    np.subtract(np.float32(1.0), u, out=u)
    np.log(u, out=u)
    u *= inv_log_miss
    np.minimum(u, np.float32(2.0**40), out=u)
    return u.astype(np.int64)


