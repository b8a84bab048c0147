"""Property-based invariants over random small markets and policies (hypothesis).

Every replication must conserve credits, never overdraw an account, keep its counts and rates
consistent, never let bulk InMail out during an Improvement Period and never refund an answer
that came after the refund window.  The last two are checked day by day by a
:class:`~simulator.core.engine.Simulation` subclass that watches the state around each daily step.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator import (
    METRIC_NAMES,
    SEAT_TYPES,
    Accrual,
    Adaptation,
    Dist,
    Fatigue,
    Grant,
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
)
from simulator.core.engine import Simulation
from simulator.core.metrics import BREAKDOWN_KEYS
from simulator.core.seeding import streams

RATE_METRICS = ("response_rate", "acceptance_rate")
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --------------------------------------------------------------------------- strategies

probs = st.floats(0.0, 1.0)


@st.composite
def unit_dists(draw: st.DrawFn) -> Dist:
    """A distribution inside [0, 1]."""
    kind = draw(st.sampled_from(["fixed", "uniform", "beta"]))
    if kind == "fixed":
        return Dist("fixed", draw(probs), 0.0)
    if kind == "uniform":
        a, b = sorted((draw(probs), draw(probs)))
        return Dist("uniform", a, b)
    return Dist("beta", draw(st.floats(0.02, 0.98)), draw(st.floats(0.5, 20.0)))


@st.composite
def positive_dists(draw: st.DrawFn, low: float, high: float) -> Dist:
    """A non-negative distribution with typical values in [low, high]."""
    kind = draw(st.sampled_from(["fixed", "uniform", "lognormal"]))
    if kind == "fixed":
        return Dist("fixed", draw(st.floats(low, high)), 0.0)
    if kind == "uniform":
        a, b = sorted((draw(st.floats(low, high)), draw(st.floats(low, high))))
        return Dist("uniform", a, b)
    return Dist("lognormal", draw(st.floats(max(low, 0.1), high)), draw(st.floats(0.0, 1.5)))


@st.composite
def markets(draw: st.DrawFn) -> Market:
    """Random small markets: 1..300 members in 1..3 segments, up to 4 recruiter groups (some empty)."""
    n_seg = draw(st.integers(1, 3))
    segments = tuple(
        Segment(
            f"s{k}", share=draw(st.floats(0.05, 1.0)), base_response=draw(st.floats(0.01, 0.99)),
            active_share=draw(probs), check_interval_days=draw(positive_dists(0.0, 20.0)), openness=draw(unit_dists()),
        )
        for k in range(n_seg)
    )
    groups = tuple(
        RecruiterGroup(
            f"g{i}", draw(st.integers(0, 6)), seat_type=draw(st.sampled_from(SEAT_TYPES)),
            behaviour=draw(st.sampled_from(["fixed", "adaptive"])), personalization=draw(unit_dists()),
            targeting_skill=draw(unit_dists()), daily_volume=draw(positive_dists(0.0, 80.0)),
            bulk_share=draw(unit_dists()), time_budget_minutes=draw(positive_dists(20.0, 600.0)),
            team_size=draw(st.integers(1, 4)),
            segment_weights=draw(st.none() | st.lists(st.integers(0, 3), min_size=n_seg, max_size=n_seg)
                                 .map(lambda w: tuple(float(v) for v in w) if sum(w) else None)),
        )
        for i in range(draw(st.integers(1, 4)))
    )
    return Market(
        members=MemberPopulation(draw(st.integers(1, 300)), segments),
        recruiters=groups,
        response=ResponseModel(
            personalization_effect=draw(st.floats(0.0, 3.0)), bulk_personalization_factor=draw(probs),
            member_heterogeneity_sd=draw(st.floats(0.0, 1.5)), observation_days=draw(st.integers(1, 120)),
        ),
        fatigue=Fatigue(enabled=draw(st.booleans()), sensitivity=draw(st.floats(0.0, 0.5)),
                        half_life_days=draw(st.floats(1.0, 60.0))),
        sending=SendingModel(
            weekend_factor=draw(st.floats(0.0, 1.0)),
            adaptation=Adaptation(enabled=draw(st.booleans()), speed=draw(probs)),
        ),
    )


@st.composite
def phases(draw: st.DrawFn) -> Phase:
    """Random refund rule, allotments (often scarce), accrual and pooling."""
    refund = RefundRule(draw(st.sampled_from(["on_silence", "on_response", "never"])),
                        window_days=draw(st.integers(0, 30)), latency_days=draw(st.integers(0, 3)))
    accrual = draw(st.sampled_from([
        Accrual("unlimited"),
        Accrual("cap", cap_months=draw(st.floats(0.0, 4.0))),
        Accrual("expire", expire_days=draw(st.integers(1, 45))),
    ]))
    scale = draw(st.sampled_from([5, 50, 300, 5000]))
    allot = tuple((s, draw(st.integers(0, scale))) for s in SEAT_TYPES)
    return Phase(refund=refund, allotments=allot, accrual=accrual, pooling=draw(st.booleans()))


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Market, Policy, RunConfig]:
    """A market, a policy (threshold with small min_sends, maybe a switch and one-off grants) and a run."""
    start = dt.date(2014, 1, 1) + dt.timedelta(days=draw(st.integers(0, 730)))
    horizon = draw(st.integers(1, 60))
    threshold = Threshold(
        enabled=draw(st.booleans()), min_sends=draw(st.integers(1, 30)), window_days=draw(st.integers(1, 7)),
        min_rate=draw(st.sampled_from([0.13, 0.5, 0.9, 1.0]) | probs), warning_days=draw(st.integers(0, 10)),
        ack_delay_days=draw(st.integers(0, 3)), improvement_days=draw(st.integers(1, 10)),
        maturity_days=draw(st.integers(0, 5)),
        review_every_days=draw(st.integers(1, 3)),
        seat_types=tuple(draw(st.sets(st.sampled_from(SEAT_TYPES), min_size=1))),
    )
    grants = tuple(
        Grant(start + dt.timedelta(days=draw(st.integers(-5, 70))), draw(st.integers(0, 300)),
              seat_types=tuple(draw(st.sets(st.sampled_from(SEAT_TYPES), max_size=3))), name=f"g{i}")
        for i in range(draw(st.integers(0, 2)))
    )
    switch = draw(st.none() | st.integers(1, max(horizon - 1, 1)) | st.integers(-3, 70))
    pol = Policy(
        name="random", phase=draw(phases()), threshold=threshold, grants=grants,
        switch_date=None if switch is None else start + dt.timedelta(days=switch),
        before=None if switch is None else draw(phases()),
    )
    return draw(markets()), pol, RunConfig(start_date=start, horizon_days=horizon)


# --------------------------------------------------------------------------- observer


@dataclass
class Watch:
    """What the observer saw, day by day."""

    bulk_in_ip: list[str] = field(default_factory=list)
    bad_refund_rows: list[str] = field(default_factory=list)
    negative_balance: list[str] = field(default_factory=list)
    ledger_balance: list[int] = field(default_factory=list)
    ip_seat_days: int = 0


class Observed(Simulation):
    """A Simulation that checks per-day rules around each daily step."""

    watch: Watch

    def send(self, t: int) -> None:
        """The daily step, checking bulk against the Improvement Periods and the refunds it books."""
        w = self.watch
        in_ip = self.book.in_improvement(t).copy()
        bulk_before = self.seat_bulk.copy()
        cal_before = self.refund_cal.copy()
        super().send(t)
        w.ip_seat_days += int(in_ip.sum())
        new_bulk = self.seat_bulk - bulk_before
        if (new_bulk[in_ip] > 0).any():
            w.bulk_in_ip.append(f"day {t}: bulk {new_bulk[in_ip].tolist()} from seats in an Improvement Period")
        delta = self.refund_cal.astype(np.int64) - cal_before
        rule = self.policy.phase_on(self.date(t)).refund
        rows = np.flatnonzero(delta.any(axis=1))
        sent, resp = int(self.daily["sent"][t]), int(self.daily["responses"][t])
        n_ref = int(delta.sum())
        if (delta < 0).any():
            w.bad_refund_rows.append(f"day {t}: refund calendar decreased")
        if rule.kind == "never" and n_ref:
            w.bad_refund_rows.append(f"day {t}: {n_ref} refunds under 'never'")
        elif rule.kind == "on_silence":
            if rows.size and rows.tolist() != [t + rule.window_days + rule.latency_days]:
                w.bad_refund_rows.append(f"day {t}: silence refunds due on days {rows.tolist()} ({rule})")
            if not sent - resp <= n_ref <= sent:
                w.bad_refund_rows.append(f"day {t}: {n_ref} silence refunds for {sent} sent, {resp} answered")
        elif rule.kind == "on_response":
            lo, hi = t + rule.latency_days, t + rule.window_days + rule.latency_days
            if rows.size and (rows.min() < lo or rows.max() > hi):
                w.bad_refund_rows.append(f"day {t}: response refunds due on days {rows.tolist()}, "
                                         f"allowed {lo}..{hi} ({rule})")
            if n_ref > resp:
                w.bad_refund_rows.append(f"day {t}: {n_ref} response refunds for {resp} responses")

    def credit_refunds(self, t: int) -> None:
        """Crediting refunds (the last ledger change of the day): record balances."""
        super().credit_refunds(t)
        bal = self.ledger.balance()
        if bal.size and bal.min() < 0:
            self.watch.negative_balance.append(f"day {t}: balances {bal.tolist()}")
        if not np.array_equal(bal, self.ledger.lots_balance()):  # the running balance is the sum of the lots
            self.watch.negative_balance.append(f"day {t}: running balance {bal.tolist()} is not the lots' sum")
        if t < self.horizon:
            self.watch.ledger_balance.append(self.ledger.total_balance())


def observe(market: Market, pol: Policy, run: RunConfig, seed: int) -> tuple[Observed, Watch]:
    """An observed Simulation (not yet run) and its watch list."""
    sim = Observed(market, pol, run, streams(seed))
    sim.watch = Watch()
    return sim, sim.watch


# --------------------------------------------------------------------------- the property


@SETTINGS
@given(case=scenarios(), seed=st.integers(0, 2**32 - 1))
def test_replication_invariants(case: tuple[Market, Policy, RunConfig], seed: int) -> None:
    """Conservation, non-negative balances, consistent counts and rates, no bulk in an IP, no late refund."""
    market, pol, run = case
    sim, watch = observe(market, pol, run, seed)
    res = sim.execute()
    m, x = res.metrics, res.extra

    # every metric present and finite; every rate a probability
    assert set(m) == set(METRIC_NAMES)
    bad = {k: v for k, v in m.items() if not math.isfinite(v)}
    assert not bad, f"non-finite metrics {bad}"
    for k in RATE_METRICS:
        assert 0.0 <= m[k] <= 1.0, (k, m[k])
    for k, v in x.items():
        assert math.isfinite(v), (k, v)

    # credits conserved and never negative
    out = m["credits_spent"] - m["credits_refunded"] + m["credits_expired"] + x["final_balance"]
    assert m["credits_granted"] == out, "credits not conserved"
    assert x["credits_conserved"] == 1.0
    assert x["final_balance"] >= 0
    assert not watch.negative_balance, watch.negative_balance[:3]
    bal = res.daily["balance"]
    assert (bal >= 0).all(), f"daily balance went negative: {bal.min()}"
    np.testing.assert_array_equal(bal, np.array(watch.ledger_balance, dtype=np.float64),
                                  err_msg="daily balance series differs from the ledger")
    assert m["credits_spent"] == m["sent"]  # one credit per InMail
    assert 0 <= m["credits_refunded"] <= m["credits_spent"]
    assert m["net_credit_burn"] == m["credits_spent"] - m["credits_refunded"]
    assert m["credits_expired"] >= 0
    # credits lost: what sending burned plus what expired, i.e. every granted credit no longer held
    assert m["credits_lost"] == m["credits_spent"] - m["credits_refunded"] + m["credits_expired"]
    assert m["credits_lost"] == m["net_credit_burn"] + m["credits_expired"]
    assert m["credits_lost"] == m["credits_granted"] - x["final_balance"]
    assert m["credits_lost"] >= m["net_credit_burn"]
    if all(p.accrual.kind != "expire" and p.accrual.kind != "cap" for p in pol.phases):
        assert m["credits_lost"] == m["net_credit_burn"], "credits expired under a policy where none can"

    # counts
    assert m["sent_bulk"] + m["sent_personalized"] == m["sent"]
    assert 0 <= m["accepted"] <= m["responses"] <= m["sent"]
    assert m["unanswered"] == m["sent"] - m["responses"]
    assert m["pending"] == m["unanswered"], "the deprecated name must carry the same values"
    assert m["declined"] == m["responses"] - m["accepted"]
    assert m["accepted"] + m["declined"] + m["unanswered"] == m["sent"]  # POLICY_FACTS section 4
    if m["sent"]:
        assert m["response_rate"] == m["responses"] / m["sent"]

    # per-recruiter tallies add up, and each InMail is refunded at most once
    t = res.recruiters
    assert t.sent.sum() == m["sent"] and t.responses.sum() == m["responses"] and t.accepted.sum() == m["accepted"]
    assert t.credits_refunded.sum() == m["credits_refunded"]
    assert (t.sent_bulk <= t.sent).all() and (t.accepted <= t.responses).all() and (t.responses <= t.sent).all()
    assert ((t.credits_refunded >= 0) & (t.credits_refunded <= t.credits_spent)).all()
    assert (t.warnings <= 1).all(), "the warning is one-time"
    reviewed = np.isin(t.seat_type, pol.threshold.seat_types)
    assert (t.warnings[~reviewed] == 0).all() and (t.improvement_periods[~reviewed] == 0).all()
    if not pol.threshold.enabled:
        assert m["warnings"] == 0 and m["improvement_periods"] == 0

    # daily series: complete, finite, rates in [0, 1], sums match the totals that happen inside the horizon
    d = res.daily
    for k, v in d.items():
        assert v.shape == (run.horizon_days,), k
        assert np.isfinite(v).all(), k
    for k in RATE_METRICS:
        assert ((d[k] >= 0) & (d[k] <= 1)).all(), k
    assert d["sent"].sum() == m["sent"] and d["responses"].sum() == m["responses"]
    assert d["credits_spent"].sum() == m["credits_spent"]
    assert (d["sent_bulk"] + d["sent_personalized"] == d["sent"]).all()

    # breakdowns: rates in [0, 1], no NaN
    for by in BREAKDOWN_KEYS:
        frame = res.breakdown(by)
        assert not frame.isna().to_numpy().any(), by
        assert frame["response_rate"].between(0, 1).all() and frame["acceptance_rate"].between(0, 1).all()
        assert frame["sent"].sum() == m["sent"]

    # member tallies agree with the InMail counts
    recv, unans = res.member_received, res.member_unanswered
    assert recv is not None and unans is not None
    assert recv.sum() == m["sent"] and unans.sum() == m["unanswered"]
    assert (unans <= recv).all()
    active = sim.members.active
    assert x["active_members"] == active.sum() and x["members"] == active.size == market.members.count
    assert m["inmails_per_active_member"] == (recv[active].sum() / active.sum() if active.any() else 0.0)
    assert m["unanswered_per_active_member"] == (unans[active].sum() / active.sum() if active.any() else 0.0)
    assert (unans[~active] == recv[~active]).all(), "an inactive member answered"

    # the two day-by-day rules
    assert not watch.bulk_in_ip, watch.bulk_in_ip[:3]
    assert not watch.bad_refund_rows, watch.bad_refund_rows[:3]


def test_observer_sees_improvement_periods() -> None:
    """The bulk-during-IP check is not vacuous: a hand-built case has IP seat-days and bulk before them."""
    seg = Segment("all", base_response=0.5, active_share=0.0)
    market = Market(
        members=MemberPopulation(50, (seg,)),
        recruiters=(RecruiterGroup("spam", 3, behaviour="fixed", daily_volume=Dist("fixed", 40.0),
                                   bulk_share=Dist("fixed", 0.5), time_budget_minutes=Dist("fixed", 1e6)),),
        fatigue=Fatigue(enabled=False), sending=SendingModel(weekend_factor=1.0),
    )
    pol = Policy("p", Phase(allotments=(("recruiter", 10**6),)),
                 threshold=Threshold(min_sends=20, window_days=3, warning_days=2, improvement_days=3))
    sim, watch = observe(market, pol, RunConfig(horizon_days=20), seed=1)
    res = sim.execute()
    assert watch.ip_seat_days > 0
    assert res.metrics["sent_bulk"] > 0
    assert not watch.bulk_in_ip
