"""How much memory a scenario needs, and refusing up front the ones this machine cannot hold.

The engine keeps per-member arrays (~90 bytes a member, measured with tracemalloc at 10^4-10^6
members), day x seat calendars (refunds, and the threshold's sends and responses: int32, so
about 12 bytes per recruiter-day over the horizon plus the refund tail) and one day's InMails at
a time.  A run holds one replication per worker at once (a batch of K replications with ``--batch K``:
K times as much, see :func:`simulator.experiments.budget.fitting_batch`), plus the collected
results in the parent (the daily series dominate).  The estimate is deliberately simple and a little generous:
its job is to turn an out-of-memory kill hours into a run into a clear message before it starts.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from simulator.core.config import Dist, Market, Policy, RunConfig
from simulator.scenario.errors import NO_VALUE, Issue, ScenarioError

if TYPE_CHECKING:
    from simulator.scenario.loading import Scenario

LIMIT_ENV = "INMAIL_SIM_MEMORY_LIMIT"
"""Overrides the available memory: bytes, or a number with a K/M/G/T suffix (``512M``, ``2G``)."""

BYTES_PER_MEMBER = 90
BYTES_PER_DAILY_SEND = 160        # the day's per-InMail temporaries (indices, draws, masks)
BYTES_PER_SERIES_VALUE = 8 * 6    # a daily value in the worker's result and the parent's tidy frame
PROCESS_OVERHEAD = 100 * 2**20    # interpreter, numpy, pandas, scipy per worker process
DAILY_SERIES_COUNT = 21


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes for one replication, how many run at once, and the collected results."""

    per_replication: int
    concurrent: int
    results: int

    @property
    def total(self) -> int:
        return self.concurrent * (self.per_replication + PROCESS_OVERHEAD) + self.results


def _capped_mean(dist: Dist) -> float:
    """The distribution's mean; a lognormal's log-sd is capped at 20 so an absurd spread cannot overflow."""
    if dist.kind == "lognormal":
        return dist.a * math.exp(0.5 * min(dist.b, 20.0) ** 2)
    return dist.mean


def daily_sends(market: Market) -> float:
    """Expected InMails wished for on a weekday, each recruiter capped by its time budget."""
    fastest = min(market.sending.minutes_personalized, market.sending.minutes_bulk)
    total = 0.0
    for group in market.recruiters:
        volume = _capped_mean(group.daily_volume)
        if fastest > 0:
            volume = min(volume, _capped_mean(group.time_budget_minutes) / fastest + 1.0)
        total += group.count * volume
    return total


def replication_bytes(market: Market, policy: Policy, run: RunConfig) -> int:
    """Estimated peak bytes of one replication of ``policy`` on ``market``."""
    recruiters = market.recruiter_count
    days = run.horizon_days + policy.max_refund_delay + 2
    threshold = policy.threshold
    threshold_days = (run.horizon_days + threshold.maturity_days + threshold.window_days + 2
                      if threshold.enabled else 0)
    calendars = 4 * recruiters * (days + 2 * threshold_days)  # int32: refunds, the threshold's sends and responses
    sends = daily_sends(market)
    return int(BYTES_PER_MEMBER * market.members.count + calendars + BYTES_PER_DAILY_SEND * sends
               + 2 * 2**20)


def estimate(scenario: Scenario, concurrent: int = 1, replications: int | None = None) -> MemoryEstimate:
    """The memory a run of ``scenario`` needs with ``concurrent`` replications at once."""
    per_replication = max(replication_bytes(scenario.market, policy, scenario.run)
                          for policy in scenario.policies.values())
    count = scenario.replications if replications is None else replications
    series = DAILY_SERIES_COUNT * scenario.run.horizon_days if scenario.run.record_daily else 0
    results = count * len(scenario.policies) * (series * BYTES_PER_SERIES_VALUE + 16_384)
    return MemoryEstimate(per_replication, max(1, concurrent), results)


def parse_size(text: str) -> int:
    """``"2G"`` -> 2 * 2**30; plain numbers are bytes.  Raises ``ValueError`` for anything else."""
    number = text.strip().upper().removesuffix("B").removesuffix("I")
    scale = 1
    if number and number[-1] in "KMGT":
        scale = 1024 ** ("KMGT".index(number[-1]) + 1)
        number = number[:-1]
    value = float(number)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"a memory size must be a positive number, got {text!r}")
    return int(value * scale)


def available_memory() -> int | None:
    """``MemAvailable`` from ``/proc/meminfo`` in bytes (None where there is no such file)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def memory_limit(limit: int | None = None) -> tuple[int | None, str]:
    """The limit in bytes and where it came from: ``limit``, ``$INMAIL_SIM_MEMORY_LIMIT`` or MemAvailable."""
    if limit is not None:
        return limit, "the given limit"
    env = os.environ.get(LIMIT_ENV)
    if env:
        try:
            return parse_size(env), f"{LIMIT_ENV}={env}"
        except ValueError:
            raise ScenarioError([Issue(LIMIT_ENV, None, "", env,
                                       "must be a memory size such as 512M, 8G or a number of bytes")]) from None
    return available_memory(), "MemAvailable in /proc/meminfo"


def gib(size: float) -> str:
    """A byte count for people: GiB from 1 GiB up, else MiB."""
    return f"{size / 2**30:.2f} GiB" if size >= 2**30 else f"{size / 2**20:.0f} MiB"


class MemoryLimitError(ScenarioError):
    """The scenario would not fit in memory (exit code 2, like any scenario problem)."""

    def render(self) -> str:
        return "scenario too large for this machine:\n" + "\n".join("  " + i.render() for i in self.issues)


def refuse_over_limit(source: str | None, needed: MemoryEstimate, detail: str, advice: str,
                      limit: int | None = None) -> None:
    """Raise :class:`MemoryLimitError` if ``needed`` exceeds the limit: ``needs about X but the limit is Y
    (where): DETAIL. ADVICE, or raise the limit with ...``."""
    cap, where = memory_limit(limit)
    if cap is None or needed.total <= cap:
        return
    message = (f"needs about {gib(needed.total)} of memory but the limit is {gib(cap)} ({where}): {detail}. "
               f"{advice}, or raise the limit with --memory-limit / {LIMIT_ENV}")
    raise MemoryLimitError([Issue(source, None, "", NO_VALUE, message)])


def check_memory(scenario: Scenario, concurrent: int = 1, limit: int | None = None,
                 replications: int | None = None) -> MemoryEstimate:
    """Raise :class:`MemoryLimitError` if the run's estimate exceeds the limit; return the estimate."""
    needed = estimate(scenario, concurrent, replications)
    market = scenario.market
    at_once = f" x {needed.concurrent} at once" if needed.concurrent > 1 else ""
    detail = (f"one replication ~{gib(needed.per_replication)} ({market.members.count:,} members, "
              f"{market.recruiter_count:,} recruiters x {scenario.run.horizon_days:,} days){at_once}, "
              f"results ~{gib(needed.results)}")
    refuse_over_limit(scenario.source, needed, detail,
                      "Use fewer members, recruiters or days, fewer --workers, --no-timeseries", limit)
    return needed
