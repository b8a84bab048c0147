"""The calendars of a batch: per replication, the rare events (expiries, switch, grants) and per-day lookups.

Events keep the order of the day of :mod:`simulator.core.engine` (expiries, then the switch,
then grants, then the day); they are per replication in Python because they are rare.  The
per-day lookups that the daily step needs as arrays over seats (weekend factor, days to the next
grant, the refund rule of the send day) are built from each replication's own calendar and
cached, since they change on few days.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from simulator.core.config import SEAT_TYPES, Phase, RefundRule
from simulator.core.ledger import NEVER, accounts_for, per_account

if TYPE_CHECKING:
    from simulator.core.batch_ledger import BatchLedger
    from simulator.core.engine import Simulation



@dataclass(frozen=True)
class RefundRules:
    """Per seat, the refund rule of its replication on one send day: window and latency (days), whether
    credits come back on silence or on a response (neither: ``never``), and whether any or all seats do."""

    window: np.ndarray
    latency: np.ndarray
    silence: np.ndarray
    response: np.ndarray
    any_silence: bool
    all_silence: bool
    any_response: bool
    all_response: bool

class Timeline:
    """Calendar events and per-day lookups of every replication of a batch."""

    def __init__(self, sims: list[Simulation], ledger: BatchLedger, daily: dict[str, np.ndarray]) -> None:
        self.sims, self.ledger, self.daily = sims, ledger, daily
        self.counts = np.array([s.rec.count for s in sims], dtype=np.int64)
        self.horizon = sims[0].horizon
        self.expiry_days: list[set[int]] = [set() for _ in sims]
        self.events: list[dict[int, list[tuple[int, str]]]] = []
        self.switch_day: list[int | None] = []
        for s in sims:
            events: list[tuple[int, int, str]] = [(day, 0, "monthly") for day in s.grant_days()]
            for i, grant in enumerate(s.policy.grants):
                day = s.day_of(grant.date)
                if 0 <= day < s.horizon:
                    events.append((day, i + 1, "one_off"))
            by_day: dict[int, list[tuple[int, str]]] = {}
            for day, i, kind in sorted(events):
                by_day.setdefault(day, []).append((i, kind))
            self.events.append(by_day)
            switch = s.policy.switch_date
            at = s.day_of(switch) if switch is not None else None
            self.switch_day.append(at if at is not None and 0 < at < s.horizon else None)
        self._cache: dict[tuple[object, ...], object] = {}
        self._arrays: dict[tuple[object, ...], np.ndarray] = {}
        self.busy: dict[int, set[int]] = {}  # day -> replications with an event that day
        for i, by_day in enumerate(self.events):
            for day in by_day:
                self.busy.setdefault(day, set()).add(i)
            at = self.switch_day[i]
            if at is not None:
                self.busy.setdefault(at, set()).add(i)
        self._factors = [self._lookup("factor", [s.day_factor[day] for s in sims], np.float64)
                         for day in range(self.horizon)]
        self._to_grant = [self._lookup("grant", [max(s.to_next_grant[day], 1) for s in sims], np.float64)
                          for day in range(self.horizon)]
        self._rules = [self._refund_rules(day) for day in range(self.horizon)]

    # ------------------------------------------------------------------ per-day lookups (arrays over seats)

    def _lookup(self, name: str, values: list[float], dtype: type) -> np.ndarray:
        """One array per distinct tuple of per-replication values (worked out before the run)."""
        key = (name, *values)
        found = self._arrays.get(key)
        if found is None:
            found = self._arrays[key] = np.repeat(np.asarray(values, dtype=dtype), self.counts)
        return found

    def day_factor(self, day: int) -> np.ndarray:
        return self._factors[day]

    def days_to_grant(self, day: int) -> np.ndarray:
        """max(days to the next grant, 1) per seat, as float64 (the factor of the scarcity term)."""
        return self._to_grant[day]

    def refund_rules(self, day: int) -> RefundRules:
        """Per seat, the refund rule in force on the send day ``day`` (see :class:`RefundRules`)."""
        return self._rules[day]

    def _refund_rules(self, day: int) -> RefundRules:
        rules: list[RefundRule] = [s.phase_of_day[day].refund for s in self.sims]
        key = ("rules", *rules)
        found = self._cache.get(key)
        if not isinstance(found, RefundRules):
            silence = [r.kind == "on_silence" for r in rules]
            response = [r.kind == "on_response" for r in rules]
            found = RefundRules(
                window=np.repeat(np.array([r.window_days for r in rules], dtype=np.int64), self.counts),
                latency=np.repeat(np.array([r.latency_days for r in rules], dtype=np.int64), self.counts),
                silence=np.repeat(np.array(silence, dtype=bool), self.counts),
                response=np.repeat(np.array(response, dtype=bool), self.counts),
                any_silence=any(silence), all_silence=all(silence),
                any_response=any(response), all_response=all(response))
            self._cache[key] = found
        return found

    # ------------------------------------------------------------------ events

    def before_day(self, day: int) -> None:
        """Expiries (t + 0.1), the switch (t + 0.2) and grants (t + 0.3) of ``day``, replication by replication."""
        busy = self.busy.pop(day, None)
        if not busy:
            return
        for i in sorted(busy):
            s = self.sims[i]
            if day in self.expiry_days[i]:
                self.daily["credits_expired"][i, day] += self.ledger.expire(i, day)
            if self.switch_day[i] == day:
                before, after = s.policy.phase_on(s.date(day - 1)), s.policy.phase_on(s.date(day))
                if before.pooling != after.pooling:
                    self.ledger.remap(i, accounts_for(s.rec.team, s.poolable, after.pooling))
            for index, kind in self.events[i].get(day, ()):
                phase = s.policy.phase_on(s.date(day))
                if kind == "monthly":
                    per_seat = np.array([phase.allotment(t) for t in SEAT_TYPES], dtype=np.int64)[s.rec.seat]
                else:
                    grant = s.policy.grants[index - 1]
                    seat_names = np.asarray(SEAT_TYPES)[s.rec.seat]
                    per_seat = np.where(np.isin(seat_names, grant.seat_types), grant.amount, 0).astype(np.int64)
                self._grant(i, day, phase, per_seat)

    def _to_accounts(self, i: int, per_seat: np.ndarray) -> np.ndarray:
        ledger = self.ledger
        if ledger.rep_identity[i]:
            return per_seat.astype(np.int64, copy=False)
        account_of = ledger.account_of[ledger.cols(i)] - int(ledger.off[i])
        return per_account(account_of, per_seat, ledger.n_accounts(i))

    def _grant(self, i: int, day: int, phase: Phase, per_seat: np.ndarray) -> None:
        """``Simulation._grant`` for replication ``i``."""
        s, accrual = self.sims[i], phase.accrual
        amounts = self._to_accounts(i, per_seat)
        cap = None
        expires = NEVER
        if accrual.kind == "cap":
            monthly = np.array([phase.allotment(t) for t in SEAT_TYPES], dtype=np.int64)[s.rec.seat]
            cap = np.floor(accrual.cap_months * self._to_accounts(i, monthly)).astype(np.int64)
        elif accrual.kind == "expire":
            expires = day + accrual.expire_days
            self.schedule_expiry(i, expires)
        granted, dropped = self.ledger.grant(i, amounts, expires, cap)
        if day < self.horizon:
            self.daily["credits_granted"][i, day] += granted
            self.daily["credits_expired"][i, day] += dropped

    def schedule_expiry(self, i: int, day: int) -> None:
        if day < self.horizon:
            self.expiry_days[i].add(day)
            self.busy.setdefault(day, set()).add(i)
