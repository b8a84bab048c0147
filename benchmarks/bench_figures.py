"""What the report's figures cost against the simulation, for the full-size main job.

    python benchmarks/bench_figures.py [--scenario scenarios/old_vs_new.yaml] [--workers 1,2]
                                       [--rounds 3] [--set PATH=VALUE ...] [--json out.json]

For each worker count K, with the executor ``inmail-sim run --workers K`` uses, it times the
simulation as ``inmail-sim run --no-figures`` does it (``run_experiment``, then ``write_run``, which
computes the tables the figures reuse) and then the six figures of ``inmail-sim run`` (``render_figures``:
serial for one worker, one task per figure on the run's pool otherwise), ``--rounds`` times.  It
prints the seconds of each and the figures' share of the whole run, ``figures / (simulation +
figures)``, against the target (at most a fifth).  "first" is the round ``inmail-sim run`` pays
(matplotlib imported in the parent - timed apart and added - and in the workers); "best" is the
fastest round.  With one worker the CPU seconds of this process are printed too: on a shared
machine they are less disturbed by other load than the wall clock.

Works on an older checkout too (``PYTHONPATH=../base python benchmarks/bench_figures.py
--workers 1``): without ``executor=`` in ``render_figures`` only one worker can be timed.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import busy_cpus, load_note

TARGET_SHARE = 0.2
"""Figures may take at most this share of a full-size ``inmail-sim run``."""


def _timed(work: Callable[[], Any]) -> tuple[Any, float, float]:
    """``work()``, its wall seconds and the CPU seconds of this process."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = work()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def import_seconds() -> float:
    """Seconds to import the plotting package (matplotlib included), as ``inmail-sim run`` pays once."""
    assert "matplotlib" not in sys.modules, "matplotlib was imported before the figures were timed"
    start = time.perf_counter()
    import simulator.io.plotting  # noqa: F401

    return time.perf_counter() - start


def _simulated(scenario: Any, executor: Any, folder: str) -> Any:
    """What ``inmail-sim run --no-figures`` does: run the experiment and write the run folder (its tables)."""
    from simulator.experiments.experiment import run_experiment
    from simulator.io.outputs import write_run

    results = run_experiment(scenario, executor=executor, memory_check=False)
    write_run(results, folder)
    return results


def _figure_pool(results: Any) -> Any:
    """The forked figure pool of ``inmail-sim run`` (``simulator.io.plotting.figure_pool``), or a no-op in a
    checkout without one. Its CPU time is spent in child processes: the CPU share then counts the parent only."""
    try:
        from simulator.io.plotting import FIGURES
        from simulator.io.plotting.figure_pool import figure_pool
    except ImportError:
        return contextlib.nullcontext(None)
    return figure_pool(results, len(FIGURES))


def measure(scenario_path: str, overrides: Sequence[str], workers: int, rounds: int,
            imported: float) -> dict[str, Any]:
    """Simulation and figure times of the scenario on ``workers`` workers."""
    from simulator.experiments.runner import open_executor
    from simulator.scenario import load_scenario

    scenario = load_scenario(scenario_path, list(overrides))
    with open_executor(workers) as executor, tempfile.TemporaryDirectory() as folder:
        results, sim_wall, sim_cpu = _timed(lambda: _simulated(scenario, executor, folder))
        imported = imported if imported >= 0 else import_seconds()
        from simulator.io.plotting import render_figures

        pool = executor if workers > 1 else None
        if pool is not None and "executor" not in inspect.signature(render_figures).parameters:
            raise SystemExit("this checkout's render_figures has no executor=: time it with --workers 1")
        with _figure_pool(results) as forked:  # what `inmail-sim run` draws with, where the checkout has it
            pool = forked or pool
            draws = [_timed(lambda: render_figures(results, executor=pool) if pool else render_figures(results))
                     for _ in range(rounds)]
    pngs = draws[0][0]
    first, best = draws[0][1] + imported, min(d[1] for d in draws)
    return {
        "workers": workers, "replications": len(results.replications) // max(len(scenario.policy_names), 1),
        "figures": len(pngs), "png_bytes": sum(len(p) for p in pngs.values()),
        "simulation_s": sim_wall, "simulation_cpu_s": sim_cpu, "import_s": imported,
        "figures_first_s": first, "figures_best_s": best,
        "figures_cpu_best_s": min(d[2] for d in draws),
        "share_first": first / (sim_wall + first), "share_best": best / (sim_wall + best),
        "share_cpu": (min(d[2] for d in draws) + imported) / (sim_cpu + min(d[2] for d in draws) + imported),
    }


def report(rows: Sequence[dict[str, Any]]) -> str:
    """The table of :func:`measure` rows and the verdict on the first (worker) row."""
    lines = ["| workers | simulation s | figures s (first / best) | share of the run (first / best) | "
             "one-worker CPU share | target |", "|---|---|---|---|---|---|"]
    for row in rows:
        cpu = f"{row['share_cpu']:.0%}" if row["workers"] == 1 else "-"
        ok = "OK" if row["share_first"] <= TARGET_SHARE else "MISSED"
        lines.append(f"| {row['workers']} | {row['simulation_s']:.2f} | {row['figures_first_s']:.2f} / "
                     f"{row['figures_best_s']:.2f} | {row['share_first']:.0%} / {row['share_best']:.0%} | {cpu} | "
                     f"<= {TARGET_SHARE:.0%}: {ok} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="scenarios/old_vs_new.yaml", help="the job (default: the main job)")
    parser.add_argument("--workers", default="1,2", help="worker counts to time (comma list; default 1,2)")
    parser.add_argument("--rounds", type=int, default=3, help="times the figures are drawn per worker count")
    parser.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                        help="scenario override, as in inmail-sim (e.g. replications=5); default: full size")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    workers = [int(k) for k in args.workers.split(",") if k.strip()]
    print(load_note(busy_cpus()), flush=True)
    rows, imported = [], -1.0
    for k in workers:
        row = measure(args.scenario, args.set, k, max(args.rounds, 1), imported)
        imported = row["import_s"]  # paid once per process: timed by the first worker count, charged to all
        rows.append(row)
        print(f"workers {k}: simulation {row['simulation_s']:.2f} s, figures {row['figures_first_s']:.2f} s first "
              f"(import {row['import_s']:.2f} s) / {row['figures_best_s']:.2f} s best, {row['figures']} PNGs",
              flush=True)
    print(report(rows))
    print(load_note(busy_cpus()))
    if args.json:
        Path(args.json).write_text(json.dumps({"cpus": os.cpu_count(), "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
