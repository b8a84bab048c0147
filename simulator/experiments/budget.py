"""The work a command asks for, bounded before anything is built or run.

Every command (run, validate, sweep, sensitivity, calibrate, explain, baseline save/check/plan)
describes what it is about to do as a :class:`Workload` - how many tasks (one replication of one
policy in one world or design point), the scenario one task runs, the results and design it keeps in
memory, and how to ask for less - *computed from counts* (grid axes multiplied, ``N (d + 2)`` Sobol
evaluations, worlds x replications), never by building the design.  :func:`admit` then

* refuses more than the task limit (:data:`DEFAULT_MAX_TASKS`; ``--max-tasks`` or
  ``$INMAIL_SIM_MAX_TASKS`` raise it) with :class:`WorkLimitError`;
* caps the worker processes at the number of tasks and at :func:`max_workers` (a note says so);
* refuses a memory estimate above the limit (:func:`simulator.scenario.memory.memory_limit`:
  ``--memory-limit``, ``$INMAIL_SIM_MEMORY_LIMIT`` or the available memory) with
  :class:`~simulator.scenario.memory.MemoryLimitError`; a worker holds a batch of replications at
  once (``--batch K``), so the estimate is per batch: a ``--batch`` that does not fit is refused
  naming the largest that does, and an automatic batch shrinks until it fits (:func:`fitting_batch`).

Both refusals are scenario errors (exit code 2) whose message holds the estimate: what was asked,
what it would need, the limit and how to lower it.  The time estimate is a rough single-core figure
from the market size (the engine's speed measured in benchmarks/README.md), for the message only.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from simulator.core.batch import default_batch
from simulator.scenario.errors import NO_VALUE, Issue, ScenarioError
from simulator.scenario.memory import (
    MemoryEstimate,
    MemoryLimitError,
    daily_sends,
    estimate,
    gib,
    memory_limit,
    refuse_over_limit,
    replication_bytes,
)

if TYPE_CHECKING:
    from simulator.scenario.loading import Scenario

MAX_TASKS_ENV = "INMAIL_SIM_MAX_TASKS"
"""Overrides the task limit of every command (a whole number)."""

DEFAULT_MAX_TASKS = 1_000_000
"""Tasks (replications of one policy in one world or point) one command may ask for by default."""

BYTES_PER_POINT = 32 * 1024       # a validated design point (its scenario), measured ~20 KB
BYTES_PER_STUDY_TASK = 4 * 1024   # a sweep / sensitivity task's metrics in the parent, and its table row
BYTES_PER_OBSERVATION = 16 * 1024  # a calibration / explain replication's observation (with breakdowns)

SECONDS_PER_DAY = 1.2e-3          # recruiter-level work of a simulated day (benchmarks: 1.15 ms at 10,000 x 1M)
SECONDS_PER_INMAIL = 2e-7         # an InMail inside the engine (benchmarks: 5 M/s at 1,000 x 100k)
SECONDS_PER_MEMBER = 1e-6         # building the member table


class WorkLimitError(ScenarioError):
    """A command asks for more tasks than the limit (exit code 2, like any scenario problem)."""

    def render(self) -> str:
        return "too much work asked for:\n" + "\n".join("  " + i.render() for i in self.issues)


@dataclass(frozen=True)
class Workload:
    """What a command is about to do, counted before anything is built."""

    command: str
    """The command asking (``sweep``, ``baseline check``) as the messages name it."""
    scenario: Scenario
    """The scenario a task runs (its largest market: memory and time per replication)."""
    tasks: int
    breakdown: str
    """How ``tasks`` is made up: ``1,000,000,000 points x 2 policies x 5 replications``."""
    lower: str
    """How to ask for less: ``fewer sweep values or --replications``."""
    result_bytes: int = 0
    """Results the parent keeps until the end."""
    design_bytes: int = 0
    """The design (points, bootstrap resamples) held at once."""
    less_memory: str = ""
    """More ways to need less memory (``--no-timeseries``), for the memory refusal."""

    @classmethod
    def of_counts(cls, command: str, scenario: Scenario, counts: Sequence[tuple[int, str]], lower: str, *,
                  bytes_per_task: int = 0, design_bytes: int = 0) -> Workload:
        """A workload of ``product(counts)`` tasks, e.g. ``[(points, "points"), (2, "policies"), (5, ...)]``."""
        tasks = math.prod(n for n, _ in counts)
        return cls(command, scenario, tasks, count_text(counts), lower, tasks * bytes_per_task, design_bytes)

    @property
    def seconds(self) -> float:
        """Rough single-core seconds for every task."""
        return self.tasks * replication_seconds(self.scenario)


def count_text(counts: Sequence[tuple[int, str]]) -> str:
    """``15 points x 2 policies x 5 replications``."""
    return " x ".join(f"{n:,} {label}" for n, label in counts)


def replication_seconds(scenario: Scenario) -> float:
    """Rough seconds of one replication on one core, from the market size and the horizon."""
    market = scenario.market
    days = scenario.run.horizon_days
    return (days * (SECONDS_PER_DAY + SECONDS_PER_INMAIL * daily_sends(market))
            + SECONDS_PER_MEMBER * market.members.count)


def duration(seconds: float) -> str:
    """``40 s``, ``12 min``, ``3.5 h``, ``9 days``, ``2,300 years`` (a rough figure, rounded)."""
    for unit, size in (("years", 365 * 86400), ("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size:
            value = seconds / size
            return f"{value:,.0f} {unit}" if value >= 10 else f"{value:.1f} {unit}"
    return f"{max(seconds, 1.0):.0f} s"


def work_limit(max_tasks: int | None = None) -> tuple[int, str]:
    """The task limit and where it came from: ``max_tasks``, ``$INMAIL_SIM_MAX_TASKS`` or the default."""
    if max_tasks is not None:
        return max_tasks, "--max-tasks"
    env = os.environ.get(MAX_TASKS_ENV)
    if env:
        try:
            value = int(env.replace("_", "").replace(",", ""))
        except ValueError:
            value = 0
        if value < 1:
            raise ScenarioError([Issue(MAX_TASKS_ENV, None, "", env, "must be a whole number >= 1")])
        return value, f"{MAX_TASKS_ENV}={env}"
    return DEFAULT_MAX_TASKS, "the default"


def max_workers() -> int:
    """The most local worker processes worth starting: twice the usable cores (at least 4)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(4, 2 * cores)


