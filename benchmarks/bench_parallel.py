"""Parallel efficiency: wall time of the same replications on one worker and on k (spawned, warmed up).

Efficiency = wall(1) / (k * wall(k)); the same pool running a CPU-bound pure-Python loop gives
the machine's own ceiling (no memory traffic), so a shortfall can be told from a busy machine.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from bench_common import HORIZON_DAYS, SIZES, THREAD_VARS, busy_cpus, load_note, verdict
from bench_market import default_market

PARALLEL_TARGET = 0.85
"""Parallel efficiency wall(1 worker) / (k * wall(k workers)) required (k = 2)."""


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


def report_parallel(size_name: str, policy_name: str, reps: int, workers: int, report: dict[str, Any]) -> None:
    """Measure and print the parallel efficiency of ``reps`` replications of ``size_name``."""
    busy = busy_cpus()
    pe = parallel_efficiency(size_name, policy_name, reps, workers)
    pe["busy_before"] = busy
    report["parallel"] = pe
    k = pe["workers"]
    wall_k, busy_k = pe[f"wall_{k}"], pe[f"busy_{k}"]
    print(f"parallel efficiency: {pe['reps']} replications of {pe['size']} ({policy_name}), "
          f"ProcessPoolExecutor (spawn, workers warmed up)")
    print(f"  1 worker: {pe['wall_1']:.2f} s;  {k} workers: {wall_k:.2f} s;  "
          f"efficiency = wall1 / ({k} x wall{k}) = {pe['efficiency'] * 100:.1f}%   "
          f"target >= {PARALLEL_TARGET * 100:.0f}% {verdict(pe['efficiency'] >= PARALLEL_TARGET)}")
    print(f"  replication time summed inside the workers: {pe['busy_1']:.2f} s with 1 worker, "
          f"{busy_k:.2f} s with {k} (equal when the workers do not slow each other down)")
    print(f"  machine ceiling, same pool on a CPU-bound pure-Python loop: {pe['ceiling'] * 100:.1f}%;  "
          f"{load_note(pe['busy_before'])}\n")
