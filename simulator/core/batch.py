"""Many replications in one pass: the entry point studies call to run a batch of replications.

A :class:`ReplicationJob` is everything one replication needs (market, policy, calendar, seed).
:func:`run_replications` returns one :class:`ReplicationResult` per job, in order, each
bit-identical to ``run_replication`` of that job alone, whatever the batch it is in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from simulator.core.config import Market, Policy, RunConfig
from simulator.core.engine import run_replication
from simulator.core.metrics import ReplicationResult


@dataclass(frozen=True)
class ReplicationJob:
    """One replication to run: ``policy`` on ``market`` over ``run``, with the streams of ``seed``."""

    market: Market
    policy: Policy
    run: RunConfig
    seed: int | np.random.SeedSequence


def run_replications(jobs: Sequence[ReplicationJob]) -> list[ReplicationResult]:
    """Run ``jobs`` (any mix of policies, markets and seeds) and return their results in order."""
    return [run_replication(job.market, job.policy, job.run, seed=job.seed) for job in jobs]