@dataclass(frozen=True)
class Limits:
    """What a command may use: worker processes wanted, memory and task limits (None: the defaults)."""

    workers: int = 1
    memory: int | None = None
    """Bytes; None: ``$INMAIL_SIM_MEMORY_LIMIT`` or the available memory."""
    max_tasks: int | None = None
    """None: ``$INMAIL_SIM_MAX_TASKS`` or :data:`DEFAULT_MAX_TASKS`."""
    local: bool = True
    """False: the tasks run on a remote Dask cluster (not this machine's memory, not its processes)."""
    note: Callable[[str], None] | None = None
    """Told when the workers are capped."""
    batch: int | None = None
    """Replications per batch (``--batch K``); None: chosen by the market size."""


def capped_workers(workers: int, tasks: int) -> tuple[int, str | None]:
    """``workers`` capped at ``tasks`` and at :func:`max_workers`, and a note when it was."""
    cap = min(max(1, tasks), max_workers())
    if workers <= cap:
        return workers, None
    why = (f"only {tasks:,} task{'s' if tasks != 1 else ''} to run" if cap == max(1, tasks)
           else "twice this machine's cores (more processes only compete for them and multiply the memory)")
    return cap, f"--workers {workers} capped at {cap}: {why}"


def work_estimate(work: Workload, workers: int = 1, batch: int = 1) -> MemoryEstimate:
    """The memory ``work`` needs with ``workers`` batches of ``batch`` replications at once."""
    per_replication = max(replication_bytes(work.scenario.market, policy, work.scenario.run)
                          for policy in work.scenario.policies.values())
    return MemoryEstimate(per_replication * max(1, batch), max(1, workers), work.result_bytes + work.design_bytes)


def automatic_batch(work: Workload) -> int:
    """The batch size chosen by the market size (:func:`simulator.core.batch.default_batch`)."""
    market = work.scenario.market
    return default_batch(market.members.count * max(market.recruiter_count, 1))


