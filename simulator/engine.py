"""One replication of one credit policy: a simpy calendar around a vectorized daily step.

simpy schedules the calendar - grants (monthly and one-off), lot expiries, the switch date,
threshold reviews and adaptation - as processes that act at fixed times of day:

    t + 0.1 expiries   t + 0.2 switch   t + 0.3 grants   t + 0.5 sending and refunds
    t + 0.8 threshold review            t + 0.9 adaptation

The sending step handles every InMail of the day for all recruiters at once with numpy;
no Python loop or simpy event runs per InMail.  Outcomes (answer, accept, delay) are drawn at
send time, so responses and refunds are scattered into day x seat calendars and nothing is
kept per message.  After the last sending day the calendar runs on until the last refund
is credited, so both policies are compared on complete outcomes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Generator
from typing import Any

import numpy as np
import simpy
from scipy.special import expit

from simulator.config import SEAT_TYPES, Market, Phase, Policy, RunConfig
from simulator.ledger import NEVER, Ledger, accounts_for, allocate, per_account
from simulator.members import FatigueClock, Members, build_members, daily_decay, response_delay
from simulator.metrics import METRIC_NAMES, RecruiterTally, ReplicationResult, ratio
from simulator.recruiters import Recruiters, adapt, build_recruiters, desired_sends, pressure, remember
from simulator.seeding import Streams, streams
from simulator.threshold import ThresholdBook

DAILY_SERIES: tuple[str, ...] = (
    "sent", "sent_bulk", "sent_personalized", "responses", "accepted", "response_rate", "acceptance_rate",
    "credits_granted", "credits_spent", "credits_refunded", "credits_expired", "net_credit_burn", "balance",
    "stockout_recruiters", "warnings", "improvement_periods", "in_improvement", "mean_member_fatigue",
    "mean_personalization", "mean_bulk_share", "mean_volume",
)
"""Daily series over sending days.  Responses and acceptances are those of the day's InMails
(eventual outcomes of that day's cohort); credit flows are by the day they happen."""


class CountBuffer:
    """Per-member counters fed with index batches: buffered, then counted with one bincount.

    ``np.add.at`` per day costs a random scatter per InMail; collecting indices and flushing
    with ``np.bincount`` once the buffer holds about as many entries as there are members keeps
    the cost near a sequential pass, and memory bounded by the member count.
    """

    def __init__(self, target: np.ndarray) -> None:
        self.target = target
        self.buf = np.empty(max(target.size, 1 << 16), dtype=np.int64)
        self.n = 0

    def add(self, idx: np.ndarray) -> None:
        if self.n + idx.size > self.buf.size:
            self.flush()
        if idx.size > self.buf.size:
            self.target += np.bincount(idx, minlength=self.target.size).astype(self.target.dtype)
            return
        self.buf[self.n:self.n + idx.size] = idx
        self.n += idx.size

    def flush(self) -> np.ndarray:
        if self.n:
            counts = np.bincount(self.buf[:self.n], minlength=self.target.size)
            self.target += counts.astype(self.target.dtype)
            self.n = 0
        return self.target


class Simulation:
    """State and calendar of one replication."""

    def __init__(self, market: Market, policy: Policy, run: RunConfig, rng: Streams) -> None:
        self.market, self.policy, self.run, self.rng = market, policy, run, rng
        self.members: Members = build_members(market.members, market.response, rng.members)
        self.rec: Recruiters = build_recruiters(market, rng.recruiters, market.sending.adaptation.cost_reference)
        self.horizon = run.horizon_days
        self.max_delay = policy.max_refund_delay
        self.n_days = self.horizon + self.max_delay + 1
        R = self.rec.count
        self.phase: Phase = policy.phase_on(run.start_date)
        self.poolable = self.rec.poolable()
        self.ledger = Ledger.open(accounts_for(self.rec.team, self.poolable, self.phase.pooling))
        self.refund_cal = np.zeros((self.n_days + 1, R), dtype=np.int32)
        subject = np.isin(np.asarray(SEAT_TYPES)[self.rec.seat], policy.threshold.seat_types)
        self.book = ThresholdBook.open(policy.threshold, subject, self.horizon)
        self.env = simpy.Environment()
        self._expiry_days: set[int] = set()
        self.fatigue = FatigueClock(self.members, daily_decay(market.fatigue))
        self._target_ranges()
        self._kind_index = np.arange(2 * R)
        self._kind_counts = np.zeros(2 * R, dtype=np.int64)
        z = np.zeros(R, dtype=np.int64)
        self.t_sent, self.t_bulk, self.t_resp, self.t_acc, self.t_refund, self.t_stockout = (z.copy() for _ in range(6))
        self.received = CountBuffer(self.members.received)
        self.answered = CountBuffer(self.members.answered)
        self.received_active = 0
        self.refunded_today = np.zeros(R, dtype=np.float64)
        self.spent_today = np.zeros(R, dtype=np.float64)
        self.daily = {k: np.zeros(self.horizon, dtype=np.float64) for k in DAILY_SERIES}

    # ------------------------------------------------------------------ calendar helpers

    def date(self, day: int) -> dt.date:
        return self.run.start_date + dt.timedelta(days=day)

    def day_of(self, date: dt.date) -> int:
        return (date - self.run.start_date).days

    def grant_days(self) -> list[int]:
        """Day 0 and every first of a month inside the horizon."""
        return [0] + [t for t in range(1, self.horizon) if self.date(t).day == 1]

    def days_to_next_grant(self, day: int) -> int:
        d = self.date(day)
        nxt = dt.date(d.year + (d.month == 12), d.month % 12 + 1, 1)
        return (nxt - d).days

    def _target_ranges(self) -> None:
        m = self.members
        start = m.seg_start[self.rec.segment]
        size = m.seg_size[self.rec.segment]
        empty = size == 0  # a segment too small to get members: target the whole population
        self.t_start = np.where(empty, 0, start)
        self.t_size = np.where(empty, m.count, size)

    # ------------------------------------------------------------------ simpy processes

    def _at(self, env: simpy.Environment, when: float) -> simpy.Timeout:
        return env.timeout(max(when - env.now, 0.0))

    def _grants(self, env: simpy.Environment) -> Generator[Any, Any, None]:
        events: list[tuple[int, int, str]] = [(t, 0, "monthly") for t in self.grant_days()]
        for i, g in enumerate(self.policy.grants):
            t = self.day_of(g.date)
            if 0 <= t < self.horizon:
                events.append((t, i + 1, "one_off"))
        for t, i, kind in sorted(events):
            yield self._at(env, t + 0.3)
            phase = self.policy.phase_on(self.date(t))
            seat_names = np.asarray(SEAT_TYPES)[self.rec.seat]
            if kind == "monthly":
                per_rec = np.array([phase.allotment(s) for s in SEAT_TYPES], dtype=np.int64)[self.rec.seat]
            else:
                g = self.policy.grants[i - 1]
                per_rec = np.where(np.isin(seat_names, g.seat_types), g.amount, 0).astype(np.int64)
            self._grant(env, t, phase, per_rec)

    def _grant(self, env: simpy.Environment, t: int, phase: Phase, per_rec: np.ndarray) -> None:
        acc = phase.accrual
        amounts = per_account(self.ledger.account_of, per_rec, self.ledger.n_accounts)
        cap = None
        expires = NEVER
        if acc.kind == "cap":
            monthly = np.array([phase.allotment(s) for s in SEAT_TYPES], dtype=np.int64)[self.rec.seat]
            cap = np.floor(acc.cap_months * per_account(self.ledger.account_of, monthly, self.ledger.n_accounts))
            cap = cap.astype(np.int64)
        elif acc.kind == "expire":
            expires = t + acc.expire_days
            self._schedule_expiry(expires)
        granted, dropped = self.ledger.grant(amounts, expires, cap)
        if t < self.horizon:
            self.daily["credits_granted"][t] += granted
            self.daily["credits_expired"][t] += dropped

    def _schedule_expiry(self, day: int) -> None:
        """Expire lots on ``day`` (only inside the horizon: the resolution tail is not time passing for credits)."""
        if day < self.horizon and day not in self._expiry_days:
            self._expiry_days.add(day)
            self.env.process(self._expire(self.env, day))

    def _expire(self, env: simpy.Environment, day: int) -> Generator[Any, Any, None]:
        yield self._at(env, day + 0.1)
        self.daily["credits_expired"][day] += self.ledger.expire(day)

    def _switch(self, env: simpy.Environment) -> Generator[Any, Any, None]:
        sd = self.policy.switch_date
        if sd is None:
            return
        t = self.day_of(sd)
        if not 0 < t < self.horizon:
            return
        yield self._at(env, t + 0.2)
        before, after = self.policy.phase_on(self.date(t - 1)), self.policy.phase_on(sd)
        if before.pooling != after.pooling:
            self.ledger.remap(accounts_for(self.rec.team, self.poolable, after.pooling))

    def _days(self, env: simpy.Environment) -> Generator[Any, Any, None]:
        for t in range(self.n_days):
            yield self._at(env, t + 0.5)
            if t < self.horizon:
                self.send(t)
            self.credit_refunds(t)

    def _reviews(self, env: simpy.Environment) -> Generator[Any, Any, None]:
        if not self.policy.threshold.enabled:
            return
        every = self.policy.threshold.review_every_days
        for t in range(self.horizon):
            yield self._at(env, t + 0.8)
            self.book.advance(t)
            w, ip = self.book.review(t, check_new_breaches=(t % every == 0))
            self.daily["warnings"][t] = w
            self.daily["improvement_periods"][t] = ip
            self.daily["in_improvement"][t] = int(self.book.in_improvement(t + 1).sum())

    def _adaptation(self, env: simpy.Environment) -> Generator[Any, Any, None]:
        adaptation = self.market.sending.adaptation
        if not adaptation.enabled or not self.rec.adaptive.any():
            return
        for t in range(self.horizon):
            yield self._at(env, t + 0.9)
            remember(self.rec, adaptation, self.spent_today, self.refunded_today)
            sizes = self.ledger.account_sizes()
            per_head = self.ledger.balance()[self.ledger.account_of] / sizes[self.ledger.account_of]
            p = pressure(self.rec, adaptation, per_head, self.days_to_next_grant(t),
                         self.book.in_grace(t + 1), self.book.in_improvement(t + 1))
            adapt(self.rec, adaptation, p)

    # ------------------------------------------------------------------ the daily step

    def send(self, t: int) -> None:
        """Decide, pay for, target and resolve every InMail of day ``t``."""
        market, rec, m, rng = self.market, self.rec, self.members, self.rng
        date = self.date(t)
        phase = self.policy.phase_on(date)
        factor = market.sending.weekend_factor if date.weekday() >= 5 else 1.0
        if market.fatigue.enabled:
            self.fatigue.advance(t)
        n_one, n_bulk = desired_sends(rec, market.sending, factor, self.book.bulk_allowed(t), rng.sending)
        desired = n_one + n_bulk
        allowed = allocate(desired, self.ledger.account_of, self.ledger.balance())
        short = allowed < desired
        n_bulk = np.where(short, (n_bulk * allowed) // np.maximum(desired, 1), n_bulk)
        n_one = allowed - n_bulk
        self.ledger.spend(per_account(self.ledger.account_of, allowed, self.ledger.n_accounts))
        self.spent_today = allowed.astype(np.float64)

        counts = self._kind_counts
        counts[0::2], counts[1::2] = n_one, n_bulk
        kind = np.repeat(self._kind_index, counts)
        r = kind >> 1
        bulk = (kind & 1).astype(bool)

        # targeting: a member of the recruiter's segment; a skilled recruiter (probability = skill)
        # looks at a second candidate and keeps the better one by static score
        tr = rng.targeting
        start, size = self.t_start[r], self.t_size[r]
        who = start + (tr.random(r.size) * size).astype(np.int64)
        look = np.flatnonzero(tr.random(r.size, dtype=np.float32) < rec.skill[r])
        second = start[look] + (tr.random(look.size) * size[look]).astype(np.int64)
        better = m.score[second] > m.score[who[look]]
        who[look[better]] = second[better]

        # outcome: answer (score is -inf for inactive members, so p = 0), accept, delay
        resp = market.response
        pers = np.column_stack([rec.pers, rec.pers * resp.bulk_personalization_factor]).ravel()
        offset = resp.personalization_effect * (pers - resp.reference_personalization)
        score = m.score[who]
        p = expit(score + offset[kind])
        if market.fatigue.enabled:
            p *= np.exp(-market.fatigue.sensitivity * self.fatigue.now(who))
        out = rng.outcomes
        ans_idx = np.flatnonzero(out.random(r.size, dtype=np.float32) < p)
        ans_who = who[ans_idx]
        delay = response_delay(m.inv_log_miss[ans_who], out)
        observed = delay <= resp.observation_days
        resp_idx, resp_delay = ans_idx[observed], delay[observed]
        acc_idx = resp_idx[out.random(resp_idx.size, dtype=np.float32) < m.openness[ans_who[observed]]]
        R = rec.count

        # refunds, by the rule in force on the send day
        rule = phase.refund
        if rule.kind == "on_silence":
            quick = resp_delay <= rule.window_days
            silent = allowed - np.bincount(r[resp_idx[quick]], minlength=R)
            self.refund_cal[t + rule.window_days + rule.latency_days] += silent.astype(np.int32)
            self.t_refund += silent
        elif rule.kind == "on_response":
            ok = resp_delay <= rule.window_days
            rr = r[resp_idx[ok]]
            flat = (t + resp_delay[ok] + rule.latency_days) * R + rr
            np.add.at(self.refund_cal.reshape(-1), flat, np.int32(1))  # 1-D index: ufunc.at's fast path
            self.t_refund += np.bincount(rr, minlength=R)

        # threshold window, fatigue, member tallies
        resp_rec = r[resp_idx]
        self.book.record(t, allowed, resp_rec, resp_delay)
        if market.fatigue.enabled:
            w = np.where(bulk, market.fatigue.weight_bulk, market.fatigue.weight_personalized)
            self.fatigue.add(who, w)
        self.received.add(who)
        self.answered.add(who[resp_idx])
        self.received_active += int(np.count_nonzero(score > -np.inf))  # -inf exactly for inactive members

        # recruiter tallies and the day's series
        n_resp_r = np.bincount(resp_rec, minlength=R)
        n_acc_r = np.bincount(r[acc_idx], minlength=R)
        self.t_sent += allowed
        self.t_bulk += n_bulk
        self.t_resp += n_resp_r
        self.t_acc += n_acc_r
        self.t_stockout += short
        d = self.daily
        sent = int(allowed.sum())
        d["sent"][t] = sent
        d["sent_bulk"][t] = int(n_bulk.sum())
        d["sent_personalized"][t] = int(n_one.sum())
        d["responses"][t] = resp_idx.size
        d["accepted"][t] = acc_idx.size
        d["response_rate"][t] = ratio(resp_idx.size, sent)
        d["acceptance_rate"][t] = ratio(acc_idx.size, sent)
        d["credits_spent"][t] = sent
        d["stockout_recruiters"][t] = int(short.sum())
        d["mean_member_fatigue"][t] = m.total_fatigue / m.count if market.fatigue.enabled else 0.0
        if R:
            d["mean_personalization"][t] = float(rec.pers.mean())
            d["mean_bulk_share"][t] = float(rec.bulk.mean())
            d["mean_volume"][t] = float(rec.vol.mean())

    def credit_refunds(self, t: int) -> None:
        """Credit the refunds due at the end of day ``t`` to their seats' accounts."""
        due = self.refund_cal[t]
        self.refunded_today = due.astype(np.float64)
        if not due.any():
            return
        lg = self.ledger
        phase = self.policy.phase_on(self.date(min(t, self.horizon - 1)))
        fallback = t + phase.accrual.expire_days if phase.accrual.kind == "expire" else NEVER
        if not lg.lots and fallback != NEVER:
            self._schedule_expiry(fallback)
        lg.refund(per_account(lg.account_of, due, lg.n_accounts), t, fallback)
        if t < self.horizon:
            self.daily["credits_refunded"][t] += int(due.sum())

    # ------------------------------------------------------------------ run and summarize

    def execute(self) -> ReplicationResult:
        env = self.env
        for proc in (self._grants, self._switch, self._days, self._reviews, self._adaptation):
            env.process(proc(env))
        env.run(until=self.n_days + 1)
        return self.result()

    def result(self) -> ReplicationResult:
        d = self.daily
        d["net_credit_burn"][:] = d["credits_spent"] - d["credits_refunded"]
        d["balance"][:] = np.nan  # filled below from the flows
        flows = np.cumsum(d["credits_granted"] - d["credits_spent"] + d["credits_refunded"] - d["credits_expired"])
        d["balance"][:] = flows
        lg, m = self.ledger, self.members
        sent = int(self.t_sent.sum())
        responses = int(self.t_resp.sum())
        accepted = int(self.t_acc.sum())
        active = m.active_count
        values = {
            "sent": sent,
            "sent_bulk": int(self.t_bulk.sum()),
            "sent_personalized": sent - int(self.t_bulk.sum()),
            "responses": responses,
            "accepted": accepted,
            "declined": responses - accepted,
            "pending": sent - responses,
            "response_rate": ratio(responses, sent),
            "acceptance_rate": ratio(accepted, sent),
            "credits_granted": lg.granted,
            "credits_spent": lg.spent,
            "credits_refunded": lg.refunded,
            "credits_expired": lg.expired,
            "net_credit_burn": lg.spent - lg.refunded,
            "credits_per_response": ratio(lg.spent - lg.refunded, responses),
            "stockout_recruiter_days": int(self.t_stockout.sum()),
            "warnings": int(self.book.warnings.sum()),
            "improvement_periods": int(self.book.improvement_periods.sum()),
            "inmails_per_active_member": ratio(self.received_active, active),
            # only active members answer, so their unanswered InMails are received minus responses
            "unanswered_per_active_member": ratio(self.received_active - responses, active),
            "mean_member_fatigue": float(d["mean_member_fatigue"].mean()),
        }
        metrics = {k: float(values[k]) for k in METRIC_NAMES}
        rec = self.rec
        groups = np.asarray([g.name for g in self.market.recruiters], dtype=object)
        tally = RecruiterTally(
            seat_type=np.asarray(SEAT_TYPES, dtype=object)[rec.seat],
            behaviour=np.where(rec.adaptive, "adaptive", "fixed").astype(object),
            group=groups[rec.group] if rec.count else np.zeros(0, dtype=object),
            personalization_band=rec.personalization_band(),
            sent=self.t_sent, sent_bulk=self.t_bulk, responses=self.t_resp, accepted=self.t_acc,
            credits_spent=self.t_sent.copy(), credits_refunded=self.t_refund,
            stockout_recruiter_days=self.t_stockout, warnings=self.book.warnings,
            improvement_periods=self.book.improvement_periods,
        )
        extra = {
            "final_balance": float(lg.total_balance()),
            "credits_conserved": float(lg.conserved()),
            "active_members": float(active),
            "members": float(m.count),
            "recruiters": float(rec.count),
            "horizon_days": float(self.horizon),
            "resolution_days": float(self.n_days - self.horizon),
        }
        return ReplicationResult(
            policy=self.policy.name, seed_entropy=self.rng.seed_entropy, spawn_key=self.rng.spawn_key,
            metrics=metrics, daily=dict(d) if self.run.record_daily else {}, recruiters=tally,
            member_received=self.received.flush(),
            member_unanswered=self.received.target - self.answered.flush(), extra=extra,
        )


def run_replication(
    market: Market, policy: Policy, run: RunConfig | None = None, *, seed: int | np.random.SeedSequence,
) -> ReplicationResult:
    """Simulate one replication of ``policy`` on ``market``.

    ``seed`` is an integer or a replication's ``SeedSequence`` (see :mod:`simulator.seeding`);
    two policies run with the same seed face the same members, recruiters and random streams.
    """
    sim = Simulation(market, policy, run or RunConfig(), streams(seed))
    return sim.execute()
