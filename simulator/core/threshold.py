"""The response-rate threshold: rolling review, one-time warning, Improvement Periods.

The rolling window is kept as running per-seat sums fed by a day x seat calendar of deltas:
InMails sent on day s enter the window on day s + maturity and leave it on s + maturity + window;
a response with delay d enters on s + max(d, maturity) (if that is before the InMail leaves).
Nothing is stored per message.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.core.config import Threshold

NOT_IN_IP = -1


@dataclass
class ThresholdBook:
    """Per-seat threshold state."""

    rule: Threshold
    sends_delta: np.ndarray   # int32 [days, R]
    resp_delta: np.ndarray    # int32 [days, R]
    win_sends: np.ndarray     # int64 [R] sends in the window as of today
    win_resp: np.ndarray      # int64 [R] responses counted in the window as of today
    warned: np.ndarray        # bool: the one-time warning has been given
    grace_until: np.ndarray   # int64: first day a breach can start an Improvement Period
    ip_until: np.ndarray      # int64: first day after the Improvement Period (NOT_IN_IP if none)
    warnings: np.ndarray      # int64 count per seat
    improvement_periods: np.ndarray  # int64 count per seat (each period of P days, extensions too)
    subject: np.ndarray       # bool: the seat's type is reviewed at all

    @classmethod
    def open(cls, rule: Threshold, subject: np.ndarray, n_days: int) -> ThresholdBook:
        """Empty book for seats ``subject`` (a bool per recruiter) over ``n_days`` sending days."""
        n_recruiters = subject.size
        rows = n_days + rule.maturity_days + rule.window_days + 2 if rule.enabled else 1
        cols = n_recruiters if rule.enabled else 0
        zeros = np.zeros(n_recruiters, dtype=np.int64)
        return cls(
            rule=rule,
            sends_delta=np.zeros((rows, cols), dtype=np.int32),
            resp_delta=np.zeros((rows, cols), dtype=np.int32),
            win_sends=zeros.copy(), win_resp=zeros.copy(), warned=np.zeros(n_recruiters, dtype=bool),
            grace_until=zeros.copy(), ip_until=np.full(n_recruiters, NOT_IN_IP, dtype=np.int64),
            warnings=zeros.copy(), improvement_periods=zeros.copy(), subject=subject.astype(bool),
        )

    def bulk_allowed(self, day: int) -> np.ndarray:
        """Seats allowed to send bulk InMail today (not in an Improvement Period)."""
        return self.ip_until <= day

    def in_improvement(self, day: int) -> np.ndarray:
        return self.ip_until > day

    def in_improvement_count(self, day: int) -> int:
        """Seats in an Improvement Period on ``day``."""
        return int(np.count_nonzero(self.ip_until > day))

    def in_grace(self, day: int) -> np.ndarray:
        return self.warned & (self.grace_until > day)

    def record(self, day: int, sends: np.ndarray, resp_rec: np.ndarray, resp_delay: np.ndarray) -> None:
        """Book today's sends (per seat) and today's InMails' future responses (seat, delay) into the window."""
        if not self.rule.enabled:
            return
        lag, width = self.rule.maturity_days, self.rule.window_days
        s32 = sends.astype(np.int32)
        self.sends_delta[day + lag] += s32
        self.sends_delta[day + lag + width] -= s32
        counted = resp_delay < lag + width
        rec, d = resp_rec[counted], resp_delay[counted]
        flat = (day + np.maximum(d, lag)) * self.resp_delta.shape[1] + rec
        np.add.at(self.resp_delta.reshape(-1), flat, np.int32(1))  # 1-D index: ufunc.at's fast path
        self.resp_delta[day + lag + width] -= np.bincount(rec, minlength=self.win_resp.size).astype(np.int32)

    def advance(self, day: int) -> None:
        """Bring the window sums to ``day`` (call once per day, before the review)."""
        if not self.rule.enabled:
            return
        self.win_sends += self.sends_delta[day]
        self.win_resp += self.resp_delta[day]

    def breach(self) -> np.ndarray:
        """Seats that sent at least ``min_sends`` in the window with a response rate below ``min_rate``."""
        rule = self.rule
        return self.subject & (self.win_sends >= rule.min_sends) & (self.win_resp < rule.min_rate * self.win_sends)

    def review(self, day: int, check_new_breaches: bool = True) -> tuple[int, int]:
        """End-of-day review.  Returns (warnings issued, Improvement Periods started or extended).

        Improvement Periods that end tonight are always re-checked; new breaches are looked for
        only on review days (``check_new_breaches``).
        """
        if not self.rule.enabled:
            return 0, 0
        rule = self.rule
        breach = self.breach()
        tomorrow = day + 1
        n_ip = n_warn = 0
        ending = (self.ip_until == tomorrow).nonzero()[0]  # seats work on index lists: few are involved
        if ending.size:
            again = breach[ending]
            self.ip_until[ending[~again]] = NOT_IN_IP
            extend = ending[again]
            self.ip_until[extend] = tomorrow + rule.improvement_days
            self.improvement_periods[extend] += 1
            n_ip = extend.size
        if check_new_breaches:
            seats = breach.nonzero()[0]
            seats = seats[self.ip_until[seats] <= day]  # breaching and not in (or just extended into) a period
            warned = self.warned[seats]
            warn = seats[~warned]
            start = seats[warned & (self.grace_until[seats] <= tomorrow)]
            self.warned[warn] = True
            self.grace_until[warn] = tomorrow + rule.ack_delay_days + rule.warning_days
            self.warnings[warn] += 1
            self.ip_until[start] = tomorrow + rule.improvement_days
            self.improvement_periods[start] += 1
            n_warn = warn.size
            n_ip += start.size
        return n_warn, n_ip
