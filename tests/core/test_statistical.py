"""Closed forms: with every feedback mechanism off, the simulated rates match exact formulas.

Setting: one segment, ``active_share`` members answer with a constant probability ``p``
(no heterogeneity, no personalization effect, no fatigue, no adaptation, no threshold,
credits that never bind).  A member checks InMail each day with probability
``q = 1 / max(c, 1)``, so the answer delay is ``d ~ Geometric(q) - 1`` on {0, 1, ...} and
``P(d <= N) = 1 - (1 - q) ** (N + 1)``.  Only answers with ``d <= observation_days`` count.

Each InMail is an independent Bernoulli trial (all members are identical), so a simulated
fraction over ``n`` InMails has standard error ``sqrt(pi (1 - pi) / n)``; the tests allow
``K_SE`` standard errors.  Sample size: 100 recruiters x 50 InMails/day x 20 days, about
n = 100,000 InMails per run (asserted), so the tolerance is about 0.006 at pi = 0.5.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from scipy.special import expit, logit

from simulator import RefundRule, ResponseModel, run_replication
from simulator.core.config import Dist
from simulator.core.engine import Simulation
from simulator.core.members import draw
from simulator.core.seeding import streams

from .helpers import constant_market, fixed, fixed_group, phase, policy, run_config

K_SE = 4.0
"""Tolerance in standard errors (two-sided false-alarm rate about 6e-5 per check)."""

MIN_N = 90_000
"""Smallest number of InMails a run must produce for the stated tolerance."""

HORIZON = 20
GROUPS = (fixed_group(count=100, volume=50.0, bulk_share=0.3),)


def p_within(n_days: int, check_interval: float) -> float:
    """P(d <= n_days) for d ~ Geometric(1 / max(c, 1)) - 1."""
    q = 1.0 / max(check_interval, 1.0)
    return 1.0 - (1.0 - q) ** (n_days + 1)


def assert_close(observed: float, expected: float, n: float, what: str) -> None:
    """|observed - expected| <= K_SE binomial standard errors of a fraction over n trials."""
    assert n >= MIN_N, f"{what}: only {n} InMails, the tolerance assumes >= {MIN_N}"
    se = math.sqrt(max(expected * (1.0 - expected), 1e-12) / n)
    assert abs(observed - expected) <= K_SE * se, (
        f"{what}: simulated {observed:.5f}, closed form {expected:.5f}, n={n:.0f}, "
        f"|diff|={abs(observed - expected):.5f} > {K_SE} SE = {K_SE * se:.5f}")


CASES = [
    # p, check interval c, observation_days, openness
    pytest.param(0.30, 5.0, 180, 0.40, id="p0.30-c5-obs180"),
    pytest.param(0.30, 5.0, 3, 0.40, id="p0.30-c5-obs3"),
    pytest.param(0.60, 10.0, 6, 0.25, id="p0.60-c10-obs6"),
    pytest.param(0.15, 1.0, 180, 0.90, id="p0.15-c1-same-day"),
    pytest.param(0.45, 0.5, 30, 0.50, id="p0.45-c0.5-clipped-to-daily"),
]


@pytest.mark.parametrize(("p", "c", "obs", "openness"), CASES)
def test_response_and_acceptance_rates(p: float, c: float, obs: int, openness: float) -> None:
    """response_rate = p P(d <= obs); acceptance_rate = p P(d <= obs) E[openness]."""
    market = constant_market(p, check_interval=c, openness=openness, members=5000, groups=GROUPS,
                             observation_days=obs)
    res = run_replication(market, policy(phase(RefundRule("never"))), run_config(horizon=HORIZON), seed=11)
    m = res.metrics
    assert m["stockout_recruiter_days"] == 0
    n = m["sent"]
    expected_rr = p * p_within(obs, c)
    assert_close(m["response_rate"], expected_rr, n, "response rate")
    assert_close(m["acceptance_rate"], expected_rr * openness, n, "acceptance rate")
    # the count itself, not only the ratio: responses ~ Binomial(n, expected_rr), so it lies within
    # K_SE standard deviations sqrt(n pi (1 - pi)) of n pi (n >= MIN_N InMails, asserted above)
    sd = math.sqrt(n * expected_rr * (1.0 - expected_rr))
    assert abs(m["responses"] - n * expected_rr) <= K_SE * sd, (m["responses"], n * expected_rr, sd)
    # ... and the per-recruiter tally agrees with the daily series, counted separately by the engine
    assert m["responses"] == res.daily["responses"].sum()
    assert m["accepted"] == res.daily["accepted"].sum()


@pytest.mark.parametrize(("window", "latency", "c", "obs"), [
    pytest.param(7, 0, 5.0, 180, id="old-7d"),
    pytest.param(7, 2, 5.0, 180, id="old-7d-latency2"),
    pytest.param(7, 0, 5.0, 4, id="old-7d-obs-caps-at-4"),
    pytest.param(0, 0, 3.0, 180, id="same-day-only"),
    pytest.param(3, 0, 12.0, 180, id="slow-readers"),
])
def test_refund_on_silence_fraction(window: int, latency: int, c: float, obs: int) -> None:
    """Refunded / spent = P(no counted answer within the window) = 1 - p P(d <= min(window, obs))."""
    p = 0.35
    market = constant_market(p, check_interval=c, members=5000, groups=GROUPS, observation_days=obs)
    pol = policy(phase(RefundRule("on_silence", window, latency)))
    res = run_replication(market, pol, run_config(horizon=HORIZON), seed=12)
    m = res.metrics
    assert m["stockout_recruiter_days"] == 0
    expected = 1.0 - p * p_within(min(window, obs), c)
    assert_close(m["credits_refunded"] / m["credits_spent"], expected, m["credits_spent"], "refund-on-silence share")


@pytest.mark.parametrize(("window", "latency", "c", "obs"), [
    pytest.param(90, 1, 5.0, 180, id="new-90d"),
    pytest.param(90, 0, 40.0, 180, id="new-90d-very-slow-readers"),
    pytest.param(2, 0, 5.0, 180, id="short-window"),
    pytest.param(0, 3, 4.0, 180, id="same-day-latency3"),
    pytest.param(0, 0, 1.0, 180, id="daily-readers-answer-same-day"),
    pytest.param(0, 0, 0.3, 180, id="interval-below-1-clipped-to-daily"),
    pytest.param(90, 1, 30.0, 20, id="obs-caps-at-20"),
])
def test_refund_on_response_fraction(window: int, latency: int, c: float, obs: int) -> None:
    """Refunded / spent = P(answer within the window) = p P(d <= min(window, obs))."""
    p = 0.35
    market = constant_market(p, check_interval=c, members=5000, groups=GROUPS, observation_days=obs)
    pol = policy(phase(RefundRule("on_response", window, latency)))
    res = run_replication(market, pol, run_config(horizon=HORIZON), seed=13)
    m = res.metrics
    assert m["stockout_recruiter_days"] == 0
    expected = p * p_within(min(window, obs), c)
    assert_close(m["credits_refunded"] / m["credits_spent"], expected, m["credits_spent"], "refund-on-response share")


def test_inactive_members_never_answer() -> None:
    """With a share of inactive members the answer rate is p x (realized active share), targets uniform."""
    p, c = 0.5, 2.0
    market = constant_market(p, check_interval=c, members=5000, groups=GROUPS, active_share=0.4)
    res = run_replication(market, policy(), run_config(horizon=HORIZON), seed=14)
    active = res.extra["active_members"] / res.extra["members"]
    assert 0.35 < active < 0.45
    assert_close(res.metrics["response_rate"], p * active * p_within(180, c), res.metrics["sent"], "response rate")


def test_zero_active_share_gives_no_response() -> None:
    """Nobody active: no responses at all, every credit refunded on silence."""
    market = constant_market(0.9, check_interval=1.0, members=500, groups=(fixed_group(count=5),), active_share=0.0)
    res = run_replication(market, policy(phase(RefundRule("on_silence", 7, 0))), run_config(horizon=10), seed=15)
    assert res.metrics["sent"] > 0
    assert res.metrics["responses"] == 0
    assert res.metrics["credits_refunded"] == res.metrics["credits_spent"]


def test_observation_days_default_is_180() -> None:
    """The closed forms above rely on the documented default observation horizon."""
    assert ResponseModel().observation_days == 180


def test_personalization_effect_closed_form() -> None:
    """logit p = logit(base) + gamma (pi - ref), with pi scaled by the bulk factor for bulk InMails."""
    base, gamma, pers, beta, ref = 0.25, 1.6, 0.9, 0.3, 0.5
    groups = (fixed_group("one", 100, volume=50.0, bulk_share=0.0, personalization=pers),
              fixed_group("bulk", 100, volume=50.0, bulk_share=1.0, personalization=pers))
    market = constant_market(base, check_interval=1.0, members=5000, groups=groups)
    market = replace(market, response=replace(market.response, personalization_effect=gamma,
                                              bulk_personalization_factor=beta, reference_personalization=ref))
    res = run_replication(market, policy(), run_config(horizon=HORIZON), seed=16)
    by = res.breakdown("group")
    assert by.loc["one", "sent_bulk"] == 0 and by.loc["bulk", "sent_bulk"] == by.loc["bulk", "sent"]
    for name, eff in (("one", pers), ("bulk", beta * pers)):
        expected = float(expit(logit(base) + gamma * (eff - ref)))
        assert_close(by.loc[name, "response_rate"], expected, by.loc[name, "sent"], f"{name} response rate")


@pytest.mark.parametrize("skill", [0.0, 0.5, 1.0])
def test_targeting_closed_form(skill: float) -> None:
    """Heterogeneous members (sd 1): uniform targeting gives the population mean of p_m; a recruiter
    who looks at a second candidate with probability s picks the better of two, so member of rank
    k (1 = lowest of N) is chosen with probability (1 - s) / N + s (2k - 1) / N^2."""
    group = replace(fixed_group("r", 100, volume=50.0), targeting_skill=fixed(skill))
    market = constant_market(0.2, check_interval=1.0, members=4000, groups=(group,))
    market = replace(market, response=replace(market.response, member_heterogeneity_sd=1.0))
    sim = Simulation(market, policy(), run_config(horizon=HORIZON), streams(17))
    p_sorted = np.sort(expit(sim.members.logit))
    n = p_sorted.size
    k = np.arange(1, n + 1)
    expected = float(np.sum(p_sorted * ((1 - skill) / n + skill * (2 * k - 1) / n**2)))
    res = sim.execute()
    assert_close(res.metrics["response_rate"], expected, res.metrics["sent"], f"response rate at skill {skill}")


@pytest.mark.parametrize("dist", [
    Dist("fixed", 3.0, 0.0), Dist("uniform", 2.0, 7.0), Dist("beta", 0.3, 5.0), Dist("lognormal", 4.0, 0.8),
])
def test_dist_mean_formula_and_draws(dist: Dist) -> None:
    """Dist.mean is the exact mean, and members.draw samples agree with it (n = 200,000, 5 SE)."""
    exact = {"fixed": 3.0, "uniform": 4.5, "beta": 0.3, "lognormal": 4.0 * math.exp(0.32)}[dist.kind]
    assert dist.mean == pytest.approx(exact, rel=1e-12)
    x = draw(dist, 200_000, np.random.default_rng(5))
    assert x.dtype == np.float64
    assert x.min() >= dist.low and x.max() <= dist.high
    se = x.std() / math.sqrt(x.size)
    assert abs(x.mean() - dist.mean) <= 5 * se + 1e-12


def test_members_who_never_read_never_answer() -> None:
    """A check interval of 1e20 days: P(d <= 180) is about 2e-18, so no InMail may be answered."""
    market = constant_market(0.9, check_interval=1e20, members=100, groups=(fixed_group("a", 2, volume=50.0),))
    res = run_replication(market, policy(phase(RefundRule("on_response", 90, 0))), run_config(horizon=5), seed=1)
    assert res.metrics["sent"] > 0
    assert res.metrics["responses"] == 0
    assert res.metrics["credits_refunded"] == 0
