"""Mechanisms on hand-built cases: threshold, pooling, accrual cap, expiry, launch bonus, switch date, remap."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator import (
    SEAT_TYPES,
    Accrual,
    Adaptation,
    Fatigue,
    Market,
    MemberPopulation,
    Policy,
    RefundRule,
    ResponseModel,
    RunConfig,
    Segment,
    SendingModel,
    Threshold,
    preset,
    run_replication,
)
from simulator.core.engine import Simulation
from simulator.core.ledger import NEVER, Ledger, accounts_for, allocate, per_account
from simulator.core.seeding import streams
from simulator.core.threshold import NOT_IN_IP, ThresholdBook

from .helpers import BIG, allotments, constant_market, fixed, fixed_group, phase, policy, run_config

# =========================================================================== threshold: the book by hand


def open_book(rule: Threshold, n_seats: int, n_days: int) -> ThresholdBook:
    """A book in which every seat is reviewed."""
    return ThresholdBook.open(rule, np.ones(n_seats, dtype=bool), n_days)


def feed(book: ThresholdBook, day: int, sends: list[int], responses: list[tuple[int, int]] = ()) -> tuple[int, int]:
    """One day: book ``sends`` per seat and (seat, delay) responses, then advance and review."""
    rec = np.array([r for r, _ in responses], dtype=np.int64)
    delay = np.array([d for _, d in responses], dtype=np.int64)
    book.record(day, np.array(sends, dtype=np.int64), rec, delay)
    book.advance(day)
    return book.review(day)


def silent_days(book: ThresholdBook, days: range, sends: int = 10) -> list[tuple[int, int]]:
    return [feed(book, t, [sends]) for t in days]


RULE = Threshold(min_sends=10, window_days=2, min_rate=0.5, warning_days=3, ack_delay_days=1, improvement_days=4)


def test_book_warning_grace_improvement_extension_and_release() -> None:
    """Warn on the first breach; IP only once the grace (ack + warning days) is over; extended while
    still breaching at its end; released when the seat meets the bar; a later breach goes straight to IP."""
    book = open_book(RULE, 1, 40)
    # day 0: 10 sends, 0 responses -> warning; grace until day 0 + 1 + ack 1 + warning 3 = 5
    assert feed(book, 0, [10]) == (1, 0)
    assert book.warned[0] and book.grace_until[0] == 5 and book.bulk_allowed(1)[0]
    # days 1..3 still breaching but inside the grace period: nothing
    assert silent_days(book, range(1, 4)) == [(0, 0)] * 3
    assert book.ip_until[0] == NOT_IN_IP
    # day 4: the grace ends tonight -> Improvement Period on days 5..8
    assert feed(book, 4, [10]) == (0, 1)
    assert book.ip_until[0] == 9
    # (the book only answers for days after its last review: ip_until is "first day after the IP")
    assert [bool(book.in_improvement(t)[0]) for t in range(5, 10)] == [True, True, True, True, False]
    assert [bool(book.bulk_allowed(t)[0]) for t in range(5, 10)] == [False, False, False, False, True]
    # days 5..7: in IP, no new events even though breaching
    assert silent_days(book, range(5, 8)) == [(0, 0)] * 3
    # day 8: IP ends tonight, still breaching -> extended to days 9..12
    assert feed(book, 8, [10]) == (0, 1)
    assert book.ip_until[0] == 13 and book.improvement_periods[0] == 2
    # days 9..12: every InMail answered the same day; window (2 days) rate reaches 50% on day 10
    for t in range(9, 13):
        feed(book, t, [10], [(0, 0)] * 10)
    assert book.ip_until[0] == NOT_IN_IP and book.bulk_allowed(13)[0]
    assert book.improvement_periods[0] == 2 and book.warnings[0] == 1
    # day 13..14 fine; day 15..16 silent again: a later breach is an IP at once, never a second warning
    feed(book, 13, [10], [(0, 0)] * 10)
    feed(book, 14, [10], [(0, 0)] * 10)
    assert feed(book, 15, [10]) == (0, 0)  # window: 20 sends, 10 responses = 50%, not below
    assert feed(book, 16, [10]) == (0, 1)  # window: 20 sends, 0 responses
    assert book.ip_until[0] == 17 + 4 and book.warnings[0] == 1


def test_book_boundaries_min_sends_and_min_rate() -> None:
    """Exactly min_rate is no breach; min_sends - 1 InMails are no breach; min_sends at 0% is."""
    rule = Threshold(min_sends=100, window_days=14, min_rate=0.13)
    book = open_book(rule, 3, 5)
    feed(book, 0, [100, 99, 100], [(0, 0)] * 13 + [(2, 0)] * 12)
    assert book.win_sends.tolist() == [100, 99, 100] and book.win_resp.tolist() == [13, 0, 12]
    assert book.breach().tolist() == [False, False, True]
    assert book.warnings.tolist() == [0, 0, 1]
    feed(book, 1, [0, 1, 0], [(1, 0)])  # seat 1 reaches 100 InMails at 1%
    assert book.warnings.tolist() == [0, 1, 1]


def test_book_answers_arriving_later_count_from_their_day() -> None:
    """An InMail answered after d days counts as answered from the review of day s + d on."""
    rule = Threshold(min_sends=100, window_days=14, min_rate=0.13)
    book = open_book(rule, 1, 5)
    assert feed(book, 0, [100], [(0, 1)] * 20) == (1, 0)  # on day 0: 0 of 100 answered yet
    feed(book, 1, [0])
    assert (book.win_sends[0], book.win_resp[0]) == (100, 20)
    assert not book.breach()[0]


def test_book_only_reviews_subject_seats() -> None:
    """Seats outside Threshold.seat_types (subject False) are never warned."""
    book = ThresholdBook.open(Threshold(min_sends=1), np.array([True, False]), 5)
    assert feed(book, 0, [50, 50]) == (1, 0)
    assert book.warnings.tolist() == [1, 0]


def test_book_window_rolls_and_late_responses_are_not_counted() -> None:
    """Sends leave the window after window_days; a response counts from its arrival day while the
    InMail is in the window; a response arriving after the InMail left never counts."""
    rule = Threshold(min_sends=1000, window_days=3)
    book = open_book(rule, 1, 10)
    feed(book, 0, [5], [(0, 0), (0, 2), (0, 3)])
    assert (book.win_sends[0], book.win_resp[0]) == (5, 1)
    feed(book, 1, [7])
    assert (book.win_sends[0], book.win_resp[0]) == (12, 1)
    feed(book, 2, [0])
    assert (book.win_sends[0], book.win_resp[0]) == (12, 2)  # the delay-2 answer
    feed(book, 3, [0])
    assert (book.win_sends[0], book.win_resp[0]) == (7, 0)  # day 0 left with both its counted answers
    feed(book, 4, [0])
    feed(book, 5, [0])
    assert (book.win_sends[0], book.win_resp[0]) == (0, 0)


def test_book_maturity_delays_entry() -> None:
    """With maturity m, InMails of day s enter the review on day s + m, with the answers received by then."""
    rule = Threshold(min_sends=10, window_days=2, min_rate=0.5, maturity_days=3)
    book = open_book(rule, 1, 20)
    assert feed(book, 0, [10], [(0, 1)] * 4) == (0, 0)
    assert [feed(book, t, [0]) for t in (1, 2)] == [(0, 0), (0, 0)]
    assert book.win_sends[0] == 0
    assert feed(book, 3, [0]) == (1, 0)  # 10 sends, 4 answers matured: 40% < 50%
    assert (book.win_sends[0], book.win_resp[0]) == (10, 4)


def test_book_review_every_days_and_disabled_rule() -> None:
    """New breaches are looked for only on review days (day % every == 0, as the engine calls it);
    a disabled rule never acts."""
    rule = Threshold(min_sends=5, window_days=1, min_rate=0.5, review_every_days=3)
    book = open_book(rule, 1, 10)
    out = []
    for t in range(1, 5):
        book.record(t, np.array([5]), np.zeros(0, np.int64), np.zeros(0, np.int64))
        book.advance(t)
        out.append(book.review(t, check_new_breaches=(t % rule.review_every_days == 0)))
    assert out == [(0, 0), (0, 0), (1, 0), (0, 0)]
    off = open_book(replace(rule, enabled=False), 1, 10)
    assert feed(off, 0, [1000]) == (0, 0) and off.bulk_allowed(5)[0]


# =========================================================================== threshold: end to end


def threshold_market() -> Market:
    """Seat 'spam' writes to members who never answer; 'good' to members who answer 90% the same day;
    'quiet' to the silent members but below min_sends."""
    dead = Segment("dead", 1.0, base_response=0.5, active_share=0.0, check_interval_days=fixed(1.0))
    live = Segment("live", 1.0, base_response=0.9, active_share=1.0, check_interval_days=fixed(1.0))
    g = {
        "spam": replace(fixed_group("spam", 1, volume=400.0, bulk_share=0.5), segment_weights=(1.0, 0.0)),
        "good": replace(fixed_group("good", 1, volume=400.0, bulk_share=0.5), segment_weights=(0.0, 1.0)),
        "quiet": replace(fixed_group("quiet", 1, volume=3.0, bulk_share=0.5), segment_weights=(1.0, 0.0)),
    }
    return Market(
        members=MemberPopulation(200, (dead, live)), recruiters=tuple(g.values()),
        response=ResponseModel(personalization_effect=0.0, member_heterogeneity_sd=0.0),
        fatigue=Fatigue(enabled=False), sending=SendingModel(weekend_factor=1.0, adaptation=Adaptation(enabled=False)),
    )


@pytest.mark.parametrize("ack", [0, 2])
def test_threshold_end_to_end_schedule(ack: int) -> None:
    """2014 rule (100 in 14 days, 13%, 14-day warning, 14-day IP): warned on day 0, IP from day
    15 + ack, bulk stops exactly then, extended every 14 days while breaching; others untouched."""
    rule = replace(preset("old_2014").threshold, ack_delay_days=ack)
    res = run_replication(threshold_market(), policy(threshold=rule), run_config(horizon=60), seed=3)
    t = res.recruiters
    assert t.group.tolist() == ["spam", "good", "quiet"]
    d = res.daily
    ip_start = 15 + ack
    assert d["warnings"][0] == 1 and d["warnings"][1:].sum() == 0
    ip_days = [ip_start - 1 + 14 * k for k in range(4) if ip_start - 1 + 14 * k < 60]
    assert np.flatnonzero(d["improvement_periods"]).tolist() == ip_days
    assert t.warnings.tolist() == [1, 0, 0]
    assert t.improvement_periods.tolist() == [len(ip_days), 0, 0]
    assert d["in_improvement"].tolist() == [0.0] * (ip_start - 1) + [1.0] * (60 - ip_start + 1)
    # bulk of the spam seat: every day before the IP, none from its first day on; 'good' keeps bulk
    sim = Simulation(threshold_market(), policy(threshold=rule), run_config(horizon=60), streams(3))
    bulk_by_day = []
    orig = sim.send

    def send(day: int) -> None:
        before = sim.seat_bulk.copy()
        orig(day)
        bulk_by_day.append(sim.seat_bulk - before)

    sim.send = send  # type: ignore[method-assign]
    sim.execute()
    b = np.array(bulk_by_day)
    assert (b[:ip_start, 0] > 0).all() and (b[ip_start:, 0] == 0).all()
    assert (b[:, 1] > 0).all()


def test_threshold_off_means_no_warning() -> None:
    res = run_replication(threshold_market(), policy(threshold=Threshold(enabled=False)), run_config(horizon=30),
                          seed=3)
    assert res.metrics["warnings"] == 0 and res.metrics["improvement_periods"] == 0
    assert res.daily["sent_bulk"].min() > 0


# =========================================================================== pooling


def test_ledger_pooled_account_lets_a_teammate_spend() -> None:
    """A team account: one seat can use the whole pool; the allocation never exceeds it."""
    lg = Ledger.open(accounts_for(np.array([0, 0]), np.array([True, True]), pooling=True))
    assert lg.n_accounts == 1
    lg.grant(per_account(lg.account_of, np.array([100, 100]), 1), NEVER)
    allowed = allocate(np.array([300, 0]), lg.account_of, lg.balance())
    assert allowed.tolist() == [200, 0]
    lg.spend(per_account(lg.account_of, allowed, 1))
    assert lg.total_balance() == 0 and lg.conserved()


def run_team(pooling: bool, seat: str, allot: int = 100) -> np.ndarray:
    """Team of two: seat 0 wants 1000 InMails a day, seat 1 none; one grant (February, 20 days)."""
    market = constant_market(0.3, groups=(fixed_group("team", 2, volume=1000.0, team_size=2, seat=seat),))
    pol = policy(phase(RefundRule("never"), allot=allot, pooling=pooling))
    sim = Simulation(market, pol, run_config(dt.date(2015, 2, 1), 20), streams(5))
    sim.rec.vol[1] = sim.rec.vol0[1] = 0.0
    return sim.execute().recruiters.sent


@pytest.mark.parametrize("seat", ["recruiter", "recruiter_professional_services"])
def test_pooling_end_to_end(seat: str) -> None:
    """Under pooling the busy seat spends both allotments; without it only its own."""
    assert run_team(True, seat).tolist() == [200, 0]
    assert run_team(False, seat).tolist() == [100, 0]


def test_pooling_ignores_non_poolable_seats() -> None:
    """Recruiter Lite credits are not pooled even when the phase pools."""
    assert run_team(True, "recruiter_lite").tolist() == [100, 0]


# =========================================================================== accrual cap


def test_ledger_cap_drops_the_excess() -> None:
    lg = Ledger.open(np.array([0, 1]))
    cap = np.array([150, 150])
    assert lg.grant(np.array([100, 100]), NEVER, cap) == (200, 0)
    lg.spend(np.array([80, 0]))
    assert lg.grant(np.array([100, 100]), NEVER, cap) == (200, 50)  # seat 0 has room for all 100, seat 1 for 50
    assert lg.balance().tolist() == [120, 150]
    assert lg.grant(np.array([100, 100]), NEVER, cap) == (200, 170)
    assert lg.balance().tolist() == [150, 150]
    assert lg.expired == 220 and lg.conserved()


def zero_volume_market(groups: tuple[tuple[str, int, str], ...], team_size: int = 1) -> Market:
    """Recruiters who never send, in the given (name, count, seat) groups."""
    return constant_market(groups=tuple(
        fixed_group(name, n, volume=0.0, seat=seat, team_size=team_size) for name, n, seat in groups))


@pytest.mark.parametrize("pooling", [False, True])
def test_cap_end_to_end(pooling: bool) -> None:
    """No sending, 5 monthly grants of 30 under a 2.5-month cap: 75 per seat kept, the rest dropped."""
    market = zero_volume_market((("a", 4, "recruiter"), ("b", 3, "talent_finder")), team_size=2)
    pol = policy(phase(allot=30, accrual=Accrual("cap", cap_months=2.5), pooling=pooling))
    res = run_replication(market, pol, run_config(dt.date(2015, 1, 1), 130), seed=1)
    seats = 7
    assert res.metrics["credits_granted"] == 5 * 30 * seats
    assert res.extra["final_balance"] == 75 * seats
    assert res.metrics["credits_expired"] == res.metrics["credits_granted"] - 75 * seats
    d = res.daily
    grant_days = [0, 31, 59, 90, 120]
    assert np.flatnonzero(d["credits_granted"]).tolist() == grant_days
    assert d["credits_expired"][grant_days].tolist() == [0, 0, 15 * seats, 30 * seats, 30 * seats]


# =========================================================================== expiry


def test_ledger_expire_fifo() -> None:
    """Spending takes the oldest lot first; a lot expires on its expiry day with what is left of it."""
    lg = Ledger.open(np.array([0]))
    lg.grant(np.array([10]), expires=5)
    lg.grant(np.array([10]), expires=8)
    lg.spend(np.array([4]))
    assert [int(lot.amount[0]) for lot in lg.lots] == [6, 10]
    assert lg.expire(4) == 0
    assert lg.expire(5) == 6
    lg.spend(np.array([3]))
    lg.refund(np.array([2]), day=6, fallback_expires=99)  # refunds join the newest lot
    assert [(int(lot.amount[0]), lot.expires) for lot in lg.lots] == [(9, 8)]
    assert lg.expire(8) == 9 and lg.total_balance() == 0
    lg.refund(np.array([1]), day=9, fallback_expires=99)  # no lot left: a fresh one with the fallback expiry
    assert [(int(lot.amount[0]), lot.expires) for lot in lg.lots] == [(1, 99)]
    assert lg.granted == 20 and lg.spent == 7 and lg.refunded == 3 and lg.expired == 15 and lg.conserved()


def test_expire_end_to_end_without_sending() -> None:
    """Each lot disappears exactly expire_days after its grant."""
    market = zero_volume_market((("a", 3, "recruiter"),))
    pol = policy(phase(allot=40, accrual=Accrual("expire", expire_days=10)))
    res = run_replication(market, pol, run_config(dt.date(2015, 2, 1), 40), seed=1)
    d = res.daily
    assert np.flatnonzero(d["credits_expired"]).tolist() == [10, 38]
    assert d["credits_expired"][[10, 38]].tolist() == [120, 120]
    assert d["balance"][[9, 10, 27, 28, 37, 38]].tolist() == [120, 0, 0, 120, 120, 0]
    assert res.extra["final_balance"] == 0


def test_expire_end_to_end_spends_oldest_first() -> None:
    """One seat, lots of 100 on day 0 and day 28, 45-day expiry: what expires on day 45 is what the
    day-0 lot has left after all spending of days 0..44 (first in, first out)."""
    market = constant_market(0.3, groups=(fixed_group("a", 1, volume=1.5),))
    pol = policy(phase(allot=100, accrual=Accrual("expire", expire_days=45)))
    res = run_replication(market, pol, run_config(dt.date(2015, 2, 1), 60), seed=7)
    spent = res.daily["credits_spent"]
    assert 30 < spent[:45].sum() < 100 and spent[28:45].sum() > 0  # the case is informative
    assert res.daily["credits_expired"][45] == 100 - spent[:45].sum()
    assert res.metrics["stockout_recruiter_days"] == 0


# =========================================================================== launch bonus

BONUS_MARKET = (("rec", 3, "recruiter"), ("rps", 2, "recruiter_professional_services"),
                ("lite", 4, "recruiter_lite"), ("snb", 1, "sales_navigator_basic"))


def monthly_total(pol_name: str = "new_2015") -> int:
    p = preset(pol_name).phase
    return sum(n * p.allotment(seat) for _, n, seat in BONUS_MARKET)


@pytest.mark.parametrize(("start", "horizon", "grant_days", "bonus"), [
    pytest.param(dt.date(2014, 12, 1), 45, [0, 31], True, id="start-dec-2014"),
    pytest.param(dt.date(2015, 2, 1), 45, [0, 28], False, id="start-feb-2015"),
    pytest.param(dt.date(2015, 1, 1), 10, [0], True, id="start-on-bonus-day"),
])
def test_launch_bonus(start: dt.date, horizon: int, grant_days: list[int], bonus: bool) -> None:
    """new_2015: +100 once, on 2015-01-01, for each Recruiter and RPS seat only."""
    res = run_replication(zero_volume_market(BONUS_MARKET), preset("new_2015"), run_config(start, horizon), seed=2)
    extra = 100 * 5 if bonus else 0
    assert monthly_total() == 3 * 150 + 2 * 100 + 4 * 30 + 8
    assert res.metrics["credits_granted"] == len(grant_days) * monthly_total() + extra
    d = res.daily["credits_granted"]
    assert np.flatnonzero(d).tolist() == grant_days
    jan1 = (dt.date(2015, 1, 1) - start).days
    for t in grant_days:
        assert d[t] == monthly_total() + (extra if t == jan1 else 0)


def test_launch_bonus_only_once_over_two_januaries() -> None:
    start = dt.date(2014, 12, 1)
    res = run_replication(zero_volume_market(BONUS_MARKET), preset("new_2015"), run_config(start, 400), seed=2)
    d = res.daily["credits_granted"]
    assert d[(dt.date(2015, 1, 1) - start).days] == monthly_total() + 500
    assert d[(dt.date(2016, 1, 1) - start).days] == monthly_total()
    assert res.metrics["credits_granted"] == 14 * monthly_total() + 500


# =========================================================================== switch date


def transition_like(switch: dt.date) -> tuple[Policy, Policy, Policy]:
    """transition_2015 with unlimited credits and no threshold, plus its two phases alone."""
    t = preset("transition_2015")
    assert t.before is not None
    before = replace(t.before, allotments=allotments(BIG))
    after = replace(t.phase, allotments=allotments(BIG))
    trans = replace(t, phase=after, before=before, switch_date=switch, threshold=Threshold(enabled=False),
                    grants=())
    return trans, replace(trans, switch_date=None, before=None, phase=before), replace(
        trans, switch_date=None, before=None)


START = dt.date(2015, 1, 1)
SWITCH = dt.date(2015, 2, 1)
S = (SWITCH - START).days


@pytest.mark.parametrize(("p", "active"), [(0.5, 0.0), (0.999, 1.0)])
def test_switch_applies_old_rule_to_earlier_inmails(p: float, active: float) -> None:
    """Pre-switch InMails come back when unanswered (silence), post-switch ones when answered.
    Nobody answers: exactly the pre-switch InMails come back; nearly everybody answers at once:
    nearly exactly the post-switch ones."""
    trans, _, _ = transition_like(SWITCH)
    market = constant_market(p, check_interval=1.0, active_share=active, groups=(fixed_group("a", 6, volume=5.0),))
    res = run_replication(market, trans, run_config(START, 60), seed=4)
    sent = res.daily["sent"]
    resp = res.daily["responses"]  # every answer comes the same day (c = 1), inside both windows
    before, after = sent[:S].sum(), sent[S:].sum()
    assert before > 0 and after > 0
    assert res.metrics["credits_refunded"] == (before - resp[:S].sum()) + resp[S:].sum()
    if active == 0.0:
        assert res.metrics["credits_refunded"] == before
    else:
        assert res.metrics["credits_refunded"] > 0.99 * after


def test_switch_refunds_decompose_into_the_two_rules() -> None:
    """Common random numbers make every InMail identical across the three policies, so
    refunded(transition, H) = refunded(old only, S) + refunded(new only, H) - refunded(new only, S)."""
    trans, old_only, new_only = transition_like(SWITCH)
    market = constant_market(0.35, check_interval=6.0,
                             groups=(fixed_group("a", 10, volume=8.0, team_size=2),))

    def refunded(pol: Policy, horizon: int) -> float:
        res = run_replication(market, pol, run_config(START, horizon), seed=9)
        assert res.metrics["stockout_recruiter_days"] == 0
        return res.metrics["credits_refunded"]

    h = 60
    total = refunded(trans, h)
    expected = refunded(old_only, S) + refunded(new_only, h) - refunded(new_only, S)
    assert total == expected
    assert total not in (refunded(old_only, h), refunded(new_only, h))


# =========================================================================== remap


def test_remap_example() -> None:
    """Pooling off -> on sums a team's seats; on -> off splits evenly, remainders to the lowest seats."""
    team = np.array([0, 0, 0, 1])
    poolable = np.array([True, True, True, True])
    lg = Ledger.open(accounts_for(team, poolable, False))
    lg.grant(np.array([1, 2, 4, 8]), NEVER)
    lg.remap(accounts_for(team, poolable, True))
    assert lg.balance().tolist() == [7, 8]
    lg.remap(accounts_for(team, poolable, False))
    assert lg.balance().tolist() == [3, 2, 2, 8]
    assert lg.conserved()


