"""Published figures as bands with uniform observation error, and how many replications a world needs.

Each calibration target (:class:`~simulator.experiments.calibration_spec.Target`) becomes a
:class:`Band`: a world is consistent with the figure when its simulated value (the mean over the
world's replications) lies in the band.  A band ``low..high`` is itself; a one-sided bound
``<= h`` is ``(-inf, h]`` with width ``|h|`` (a share bounded by 2% is the band 0..2%); a point
``value`` is ``value +- scale`` (its stated ``scale``, by default 5% of the value: what
``Target.met`` already calls meeting it).  The distance of a value is how far outside its band it
lies, in band widths (0 inside); a world's distance is the largest over the targets, so tolerance
0 means every figure is met.

A band is observed under a **setting** (a policy with its run settings; ``None``: the fitted
policy) or, for a comparison, as the paired change of a setting against a ``baseline`` setting,
per replication (common random numbers) - relative (``x / base - 1``) or a difference.
Validation figures (:class:`~simulator.experiments.calibration_spec.Check`) become bands too
(:meth:`Band.of_check`; kind ``none`` when no figure was published): predicted, never fitted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from simulator.experiments.calibration_spec import Check, Target, setting_name

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
    setting: str | None = None
    """The setting it is observed under (``None``: the fitted policy's)."""
    baseline: str | None = None
    """A comparison: the setting it is paired against, per replication."""
    relative: bool = True

    @property
    def column(self) -> str:
        """Its name among a world's target values: the observable key, or the figure's name when it is
        observed under another setting or is a comparison."""
        return self.key if self.setting is None and self.baseline is None else self.name

    @property
    def comparison(self) -> bool:
        return self.baseline is not None

    @classmethod
    def of(cls, target: Target) -> Band:
        kind = target.kind
        setting = None if target.policy is None else setting_name(target.scenario, target.policy)
        baseline = None if target.baseline is None else setting_name(target.scenario, target.baseline)
        where = (setting, baseline, target.relative)
        if kind == "point":
            assert target.value is not None
            half = target._scale()
            return cls(target.name, target.key, target.value - half, target.value + half, 2 * half, kind,
                       target.source, *where)
        if kind == "band":
            assert target.low is not None and target.high is not None
            return cls(target.name, target.key, target.low, target.high, target.high - target.low, kind,
                       target.source, *where)
        bound = target.high if target.high is not None else target.low
        assert bound is not None
        width = abs(bound) or 1.0
        low, high = (-math.inf, bound) if target.high is not None else (bound, math.inf)
        return cls(target.name, target.key, low, high, width, kind, target.source, *where)

    @classmethod
    def of_check(cls, check: Check) -> Band:
        """A validation figure as a band (kind ``none``, the whole line, when nothing was published)."""
        assert check.policy is not None and check.baseline is not None  # resolved by calibration_spec
        if check.low is None and check.high is None:
            low, high, width, kind = -math.inf, math.inf, 1.0, "none"
        elif check.low is not None and check.high is not None:
            low, high, width, kind = check.low, check.high, check.high - check.low, "band"
        else:
            bound = check.high if check.high is not None else check.low
            assert bound is not None
            low, high = (-math.inf, bound) if check.high is not None else (bound, math.inf)
            width, kind = abs(bound) or 1.0, "bound"
        return cls(check.name, check.metric, low, high, width, kind, check.source,
                   setting_name(check.scenario, check.policy), setting_name(check.scenario, check.baseline),
                   check.relative)

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
        if self.kind == "none":
            return "(prediction)"
        return f"<= {self.high:g}" if math.isfinite(self.high) else f">= {self.low:g}"


def bands_of(targets: Sequence[Target]) -> tuple[Band, ...]:
    return tuple(Band.of(t) for t in targets)


def world_distance(bands: Sequence[Band], means: Mapping[str, float]) -> float:
    """A world's distance: the largest band distance of its target means (keyed by :attr:`Band.column`;
    NaN counts as infinitely far)."""
    out = 0.0
    for band in bands:
        x = means.get(band.column, math.nan)
        out = max(out, math.inf if not math.isfinite(x) else float(band.distance(x)))
    return out


def replications_needed(bands: Sequence[Band], sds: Mapping[str, float]) -> int:
    """The rule: the smallest R with ``sd / sqrt(R) <= SE_SHARE_OF_WIDTH x width`` for every target,
    within [MIN_REPLICATIONS, MAX_REPLICATIONS]; ``sds`` are single-replication standard deviations."""
    need = MIN_REPLICATIONS
    for band in bands:
        sd = sds.get(band.column, 0.0)
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
        x = first.get(band.column, math.nan)
        if not math.isfinite(x):
            return True
        if float(band.excess(x)) > tolerance * band.width + EARLY_Z * sds.get(band.column, math.inf):
            return True
    return False
