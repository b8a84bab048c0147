"""Platform targeting: the platform surfaces members likely to respond (the product side of the 2014 programme).

Seed 004 lists "algorithmic changes to surface candidates who are most likely to respond to you"
among the product enhancements that came with the response-rate threshold.  For an InMail of a
seat it serves, with probability ``strength`` the platform shows ``candidates`` more members of the
recruiter's target segment and the best by static score among the current pick and those is kept.
It acts after the recruiter's own look (targeting skill), drawing from the targeting stream after
the existing draws, so with the mechanism off not one random number moves.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from simulator.core.config import PlatformTargeting, Threshold


def served_seats(targeting: PlatformTargeting, threshold: Threshold, subject: np.ndarray) -> np.ndarray:
    """Seats the platform steers for: those the enabled threshold reviews (``requires_threshold``), else all."""
    if not targeting.enabled or targeting.strength <= 0.0:
        return np.zeros(subject.size, dtype=bool)
    if targeting.requires_threshold:
        return subject & threshold.enabled
    return np.ones(subject.size, dtype=bool)


def platform_table(targeting: PlatformTargeting, threshold: Threshold, subject: np.ndarray) -> np.ndarray | None:
    """Per-(recruiter, kind) probability (index 2 r + k, float32) that an InMail is steered; None when none is."""
    served = served_seats(targeting, threshold, subject)
    if not served.any():
        return None
    return np.repeat(np.where(served, np.float32(targeting.strength), np.float32(0.0)).astype(np.float32), 2)


def surface(receiver: np.ndarray, rows: np.ndarray, start: np.ndarray, size: np.ndarray, steer: np.ndarray,
            rounds: int | np.ndarray, uniform: Callable[[np.ndarray], np.ndarray],
            gather: Callable[[np.ndarray], np.ndarray]) -> None:
    """Keep, for every steered InMail, the best by static score of its pick and the members the platform surfaces.

    ``receiver``/``rows``: member index and 16-byte member row of every InMail (changed in place);
    ``start``/``size``: its target range; ``steer``: indices of the steered InMails (sorted);
    ``rounds``: candidates per steered InMail (one count, or one per entry of ``steer``);
    ``uniform(idx)``: one float64 in [0, 1) per InMail ``idx`` from its targeting stream;
    ``gather(members)``: their rows.  One pass per candidate, none per message.
    """
    scalar = isinstance(rounds, int)
    top = int(rounds) if isinstance(rounds, int) else int(rounds.max(initial=0))
    for j in range(top):
        idx = steer if scalar else steer[np.asarray(rounds) > j]
        pick = start.take(idx) + (uniform(idx) * size.take(idx)).astype(np.int64)
        pick_rows = gather(pick)
        better = (pick_rows.view(np.float32)[0::4] > rows.view(np.float32).take(4 * idx)).nonzero()[0]
        swap = idx.take(better)
        receiver[swap] = pick.take(better)
        rows[swap] = pick_rows.take(better)
