"""A deliberately naive, per-message simpy implementation of a simplified InMail model.

This is the reference baseline of the benchmark: its only jobs are to be the denominator of the
speed ratio (vectorized engine / naive) and a statistical cross-check of the engine.  Every
InMail is its own simpy process; nothing is vectorized and nothing is clever.

The simplified model (one segment; no member heterogeneity, personalization effect, fatigue,
adaptation, threshold or pooling; credits never binding):

* members: each is active with probability ``active_share``; an active member answers an InMail
  with probability ``base_response``, an inactive one never does;
* a member who answers does so after ``Geometric(q) - 1`` days, ``q = 1 / max(check_interval, 1)``;
  a response later than ``observation_days`` is never seen;
* recruiters: each sends ``Poisson(volume * day_factor)`` InMails a day (``day_factor`` =
  ``weekend_factor`` on Saturdays and Sundays) to members drawn uniformly at random;
* refunds: ``on_silence`` credits an InMail back when no response came within ``window_days``
  days; ``on_response`` credits it back when a response came within ``window_days`` days.

:func:`compare` runs this reference and the vectorized engine (configured through the public
config objects so that it is the same model) and returns both estimates with standard errors.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import statistics
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any, Literal

import simpy

from simulator import (
    Accrual,
    Adaptation,
    Dist,
    Fatigue,
    Market,
    MemberPopulation,
    Phase,
    Policy,
    RecruiterGroup,
    RefundRule,
    ResponseModel,
    RunConfig,
    Segment,
    SendingModel,
    Threshold,
    run_replication,
)

Impl = Literal["naive", "engine"]
Metric = Literal["response_rate", "refund_fraction"]

HUGE_ALLOTMENT = 10**9
"""Monthly credits per seat in the engine run: far more than anyone can send, so credits never bind."""


@dataclass(frozen=True, slots=True)
class SimpleModel:
    """The simplified model both implementations simulate."""

    recruiters: int = 100
    members: int = 10_000
    horizon_days: int = 365
    daily_volume: Dist = field(default_factory=lambda: Dist("lognormal", 6.0, 0.6))
    active_share: float = 0.75
    base_response: float = 0.30
    check_interval_days: float = 4.0
    weekend_factor: float = 0.15
    observation_days: int = 180
    start_date: dt.date = dt.date(2015, 2, 1)

    @property
    def check_prob(self) -> float:
        """Chance that a member reads their InMail on a given day."""
        return 1.0 / max(self.check_interval_days, 1.0)


@dataclass(frozen=True, slots=True)
class Tally:
    """Counts of one replication of one implementation."""

    sent: int
    responses: int
    refunds: int
    wall_seconds: float

    @property
    def response_rate(self) -> float:
        return self.responses / self.sent if self.sent else 0.0

    @property
    def refund_fraction(self) -> float:
        return self.refunds / self.sent if self.sent else 0.0


@dataclass(frozen=True, slots=True)
class Estimate:
    """Mean over replications and its standard error (sd / sqrt(k))."""

    mean: float
    se: float

    @classmethod
    def of(cls, values: list[float]) -> Estimate:
        k = len(values)
        sd = statistics.stdev(values) if k > 1 else float("nan")
        return cls(statistics.fmean(values), sd / math.sqrt(k))


@dataclass(frozen=True, slots=True)
class Comparison:
    """Naive reference vs vectorized engine on the same simplified model and refund rule."""

    rule: RefundRule
    replications: int
    naive: list[Tally]
    engine: list[Tally]

    def estimate(self, impl: Impl, metric: Metric) -> Estimate:
        return Estimate.of([getattr(t, metric) for t in getattr(self, impl)])

    def z(self, metric: Metric) -> float:
        """(engine - naive) / combined standard error."""
        a, b = self.estimate("engine", metric), self.estimate("naive", metric)
        return (a.mean - b.mean) / math.hypot(a.se, b.se)

    def inmails(self, impl: Impl) -> int:
        return sum(t.sent for t in getattr(self, impl))


def expected(model: SimpleModel, rule: RefundRule) -> dict[str, float]:
    """Closed-form response rate and refund fraction of the simplified model."""
    answer = model.active_share * model.base_response
    q = model.check_prob

    def within(days: int) -> float:  # P(delay <= days) for delay ~ Geometric(q) - 1
        return 1.0 - (1.0 - q) ** (days + 1)

    refund = {"on_silence": 1.0 - answer * within(min(rule.window_days, model.observation_days)),
              "on_response": answer * within(min(rule.window_days, model.observation_days)),
              "never": 0.0}[rule.kind]
    return {"response_rate": answer * within(model.observation_days), "refund_fraction": refund}


# --------------------------------------------------------------------------- naive per-message simpy


class NaiveSimulation:
    """One replication, one simpy process per recruiter, per InMail and per member's reading."""

    def __init__(self, model: SimpleModel, rule: RefundRule, seed: int) -> None:
        self.model, self.rule = model, rule
        self.rng = random.Random(seed)
        self.active = [self.rng.random() < model.active_share for _ in range(model.members)]
        self.volume = [self._draw(model.daily_volume) for _ in range(model.recruiters)]
        self.sent = 0
        self.responses = 0
        self.refunds = 0

    def _draw(self, dist: Dist) -> float:
        if dist.kind == "fixed":
            return dist.a
        if dist.kind == "lognormal":
            return dist.a * math.exp(dist.b * self.rng.gauss(0.0, 1.0))
        if dist.kind == "uniform":
            return self.rng.uniform(dist.a, dist.b)
        return self.rng.betavariate(dist.a * dist.b, (1.0 - dist.a) * dist.b)

    def _poisson(self, lam: float) -> int:
        """Knuth's multiplication method (lam is small here); normal approximation past 500."""
        if lam <= 0.0:
            return 0
        if lam > 500.0:
            return max(0, round(self.rng.gauss(lam, math.sqrt(lam))))
        limit, k, prod = math.exp(-lam), 0, self.rng.random()
        while prod > limit:
            k += 1
            prod *= self.rng.random()
        return k

    def _delay(self) -> int:
        """Days until the member reads the InMail: Geometric(q) - 1 by inversion."""
        q = self.model.check_prob
        if q >= 1.0:
            return 0
        return int(math.log(1.0 - self.rng.random()) / math.log(1.0 - q))

    def recruiter(self, env: simpy.Environment, volume: float) -> Generator[Any, Any, None]:
        m = self.model
        for day in range(m.horizon_days):
            yield env.timeout(day + 0.5 - env.now)
            weekend = (m.start_date + dt.timedelta(days=day)).weekday() >= 5
            for _ in range(self._poisson(volume * (m.weekend_factor if weekend else 1.0))):
                self.sent += 1
                env.process(self.inmail(env))

    def member_reads(self, env: simpy.Environment, responded: simpy.Event) -> Generator[Any, Any, None]:
        """A member who will answer: reads the InMail after their delay and responds (if still observed)."""
        delay = self._delay()
        if delay > self.model.observation_days:
            return
        yield env.timeout(delay)
        self.responses += 1
        responded.succeed()

    def inmail(self, env: simpy.Environment) -> Generator[Any, Any, None]:
        """One InMail: wait for a response or the end of the refund window, then settle the credit."""
        member = self.rng.randrange(self.model.members)
        responded = env.event()
        if self.active[member] and self.rng.random() < self.model.base_response:
            env.process(self.member_reads(env, responded))
        if self.rule.kind == "never":
            return
        # a response on day send + d is "within W days" when d <= W; the window closes a quarter day later
        window_closes = env.timeout(self.rule.window_days + 0.25)
        outcome = yield responded | window_closes
        answered_in_time = responded in outcome
        if (self.rule.kind == "on_silence") != answered_in_time:
            yield env.timeout(self.rule.latency_days)
            self.refunds += 1

    def run(self) -> Tally:
        t0 = time.perf_counter()
        env = simpy.Environment()
        for v in self.volume:
            env.process(self.recruiter(env, v))
        env.run()
        return Tally(self.sent, self.responses, self.refunds, time.perf_counter() - t0)


