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
from typing import Any

import numpy as np
import simpy

from simulator.core.config import SEAT_TYPES, Market, Phase, Policy, RunConfig
from simulator.core.ledger import NEVER, Ledger, accounts_for, allocate_with_accounts
from simulator.core.members import FatigueClock, Members, build_members, daily_decay, response_delay
from simulator.core.metrics import METRIC_NAMES, RecruiterTally, ReplicationResult, member_histogram, ratio
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
        self._calendar()
        self._kind_index = np.arange(2 * R)
        self._kind_counts = np.zeros(2 * R, dtype=np.int64)
        z = np.zeros(R, dtype=np.int64)
        self.t_sent, self.t_bulk, self.t_resp, self.t_acc, self.t_stockout = (z.copy() for _ in range(5))
        self._resp_count = CountBuffer(self.t_resp)
        self._acc_count = CountBuffer(self.t_acc)
        self.received = CountBuffer(self.members.received)
        self.answered = CountBuffer(self.members.answered)
        self.refunded_today: np.ndarray = np.zeros(R, dtype=np.int32)
        self.spent_today: np.ndarray = np.zeros(R, dtype=np.int64)
        self.daily = {k: np.zeros(self.horizon, dtype=np.float64) for k in DAILY_SERIES}
        self._day_streams = [(g.bit_generator, g.bit_generator.state)
                             for g in (rng.sending, rng.targeting, rng.outcomes)]

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

    def _calendar(self) -> None:
        """Per-day lookups worked out once: the phase in force, the weekend factor, days to the next grant."""
        dates = [self.date(t) for t in range(self.n_days)]
        self.phase_of_day: list[Phase] = [self.policy.phase_on(d) for d in dates]
        wf = self.market.sending.weekend_factor
        self.day_factor = [wf if d.weekday() >= 5 else 1.0 for d in dates]
        self.to_next_grant = [self.days_to_next_grant(t) for t in range(self.horizon)]

    def _record_means(self) -> None:
        """What follows from the recruiters' state, worked out when it changes (when recruiters adapt).

        The population means of personalization, bulk share and volume (daily series), and the
        logit offset of each (recruiter, kind) - one-to-one, bulk - for the answer probability (7.5).
        """
        rec, R = self.rec, max(self.rec.count, 1)
        self._means = (float(rec.pers.sum()) / R, float(rec.bulk.sum()) / R, float(rec.vol.sum()) / R)
        resp = self.market.response
        offset = np.empty(2 * rec.count, dtype=np.float32)  # index 2 r + k, k = 0 one-to-one, 1 bulk
        offset[0::2] = rec.pers
        offset[1::2] = rec.pers * resp.bulk_personalization_factor
        offset -= resp.reference_personalization
        offset *= resp.personalization_effect
        self._offset = offset

    def _target_ranges(self) -> None:
        m = self.members
        start = m.seg_start[self.rec.segment]
        size = m.seg_size[self.rec.segment]
        empty = size == 0  # a segment too small to get members: target the whole population
        self.t_start = np.where(empty, 0, start)
        self.t_size = np.where(empty, m.count, size)
        self._kind_start = np.repeat(self.t_start, 2)  # index 2 r + k, k = 0 one-to-one, 1 bulk
        self._kind_size = np.repeat(self.t_size.astype(np.float64), 2)
        self._kind_skill = np.repeat(self.rec.skill.astype(np.float32), 2)
        fw = self.market.fatigue
        self._kind_weight = np.tile(np.array([fw.weight_personalized, fw.weight_bulk], dtype=np.float32),
                                    self.rec.count)  # fatigue an InMail of each kind adds

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
        amounts = self.ledger.to_accounts(per_rec)
        cap = None
        expires = NEVER
        if acc.kind == "cap":
            monthly = np.array([phase.allotment(s) for s in SEAT_TYPES], dtype=np.int64)[self.rec.seat]
            cap = np.floor(acc.cap_months * self.ledger.to_accounts(monthly))
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
        """One wake-up a day: send, credit the refunds due, review the threshold, adapt."""
        adaptation = self.market.sending.adaptation
        adapting = adaptation.enabled and bool(self.rec.adaptive.any())
        reviewing = self.policy.threshold.enabled
        for t in range(self.n_days):
            yield self._at(env, t + 0.5)
            if t < self.horizon:
                self.send(t)
            self.credit_refunds(t)
            if t < self.horizon:
                if reviewing:
                    self.review(t)
                if adapting:
                    self.adapt_recruiters(t)

    def review(self, t: int) -> None:
        """End-of-day threshold review of day ``t``."""
        self.book.advance(t)
        w, ip = self.book.review(t, check_new_breaches=(t % self.policy.threshold.review_every_days == 0))
        self.daily["warnings"][t] = w
        self.daily["improvement_periods"][t] = ip
        self.daily["in_improvement"][t] = self.book.in_improvement_count(t + 1)

    def adapt_recruiters(self, t: int) -> None:
        """Adaptive recruiters update their memory of credit costs and move toward their targets."""
        adaptation, rec, lg = self.market.sending.adaptation, self.rec, self.ledger
        remember(rec, adaptation, self.spent_today, self.refunded_today)
        book = self.book
        warned = book.in_grace(t + 1) if book.warned.any() else False
        p = pressure(rec, adaptation, lg.balance_per_seat(), self.to_next_grant[t], warned, book.in_improvement(t + 1))
        adapt(rec, adaptation, p, self._adapt_terms)
        self._record_means()

    # ------------------------------------------------------------------ the daily step

    def day_streams(self, t: int) -> None:
        """Put the sending, targeting and outcome streams at day ``t``'s own block of 2**64 draws.

        Two policies run on the same seed then draw day ``t``'s numbers from the same place even
        when earlier days consumed different amounts (different sends): common random numbers are
        restored every morning instead of being lost at the first difference.
        """
        for bit_generator, state in self._day_streams:
            bit_generator.state = state
            bit_generator.advance(t << 64)

    def send(self, t: int) -> None:
        """Decide, pay for, target and resolve every InMail of day ``t``."""
        market, rec, m, rng, lg = self.market, self.rec, self.members, self.rng, self.ledger
        self.day_streams(t)
        phase = self.phase_of_day[t]
        fatigue = market.fatigue.enabled
        if fatigue:
            self.fatigue.advance(t)
        n_one, n_bulk = desired_sends(rec, market.sending, self.day_factor[t], self.book.bulk_allowed(t),
                                      rng.sending)
        desired = n_one + n_bulk
        allowed, spend = allocate_with_accounts(desired, lg.account_of, lg.bal, identity=lg.identity)
        cut = (allowed < desired).nonzero()[0]  # seats short of credits today
        if cut.size:  # short seats keep their bulk share of what they can pay for (desired > 0 there)
            n_bulk[cut] = (n_bulk[cut] * allowed[cut]) // desired[cut]
            n_one = allowed - n_bulk
        lg.spend(spend)
        self.spent_today = allowed
        n_bulk_total = int(n_bulk.sum())

        counts = self._kind_counts
        counts[0::2], counts[1::2] = n_one, n_bulk
        kind = self._kind_index.repeat(counts)
        n = kind.size

        # targeting: a member of the recruiter's segment; a skilled recruiter (probability = skill)
        # looks at a second candidate and keeps the better one by static score
        tr = rng.targeting
        # (gathers by ``take``: a third faster than fancy indexing on these sizes, same values)
        start = self._kind_start.take(kind)  # per-(recruiter, kind) tables: no recruiter index per InMail needed
        size = self._kind_size.take(kind)
        who = tr.random(n)
        who *= size
        who = start + who.astype(np.int64)
        look = (tr.random(n, dtype=np.float32) < self._kind_skill.take(kind)).nonzero()[0]
        second = start.take(look) + (tr.random(look.size) * size.take(look)).astype(np.int64)
        rows = m.gather_rows(who)  # one 16-byte row per InMail: score, fatigue, inv_log_miss, openness
        second_rows = m.gather_rows(second)
        better = (second_rows.view(np.float32)[0::4] > rows.view(np.float32).take(4 * look)).nonzero()[0]
        swap = look.take(better)
        who[swap] = second.take(better)
        rows[swap] = second_rows.take(better)
        hot = rows.view(np.float32).reshape(n, 4)

        # outcome: answer with p = expit(score + offset) * exp(-sensitivity * fatigue), written as
        # exp(-s F) / (1 + exp(-z)) in float32 (score is -inf for inactive members, so p = 0);
        # then the delay of each answer and whether it accepts
        resp = market.response
        z = self._offset.take(kind)
        z += hot[:, 0]
        np.negative(z, out=z)
        np.exp(z, out=z)
        z += np.float32(1.0)
        if fatigue:
            p = self.fatigue.current(hot[:, 1])
            p *= np.float32(-market.fatigue.sensitivity)
            np.exp(p, out=p)
            p /= z
        else:
            p = np.reciprocal(z, out=z)
        out = rng.outcomes
        ans_idx = (out.random(n, dtype=np.float32) < p).nonzero()[0]
        ans_hot = hot.take(ans_idx, axis=0)
        delay = response_delay(ans_hot[:, 2], out)
        observed = (delay <= resp.observation_days).nonzero()[0]
        resp_idx, resp_delay = ans_idx.take(observed), delay.take(observed)
        acc_idx = resp_idx[out.random(resp_idx.size, dtype=np.float32) < ans_hot[:, 3].take(observed)]
        resp_rec = kind.take(resp_idx) >> 1
        R = rec.count

        # refunds, by the rule in force on the send day
        rule = phase.refund
        if rule.kind == "on_silence":
            quick = resp_delay <= rule.window_days
            silent = allowed - np.bincount(resp_rec[quick], minlength=R)
            self.refund_cal[t + rule.window_days + rule.latency_days] += silent.astype(np.int32)
        elif rule.kind == "on_response":
            ok = resp_delay <= rule.window_days
            flat = (t + rule.latency_days) * R + (resp_delay[ok] * R + resp_rec[ok])
            np.add.at(self.refund_cal.reshape(-1), flat, np.int32(1))  # 1-D index: ufunc.at's fast path

        # threshold window, fatigue, member tallies
        self.book.record(t, allowed, resp_rec, resp_delay)
        if fatigue:
            fw = market.fatigue
            if fw.weight_bulk == fw.weight_personalized:
                self.fatigue.add(who, fw.weight_bulk)
            else:
                weights = self._kind_weight.take(kind)
                self.fatigue.add(who, weights, total=fw.weight_personalized * (n - n_bulk_total)
                                 + fw.weight_bulk * n_bulk_total)
        self.received.add(who)
        self.answered.add(who.take(resp_idx))

        # recruiter tallies and the day's series
        self._resp_count.add(resp_rec)
        self._acc_count.add(kind.take(acc_idx) >> 1)
        self.t_sent += allowed
        self.t_bulk += n_bulk
        self.t_stockout[cut] += 1
        d = self.daily
        sent = n
        d["sent"][t] = sent
        d["sent_bulk"][t] = n_bulk_total
        d["sent_personalized"][t] = sent - n_bulk_total
        d["responses"][t] = resp_idx.size
        d["accepted"][t] = acc_idx.size
        d["response_rate"][t] = ratio(resp_idx.size, sent)
        d["acceptance_rate"][t] = ratio(acc_idx.size, sent)
        d["credits_spent"][t] = sent
        d["stockout_recruiters"][t] = cut.size
        d["mean_member_fatigue"][t] = m.total_fatigue / m.count if fatigue else 0.0
        if R:
            d["mean_personalization"][t], d["mean_bulk_share"][t], d["mean_volume"][t] = self._means

    def credit_refunds(self, t: int) -> None:
        """Credit the refunds due at the end of day ``t`` to their seats' accounts."""
        due = self.refund_cal[t]
        self.refunded_today = due
        total = int(due.sum())
        if not total:
            return
        lg = self.ledger
        phase = self.phase_of_day[min(t, self.horizon - 1)]
        fallback = t + phase.accrual.expire_days if phase.accrual.kind == "expire" else NEVER
        if not lg.lots and fallback != NEVER:
            self._schedule_expiry(fallback)
        lg.refund(lg.to_accounts(due), t, fallback, total=total)
        if t < self.horizon:
            self.daily["credits_refunded"][t] += total

    # ------------------------------------------------------------------ run and summarize

    def execute(self) -> ReplicationResult:
        env = self.env
        self._record_means()  # here, not in __init__: tests and explain may edit the recruiters before the run
        self._adapt_terms = AdaptTerms.of(self.rec, self.market.sending.adaptation)
        for proc in (self._grants, self._switch, self._days):
            env.process(proc(env))
        with np.errstate(over="ignore"):  # exp(-z) may overflow to inf for hopeless InMails: p = 0, as meant
            env.run(until=self.n_days + 1)
        return self.result()

    def result(self) -> ReplicationResult:
        d = self.daily
        d["net_credit_burn"][:] = d["credits_spent"] - d["credits_refunded"]
        d["balance"][:] = np.nan  # filled below from the flows
        flows = np.cumsum(d["credits_granted"] - d["credits_spent"] + d["credits_refunded"] - d["credits_expired"])
        d["balance"][:] = flows
        lg, m = self.ledger, self.members
        self._resp_count.flush()
        self._acc_count.flush()
        t_refund = self.refund_cal.sum(axis=0, dtype=np.int64)  # every refund ever scheduled, by seat
        sent = int(self.t_sent.sum())
        responses = int(self.t_resp.sum())
        accepted = int(self.t_acc.sum())
        active = m.active_count
        received = self.received.flush()
        unanswered = received - self.answered.flush()
        received_active = int(received[m.active].sum())
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
            "inmails_per_active_member": ratio(received_active, active),
            # only active members answer, so their unanswered InMails are received minus responses
            "unanswered_per_active_member": ratio(received_active - responses, active),
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
            credits_spent=self.t_sent.copy(), credits_refunded=t_refund,
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
            member_received=received, member_unanswered=unanswered,
            member_histograms={"received": member_histogram(received, m.active),
                               "unanswered": member_histogram(unanswered, m.active)},
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
