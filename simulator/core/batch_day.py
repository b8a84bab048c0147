"""The end of a batch's day: refunds booked and credited, members marked, tallies, review, adaptation.

The second half of :class:`~simulator.core.batch_engine.BatchSimulation` (a mixin, to keep each
module small): the same sub-steps as :class:`~simulator.core.engine.Simulation`, each one pass
over the batch, with per-replication counts by integer segment sums.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from simulator.core.batch_ledger import segment_sums
from simulator.core.ledger import NEVER
from simulator.core.metrics import ratio

if TYPE_CHECKING:
    from simulator.core.batch_ledger import BatchLedger
    from simulator.core.batch_recruiters import BatchRecruiters
    from simulator.core.batch_threshold import BatchBook
    from simulator.core.batch_timeline import Timeline
    from simulator.core.counters import CountBuffer
    from simulator.core.engine import Simulation


class BatchDay:
    """Refunds, members, tallies, review and adaptation of every replication of a batch."""

    sims: list[Simulation]
    k: int
    horizon: int
    seat_off: np.ndarray
    refund_cal: np.ndarray
    ledger: BatchLedger
    book: BatchBook
    rec: BatchRecruiters
    timeline: Timeline
    daily: dict[str, np.ndarray]
    tallies: dict[str, np.ndarray]
    responses_counter: CountBuffer
    accepted_counter: CountBuffer
    received_counter: CountBuffer
    answered_counter: CountBuffer
    hot: np.ndarray
    kind_weight: np.ndarray
    equal_weights: np.ndarray
    fatigue_on: list[bool]
    spent_today: np.ndarray
    refunded_today: np.ndarray

    def _record_means(self) -> None: ...

    def _book_refunds(self, day: int, sends: np.ndarray, responder: np.ndarray, delay: np.ndarray) -> None:
        """``Simulation._book_refunds`` for every seat, by the rule of its replication on the send day."""
        window, latency, silence, any_silence, all_silence = self.timeline.refund_rules(day)
        n = sends.size
        in_window = delay <= window.take(responder)
        if any_silence:
            quick = in_window if all_silence else in_window & silence.take(responder)
            silent = sends - np.bincount(responder[quick], minlength=n)
            seats = np.arange(n) if all_silence else silence.nonzero()[0]
            flat = (window.take(seats) + latency.take(seats) + day) * n + seats
            self.refund_cal[flat] += silent.take(seats).astype(np.int32)
        if not all_silence:
            ok = (in_window if not any_silence else in_window & ~silence.take(responder)).nonzero()[0]
            seat = responder.take(ok)
            flat = (latency.take(seat) + day) * n + (delay.take(ok) * n + seat)
            np.add.at(self.refund_cal, flat, np.int32(1))

    def _mark_members(self, kind: np.ndarray, receiver: np.ndarray, bounds: np.ndarray, n_bulk: np.ndarray,
                      responded: np.ndarray) -> None:
        """Fatigue, received and answered counts of the day's receivers (``Simulation._mark_members``)."""
        if any(self.fatigue_on):
            sims = self.sims
            counts = np.diff(self.seat_off) * 2
            equal: list[np.float32] = []
            inverse: list[np.float32] = []
            totals: list[float | None] = []
            bulk = segment_sums(n_bulk, self.seat_off).tolist()
            for i, s in enumerate(sims):
                f, scale = s.market.fatigue, s.fatigue.scale
                equal.append(np.float32(f.weight_bulk / scale) if f.enabled else np.float32(0.0))
                inverse.append(np.float32(1.0 / scale) if f.enabled else np.float32(0.0))
                sent = int(bounds[i + 1] - bounds[i])
                if not f.enabled or not sent:
                    totals.append(None)
                elif f.weight_bulk == f.weight_personalized:
                    totals.append(float(f.weight_bulk) * sent)
                else:
                    totals.append(f.weight_personalized * (sent - bulk[i]) + f.weight_bulk * bulk[i])
            if all(self.fatigue_on) and bool(self.equal_weights.all()) and len(set(equal)) == 1:
                np.add.at(self.hot[:, 1], receiver, equal[0])  # one weight for every InMail, as alone
            else:
                table = np.where(self.equal_weights, np.repeat(np.array(equal, dtype=np.float32), counts),
                                 self.kind_weight * np.repeat(np.array(inverse, dtype=np.float32), counts))
                np.add.at(self.hot[:, 1], receiver, table.take(kind))
            for s, total in zip(sims, totals, strict=True):
                if total is not None:
                    s.members.total_fatigue += total
        self.received_counter.add(receiver)
        self.answered_counter.add(receiver.take(responded))

    def _tally(self, day: int, sends: np.ndarray, n_bulk: np.ndarray, short: np.ndarray, sent: np.ndarray,
               responded: np.ndarray, bounds: np.ndarray, responder: np.ndarray, accepted: np.ndarray) -> None:
        """Per-seat tallies and the day's series of every replication (``Simulation._tally``)."""
        off, tallies, daily = self.seat_off, self.tallies, self.daily
        self.responses_counter.add(responder)
        self.accepted_counter.add(accepted)
        tallies["sent"] += sends
        tallies["bulk"] += n_bulk
        tallies["stockout"][short] += 1
        bulk = segment_sums(n_bulk, off)
        responses = np.diff(np.searchsorted(responded, bounds))
        n_accepted = np.diff(np.searchsorted(accepted, off))
        sent_list, responses_list, accepted_list = sent.tolist(), responses.tolist(), n_accepted.tolist()
        daily["sent"][:, day] = sent
        daily["sent_bulk"][:, day] = bulk
        daily["sent_personalized"][:, day] = sent - bulk
        daily["responses"][:, day] = responses
        daily["accepted"][:, day] = n_accepted
        daily["response_rate"][:, day] = [ratio(r, n) for r, n in zip(responses_list, sent_list, strict=True)]
        daily["acceptance_rate"][:, day] = [ratio(a, n) for a, n in zip(accepted_list, sent_list, strict=True)]
        daily["credits_spent"][:, day] = sent
        daily["stockout_recruiters"][:, day] = np.diff(np.searchsorted(short, off))
        means = []
        for i, s in enumerate(self.sims):
            members = s.members
            daily["mean_member_fatigue"][i, day] = members.total_fatigue / members.count if self.fatigue_on[i] else 0.0
            means.append(s._means if s.rec.count else (0.0, 0.0, 0.0))
        values = np.array(means, dtype=np.float64).reshape(self.k, 3)
        daily["mean_personalization"][:, day] = values[:, 0]
        daily["mean_bulk_share"][:, day] = values[:, 1]
        daily["mean_volume"][:, day] = values[:, 2]

    def credit_refunds(self, day: int) -> None:
        """``Simulation.credit_refunds`` for every replication."""
        n = self.seat_off[-1]
        due = self.refund_cal[day * n:(day + 1) * n]
        self.refunded_today = due
        totals = segment_sums(due, self.seat_off).tolist()
        if not any(totals):
            return
        fallback = []
        for i, s in enumerate(self.sims):
            phase = s.phase_of_day[min(day, s.horizon - 1)]
            back = day + phase.accrual.expire_days if phase.accrual.kind == "expire" else NEVER
            fallback.append(back)
            if totals[i] and not self.ledger.has_lots(i) and back != NEVER:
                self.timeline.schedule_expiry(i, back)
        self.ledger.refund(due, totals, fallback)
        if day < self.horizon:
            self.daily["credits_refunded"][:, day] += totals

    def review(self, day: int) -> None:
        """End-of-day threshold review of every seat (``Simulation.review``)."""
        book = self.book
        book.advance(day)
        warned, started = book.review(day)
        off = self.seat_off
        self.daily["warnings"][:, day] = segment_sums(warned, off)
        self.daily["improvement_periods"][:, day] = segment_sums(started, off)
        self.daily["in_improvement"][:, day] = segment_sums(book.ip_until > day + 1, off)

    def adapt_recruiters(self, day: int) -> None:
        """``Simulation.adapt_recruiters`` for every seat (every replication of the batch adapts)."""
        rec, book = self.rec, self.book
        rec.remember(self.spent_today, self.refunded_today)
        warned = book.in_grace(day + 1) if book.warned.any() else None
        improving = book.in_improvement(day + 1)
        incentive = rec.pressure(self.ledger.balance_per_seat(), self.timeline.days_to_grant(day),
                                 warned if warned is not None and warned.any() else None,
                                 improving if improving.any() else None)
        rec.adapt(incentive)
        self._record_means()
