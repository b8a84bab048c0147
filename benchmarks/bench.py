"""Throughput, memory and parallel-efficiency benchmark of the simulation engine (issue 5).

    python benchmarks/bench.py [--sizes small,medium,large] [--policy new_2015] [--reps 5]
                               [--workers 2] [--parallel-reps 20] [--no-parallel] [--no-naive]
                               [--profile [--profile-size medium] [--top-lines 20]]
                               [--mechanisms [--mechanisms-size large]] [--json out.json]

Every measurement of one replication runs in a fresh child process (``python bench.py --child
...``), pinned to one CPU with OMP/MKL/OPENBLAS threads set to 1, so that its peak resident set
(``ru_maxrss``) is the high-water mark of that size alone.  The baseline RSS of an idle interpreter
(with numpy, and with the simulator imported) is measured the same way, so the model's own
footprint is visible.  The model is the full default model: fatigue, adaptation, threshold,
pooling (under ``new_2015``) and time budgets are all on.  Each size runs ``--reps`` replications
(default 5, seeds 1..5) in its child; the fastest is the figure checked against the target (the
one least disturbed by other load on a shared machine) and the median is printed beside it.

``--profile`` runs the medium size (``--profile-size``) under pyinstrument (call tree) and under a
line-level timer of the engine's ``Simulation`` methods that books every line of the daily step to a phase
(desired sends, allocation, targeting, outcomes, refunds scatter, threshold record, fatigue,
tallies, ...) and reports microseconds per day and nanoseconds per InMail.

``--mechanisms`` prices the mechanisms the throughput targets include: one child runs the same
replications (same seeds) of one size with the full model, then with fatigue, adaptation or the
threshold switched off, and with all three off, in interleaved rounds, and prints each variant's
rate and the share of the full model's time that the switched-off mechanism costs.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import multiprocessing as mp
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import textwrap
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import CodeType, FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulator import Market, Policy

THREAD_VARS: tuple[str, ...] = (
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
)
"""Thread-pool variables pinned to 1 so that every one-core figure really uses one core."""

HORIZON_DAYS = 365
CHILD_MARK = "@@BENCH@@ "
HERE = Path(__file__).resolve()
MiB = 1024.0 * 1024.0
GiB = 1024.0 * MiB


@dataclass(frozen=True, slots=True)
class Size:
    """A benchmark size and the issue-5 throughput target that applies to it (None: no target)."""

    name: str
    recruiters: int
    members: int
    target_rate: float | None = None
    target_peak_bytes: float | None = None


SIZES: dict[str, Size] = {
    "small": Size("small", 100, 10_000),
    "medium": Size("medium", 1_000, 100_000, target_rate=5e6),
    "large": Size("large", 10_000, 1_000_000, target_rate=10e6, target_peak_bytes=1.0 * GiB),
}
REFERENCE_UNIFORM_RATE = 470e6
"""Uniform doubles per second of the machine issue 5's targets were set on ("about 470 million")."""

PARALLEL_TARGET = 0.85
"""Parallel efficiency wall(1 worker) / (k * wall(k workers)) required by issue 5 (k = 2)."""


# --------------------------------------------------------------------------- the benchmark market


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


# --------------------------------------------------------------------------- machine load


def busy_cpus(seconds: float = 1.0) -> float | None:
    """CPUs kept busy by *other* processes right now (from /proc/stat over ``seconds``; None if unknown)."""
    def sample() -> tuple[int, int]:
        with open("/proc/stat") as fh:
            f = [int(x) for x in fh.readline().split()[1:]]
        idle = f[3] + (f[4] if len(f) > 4 else 0)
        return sum(f[:8]) - idle, sum(f[:8])

    try:
        b0, t0 = sample()
        time.sleep(seconds)
        b1, t1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return (os.cpu_count() or 1) * (b1 - b0) / max(t1 - t0, 1)


def _load_note(busy: float | None) -> str:
    if busy is None:
        return "machine load unknown (no /proc/stat)"
    note = f"other processes kept {busy:.2f} of {os.cpu_count()} CPUs busy just before"
    return note + ("  ** WARNING: timings are distorted by other load; rerun on an idle machine **"
                   if busy > 0.25 else "")


