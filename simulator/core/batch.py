"""Many replications in one pass: the entry point studies call to run a batch of replications.

A :class:`ReplicationJob` is everything one replication needs (market, policy, calendar, seed).
:func:`run_replications` returns one :class:`ReplicationResult` per job, in order, each
bit-identical to ``run_replication`` of that job alone, whatever the batch it is in: jobs with
the same horizon (and all adapting, or none) run together in passes of one
:class:`~simulator.core.batch_engine.BatchSimulation`, the others in passes of their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from simulator.core.batch_engine import BatchSimulation
from simulator.core.config import Market, Policy, RunConfig
from simulator.core.engine import Simulation
from simulator.core.metrics import ReplicationResult
from simulator.core.seeding import streams

BATCH_CELLS = 8 * 100_000 * 1_000
"""An automatic batch holds about as many members x recruiters as eight medium replications (100,000 x 1,000):
8 replications at 1,000 x 100,000 ran 1.27-1.30x faster in one batch than one at a time, and a large
market (10,000 x 1,000,000) runs alone (benchmarks/README.md)."""

MAX_AUTO_BATCH = 64
"""The largest automatic batch: at 100 x 10,000 a batch of 64 ran 3.97x one at a time against 3.48x for 32
(benchmarks/README.md); beyond it the per-day overhead is already small."""

PASS_REPLICATIONS = 128
"""Replications one pass of the batched engine holds at most (with :data:`PASS_MEMBERS`): a larger
batch asked for (``--batch 64``, or ``run_replications`` of many jobs) still runs as one pass - at
100 x 10,000 a pass of 64 ran 5-8% faster than two of 32 (benchmarks/README.md)."""


def default_batch(cells: int) -> int:
    """Replications per batch for ``cells`` members x recruiters (8 at 1,000 x 100,000; 1 from 10,000 x 100,000 up)."""
    if cells <= 0:
        return 1
    return max(1, min(MAX_AUTO_BATCH, BATCH_CELLS // cells))


@dataclass(frozen=True)
class ReplicationJob:
    """One replication to run: ``policy`` on ``market`` over ``run``, with the streams of ``seed``."""

    market: Market
    policy: Policy
    run: RunConfig
    seed: int | np.random.SeedSequence


PASS_MEMBERS = 999_999
"""Members one pass of the batched engine holds at most (in replications of at least one each): a
batch's InMails gather from the stacked member table at random, and past about a million members
it no longer stays in cache - at 10,000 x 1,000,000 a pass of 8 ran at 0.77x the speed of one at a
time (benchmarks/README.md), so larger jobs run a replication per pass."""


def _group(job: ReplicationJob) -> tuple[int, bool]:
    """What replications of one pass share: the horizon, and whether they adapt."""
    market = job.market
    adapting = market.sending.adaptation.enabled and any(
        group.behaviour == "adaptive" and group.count > 0 for group in market.recruiters)
    return job.run.horizon_days, adapting


def _passes(indices: list[int], jobs: Sequence[ReplicationJob]) -> list[list[int]]:
    """``indices`` in order, cut into passes of at most :data:`PASS_MEMBERS` members (one job at least)."""
    passes: list[list[int]] = []
    members = 0
    for i in indices:
        size = jobs[i].market.members.count
        if passes and len(passes[-1]) < PASS_REPLICATIONS and members + size <= PASS_MEMBERS:
            passes[-1].append(i)
            members += size
        else:
            passes.append([i])
            members = size
    return passes


def run_replications(jobs: Sequence[ReplicationJob]) -> list[ReplicationResult]:
    """Run ``jobs`` (any mix of policies, markets and seeds) and return their results in order.

    Jobs with the same horizon (and all adapting, or none) share passes of the batched engine,
    in job order, up to :data:`PASS_MEMBERS` members and :data:`PASS_REPLICATIONS` replications a pass;
    the replications of one pass are set up just before it runs.
    """
    groups: dict[tuple[int, bool], list[int]] = {}
    for i, job in enumerate(jobs):
        groups.setdefault(_group(job), []).append(i)
    results: list[ReplicationResult | None] = [None] * len(jobs)
    for indices in groups.values():
        for members in _passes(indices, jobs):
            sims = [Simulation(jobs[i].market, jobs[i].policy, jobs[i].run, streams(jobs[i].seed)) for i in members]
            done = [sims[0].execute()] if len(sims) == 1 else BatchSimulation(sims).execute()
            for i, result in zip(members, done, strict=True):
                results[i] = result
    return [r for r in results if r is not None]
