"""``inmail-sim run`` (a scenario's Monte Carlo experiment into a run folder) and ``inmail-sim validate``."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from simulator.cli.common import (
    EXIT_OK,
    ErrorLog,
    InputError,
    ProgressBar,
    add_executor_options,
    add_limit_options,
    add_resume_options,
    add_scenario_argument,
    add_set_option,
    admit_work,
    command_limits,
    executor_settings,
    int_at_least,
    open_run_folder,
    opened_executor,
    positive_float,
    print_written,
    stopped_run,
)
from simulator.cli.explore import describe_explore_blocks
from simulator.cli.worlds import add_worlds_options, cmd_run_worlds, worlds_source
from simulator.scenario import Scenario, load_scenario

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from simulator.cli.common import Subcommands
    from simulator.experiments.experiment import Results


def add_run_parser(commands: Subcommands) -> None:
    """``inmail-sim run``."""
    run = commands.add_parser("run", help="run a scenario's Monte Carlo experiment and write a run folder",
                              description="Run every policy of SCENARIO on common random numbers, print the "
                                          "comparison and write CSV results to the output folder.")
    add_scenario_argument(run)
    run.add_argument("--out", metavar="DIR", help="output folder (default: runs/<scenario name>-<timestamp>)")
    run.add_argument("--replications", "-n", type=int_at_least(1), metavar="N",
                     help="replications per policy (overrides the scenario); with --worlds: per world")
    run.add_argument("--seed", type=int_at_least(0), metavar="S", help="root seed (overrides the scenario)")
    add_executor_options(run)
    add_worlds_options(run)
    run.add_argument("--precision", type=positive_float, metavar="X",
                     help="add replications until the 95%% CI half-width of the response-rate difference "
                          "(absolute) and of the relative net-credit-burn change are both <= X")
    run.add_argument("--max-replications", type=int_at_least(1), metavar="N",
                     help="replication cap for --precision (default: the scenario's max_replications)")
    run.add_argument("--replication", type=int_at_least(0), metavar="I",
                     help="run only replication I of every policy (re-run one replication alone)")
    add_set_option(run)
    add_resume_options(run)
    run.add_argument("--no-timeseries", action="store_true",
                     help="do not keep the daily series (no timeseries.csv): less to ship from workers and store")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--quiet", "-q", action="store_true", help="do not print the comparison table")
    run.add_argument("--no-figures", action="store_true",
                     help="do not draw the figures (figures/*.png; `inmail-sim report DIR` draws them later)")


def add_validate_parser(commands: Subcommands) -> None:
    """``inmail-sim validate``."""
    validate = commands.add_parser("validate", help="check a scenario file and report every problem",
                                   description="Load SCENARIO (with extends and --set overrides) and report "
                                               "every problem with its file, line and field; exit code 2 if "
                                               "invalid.")
    add_scenario_argument(validate)
    add_set_option(validate)
    add_limit_options(validate)


# --------------------------------------------------------------------------- run


def cmd_run(args: argparse.Namespace, argv: Sequence[str], log: ErrorLog) -> int:
    """``inmail-sim run``: every finished replication is kept in OUT/replications as it finishes."""
    from simulator.experiments.budget import experiment_workload
    from simulator.scenario import with_changes

    if args.replication is not None and args.precision is not None:
        raise InputError("--replication re-runs one replication; it cannot be combined with --precision")
    if args.resume and not args.out:
        raise InputError("--resume needs --out DIR: the folder of the run to continue")
    workers, dask = executor_settings(args)
    started = dt.datetime.now().astimezone()
    scenario = with_changes(load_scenario(args.scenario, args.set), replications=args.replications,
                            root_seed=args.seed, max_replications=args.max_replications)
    note_ignored_blocks(scenario)
    warn_about_size(args.scenario, scenario)
    if args.no_timeseries:
        scenario = dataclasses.replace(scenario, run=dataclasses.replace(scenario.run, record_daily=False))
    source = worlds_source(args, scenario)
    if source is not None:
        out = Path(args.out) if args.out else default_run_folder(scenario.name, started)
        return cmd_run_worlds(args, argv, log, scenario, source, out, workers, dask, started)
    n = (1 if args.replication is not None else scenario.max_replications if args.precision is not None
         else scenario.replications)
    work = experiment_workload(scenario, n, lower=RUN_LOWER, less_memory="--no-timeseries")
    workers, _ = admit_work(args, work, workers, dask)  # refused past a limit (exit 2) before the folder
    out = Path(args.out) if args.out else default_run_folder(scenario.name, started)
    with opened_executor(workers, dask) as executor:
        return _run_in_folder(args, argv, log, scenario, out, executor, workers, dask, started)


RUN_LOWER = "fewer --replications (or --max-replications with --precision)"


def default_run_folder(name: str, started: dt.datetime) -> Path:
    """``runs/<name>-<timestamp>``; the name is one safe folder name (checked again: never a path out of runs/)."""
    from simulator.scenario.errors import SAFE_NAME_RULE, printable, safe_name

    if not safe_name(name):
        raise InputError(f"scenario name {printable(name)!r} cannot name the output folder: it {SAFE_NAME_RULE}; "
                         "give --out DIR")
    return Path("runs") / f"{name}-{started:%Y%m%d-%H%M%S}"


def warn_about_size(file: str, scenario: Scenario) -> None:
    """Warn (on stderr) when ``--set`` or a small scale changed members per recruiter, or a scale leaves a
    group tiny."""
    from simulator.scenario import ScenarioError
    from simulator.scenario.scale import FLOOR_ADVICE, load_change_note, small_group_note

    full = scenario.full_market or scenario.market
    notes = [small_group_note(full, scenario.market, scenario.scale),
             load_change_note(full, scenario.market, f"scale {scenario.scale:g}", FLOOR_ADVICE)]
    if any(not text.startswith("scale=") for text in scenario.overrides):
        try:
            as_written = load_scenario(file, scale=1.0).market
        except ScenarioError:  # the file alone is invalid (the overrides repair it): nothing to compare with
            as_written = full
        notes.insert(0, load_change_note(as_written, full))
    for note in filter(None, notes):
        print(f"inmail-sim: warning: {note}", file=sys.stderr)


def note_ignored_blocks(scenario: Scenario) -> None:
    """``run`` ignores the sweep: and sensitivity: blocks; say so (on stderr)."""
    for block in ("sweep", "sensitivity"):
        if scenario.resolved.get(block) is not None:
            print(f"inmail-sim: note: `run` ignores the {block}: block (`inmail-sim {block}` runs it)",
                  file=sys.stderr)


def _run_in_folder(args: argparse.Namespace, argv: Sequence[str], log: ErrorLog, scenario: Scenario, out: Path,
                   executor: Executor, workers: int, dask: str | None, started: dt.datetime) -> int:
    from simulator.experiments.experiment import ReplicationError, run_experiment
    from simulator.experiments.runner import describe_executor
    from simulator.io.outputs import resume_command, write_run
    from simulator.io.tables import format_results

    folder = open_run_folder(args, scenario, out, log)
    again = resume_command(argv, out)
    bar = ProgressBar(scenario.name, unit="replication", hidden=args.no_progress)
    try:
        with folder:
            with bar:
                results = run_experiment(
                    scenario, executor=executor, precision=args.precision,
                    indices=[args.replication] if args.replication is not None else None, progress=bar,
                    store=folder.store, memory_check=False,
                )
            write_run(results, out, argv=["inmail-sim", *argv], started=started,
                      finished=dt.datetime.now().astimezone(), workers=workers,
                      executor=describe_executor(workers, dask))
    except (KeyboardInterrupt, ReplicationError) as exc:
        return stopped_run(exc, folder, log, argv, again)
    if not args.no_figures:
        write_figures_or_warn(results, out, executor if workers > 1 else None)
    if not args.quiet:
        print(format_results(results))
        note = monte_carlo_note(scenario, args.scenario)
        if note:
            print(note)
    series = "" if args.no_timeseries else " timeseries.csv,"
    print_written(f"summary.csv, comparison.csv, replications.csv,{series} ...", out)
    return EXIT_OK


def monte_carlo_note(scenario: Scenario, path: str) -> str:
    """Under the table of a plain run: its intervals are Monte Carlo noise only; how to see the assumptions' spread."""
    if len(scenario.policies) < 2:
        return ""
    count = len(scenario.uncertain)
    first = "note: the CIs above cover Monte Carlo noise only, not the uncertainty of the market assumptions."
    if not count:
        return (f"{first}\n  Declare the uncertain ones in an uncertain: block (docs/scenarios.md) and run "
                "with\n  --worlds prior to answer across plausible worlds.")
    return (f"{first}\n  This scenario declares {count} uncertain assumption{'s' if count != 1 else ''}; the answer "
            "across plausible worlds\n  (--worlds DIR/posterior.csv after `inmail-sim calibrate`, or the priors):\n"
            f"    inmail-sim run {shlex.quote(path)} --worlds prior")


