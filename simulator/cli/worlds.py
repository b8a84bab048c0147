"""``inmail-sim run --worlds``: the run across plausible worlds (the glue between the CLI and the study)."""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from simulator.cli.common import (
    EXIT_OK,
    ErrorLog,
    InputError,
    ProgressBar,
    admit_work,
    int_at_least,
    open_run_folder,
    opened_executor,
    print_written,
    stopped_run,
)
from simulator.scenario import Scenario

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from simulator.experiments.worlds import WorldPlan


NO_WORLDS = "none"
"""``--worlds none``: a plain run of a scenario that has a ``worlds:`` key."""


def add_worlds_options(parser: argparse.ArgumentParser) -> None:
    """``--worlds SOURCE`` and ``--world-count W`` of ``inmail-sim run``."""
    parser.add_argument("--worlds", metavar="SOURCE",
                        help="run every policy across plausible worlds of the scenario's uncertain: block: "
                             "'prior' (a Latin hypercube over the priors) or DIR/posterior.csv or DIR (a weighted "
                             "resample of its rows); then --replications is per world (default 2). 'none': a plain run "
                             "even if the scenario has a worlds: key")
    parser.add_argument("--world-count", type=int_at_least(2), metavar="W",
                        help="world draws of a run with --worlds (default 40)")


def worlds_source(args: argparse.Namespace, scenario: Scenario) -> str | None:
    """``--worlds``, else the scenario's ``worlds:`` key, else None (a plain run; also ``--worlds none``)."""
    if args.worlds is not None and args.worlds != NO_WORLDS:
        return str(args.worlds)
    source = None if args.worlds == NO_WORLDS else scenario.worlds
    if source is None and args.world_count is not None:
        raise InputError("--world-count needs --worlds prior|DIR/posterior.csv (or a worlds: key in the scenario)")
    return None if source is None else str(source)


def cmd_run_worlds(args: argparse.Namespace, argv: Sequence[str], log: ErrorLog, scenario: Scenario,
                   source: str, out: Path, workers: int, dask: str | None, started: dt.datetime) -> int:
    """``inmail-sim run --worlds``: plan the worlds (bad input exits 2 before anything runs), run, write, print."""
    from simulator.experiments.budget import experiment_workload
    from simulator.experiments.world_study import prepare_worlds
    from simulator.experiments.worlds import WorldsFileError

    if args.precision is not None or args.replication is not None:
        raise InputError("--worlds runs W worlds x R replications; it cannot be combined with --precision or "
                         "--replication")
    parameters = scenario.uncertain
    try:
        scenario, plan = prepare_worlds(scenario, parameters, source, world_count=args.world_count,
                                        per_world=args.replications)
        from simulator.experiments.worlds import world_markets

        world_markets(scenario.market, parameters, plan)  # a world outside the model's ranges: exit 2 now
    except WorldsFileError as exc:
        raise InputError(str(exc)) from None
    work = experiment_workload(scenario, plan.replications, lower="fewer --world-count or --replications")
    workers, _ = admit_work(args, work, workers, dask)
    with opened_executor(workers, dask) as executor:
        return _in_folder(args, argv, log, scenario, plan, out, executor, workers, dask, started)


def _in_folder(args: argparse.Namespace, argv: Sequence[str], log: ErrorLog, scenario: Scenario,
               plan: WorldPlan, out: Path, executor: Executor, workers: int, dask: str | None,
               started: dt.datetime) -> int:
    from simulator.experiments.experiment import ReplicationError
    from simulator.experiments.provenance import run_fingerprint
    from simulator.experiments.runner import describe_executor
    from simulator.experiments.world_study import run_worlds, with_worlds_fingerprint
    from simulator.io.outputs import resume_command
    from simulator.io.world_files import write_worlds_run
    from simulator.io.world_tables import format_worlds

    folder = open_run_folder(args, scenario, out, log,
                             fingerprint=with_worlds_fingerprint(run_fingerprint(scenario), plan))
    again = resume_command(argv, out)
    bar = ProgressBar(scenario.name, unit="replication", hidden=args.no_progress)
    try:
        with folder:
            with bar:
                res = run_worlds(scenario, scenario.uncertain, plan.world_set.source, plan=plan,
                                 requirements=scenario.decision, executor=executor, progress=bar,
                                 store=folder.store, memory_check=False)
            write_worlds_run(res, out, argv=["inmail-sim", *argv], started=started,
                             finished=dt.datetime.now().astimezone(), workers=workers,
                             executor=describe_executor(workers, dask))
    except (KeyboardInterrupt, ReplicationError) as exc:
        return stopped_run(exc, folder, log, argv, again)
    if not args.no_figures:
        from simulator.cli.run import write_figures_or_warn

        write_figures_or_warn(res.results, out, executor if workers > 1 else None)
    if not args.quiet:
        print(format_worlds(res))
    print_written("worlds_comparison.csv, robustness.csv, worlds.csv, world_outcomes.csv, ...", out)
    return EXIT_OK
