"""``inmail-sim validate-model``: every published figure, reproduced (targets) or predicted (held out, LOO).

The mechanism is :mod:`simulator.experiments.validation`; see docs/validation.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

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
from simulator.scenario import load_scenario

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from simulator.cli.common import Subcommands


def add_validate_model_parser(commands: Subcommands) -> None:
    """``inmail-sim validate-model``."""
    parser = commands.add_parser(
        "validate-model", help="every published figure: reproduced (targets), predicted (held out, leave-one-out)",
        description="Bayesian calibration of SCENARIO's uncertain: block on all its calibration targets (or the "
                    "posterior of --posterior DIR), then leave-one-out: for every target, a calibration on the "
                    "others and the left-out figure's posterior predictive; the anecdotes per posterior world. "
                    "Writes validation.csv (one row per figure), validation.md, leave_one_out.csv, anecdotes.csv "
                    "and each calibration's files in calibration/ and loo/<target>/. Re-running the command on "
                    "the same folder resumes. See docs/validation.md.")
    parser.add_argument("--worlds", type=int_at_least(1), default=200, metavar="N",
                        help="posterior worlds of the calibration on every target (default 200)")
    parser.add_argument("--loo-worlds", type=int_at_least(1), default=None, metavar="N",
                        help="posterior worlds of each leave-one-out calibration (default half of --worlds)")
    parser.add_argument("--design", type=int_at_least(1), default=None, metavar="N",
                        help="stage-1 design worlds of the full calibration (default 2 x --worlds)")
    parser.add_argument("--replications", "-n", type=int_at_least(1), default=None, metavar="N",
                        help="replications per world (default: the pilot's rule, SE <= band width / 4)")
    parser.add_argument("--anecdote-worlds", type=int_at_least(0), default=20, metavar="N",
                        help="posterior worlds (the heaviest) the anecdotes run on (default 20)")
    parser.add_argument("--loo", action=argparse.BooleanOptionalAction, default=True,
                        help="leave-one-out calibrations (default on; --no-loo skips them)")
    parser.add_argument("--posterior", type=Path, default=None, metavar="DIR",
                        help="reuse the posterior.csv of this folder (of `inmail-sim calibrate`) instead of "
                             "calibrating on every target; its columns must be the uncertain: block's")
    add_study_arguments(parser)


def cmd_validate_model(args: argparse.Namespace, argv: Sequence[str], log: ErrorLog) -> int:
    """Check the input (exit 2 before anything runs), calibrate, leave one out, write the folder."""
    from simulator.experiments.bayes_calibration import (
        STORE_FOLDER,
        BayesResult,
        BayesSettings,
        bayes_spec,
        bayes_workload,
    )
    from simulator.experiments.validation import (
        PosteriorFileError,
        ValidationSettings,
        read_posterior,
        summary_counts,
        validate_model,
    )
    from simulator.io.posterior_files import write_posterior
    from simulator.io.validation_files import markdown, write_validation

    workers, dask = executor_settings(args)
    started = dt.datetime.now().astimezone()
    scenario = load_scenario(args.scenario, args.set)
    spec = bayes_spec(scenario)  # no uncertain: block, a bad target: exit 2 here
    if args.posterior is not None:
        try:
            read_posterior(args.posterior, spec)
        except PosteriorFileError as exc:
            raise InputError(f"--posterior {exc}") from None
    settings = ValidationSettings(worlds=args.worlds, loo_worlds=args.loo_worlds or max(1, args.worlds // 2),
                                  design=args.design, replications=args.replications, loo=args.loo,
                                  anecdote_worlds=args.anecdote_worlds)
    work = bayes_workload(scenario, spec, BayesSettings(worlds=args.worlds, design=args.design,
                                                        replications=args.replications))
    workers, _ = admit_work(args, work, workers, dask)

    def note(text: str) -> None:
        if not args.no_progress:
            print(f"inmail-sim: {text}", file=sys.stderr, flush=True)

    def study(executor: Executor, out: Path, bar: ProgressBar) -> StudySummary:
        clock = time.monotonic()

        def written(sub: str, fit: BayesResult) -> None:
            write_posterior(fit, out / sub, argv=["inmail-sim", *argv])
            note(f"{sub}/: {len(fit.abc.weights)} worlds, ESS {fit.abc.ess:.0f}"
                 + ("" if fit.abc.converged else f", NOT converged (tolerance {fit.abc.tolerance:.3g})"))

        result = validate_model(scenario, executor, out, settings=settings, posterior=args.posterior,
                                progress=bar, note=note, on_fit=written)
        bar.close()
        files = write_validation(result, out, argv=["inmail-sim", *argv], minutes=(time.monotonic() - clock) / 60)
        counts = summary_counts(result.table)
        text = (markdown(result) + f"\n{counts['covered']} covered, {counts['missed']} missed, "
                f"{counts['not comparable']} not comparable")
        return StudySummary(text, files)

    return run_study_into_folder(args, log, scenario.name, started, workers, dask, study,
                                 kept_on_interrupt=f"every finished world (in calibration/{STORE_FOLDER}/, "
                                                   f"loo/*/{STORE_FOLDER}/, anecdotes/; the same command resumes)")
