"""Builders shared by the core tests: constant-probability markets and policies whose credits never bind."""

from __future__ import annotations

import datetime as dt

from simulator import (
    SEAT_TYPES,
    Accrual,
    Adaptation,
    Dist,
    Fatigue,
    Grant,
    Market,
    MemberPopulation,
    Phase,
    Policy,
    RecruiterGroup,
    RefundRule,
    ResponseModel,
    RunConfig,
    Segment,
    SendingModel,
    Threshold,
)

BIG = 10**7
"""A monthly allotment no recruiter in these tests can exhaust."""

NO_THRESHOLD = Threshold(enabled=False)


def fixed(value: float) -> Dist:
    """A degenerate distribution."""
    return Dist("fixed", value, 0.0)


def allotments(amount: int, seats: tuple[str, ...] = SEAT_TYPES) -> tuple[tuple[str, int], ...]:
    """The same monthly allotment for every listed seat type."""
    return tuple((s, amount) for s in seats)


def phase(
    refund: RefundRule | None = None, allot: int = BIG, accrual: Accrual | None = None, pooling: bool = False,
) -> Phase:
    """A phase with one allotment for every seat type (default: never binding, no refunds)."""
    return Phase(refund=refund or RefundRule("never"), allotments=allotments(allot),
                 accrual=accrual or Accrual("unlimited"), pooling=pooling)


def policy(
    ph: Phase | None = None, *, threshold: Threshold = NO_THRESHOLD, grants: tuple[Grant, ...] = (),
    switch_date: dt.date | None = None, before: Phase | None = None, name: str = "test",
) -> Policy:
    """A policy around one phase, threshold off unless given."""
    return Policy(name=name, phase=ph or phase(), threshold=threshold, grants=grants,
                  switch_date=switch_date, before=before)


def fixed_group(
    name: str = "r", count: int = 50, *, volume: float = 20.0, bulk_share: float = 0.0, seat: str = "recruiter",
    team_size: int = 1, personalization: float = 0.5,
) -> RecruiterGroup:
    """Fixed-behaviour recruiters with a constant desired volume and an unlimited time budget."""
    return RecruiterGroup(
        name, count, seat_type=seat, behaviour="fixed", personalization=fixed(personalization),
        targeting_skill=fixed(0.0), daily_volume=fixed(volume), bulk_share=fixed(bulk_share),
        time_budget_minutes=fixed(1e9), team_size=team_size,
    )


def constant_market(
    p: float = 0.3, *, check_interval: float = 5.0, openness: float = 0.4, members: int = 2000,
    groups: tuple[RecruiterGroup, ...] | None = None, observation_days: int = 180, active_share: float = 1.0,
) -> Market:
    """A market where every InMail is answered with probability ``p`` (times ``active_share``).

    One segment, no member heterogeneity, personalization without effect, fatigue and adaptation
    off, weekends like weekdays; delays are Geometric(1/check_interval) - 1 days.
    """
    seg = Segment("all", 1.0, base_response=p, active_share=active_share,
                  check_interval_days=fixed(check_interval), openness=fixed(openness))
    return Market(
        members=MemberPopulation(members, (seg,)),
        recruiters=groups if groups is not None else (fixed_group(),),
        response=ResponseModel(personalization_effect=0.0, member_heterogeneity_sd=0.0,
                               observation_days=observation_days),
        fatigue=Fatigue(enabled=False),
        sending=SendingModel(weekend_factor=1.0, adaptation=Adaptation(enabled=False)),
    )


def run_config(start: dt.date = dt.date(2015, 2, 1), horizon: int = 30) -> RunConfig:
    """A short run."""
    return RunConfig(start_date=start, horizon_days=horizon)
