"""Invariants of every replication inside a batch (hypothesis over batch composition and seeds)."""

from __future__ import annotations

import datetime as dt

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.core.batch import ReplicationJob, run_replications
from simulator.core.config import RunConfig
from simulator.core.engine import run_replication
from simulator.core.seeding import replication_seed
from simulator.scenario.uncertain import set_market_fields

from .test_batch import assert_same, policies, small_market

RATES = ("response_rate", "acceptance_rate")


@settings(max_examples=8, deadline=None)
@given(picks=st.lists(st.tuples(st.integers(0, 7), st.integers(400, 1500), st.integers(8, 30),
                                st.floats(0.05, 0.5), st.integers(0, 2**31), st.integers(0, 60)),
                      min_size=2, max_size=4),
       start=st.dates(dt.date(2014, 11, 1), dt.date(2015, 3, 1)))
def test_every_replication_of_a_batch_conserves_credits_and_stays_in_range(
        picks: list[tuple[int, int, int, float, int, int]], start: dt.date) -> None:
    pols = policies()
    jobs = [ReplicationJob(set_market_fields(small_market(members, recruiters),
                                             {"market.members.segments.warm.base_response": base}),
                           pols[p], RunConfig(start_date=start + dt.timedelta(days=shift), horizon_days=45),
                           replication_seed(seed, 0))
            for p, members, recruiters, base, seed, shift in picks]
    results = run_replications(jobs)
    assert_same(run_replication(jobs[-1].market, jobs[-1].policy, jobs[-1].run, seed=jobs[-1].seed), results[-1])
    for result in results:
        m = result.metrics
        assert result.extra["credits_conserved"] == 1.0
        assert m["credits_granted"] == m["credits_spent"] - m["credits_refunded"] + m["credits_expired"] \
            + result.extra["final_balance"]
        assert all(value >= 0 for key, value in m.items() if key != "net_credit_burn"), m
        for rate in RATES:
            assert 0.0 <= m[rate] <= 1.0
            assert ((result.daily[rate] >= 0) & (result.daily[rate] <= 1)).all()
        assert (result.daily["balance"] >= 0).all()
        assert (result.member_received >= 0).all() and (result.member_unanswered >= 0).all()
        assert np.array_equal(result.recruiters.credits_spent, result.recruiters.sent)
        assert m["sent"] == result.recruiters.sent.sum() == result.daily["sent"].sum()
