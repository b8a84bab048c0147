"""Anticipation: adaptive recruiters react to the published response-rate threshold before any warning.

Seed 004: the 2014 rule (13% on 100+ InMails in 14 days) is published and each recruiter sees
their own response rate on the InMail Analytics page, so a recruiter near the bar feels pressure
before the review warns them.  For every seat the policy's enabled threshold reviews,

    P_ant = weight * closeness * exposure
    closeness = clip((bar * (1 + margin) - r) / (bar * margin), 0, 1),  exposure = clip(n / min_sends, 0, 1)

with r = responses / sends and n = sends in the threshold's own review window
(:class:`~simulator.core.threshold.ThresholdBook`).  P_ant is added to the adaptation pressure
before its final clip to 1 (:func:`~simulator.core.recruiters.pressure`).  Everything is an array
over seats, so one replication and a batch of them run the same element-by-element arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.core.config import Anticipation, Threshold


@dataclass(frozen=True)
class AnticipationTerms:
    """Per-seat constants of the anticipation pressure (float64 arrays over seats)."""

    weight: np.ndarray     # Anticipation.weight on seats the threshold reviews, 0 elsewhere
    top: np.ndarray        # bar * (1 + margin): the rate from which pressure starts
    span: np.ndarray       # bar * margin: the distance over which it rises to full (0: never)
    min_sends: np.ndarray  # the threshold's min_sends: full exposure from there on

    @classmethod
    def of(cls, anticipation: Anticipation, threshold: Threshold, subject: np.ndarray) -> AnticipationTerms | None:
        """One replication's terms (``subject``: bool per seat, its type is reviewed); None when no seat feels any."""
        reviewed = subject & threshold.enabled & anticipation.enabled
        if anticipation.weight <= 0.0 or not reviewed.any():
            return None
        n = subject.size
        bar, margin = threshold.min_rate, anticipation.margin
        return cls(weight=np.where(reviewed, anticipation.weight, 0.0),
                   top=np.full(n, bar * (1.0 + margin)), span=np.full(n, bar * margin),
                   min_sends=np.full(n, float(threshold.min_sends)))

    @classmethod
    def stack(cls, terms: list[AnticipationTerms | None], counts: np.ndarray) -> AnticipationTerms | None:
        """A batch's terms (replication ``i`` has ``counts[i]`` seats); zero weight where a replication has none."""
        if all(t is None for t in terms):
            return None

        def column(name: str, empty: float) -> np.ndarray:
            return np.concatenate([np.full(int(c), empty) if t is None else getattr(t, name)
                                   for t, c in zip(terms, counts, strict=True)])

        return cls(weight=column("weight", 0.0), top=column("top", 0.0), span=column("span", 0.0),
                   min_sends=column("min_sends", 1.0))


def anticipation_pressure(terms: AnticipationTerms, win_sends: np.ndarray, win_resp: np.ndarray) -> np.ndarray:
    """P_ant of every seat from its sends and responses in the review window (0 where nobody reviews it)."""
    n = win_sends.astype(np.float64)
    rate = np.divide(win_resp, n, out=np.zeros(n.size), where=n > 0)
    gap = np.subtract(terms.top, rate)
    closeness = np.divide(gap, terms.span, out=np.zeros(n.size), where=terms.span > 0)
    np.clip(closeness, 0.0, 1.0, out=closeness)
    exposure = np.divide(n, terms.min_sends, out=n)
    np.minimum(exposure, 1.0, out=exposure)
    closeness *= exposure
    closeness *= terms.weight
    return closeness
