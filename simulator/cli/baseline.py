"""``inmail-sim baseline save|check|plan``: regression tests on a run's summary statistics.

The mechanism is :mod:`simulator.experiments.baseline`; ``check`` exits 1 when a number moved.
``save`` and ``check`` also print the smallest change the check detects (its power,
:mod:`simulator.experiments.power`); ``plan`` says how many replications a wanted sensitivity needs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from simulator.cli.common import (
    EXIT_FAILURE,
    EXIT_OK,
    InputError,
    ProgressBar,
    add_limit_options,
    add_no_progress_option,
    add_scenario_argument,
    add_set_option,
    admit_work,
    command_limits,
    int_at_least,
    positive_float,
)
from simulator.scenario import load_scenario

if TYPE_CHECKING:
    from simulator.cli.common import Subcommands


def add_baseline_parser(commands: Subcommands) -> None:
    """``inmail-sim baseline save``, ``check`` and ``plan``."""
    baseline = commands.add_parser("baseline", help="store a run's summary statistics, or check a new run against them",
                                   description="Regression tests on summary statistics. `check` exits 1 when a "
                                               "number moved, 0 when none did, 2 on bad input or a changed "
                                               "scenario.")
    actions = baseline.add_subparsers(dest="baseline_command", metavar="ACTION", required=True)
    save = actions.add_parser("save", help="run SCENARIO; store means, standard errors and n in FILE (JSON)")
    add_scenario_argument(save)
    save.add_argument("--to", required=True, metavar="FILE", help="the baseline file to write")
    save.add_argument("--replications", "-n", type=int_at_least(2), metavar="N",
                      help="replications per policy (default: the scenario's; at least 2, 10+ recommended)")
    save.add_argument("--seed", type=int_at_least(0), metavar="S", help="root seed (default: the scenario's)")
    save.add_argument("--force", action="store_true",
                      help="overwrite FILE even if it is not a baseline file (refused without)")
    add_set_option(save)
    check = actions.add_parser("check", help="re-run SCENARIO as the baseline was made and compare metric by metric")
    add_scenario_argument(check)
    check.add_argument("--against", required=True, metavar="FILE", help="the baseline file")
    check.add_argument("--mode", choices=("statistical", "exact"), default="statistical",
                       help="statistical (default): any seed or version, each difference tested against its "
                            "standard error; exact: same seed, replications and versions, identical numbers")
    check.add_argument("--seed", type=int_at_least(0), metavar="S", help="root seed (default: the stored one)")
    check.add_argument("--replications", "-n", type=int_at_least(2), metavar="N",
                       help="replications per policy (default: the stored number)")
    for parser in (save, check):
        parser.add_argument("--alpha", type=positive_float, default=0.01, metavar="A",
                            help="family-wise false-alarm rate of statistical mode (default 0.01); save uses it "
                                 "for the printed smallest detectable changes")
    check.add_argument("--allow-changed-scenario", action="store_true",
                       help="compare even if the scenario changed since the baseline was saved")
    check.add_argument("--failures-only", action="store_true", help="print only the rows that moved")
    check.add_argument("--allow-missing", action="store_true",
                       help="skip rows the baseline file should hold but lacks (otherwise they fail the check)")
    plan = _add_plan_parser(actions)
    for parser in (save, check, plan):
        parser.add_argument("--workers", "-j", type=int_at_least(1), default=1, metavar="K",
                            help="worker processes (default 1); results do not depend on it")
        add_limit_options(parser)
        add_no_progress_option(parser)


def _add_plan_parser(actions: Subcommands) -> argparse.ArgumentParser:
    plan = actions.add_parser("plan", help="how many replications a check needs to detect a wanted change",
                              description="Estimate the spread per replication (a pilot run, or a stored baseline "
                                          "with --against) and solve the check's minimum detectable effect (80% "
                                          "power, the check's Holm-corrected alpha) for the replications.")
    add_scenario_argument(plan)
    plan.add_argument("--detect", required=True, metavar="CHANGE",
                      help="the change to detect: 0.1pp (percentage points of a rate), 2%% (relative to the "
                           "level) or a plain number in the metric's units")
    plan.add_argument("--metric", default="response_rate", metavar="M", help="the metric (default response_rate)")
    plan.add_argument("--alpha", type=positive_float, default=0.01, metavar="A",
                      help="the check's family-wise false-alarm rate (default 0.01)")
    plan.add_argument("--against", metavar="FILE", help="take the spread from this baseline file (no pilot run)")
    plan.add_argument("--pilot", type=int_at_least(2), default=10, metavar="N",
                      help="replications of the pilot run (default 10)")
    plan.add_argument("--seed", type=int_at_least(0), metavar="S", help="root seed of the pilot (default: the "
                                                                        "scenario's)")
    add_set_option(plan)
    return plan


SAVE_LOWER = ("fewer --replications (10-50 give a usable baseline; `baseline plan` says how many a wanted "
              "sensitivity needs)")


def cmd_baseline(args: argparse.Namespace) -> int:
    """``inmail-sim baseline ACTION``."""
    commands = {"save": cmd_baseline_save, "check": cmd_baseline_check, "plan": cmd_baseline_plan}
    return commands[args.baseline_command](args)


def cmd_baseline_save(args: argparse.Namespace) -> int:
    """``inmail-sim baseline save``: run the scenario and store its statistics."""
    from simulator.experiments.baseline import BaselineError, save_baseline
    from simulator.experiments.baseline_file import check_target
    from simulator.experiments.budget import experiment_workload
    from simulator.experiments.experiment import run_experiment
    from simulator.experiments.power import holm_family_size, mde_table, render_mde

    if Path(args.to).is_dir():
        raise InputError(f"--to {args.to}: is a folder; give the baseline file name")
    try:
        check_target(args.to, args.force)  # before the run: never replace an unrelated file
    except BaselineError as exc:
        raise InputError(str(exc)) from None
    scenario = load_scenario(args.scenario, args.set)
    if (args.replications or scenario.replications) < 2:
        raise InputError(f"{args.scenario}: a baseline needs at least 2 replications (10+ recommended); "
                         "use --replications N")
    count = args.replications or scenario.replications
    workers, _ = admit_work(args, experiment_workload(scenario, count, "baseline save", lower=SAVE_LOWER),
                            args.workers)
    with ProgressBar("baseline", unit="replication", hidden=args.no_progress) as bar:
        results = run_experiment(scenario, replications=count, root_seed=args.seed, workers=workers, progress=bar,
                                 memory_check=False)
    try:
        saved = save_baseline(results, args.to, scenario_file=args.scenario, force=args.force)
    except BaselineError as exc:
        raise InputError(str(exc)) from None
    metrics = len(next(iter(saved.stats.values())))
    print(f"baseline of {saved.scenario} saved to {args.to}: {len(saved.stats)} rows (policies and paired "
          f"differences) x {metrics} metrics, {saved.replications} replications, seed {saved.root_seed}, "
          f"scenario hash {saved.scenario_hash[:12]}")
    print("\nif the check runs with the same replications and spread:")
    print(render_mde(mde_table(saved.stats, None, args.alpha), args.alpha, holm_family_size(saved.stats)))
    return EXIT_OK


def cmd_baseline_check(args: argparse.Namespace) -> int:
    """``inmail-sim baseline check``: re-run and compare; exit 1 when a number moved."""
    from simulator.experiments.baseline import BaselineError, check_scenario

    try:
        with ProgressBar("baseline", unit="replication", hidden=args.no_progress) as bar:
            report = check_scenario(args.scenario, args.against, args.mode, seed=args.seed,
                                    replications=args.replications, alpha=args.alpha,
                                    allow_changed_scenario=args.allow_changed_scenario, workers=args.workers,
                                    progress=bar, limits=command_limits(args, args.workers),
                                    allow_missing=args.allow_missing)
    except BaselineError as exc:
        raise InputError(str(exc)) from None
    print(report.render(only_failures=args.failures_only))
    return EXIT_OK if report.ok else EXIT_FAILURE


def cmd_baseline_plan(args: argparse.Namespace) -> int:
    """``inmail-sim baseline plan``: the replications a wanted sensitivity needs."""
    from simulator.experiments.baseline import BaselineError, plan_replications

    try:
        with ProgressBar("pilot", unit="replication", hidden=bool(args.no_progress or args.against)) as bar:
            plan = plan_replications(args.scenario, args.detect, args.metric, args.alpha, against=args.against,
                                     pilot=args.pilot, seed=args.seed, overrides=args.set, workers=args.workers,
                                     progress=bar, limits=command_limits(args, args.workers))
    except BaselineError as exc:
        raise InputError(str(exc)) from None
    print(plan.render())
    return EXIT_OK
