"""How the wall time of ``inmail-sim optimize`` splits between simulation and search overhead.

    python benchmarks/bench_search.py [--scenario scenarios/design_2015.yaml] [--trials 8] [--population 4]
                                      [--scale 0.05] [--horizon 90] [--workers 1] [--out DIR] [--json FILE]
    python benchmarks/bench_search.py --folder DIR      # only read the split of a finished search

It runs one small search (``python -m simulator optimize``, in a child process, timed from outside
too), then reads ``search.json`` ``seconds`` (``total``, ``simulation``, ``search_overhead``) and the
replications (``search.json`` ``replications``: simulated and read back from the store; the tables'
counts as a fallback), and prints: the wall time
outside the search (process start, imports, loading the scenario, writing the figures), the search's
own time split, the simulation seconds per replication and the overhead per trial.  The overhead per
trial is the figure to watch: it does not shrink with a smaller market, so for a tiny market it is a
large share, for the shipped ``design_2015.yaml`` a small one.  See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def _replications(folder: Path, file: str, column: str) -> int:
    """The sum of ``column`` in ``folder/file`` (0 when the file or column is missing)."""
    try:
        frame = pd.read_csv(folder / file)
    except (OSError, ValueError):
        return 0
    if column not in frame.columns:
        return 0
    return int(pd.to_numeric(frame[column], errors="coerce").fillna(0).sum())


def search_split(folder: Path, outside: float | None = None) -> dict[str, Any]:
    """The figures of one finished search folder (``outside``: the wall time of the whole command, if timed)."""
    meta = json.loads((folder / "search.json").read_text(encoding="utf-8"))
    seconds = meta.get("seconds") or {}
    total = float(seconds.get("total", math.nan))
    simulation = float(seconds.get("simulation", math.nan))
    overhead = float(seconds.get("search_overhead", math.nan))
    trials = _replications(folder, "trials.csv", "replications")
    reevaluated = _replications(folder, "pareto.csv", "reevaluated_replications")
    references = _replications(folder, "references.csv", "replications")
    try:
        count = len(pd.read_csv(folder / "trials.csv"))
    except (OSError, ValueError):
        count = int(meta.get("trials", 0) or 0)
    booked = meta.get("replications") if isinstance(meta.get("replications"), dict) else {}
    counted = trials + reevaluated + references
    replications = int(booked.get("simulated", counted))
    return {
        "folder": str(folder), "trials": count, "replications": replications,
        "trial_replications": trials, "reevaluated_replications": reevaluated,
        "reference_replications": references, "read_back": int(booked.get("read_back", 0)),
        "wall_seconds": outside, "total_seconds": total, "simulation_seconds": simulation,
        "search_overhead_seconds": overhead,
        "outside_seconds": (outside - total) if outside is not None else None,
        "simulation_share": simulation / total if total > 0 else math.nan,
        "seconds_per_replication": simulation / replications if replications else math.nan,
        "overhead_per_trial": overhead / count if count else math.nan,
    }


def format_split(split: dict[str, Any]) -> str:
    """The split as a few aligned lines."""
    def line(label: str, value: float | None, unit: str = "s") -> str:
        text = "n/a" if value is None or not math.isfinite(value) else f"{value:,.2f} {unit}".rstrip()
        return f"  {label:<46} {text}"

    lines = [f"search: {split['trials']} trials, {split['replications']:,} replications simulated "
             f"({split['read_back']:,} more read back from the store); the tables hold "
             f"{split['trial_replications']:,} in trials, {split['reevaluated_replications']:,} re-evaluating the "
             f"front, {split['reference_replications']:,} for the references"]
    if split["wall_seconds"] is not None:
        lines.append(line("wall time of the command", split["wall_seconds"]))
        lines.append(line("  outside the search (start, load, files)", split["outside_seconds"]))
    lines += [line("search (search.json total)", split["total_seconds"]),
              line("  simulation", split["simulation_seconds"]),
              line("  search overhead (sampler, study, books)", split["search_overhead_seconds"]),
              line("simulation share of the search", 100 * split["simulation_share"], "%"),
              line("simulation per replication", 1000 * split["seconds_per_replication"], "ms"),
              line("search overhead per trial", 1000 * split["overhead_per_trial"], "ms")]
    return "\n".join(lines)


def run_search(args: argparse.Namespace, out: Path) -> float:
    """Run ``inmail-sim optimize`` with the benchmark's sizes in a child process; its wall time in seconds."""
    command = [sys.executable, "-m", "simulator", "optimize", str(args.scenario), "--out", str(out), "--force",
               "--set", f"optimize.trials={args.trials}", "--set", f"optimize.population={args.population}",
               "--set", f"horizon_days={args.horizon}", "--scale", str(args.scale), "--workers", str(args.workers),
               "--no-progress"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"inmail-sim optimize failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return wall


def main(argv: Sequence[str] | None = None) -> int:
    """Run a small search (or read ``--folder``) and print how its time splits."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", type=Path, default=ROOT / "scenarios" / "design_2015.yaml")
    ap.add_argument("--trials", type=int, default=8, help="trials of the search (default 8)")
    ap.add_argument("--population", type=int, default=4, help="trials per generation (default 4)")
    ap.add_argument("--scale", type=float, default=0.05,
                    help="--scale of the command: replaces the scenario's scale: (default 0.05: design_2015.yaml's "
                         "market at 5,000 members and 50 recruiters; 0.25 is the shipped size)")
    ap.add_argument("--horizon", type=int, default=90, help="days of sending (default 90)")
    ap.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    ap.add_argument("--out", type=Path, help="the output folder (default: a temporary one, removed)")
    ap.add_argument("--folder", type=Path, help="read the split of this finished search folder; run nothing")
    ap.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    if args.folder is not None:
        split = search_split(args.folder)
    else:
        with tempfile.TemporaryDirectory(prefix="bench_search_") as scratch:
            out = args.out or Path(scratch) / "search"
            wall = run_search(args, out)
            split = search_split(out, wall)
    print(format_split(split))
    if args.json:
        args.json.write_text(json.dumps(split, indent=2, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
