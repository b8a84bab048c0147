"""Determinism and common random numbers: same seed, same numbers; same seed, same market for every policy."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pytest

from simulator import Market, MemberPopulation, RecruiterGroup, RunConfig, preset, run_replication
from simulator.core.engine import Simulation
from simulator.core.metrics import ReplicationResult
from simulator.core.seeding import replication_seed, streams

MARKET = Market(
    members=MemberPopulation(count=3000),
    recruiters=(RecruiterGroup("corp", 30, team_size=3),
                RecruiterGroup("lite", 10, seat_type="recruiter_lite", behaviour="fixed")),
)
RUN = RunConfig(start_date=dt.date(2014, 12, 1), horizon_days=75)


def assert_identical(a: ReplicationResult, b: ReplicationResult) -> None:
    """Every metric, daily series, per-recruiter tally and extra equal, bit for bit."""
    assert a.metrics == b.metrics
    assert a.extra == b.extra
    assert a.daily.keys() == b.daily.keys()
    for k in a.daily:
        np.testing.assert_array_equal(a.daily[k], b.daily[k], err_msg=k)
    for f in dataclasses.fields(a.recruiters):
        np.testing.assert_array_equal(getattr(a.recruiters, f.name), getattr(b.recruiters, f.name), err_msg=f.name)
    np.testing.assert_array_equal(a.member_received, b.member_received)
    np.testing.assert_array_equal(a.member_unanswered, b.member_unanswered)


@pytest.mark.parametrize("name", ["old_2014", "new_2015", "transition_2015"])
def test_same_seed_same_results(name: str) -> None:
    a = run_replication(MARKET, preset(name), RUN, seed=123)
    b = run_replication(MARKET, preset(name), RUN, seed=123)
    assert a.metrics["sent"] > 0 and a.metrics["responses"] > 0
    assert_identical(a, b)


def test_different_seed_different_results() -> None:
    """The seed matters (guards against a seed that is silently ignored)."""
    a = run_replication(MARKET, preset("new_2015"), RUN, seed=1)
    b = run_replication(MARKET, preset("new_2015"), RUN, seed=2)
    assert a.metrics != b.metrics


def snapshot(sim: Simulation) -> dict[str, np.ndarray]:
    """The member and recruiter arrays of a Simulation that has not run yet."""
    arrays: dict[str, np.ndarray] = {}
    for prefix, obj in (("members", sim.members), ("rec", sim.rec)):
        for f in dataclasses.fields(obj):
            v = getattr(obj, f.name)
            if isinstance(v, np.ndarray):
                arrays[f"{prefix}.{f.name}"] = v.copy()
    return arrays


def test_two_policies_one_seed_same_population() -> None:
    """Common random numbers: old and new policy draw the same members and recruiters."""
    sims = [Simulation(MARKET, preset(name), RUN, streams(77)) for name in ("old_2014", "new_2015")]
    a, b = (snapshot(s) for s in sims)
    assert a.keys() == b.keys()
    expected = {"members.logit", "members.check_prob", "members.openness", "rec.vol0", "rec.pers0", "rec.segment"}
    assert expected <= a.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    other = snapshot(Simulation(MARKET, preset("old_2014"), RUN, streams(78)))
    assert not np.array_equal(a["members.logit"], other["members.logit"])
    assert not np.array_equal(a["rec.vol0"], other["rec.vol0"])


def test_population_does_not_depend_on_the_run_calendar() -> None:
    """The market is drawn before anything policy- or calendar-specific happens."""
    a = snapshot(Simulation(MARKET, preset("old_2014"), RUN, streams(5)))
    b = snapshot(Simulation(MARKET, preset("new_2015"), RunConfig(horizon_days=10), streams(5)))
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_replication_seed_is_reproducible() -> None:
    """replication_seed(root, i) gives the same streams when called twice, different ones across i."""
    s1, s2 = streams(replication_seed(2015, 3)), streams(replication_seed(2015, 3))
    other = streams(replication_seed(2015, 4))
    for name in ("members", "recruiters", "sending", "targeting", "outcomes"):
        x, y, z = (getattr(s, name).random(5) for s in (s1, s2, other))
        np.testing.assert_array_equal(x, y)
        assert not np.array_equal(x, z)
    assert s1.spawn_key == (3,) and s1.seed_entropy == 2015
    with pytest.raises(ValueError):
        replication_seed(2015, -1)


def test_mechanism_streams_are_distinct() -> None:
    s = streams(9)
    draws = [getattr(s, name).random(4).tolist() for name in ("members", "recruiters", "sending", "targeting",
                                                              "outcomes")]
    assert len({tuple(d) for d in draws}) == len(draws)


def test_same_seed_sequence_object_twice() -> None:
    """Passing one SeedSequence object twice (once per policy) gives identical results: no hidden spawn state."""
    ss = replication_seed(42, 0)
    a = run_replication(MARKET, preset("old_2014"), RUN, seed=ss)
    b = run_replication(MARKET, preset("old_2014"), RUN, seed=ss)
    assert_identical(a, b)
    c = run_replication(MARKET, preset("old_2014"), RUN, seed=replication_seed(42, 0))
    assert_identical(a, c)
    assert a.spawn_key == (0,)


def test_seed_sequence_and_policies_share_the_market() -> None:
    """Across policies with one SeedSequence the members draw the same population (CRN at the result level)."""
    ss = replication_seed(42, 1)
    a = run_replication(MARKET, preset("old_2014"), RUN, seed=ss)
    b = run_replication(MARKET, preset("new_2015"), RUN, seed=ss)
    assert a.extra["active_members"] == b.extra["active_members"]
    assert a.seed_entropy == b.seed_entropy and a.spawn_key == b.spawn_key
    assert a.metrics != b.metrics


def test_record_daily_off_changes_nothing_else() -> None:
    """RunConfig.record_daily=False drops the daily series and nothing more."""
    a = run_replication(MARKET, preset("new_2015"), RUN, seed=31)
    b = run_replication(MARKET, preset("new_2015"), dataclasses.replace(RUN, record_daily=False), seed=31)
    assert b.daily == {}
    assert a.metrics == b.metrics and a.extra == b.extra
