"""``inmail-sim explain``: why the new policy differs, as Shapley contributions of its mechanisms.

The mechanism is :mod:`simulator.experiments.explain`.
"""

from __future__ import annotations

import argparse
import datetime as dt
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


def add_explain_parser(commands: Subcommands) -> None:
    """``inmail-sim explain``."""
    explain = commands.add_parser(
        "explain", help="why the new policy differs: Shapley contributions of its mechanisms",
        description="Split the baseline -> POLICY difference of each metric into the Shapley contributions of "
                    "the rule changes and of the channels (credit limit, adaptation, warnings / Improvement "
                    "Periods, anticipation, platform targeting, fatigue, threshold: those on in the scenario), by "
                    "running every counterfactual world on common random numbers (each channel doubles the "
                    "worlds: 2^rules + 2^(channels+1) - 2). Writes explain.csv and "
                    "explain.png. Finished world replications are kept in DIR/worlds and reused by a re-run.")
    explain.add_argument("--policy", metavar="NAME", help="the policy to explain (default: the first non-baseline)")
    explain.add_argument("--metric", "-m", action="append", metavar="M",
                         help="metric to decompose (repeatable; default: response_rate and net_credit_burn)")
    explain.add_argument("--channels", metavar="A,B",
                         help="channels to switch (default: all available among credit_limit, adaptation, "
                              "sanction_pressure, anticipation, platform_targeting, fatigue, threshold - "
                              "sanction_pressure only when the threshold is a rule, not a channel); '' for none")
    explain.add_argument("--replications", "-n", type=int_at_least(2), metavar="N",
                         help="replications per world (default: the scenario's)")
    explain.add_argument("--no-figure", action="store_true", help="do not draw explain.png")
    add_study_arguments(explain)


def cmd_explain(args: argparse.Namespace, argv: Sequence[str], log: ErrorLog) -> int:
    """``inmail-sim explain``: check the policy, metrics and channels, run every world; write the folder."""
    from simulator.experiments import explain
    from simulator.io.study_files import write_explain

    workers, dask = executor_settings(args)
    started = dt.datetime.now().astimezone()
    scenario = load_scenario(args.scenario, args.set)
    channels = None if args.channels is None else [c for c in args.channels.split(",") if c.strip()]
    metrics = tuple(args.metric or explain.DEFAULT_METRICS)
    try:  # bad input exits 2 before anything runs
        design = explain.plan(scenario, args.policy, channels)
        metrics = tuple(explain.check_metrics(metrics))
    except explain.ExplainInputError as exc:
        raise InputError(f"{args.scenario}: {exc}") from None
    work = explain.explain_workload(scenario, design, args.replications or scenario.replications)
    workers, limits = admit_work(args, work, workers, dask)

    def decompose(executor: Executor, out: Path, bar: ProgressBar) -> StudySummary:
        result = explain.explain(scenario, executor, policy=args.policy, metrics=metrics,
                                 replications=args.replications, channels=channels,
                                 store=explain.world_store(out), progress=bar, limits=limits)
        bar.close()
        files = write_explain(result, out, argv=["inmail-sim", *argv], figure=not args.no_figure)
        return StudySummary(explain.format_explain(result), files)

    return run_study_into_folder(args, log, scenario.name, started, workers, dask, decompose,
                                 kept_on_interrupt="worlds/")