@settings(max_examples=100, deadline=None)
@given(data=st.data(), n=st.integers(1, 12))
def test_remap_conserves_credits(data: st.DataObject, n: int) -> None:
    """Any remap keeps every lot's total, its expiry and the ledger's conservation identity."""
    team = np.sort(np.array(data.draw(st.lists(st.integers(0, 4), min_size=n, max_size=n))))
    poolable = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    lg = Ledger.open(accounts_for(team, poolable, data.draw(st.booleans())))
    for k in range(data.draw(st.integers(1, 3))):
        lg.grant(np.array(data.draw(st.lists(st.integers(0, 50), min_size=lg.n_accounts, max_size=lg.n_accounts))),
                 expires=10 + k)
    lg.spend(np.minimum(lg.balance(), 3))
    before = [(int(lot.amount.sum()), lot.expires) for lot in lg.lots]
    for pooling in data.draw(st.lists(st.booleans(), min_size=1, max_size=3)):
        lg.remap(accounts_for(team, poolable, pooling))
        assert lg.n_accounts == int(lg.account_of.max()) + 1
        assert [(int(lot.amount.sum()), lot.expires) for lot in lg.lots] == before
        assert all(lot.amount.shape == (lg.n_accounts,) and (lot.amount >= 0).all() for lot in lg.lots)
        assert lg.conserved()


