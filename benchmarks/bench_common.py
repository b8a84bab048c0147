"""What every benchmark module shares: the sizes, the fresh pinned child processes, the machine's load and speed."""

from __future__ import annotations

import json
import math
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

THREAD_VARS: tuple[str, ...] = (
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
)
"""Thread-pool variables pinned to 1 so that every one-core figure really uses one core."""

HORIZON_DAYS = 365
CHILD_MARK = "@@BENCH@@ "
BENCH_SCRIPT = Path(__file__).resolve().with_name("bench.py")
"""The script every child process runs (``bench.py --child ...``)."""
MiB = 1024.0 * 1024.0
GiB = 1024.0 * MiB


@dataclass(frozen=True, slots=True)
class Size:
    """A benchmark size and the throughput and memory targets that apply to it (None: no target)."""

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
"""Uniform doubles per second of the machine the throughput targets were set on ("about 470 million")."""


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


def load_note(busy: float | None) -> str:
    """One line on the machine's load, with a warning when other processes distort the timings."""
    if busy is None:
        return "machine load unknown (no /proc/stat)"
    note = f"other processes kept {busy:.2f} of {os.cpu_count()} CPUs busy just before"
    return note + ("  ** WARNING: timings are distorted by other load; rerun on an idle machine **"
                   if busy > 0.25 else "")


# --------------------------------------------------------------------------- child processes


def pin_one_cpu() -> str:
    """Pin this process to one CPU (Linux); returns a description."""
    if hasattr(os, "sched_getaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"CPU {cpu}"
    return "not pinned (no sched_setaffinity)"


def peak_rss_bytes() -> float:
    """This process's RSS high-water mark (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return float(peak) if sys.platform == "darwin" else float(peak) * 1024.0


def emit(payload: dict[str, Any]) -> None:
    """Hand a child's figures to the parent (one marked JSON line on stdout)."""
    print(CHILD_MARK + json.dumps(payload), flush=True)


def child_env() -> dict[str, str]:
    """The environment of a child: the parent's with every thread pool pinned to 1."""
    env = dict(os.environ)
    env.update({k: "1" for k in THREAD_VARS})
    return env


def run_child(*args: str, passthrough: bool = False) -> dict[str, Any]:
    """Run ``bench.py --child ...`` in a fresh interpreter and return its JSON payload."""
    cmd = [sys.executable, str(BENCH_SCRIPT), "--child", *args]
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


# --------------------------------------------------------------------------- report helpers


def engine_version() -> str:
    """git commit of the working tree (with '+dirty' when simulator/ has uncommitted changes)."""
    root = BENCH_SCRIPT.parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "simulator"], cwd=root, capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{head}{'+dirty (uncommitted changes in simulator/)' if dirty else ''}"


def rate_text(x: float) -> str:
    """A rate of InMails per second, in M/s or k/s."""
    return f"{x / 1e6:.2f} M/s" if x >= 1e5 else f"{x / 1e3:.1f} k/s"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


