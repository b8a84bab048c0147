"""Many replications in one pass: the entry point studies call to run a batch of replications.

A :class:`ReplicationJob` is everything one replication needs (market, policy, calendar, seed).
:func:`run_replications` returns one :class:`ReplicationResult` per job, in order, each
bit-identical to ``run_replication`` of that job alone, whatever the batch it is in: jobs with
the same horizon (and all adapting, or none) run together in one
:class:`~simulator.core.batch_engine.BatchSimulation`, the others in batches of their own.
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

BATCH_CELLS = 100_000 * 1_000
"""An automatic batch holds about as many members x recruiters as one medium replication (100,000 x 1,000)."""

MAX_AUTO_BATCH = 32
"""The largest automatic batch: beyond it the per-day overhead is already small (benchmarks/README.md)."""


def default_batch(cells: int) -> int:
    """Replications per batch for a market of ``cells`` members x recruiters (1 from a medium market up)."""
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


def _group(sim: Simulation) -> tuple[int, bool]:
    """What replications of one batch share: the horizon, and whether they adapt."""
    adapting = sim.market.sending.adaptation.enabled and bool(sim.rec.adaptive.any())
    return sim.horizon, adapting


def run_replications(jobs: Sequence[ReplicationJob]) -> list[ReplicationResult]:
    """Run ``jobs`` (any mix of policies, markets and seeds) and return their results in order."""
    sims = [Simulation(job.market, job.policy, job.run, streams(job.seed)) for job in jobs]
    if len(sims) == 1:
        return [sims[0].execute()]
    groups: dict[tuple[int, bool], list[int]] = {}
    for i, sim in enumerate(sims):
        groups.setdefault(_group(sim), []).append(i)
    results: list[ReplicationResult | None] = [None] * len(sims)
    for members in groups.values():
        if len(members) == 1:
            results[members[0]] = sims[members[0]].execute()
            continue
        for i, result in zip(members, BatchSimulation([sims[i] for i in members]).execute(), strict=True):
            results[i] = result
    return [r for r in results if r is not None]
