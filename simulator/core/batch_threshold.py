"""The response-rate threshold of a batch of replications: one book over every seat of the batch.

The rules of :class:`~simulator.core.threshold.ThresholdBook`, with each rule parameter an array
over seats (replications may differ in their threshold, or have none: their seats are never
subject, so they never breach).  The day x seat delta calendars are one pair of matrices.
"""

from __future__ import annotations

import numpy as np

from simulator.core.threshold import NOT_IN_IP, ThresholdBook


class BatchBook:
    """Per-seat threshold state of a batch, seat ``s`` of replication ``i`` at ``off_i + s``."""

    def __init__(self, books: list[ThresholdBook], seat_off: np.ndarray, horizon: int) -> None:
        counts = np.diff(seat_off)

        def per_seat(values: list[float] | list[int], dtype: type) -> np.ndarray:
            return np.repeat(np.asarray(values, dtype=dtype), counts)

        rules = [book.rule for book in books]
        self.enabled = [rule.enabled for rule in rules]
        self.any_enabled = any(self.enabled)
        self.lag = per_seat([r.maturity_days for r in rules], np.int64)
        self.width = per_seat([r.window_days for r in rules], np.int64)
        self.min_sends = per_seat([r.min_sends for r in rules], np.int64)
        self.min_rate = per_seat([r.min_rate for r in rules], np.float64)
        self.improvement = per_seat([r.improvement_days for r in rules], np.int64)
        self.grace = per_seat([r.ack_delay_days + r.warning_days for r in rules], np.int64)
        self.review_every = [r.review_every_days for r in rules]
        self.subject = np.concatenate([book.subject & rule.enabled for book, rule in zip(books, rules, strict=True)])
        n = int(seat_off[-1])
        self.n = n
        self.seat = np.arange(n)
        rows = horizon + int(self.lag.max(initial=0) + self.width.max(initial=0)) + 2
        self.sends_delta = np.zeros(rows * n, dtype=np.int32)  # flat (day, seat)
        self.resp_delta = np.zeros(rows * n, dtype=np.int32)
        self.win_sends = np.zeros(n, dtype=np.int64)
        self.win_resp = np.zeros(n, dtype=np.int64)
        self.warned = np.zeros(n, dtype=bool)
        self.grace_until = np.zeros(n, dtype=np.int64)
        self.ip_until = np.full(n, NOT_IN_IP, dtype=np.int64)
        self.warnings = np.zeros(n, dtype=np.int64)
        self.improvement_periods = np.zeros(n, dtype=np.int64)
        self.counts = counts
        for i, book in enumerate(books):  # views: each replication's book reads its slice
            cols = slice(int(seat_off[i]), int(seat_off[i + 1]))
            book.warnings, book.improvement_periods = self.warnings[cols], self.improvement_periods[cols]

    def bulk_allowed(self, day: int) -> np.ndarray:
        return self.ip_until <= day

    def in_improvement(self, day: int) -> np.ndarray:
        return self.ip_until > day

    def in_grace(self, day: int) -> np.ndarray:
        return self.warned & (self.grace_until > day)

    def record(self, day: int, sends: np.ndarray, resp_seat: np.ndarray, resp_delay: np.ndarray) -> None:
        """``ThresholdBook.record`` for every seat: the day's sends and its InMails' future responses."""
        if not self.any_enabled:
            return
        n, lag, width = self.n, self.lag, self.width
        enter = (lag + day) * n + self.seat
        s32 = sends.astype(np.int32)
        self.sends_delta[enter] += s32
        self.sends_delta[enter + width * n] -= s32
        r_lag, r_width = lag.take(resp_seat), width.take(resp_seat)
        counted = (resp_delay < r_lag + r_width).nonzero()[0]
        rec = resp_seat.take(counted)
        flat = (np.maximum(resp_delay.take(counted), r_lag.take(counted)) + day) * n + rec
        np.add.at(self.resp_delta, flat, np.int32(1))
        self.resp_delta[enter + width * n] -= np.bincount(rec, minlength=n).astype(np.int32)

    def advance(self, day: int) -> None:
        if not self.any_enabled:
            return
        self.win_sends += self.sends_delta[day * self.n:(day + 1) * self.n]
        self.win_resp += self.resp_delta[day * self.n:(day + 1) * self.n]

    def review(self, day: int) -> tuple[np.ndarray, np.ndarray]:
        """End-of-day review of every seat: per seat, warned tonight and Improvement Period started or extended."""
        every = self.review_every
        if len(set(every)) == 1:
            check: np.ndarray | bool = day % every[0] == 0
        else:
            check = np.repeat(np.array([day % e == 0 for e in every]), self.counts)
        breach = self.subject & (self.win_sends >= self.min_sends) & (self.win_resp < self.min_rate * self.win_sends)
        tomorrow = day + 1
        ip_marks = np.zeros(self.n, dtype=bool)
        ending = (self.ip_until == tomorrow).nonzero()[0]
        if ending.size:
            again = breach[ending]
            self.ip_until[ending[~again]] = NOT_IN_IP
            extend = ending[again]
            self.ip_until[extend] = tomorrow + self.improvement[extend]
            self.improvement_periods[extend] += 1
            ip_marks[extend] = True
        seats = (breach & check).nonzero()[0]
        seats = seats[self.ip_until[seats] <= day]
        warned = self.warned[seats]
        warn = seats[~warned]
        start = seats[warned & (self.grace_until[seats] <= tomorrow)]
        self.warned[warn] = True
        self.grace_until[warn] = tomorrow + self.grace[warn]
        self.warnings[warn] += 1
        self.ip_until[start] = tomorrow + self.improvement[start]
        self.improvement_periods[start] += 1
        ip_marks[start] = True
        warn_marks = np.zeros(self.n, dtype=bool)
        warn_marks[warn] = True
        return warn_marks, ip_marks
