"""The published figures a calibration reproduces (:class:`Target`) or predicts (:class:`Check`).

A target is an observable of one replication (:mod:`simulator.experiments.observation`) with a
point ``value``, a band ``low..high`` or a one-sided bound; by default the figures of POLICY_FACTS
section 5 (:data:`DEFAULT_TARGETS`).  Either may be a policy comparison observed under a
**setting** - a (run settings, policy) pair of this scenario or of another file
(:func:`setting_name`) - always with the calibrated world's market.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from simulator.experiments.observation import SEGMENT_KEY, observable_key

BOUND_Z = 1.645
"""A one-sided bound must hold at the one-sided 95% confidence limit of the fitting mean."""


@dataclass(frozen=True)
class Target:
    """A figure to reproduce: a point ``value``, a band ``[low, high]`` or a one-sided bound.

    Residual (what the objective squares): a point, ``(x - value) / scale``.  A band is a range,
    not a point: the residual is 0 in its middle half (a quarter of the width from either edge,
    a margin against Monte Carlo noise) and grows linearly outside it, reaching 1 at an edge.
    A one-sided bound is a constraint: 0 when the one-sided 95% confidence limit of the mean over
    the fitting replications (``mean + 1.645 SE``) meets it, else the excess divided by ``scale``
    (default: a quarter of the bound; for a band: a quarter of its width).  The margins keep a
    fit that meets a figure on its own seeds from missing it on fresh ones.
    """

    name: str
    metric: str
    by: str | None = None
    label: str | None = None
    value: float | None = None
    low: float | None = None
    high: float | None = None
    scale: float | None = None
    weight: float = 1.0
    source: str = ""
    policy: str | None = None
    """Observed under this policy (``None``: the calibration's policy)."""
    baseline: str | None = None
    """A comparison: ``policy`` vs this policy, per replication (common random numbers)."""
    relative: bool = True
    scenario: Path | None = None
    """The file whose policies and run settings it is observed under (``None``: this scenario)."""

    @property
    def key(self) -> str:
        return observable_key(self.metric, self.by, self.label)

    @property
    def kind(self) -> str:
        if self.value is not None:
            return "point"
        return "band" if self.low is not None and self.high is not None else "bound"

    def _scale(self) -> float:
        if self.scale is not None:
            return self.scale
        if self.kind == "point":
            assert self.value is not None
            return abs(self.value) * 0.05 or 1.0
        if self.kind == "band":
            assert self.low is not None and self.high is not None
            return 0.25 * (self.high - self.low)
        bound = self.high if self.high is not None else self.low
        return abs(bound or 0.0) * 0.25 or 1.0

    def residual(self, x: float, se: float = 0.0) -> float:
        """The residual of mean ``x``; ``se``, its standard error, makes a bound demand a safety margin."""
        s = self._scale()
        if self.kind == "point":
            assert self.value is not None
            return (x - self.value) / s
        if self.kind == "band":
            assert self.low is not None and self.high is not None
            quarter = 0.25 * (self.high - self.low)
            centre = 0.5 * (self.low + self.high)
            return math.copysign(max(0.0, abs(x - centre) - quarter), x - centre) / s
        if self.high is not None:
            return max(0.0, x + BOUND_Z * se - self.high) / s
        assert self.low is not None
        return max(0.0, self.low - x + BOUND_Z * se) / s

    def met(self, x: float) -> bool:
        """Whether ``x`` satisfies the figure (a point: within one scale)."""
        if self.kind == "point":
            return abs(self.residual(x)) <= 1.0
        return (self.low is None or x >= self.low) and (self.high is None or x <= self.high)

    def describe(self) -> str:
        if self.kind == "point":
            return f"= {self.value:g}"
        if self.kind == "band":
            return f"{self.low:g} .. {self.high:g}"
        return f"<= {self.high:g}" if self.high is not None else f">= {self.low:g}"


DEFAULT_TARGETS: tuple[Target, ...] = (
    Target("lowest_segment", "response_rate", SEGMENT_KEY, "lowest", low=0.16, high=0.19,
           source="POLICY_FACTS 5, seed 004: the lowest response rates across industries, regions and groups "
                  "are 16-19% (here: the member segment with the lowest rate, all senders)"),
    Target("good_senders", "response_rate", "personalization_band", "high", low=0.20, high=0.30,
           source="POLICY_FACTS 5, seed 001: 20-30% is 'generally considered optimal', with targeted content "
                  "(here: recruiters in the high personalization band)"),
    Target("threshold_bite", "sanctioned_share", high=0.02,
           source="POLICY_FACTS 3, 5, seed 004: 'indiscriminate use' of bulk InMail is by fewer than 2% of "
                  "users (here: seats in an Improvement Period on an average day)"),
)
"""The published figures the baseline world is fitted to when the block gives no ``targets``."""


@dataclass(frozen=True)
class Check:
    """A validation figure: ``metric`` of ``policy`` vs its scenario's baseline, predicted by the fitted market."""

    name: str
    scenario: Path | None
    policy: str | None
    metric: str = "response_rate"
    relative: bool = True
    low: float | None = None
    high: float | None = None
    source: str = ""
    baseline: str | None = None


def setting_name(scenario: Path | None, policy: str) -> str:
    """The name of a (run settings, policy) pair: the policy, prefixed by its file when that is another one."""
    return policy if scenario is None else f"{scenario.name}:{policy}"