def run_naive(model: SimpleModel, rule: RefundRule, seed: int) -> Tally:
    """One replication of the naive reference."""
    return NaiveSimulation(model, rule, seed).run()


# --------------------------------------------------------------------------- the engine, same model


def simple_market(model: SimpleModel) -> Market:
    """The simplified model as an engine :class:`Market`."""
    segment = Segment("all", share=1.0, base_response=model.base_response, active_share=model.active_share,
                      check_interval_days=Dist("fixed", model.check_interval_days), openness=Dist("fixed", 0.5))
    group = RecruiterGroup("all", model.recruiters, seat_type="recruiter", behaviour="fixed",
                           personalization=Dist("fixed", 0.5), targeting_skill=Dist("fixed", 0.0),
                           daily_volume=model.daily_volume, bulk_share=Dist("fixed", 0.0),
                           time_budget_minutes=Dist("fixed", 1e12), team_size=1)
    return Market(
        members=MemberPopulation(count=model.members, segments=(segment,)),
        recruiters=(group,),
        response=ResponseModel(personalization_effect=0.0, member_heterogeneity_sd=0.0,
                               observation_days=model.observation_days),
        fatigue=Fatigue(enabled=False),
        sending=SendingModel(weekend_factor=model.weekend_factor, adaptation=Adaptation(enabled=False)),
    )