def test_switch_with_pooling_change_conserves_end_to_end() -> None:
    """transition_2015 itself (pooling off -> on at the switch, scarce credits): credits conserved."""
    market = constant_market(0.2, groups=(fixed_group("a", 6, volume=6.0, team_size=3),
                                          fixed_group("b", 3, volume=2.0, seat="recruiter_lite", team_size=3)))
    res = run_replication(market, preset("transition_2015"), run_config(START, 60), seed=1)
    m = res.metrics
    assert m["stockout_recruiter_days"] > 0
    assert m["credits_granted"] == m["credits_spent"] - m["credits_refunded"] + m["credits_expired"] \
        + res.extra["final_balance"]


def test_seat_types_constant_is_what_allotments_index() -> None:
    assert [s for s, _ in allotments(1)] == list(SEAT_TYPES)
    assert RunConfig().horizon_days == 365


# =========================================================================== fatigue


def test_fatigue_clock_matches_naive_recursion() -> None:
    """Lazy decay equals F(t+1) = decay (F(t) + added(t)) for every member, across a rescale of the clock."""
    from simulator.core.config import MemberPopulation as Pop
    from simulator.core.members import FatigueClock, build_members

    rng = np.random.default_rng(0)
    members = build_members(Pop(50), ResponseModel(), rng)
    decay = 0.25  # rescale (scale < 1e-30) happens after about 50 days
    clock = FatigueClock(members, decay)
    naive = np.zeros(50)
    rescaled = False
    for t in range(400):
        if t:
            naive *= decay
        clock.advance(t)
        rescaled |= clock.ref > 0
        # float32 state: 1e-6 relative; below 1e-30 (far under any InMail's weight) nothing is resolved
        np.testing.assert_allclose(clock.now(np.arange(50)), naive, rtol=1e-6, atol=1e-30)
        assert members.total_fatigue == pytest.approx(naive.sum(), rel=1e-9, abs=1e-300)
        idx = rng.integers(0, 50, size=int(rng.integers(0, 20)))
        w = rng.choice([1.0, 0.3], size=idx.size)
        clock.add(idx, w)
        np.add.at(naive, idx, w)
    assert rescaled
    np.testing.assert_allclose(clock.all(), naive, rtol=1e-6, atol=1e-30)


