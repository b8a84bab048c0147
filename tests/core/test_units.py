"""Exact unit tests of small helpers and of the presets against POLICY_FACTS.md."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator import PRESETS, SEAT_TYPES, Accrual, Dist, Phase, Policy, RefundRule, Threshold, preset, run_replication
from simulator.core.config import POOLABLE_SEATS
from simulator.core.ledger import Ledger, accounts_for, allocate, allocate_with_accounts
from simulator.core.members import apportion

from .helpers import constant_market, fixed_group, phase, policy, run_config

# --------------------------------------------------------------------------- members.apportion


def test_apportion_examples() -> None:
    """Largest remainder: floors first, leftovers to the largest fractional parts, ties to the lowest index."""
    assert apportion(10, np.array([1.0, 1.0, 1.0])).tolist() == [4, 3, 3]
    assert apportion(7, np.array([0.5, 0.3, 0.2])).tolist() == [4, 2, 1]  # 3.5, 2.1, 1.4
    assert apportion(5, np.array([0.0, 2.0, 3.0])).tolist() == [0, 2, 3]
    assert apportion(0, np.array([1.0, 2.0])).tolist() == [0, 0]
    assert apportion(1, np.array([1.0, 1.0, 1.0, 1.0])).tolist() == [1, 0, 0, 0]


@settings(max_examples=200, deadline=None)
@given(total=st.integers(0, 100_000),
       weights=st.lists(st.floats(0.0, 1e6, allow_nan=False), min_size=1, max_size=12).filter(lambda w: sum(w) > 0))
def test_apportion_properties(total: int, weights: list[float]) -> None:
    """Counts are non-negative integers summing to the total, each within 1 of its exact share."""
    w = np.array(weights)
    counts = apportion(total, w)
    exact = total * w / w.sum()
    assert counts.dtype.kind == "i"
    assert int(counts.sum()) == total
    assert (counts >= 0).all()
    assert (np.abs(counts - exact) < 1.0 + 1e-9).all()
    assert (counts[w == 0] == 0).all()
    np.testing.assert_array_equal(counts, apportion(total, w))


# --------------------------------------------------------------------------- ledger.allocate


def test_allocate_examples() -> None:
    """A rich account serves every seat; a short one is shared in proportion to demand by largest remainder."""
    acc = np.array([0, 0, 1])
    assert allocate(np.array([3, 5, 4]), acc, np.array([100, 100])).tolist() == [3, 5, 4]
    assert allocate(np.array([30, 10, 4]), acc, np.array([20, 2])).tolist() == [15, 5, 2]
    assert allocate(np.array([3, 3, 0]), acc, np.array([5, 0])).tolist() == [3, 2, 0]  # tie: lower id
    assert allocate(np.ones(10, dtype=np.int64), np.zeros(10, dtype=np.int64), np.array([9])).sum() == 9
    assert allocate(np.array([300, 0]), np.array([0, 0]), np.array([200])).tolist() == [200, 0]
    assert allocate(np.array([150, 150]), np.array([0, 0]), np.array([200])).tolist() == [100, 100]


@settings(max_examples=200, deadline=None)
@given(data=st.data(), n=st.integers(1, 30))
def test_allocate_never_above_balance(data: st.DataObject, n: int) -> None:
    """Integer allowances, 0 <= allowed <= desired, each account spends min(demand, balance): nothing stranded."""
    n_acc = data.draw(st.integers(1, n))
    account_of = np.array(data.draw(st.lists(st.integers(0, n_acc - 1), min_size=n, max_size=n)))
    desired = np.array(data.draw(st.lists(st.integers(0, 10_000), min_size=n, max_size=n)), dtype=np.int64)
    balance = np.array(data.draw(st.lists(st.integers(0, 20_000), min_size=n_acc, max_size=n_acc)), dtype=np.int64)
    allowed = allocate(desired, account_of, balance)
    assert allowed.dtype.kind == "i"
    assert ((allowed >= 0) & (allowed <= desired)).all()
    used = np.bincount(account_of, weights=allowed, minlength=n_acc)
    demand = np.bincount(account_of, weights=desired, minlength=n_acc)
    np.testing.assert_array_equal(used, np.minimum(demand, balance))
    rich = demand <= balance
    np.testing.assert_array_equal(allowed[rich[account_of]], desired[rich[account_of]])
    # the per-account spend the engine debits without re-adding the seats
    same, spend = allocate_with_accounts(desired, account_of, balance)
    np.testing.assert_array_equal(same, allowed)
    np.testing.assert_array_equal(spend, used)
    if n_acc == n:  # one seat per account, in order: the shortcut path
        own = np.arange(n)
        same, spend = allocate_with_accounts(desired, own, balance, identity=True)
        np.testing.assert_array_equal(same, np.minimum(desired, balance))
        np.testing.assert_array_equal(spend, same)


def test_accounts_for_pools_only_poolable_seats_of_a_team() -> None:
    """Pooling merges a team's poolable seats; other seats keep their own account."""
    team = np.array([0, 0, 0, 1, 1])
    poolable = np.array([True, True, False, True, True])
    pooled = accounts_for(team, poolable, True)
    assert pooled[0] == pooled[1] and pooled[3] == pooled[4]
    assert len({pooled[0], pooled[2], pooled[3]}) == 3
    assert len(set(accounts_for(team, poolable, False).tolist())) == 5
    assert accounts_for(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool), True).size == 0