def write_figures_or_warn(results: Results, out: Path, executor: Executor | None) -> None:
    """Figures come after the results are written: a plotting failure never loses them.

    On a machine with several cores the figures are drawn in parallel, in processes forked after the
    results exist (nothing to ship); elsewhere on the run's pool if it has several workers, else serially.
    """
    try:
        from simulator.io.plotting import FIGURES, write_figures
        from simulator.io.plotting.figure_pool import figure_pool

        with figure_pool(results, len(FIGURES)) as pool:
            write_figures(results, out, executor=pool or executor)
    except Exception as exc:
        print(f"inmail-sim: warning: figures not (all) written: {type(exc).__name__}: {exc}", file=sys.stderr)


# --------------------------------------------------------------------------- validate


def cmd_validate(args: argparse.Namespace) -> int:
    """``inmail-sim validate``: load and check the scenario (and its study blocks), describe it."""
    from simulator.experiments.budget import admit, describe, experiment_workload
    from simulator.scenario.errors import printable

    scenario = load_scenario(args.scenario, args.set)
    warn_about_size(args.scenario, scenario)
    limits = command_limits(args)
    work = experiment_workload(scenario, scenario.replications, lower=RUN_LOWER)
    admit(work, limits)  # what `run` would refuse, refused here; the blocks' sizes before any point is built
    studies = describe_explore_blocks(scenario, limits)
    if scenario.resolved.get("calibration") is not None:  # checked before anything is printed
        from simulator.experiments.calibration import describe_spec

        studies.append(describe_spec(scenario, limits))
    if scenario.optimize is not None:
        from simulator.cli.optimize import describe_optimize

        studies.append(describe_optimize(scenario, limits))
    market = scenario.market
    print(f"{printable(args.scenario)}: OK")
    print(f"  scenario {scenario.name}: {scenario.run.horizon_days} days from "
          f"{scenario.run.start_date.isoformat()}, {scenario.replications} replications "
          f"(cap {scenario.max_replications}), root seed {scenario.root_seed}")
    print(f"  market: {market.members.count:,} members in {len(market.members.segments)} segments, "
          f"{market.recruiter_count:,} recruiters in {len(market.recruiters)} groups{_scale_note(scenario)}")
    print(f"  memory: about {_memory_note(scenario)}")
    print(f"  work of `run`: {describe(work, limits)}")
    for name in scenario.policy_names:
        policy = scenario.policies[name]
        tag = " (baseline)" if name == scenario.baseline else ""
        print(f"  policy {name}{tag}: {printable(policy.description)}")
    if scenario.uncertain:
        count, names = len(scenario.uncertain), ", ".join(p.name for p in scenario.uncertain)
        worlds = f"; worlds: {printable(scenario.worlds)}" if scenario.worlds else ""
        if scenario.worlds not in (None, "prior") and not Path(str(scenario.worlds)).is_file():
            worlds += " (not found yet: a study across worlds needs it; `run` does not)"
        print(f"  uncertain: {count} assumption{'s' if count != 1 else ''} ({names}){worlds}")
    if scenario.decision:
        print("  decision: " + "; ".join(requirement.text for requirement in scenario.decision))
    for line in studies:
        print(line)
    return EXIT_OK


def _scale_note(scenario: Scenario) -> str:
    """`` (scale 0.2 of 100,000 members, 1,000 recruiters)`` when the scenario is scaled."""
    if scenario.full_market is None:
        return ""
    full = scenario.full_market
    return (f" (scale {scenario.scale:g} of {full.members.count:,} members, "
            f"{full.recruiter_count:,} recruiters)")


def _memory_note(scenario: Scenario) -> str:
    """``0.15 GiB per replication at a time (limit: 22.10 GiB, MemAvailable)`` for ``validate``."""
    from simulator.scenario.memory import estimate, gib, memory_limit

    per_replication = estimate(scenario).per_replication
    cap, source = memory_limit()
    limit = f" (limit: {gib(cap)}, {source})" if cap is not None else ""
    return f"{gib(per_replication)} per replication at a time{limit}"
