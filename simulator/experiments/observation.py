"""The observation of one replication: every named scalar a calibration target or an explanation can use.

Besides the metrics: the recruiter breakdowns (``by:label:metric``), the breakdown by the receiving
member's segment (:data:`SEGMENT_KEY`, with the lowest and highest segment of each replication), and
the threshold's bite (:data:`SEAT_SHARES`).  :func:`observe_task` is a picklable task for any executor;
its :class:`Observation` is storable in a :class:`~simulator.experiments.runner.TaskStore`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from simulator.core.config import Market, Policy, RunConfig
from simulator.core.members import apportion
from simulator.core.metrics import BREAKDOWN_KEYS, ReplicationResult, breakdown_arrays, ratio
from simulator.experiments.experiment import run_single

SEGMENT_KEY = "member_segment"
"""Breakdown by the *receiving member's* segment (the engine's breakdowns are by recruiter)."""

SEGMENT_METRICS: tuple[str, ...] = ("response_rate", "received", "responses")
SEGMENT_EXTREMES: tuple[str, ...] = ("lowest", "highest")
"""Labels that pick, in each replication, the segment with the lowest / highest response rate."""

SEAT_SHARES: tuple[str, ...] = ("sanctioned_share", "warned_share", "improvement_share")
"""Threshold bite, as shares of the seats the threshold reviews (``Threshold.seat_types``):
``sanctioned_share`` = seats in an Improvement Period on an average sending day,
``warned_share`` = seats warned at least once, ``improvement_share`` = seats with at least one
Improvement Period (the last two over the whole run)."""


def observable_key(metric: str, by: str | None = None, label: str | None = None) -> str:
    """``response_rate``, ``group:agency:response_rate``, ``member_segment:lowest:response_rate``."""
    return metric if by is None else f"{by}:{label}:{metric}"


@dataclass(frozen=True)
class Observation:
    """Named scalar observables of one replication (picklable; storable by :class:`runner.TaskStore`)."""

    values: dict[str, float]

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"names": np.array(list(self.values), dtype=str),
                "values": np.array(list(self.values.values()), dtype=np.float64)}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> Observation:
        return cls({str(k): float(v) for k, v in zip(arrays["names"], arrays["values"], strict=True)})


def segment_bounds(market: Market) -> list[tuple[str, int, int]]:
    """(name, first member, end) of each member segment: members are sorted by segment (``build_members``)."""
    segs = market.members.segments
    sizes = apportion(market.members.count, np.array([s.share for s in segs], dtype=np.float64))
    ends = np.cumsum(sizes)
    return [(s.name, int(e - n), int(e)) for s, n, e in zip(segs, sizes, ends, strict=True)]


def observe(result: ReplicationResult, market: Market, policy: Policy) -> dict[str, float]:
    """Every observable of one replication: metrics, recruiter breakdowns, member segments, threshold bite."""
    out = {k: float(v) for k, v in result.metrics.items()}
    seats = result.recruiters
    for by in BREAKDOWN_KEYS:
        for label, values in breakdown_arrays(seats, by).items():
            for m, v in values.items():
                out[observable_key(m, by, label)] = float(v)
    if result.member_received is not None and result.member_unanswered is not None:
        rates: dict[str, float] = {}
        for name, lo, hi in segment_bounds(market):
            received = float(result.member_received[lo:hi].sum())
            responses = received - float(result.member_unanswered[lo:hi].sum())
            out[observable_key("received", SEGMENT_KEY, name)] = received
            out[observable_key("responses", SEGMENT_KEY, name)] = responses
            out[observable_key("response_rate", SEGMENT_KEY, name)] = ratio(responses, received)
            if received > 0:
                rates[name] = ratio(responses, received)
        for label, pick in (("lowest", min), ("highest", max)):
            extreme = pick(rates, key=lambda segment: rates[segment]) if rates else None
            for m in SEGMENT_METRICS:
                out[observable_key(m, SEGMENT_KEY, label)] = (out[observable_key(m, SEGMENT_KEY, extreme)]
                                                              if extreme else 0.0)
    reviewed = np.isin(seats.seat_type, policy.threshold.seat_types)
    n_reviewed = int(reviewed.sum())
    in_improvement = result.daily.get("in_improvement")
    out["sanctioned_share"] = (ratio(float(np.mean(in_improvement)), n_reviewed)
                               if in_improvement is not None and len(in_improvement) else 0.0)
    out["warned_share"] = ratio(float((seats.warnings[reviewed] > 0).sum()), n_reviewed)
    out["improvement_share"] = ratio(float((seats.improvement_periods[reviewed] > 0).sum()), n_reviewed)
    return out


def observe_task(market: Market, policy: Policy, run: RunConfig, root_seed: int, index: int) -> Observation:
    """One replication's observables (a picklable task for any executor)."""
    run = dataclasses.replace(run, record_daily=True)  # sanctioned_share reads the daily series
    return Observation(observe(run_single(market, policy, run, root_seed, index), market, policy))


def observe_tasks(args: list[tuple[Market, Policy, RunConfig, int, int]]) -> list[Observation]:
    """:func:`observe_task` of each args, computed as one batch."""
    from simulator.experiments.replication import run_singles

    daily = [(m, p, dataclasses.replace(r, record_daily=True), s, i) for m, p, r, s, i in args]
    return [Observation(observe(result, a[0], a[1])) for result, a in zip(run_singles(daily), daily, strict=True)]