# --------------------------------------------------------------------------- child processes


def _pin_one_cpu() -> str:
    """Pin this process to one CPU (Linux); returns a description."""
    if hasattr(os, "sched_getaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"CPU {cpu}"
    return "not pinned (no sched_setaffinity)"


def _peak_rss_bytes() -> float:
    """This process's RSS high-water mark (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return float(peak) if sys.platform == "darwin" else float(peak) * 1024.0


def _emit(payload: dict[str, Any]) -> None:
    print(CHILD_MARK + json.dumps(payload), flush=True)


def child_env() -> dict[str, str]:
    """The environment of a child: the parent's with every thread pool pinned to 1."""
    env = dict(os.environ)
    env.update({k: "1" for k in THREAD_VARS})
    return env


def run_child(*args: str, passthrough: bool = False) -> dict[str, Any]:
    """Run ``bench.py --child ...`` in a fresh interpreter and return its JSON payload."""
    cmd = [sys.executable, str(HERE), "--child", *args]
    proc = subprocess.run(cmd, env=child_env(), capture_output=True, text=True, check=False)
    payload: dict[str, Any] = {}
    for line in proc.stdout.splitlines():
        if line.startswith(CHILD_MARK):
            payload = json.loads(line[len(CHILD_MARK):])
        elif passthrough:
            print(line)
    if proc.returncode != 0 or not payload:
        raise RuntimeError(f"child {' '.join(args)} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return payload


def child_baseline(what: str) -> None:
    """Idle interpreter with numpy (``numpy``) or with the whole simulator (``simulator``) imported."""
    t0 = time.perf_counter()
    import numpy as np

    if what == "simulator":
        import simulator  # noqa: F401

    np.zeros(1).sum()
    _emit({"peak_rss": _peak_rss_bytes(), "import_seconds": time.perf_counter() - t0})


def child_size(size_name: str, policy_name: str, reps: int) -> None:
    """Run ``reps`` replications of one size in this (fresh, pinned) process."""
    from simulator import RunConfig, preset, run_replication

    pinned = _pin_one_cpu()
    size = SIZES[size_name]
    market = default_market(size.recruiters, size.members)
    policy = preset(policy_name)
    run = RunConfig(horizon_days=HORIZON_DAYS)
    run_replication(default_market(20, 500), policy, RunConfig(horizon_days=20), seed=0)  # warm-up: lazy imports
    inmails, walls, cpus = [], [], []
    extra: dict[str, float] = {}
    speed_before = uniform_rate()
    for i in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        res = run_replication(market, policy, run, seed=1 + i)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        inmails.append(int(res.metrics["sent"]))
        if i == 0:
            extra = {k: float(res.metrics[k]) for k in ("response_rate", "sent_bulk", "warnings",
                                                       "improvement_periods", "stockout_recruiter_days")}
    _emit({"inmails": inmails, "walls": walls, "cpu": cpus, "peak_rss": _peak_rss_bytes(), "pinned": pinned,
           "first": extra, "uniform_rate": max(speed_before, uniform_rate())})


def uniform_rate(n: int = 100_000, tries: int = 200) -> float:
    """Uniform doubles numpy's default generator draws per second here (best of ``tries``): the machine's speed.

    A block that stays in cache, so that the figure is the CPU's, not the memory bus's.
    """
    import numpy as np

    rng = np.random.default_rng(0)
    out = np.empty(n)
    best = math.inf
    for _ in range(tries):
        t0 = time.perf_counter()
        rng.random(out=out)
        best = min(best, time.perf_counter() - t0)
    return n / best


def child_naive(size_name: str, reps: int) -> None:
    """Naive per-message reference vs engine on the simplified model of ``naive_reference``."""
    from naive_reference import SimpleModel, run_engine, run_naive

    from simulator import RefundRule

    pinned = _pin_one_cpu()
    size = SIZES[size_name]
    model = SimpleModel(recruiters=size.recruiters, members=size.members, horizon_days=HORIZON_DAYS)
    rule = RefundRule("on_response", 90, 1)
    run_engine(SimpleModel(recruiters=10, members=100, horizon_days=5), rule, 0)  # warm-up: lazy imports
    naive = [run_naive(model, rule, 1 + i) for i in range(reps)]
    engine = [run_engine(model, rule, 1 + i) for i in range(reps)]
    _emit({
        "pinned": pinned,
        "naive": {"inmails": sum(t.sent for t in naive), "wall": sum(t.wall_seconds for t in naive),
                  "response_rate": naive[0].response_rate, "refund_fraction": naive[0].refund_fraction},
        "engine": {"inmails": sum(t.sent for t in engine), "wall": sum(t.wall_seconds for t in engine),
                   "response_rate": engine[0].response_rate, "refund_fraction": engine[0].refund_fraction},
    })


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

    pinned = _pin_one_cpu()
    size = SIZES[size_name]
    base, policy = default_market(size.recruiters, size.members), preset(policy_name)
    run = RunConfig(horizon_days=HORIZON_DAYS)
    run_replication(default_market(20, 500), policy, RunConfig(horizon_days=20), seed=0)  # warm-up: lazy imports
    variants = {name: mechanism_variant(name, base, policy) for name in MECHANISM_VARIANTS}
    walls: dict[str, list[float]] = {name: [] for name in variants}
    inmails: dict[str, int] = {}
    for _ in range(reps):
        for name, (market, pol) in variants.items():
            t0 = time.perf_counter()
            res = run_replication(market, pol, run, seed=1)
            walls[name].append(time.perf_counter() - t0)
            inmails[name] = int(res.metrics["sent"])
    _emit({"pinned": pinned, "walls": walls, "inmails": inmails})


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
        print(f"  {name:<20}{n:>13,}{wall:>8.2f}{_rate(n / wall):>12}  {saved:<30}")
    print("  (a variant also sends a different number of InMails: without adaptation nobody cuts volume)\n")


# --------------------------------------------------------------------------- parallel efficiency


def _pool_warmup(_: int) -> int:
    """Import the simulator in a worker (and hold it a moment so that every worker gets one)."""
    import simulator  # noqa: F401

    time.sleep(0.3)
    return os.getpid()


def _pool_replication(args: tuple[str, str, int]) -> tuple[int, float]:
    """One replication in a pool worker: (InMails, wall seconds)."""
    from simulator import RunConfig, preset, run_replication

    size_name, policy_name, seed = args
    size = SIZES[size_name]
    t0 = time.perf_counter()
    res = run_replication(default_market(size.recruiters, size.members), preset(policy_name),
                          RunConfig(horizon_days=HORIZON_DAYS), seed=seed)
    return int(res.metrics["sent"]), time.perf_counter() - t0


def _pool_burn(n: int) -> float:
    """A CPU-bound pure-Python task: the machine's own parallel ceiling, with no memory traffic."""
    t0 = time.perf_counter()
    acc = 0
    for i in range(n):
        acc += i * i
    return time.perf_counter() - t0 + 0.0 * acc


def parallel_efficiency(size_name: str, policy_name: str, reps: int, workers: int) -> dict[str, Any]:
    """Wall time of ``reps`` replications on 1 and on ``workers`` processes (spawned, warmed up first)."""
    os.environ.update({k: "1" for k in THREAD_VARS})  # inherited by the spawned workers
    ctx = mp.get_context("spawn")
    jobs = [(size_name, policy_name, 1 + i) for i in range(reps)]
    out: dict[str, Any] = {"size": size_name, "reps": reps, "workers": workers}
    for k in (1, workers):
        with ProcessPoolExecutor(max_workers=k, mp_context=ctx) as ex:
            pids = set(ex.map(_pool_warmup, range(k)))
            t0 = time.perf_counter()
            results = list(ex.map(_pool_replication, jobs))
            wall = time.perf_counter() - t0
            t1 = time.perf_counter()
            list(ex.map(_pool_burn, [10_000_000] * (2 * workers)))
            out[f"burn_wall_{k}"] = time.perf_counter() - t1
        out[f"wall_{k}"] = wall
        out[f"busy_{k}"] = sum(w for _, w in results)
        out[f"pids_{k}"] = len(pids)
        out["inmails"] = sum(n for n, _ in results)
    out["efficiency"] = out["wall_1"] / (workers * out[f"wall_{workers}"])
    out["ceiling"] = out["burn_wall_1"] / (workers * out[f"burn_wall_{workers}"])
    return out


# --------------------------------------------------------------------------- profiling


PHASE_RULES: tuple[tuple[str, str], ...] = (
    (r'\bd\["|self\.t_(sent|bulk|resp|acc|refund|stockout)\b|\bn_resp_r\b|\bn_acc_r\b|\bsent = ',
     "tallies: recruiters + daily series"),
    (r"fatigue|decay", "fatigue (decay, lookup, scatter)"),
    (r"desired_sends\(", "desired sends"),
    (r"allocate\(|\bshort\b|(ledger|lg)\.spend|spent_today|\bdesired\b|n_one = allowed", "allocation + ledger spend"),
    (r"np\.repeat|kind >>|kind &|_kind_counts|\bcounts\[", "expand counts to messages"),
    (r"book\.record|\bresp_rec = ", "threshold record"),
    (r"\.received|\.answered|unanswered|no_answer|\bact\b|received_active", "tallies: members"),
)
"""(regex on a statement of ``Simulation.send``, phase); the first match wins."""

SECTION_MARKERS: tuple[tuple[str, str], ...] = (
    ("recruiter tall", "tallies: recruiters + daily series"),
    ("refund", "refunds scatter"),
    ("target", "targeting"),
    ("outcome", "outcomes (answer, accept, delay)"),
    ("threshold", "threshold record"),
)
"""(substring of a ``# comment`` line in ``send``, phase of the statements below it without a rule)."""

METHOD_PHASES: dict[str, str] = {
    "credit_refunds": "refund crediting (end of day)",
    "review": "threshold review",
    "adapt_recruiters": "adaptation", "_record_means": "adaptation",
    "day_streams": "calendar (simpy, dates)", "_calendar": "build members, recruiters, state",
    "_grants": "grants + expiry", "_grant": "grants + expiry", "_expire": "grants + expiry",
    "_switch": "calendar (simpy, dates)", "_days": "calendar (simpy, dates)", "_at": "calendar (simpy, dates)",
    "execute": "calendar (simpy, dates)", "date": "calendar (simpy, dates)", "day_of": "calendar (simpy, dates)",
    "days_to_next_grant": "calendar (simpy, dates)",
    "__init__": "build members, recruiters, state", "_target_ranges": "build members, recruiters, state",
    "grant_days": "build members, recruiters, state",
    "result": "summary (metrics, tallies)",
}
"""Phase of every line of the other ``Simulation`` methods (unknown methods: 'other: <name>')."""


def _send_line_phases(func: Callable[..., Any]) -> dict[int, str]:
    """Absolute line number -> phase, for every statement line of ``Simulation.send``."""
    import inspect

    lines, first = inspect.getsourcelines(func)
    source = textwrap.dedent("".join(lines))
    tree = ast.parse(source)
    src_lines = source.splitlines()
    section_at: dict[int, str] = {}
    section = "setup (date, phase, weekend)"
    for i, text in enumerate(src_lines, start=1):
        s = text.strip()
        if s.startswith("#"):
            low = s.lower()
            section = next((ph for key, ph in SECTION_MARKERS if key in low), section)
        section_at[i] = section
    phases: dict[int, str] = {}
    fn = tree.body[0]
    for node in ast.walk(fn):
        if not isinstance(node, ast.stmt) or node is fn:
            continue
        body = getattr(node, "body", None)
        end = (body[0].lineno - 1) if body else (node.end_lineno or node.lineno)
        span = range(node.lineno, end + 1)
        text = " ".join(src_lines[i - 1] for i in span)
        phase = next((ph for pat, ph in PHASE_RULES if re.search(pat, text)), section_at[node.lineno])
        for i in span:
            phases.setdefault(first + i - 1, phase)
    return phases


class LineTimer:
    """Exclusive wall time per (code object, line) of selected functions, via ``sys.settrace``.

    Generators are handled: a ``yield`` is a 'return' event and a resume a 'call' event, so the
    time a process spends suspended in simpy is not booked to it.  A traced function calling
    another traced function books the callee's time to the callee only.
    """

    def __init__(self, codes: set[CodeType]) -> None:
        self.codes = codes
        self.times: dict[tuple[CodeType, int], float] = defaultdict(float)
        self.stack: list[list[Any]] = []

    def _global(self, frame: FrameType, event: str, arg: Any) -> Callable[..., Any] | None:
        if event != "call" or frame.f_code not in self.codes:
            return None
        now = time.perf_counter()
        if self.stack:
            top = self.stack[-1]
            self.times[(top[0], top[1])] += now - top[2]
        self.stack.append([frame.f_code, frame.f_lineno, now])
        return self._local

    def _local(self, frame: FrameType, event: str, arg: Any) -> Callable[..., Any] | None:
        now = time.perf_counter()
        top = self.stack[-1]
        self.times[(top[0], top[1])] += now - top[2]
        if event == "return":
            self.stack.pop()
            if self.stack:
                self.stack[-1][2] = now
            return self._local
        top[1], top[2] = frame.f_lineno, now
        return self._local

    def run(self, fn: Callable[[], Any]) -> Any:
        sys.settrace(self._global)
        try:
            return fn()
        finally:
            sys.settrace(None)


def child_profile(policy_name: str, size_name: str = "medium", top_lines: int = 20) -> None:
    """Profile one replication of ``size_name``: pyinstrument call tree, then phases per line."""
    import linecache

    from simulator import RunConfig, preset, run_replication
    from simulator.core.engine import Simulation

    pinned = _pin_one_cpu()
    size = SIZES[size_name]
    market = default_market(size.recruiters, size.members)
    policy = preset(policy_name)
    run = RunConfig(horizon_days=HORIZON_DAYS)
    run_replication(default_market(20, 500), policy, RunConfig(horizon_days=20), seed=0)  # warm-up

    def once() -> Any:
        return run_replication(market, policy, run, seed=1)

    t0 = time.perf_counter()
    res = once()
    wall = time.perf_counter() - t0
    inmails = int(res.metrics["sent"])
    days = HORIZON_DAYS
    print(f"profile: {size_name} ({size.recruiters:,} recruiters, {size.members:,} members), {policy_name}, "
          f"{days} days, {inmails:,} InMails, untraced wall {wall:.3f} s "
          f"= {wall / days * 1e6:,.0f} us/day = {wall / inmails * 1e9:,.0f} ns/InMail  [{pinned}]\n")

    # 1. pyinstrument: the call tree, and self time of the functions (numpy built-ins included)
    try:
        from pyinstrument import Profiler
    except ImportError:
        print("pyinstrument is not installed (pip install pyinstrument, or the [bench] extra): call tree skipped\n")
    else:
        prof = Profiler(interval=0.0005)
        prof.start()
        once()
        session = prof.stop()
        print("== pyinstrument call tree ==")
        print(prof.output_text(unicode=False, color=False))
        selftime: dict[str, float] = defaultdict(float)
        stack = [session.root_frame()]
        while stack:
            f = stack.pop()
            if f is None:
                continue
            stack.extend(f.children)
            if f.function == "[self]":
                continue
            selftime[f"{f.function}  ({f.file_path_short}:{f.line_no})"] += f.total_self_time
        print("== pyinstrument: self time by function (top 15) ==")
        for name, s in sorted(selftime.items(), key=lambda kv: -kv[1])[:15]:
            print(f"  {s * 1e3:8.1f} ms  {s / inmails * 1e9:7.1f} ns/InMail  {name}")
        print("  (numpy operators and fancy indexing are not calls: they are the send/... self time above,"
              " itemized by line below)\n")

    # 2. line timer over every Simulation method, lines of send() booked to phases
    codes: dict[CodeType, str] = {}
    for name, obj in vars(Simulation).items():
        code = getattr(obj, "__code__", None)
        if code is not None:
            codes[code] = name
    send_phases = _send_line_phases(Simulation.send)
    timer = LineTimer(set(codes))
    t0 = time.perf_counter()
    timer.run(once)
    traced_wall = time.perf_counter() - t0
    phase_t: dict[str, float] = defaultdict(float)
    line_t: list[tuple[float, str, str]] = []
    for (code, line), s in timer.times.items():
        name = codes[code]
        if name == "send":
            phase = send_phases.get(line, "setup (date, phase, weekend)")
        else:
            phase = METHOD_PHASES.get(name, f"other: {name}")
        phase_t[phase] += s
        text = linecache.getline(code.co_filename, line).strip()
        line_t.append((s, f"{Path(code.co_filename).name}:{line} {name}", text))
    booked = sum(phase_t.values())
    phase_t["outside Simulation methods (seeding, run_replication)"] = max(traced_wall - booked, 0.0)
    send_set = set(send_phases.values()) | {"setup (date, phase, weekend)"}
    print(f"== phases (line timer; traced wall {traced_wall:.3f} s, tracer overhead "
          f"{(traced_wall / wall - 1) * 100:+.0f}%) ==")
    print(f"  {'phase':<54}{'ms':>9}{'us/day':>10}{'ns/InMail':>11}{'share':>8}")
    for title, keep in (("daily step (Simulation.send)", lambda p: p in send_set),
                        ("everything else", lambda p: p not in send_set)):
        rows = sorted(((p, s) for p, s in phase_t.items() if keep(p)), key=lambda kv: -kv[1])
        print(f"  -- {title}: {sum(s for _, s in rows) * 1e3:,.0f} ms")
        for p, s in rows:
            print(f"  {p:<54}{s * 1e3:9.1f}{s / days * 1e6:10.1f}{s / inmails * 1e9:11.1f}"
                  f"{s / traced_wall * 100:7.1f}%")
    print(f"\n== the {top_lines} most expensive lines ==")
    for s, where, text in sorted(line_t, reverse=True)[:top_lines]:
        print(f"  {s * 1e3:7.1f} ms {s / inmails * 1e9:6.1f} ns/InMail  {where:<34} {text[:90]}")
    _emit({"wall": wall, "traced_wall": traced_wall, "inmails": inmails,
           "phases": {p: s for p, s in phase_t.items()}})


# --------------------------------------------------------------------------- report


def _engine_version() -> str:
    """git commit of the working tree (with '+dirty' when simulator/ has uncommitted changes)."""
    root = HERE.parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "simulator"], cwd=root, capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{head}{'+dirty (uncommitted changes in simulator/)' if dirty else ''}"


def _rate(x: float) -> str:
    return f"{x / 1e6:.2f} M/s" if x >= 1e5 else f"{x / 1e3:.1f} k/s"


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="small,medium,large", help="comma list of small, medium, large (or none)")
    ap.add_argument("--policy", default="new_2015", help="policy preset (comma list allowed)")
    ap.add_argument("--reps", type=int, default=5, help="replications per size (fastest and median reported)")
    ap.add_argument("--workers", type=int, default=2, help="workers for the parallel-efficiency figure")
    ap.add_argument("--parallel-reps", type=int, default=20, help="replications for the parallel-efficiency figure")
    ap.add_argument("--parallel-size", default="medium", choices=list(SIZES))
    ap.add_argument("--no-parallel", action="store_true", help="skip the parallel-efficiency figure")
    ap.add_argument("--no-naive", action="store_true", help="skip the naive-reference speed ratio")
    ap.add_argument("--naive-size", default="small", choices=list(SIZES))
    ap.add_argument("--profile", action="store_true", help="profile one size (pyinstrument + phases)")
    ap.add_argument("--profile-size", default="medium", choices=list(SIZES), help="size to profile (default medium)")
    ap.add_argument("--top-lines", type=int, default=20, help="lines listed by --profile (default 20)")
    ap.add_argument("--mechanisms", action="store_true",
                    help="time one size with fatigue, adaptation, threshold switched off in turn")
    ap.add_argument("--mechanisms-size", default="large", choices=list(SIZES),
                    help="size for --mechanisms (default large)")
    ap.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.child:
        kind, *rest = args.child
        if kind == "baseline":
            child_baseline(rest[0])
        elif kind == "size":
            child_size(rest[0], rest[1], int(rest[2]))
        elif kind == "naive":
            child_naive(rest[0], int(rest[1]))
        elif kind == "profile":
            child_profile(rest[0], rest[1], int(rest[2]))
        elif kind == "mechanisms":
            child_mechanisms(rest[0], rest[1], int(rest[2]))
        else:
            raise SystemExit(f"unknown child {kind!r}")
        return 0

    os.environ.update({k: "1" for k in THREAD_VARS})
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip() and s.strip() != "none"]
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        ap.error(f"unknown size(s) {unknown}; allowed: {', '.join(SIZES)}")
    policies = [p.strip() for p in args.policy.split(",") if p.strip()]
    report: dict[str, Any] = {"python": platform.python_version(), "machine": platform.machine(),
                              "cpus": os.cpu_count(), "policies": policies, "sizes": {}}

    import numpy

    report["engine_version"] = _engine_version()
    print(f"InMail simulator benchmark: {HORIZON_DAYS} days, full default model (fatigue, adaptation, threshold,"
          f" pooling, time budgets), one replication per child process")
    print(f"python {platform.python_version()}, numpy {numpy.__version__}, {platform.system()} {platform.machine()},"
          f" {os.cpu_count()} CPUs; one-core figures: child pinned to one CPU, {', '.join(THREAD_VARS[:3])}=1")
    print(f"engine: {report['engine_version']}\n")

    busy = busy_cpus()
    report["busy_cpus_before"] = busy
    print(_load_note(busy) + "\n")
    b_np, b_sim = run_child("baseline", "numpy"), run_child("baseline", "simulator")
    base_np, base_sim = b_np["peak_rss"], b_sim["peak_rss"]
    report["baseline"] = {"numpy": b_np, "simulator": b_sim}
    print(f"baseline peak RSS of an idle interpreter: {base_np / MiB:.1f} MiB with numpy imported "
          f"({b_np['import_seconds']:.2f} s to import), {base_sim / MiB:.1f} MiB with `import simulator` "
          f"({b_sim['import_seconds']:.2f} s to import)\n")

    head = (f"{'policy':<10}{'size':<8}{'recruiters':>11}{'members':>11}{'InMails':>13}{'/rec-day':>9}{'wall s':>8}"
            f"{'cpu%':>6}{'InMails/s':>12}{'(median)':>11}  {'target':<17}{'peak RSS':>10}{'model':>10}"
            f"  {'target':<16}")
    if sizes:
        print(head)
        print("-" * len(head))
    speeds: list[tuple[str, str, float, float]] = []
    for pol in policies if sizes else []:
        if pol == "old_2014":
            print("(old_2014 has no pooling: every other mechanism is on)")
        for name in sizes:
            sz = SIZES[name]
            r = run_child("size", name, pol, str(args.reps))
            walls, inmails = r["walls"], r["inmails"]
            rates = [n / w for n, w in zip(inmails, walls, strict=True)]
            best = max(range(len(rates)), key=rates.__getitem__)
            rate, wall, n_best = rates[best], walls[best], inmails[best]
            peak = r["peak_rss"]
            t_rate = "-" if sz.target_rate is None else \
                f">= {sz.target_rate / 1e6:.0f} M/s {_verdict(rate >= sz.target_rate)}"
            t_mem = "-" if sz.target_peak_bytes is None else \
                f"<= {sz.target_peak_bytes / GiB:.0f} GiB {_verdict(peak <= sz.target_peak_bytes)}"
            print(f"{pol:<10}{name:<8}{sz.recruiters:>11,}{sz.members:>11,}{n_best:>13,}"
                  f"{n_best / (sz.recruiters * HORIZON_DAYS):>9.2f}{wall:>8.2f}{r['cpu'][best] / wall * 100:>6.0f}"
                  f"{_rate(rate):>12}"
                  f"{_rate(statistics.median(rates)):>11}  {t_rate:<17}"
                  f"{peak / MiB:>7.0f} MiB"
                  f"{(peak - base_sim) / MiB:>6.0f} MiB  {t_mem:<16}")
            report["sizes"][f"{pol}/{name}"] = {**r, "rate_best": rate, "rate_median": statistics.median(rates)}
            speeds.append((pol, name, rate, r["uniform_rate"]))
    if sizes:
        print(f"  InMails, wall s, InMails/s: the fastest of {args.reps} replication(s) (seeds 1..{args.reps};"
              " the least disturbed by other load), then the median rate;\n"
              "  /rec-day: InMails per recruiter per day (about half the engine's cost is per recruiter-day);"
              " cpu%: CPU time / wall\n"
              "  (well under 100%: the child waited for its CPU, other load distorted the figure);\n"
              "  peak RSS: high-water mark of the child process;"
              " model = peak RSS minus the idle interpreter after `import simulator`")
        print("  machine speed, measured in each child before and after its replications (numpy uniform doubles/s,\n"
              "  the faster of the two; the targets were set on a machine drawing"
              f" {REFERENCE_UNIFORM_RATE / 1e6:.0f} M/s), and the rate scaled to that\n"
              "  machine's speed (the verdicts above use the raw rate):")
        for pol, name, rate, urate in speeds:
            print(f"    {pol:<10}{name:<8} {urate / 1e6:6.0f} M uniforms/s  ->  "
                  f"{_rate(rate * REFERENCE_UNIFORM_RATE / urate)} at the reference speed")
        print()

    if not args.no_parallel:
        busy = busy_cpus()
        pe = parallel_efficiency(args.parallel_size, policies[0], args.parallel_reps, args.workers)
        pe["busy_before"] = busy
        report["parallel"] = pe
        k = pe["workers"]
        wall_k, busy_k = pe[f"wall_{k}"], pe[f"busy_{k}"]
        print(f"parallel efficiency: {pe['reps']} replications of {pe['size']} ({policies[0]}), "
              f"ProcessPoolExecutor (spawn, workers warmed up)")
        print(f"  1 worker: {pe['wall_1']:.2f} s;  {k} workers: {wall_k:.2f} s;  "
              f"efficiency = wall1 / ({k} x wall{k}) = {pe['efficiency'] * 100:.1f}%   "
              f"target >= {PARALLEL_TARGET * 100:.0f}% {_verdict(pe['efficiency'] >= PARALLEL_TARGET)}")
        print(f"  replication time summed inside the workers: {pe['busy_1']:.2f} s with 1 worker, "
              f"{busy_k:.2f} s with {k} (equal when the workers do not slow each other down)")
        print(f"  machine ceiling, same pool on a CPU-bound pure-Python loop: {pe['ceiling'] * 100:.1f}%;  "
              f"{_load_note(pe['busy_before'])}\n")

    if not args.no_naive:
        nv = run_child("naive", args.naive_size, "1")
        report["naive"] = nv
        n, e = nv["naive"], nv["engine"]
        n_rate, e_rate = n["inmails"] / n["wall"], e["inmails"] / e["wall"]
        print(f"naive per-message simpy reference vs vectorized engine, same simplified model "
              f"({args.naive_size}: {SIZES[args.naive_size].recruiters:,} recruiters, "
              f"{SIZES[args.naive_size].members:,} members, {HORIZON_DAYS} days, refund on response 90 d)")
        print(f"  naive : {n['inmails']:>11,} InMails {n['wall']:8.2f} s {_rate(n_rate):>11}   "
              f"response rate {n['response_rate']:.4f}, refund fraction {n['refund_fraction']:.4f}")
        print(f"  engine: {e['inmails']:>11,} InMails {e['wall']:8.2f} s {_rate(e_rate):>11}   "
              f"response rate {e['response_rate']:.4f}, refund fraction {e['refund_fraction']:.4f}")
        print(f"  speed ratio engine / naive: {e_rate / n_rate:,.0f}x\n")

    if args.mechanisms:
        mech = run_child("mechanisms", args.mechanisms_size, policies[0], str(args.reps))
        report["mechanisms"] = mech
        print_mechanisms(mech, args.mechanisms_size, policies[0], args.reps)

    if args.profile:
        report["profile"] = run_child("profile", policies[0], args.profile_size, str(args.top_lines),
                                      passthrough=True)

    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
        print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
