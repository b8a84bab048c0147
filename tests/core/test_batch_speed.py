"""The batch's shortcuts give the same numbers as the paths they replace.

Exact checks: the daily stream reset by direct state writes against ``state =`` plus ``advance``;
the batch's fatigue clocks through a rescale (a half-life short enough for the scale to fall below
``1 / RESCALE_AT`` inside the horizon) and with different decays in one batch, against each
replication run alone.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from simulator import Market
from simulator.core import presets
from simulator.core.batch import ReplicationJob
from simulator.core.batch_streams import DayStreams, advance_terms
from simulator.core.config import Fatigue
from tests.core.test_batch import RUN, check_batch, small_market


def streams_at(seeds: list[int]) -> list[np.random.PCG64]:
    return [np.random.PCG64(seed) for seed in seeds]


@pytest.mark.parametrize("day", [0, 1, 2, 57, 364, 1000])
def test_day_reset_writes_the_state_advance_gives(day: int) -> None:
    bit_generators = streams_at([1, 2, 3])
    pairs = [(bg, bg.state) for bg in bit_generators]
    reset = DayStreams(pairs)
    assert reset.fast  # this numpy's PCG64 layout is the expected one (else the check falls back)
    for bg in bit_generators:  # leave a buffered 32-bit half and move the streams on
        np.random.Generator(bg).random(7, dtype=np.float32)
    reset.reset(day)
    for bg, (_, state) in zip(bit_generators, pairs, strict=True):
        expected = np.random.PCG64(0)
        expected.state = state
        expected.advance(day << 64)
        assert bg.state == expected.state
        assert bg.state["has_uint32"] == 0


def test_day_reset_draws_the_same_numbers_on_the_slow_path() -> None:
    fast_bg, slow_bg = streams_at([9]), streams_at([9])
    fast = DayStreams([(bg, bg.state) for bg in fast_bg])
    slow = DayStreams([(bg, bg.state) for bg in slow_bg])
    slow.fast = False
    for day in (3, 4, 10):
        fast.reset(day)
        slow.reset(day)
        a = np.random.Generator(fast_bg[0]).random(5, dtype=np.float32)
        b = np.random.Generator(slow_bg[0]).random(5, dtype=np.float32)
        assert np.array_equal(a, b)


def test_advance_terms_compose_like_the_lcg() -> None:
    a1, c1 = advance_terms(1)
    assert (a1, c1) == (0x2360ED051FC65DA44385DF649FCCF645, 1)
    a2, c2 = advance_terms(2)
    mask = (1 << 128) - 1
    assert (a2, c2) == ((a1 * a1) & mask, (a1 * c1 + c1) & mask)


def with_fatigue(market: Market, **fields: object) -> Market:
    return dataclasses.replace(market, fatigue=dataclasses.replace(market.fatigue, **fields))


def test_fatigue_clocks_rescale_and_differ_within_a_batch() -> None:
    base = small_market(members=800, recruiters=24)
    fast_decay = with_fatigue(base, half_life_days=0.5)  # scale 2**-2d: below 1e-30 from day 50 of 75
    unequal = with_fatigue(base, half_life_days=3.0, weight_bulk=2.0, weight_personalized=0.5)
    off = with_fatigue(base, enabled=False)
    assert isinstance(base.fatigue, Fatigue)
    new, old = presets.new_2015(), presets.old_2014()
    check_batch([ReplicationJob(fast_decay, new, RUN, 1), ReplicationJob(base, old, RUN, 2),
                 ReplicationJob(unequal, new, RUN, 3), ReplicationJob(off, old, RUN, 4),
                 ReplicationJob(fast_decay, old, RUN, 5)])


@pytest.mark.parametrize("n", [0, 1, 7, 500, 3000])
def test_group_rank_is_the_position_within_each_run(n: int) -> None:
    from simulator.core.ledger import group_rank

    keys = np.sort(np.random.default_rng(n).integers(0, 20, n))
    assert np.array_equal(group_rank(keys), np.arange(n) - np.searchsorted(keys, keys))
