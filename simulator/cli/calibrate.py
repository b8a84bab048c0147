"""``inmail-sim calibrate``: fit a scenario's market parameters to published figures.

The mechanism is :mod:`simulator.experiments.calibration`; see docs/calibration.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from simulator.cli.common import (
    ErrorLog,
    ProgressBar,
    StudySummary,
    add_study_arguments,
    admit_work,
    executor_settings,
    int_at_least,
    run_study_into_folder,
)
from simulator.scenario import load_scenario

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from simulator.cli.common import Subcommands


def add_calibrate_parser(commands: Subcommands) -> None:
    """``inmail-sim calibrate``."""
    calibrate = commands.add_parser(
        "calibrate", help="fit the calibration: block's market parameters to published figures",
        description="Fit the free parameters of SCENARIO's calibration: block so that its baseline world "
                    "reproduces the targets (common random numbers), check the fit on fresh replications, "
                    "predict the validation figures, and write calibrated.yaml (ready for `inmail-sim run`). "
                    "See docs/calibration.md.")
    calibrate.add_argument("--replications", "-n", type=int_at_least(1), metavar="N",
                           help="replications per objective evaluation (overrides calibration.replications)")
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

    workers, dask = executor_settings(args)
    started = dt.datetime.now().astimezone()
    scenario = load_scenario(args.scenario, args.set)
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
