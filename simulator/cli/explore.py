"""``inmail-sim sweep`` and ``inmail-sim sensitivity``: a scenario run over many parameter values.

The mechanisms are :mod:`simulator.experiments.sweep` and :mod:`simulator.experiments.sensitivity`;
both write their tasks into the output folder one by one, so an interrupted study resumes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simulator.cli.common import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    ErrorLog,
    InputError,
    ProgressBar,
    add_executor_options,
    add_no_progress_option,
    add_quiet_summary_option,
    add_resume_options,
    add_scenario_argument,
    add_set_option,
    add_study_out_option,
    admit_work,
    executor_settings,
    int_at_least,
    open_run_folder,
    opened_executor,
    print_written,
    study_folder,
)
from simulator.scenario import Scenario, load_scenario

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from simulator.cli.common import Subcommands
    from simulator.experiments.budget import Limits
    from simulator.experiments.sensitivity import SensitivityResults
    from simulator.experiments.sweep import SweepResults

    StudyResults = SweepResults | SensitivityResults


def add_explore_parsers(commands: Subcommands) -> None:
    """``inmail-sim sweep`` and ``inmail-sim sensitivity``."""
    sweep = commands.add_parser("sweep", help="run the scenario over the parameter values of its sweep: block",
                                description="Run every point of SCENARIO's sweep: block x every policy x "
                                            "replications (common random numbers) and write sweep.csv and "
                                            "figures.")
    sensitivity = commands.add_parser("sensitivity", help="Sobol indices and a tornado chart over parameter ranges",
                                      description="Global sensitivity of the sensitivity: block's outputs "
                                                  "(default: the response-rate difference and net credit burn) to "
                                                  "its parameter ranges (or the sweep: block's). Costs "
                                                  "N (d + 2) + 2 d + 1 evaluations.")
    for parser in (sweep, sensitivity):
        add_scenario_argument(parser)
        add_study_out_option(parser)
        parser.add_argument("--replications", "-n", type=int_at_least(1), metavar="N",
                            help="replications per point and policy (overrides the block's)")
        add_executor_options(parser)
        add_set_option(parser)
        add_resume_options(parser)
        add_no_progress_option(parser)
        add_quiet_summary_option(parser)
    sweep.add_argument("--reference", metavar="POINT",
                       help="compare every point with this one: NAME=VALUE[,NAME=VALUE] (NAME: a swept path or its "
                            "last part; naming some parameters keeps each point's others) or a point id; "
                            "overrides sweep.reference; writes sweep_reference.csv")
    sweep.add_argument("--compare", nargs=2, metavar=("A", "B"),
                       help="point A minus point B (paired), printed and written to sweep_comparison.csv")
    sensitivity.add_argument("--samples", type=int_at_least(2), metavar="N",
                             help="Sobol base sample size N, a power of 2 (overrides sensitivity.n)")
    sensitivity.add_argument("--no-sobol", action="store_true", help="the tornado only (2 d + 1 evaluations)")
    sensitivity.add_argument("--no-tornado", action="store_true", help="the Sobol indices only")


def describe_explore_blocks(scenario: Scenario, limits: Limits | None = None) -> list[str]:
    """Check the sweep: / sensitivity: blocks as the commands would (raises ScenarioError, sizes against
    ``limits`` before any point is built); describe them."""
    from simulator.experiments.budget import duration

    lines = []
    if scenario.resolved.get("sweep") is not None:
        from simulator.experiments.sweep import check_sweep, sweep_spec, sweep_workload, task_owners

        spec, points = sweep_spec(scenario), check_sweep(scenario, limits)
        owners = task_owners(points)
        runs = sum(owner == pid for (pid, _), owner in owners.items()) * spec.replications
        time = duration(sweep_workload(scenario, spec).seconds * runs / max(1, len(owners) * spec.replications))
        lines.append(f"  sweep: {spec.method}, {len(points)} points x {len(scenario.policies)} policies x "
                     f"{spec.replications} replications over " + ", ".join(spec.paths)
                     + f"; {runs} of {len(owners) * spec.replications} runs (a policy is not re-run for "
                       f"a lever it does not see), roughly {time} on one core")
    if scenario.resolved.get("sensitivity") is not None:
        from simulator.experiments.sensitivity import check_sensitivity, sensitivity_workload

        sensitivity = check_sensitivity(scenario, limits)
        time = duration(sensitivity_workload(scenario, sensitivity).seconds)
        lines.append(f"  sensitivity: {len(sensitivity.parameters)} inputs, {sensitivity.evaluations} evaluations x "
                     f"{sensitivity.replications} replications; outputs "
                     + ", ".join(o.name for o in sensitivity.outputs) + f"; roughly {time} on one core")
    return lines


def cmd_sweep(args: argparse.Namespace, argv: Sequence[str], log: ErrorLog) -> int:
    """``inmail-sim sweep``: every point of the sweep: block x every policy, into the folder; a summary."""
    from functools import partial

    from simulator.experiments.sweep import plan_sweep, run_sweep, sweep_spec, sweep_workload

    workers, dask, started, scenario = _load_study_input(args)
    spec = sweep_spec(scenario, args.replications)  # its size is checked before any point is built
    workers, limits = admit_work(args, sweep_workload(scenario, spec), workers, dask)
    plan = plan_sweep(scenario, args.replications, limits=limits)  # every point is checked: bad input exits 2
    plan, compared = _sweep_comparisons(args, plan)
    return _run_study(args, argv, log, scenario, workers, dask, started, plan=plan,
                      run_study=partial(_run_sweep_comparing, run_sweep, compared),
                      write_results=_write_sweep, files="sweep.csv", describe=_describe_sweep)


def _sweep_comparisons(args: argparse.Namespace, plan: Any) -> tuple[Any, tuple[int, int] | None]:
    """Apply ``--reference`` to the plan and resolve ``--compare A B`` to point ids (bad points: exit 2)."""
    from dataclasses import replace

    from simulator.experiments.point_comparison import PointSpecError, find_point, parse_point_spec, reference_pairs

    spec, points = plan
    compared = None
    option = "--reference"
    try:
        if args.reference is not None:
            spec = replace(spec, reference=parse_point_spec(args.reference))
            reference_pairs(points, spec.reference, spec.paths)
        option = "--compare"
        if args.compare is not None:
            a, b = (find_point(points, parse_point_spec(text), spec.paths).id for text in args.compare)
            compared = (a, b)
    except PointSpecError as exc:
        raise InputError(f"{option}: {exc}") from None
    return (spec, points), compared


def _run_sweep_comparing(run_sweep: Callable[..., SweepResults], compared: tuple[int, int] | None,
                         scenario: Scenario, **options: Any) -> SweepResults:
    results = run_sweep(scenario, **options)
    if compared is not None:
        results.extra["compare"] = compared
    return results


def _describe_sweep(results: SweepResults) -> str:
    from simulator.io.sweep_tables import format_sweep

    return format_sweep(results)


def cmd_sensitivity(args: argparse.Namespace, argv: Sequence[str], log: ErrorLog) -> int:
    """``inmail-sim sensitivity``: the Sobol and tornado evaluations into the folder; a summary."""
    from simulator.experiments.sensitivity import (
        plan_sensitivity,
        run_sensitivity,
        sensitivity_spec,
        sensitivity_workload,
    )

    workers, dask, started, scenario = _load_study_input(args)
    choice = {"n": args.samples, "replications": args.replications, "sobol": False if args.no_sobol else None,
              "tornado": False if args.no_tornado else None}
    workers, limits = admit_work(args, sensitivity_workload(scenario, sensitivity_spec(scenario, **choice)),
                                 workers, dask)
    plan = plan_sensitivity(scenario, **choice, limits=limits)  # checked before the folder
    return _run_study(args, argv, log, scenario, workers, dask, started, plan=plan, run_study=run_sensitivity,
                      write_results=_write_sensitivity, files="sensitivity.csv, tornado.csv",
                      describe=_describe_sensitivity)


def _write_sweep(results: SweepResults, out: Path, **manifest: Any) -> None:
    from simulator.io.study_files import write_sweep

    write_sweep(results, out, **manifest)


def _describe_sensitivity(results: SensitivityResults) -> str:
    return results.text()


def _write_sensitivity(results: SensitivityResults, out: Path, **manifest: Any) -> None:
    from simulator.io.study_files import write_sensitivity

    write_sensitivity(results, out, **manifest)


def _load_study_input(args: argparse.Namespace) -> tuple[int, str | None, dt.datetime, Scenario]:
    """Check the options and load the scenario: (workers, dask address, start time, scenario)."""
    if args.resume and not args.out:
        raise InputError(f"--resume needs --out DIR: the folder of the {args.command} to continue")
    workers, dask = executor_settings(args)
    started = dt.datetime.now().astimezone()
    return workers, dask, started, load_scenario(args.scenario, args.set)


def _run_study(args: argparse.Namespace, argv: Sequence[str], log: ErrorLog, scenario: Scenario, workers: int,
               dask: str | None, started: dt.datetime, *, plan: object, run_study: Callable[..., StudyResults],
               write_results: Callable[..., None], files: str, describe: Callable[[Any], str]) -> int:
    """Open the executor and run the planned study into its output folder."""
    out = study_folder(args, scenario.name, started)
    with opened_executor(workers, dask) as executor:
        return _study_in_folder(args, argv, log, scenario, out, executor, workers, dask, started, plan=plan,
                                run_study=run_study, write_results=write_results, files=files, describe=describe)


def _study_in_folder(args: argparse.Namespace, argv: Sequence[str], log: ErrorLog, scenario: Scenario, out: Path,
                     executor: Executor, workers: int, dask: str | None, started: dt.datetime, *, plan: object,
                     run_study: Callable[..., StudyResults], write_results: Callable[..., None], files: str,
                     describe: Callable[[Any], str]) -> int:
    """Run the study with its tasks kept in ``out``, write its results there, print a summary."""
    from simulator.experiments.runner import describe_executor, failure_details
    from simulator.experiments.sweep import SweepError, task_store
    from simulator.io.outputs import resume_command

    folder = open_run_folder(args, scenario, out, log)
    again = resume_command(argv, out)
    store = task_store(out, resume=args.resume)
    bar = ProgressBar(f"{scenario.name} {args.command}", unit="task", hidden=args.no_progress)
    options: dict[str, Any] = {"replications": args.replications, "executor": executor, "progress": bar,
                               "store": store, "memory_limit": args.memory_limit, "plan": plan}
    if dask not in (None, "local"):
        options["dask"] = dask  # a remote cluster: no local memory check
    try:
        with folder:
            with bar:
                results = run_study(scenario, **options)
            write_results(results, out, argv=["inmail-sim", *argv], started=started,
                          finished=dt.datetime.now().astimezone(), workers=workers,
                          executor=describe_executor(workers, dask))
    except KeyboardInterrupt:
        kept = store.count()
        print(f"inmail-sim: interrupted: workers stopped; {kept} finished task file{'s' if kept != 1 else ''} "
              f"kept in {store.folder}\n  resume with: {again}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SweepError as exc:
        log_file = log.write(f"inmail-sim {shlex.join(argv)}\n\n{failure_details(exc.failures)}")
        print(f"inmail-sim: error: {exc}\n  the {exc.finished} finished tasks are kept in {store.folder}; "
              f"tracebacks in {log_file}\n  to finish (after fixing the cause): {again}", file=sys.stderr)
        return EXIT_FAILURE
    if not args.quiet:
        print(describe(results))
    print_written(f"{files}, figures, ...", out)
    return EXIT_OK
