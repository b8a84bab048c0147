"""The benchmark market: a realistic default market of any size with every mechanism on."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulator import Market, Policy, RunConfig


def _apportion(total: int, shares: Sequence[float]) -> list[int]:
    """Integer counts proportional to ``shares`` (largest remainder); every positive share gets >= 1 if possible."""
    exact = [total * s / sum(shares) for s in shares]
    counts = [math.floor(x) for x in exact]
    for i in sorted(range(len(shares)), key=lambda i: counts[i] - exact[i])[: total - sum(counts)]:
        counts[i] += 1
    for i, c in enumerate(counts):  # a tiny group (the bulk-heavy 1.5%) must not vanish at small sizes
        if c == 0 and shares[i] > 0 and total >= len(shares):
            donor = max(range(len(counts)), key=counts.__getitem__)
            counts[donor] -= 1
            counts[i] = 1
    return counts


def default_market(n_recruiters: int, n_members: int) -> Market:
    """A realistic default market with every mechanism on.

    Seat types in their rough market proportions, Recruiter and Recruiter Professional Services
    seats in teams of 4 (pooled under ``new_2015``), adaptive and fixed behaviour, three member
    segments (the lowest at the 16-19% of POLICY_FACTS section 5) and a 1.5% bulk-heavy group
    (daily volume lognormal with median 40, bulk share beta with mean 0.85) that the threshold
    catches.  Time budgets vary (lognormal, median 80 minutes) so that they bind for some.
    """
    from simulator import Dist, Market, MemberPopulation, RecruiterGroup, Segment

    budget = Dist("lognormal", 80.0, 0.35)
    groups: list[tuple[float, dict[str, Any]]] = [
        (0.340, dict(name="recruiter_adaptive", seat_type="recruiter", behaviour="adaptive", team_size=4)),
        (0.140, dict(name="recruiter_fixed", seat_type="recruiter", behaviour="fixed", team_size=4)),
        (0.140, dict(name="rps_adaptive", seat_type="recruiter_professional_services", behaviour="adaptive",
                     team_size=4)),
        (0.050, dict(name="rps_fixed", seat_type="recruiter_professional_services", behaviour="fixed", team_size=4)),
        (0.100, dict(name="lite", seat_type="recruiter_lite", behaviour="adaptive",
                     daily_volume=Dist("lognormal", 4.0, 0.6))),
        (0.040, dict(name="talent_finder", seat_type="talent_finder", behaviour="fixed",
                     daily_volume=Dist("lognormal", 4.0, 0.6))),
        (0.070, dict(name="sales_nav_team", seat_type="sales_navigator_team", behaviour="adaptive",
                     daily_volume=Dist("lognormal", 3.0, 0.6))),
        (0.060, dict(name="sales_nav_pro", seat_type="sales_navigator_professional", behaviour="adaptive",
                     daily_volume=Dist("lognormal", 2.0, 0.6))),
        (0.045, dict(name="sales_nav_basic", seat_type="sales_navigator_basic", behaviour="fixed",
                     daily_volume=Dist("lognormal", 1.0, 0.6))),
        (0.015, dict(name="bulk_heavy", seat_type="recruiter", behaviour="fixed", team_size=4,
                     daily_volume=Dist("lognormal", 40.0, 0.5), bulk_share=Dist("beta", 0.85, 20.0),
                     personalization=Dist("beta", 0.2, 8.0), targeting_skill=Dist("beta", 0.2, 4.0),
                     time_budget_minutes=Dist("lognormal", 150.0, 0.3))),
    ]
    counts = _apportion(n_recruiters, [s for s, _ in groups])
    recruiters = tuple(RecruiterGroup(count=n, **{"time_budget_minutes": budget, **kw})
                       for n, (_, kw) in zip(counts, groups, strict=True))
    segments = (
        Segment("tech", share=0.40, base_response=0.30),
        Segment("finance", share=0.35, base_response=0.25),
        Segment("low_response", share=0.25, base_response=0.18),
    )
    return Market(members=MemberPopulation(count=n_members, segments=segments), recruiters=recruiters)


def warm_up(policy: Policy) -> None:
    """One tiny replication, so that lazy imports and first-call costs stay out of the timings."""
    from simulator import RunConfig, run_replication

    run_replication(default_market(20, 500), policy, RunConfig(horizon_days=20), seed=0)


def pinned_setup(size_name: str, policy_name: str) -> tuple[str, Any, Market, Policy, RunConfig]:
    """A benchmark child's start: pin to one CPU, build the size's market, warm up.

    Returns (pinned CPU note, size, market, policy, run config of ``HORIZON_DAYS``).
    """
    from bench_common import HORIZON_DAYS, SIZES, pin_one_cpu

    from simulator import RunConfig, preset

    pinned = pin_one_cpu()
    size = SIZES[size_name]
    market = default_market(size.recruiters, size.members)
    policy = preset(policy_name)
    run = RunConfig(horizon_days=HORIZON_DAYS)
    warm_up(policy)
    return pinned, size, market, policy, run
