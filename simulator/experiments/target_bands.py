"""Published figures as bands with uniform observation error, and how many replications a world needs.

Each calibration target (:class:`~simulator.experiments.calibration_spec.Target`) becomes a
:class:`Band`: a world is consistent with the figure when its simulated value (the mean over the
world's replications) lies in the band.  A band ``low..high`` is itself; a one-sided bound
``<= h`` is ``(-inf, h]`` with width ``|h|`` (a share bounded by 2% is the band 0..2%); a point
``value`` is ``value +- scale`` (its stated ``scale``, by default 5% of the value: what
``Target.met`` already calls meeting it).  The distance of a value is how far outside its band it
lies, in band widths (0 inside); a world's distance is the largest over the targets, so tolerance
0 means every figure is met.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from simulator.experiments.calibration_spec import Target

SE_SHARE_OF_WIDTH = 0.25
"""Replications per world: enough that the standard error of each target's world mean is at most a
quarter of its band width (estimated from a pilot), so Monte Carlo noise moves a world across a
band edge only when it sits within a fraction of a width from it."""
MIN_REPLICATIONS, MAX_REPLICATIONS = 2, 32
EARLY_Z = 3.0
"""Early rejection: a world whose first replication is further outside a band than the tolerance
plus this many single-replication standard deviations is not simulated further."""


@dataclass(frozen=True)
class Band:
    """One target as a band ``[low, high]`` (``-inf``/``inf`` for a one-sided bound) and its width."""

    name: str
    key: str
    low: float
    high: float
    width: float
    kind: str
    source: str = ""

    @classmethod
    def of(cls, target: Target) -> Band:
        kind = target.kind
        if kind == "point":
            assert target.value is not None
            half = target._scale()
            return cls(target.name, target.key, target.value - half, target.value + half, 2 * half, kind,
                       target.source)
        if kind == "band":
            assert target.low is not None and target.high is not None
            return cls(target.name, target.key, target.low, target.high, target.high - target.low, kind,
                       target.source)
        bound = target.high if target.high is not None else target.low
        assert bound is not None
        width = abs(bound) or 1.0
        low, high = (-math.inf, bound) if target.high is not None else (bound, math.inf)
        return cls(target.name, target.key, low, high, width, kind, target.source)

    def excess(self, x: np.ndarray | float) -> np.ndarray:
        """How far outside the band ``x`` lies (0 inside), in the observable's units."""
        x = np.asarray(x, dtype=np.float64)
        return np.maximum(0.0, np.maximum(self.low - x, x - self.high))

    def distance(self, x: np.ndarray | float) -> np.ndarray:
        """How far outside the band, in band widths (0 inside)."""
        return self.excess(x) / self.width

    def inside(self, x: np.ndarray | float) -> np.ndarray:
        return self.excess(x) == 0.0

    def describe(self) -> str:
        if self.kind == "band":
            return f"{self.low:.4g} .. {self.high:.4g}"
        if self.kind == "point":
            return f"{0.5 * (self.low + self.high):.4g} +- {0.5 * self.width:.4g}"
        return f"<= {self.high:g}" if math.isfinite(self.high) else f">= {self.low:g}"


def bands_of(targets: Sequence[Target]) -> tuple[Band, ...]:
    return tuple(Band.of(t) for t in targets)


def world_distance(bands: Sequence[Band], means: Mapping[str, float]) -> float:
    """A world's distance: the largest band distance of its target means (NaN counts as infinitely far)."""
    out = 0.0
    for band in bands:
        x = means.get(band.key, math.nan)
        out = max(out, math.inf if not math.isfinite(x) else float(band.distance(x)))
    return out


def replications_needed(bands: Sequence[Band], sds: Mapping[str, float]) -> int:
    """The rule: the smallest R with ``sd / sqrt(R) <= SE_SHARE_OF_WIDTH x width`` for every target,
    within [MIN_REPLICATIONS, MAX_REPLICATIONS]; ``sds`` are single-replication standard deviations."""
    need = MIN_REPLICATIONS
    for band in bands:
        sd = sds.get(band.key, 0.0)
        if math.isfinite(sd) and sd > 0:
            need = max(need, math.ceil((sd / (SE_SHARE_OF_WIDTH * band.width)) ** 2))
    return min(need, MAX_REPLICATIONS)


def pooled_sd(rows_by_world: Sequence[np.ndarray]) -> np.ndarray:
    """Within-world standard deviation of each column, pooled over worlds (each a replications x keys array)."""
    num = np.zeros(rows_by_world[0].shape[1])
    dof = 0
    for rows in rows_by_world:
        if len(rows) > 1:
            num += np.nansum((rows - np.nanmean(rows, axis=0)) ** 2, axis=0)
            dof += len(rows) - 1
    return np.sqrt(num / max(dof, 1))


def early_reject(bands: Sequence[Band], first: Mapping[str, float], sds: Mapping[str, float],
                 tolerance: float) -> bool:
    """Whether a world's first replication is already far outside a band (see :data:`EARLY_Z`)."""
    for band in bands:
        x = first.get(band.key, math.nan)
        if not math.isfinite(x):
            return True
        if float(band.excess(x)) > tolerance * band.width + EARLY_Z * sds.get(band.key, math.inf):
            return True
    return False
