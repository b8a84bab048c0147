"""``inmail-sim calibrate``: fit a scenario's market parameters to published figures.

The mechanism is :mod:`simulator.experiments.calibration`; see docs/calibration.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
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


def add_calibrate_parser(commands: Subcommands) -> None:
    """``inmail-sim calibrate``."""
    calibrate = commands.add_parser(
        "calibrate", help="fit the calibration: block's market parameters to published figures",
        description="--method bayes (default): the worlds of SCENARIO's uncertain: block consistent with the "
                    "calibration targets (published figures as bands): space-filling rejection, then ABC-SMC; "
                    "writes posterior.csv, predictive.csv, calibration.json and figures. --method point: fit "
                    "calibration.parameters so that the baseline world reproduces the targets (common random "
                    "numbers), check the fit on fresh replications, predict the validation figures, and write "
                    "calibrated.yaml (ready for `inmail-sim run`). See docs/calibration.md.")
    calibrate.add_argument("--method", choices=("bayes", "point"), default="bayes",
                           help="bayes (default): the posterior of the uncertain: block's parameters given the "
                                "targets (posterior.csv, predictive.csv); point: the Nelder-Mead fit of "
                                "calibration.parameters (calibrated.yaml)")
    calibrate.add_argument("--worlds", type=int_at_least(1), metavar="N",
                           help="bayes: accepted posterior worlds (default 500)")
    calibrate.add_argument("--design", type=int_at_least(1), metavar="N",
                           help="bayes: worlds of the stage-1 space-filling design (default 2 x --worlds)")
    calibrate.add_argument("--sampler", choices=("lhs", "sobol"), default="lhs",
                           help="bayes: the stage-1 design (Latin hypercube or scrambled Sobol)")
    calibrate.add_argument("--replications", "-n", type=int_at_least(1), metavar="N",
                           help="point: replications per objective evaluation (overrides calibration.replications); "
                                "bayes: replications per world (default: the pilot's rule, SE <= band width / 4)")
    calibrate.add_argument("--check-replications", type=int_at_least(2), metavar="N",
                           help="fresh replications for the achieved-vs-target table and the validation")
    calibrate.add_argument("--max-evaluations", type=int_at_least(1), metavar="N",
                           help="objective evaluations at most (overrides calibration.max_evaluations)")
    calibrate.add_argument("--no-validation", action="store_true", help="skip the validation figures")
    calibrate.add_argument("--scenario-out", metavar="FILE",
                           help="write the calibrated scenario here instead of DIR/calibrated.yaml")
    add_study_arguments(calibrate)


def cmd_calibrate(args: argparse.Namespace, argv: Sequence[str], log: ErrorLog) -> int:
    """``inmail-sim calibrate``: check the calibration: block, fit, check, validate; write the folder."""
    from simulator.experiments.calibration import (
        calibrate,
        calibration_spec,
        calibration_workload,
        format_calibration,
    )
    from simulator.io.study_files import write_calibration

    _refuse_other_method_options(args)
    workers, dask = executor_settings(args)
    started = dt.datetime.now().astimezone()
    scenario = load_scenario(args.scenario, args.set)
    if args.method == "bayes":
        return _bayes(args, argv, log, scenario, started, workers, dask)
    spec = calibration_spec(scenario, replications=args.replications,  # bad input exits 2 before anything runs
                            check_replications=args.check_replications, max_evaluations=args.max_evaluations)
    workers, limits = admit_work(args, calibration_workload(scenario, spec, not args.no_validation), workers, dask)

    def fit(executor: Executor, out: Path, bar: ProgressBar) -> StudySummary:
        result = calibrate(scenario, executor, spec=spec, out=out, progress=bar,
                           validation=not args.no_validation, check_overrides=args.set or (), limits=limits)
        bar.close()
        files = write_calibration(result, out, argv=["inmail-sim", *argv], scenario_out=args.scenario_out)
        return StudySummary(format_calibration(result), files, interrupted=result.status == "interrupted")

    return run_study_into_folder(args, log, scenario.name, started, workers, dask, fit,
                                 kept_on_interrupt="calibration_trace.csv (every finished evaluation)")


POINT_ONLY = ("max_evaluations", "scenario_out", "check_replications")
BAYES_ONLY = ("worlds", "design")


def _refuse_other_method_options(args: argparse.Namespace) -> None:
    """An option of the other method is an error, not silently ignored (a bound that does not bound)."""
    other = POINT_ONLY if args.method == "bayes" else BAYES_ONLY
    given = ["--" + name.replace("_", "-") for name in other if getattr(args, name) is not None]
    if given:
        owner = "point" if args.method == "bayes" else "bayes"
        raise InputError(f"{', '.join(given)}: an option of --method {owner}, not of --method {args.method} "
                         f"(add --method {owner}, or drop it)")


def _bayes(args: argparse.Namespace, argv: Sequence[str], log: ErrorLog, scenario: Scenario, started: dt.datetime,
           workers: int, dask: str | None) -> int:
    """``inmail-sim calibrate --method bayes``: pilot, stage 1, ABC-SMC if needed, predictive; write the folder."""
    from simulator.experiments.bayes_calibration import (
        STORE_FOLDER,
        BayesSettings,
        bayes_calibrate,
        bayes_spec,
        bayes_workload,
        describe_generation,
        format_bayes,
    )
    from simulator.io.posterior_files import write_posterior

    spec = bayes_spec(scenario)  # bad input exits 2 before anything runs
    if args.no_validation:
        spec = dataclasses.replace(spec, checks=())
    settings = BayesSettings(worlds=args.worlds or 500, design=args.design, sampler=args.sampler,
                             replications=args.replications)
    workers, _ = admit_work(args, bayes_workload(scenario, spec, settings), workers, dask)

    def note(gen: Any) -> None:
        if not args.no_progress:
            print(f"inmail-sim: {describe_generation(gen)}", file=sys.stderr, flush=True)

    def fit(executor: Executor, out: Path, bar: ProgressBar) -> StudySummary:
        result = bayes_calibrate(scenario, executor, spec=spec, settings=settings, out=out, progress=bar,
                                 on_generation=note)
        bar.close()
        files = write_posterior(result, out, argv=["inmail-sim", *argv])
        return StudySummary(format_bayes(result), files)

    return run_study_into_folder(args, log, scenario.name, started, workers, dask, fit,
                                 kept_on_interrupt=f"every finished world (in {STORE_FOLDER}/; the same command "
                                                   "resumes from them)")
