"""``inmail-sim optimize``: search a scenario's ``optimize:`` levers for the best trade-offs (docs/optimize.md).

The mechanism is :mod:`simulator.experiments.search`; the files are written by :mod:`simulator.io.search_files`.
The study and every replication stay in the output folder: the same command again resumes an
interrupted search without redoing finished trials (``--force`` starts over).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simulator.cli.common import (
    ErrorLog,
    InputError,
    ProgressBar,
    StudySummary,
    add_study_arguments,
    admit_work,
    executor_settings,
    int_at_least,
    run_study_into_folder,
)
from simulator.scenario import Scenario, load_scenario

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from simulator.cli.common import Subcommands

FINGERPRINT = "search_fingerprint.json"


def add_optimize_parser(commands: Subcommands) -> None:
    """``inmail-sim optimize``."""
    optimize = commands.add_parser(
        "optimize", help="search the optimize: block's policy levers for the best trade-offs (Pareto set)",
        description="Search the policy rules of SCENARIO's optimize: block (NSGA-II with Optuna): every trial runs "
                    "on the same seeds as the presets, with replications added until its objectives are known to "
                    "the block's precision; a constraint counts as met only when its 95% CI bound meets it. The "
                    "Pareto set is re-evaluated on more replications. Writes trials.csv, pareto.csv, "
                    "pareto_policies.yaml, references.csv, hypervolume.csv, search.json, pareto.png, "
                    "convergence.png. Run the same command again to resume an interrupted search.")
    optimize.add_argument("--trials", type=int_at_least(1), metavar="N", help="trials (default: optimize.trials)")
    optimize.add_argument("--seed", type=int_at_least(0), metavar="N",
                          help="search seed (default: optimize.seed, else the scenario's root_seed)")
    optimize.add_argument("--worlds", metavar="prior|posterior.csv",
                          help="robust mode: score each trial across plausible worlds drawn from the uncertain: "
                               "block (prior) or a calibration's posterior.csv")
    optimize.add_argument("--world-count", type=int_at_least(2), metavar="W",
                          help="worlds of the robust mode (default 8)")
    optimize.add_argument("--force", action="store_true",
                          help="start over in --out DIR (deletes the search already there)")
    optimize.add_argument("--stop-after", type=int_at_least(1), metavar="K", help=argparse.SUPPRESS)
    add_study_arguments(optimize)


def cmd_optimize(args: argparse.Namespace, argv: Sequence[str], log: ErrorLog) -> int:
    """``inmail-sim optimize``: validate, search (resuming what the folder holds), write the folder."""
    from simulator.experiments.search import (
        SearchSettings,
        optimize_spec,
        run_search,
        search_workload,
        search_worlds,
    )
    from simulator.experiments.worlds import WorldsFileError
    from simulator.io.search_files import format_search, write_search

    workers, dask = executor_settings(args)
    started = dt.datetime.now().astimezone()
    scenario = load_scenario(args.scenario, args.set)
    optimize_spec(scenario)  # a missing block exits 2 before anything runs
    worlds: tuple[Any, ...] = ()
    worlds_info = None
    if args.world_count is not None and args.worlds is None:
        raise InputError("--world-count needs --worlds prior|posterior.csv")
    if args.worlds is not None:
        try:
            worlds, worlds_info = search_worlds(scenario, args.worlds, args.world_count)
        except WorldsFileError as exc:
            raise InputError(str(exc)) from None
    settings = SearchSettings(trials=args.trials, seed=args.seed, worlds=worlds, worlds_info=worlds_info,
                              stop_after=args.stop_after)
    # --max-tasks / --memory-limit: refused (exit 2) before the folder is touched, on an upper estimate
    workers, _ = admit_work(args, search_workload(scenario, args.trials, len(worlds)), workers, dask)

    def search(executor: Executor, out: Path, bar: ProgressBar) -> StudySummary:
        _claim_folder(out, _fingerprint(scenario, args), args.force)
        result = run_search(scenario, executor, out=out, settings=settings, progress=bar)
        bar.close()
        files = write_search(result, out, argv=["inmail-sim", *argv])
        return StudySummary(format_search(result), files, interrupted=not result.finished)

    return run_study_into_folder(args, log, scenario.name, started, workers, dask, search,
                                 kept_on_interrupt="the study and every finished replication (study.journal, "
                                                   "replications/: the same command resumes from them)")


def _fingerprint(scenario: Scenario, args: argparse.Namespace) -> dict[str, Any]:
    """What a resumed search must share with the one in the folder."""
    return {"scenario": json.loads(json.dumps(scenario.resolved, default=str)), "seed": args.seed,
            "worlds": args.worlds, "world_count": args.world_count}


def _claim_folder(out: Path, fingerprint: dict[str, Any], force: bool) -> None:
    """Resume the search in ``out`` if it is the same one, start over with ``--force``, else refuse."""
    from simulator.experiments.runner import atomic_write
    from simulator.experiments.search import JOURNAL, STORE_FOLDER

    path = out / FINGERPRINT
    held = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    if force:
        (out / JOURNAL).unlink(missing_ok=True)
        shutil.rmtree(out / STORE_FOLDER, ignore_errors=True)
    elif held is not None and held != fingerprint:
        raise InputError(f"--out {out}: holds a search of another scenario, seed or worlds; choose another folder "
                         "or add --force to start over")
    elif held is not None:
        print(f"inmail-sim: resuming the search in {out} (finished trials and replications are reused)",
              file=sys.stderr)
    elif (out / JOURNAL).exists():
        raise InputError(f"--out {out}: holds a study without its fingerprint; add --force to start over")
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(fingerprint, indent=1) + "\n", encoding="utf-8"))



def describe_optimize(scenario: Scenario, limits: Any = None) -> str:
    """``validate``'s line for the ``optimize:`` block: base, levers, objectives, constraints and budget
    (refused like ``optimize`` past the task or memory limit)."""
    from simulator.experiments.budget import admit, duration, replication_seconds
    from simulator.experiments.search import optimize_spec, reference_names, replication_counts, search_workload

    spec = optimize_spec(scenario)
    work = search_workload(scenario)
    admit(work, limits)
    first, most, final = replication_counts(spec)
    least = len(reference_names(spec)) * final + spec.trials * first
    levers = ", ".join(lv.path for lv in spec.levers)
    objectives = ", ".join(f"{o.direction} {o.metric}" for o in spec.objectives)
    constraints = "; ".join(c.text for c in spec.constraints) or "none"
    return (f"  optimize: from {spec.base}, {len(spec.levers)} levers ({levers}); objectives: {objectives}; "
            f"constraints: {constraints}; budget: {spec.trials} trials in generations of {spec.population} "
            f"({spec.sampler}), {first} to {most} replications each, the presets and the Pareto set on {final}: "
            f"{least:,} to {work.tasks:,} replications, roughly {duration(least * replication_seconds(scenario))} "
            f"to {duration(work.seconds)} on one core")
