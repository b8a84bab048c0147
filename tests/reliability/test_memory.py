"""The memory estimate: linear in members, recruiters x days and workers; close to a measured peak; refusals."""

from __future__ import annotations

import dataclasses
import tracemalloc

import pytest

from simulator.core.engine import DAILY_SERIES
from simulator.experiments.experiment import run_experiment
from simulator.experiments.replication import replication_record
from simulator.scenario import Scenario, load_scenario
from simulator.scenario.memory import (
    BYTES_PER_MEMBER,
    DAILY_SERIES_COUNT,
    LIMIT_ENV,
    PROCESS_OVERHEAD,
    MemoryLimitError,
    available_memory,
    check_memory,
    estimate,
    memory_limit,
    parse_size,
    replication_bytes,
)

from .helpers import tiny


def scenario(members: int = 1500, recruiters: int = 24, horizon: int = 40) -> Scenario:
    return load_scenario(tiny(), {"market.members.count": members, "market.recruiters.corporate.count": recruiters,
                                  "horizon_days": horizon})


def test_estimate_is_linear_in_members_and_in_recruiter_days() -> None:
    base = scenario()
    p = base.policies["new"]
    b0 = replication_bytes(base.market, p, base.run)
    more_members = scenario(members=101_500)
    assert replication_bytes(more_members.market, p, more_members.run) - b0 == 100_000 * BYTES_PER_MEMBER
    r1, r2, r3 = (replication_bytes(s.market, p, s.run) for s in (scenario(recruiters=100), scenario(recruiters=200),
                                                                  scenario(recruiters=300)))
    assert r2 - r1 == pytest.approx(r3 - r2, abs=2) and r2 > r1
    h1, h2, h3 = (replication_bytes(s.market, p, s.run) for s in (scenario(horizon=100), scenario(horizon=200),
                                                                  scenario(horizon=300)))
    assert h2 - h1 == pytest.approx(h3 - h2, abs=2) and h2 > h1


def test_estimate_is_above_the_measured_peak_but_not_far_above() -> None:
    """One replication of 'new' (refund and threshold calendars), measured with tracemalloc (numpy reports to it)."""
    sc = scenario(members=300_000, recruiters=400, horizon=120)
    pol = sc.policies["new"]
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        replication_record(sc.market, pol, sc.run, sc.root_seed, 0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    est = replication_bytes(sc.market, pol, sc.run)
    assert peak <= est <= 2.0 * peak + 4 * 2**20, (peak, est)


def test_workers_multiply_the_replication_and_results_grow_with_replications() -> None:
    sc = scenario()
    one, two = estimate(sc, 1), estimate(sc, 2)
    assert two.total - one.total == one.per_replication + PROCESS_OVERHEAD
    assert estimate(sc, 1, replications=40).results == 2 * estimate(sc, 1, replications=20).results
    no_ts = dataclasses.replace(sc, run=dataclasses.replace(sc.run, record_daily=False))
    series = estimate(sc, 1, replications=40).results - estimate(no_ts, 1, replications=40).results
    # by hand: 40 replications x 2 policies x 21 daily series x 40 days x 48 bytes (a float64 in the
    # worker's result + five 8-byte columns of the parent's tidy frame)
    assert sc.run.horizon_days == 40 and len(sc.policies) == 2
    assert series == 40 * 2 * 21 * 40 * 48 == 3_225_600


def test_series_count_is_the_engines() -> None:
    """The estimate's count of daily series is the number the engine records."""
    assert len(DAILY_SERIES) == DAILY_SERIES_COUNT


def test_series_estimate_covers_what_a_small_run_really_holds() -> None:
    """Measured, not recomputed: the daily values a 2-replication run returns and the tidy frame built from them."""
    sc = scenario(horizon=20)
    res = run_experiment(sc, replications=2)
    record = replication_record(sc.market, sc.policies["new"], sc.run, sc.root_seed, 0)  # what a worker sends back
    assert len(record.daily) == DAILY_SERIES_COUNT
    assert all(v.shape == (sc.run.horizon_days,) for v in record.daily.values())
    ts = res.timeseries
    assert ts["metric"].nunique() == DAILY_SERIES_COUNT and ts["day"].nunique() == sc.run.horizon_days
    worker_bytes = len(ts) * record.daily["sent"].itemsize    # each value arrives as one float64
    frame_bytes = int(ts.memory_usage(index=False, deep=False).sum())
    measured = worker_bytes + frame_bytes
    no_ts = dataclasses.replace(sc, run=dataclasses.replace(sc.run, record_daily=False))
    series = estimate(sc, 1, replications=2).results - estimate(no_ts, 1, replications=2).results
    assert measured <= series <= 1.5 * measured, (measured, series)


def test_refusal_names_the_estimate_and_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    sc = scenario(members=1_000_000)
    est = check_memory(sc, concurrent=1, limit=10 * 2**30)
    assert est.total < 10 * 2**30
    with pytest.raises(MemoryLimitError) as info:
        check_memory(sc, concurrent=4, limit=200 * 2**20)
    text = info.value.render()
    assert text.startswith("scenario too large for this machine:")
    assert "the limit is 200 MiB (the given limit)" in text and "x 4 at once" in text and "1,000,000 members" in text
    monkeypatch.setenv(LIMIT_ENV, "1G")
    assert memory_limit() == (2**30, f"{LIMIT_ENV}=1G")
    monkeypatch.setenv(LIMIT_ENV, "lots")
    with pytest.raises(MemoryLimitError.__mro__[1]):  # a ScenarioError: exit code 2
        memory_limit()


def test_parse_size_and_available_memory() -> None:
    assert parse_size("512M") == 512 * 2**20 and parse_size("2GiB") == 2 * 2**30 and parse_size("1000") == 1000
    assert parse_size("1.5k") == 1536
    for bad in ("", "-1G", "nanG", "x"):
        with pytest.raises(ValueError):
            parse_size(bad)
    avail = available_memory()
    assert avail is None or avail > 2**20
