"""Platform targeting: the platform surfaces ``candidates`` more members and the best by static score is kept.

Statistical, against a closed form: with the recruiters' own look off (skill 0), an InMail the
platform steers goes to the best by static score of 1 + c members drawn uniformly (with
replacement) from the segment, one it does not steer to one uniform member; so the mean static
score of the recipients is (1 - s) E[max of 1] + s E[max of 1 + c], worked out exactly from the
member scores (E[max of k] = sum_i s_(i) ((i / N)^k - ((i - 1) / N)^k), scores sorted), and so is
its variance.  Each InMail's recipient is an independent draw given the members, so the simulated
mean over n InMails has SE sqrt(Var / n); tolerance 4 SE, n ~ 40,000 (asserted).  Exact: only
reviewed seats are served when ``requires_threshold``; off changes nothing.  Invariants
(hypothesis): with both 2014 mechanisms on, credits are conserved and rates stay in [0, 1].
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator import Market, MemberPopulation, ResponseModel, Segment, run_replication
from simulator.core import presets
from simulator.core.batch import ReplicationJob, run_replications
from simulator.core.config import Anticipation, PlatformTargeting, RunConfig, Threshold
from simulator.core.engine import Simulation
from simulator.core.platform_targeting import platform_table, served_seats
from simulator.core.seeding import replication_seed, streams

from .helpers import constant_market, fixed, fixed_group, phase, policy, run_config
from .test_batch import assert_same, policies, small_market

K_SE = 4.0
MIN_N = 35_000
NEVER_BREACH = Threshold(min_rate=0.0)
"""A threshold that reviews recruiter seats and never warns (a rate is never below 0)."""


def expected_best(scores: np.ndarray, k: int) -> tuple[float, float]:
    """E[max] and E[max^2] of k uniform draws with replacement from ``scores`` (exact)."""
    s = np.sort(scores.astype(np.float64))
    i = np.arange(1, s.size + 1) / s.size
    weight = i**k - (i - 1.0 / s.size) ** k
    return float((weight * s).sum()), float((weight * s * s).sum())


def mixture(scores: np.ndarray, strength: float, candidates: int) -> tuple[float, float]:
    """Mean and variance of a recipient's static score: one draw, or with probability ``strength`` the best of 1 + c."""
    m1, q1 = expected_best(scores, 1)
    mk, qk = expected_best(scores, 1 + candidates)
    mean = (1 - strength) * m1 + strength * mk
    return mean, (1 - strength) * q1 + strength * qk - mean**2


LITE = ("recruiter", "recruiter_lite")
"""Group 0 on a seat the 2014 threshold reviews, group 1 on one it does not."""


def two_segment_market(targeting: PlatformTargeting, seats: tuple[str, str] = LITE) -> Market:
    """Two segments of 2,000 active members with heterogeneous scores (sd 1); group i targets segment i only."""
    base = constant_market()
    segments = tuple(Segment(name, 0.5, base_response=0.3, active_share=1.0, check_interval_days=fixed(3.0),
                             openness=fixed(0.4)) for name in ("a", "b"))
    groups = tuple(dataclasses.replace(fixed_group(f"g{i}", 40, volume=50.0, bulk_share=0.3, seat=seat),
                                       segment_weights=(1.0 - i, float(i))) for i, seat in enumerate(seats))
    return dataclasses.replace(base, members=MemberPopulation(4000, segments), recruiters=groups,
                               response=ResponseModel(personalization_effect=0.0, member_heterogeneity_sd=1.0),
                               platform_targeting=targeting)


def recipient_scores(targeting: PlatformTargeting, threshold: Threshold,
                     seats: tuple[str, str] = LITE, seed: int = 7) -> list[tuple]:
    """Per segment: (simulated mean recipient score, InMails, the segment's member scores)."""
    sim = Simulation(two_segment_market(targeting, seats), policy(phase(), threshold=threshold), run_config(horizon=20),
                     streams(seed))
    result = sim.execute()
    scores = sim.members.score.astype(np.float64)
    out = []
    for k in range(2):
        members = sim.members.segment == k
        received = result.member_received[members]
        out.append((float((received * scores[members]).sum() / received.sum()), int(received.sum()), scores[members]))
    return out


def assert_close(observed: float, mean_var: tuple[float, float], n: int, what: str) -> None:
    assert n >= MIN_N, f"{what}: only {n} InMails"
    mean, var = mean_var
    se = np.sqrt(var / n)
    assert abs(observed - mean) <= K_SE * se, f"{what}: simulated {observed:.4f}, closed form {mean:.4f}, SE {se:.4f}"


@pytest.mark.parametrize(("strength", "candidates"), [(1.0, 1), (0.5, 3), (1.0, 8)])
def test_recipients_mean_score_is_the_best_of_one_plus_candidates(strength: float, candidates: int) -> None:
    """Reviewed seats (segment a) get the mixture; unreviewed seats (segment b) one uniform member."""
    seg_a, seg_b = recipient_scores(PlatformTargeting(True, strength, candidates), NEVER_BREACH)
    assert_close(seg_a[0], mixture(seg_a[2], strength, candidates), seg_a[1], "served seats")
    assert_close(seg_b[0], mixture(seg_b[2], 0.0, candidates), seg_b[1], "seats the threshold does not review")
    lift = mixture(seg_a[2], strength, candidates)[0] - mixture(seg_a[2], 0.0, candidates)[0]
    assert lift > 10 * np.sqrt(mixture(seg_a[2], strength, candidates)[1] / seg_a[1])  # the test sees the effect


