"""Before/after speed of the engine: the same replications timed in two checkouts, interleaved.

    python benchmarks/compare_trees.py BASE_TREE [--tree NEW_TREE] [--sizes small,medium] [--rounds 5]
                                       [--reps 1] [--policy new_2015] [--seed 1]

A shared or noisy machine makes two benchmark runs minutes apart incomparable, so the two
engines are timed in alternating fresh child processes (``BASE, NEW`` then ``NEW, BASE``, ...),
each pinned to one CPU with ``PYTHONPATH`` set to its checkout, on the same benchmark market
(this checkout's ``bench_market``) and seed.  The figures are the ratio of the fastest times
of all rounds and the median of the ratios within a round (new / base: below 1 is faster);
the results of the two must agree (same metrics) or the comparison stops.  Make the base
checkout with, for example, ``git worktree add ../base <commit>``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench_common import CHILD_MARK, HORIZON_DAYS, SIZES, busy_cpus, child_env, emit, load_note, pin_one_cpu
from bench_market import default_market, warm_up

HERE = Path(__file__).resolve()


def child(size_name: str, policy_name: str, reps: int, seed: int) -> None:
    """Time ``reps`` replications of ``size_name`` with the ``simulator`` on this process's path."""
    import simulator
    from simulator import RunConfig, preset, run_replication

    pinned = pin_one_cpu()
    size = SIZES[size_name]
    market, policy = default_market(size.recruiters, size.members), preset(policy_name)
    run = RunConfig(horizon_days=HORIZON_DAYS)
    warm_up(policy)
    walls: list[float] = []
    metrics: dict[str, float] = {}
    for _ in range(reps):
        t0 = time.perf_counter()
        res = run_replication(market, policy, run, seed=seed)
        walls.append(time.perf_counter() - t0)
        metrics = dict(res.metrics)
    emit({"walls": walls, "metrics": metrics, "simulator": str(Path(simulator.__file__).parent), "pinned": pinned})


def time_tree(tree: Path, size_name: str, policy_name: str, reps: int, seed: int) -> dict[str, object]:
    """Run :func:`child` in a fresh interpreter whose ``simulator`` is the one of ``tree``."""
    env = child_env()
    env["PYTHONPATH"] = str(tree)
    cmd = [sys.executable, str(HERE), "--child", size_name, policy_name, str(reps), str(seed)]
    proc = subprocess.run(cmd, env=env, cwd=tree, capture_output=True, text=True, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(CHILD_MARK)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"child in {tree} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    payload: dict[str, object] = json.loads(lines[-1][len(CHILD_MARK):])
    if Path(str(payload["simulator"])).resolve() != (tree / "simulator").resolve():
        raise RuntimeError(f"child imported {payload['simulator']}, not the simulator of {tree}")
    return payload


def compare(base: Path, new: Path, size_name: str, policy_name: str, rounds: int, reps: int, seed: int) -> float:
    """Interleave ``rounds`` timings of each tree on one size; print the ratios, return the paired median.

    Two figures of new / base: the ratio of the fastest times over all rounds, and the median
    over rounds of the ratio within a round (each side's fastest in that round: the two ran
    back to back, so a slow spell of the machine mostly hits both).
    """
    walls: dict[str, list[float]] = {"base": [], "new": []}
    paired: list[float] = []
    metrics: dict[str, str] = {}
    for r in range(rounds):
        order = (("base", base), ("new", new)) if r % 2 == 0 else (("new", new), ("base", base))
        fastest: dict[str, float] = {}
        for label, tree in order:
            payload = time_tree(tree, size_name, policy_name, reps, seed)
            times: list[float] = payload["walls"]  # type: ignore[assignment]
            walls[label].extend(times)
            fastest[label] = min(times)
            metrics[label] = json.dumps(payload["metrics"], sort_keys=True)  # NaN-safe equality
        paired.append(fastest["new"] / fastest["base"])
    if metrics["base"] != metrics["new"]:
        raise SystemExit(f"{size_name}: the two trees give different results; not a speed comparison")
    best = {label: min(w) for label, w in walls.items()}
    size = SIZES[size_name]
    sent = int(json.loads(metrics["new"])["sent"])
    quartiles = statistics.quantiles(paired, n=4) if len(paired) > 1 else [paired[0]] * 3
    print(f"{size_name:<7}{size.recruiters:>7,} x {size.members:>9,}  {sent:>11,} InMails  "
          f"fastest of {len(walls['base'])}: base {best['base']:.3f} s, new {best['new']:.3f} s, "
          f"new/base {best['new'] / best['base']:.3f};  paired rounds: median new/base {quartiles[1]:.3f} "
          f"(quartiles {quartiles[0]:.3f}-{quartiles[2]:.3f}, {len(paired)} rounds)")
    return quartiles[1]


def main(argv: Sequence[str] | None = None) -> int:
    """Compare the engine of ``BASE_TREE`` with this checkout's (or ``--tree``'s) on each size."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base", type=Path, nargs="?", help="checkout of the engine before the change")
    ap.add_argument("--tree", type=Path, default=HERE.parent.parent, help="checkout after the change (default: this)")
    ap.add_argument("--sizes", default="small,medium", help="comma list of small, medium, large")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (each tree once per round)")
    ap.add_argument("--reps", type=int, default=1, help="replications per child (all timed)")
    ap.add_argument("--policy", default="new_2015")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        size_name, policy_name, reps, seed = args.child
        child(size_name, policy_name, int(reps), int(seed))
        return 0
    if args.base is None:
        ap.error("BASE_TREE is required")
    base, new = args.base.resolve(), args.tree.resolve()
    print(f"engine speed, {new} against {base}: {args.policy}, seed {args.seed}, {HORIZON_DAYS} days, "
          f"{args.rounds} interleaved rounds of fresh pinned children")
    print(load_note(busy_cpus()))
    for name in (s.strip() for s in args.sizes.split(",") if s.strip()):
        compare(base, new, name, args.policy, args.rounds, args.reps, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
