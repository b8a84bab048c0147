"""One replication of one credit policy: a simpy calendar around a vectorized daily step.

simpy schedules the calendar - grants (monthly and one-off), lot expiries, the switch date and
the day itself - as processes that act at fixed times of day:

    t + 0.1 expiries   t + 0.2 switch   t + 0.3 grants
    t + 0.5 the day: sending, refunds due, threshold review, adaptation (in that order)

The sending step handles every InMail of the day for all recruiters at once with numpy;
no Python loop or simpy event runs per InMail.  Outcomes (answer, accept, delay) are drawn at
send time, so responses and refunds are scattered into day x seat calendars and nothing is
kept per message.  After the last sending day the calendar runs on until the last refund
is credited, so both policies are compared on complete outcomes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import numpy as np
import simpy

from simulator.core.anticipation import AnticipationTerms, anticipation_pressure
from simulator.core.config import SEAT_TYPES, Market, Phase, Policy, RunConfig
from simulator.core.counters import CountBuffer
from simulator.core.ledger import NEVER, Ledger, accounts_for, pay
from simulator.core.members import FatigueClock, Members, build_members, daily_decay, response_delay
from simulator.core.metrics import (
    METRIC_NAMES,
    RecruiterTally,
    ReplicationResult,
    check_finite,
    member_histogram,
    ratio,
)
from simulator.core.platform_targeting import platform_table, surface
from simulator.core.recruiters import AdaptTerms, Recruiters, adapt, build_recruiters, desired_sends, pressure, remember
from simulator.core.seeding import Streams, streams
from simulator.core.threshold import ThresholdBook

DAILY_SERIES: tuple[str, ...] = (
    "sent", "sent_bulk", "sent_personalized", "responses", "accepted", "response_rate", "acceptance_rate",
    "credits_granted", "credits_spent", "credits_refunded", "credits_expired", "net_credit_burn", "balance",
    "stockout_recruiters", "warnings", "improvement_periods", "in_improvement", "mean_member_fatigue",
    "mean_personalization", "mean_bulk_share", "mean_volume",
)
"""Daily series over sending days.  Responses and acceptances are those of the day's InMails
(eventual outcomes of that day's cohort); credit flows are by the day they happen."""


@dataclass(slots=True)
class Paid:
    """What every seat sends on a day after paying for it (arrays over seats).

    Built once a day and only read after; not frozen because a frozen dataclass takes four
    times as long to build (``object.__setattr__`` per field), a cost paid every simulated day.
    """

    sends: np.ndarray       # InMails sent (= credits spent)
    one_to_one: np.ndarray  # of which one-to-one
    bulk: np.ndarray        # of which bulk
    short: np.ndarray       # indices of the seats short of credits (they sent less than they wanted)
    bulk_total: int         # bulk InMails of all seats


@dataclass(slots=True)
class Outcome:
    """The responses among the day's InMails (arrays over responses; InMails are indexed as sent).

    Built once a day and only read after (not frozen, for the reason given at :class:`Paid`).
    """

    responded: np.ndarray       # index of each InMail answered within the observation window
    delay: np.ndarray           # its response delay in days
    responder_seat: np.ndarray  # the seat that sent it
    accepted_seat: np.ndarray   # the seat of each accepted InMail


def _pcg64(generator: np.random.Generator) -> np.random.PCG64:
    """The PCG64 bit generator of a stream (see :mod:`simulator.core.seeding`): the one the daily jump needs."""
    bit_generator = generator.bit_generator
    if not isinstance(bit_generator, np.random.PCG64):
        raise TypeError(f"streams must be PCG64, got {type(bit_generator).__name__}")
    return bit_generator


class Simulation:
    """State and calendar of one replication."""

    def __init__(self, market: Market, policy: Policy, run: RunConfig, rng: Streams) -> None:
        self.market, self.policy, self.run, self.rng = market, policy, run, rng
        self.members: Members = build_members(market.members, market.response, rng.members)
        self.rec: Recruiters = build_recruiters(market, rng.recruiters, market.sending.adaptation.cost_reference)
        self.horizon = run.horizon_days
        self.n_days = self.horizon + policy.max_refund_delay + 1
        n_seats = self.rec.count
        self.phase: Phase = policy.phase_on(run.start_date)
        self.poolable = self.rec.poolable()
        self.ledger = Ledger.open(accounts_for(self.rec.team, self.poolable, self.phase.pooling))
        self.refund_cal = np.zeros((self.n_days + 1, n_seats), dtype=np.int32)
        subject = np.isin(np.asarray(SEAT_TYPES)[self.rec.seat], policy.threshold.seat_types)
        self.book = ThresholdBook.open(policy.threshold, subject, self.horizon)
        self.anticipation = AnticipationTerms.of(market.sending.anticipation, policy.threshold, subject)
        self._kind_platform = platform_table(market.platform_targeting, policy.threshold, subject)
        self.env = simpy.Environment()
        self._expiry_days: set[int] = set()
        self.fatigue = FatigueClock(self.members, daily_decay(market.fatigue))
        self._target_ranges()
        self._calendar()
        self._kind_index = np.arange(2 * n_seats)
        self._kind_counts = np.zeros(2 * n_seats, dtype=np.int64)
        # per-seat tallies over the run
        self.seat_sent = np.zeros(n_seats, dtype=np.int64)
        self.seat_bulk = np.zeros(n_seats, dtype=np.int64)
        self.seat_responses = np.zeros(n_seats, dtype=np.int64)
        self.seat_accepted = np.zeros(n_seats, dtype=np.int64)
        self.seat_stockout_days = np.zeros(n_seats, dtype=np.int64)
        self._responses_counter = CountBuffer(self.seat_responses)
        self._accepted_counter = CountBuffer(self.seat_accepted)
        self.received = CountBuffer(self.members.received)
        self.answered = CountBuffer(self.members.answered)
        self.refunded_today: np.ndarray = np.zeros(n_seats, dtype=np.int32)
        self.spent_today: np.ndarray = np.zeros(n_seats, dtype=np.int64)
        self.daily = {k: np.zeros(self.horizon, dtype=np.float64) for k in DAILY_SERIES}
        self._day_streams = [(bit_generator, bit_generator.state)
                             for bit_generator in map(_pcg64, (rng.sending, rng.targeting, rng.outcomes))]

    # ------------------------------------------------------------------ calendar helpers

    def date(self, day: int) -> dt.date:
        return self.run.start_date + dt.timedelta(days=day)

    def day_of(self, date: dt.date) -> int:
        return (date - self.run.start_date).days

    def grant_days(self) -> list[int]:
        """Day 0 and every first of a month inside the horizon."""
        return self._grant_days

    def days_to_next_grant(self, day: int) -> int:
        date = self.date(day)
        first_of_next_month = dt.date(date.year + (date.month == 12), date.month % 12 + 1, 1)
        return (first_of_next_month - date).days

    def _calendar(self) -> None:
        """Per-day lookups worked out once: the phase in force, the weekend factor, days to the next grant."""
        start, n_days, policy = self.run.start_date, self.n_days, self.policy
        before = n_days  # days before the switch date (phase_on's rule, without a date per day)
        if policy.switch_date is not None and policy.before is not None:
            before = min(max((policy.switch_date - start).days, 0), n_days)
            self.phase_of_day: list[Phase] = [policy.before] * before + [policy.phase] * (n_days - before)
        else:
            self.phase_of_day = [policy.phase] * n_days
        weekend_factor = self.market.sending.weekend_factor
        first = start.weekday()
        self.day_factor = [weekend_factor if (first + day) % 7 >= 5 else 1.0 for day in range(n_days)]
        self.to_next_grant: list[int] = []
        self._grant_days = [0]
        date = start
        while len(self.to_next_grant) < self.horizon:  # month by month: days left to the next first
            first_of_next_month = dt.date(date.year + (date.month == 12), date.month % 12 + 1, 1)
            span = (first_of_next_month - date).days
            self.to_next_grant.extend(range(span, 0, -1))
            self._grant_days.append(len(self.to_next_grant))
            date = first_of_next_month
        del self.to_next_grant[self.horizon:]
        self._grant_days = [day for day in self._grant_days if day < self.horizon]

    def _record_means(self) -> None:
        """What follows from the recruiters' state, worked out when it changes (when recruiters adapt).

        The population means of personalization, bulk share and volume (daily series), and the
        logit offset of each (recruiter, kind) - one-to-one, bulk - for the answer probability (7.5).
        """
        rec, n_seats = self.rec, max(self.rec.count, 1)
        self._means = (float(rec.pers.sum()) / n_seats, float(rec.bulk.sum()) / n_seats,
                       float(rec.vol.sum()) / n_seats)
        resp = self.market.response
        offset = np.empty(2 * rec.count, dtype=np.float32)  # index 2 r + k, k = 0 one-to-one, 1 bulk
        offset[0::2] = rec.pers
        offset[1::2] = rec.pers * resp.bulk_personalization_factor
        offset -= resp.reference_personalization
        offset *= resp.personalization_effect
        self._offset = offset

    def _target_ranges(self) -> None:
        """Per-(recruiter, kind) tables: the member range a seat targets, its skill, the fatigue an InMail adds."""
        members = self.members
        start = members.seg_start[self.rec.segment]
        size = members.seg_size[self.rec.segment]
        empty = size == 0  # a segment too small to get members: target the whole population
        self._kind_start = np.repeat(np.where(empty, 0, start), 2)  # index 2 r + k, k = 0 one-to-one, 1 bulk
        self._kind_size = np.repeat(np.where(empty, members.count, size).astype(np.float64), 2)
        self._kind_skill = np.repeat(self.rec.skill.astype(np.float32), 2)
        fatigue = self.market.fatigue
        self._kind_weight = np.tile(np.array([fatigue.weight_personalized, fatigue.weight_bulk], dtype=np.float32),
                                    self.rec.count)  # fatigue an InMail of each kind adds

    # ------------------------------------------------------------------ simpy processes

    def _at(self, env: simpy.Environment, when: float) -> simpy.Timeout:
        return env.timeout(max(when - env.now, 0.0))

    def _grants(self, env: simpy.Environment) -> Generator[Any, Any, None]:
        """Monthly allotments and one-off grants, each at t + 0.3 of its day (monthly first on a shared day)."""
        events: list[tuple[int, int, str]] = [(day, 0, "monthly") for day in self.grant_days()]
        for i, grant in enumerate(self.policy.grants):
            day = self.day_of(grant.date)
            if 0 <= day < self.horizon:
                events.append((day, i + 1, "one_off"))
        for day, i, kind in sorted(events):
            yield self._at(env, day + 0.3)
            phase = self.policy.phase_on(self.date(day))
            seat_names = np.asarray(SEAT_TYPES)[self.rec.seat]
            if kind == "monthly":
                per_seat = np.array([phase.allotment(s) for s in SEAT_TYPES], dtype=np.int64)[self.rec.seat]
            else:
                grant = self.policy.grants[i - 1]
                per_seat = np.where(np.isin(seat_names, grant.seat_types), grant.amount, 0).astype(np.int64)
            self._grant(day, phase, per_seat)

    def _grant(self, day: int, phase: Phase, per_seat: np.ndarray) -> None:
        """Grant ``per_seat`` credits under the phase's accrual rule (a cap, or lots that expire)."""
        accrual = phase.accrual
        amounts = self.ledger.to_accounts(per_seat)
        cap = None
        expires = NEVER
        if accrual.kind == "cap":
            monthly = np.array([phase.allotment(s) for s in SEAT_TYPES], dtype=np.int64)[self.rec.seat]
            cap = np.floor(accrual.cap_months * self.ledger.to_accounts(monthly))
            cap = cap.astype(np.int64)
        elif accrual.kind == "expire":
            expires = day + accrual.expire_days
            self._schedule_expiry(expires)
        granted, dropped = self.ledger.grant(amounts, expires, cap)
        if day < self.horizon:
            self.daily["credits_granted"][day] += granted
            self.daily["credits_expired"][day] += dropped

    def _schedule_expiry(self, day: int) -> None:
        """Expire lots on ``day`` (only inside the horizon: the resolution tail is not time passing for credits)."""
        if day < self.horizon and day not in self._expiry_days:
            self._expiry_days.add(day)
            self.env.process(self._expire(self.env, day))

    def _expire(self, env: simpy.Environment, day: int) -> Generator[Any, Any, None]:
        yield self._at(env, day + 0.1)
        self.daily["credits_expired"][day] += self.ledger.expire(day)

    def _switch(self, env: simpy.Environment) -> Generator[Any, Any, None]:
        """On the switch date (t + 0.2), remap the ledger's accounts if pooling changes."""
        switch_date = self.policy.switch_date
        if switch_date is None:
            return
        day = self.day_of(switch_date)
        if not 0 < day < self.horizon:
            return
        yield self._at(env, day + 0.2)
        before, after = self.policy.phase_on(self.date(day - 1)), self.policy.phase_on(switch_date)
        if before.pooling != after.pooling:
            self.ledger.remap(accounts_for(self.rec.team, self.poolable, after.pooling))

    def _days(self, env: simpy.Environment) -> Generator[Any, Any, None]:
        """One wake-up a day: send, credit the refunds due, review the threshold, adapt."""
        adaptation = self.market.sending.adaptation
        adapting = adaptation.enabled and bool(self.rec.adaptive.any())
        reviewing = self.policy.threshold.enabled
        for day in range(self.n_days):
            yield self._at(env, day + 0.5)
            if day < self.horizon:
                self.send(day)
            self.credit_refunds(day)
            if day < self.horizon:
                if reviewing:
                    self.review(day)
                if adapting:
                    self.adapt_recruiters(day)

    def review(self, day: int) -> None:
        """End-of-day threshold review of ``day``."""
        self.book.advance(day)
        warnings, improvement_periods = self.book.review(
            day, check_new_breaches=(day % self.policy.threshold.review_every_days == 0))
        self.daily["warnings"][day] = warnings
        self.daily["improvement_periods"][day] = improvement_periods
        self.daily["in_improvement"][day] = self.book.in_improvement_count(day + 1)

    def adapt_recruiters(self, day: int) -> None:
        """Adaptive recruiters update their memory of credit costs and move toward their targets."""
        adaptation, rec, book = self.market.sending.adaptation, self.rec, self.book
        remember(rec, adaptation, self.spent_today, self.refunded_today)
        warned = book.in_grace(day + 1) if book.warned.any() else False
        ahead = None if self.anticipation is None else anticipation_pressure(self.anticipation, book.win_sends,
                                                                             book.win_resp)
        incentive = pressure(rec, adaptation, self.ledger.balance_per_seat(), self.to_next_grant[day], warned,
                             book.in_improvement(day + 1), ahead)
        adapt(rec, adaptation, incentive, self._adapt_terms)
        self._record_means()

    # ------------------------------------------------------------------ the daily step

    def day_streams(self, day: int) -> None:
        """Put the sending, targeting and outcome streams at ``day``'s own block of 2**64 draws.

        Two policies run on the same seed then draw the day's numbers from the same place even
        when earlier days consumed different amounts (different sends): common random numbers are
        restored every morning instead of being lost at the first difference.
        """
        for bit_generator, state in self._day_streams:
            bit_generator.state = state
            bit_generator.advance(day << 64)

    def send(self, day: int) -> None:
        """Decide, pay for, target and resolve every InMail of ``day``, then book and tally them.

        The daily sending step of docs/model.md, sub-step by sub-step in its order; each handles
        all recruiters at once.
        """
        self.day_streams(day)
        if self.market.fatigue.enabled:
            self.fatigue.advance(day)
        paid = self._decide_and_pay(day)
        kind = self._expand(paid)
        receiver, rows = self._target(kind)
        outcome = self._resolve(kind, rows)
        self._book_refunds(day, paid.sends, outcome)
        self.book.record(day, paid.sends, outcome.responder_seat, outcome.delay)
        self._mark_members(kind, receiver, paid, outcome)
        self._tally(day, paid, outcome, kind.size)

    def _decide_and_pay(self, day: int) -> Paid:
        """Each seat's desired one-to-one and bulk InMails, cut to what its account pays for; the credits are spent.

        A seat short of credits keeps its bulk share of what it can pay for (desired > 0 there).
        """
        wanted = desired_sends(self.rec, self.market.sending, self.day_factor[day], self.book.bulk_allowed(day),
                               self.rng.sending)
        n_one, n_bulk, allowed, short = pay(self.ledger, *wanted)
        self.spent_today = allowed
        return Paid(sends=allowed, one_to_one=n_one, bulk=n_bulk, short=short, bulk_total=int(n_bulk.sum()))

    def _expand(self, paid: Paid) -> np.ndarray:
        """One entry per InMail: its (recruiter, kind) index 2 r + k (k = 0 one-to-one, 1 bulk), seat by seat."""
        counts = self._kind_counts
        counts[0::2], counts[1::2] = paid.one_to_one, paid.bulk
        return self._kind_index.repeat(counts)

    def _target(self, kind: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The receiver of every InMail and its member row (score, fatigue, inv_log_miss, openness) as float32 (n, 4).

        A member of the recruiter's segment; a skilled recruiter (probability = skill) looks at a
        second candidate and keeps the better one by static score.  Gathers are by ``take`` (a
        third faster than fancy indexing on these sizes, same values) from per-(recruiter, kind)
        tables, so that no recruiter index per InMail is needed.
        """
        draws, members = self.rng.targeting, self.members
        n = kind.size
        start = self._kind_start.take(kind)
        size = self._kind_size.take(kind)
        receiver = draws.random(n)
        receiver *= size
        receiver = start + receiver.astype(np.int64)
        look = (draws.random(n, dtype=np.float32) < self._kind_skill.take(kind)).nonzero()[0]
        second = start.take(look) + (draws.random(look.size) * size.take(look)).astype(np.int64)
        rows = members.gather_rows(receiver)  # one 16-byte row per InMail
        second_rows = members.gather_rows(second)
        better = (second_rows.view(np.float32)[0::4] > rows.view(np.float32).take(4 * look)).nonzero()[0]
        swap = look.take(better)
        receiver[swap] = second.take(better)
        rows[swap] = second_rows.take(better)
        if self._kind_platform is not None:  # the platform's candidates, after every draw above
            steer = (draws.random(n, dtype=np.float32) < self._kind_platform.take(kind)).nonzero()[0]
            surface(receiver, rows, start, size, steer, self.market.platform_targeting.candidates,
                    lambda idx: draws.random(idx.size), members.gather_rows)
        return receiver, rows.view(np.float32).reshape(n, 4)

    def _resolve(self, kind: np.ndarray, rows: np.ndarray) -> Outcome:
        """Whether each InMail is answered, after how many days, and whether the answer accepts.

        Answer with p = expit(score + offset) * exp(-sensitivity * fatigue), written as
        exp(-s F) / (1 + exp(-z)) in float32 (score is -inf for inactive members, so p = 0);
        answers later than ``observation_days`` are not responses.
        """
        fatigue = self.market.fatigue
        z = self._offset.take(kind)
        z += rows[:, 0]
        np.negative(z, out=z)
        np.exp(z, out=z)
        z += np.float32(1.0)
        if fatigue.enabled:
            p = self.fatigue.current(rows[:, 1])
            p *= np.float32(-fatigue.sensitivity)
            np.exp(p, out=p)
            p /= z
        else:
            p = np.reciprocal(z, out=z)
        draws = self.rng.outcomes
        answered = (draws.random(kind.size, dtype=np.float32) < p).nonzero()[0]
        answered_rows = rows.take(answered, axis=0)
        delay = response_delay(answered_rows[:, 2], draws)
        observed = (delay <= self.market.response.observation_days).nonzero()[0]
        responded, responded_delay = answered.take(observed), delay.take(observed)
        accepted = responded[draws.random(responded.size, dtype=np.float32) < answered_rows[:, 3].take(observed)]
        return Outcome(responded=responded, delay=responded_delay, responder_seat=kind.take(responded) >> 1,
                       accepted_seat=kind.take(accepted) >> 1)

    def _book_refunds(self, day: int, sends: np.ndarray, outcome: Outcome) -> None:
        """Book the day's refunds into the refund calendar, by the rule in force on the send day."""
        rule = self.phase_of_day[day].refund
        n_seats = self.rec.count
        if rule.kind == "on_silence":
            quick = outcome.delay <= rule.window_days
            silent = sends - np.bincount(outcome.responder_seat[quick], minlength=n_seats)
            self.refund_cal[day + rule.window_days + rule.latency_days] += silent.astype(np.int32)
        elif rule.kind == "on_response":
            ok = outcome.delay <= rule.window_days
            flat = (day + rule.latency_days) * n_seats + (outcome.delay[ok] * n_seats + outcome.responder_seat[ok])
            np.add.at(self.refund_cal.reshape(-1), flat, np.int32(1))  # 1-D index: ufunc.at's fast path

    def _mark_members(self, kind: np.ndarray, receiver: np.ndarray, paid: Paid, outcome: Outcome) -> None:
        """Add the day's InMails to the receivers' fatigue and to the members' received and answered counts."""
        fatigue = self.market.fatigue
        if fatigue.enabled:
            if fatigue.weight_bulk == fatigue.weight_personalized:
                self.fatigue.add(receiver, fatigue.weight_bulk)
            else:
                weights = self._kind_weight.take(kind)
                added = (fatigue.weight_personalized * (kind.size - paid.bulk_total)
                         + fatigue.weight_bulk * paid.bulk_total)
                self.fatigue.add(receiver, weights, total=added)
        self.received.add(receiver)
        self.answered.add(receiver.take(outcome.responded))

    def _tally(self, day: int, paid: Paid, outcome: Outcome, sent: int) -> None:
        """Add the day to the per-seat tallies and write its daily series."""
        self._responses_counter.add(outcome.responder_seat)
        self._accepted_counter.add(outcome.accepted_seat)
        self.seat_sent += paid.sends
        self.seat_bulk += paid.bulk
        self.seat_stockout_days[paid.short] += 1
        responses, accepted = outcome.responder_seat.size, outcome.accepted_seat.size
        daily = self.daily
        daily["sent"][day] = sent
        daily["sent_bulk"][day] = paid.bulk_total
        daily["sent_personalized"][day] = sent - paid.bulk_total
        daily["responses"][day] = responses
        daily["accepted"][day] = accepted
        daily["response_rate"][day] = ratio(responses, sent)
        daily["acceptance_rate"][day] = ratio(accepted, sent)
        daily["credits_spent"][day] = sent
        daily["stockout_recruiters"][day] = paid.short.size
        members = self.members
        fatigue_on = self.market.fatigue.enabled
        daily["mean_member_fatigue"][day] = members.total_fatigue / members.count if fatigue_on else 0.0
        if self.rec.count:
            daily["mean_personalization"][day], daily["mean_bulk_share"][day], daily["mean_volume"][day] = self._means

    def credit_refunds(self, day: int) -> None:
        """Credit the refunds due at the end of ``day`` to their seats' accounts."""
        due = self.refund_cal[day]
        self.refunded_today = due
        total = int(due.sum())
        if not total:
            return
        ledger = self.ledger
        phase = self.phase_of_day[min(day, self.horizon - 1)]
        fallback = day + phase.accrual.expire_days if phase.accrual.kind == "expire" else NEVER
        if not ledger.lots and fallback != NEVER:
            self._schedule_expiry(fallback)
        ledger.refund(ledger.to_accounts(due), day, fallback, total=total)
        if day < self.horizon:
            self.daily["credits_refunded"][day] += total

    # ------------------------------------------------------------------ run and summarize

    def execute(self) -> ReplicationResult:
        """Run the calendar to the last refund and summarize the replication."""
        env = self.env
        self._record_means()  # here, not in __init__: tests and explain may edit the recruiters before the run
        self._adapt_terms = AdaptTerms.of(self.rec, self.market.sending.adaptation)
        for proc in (self._grants, self._switch, self._days):
            env.process(proc(env))
        with np.errstate(over="ignore"):  # exp(-z) may overflow to inf for hopeless InMails: p = 0, as meant
            env.run(until=self.n_days + 1)
        return self.result()

    def result(self) -> ReplicationResult:
        """Metrics, daily series, per-seat tallies and per-member counts of the finished run."""
        daily = self.daily
        daily["net_credit_burn"][:] = daily["credits_spent"] - daily["credits_refunded"]
        daily["balance"][:] = np.cumsum(daily["credits_granted"] - daily["credits_spent"] + daily["credits_refunded"]
                                        - daily["credits_expired"])
        ledger, members = self.ledger, self.members
        self._responses_counter.flush()
        self._accepted_counter.flush()
        seat_refunded = self.refund_cal.sum(axis=0, dtype=np.int64)  # every refund ever scheduled, by seat
        sent = int(self.seat_sent.sum())
        sent_bulk = int(self.seat_bulk.sum())
        responses = int(self.seat_responses.sum())
        accepted = int(self.seat_accepted.sum())
        active = members.active_count
        received = self.received.flush()
        unanswered = received - self.answered.flush()
        received_active = int(received[members.active].sum())
        values = {
            "sent": sent,
            "sent_bulk": sent_bulk,
            "sent_personalized": sent - sent_bulk,
            "responses": responses,
            "accepted": accepted,
            "declined": responses - accepted,
            # never answered within observation_days; "pending" is its deprecated name (same values)
            "unanswered": sent - responses,
            "pending": sent - responses,
            "response_rate": ratio(responses, sent),
            "acceptance_rate": ratio(accepted, sent),
            "credits_granted": ledger.granted,
            "credits_spent": ledger.spent,
            "credits_refunded": ledger.refunded,
            "credits_expired": ledger.expired,
            "net_credit_burn": ledger.spent - ledger.refunded,
            # credits the recruiters no longer hold: granted - final balance, by the ledger's conservation
            "credits_lost": ledger.spent - ledger.refunded + ledger.expired,
            "credits_per_response": ratio(ledger.spent - ledger.refunded, responses),
            "stockout_recruiter_days": int(self.seat_stockout_days.sum()),
            "warnings": int(self.book.warnings.sum()),
            "improvement_periods": int(self.book.improvement_periods.sum()),
            "inmails_per_active_member": ratio(received_active, active),
            # only active members answer, so their unanswered InMails are received minus responses
            "unanswered_per_active_member": ratio(received_active - responses, active),
            "mean_member_fatigue": float(daily["mean_member_fatigue"].mean()),
        }
        metrics = {k: float(values[k]) for k in METRIC_NAMES}
        check_finite(self.policy.name, metrics)  # backstop of the parameter ranges: refuse, never write, inf
        rec = self.rec
        groups = np.asarray([group.name for group in self.market.recruiters], dtype=object)
        tally = RecruiterTally(
            seat_type=np.asarray(SEAT_TYPES, dtype=object)[rec.seat],
            behaviour=np.where(rec.adaptive, "adaptive", "fixed").astype(object),
            group=groups[rec.group] if rec.count else np.zeros(0, dtype=object),
            personalization_band=rec.personalization_band(),
            sent=self.seat_sent, sent_bulk=self.seat_bulk, responses=self.seat_responses, accepted=self.seat_accepted,
            credits_spent=self.seat_sent.copy(), credits_refunded=seat_refunded,
            stockout_recruiter_days=self.seat_stockout_days, warnings=self.book.warnings,
            improvement_periods=self.book.improvement_periods,
        )
        extra = {
            "final_balance": float(ledger.total_balance()),
            "credits_conserved": float(ledger.conserved()),
            "active_members": float(active),
            "members": float(members.count),
            "recruiters": float(rec.count),
            "horizon_days": float(self.horizon),
            "resolution_days": float(self.n_days - self.horizon),
        }
        return ReplicationResult(
            policy=self.policy.name, seed_entropy=self.rng.seed_entropy, spawn_key=self.rng.spawn_key,
            metrics=metrics, daily=dict(daily) if self.run.record_daily else {}, recruiters=tally,
            member_received=received, member_unanswered=unanswered,
            member_histograms={"received": member_histogram(received, members.active),
                               "unanswered": member_histogram(unanswered, members.active)},
            extra=extra,
        )


def run_replication(
    market: Market, policy: Policy, run: RunConfig | None = None, *, seed: int | np.random.SeedSequence,
) -> ReplicationResult:
    """Simulate one replication of ``policy`` on ``market``.

    ``seed`` is an integer or a replication's ``SeedSequence`` (see :mod:`simulator.core.seeding`);
    two policies run with the same seed face the same members, recruiters and random streams.
    """
    sim = Simulation(market, policy, run or RunConfig(), streams(seed))
    return sim.execute()