def test_without_requires_threshold_every_seat_is_served_even_without_a_threshold() -> None:
    seg_a, seg_b = recipient_scores(PlatformTargeting(True, 0.5, 3, requires_threshold=False), Threshold(enabled=False))
    for seg, what in ((seg_a, "recruiter seats"), (seg_b, "lite seats")):
        assert_close(seg[0], mixture(seg[2], 0.5, 3), seg[1], what)


def test_served_seats_and_the_table() -> None:
    subject = np.array([True, False, True])
    on = PlatformTargeting(True, 0.25, 2)
    assert served_seats(on, Threshold(), subject).tolist() == [True, False, True]
    assert not served_seats(on, Threshold(enabled=False), subject).any()
    everywhere = dataclasses.replace(on, requires_threshold=False)
    assert served_seats(everywhere, Threshold(enabled=False), subject).all()
    table = platform_table(on, Threshold(), subject)
    assert table is not None and table.dtype == np.float32
    assert table.tolist() == [0.25, 0.25, 0.0, 0.0, 0.25, 0.25]  # per (recruiter, kind)
    assert platform_table(on, Threshold(enabled=False), subject) is None
    assert platform_table(PlatformTargeting(True, 0.0, 2), Threshold(), subject) is None
    assert platform_table(PlatformTargeting(False, 1.0, 2), Threshold(), subject) is None


@pytest.mark.parametrize(("targeting", "threshold"), [
    (PlatformTargeting(False, 1.0, 16, requires_threshold=False), Threshold()),
    (PlatformTargeting(True, 0.0, 16, requires_threshold=False), Threshold()),
    (PlatformTargeting(True, 1.0, 16), Threshold(enabled=False)),
], ids=["off", "zero-strength", "no-threshold-to-require"])
def test_changes_nothing_when_it_serves_nobody(targeting: PlatformTargeting, threshold: Threshold) -> None:
    pol = policy(phase(), threshold=threshold)
    plain = run_replication(two_segment_market(PlatformTargeting()), pol, run_config(horizon=10), seed=2)
    got = run_replication(two_segment_market(targeting), pol, run_config(horizon=10), seed=2)
    assert got.metrics == plain.metrics
    assert np.array_equal(got.member_received, plain.member_received)


def test_it_raises_the_response_rate_of_the_2014_presets_only_with_the_threshold() -> None:
    market = small_market()
    steered = dataclasses.replace(market, platform_targeting=PlatformTargeting(True, 1.0, 3))
    run = RunConfig(start_date=dt.date(2014, 8, 1), horizon_days=40)
    for preset, moves in ((presets.old_2014(), True), (presets.pre_threshold_2014(), False)):
        a = run_replication(market, preset, run, seed=4).metrics["response_rate"]
        b = run_replication(steered, preset, run, seed=4).metrics["response_rate"]
        assert (b > a * 1.1) if moves else (b == a)


@settings(max_examples=8, deadline=None)
@given(picks=st.lists(st.tuples(st.integers(0, 8), st.integers(300, 1200), st.integers(8, 30), st.floats(0.0, 1.0),
                                st.integers(1, 16), st.booleans(), st.floats(0.0, 3.0), st.floats(0.1, 3.0),
                                st.integers(0, 2**31)), min_size=1, max_size=3))
def test_with_both_2014_mechanisms_on_credits_are_conserved_and_rates_stay_in_range(picks: list[tuple]) -> None:
    pols = policies()
    jobs = []
    for p, members, recruiters, strength, candidates, everywhere, weight, margin, seed in picks:
        market = small_market(members, recruiters)
        market = dataclasses.replace(
            market, platform_targeting=PlatformTargeting(True, strength, candidates, requires_threshold=not everywhere),
            sending=dataclasses.replace(market.sending, anticipation=Anticipation(True, weight, margin)))
        jobs.append(ReplicationJob(market, pols[p], RunConfig(start_date=dt.date(2014, 9, 1), horizon_days=40),
                                   replication_seed(seed, 0)))
    results = run_replications(jobs)
    assert_same(run_replication(jobs[0].market, jobs[0].policy, jobs[0].run, seed=jobs[0].seed), results[0])
    for result in results:
        m = result.metrics
        assert result.extra["credits_conserved"] == 1.0
        assert m["credits_granted"] == m["credits_spent"] - m["credits_refunded"] + m["credits_expired"] \
            + result.extra["final_balance"]
        for rate in ("response_rate", "acceptance_rate"):
            assert 0.0 <= m[rate] <= 1.0
            assert ((result.daily[rate] >= 0) & (result.daily[rate] <= 1)).all()
        for name in ("mean_personalization", "mean_bulk_share"):
            assert ((result.daily[name] >= 0) & (result.daily[name] <= 1)).all()
        assert m["sent"] == result.recruiters.sent.sum() == result.member_received.sum()