def simple_policy(rule: RefundRule) -> Policy:
    """A policy with the given refund rule, no threshold, no pooling and credits that never bind."""
    phase = Phase(refund=rule, allotments=(("recruiter", HUGE_ALLOTMENT),), accrual=Accrual("unlimited"),
                  pooling=False)
    return Policy(name=f"simple_{rule.kind}_{rule.window_days}", phase=phase, threshold=Threshold(enabled=False))


def run_engine(model: SimpleModel, rule: RefundRule, seed: int) -> Tally:
    """One replication of the vectorized engine on the simplified model."""
    market, policy = simple_market(model), simple_policy(rule)
    run = RunConfig(start_date=model.start_date, horizon_days=model.horizon_days)
    t0 = time.perf_counter()
    res = run_replication(market, policy, run, seed=seed)
    wall = time.perf_counter() - t0
    m = res.metrics
    if m["stockout_recruiter_days"] > 0:
        raise RuntimeError("credits bound in the engine run; the simplified model needs them never to")
    return Tally(int(m["sent"]), int(m["responses"]), int(m["credits_refunded"]), wall)


def compare(model: SimpleModel, rule: RefundRule, replications: int = 8, seed: int = 2015) -> Comparison:
    """Run ``replications`` independent replications of both implementations.

    Replication ``i`` uses seed ``seed + i`` in each implementation (the streams are unrelated, so
    the two samples are independent).  Standard errors are between-replication (sd / sqrt(k)), so
    they include the member and recruiter draws, not just binomial noise.
    """
    naive = [run_naive(model, rule, seed + i) for i in range(replications)]
    engine = [run_engine(model, rule, seed + i) for i in range(replications)]
    return Comparison(rule, replications, naive, engine)


def format_comparison(c: Comparison, model: SimpleModel) -> str:
    """A short human-readable table of one comparison."""
    exp = expected(model, c.rule)
    lines = [f"{c.rule.kind} {c.rule.window_days}d: {c.replications} replications each, "
             f"{c.inmails('naive'):,} naive / {c.inmails('engine'):,} engine InMails"]
    for metric in ("response_rate", "refund_fraction"):
        n, e = c.estimate("naive", metric), c.estimate("engine", metric)
        lines.append(f"  {metric:<16} naive {n.mean:.5f} +- {n.se:.5f}   engine {e.mean:.5f} +- {e.se:.5f}   "
                     f"z = {c.z(metric):+.2f}   closed form {exp[metric]:.5f}")
    return "\n".join(lines)


if __name__ == "__main__":
    demo = SimpleModel(recruiters=30, members=3_000, horizon_days=60)
    for r in (RefundRule("on_silence", 7, 0), RefundRule("on_response", 90, 1)):
        print(format_comparison(compare(demo, r, replications=6), demo))