def fitting_batch(work: Workload, workers: int, limits: Limits) -> int:
    """The replications per batch to run: ``limits.batch`` if it fits in memory, else refused (exit 2);
    automatic: the size-based batch, smaller if that is what fits (1 at least: the memory check of
    :func:`admit` then speaks for a single replication)."""
    cap, where = memory_limit(limits.memory)
    asked = limits.batch
    largest = min(asked or automatic_batch(work), max(1, work.tasks))
    if cap is None or not limits.local:
        return largest
    k = largest
    while k > 1 and work_estimate(work, workers, k).total > cap:
        k = max(1, k // 2)
    while k < largest and work_estimate(work, workers, k + 1).total <= cap:
        k += 1
    if asked is not None and k < largest and work_estimate(work, workers, 1).total <= cap:
        needed = work_estimate(work, workers, asked)
        message = (f"--batch {asked} needs about {gib(needed.total)} of memory ({workers} worker"
                   f"{'s' if workers != 1 else ''} x {asked} replications of ~{gib(needed.per_replication // asked)} "
                   f"at once) but the limit is {gib(cap)} ({where}); the largest --batch that fits is {k}")
        raise MemoryLimitError([Issue(work.scenario.source, None, "", NO_VALUE, message)])
    return k


def check_tasks(work: Workload, max_tasks: int | None = None) -> None:
    """Raise :class:`WorkLimitError` if ``work`` asks for more tasks than the limit."""
    cap, source = work_limit(max_tasks)
    if work.tasks <= cap:
        return
    message = (f"{work.command} asks for {work.tasks:,} tasks ({work.breakdown}), roughly "
               f"{duration(work.seconds)} on one core, but the limit is {cap:,} tasks ({source}). "
               f"Ask for less: {work.lower}; or raise the limit with --max-tasks N / {MAX_TASKS_ENV}")
    raise WorkLimitError([Issue(work.scenario.source, None, "", NO_VALUE, message)])


def admit(work: Workload, limits: Limits | None = None) -> int:
    """Refuse ``work`` past the task or memory limit (exit code 2); return the worker processes to start."""
    limits = limits or Limits()
    check_tasks(work, limits.max_tasks)
    workers = limits.workers
    if not limits.local:
        return workers
    workers, note = capped_workers(workers, work.tasks)
    if note and limits.note is not None:
        limits.note(note)
    batch = fitting_batch(work, workers, limits)
    needed = work_estimate(work, workers, batch)
    scenario = work.scenario
    at_once = f" x {needed.concurrent} at once" if needed.concurrent > 1 else ""
    what = "one replication" if batch == 1 else f"one batch of {batch} replications"
    detail = (f"{work.command}: {work.breakdown}; {what} ~{gib(needed.per_replication)} "
              f"({scenario.market.members.count:,} members, {scenario.market.recruiter_count:,} recruiters x "
              f"{scenario.run.horizon_days:,} days){at_once}, results and design ~{gib(needed.results)}")
    more = f", {work.less_memory}" if work.less_memory else ""
    refuse_over_limit(scenario.source, needed, detail, f"Use fewer members, recruiters or days, fewer --workers{more}"
                      f", or ask for less: {work.lower}", limits.memory)
    return workers


def describe(work: Workload, limits: Limits | None = None) -> str:
    """One line for ``validate``: the tasks, a rough time, the memory and the limits."""
    limits = limits or Limits()
    cap, _ = work_limit(limits.max_tasks)
    mem, _ = memory_limit(limits.memory)
    total = work_estimate(work).total
    mem_text = f"; memory about {gib(total)} with one worker" + (f" (limit {gib(mem)})" if mem is not None else "")
    return (f"{work.tasks:,} tasks ({work.breakdown}), roughly {duration(work.seconds)} on one core"
            f"{mem_text}; task limit {cap:,}")


def experiment_workload(scenario: Scenario, replications: int, command: str = "run", *,
                        lower: str = "fewer --replications (or a smaller scenario.replications)",
                        less_memory: str = "") -> Workload:
    """A plain experiment: ``replications`` of every policy (the results as :func:`estimate` counts them)."""
    counts = [(replications, "replications"), (len(scenario.policies), "policies")]
    results = estimate(scenario, 1, replications).results
    return Workload(command, scenario, math.prod(n for n, _ in counts), count_text(counts), lower, results,
                    less_memory=less_memory)


__all__ = [
    "BYTES_PER_OBSERVATION", "BYTES_PER_POINT", "BYTES_PER_STUDY_TASK", "DEFAULT_MAX_TASKS", "MAX_TASKS_ENV",
    "Limits", "WorkLimitError", "Workload", "admit", "automatic_batch", "capped_workers", "check_tasks",
    "count_text", "describe", "duration", "experiment_workload", "fitting_batch", "max_workers",
    "replication_seconds", "work_estimate", "work_limit",
]
