"""Where the time goes: one replication under pyinstrument, then a line timer over the engine.

The line timer books every line of the daily step (``Simulation.send`` and its sub-steps) to a
phase - desired sends, allocation, targeting, outcomes, refunds, threshold record, fatigue,
tallies - and the other ``Simulation`` methods to theirs, and reports microseconds per day and
nanoseconds per InMail.
"""

from __future__ import annotations

import ast
import re
import sys
import textwrap
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

from bench_common import HORIZON_DAYS, emit
from bench_market import pinned_setup

DAILY_STEP_PHASES: dict[str, str] = {
    "send": "daily step: calls of its sub-steps",
    "_decide_and_pay": "allocation + ledger spend",
    "_expand": "expand counts to messages",
    "_target": "targeting",
    "_resolve": "outcomes (answer, accept, delay)",
    "_book_refunds": "refunds scatter",
    "_mark_members": "tallies: members",
    "_tally": "tallies: recruiters + daily series",
}
"""The daily step's methods and the phase of their lines that no :data:`PHASE_RULES` rule claims."""

PHASE_RULES: tuple[tuple[str, str], ...] = (
    (r'\bdaily\["', "tallies: recruiters + daily series"),
    (r"desired_sends\(", "desired sends"),
    (r"fatigue|decay", "fatigue (decay, lookup, scatter)"),
    (r"book\.record", "threshold record"),
)
"""(regex on a statement of a daily-step method, phase); the first match wins."""

METHOD_PHASES: dict[str, str] = {
    "credit_refunds": "refund crediting (end of day)",
    "review": "threshold review",
    "adapt_recruiters": "adaptation", "_record_means": "adaptation",
    "day_streams": "calendar (simpy, dates)", "_calendar": "build members, recruiters, state",
    "_grants": "grants + expiry", "_grant": "grants + expiry", "_expire": "grants + expiry",
    "_schedule_expiry": "grants + expiry",
    "_switch": "calendar (simpy, dates)", "_days": "calendar (simpy, dates)", "_at": "calendar (simpy, dates)",
    "execute": "calendar (simpy, dates)", "date": "calendar (simpy, dates)", "day_of": "calendar (simpy, dates)",
    "days_to_next_grant": "calendar (simpy, dates)",
    "__init__": "build members, recruiters, state", "_target_ranges": "build members, recruiters, state",
    "grant_days": "build members, recruiters, state",
    "result": "summary (metrics, tallies)",
}
"""Phase of every line of the other ``Simulation`` methods (unknown methods: 'other: <name>')."""


def line_phases(func: Callable[..., Any], default: str) -> dict[int, str]:
    """Absolute line number -> phase, for every statement line of ``func`` (``default`` where no rule matches)."""
    import inspect

    lines, first = inspect.getsourcelines(func)
    source = textwrap.dedent("".join(lines))
    src_lines = source.splitlines()
    fn = ast.parse(source).body[0]
    phases: dict[int, str] = {}
    for node in ast.walk(fn):
        if not isinstance(node, ast.stmt) or node is fn:
            continue
        body = getattr(node, "body", None)
        end = (body[0].lineno - 1) if body else (node.end_lineno or node.lineno)
        span = range(node.lineno, end + 1)
        text = " ".join(src_lines[i - 1] for i in span)
        phase = next((ph for pat, ph in PHASE_RULES if re.search(pat, text)), default)
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

    from simulator import run_replication
    from simulator.core.engine import Simulation

    pinned, size, market, policy, run = pinned_setup(size_name, policy_name)

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

    # 2. line timer over every Simulation method, lines of the daily step booked to phases
    codes: dict[CodeType, str] = {}
    for name, obj in vars(Simulation).items():
        code = getattr(obj, "__code__", None)
        if code is not None:
            codes[code] = name
    step_phases: dict[tuple[CodeType, int], str] = {}
    for name, default in DAILY_STEP_PHASES.items():
        func = getattr(Simulation, name)
        step_phases.update({(func.__code__, line): phase for line, phase in line_phases(func, default).items()})
    timer = LineTimer(set(codes))
    t0 = time.perf_counter()
    timer.run(once)
    traced_wall = time.perf_counter() - t0
    phase_t: dict[str, float] = defaultdict(float)
    line_t: list[tuple[float, str, str]] = []
    for (code, line), s in timer.times.items():
        name = codes[code]
        if name in DAILY_STEP_PHASES:
            phase = step_phases.get((code, line), DAILY_STEP_PHASES[name])
        else:
            phase = METHOD_PHASES.get(name, f"other: {name}")
        phase_t[phase] += s
        text = linecache.getline(code.co_filename, line).strip()
        line_t.append((s, f"{Path(code.co_filename).name}:{line} {name}", text))
    booked = sum(phase_t.values())
    phase_t["outside Simulation methods (seeding, run_replication)"] = max(traced_wall - booked, 0.0)
    step_set = set(step_phases.values()) | set(DAILY_STEP_PHASES.values())
    print(f"== phases (line timer; traced wall {traced_wall:.3f} s, tracer overhead "
          f"{(traced_wall / wall - 1) * 100:+.0f}%) ==")
    print(f"  {'phase':<54}{'ms':>9}{'us/day':>10}{'ns/InMail':>11}{'share':>8}")
    for title, keep in (("daily step (Simulation.send and its sub-steps)", lambda p: p in step_set),
                        ("everything else", lambda p: p not in step_set)):
        rows = sorted(((p, s) for p, s in phase_t.items() if keep(p)), key=lambda kv: -kv[1])
        print(f"  -- {title}: {sum(s for _, s in rows) * 1e3:,.0f} ms")
        for p, s in rows:
            print(f"  {p:<54}{s * 1e3:9.1f}{s / days * 1e6:10.1f}{s / inmails * 1e9:11.1f}"
                  f"{s / traced_wall * 100:7.1f}%")
    print(f"\n== the {top_lines} most expensive lines ==")
    for s, where, text in sorted(line_t, reverse=True)[:top_lines]:
        print(f"  {s * 1e3:7.1f} ms {s / inmails * 1e9:6.1f} ns/InMail  {where:<34} {text[:90]}")
    emit({"wall": wall, "traced_wall": traced_wall, "inmails": inmails,
           "phases": {p: s for p, s in phase_t.items()}})


