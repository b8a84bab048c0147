"""The batched engine: every replication of a batch is bit for bit the replication run alone.

Exact (seeded) comparisons of ``run_replications`` against ``run_replication`` job by job: metrics,
daily series, recruiter tallies, member counts and histograms, for batches mixing policies
(presets, a switch date with a ``before`` phase, pooling, threshold on and off, expiry and cap
accrual, one-off grants) and worlds (markets differing in parameters and sizes), at K = 1, 2, 5; and
with the 2014 mechanisms (anticipation, platform targeting) on, alone and together, in batches
mixing policies with and without a threshold and markets with and without the mechanisms.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pytest

from simulator import Accrual, Adaptation, Dist, Grant, Market, MemberPopulation, RecruiterGroup, Segment
from simulator.core import presets
from simulator.core.batch import ReplicationJob, default_batch, run_replications
from simulator.core.config import Anticipation, Phase, PlatformTargeting, Policy, RefundRule, RunConfig, Threshold
from simulator.core.engine import run_replication
from simulator.core.metrics import ReplicationResult
from simulator.core.seeding import replication_seed
from simulator.scenario.uncertain import set_market_fields

START = dt.date(2015, 1, 10)
RUN = RunConfig(start_date=START, horizon_days=75)


def small_market(members: int = 1500, recruiters: int = 40) -> Market:
    """Every mechanism on: adaptive and fixed groups in teams, two segments, a bulk-heavy group, fatigue."""
    segments = (Segment("warm", 0.6, base_response=0.3), Segment("cold", 0.4, base_response=0.15))
    heavy = max(2, recruiters // 8)
    groups = (
        RecruiterGroup("adaptive", recruiters - 2 * heavy, seat_type="recruiter", behaviour="adaptive", team_size=4),
        RecruiterGroup("fixed", heavy, seat_type="recruiter_professional_services", behaviour="fixed", team_size=3),
        RecruiterGroup("bulk", heavy, seat_type="recruiter", behaviour="fixed", team_size=2,
                       daily_volume=Dist("lognormal", 40.0, 0.5), bulk_share=Dist("beta", 0.85, 20.0),
                       personalization=Dist("beta", 0.2, 8.0), time_budget_minutes=Dist("lognormal", 150.0, 0.3)),
    )
    return Market(members=MemberPopulation(members, segments), recruiters=groups)


def assert_same(a: ReplicationResult, b: ReplicationResult) -> None:
    """Everything a replication returns is exactly equal."""
    assert (a.policy, a.seed_entropy, a.spawn_key) == (b.policy, b.seed_entropy, b.spawn_key)
    assert a.metrics == b.metrics, {k: (a.metrics[k], b.metrics[k]) for k in a.metrics if a.metrics[k] != b.metrics[k]}
    assert a.extra == b.extra
    assert list(a.daily) == list(b.daily)
    for name in a.daily:
        assert np.array_equal(a.daily[name], b.daily[name]), name
    for field in dataclasses.fields(a.recruiters):
        assert np.array_equal(getattr(a.recruiters, field.name), getattr(b.recruiters, field.name)), field.name
    assert np.array_equal(a.member_received, b.member_received)
    assert np.array_equal(a.member_unanswered, b.member_unanswered)
    assert list(a.member_histograms) == list(b.member_histograms)
    for name in a.member_histograms:
        assert np.array_equal(a.member_histograms[name], b.member_histograms[name]), name


def check_batch(jobs: list[ReplicationJob]) -> list[ReplicationResult]:
    """Run ``jobs`` as one call and each alone; assert they agree; return the batched results."""
    batched = run_replications(jobs)
    assert len(batched) == len(jobs)
    for job, got in zip(jobs, batched, strict=True):
        assert_same(run_replication(job.market, job.policy, job.run, seed=job.seed), got)
    return batched


def policies() -> list[Policy]:
    """Presets and variants: switch with a ``before`` phase, pooling, threshold on/off, accruals, grants."""
    new, old = presets.new_2015(), presets.old_2014()
    switch = dataclasses.replace(presets.transition_2015(), name="switch", switch_date=dt.date(2015, 2, 1))
    cap = new.with_phase(accrual=Accrual("cap", cap_months=1.0), pooling=False)
    cap = dataclasses.replace(cap, name="cap_unpooled")
    picky = dataclasses.replace(old, name="picky", threshold=Threshold(min_sends=20, window_days=7, min_rate=0.2,
                                                                        maturity_days=2, review_every_days=3,
                                                                        warning_days=5, improvement_days=6))
    # expiring lots before a switch to never-expiring ones with pooling: old lots left empty are dropped
    drain = Policy(name="drain", phase=Phase(RefundRule("on_response", 30, 1), (("recruiter", 60),),
                                             Accrual("unlimited"), pooling=True),
                   before=Phase(RefundRule("on_silence", 5), (("recruiter", 40),
                                                              ("recruiter_professional_services", 30)),
                                Accrual("expire", expire_days=20), pooling=False),
                   switch_date=dt.date(2015, 2, 3),
                   grants=(Grant(dt.date(2015, 1, 20), 15), Grant(dt.date(2015, 2, 10), 25, ("recruiter",))))
    # the reverse: a never-expiring lot emptied (and dropped) before lots that expire; refunds after
    # the last expiry open a new lot that expires in turn (a kept empty lot would hold them forever)
    refill = Policy(name="refill", phase=Phase(RefundRule("on_response", 30, 1), (("recruiter", 40),),
                                               Accrual("expire", expire_days=10), pooling=True),
                    before=Phase(RefundRule("on_silence", 5), (("recruiter", 30),), Accrual("unlimited")),
                    switch_date=dt.date(2015, 2, 1))
    never = dataclasses.replace(new.with_phase(refund=RefundRule("never", 0, 0)), name="never")
    return [old, new, presets.pre_threshold_2014(), switch, cap, picky, drain, refill, never]


def test_a_policy_that_never_refunds_books_nothing_beside_others() -> None:
    """``never`` next to ``on_silence`` and ``on_response`` in one batch (found by the soak test: it was
    booked as on_response); every combination of the three, in both orders."""
    old, new = presets.old_2014(), presets.new_2015()
    never = dataclasses.replace(old.with_phase(refund=RefundRule("never", 0, 0)), name="never")
    market = small_market(300, 8)
    for pair in ((old, never), (never, old), (new, never), (never, new), (old, new, never)):
        results = check_batch([ReplicationJob(market, p, RUN, replication_seed(3, 0)) for p in pair])
        for policy, result in zip(pair, results, strict=True):
            if policy.name == "never":
                assert result.metrics["credits_refunded"] == 0


@pytest.mark.parametrize("k", [1, 2, 5])
def test_a_batch_of_policies_is_bit_identical_to_each_alone(k: int) -> None:
    market = small_market()
    pols = policies()
    jobs = [ReplicationJob(market, pols[(i * 3) % len(pols)], RUN, replication_seed(7, i)) for i in range(k)]
    check_batch(jobs)


def test_every_policy_in_one_batch() -> None:
    market = small_market()
    check_batch([ReplicationJob(market, pol, RUN, replication_seed(11, 0)) for pol in policies()])


def test_worlds_of_different_parameters_and_sizes_in_one_batch() -> None:
    base = small_market()
    worlds = [
        base,
        set_market_fields(base, {"market.response.personalization_effect": 2.5}),
        set_market_fields(base, {"market.members.segments.warm.base_response": 0.45,
                                 "market.members.segments.cold.base_response": 0.05}),
        dataclasses.replace(base, fatigue=dataclasses.replace(base.fatigue, enabled=False)),
        set_market_fields(small_market(members=900, recruiters=25), {"market.fatigue.weight_bulk": 0.3}),
        set_market_fields(small_market(members=2600, recruiters=55), {"market.fatigue.sensitivity": 0.8}),
    ]
    pols = policies()
    jobs = [ReplicationJob(world, pols[i % len(pols)], RUN, replication_seed(3, i)) for i, world in enumerate(worlds)]
    check_batch(jobs)


def test_jobs_that_cannot_share_a_batch_are_split_and_keep_their_order() -> None:
    """Different horizons and adapting / non-adapting markets run in batches of their own."""
    market = small_market()
    still = dataclasses.replace(market, sending=dataclasses.replace(market.sending, adaptation=Adaptation(False)))
    short = RunConfig(start_date=dt.date(2014, 12, 20), horizon_days=40)
    new = presets.new_2015()
    jobs = [ReplicationJob(market, new, RUN, 1), ReplicationJob(still, new, RUN, 2),
            ReplicationJob(market, new, short, 3), ReplicationJob(still, presets.old_2014(), RUN, 4),
            ReplicationJob(market, presets.old_2014(), RUN, 5)]
    results = check_batch(jobs)
    assert [r.policy for r in results] == ["new_2015", "new_2015", "new_2015", "old_2014", "old_2014"]


def test_the_same_job_twice_in_a_batch_gives_the_same_result_twice() -> None:
    job = ReplicationJob(small_market(), presets.new_2015(), RUN, replication_seed(5, 2))
    a, b = check_batch([job, job])
    assert_same(a, b)


def test_results_do_not_depend_on_the_batch_they_are_in() -> None:
    market, pols = small_market(), policies()
    jobs = [ReplicationJob(market, pols[i % len(pols)], RUN, replication_seed(9, i)) for i in range(6)]
    together = run_replications(jobs)
    apart = run_replications(jobs[:2]) + run_replications(jobs[2:5]) + run_replications(jobs[5:])
    for a, b in zip(together, apart, strict=True):
        assert_same(a, b)


def test_automatic_batch_sizes() -> None:
    assert default_batch(100 * 10_000) == 64
    assert default_batch(1_000 * 100_000) == 8
    assert default_batch(10_000 * 1_000_000) == 1
    assert default_batch(10_000 * 1_000_000) == 1
    assert default_batch(0) == 1
    assert 1 < default_batch(300 * 100_000) < 32


def test_a_replication_without_recruiters_or_with_an_empty_group_in_a_batch() -> None:
    base = small_market()
    empty_group = dataclasses.replace(base, recruiters=(*base.recruiters, RecruiterGroup("none", 0)))
    nobody = dataclasses.replace(base, recruiters=(RecruiterGroup("none", 0, behaviour="adaptive"),))
    pols = policies()
    check_batch([ReplicationJob(base, pols[1], RUN, 1), ReplicationJob(empty_group, pols[6], RUN, 2),
                 ReplicationJob(nobody, pols[1], RUN, 3), ReplicationJob(nobody, pols[7], RUN, 4)])


def test_passes_hold_at_most_a_million_members_and_128_replications() -> None:
    from simulator.core.batch import _passes

    def jobs_of(members: list[int]) -> list[ReplicationJob]:
        return [ReplicationJob(Market(members=MemberPopulation(n)), presets.new_2015(), RUN, 0) for n in members]

    assert _passes(list(range(40)), jobs_of([10_000] * 40)) == [list(range(40))]
    assert _passes(list(range(140)), jobs_of([1_000] * 140)) == [list(range(128)), list(range(128, 140))]
    assert _passes([0, 1, 2], jobs_of([1_000_000] * 3)) == [[0], [1], [2]]
    assert _passes([0, 1, 2, 3], jobs_of([400_000, 500_000, 200_000, 10])) == [[0, 1], [2, 3]]


def test_replications_with_different_calendars_in_one_batch() -> None:
    """Same horizon, different start dates: weekends, grant days, the switch and one-off grants fall apart."""
    market, pols = small_market(), policies()
    starts = [dt.date(2014, 12, 28), dt.date(2015, 1, 1), dt.date(2015, 1, 17), dt.date(2015, 2, 1), START]
    jobs = [ReplicationJob(market, pols[(2 * i + 3) % len(pols)], RunConfig(start_date=start, horizon_days=75),
                           replication_seed(13, i)) for i, start in enumerate(starts)]
    check_batch(jobs)


def test_a_batch_whose_inmails_all_weigh_the_same_fatigue() -> None:
    market = set_market_fields(small_market(), {"market.fatigue.weight_personalized": 1.0})
    pols = policies()
    check_batch([ReplicationJob(market, pols[i % len(pols)], RUN, replication_seed(17, i)) for i in range(4)])


def _with_2014_mechanisms(market: Market, anticipation: Anticipation | None = None,
                          platform: PlatformTargeting | None = None) -> Market:
    """``market`` with the anticipation and/or the platform targeting of the 2014 programme switched on."""
    if anticipation is not None:
        market = dataclasses.replace(market, sending=dataclasses.replace(market.sending, anticipation=anticipation))
    if platform is not None:
        market = dataclasses.replace(market, platform_targeting=platform)
    return market


MECHANISMS = {
    "anticipation": (Anticipation(True, 1.5, 1.5), None),
    "platform": (None, PlatformTargeting(True, 0.7, 3)),
    "platform_everywhere": (None, PlatformTargeting(True, 0.4, 2, requires_threshold=False)),
    "both": (Anticipation(True, 0.8, 0.5), PlatformTargeting(True, 1.0, 1)),
}


@pytest.mark.parametrize("mechanism", list(MECHANISMS))
def test_a_batch_with_a_2014_mechanism_on_is_bit_identical_to_each_alone(mechanism: str) -> None:
    """Policies with and without a threshold (and a picky one that warns often) in one batch, the mechanism on."""
    market = _with_2014_mechanisms(small_market(), *MECHANISMS[mechanism])
    pols = policies()
    results = check_batch([ReplicationJob(market, pol, RUN, replication_seed(19, 0)) for pol in pols])
    plain = run_replications([ReplicationJob(small_market(), pol, RUN, replication_seed(19, 0)) for pol in pols])
    moved = [a.metrics != b.metrics for a, b in zip(results, plain, strict=True)]
    assert any(moved), "the mechanism changed nothing: the test would not see it break"
    if mechanism in ("anticipation", "platform"):  # they need a threshold: pre_threshold_2014 keeps its numbers
        index = [p.name for p in pols].index("pre_threshold_2014")
        assert not moved[index]


def test_a_batch_mixing_markets_with_and_without_the_2014_mechanisms() -> None:
    """Replications whose markets differ in the mechanisms (on, off, other strengths and candidate counts)."""
    base = small_market()
    worlds = [base, *(_with_2014_mechanisms(base, *pair) for pair in MECHANISMS.values()),
              _with_2014_mechanisms(small_market(900, 25), Anticipation(True, 0.3, 2.0),
                                    PlatformTargeting(True, 0.5, 5, requires_threshold=False)),
              _with_2014_mechanisms(base, Anticipation(False, 5.0, 1.0), PlatformTargeting(False, 1.0, 16))]
    pols = policies()
    jobs = [ReplicationJob(world, pols[(2 * i) % len(pols)], RUN, replication_seed(23, i))
            for i, world in enumerate(worlds)]
    jobs += [ReplicationJob(world, presets.old_2014(), RUN, replication_seed(29, i)) for i, world in enumerate(worlds)]
    check_batch(jobs)
