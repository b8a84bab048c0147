"""What the mechanisms cost: the same replications with fatigue, adaptation or the threshold switched off.

One child runs the full model and every variant of :data:`MECHANISM_VARIANTS` on one size (same
seed), in interleaved rounds, so that a slow spell of the machine hits every variant alike.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from bench_common import HORIZON_DAYS, SIZES, emit, pin_one_cpu, rate_text
from bench_market import default_market, warm_up

if TYPE_CHECKING:
    from simulator import Market, Policy

MECHANISM_VARIANTS: tuple[str, ...] = ("full model", "no fatigue", "no adaptation", "no threshold",
                                       "none of the three")
"""The variants of ``--mechanisms``: the full default model, then with mechanisms switched off."""


def mechanism_variant(name: str, market: Market, policy: Policy) -> tuple[Market, Policy]:
    """The (market, policy) of variant ``name`` of :data:`MECHANISM_VARIANTS` (the rest unchanged)."""
    from dataclasses import replace

    if name not in MECHANISM_VARIANTS:
        raise ValueError(f"unknown variant {name!r}; allowed: {', '.join(MECHANISM_VARIANTS)}")
    off = {"no fatigue": {"fatigue"}, "no adaptation": {"adaptation"}, "no threshold": {"threshold"},
           "none of the three": {"fatigue", "adaptation", "threshold"}}.get(name, set())
    if "fatigue" in off:
        market = replace(market, fatigue=replace(market.fatigue, enabled=False))
    if "adaptation" in off:
        sending = market.sending
        market = replace(market, sending=replace(sending, adaptation=replace(sending.adaptation, enabled=False)))
    if "threshold" in off:
        policy = replace(policy, threshold=replace(policy.threshold, enabled=False))
    return market, policy


def child_mechanisms(size_name: str, policy_name: str, reps: int) -> None:
    """Time every variant of :data:`MECHANISM_VARIANTS` on one size: ``reps`` interleaved rounds, seed 1."""
    from simulator import RunConfig, preset, run_replication

    pinned = pin_one_cpu()
    size = SIZES[size_name]
    base, policy = default_market(size.recruiters, size.members), preset(policy_name)
    run = RunConfig(horizon_days=HORIZON_DAYS)
    warm_up(policy)
    variants = {name: mechanism_variant(name, base, policy) for name in MECHANISM_VARIANTS}
    walls: dict[str, list[float]] = {name: [] for name in variants}
    inmails: dict[str, int] = {}
    for _ in range(reps):
        for name, (market, pol) in variants.items():
            t0 = time.perf_counter()
            res = run_replication(market, pol, run, seed=1)
            walls[name].append(time.perf_counter() - t0)
            inmails[name] = int(res.metrics["sent"])
    emit({"pinned": pinned, "walls": walls, "inmails": inmails})


def print_mechanisms(r: dict[str, Any], size_name: str, policy_name: str, reps: int) -> None:
    """The table of ``--mechanisms``: rate of each variant and the time its missing mechanisms cost."""
    size = SIZES[size_name]
    full = min(r["walls"]["full model"])
    print(f"what the mechanisms cost: {size_name} ({size.recruiters:,} recruiters, {size.members:,} members),"
          f" {policy_name}, seed 1, fastest of {reps} interleaved round(s)")
    head = f"  {'variant':<20}{'InMails':>13}{'wall s':>8}{'InMails/s':>12}  {'share of the full time saved':<30}"
    print(head)
    print("  " + "-" * (len(head) - 2))
    for name in MECHANISM_VARIANTS:
        wall, n = min(r["walls"][name]), r["inmails"][name]
        saved = "-" if name == "full model" else f"{(full - wall) / full * 100:5.1f}%"
        print(f"  {name:<20}{n:>13,}{wall:>8.2f}{rate_text(n / wall):>12}  {saved:<30}")
    print("  (a variant also sends a different number of InMails: without adaptation nobody cuts volume)\n")