def test_mean_member_fatigue_series_follows_the_recursion() -> None:
    """N x mean fatigue(t) = decay x N x mean fatigue(t-1) + w_bulk bulk(t) + w_pers one-to-one(t)."""
    fat = Fatigue(enabled=True, weight_bulk=1.0, weight_personalized=0.3, half_life_days=5.0, sensitivity=0.0)
    market = replace(constant_market(0.3, members=400, groups=(fixed_group("a", 5, volume=10.0, bulk_share=0.4),)),
                     fatigue=fat)
    res = run_replication(market, policy(), run_config(horizon=30), seed=3)
    d = res.daily
    total = d["mean_member_fatigue"] * 400
    added = 1.0 * d["sent_bulk"] + 0.3 * d["sent_personalized"]
    decay = 2 ** (-1 / 5)
    assert total[0] == pytest.approx(added[0])
    np.testing.assert_allclose(total[1:], decay * total[:-1] + added[1:], rtol=1e-9)
    assert res.metrics["mean_member_fatigue"] == pytest.approx(d["mean_member_fatigue"].mean())
    no_fatigue = run_replication(replace(market, fatigue=replace(fat, enabled=False)), policy(), run_config(horizon=30),
                                 seed=3)
    assert no_fatigue.metrics["mean_member_fatigue"] == 0.0
    assert no_fatigue.metrics["sent"] == res.metrics["sent"]  # sensitivity 0: fatigue changes nothing else
    assert no_fatigue.metrics["responses"] == res.metrics["responses"]


def test_fatigue_uses_start_of_day_level() -> None:
    """One member, huge sensitivity: every InMail of day 0 meets a fresh member (p = 0.99); from day 1
    on the member is exhausted and nobody answers."""
    fat = Fatigue(enabled=True, weight_bulk=1.0, weight_personalized=1.0, half_life_days=30.0, sensitivity=200.0)
    market = replace(constant_market(0.99, check_interval=1.0, members=1,
                                     groups=(fixed_group("a", 1, volume=20.0),)), fatigue=fat)
    res = run_replication(market, policy(), run_config(horizon=10), seed=8)
    d = res.daily
    assert d["sent"][0] >= 10 and d["sent"][1:].sum() > 0
    assert d["responses"][0] >= d["sent"][0] - 2
    assert d["responses"][1:].sum() == 0
