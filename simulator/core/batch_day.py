"""The end of a batch's day: refunds booked and credited, members marked, tallies, review, adaptation.

The second half of :class:`~simulator.core.batch_engine.BatchSimulation` (a mixin, to keep each
module small): the same sub-steps as :class:`~simulator.core.engine.Simulation`, each one pass
over the batch, with per-replication counts by integer segment sums.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from simulator.core.anticipation import AnticipationTerms, anticipation_pressure
from simulator.core.batch_ledger import segment_sums
from simulator.core.ledger import NEVER

if TYPE_CHECKING:
    from simulator.core.batch_fatigue import BatchFatigue
    from simulator.core.batch_ledger import BatchLedger
    from simulator.core.batch_recruiters import BatchRecruiters
    from simulator.core.batch_threshold import BatchBook
    from simulator.core.batch_timeline import Timeline
    from simulator.core.counters import CountBuffer, ScatterCount
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
    received_counter: ScatterCount
    answered_counter: ScatterCount
    hot: np.ndarray
    kind_weight: np.ndarray
    equal_weights: np.ndarray
    fatigue_on: list[bool]
    fatigue: BatchFatigue
    means: np.ndarray
    anticipation: AnticipationTerms | None
    spent_today: np.ndarray
    refunded_today: np.ndarray

    def _record_means(self) -> None: ...

    def _book_refunds(self, day: int, sends: np.ndarray, responder: np.ndarray, delay: np.ndarray) -> None:
        """``Simulation._book_refunds`` for every seat, by the rule of its replication on the send day."""
        rules = self.timeline.refund_rules(day)  # a seat under ``never`` books nothing
        window, latency = rules.window, rules.latency
        n = sends.size
        in_window = delay <= window.take(responder)
        if rules.any_silence:
            quick = in_window if rules.all_silence else in_window & rules.silence.take(responder)
            silent = sends - np.bincount(responder[quick], minlength=n)
            seats = np.arange(n) if rules.all_silence else rules.silence.nonzero()[0]
            flat = (window.take(seats) + latency.take(seats) + day) * n + seats
            self.refund_cal[flat] += silent.take(seats).astype(np.int32)
        if rules.any_response:
            ok = (in_window if rules.all_response else in_window & rules.response.take(responder)).nonzero()[0]
            seat = responder.take(ok)
            flat = (latency.take(seat) + day) * n + (delay.take(ok) * n + seat)
            np.add.at(self.refund_cal, flat, np.int32(1))

    def _mark_members(self, kind: np.ndarray, receiver: np.ndarray, bounds: np.ndarray, bulk: np.ndarray,
                      responded: np.ndarray) -> None:
        """Fatigue, received and answered counts of the day's receivers (``Simulation._mark_members``;
        ``bulk``: bulk InMails per replication)."""
        fatigue = self.fatigue
        if fatigue.any_on:
            equal, inverse = fatigue.weights()
            if fatigue.all_on and bool(self.equal_weights.all()) and bool((equal == equal[0]).all()):
                np.add.at(self.hot[:, 1], receiver, equal[0])  # one weight for every InMail, as alone
            else:
                counts = fatigue.seat_counts
                table = np.where(self.equal_weights, np.repeat(equal, counts),
                                 self.kind_weight * np.repeat(inverse, counts))
                np.add.at(self.hot[:, 1], receiver, table.take(kind))
            fatigue.add_totals(np.diff(bounds), bulk)
        self.received_counter.add(receiver)
        self.answered_counter.add(receiver.take(responded))

    def _tally(self, day: int, sends: np.ndarray, n_bulk: np.ndarray, short: np.ndarray, sent: np.ndarray,
               bulk: np.ndarray, responded: np.ndarray, bounds: np.ndarray, responder: np.ndarray,
               accepted: np.ndarray) -> None:
        """Per-seat tallies and the day's series of every replication (``Simulation._tally``)."""
        off, tallies, daily = self.seat_off, self.tallies, self.daily
        self.responses_counter.add(responder)
        self.accepted_counter.add(accepted)
        tallies["sent"] += sends
        tallies["bulk"] += n_bulk
        tallies["stockout"][short] += 1
        responses = np.diff(np.searchsorted(responded, bounds))
        n_accepted = np.diff(np.searchsorted(accepted, off))
        daily["sent"][:, day] = sent
        daily["sent_bulk"][:, day] = bulk
        daily["sent_personalized"][:, day] = sent - bulk
        daily["responses"][:, day] = responses
        daily["accepted"][:, day] = n_accepted
        ratios(responses, sent, daily["response_rate"][:, day])
        ratios(n_accepted, sent, daily["acceptance_rate"][:, day])
        daily["credits_spent"][:, day] = sent
        daily["stockout_recruiters"][:, day] = np.diff(np.searchsorted(short, off))
        daily["mean_member_fatigue"][:, day] = self.fatigue.mean()
        means = self.means
        daily["mean_personalization"][:, day] = means[:, 0]
        daily["mean_bulk_share"][:, day] = means[:, 1]
        daily["mean_volume"][:, day] = means[:, 2]

    def credit_refunds(self, day: int) -> None:
        """``Simulation.credit_refunds`` for every replication."""
        n = self.seat_off[-1]
        due = self.refund_cal[day * n:(day + 1) * n]
        self.refunded_today = due
        totals = segment_sums(due, self.seat_off, self.ledger.nonempty)
        if not totals.any():
            return
        fallback: dict[int, int] = {}
        empty = (totals > 0) & (self.ledger.n_lots == 0)
        if empty.any():
            for i in np.flatnonzero(empty).tolist():
                s = self.sims[i]
                phase = s.phase_of_day[min(day, s.horizon - 1)]
                back = day + phase.accrual.expire_days if phase.accrual.kind == "expire" else NEVER
                fallback[i] = back
                if back != NEVER:
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
        self.daily["warnings"][:, day] = segment_sums(warned, off, self.ledger.nonempty)
        self.daily["improvement_periods"][:, day] = segment_sums(started, off, self.ledger.nonempty)
        self.daily["in_improvement"][:, day] = segment_sums(book.ip_until > day + 1, off, self.ledger.nonempty)

    def adapt_recruiters(self, day: int) -> None:
        """``Simulation.adapt_recruiters`` for every seat (every replication of the batch adapts)."""
        rec, book = self.rec, self.book
        rec.remember(self.spent_today, self.refunded_today)
        warned = book.in_grace(day + 1) if book.warned.any() else None
        improving = book.in_improvement(day + 1)
        ahead = None if self.anticipation is None else anticipation_pressure(self.anticipation, book.win_sends,
                                                                             book.win_resp)
        incentive = rec.pressure(self.ledger.balance_per_seat(), self.timeline.days_to_grant(day),
                                 warned if warned is not None and warned.any() else None,
                                 improving if improving.any() else None, ahead)
        rec.adapt(incentive)
        self._record_means()


def ratios(num: np.ndarray, den: np.ndarray, out: np.ndarray) -> None:
    """``metrics.ratio`` elementwise into ``out`` (float64 quotients of the integers; 0 where ``den`` is 0)."""
    out[:] = 0.0
    np.divide(num, den, out=out, where=den != 0)
