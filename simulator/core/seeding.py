"""Root seed -> independent random streams, one per replication and per mechanism.

Replication ``i`` of every policy gets the same streams (common random numbers), and each
mechanism draws from its own stream so that a change in one (say, more sends) does not shift
the numbers another (say, the member population) sees.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MECHANISMS: tuple[str, ...] = ("members", "recruiters", "sending", "targeting", "outcomes")
"""Stream names, in spawn order (never reorder: it would change every number)."""


@dataclass(frozen=True)
class Streams:
    """One ``numpy.random.Generator`` per mechanism for one replication."""

    members: np.random.Generator
    recruiters: np.random.Generator
    sending: np.random.Generator
    targeting: np.random.Generator
    outcomes: np.random.Generator
    seed_entropy: int
    spawn_key: tuple[int, ...]


def replication_seed(root_seed: int, index: int) -> np.random.SeedSequence:
    """The seed sequence of replication ``index``: child ``index`` of the root (same for every policy)."""
    if index < 0:
        raise ValueError(f"replication index must be >= 0, got {index}")
    return np.random.SeedSequence(root_seed, spawn_key=(index,))


def streams(seed: int | np.random.SeedSequence) -> Streams:
    """Per-mechanism generators from an integer seed or a replication's ``SeedSequence``."""
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    # children built from (entropy, spawn_key) rather than ss.spawn(): spawn() is stateful, and the
    # same SeedSequence passed twice (once per policy) must give the same streams
    children = [np.random.SeedSequence(ss.entropy, spawn_key=(*ss.spawn_key, k)) for k in range(len(MECHANISMS))]
    members, recruiters, sending, targeting, outcomes = (np.random.Generator(np.random.PCG64(child))
                                                         for child in children)  # in MECHANISMS order
    entropy = ss.entropy
    if not isinstance(entropy, int | np.integer):
        raise TypeError(f"a seed's entropy must be one integer, got {entropy!r}")
    return Streams(members=members, recruiters=recruiters, sending=sending, targeting=targeting, outcomes=outcomes,
                   seed_entropy=int(entropy), spawn_key=tuple(ss.spawn_key))
