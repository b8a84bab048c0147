"""Throughput, memory and parallel-efficiency benchmark of the simulation engine.

    python benchmarks/bench.py [--sizes small,medium,large] [--policy new_2015] [--reps 5]
                               [--workers 2] [--parallel-reps 20] [--no-parallel] [--no-naive]
                               [--profile [--profile-size medium] [--top-lines 20]]
                               [--mechanisms [--mechanisms-size large]] [--json out.json]
                               [--batches [--batch-sizes 1,8,32,64] [--batch-rounds 2]]

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

``--batches`` measures batched replications (``bench_batch``): at every size and policy, K
replications unbatched and in one batch (``--batch-sizes``, default 1, 8, 32, 64), in one child each,
the rates per core, their ratio and the peak memory of the batch.

The measurements live in modules by what they measure: ``bench_throughput`` (sizes, memory,
naive reference), ``bench_parallel``, ``bench_mechanisms``, ``bench_profile`` and ``bench_batch``; ``bench_common``
holds the sizes and the child-process plumbing, ``bench_market`` the benchmark market.
See benchmarks/README.md for the method and the results.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench_batch import child_batch, report_batches
from bench_common import HORIZON_DAYS, SIZES, THREAD_VARS, busy_cpus, engine_version, load_note, run_child
from bench_mechanisms import child_mechanisms, print_mechanisms
from bench_parallel import report_parallel
from bench_profile import child_profile
from bench_throughput import child_baseline, child_naive, child_size, report_baseline, report_naive, report_sizes


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks the flags ask for (or, with ``--child``, one measurement in this process)."""
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
    ap.add_argument("--batches", action="store_true",
                    help="batched throughput: K replications in one pass vs one at a time, per size and policy")
    ap.add_argument("--batch-sizes", default="1,8,32,64", help="comma list of K for --batches (default 1,8,32,64)")
    ap.add_argument("--batch-rounds", type=int, default=2, help="interleaved rounds per K for --batches")
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
        elif kind == "batch":
            child_batch(rest[0], rest[1], int(rest[2]), int(rest[3]))
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

    report["engine_version"] = engine_version()
    print(f"InMail simulator benchmark: {HORIZON_DAYS} days, full default model (fatigue, adaptation, threshold,"
          f" pooling, time budgets), one replication per child process")
    print(f"python {platform.python_version()}, numpy {numpy.__version__}, {platform.system()} {platform.machine()},"
          f" {os.cpu_count()} CPUs; one-core figures: child pinned to one CPU, {', '.join(THREAD_VARS[:3])}=1")
    print(f"engine: {report['engine_version']}\n")

    busy = busy_cpus()
    report["busy_cpus_before"] = busy
    print(load_note(busy) + "\n")
    base_sim = report_baseline(report)
    if sizes:
        report_sizes(policies, sizes, args.reps, base_sim, report)
    if args.batches:
        report_batches(policies, sizes, [int(k) for k in args.batch_sizes.split(",") if k.strip()],
                       args.batch_rounds, report)
    if not args.no_parallel:
        report_parallel(args.parallel_size, policies[0], args.parallel_reps, args.workers, report)
    if not args.no_naive:
        report_naive(args.naive_size, report)
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