def test_ledger_spend_overdraft_raises() -> None:
    """Spending more than an account holds is an engine bug and must not pass silently."""
    lg = Ledger.open(np.array([0, 1]))
    lg.grant(np.array([5, 5]), expires=10**9)
    with pytest.raises(RuntimeError, match="overdraft"):
        lg.spend(np.array([6, 0]))
    with pytest.raises(ValueError):
        lg.spend(np.array([-1, 0]))


# --------------------------------------------------------------------------- Dist


def test_dist_bounds_and_validation() -> None:
    """low/high as documented; invalid parameters are rejected with the field name."""
    assert (Dist("uniform", 1, 3).low, Dist("uniform", 1, 3).high) == (1, 3)
    assert (Dist("beta", 0.2, 3).low, Dist("beta", 0.2, 3).high) == (0.0, 1.0)
    assert Dist("lognormal", 2, 0.5).high == float("inf")
    assert Dist("lognormal", 2.0, 0.0).mean == 2.0
    with pytest.raises(ValueError, match="b"):
        Dist("uniform", 3, 1)
    with pytest.raises(ValueError, match="a"):
        Dist("beta", 1.0, 3)
    with pytest.raises(ValueError, match="kind"):
        Dist("normal", 0, 1)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- presets vs POLICY_FACTS

OLD_TABLE = {  # POLICY_FACTS section 2, column "old"
    "recruiter": 50, "recruiter_professional_services": 50, "recruiter_lite": 25, "talent_finder": 25,
    "sales_navigator_team": 25, "sales_navigator_professional": 10, "sales_navigator_basic": 5,
}
NEW_TABLE = {  # POLICY_FACTS section 2, column "new" (Recruiter: 150 per seed 002)
    "recruiter": 150, "recruiter_professional_services": 100, "recruiter_lite": 30, "talent_finder": 25,
    "sales_navigator_team": 30, "sales_navigator_professional": 15, "sales_navigator_basic": 8,
}


def test_seat_types_are_the_seven_of_the_table() -> None:
    assert set(SEAT_TYPES) == set(OLD_TABLE) == set(NEW_TABLE)
    assert len(SEAT_TYPES) == 7
    assert frozenset({"recruiter", "recruiter_professional_services"}) == POOLABLE_SEATS


@pytest.mark.parametrize("name", ["old_2014", "pre_threshold_2014"])
def test_old_presets_match_facts(name: str) -> None:
    """Section 1: refund on silence after 7 days; section 2: old allotments; unlimited accrual."""
    p = preset(name)
    assert p.switch_date is None and p.before is None
    assert p.phase.refund == RefundRule("on_silence", window_days=7, latency_days=0)
    assert {s: p.phase.allotment(s) for s in SEAT_TYPES} == OLD_TABLE
    assert p.phase.accrual.kind == "unlimited"
    assert p.grants == ()


@pytest.mark.parametrize("name", ["new_2015", "transition_2015"])
def test_new_presets_match_facts(name: str) -> None:
    """Section 1: refund on response within 90 days, 24-48 h latency; section 2: new allotments,
    90-day accrual, pooling, one +100 launch bonus in January 2015 for Recruiter and RPS seats.

    Where the sources disagree the preset picks one reading (presets.py, docs/model.md 7.6-7.7), and
    this test pins that pick: latency_days=1 (the refund is credited at the end of day s+d+1, i.e.
    24-48 h after the answer), Recruiter 150 credits (NEW_TABLE; 100 is the override), and credits
    that expire 90 days after grant (not a cap of 3 months of allotment, the override).
    """
    p = preset(name)
    r = p.phase.refund
    assert r == RefundRule("on_response", window_days=90, latency_days=1)
    assert {s: p.phase.allotment(s) for s in SEAT_TYPES} == NEW_TABLE
    assert p.phase.pooling is True
    assert p.phase.accrual == Accrual("expire", expire_days=90)
    assert p.phase.allotment("recruiter") == 150
    assert len(p.grants) == 1
    g = p.grants[0]
    assert g.amount == 100
    assert set(g.seat_types) == {"recruiter", "recruiter_professional_services"}
    assert (g.date.year, g.date.month) == (2015, 1)


def test_transition_keeps_old_rule_before_end_of_january_switch() -> None:
    """Section 1: the switch slipped to the end of January 2015; before it the old rule applies."""
    p = preset("transition_2015")
    assert p.switch_date is not None and p.before is not None
    assert dt.date(2015, 1, 25) <= p.switch_date <= dt.date(2015, 2, 1)
    assert p.phase_on(dt.date(2015, 1, 15)).refund == RefundRule("on_silence", 7, 0)
    assert p.phase_on(p.switch_date).refund.kind == "on_response"
    assert p.phase_on(dt.date(2015, 1, 15)).allotment("recruiter") == 50


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_threshold_numbers_match_facts(name: str) -> None:
    """Section 3: 100+ sends in 14 days, 13% bar, 14-day warning and Improvement Period."""
    t = preset(name).threshold
    assert (t.min_sends, t.window_days, t.min_rate) == (100, 14, 0.13)
    assert (t.warning_days, t.improvement_days) == (14, 14)
    assert t.enabled is (name != "pre_threshold_2014")
    assert {"recruiter", "recruiter_professional_services"} <= set(t.seat_types)


def test_recruiter_100_is_one_override_away() -> None:
    """Seed 003's '100 a seat' and the 3-month cap reading are reachable with one-line changes."""
    p = preset("new_2015")
    allot = tuple((s, 100 if s == "recruiter" else n) for s, n in p.phase.allotments)
    q = p.with_phase(allotments=allot)
    assert q.phase.allotment("recruiter") == 100
    assert q.phase.allotment("recruiter_professional_services") == 100
    assert p.phase.allotment("recruiter") == 150  # the original is untouched (frozen)
    capped = p.with_phase(accrual=Accrual("cap", cap_months=3))
    assert capped.phase.accrual.kind == "cap"


def test_presets_are_fresh_objects_and_unknown_name_is_clear() -> None:
    assert preset("new_2015") == preset("new_2015")
    with pytest.raises(KeyError, match="allowed: old_2014"):
        preset("new_2016")


def test_config_rejects_inconsistent_policy() -> None:
    """switch_date and before go together; a seat listed twice in allotments is an error."""
    ph = Phase()
    with pytest.raises(ValueError, match="switch_date"):
        Policy("x", ph, switch_date=dt.date(2015, 1, 1))
    with pytest.raises(ValueError, match="listed twice"):
        Phase(allotments=(("recruiter", 1), ("recruiter", 2)))
    with pytest.raises(ValueError, match="min_rate"):
        Threshold(min_rate=1.3)
    assert replace(ph, pooling=True).pooling is True


# --------------------------------------------------------------------------- credits lost, unanswered


def test_credits_lost_counts_expired_credits_that_net_burn_leaves_out() -> None:
    """Hand-checked run: 10 recruiters get 100 credits on Feb 1 that expire after 10 days, spend ~5 a
    day and never get a refund; what they had not spent by day 10 expires.  Net burn misses it,
    ``credits_lost`` does not, and equals granted - final balance (ledger conservation)."""
    market = constant_market(groups=(fixed_group(count=10, volume=5.0),))
    expiring = policy(phase(allot=100, accrual=Accrual("expire", expire_days=10)))
    res = run_replication(market, expiring, run_config(horizon=30), seed=11)
    m, spent_daily = res.metrics, res.daily["credits_spent"]
    assert m["credits_granted"] == 2 * 10 * 100  # Feb 1 and Mar 1 (day 28)
    assert 0 < spent_daily[:10].sum() < 1000  # nobody ran dry: each lot's leftover is exact
    assert m["credits_expired"] == 1000 - spent_daily[:10].sum()  # the Mar 1 lot expires after the horizon
    assert m["net_credit_burn"] == m["credits_spent"]  # refund rule "never"
    assert m["credits_lost"] == m["net_credit_burn"] + m["credits_expired"] > m["net_credit_burn"]
    assert m["credits_lost"] == m["credits_granted"] - res.extra["final_balance"]

    kept = run_replication(market, policy(phase(allot=100)), run_config(horizon=30), seed=11)
    assert kept.metrics["credits_expired"] == 0
    assert kept.metrics["credits_lost"] == kept.metrics["net_credit_burn"]  # nothing expires: the two agree


def test_unanswered_is_sent_minus_responses_and_pending_its_old_name() -> None:
    """With every member inactive nobody answers: all InMails are unanswered, under both names."""
    res = run_replication(constant_market(active_share=0.0), policy(), run_config(horizon=10), seed=3)
    m = res.metrics
    assert m["sent"] > 0 and m["responses"] == 0
    assert m["unanswered"] == m["pending"] == m["sent"]
    assert m["unanswered_per_active_member"] == 0.0  # no active member to hold them
