"""``inmail-sim``: run scenarios, validate them, and look at the built-in policies.

Exit codes: 0 success, 2 invalid input (scenario, command line), 1 unexpected failure (a short
message names the log file holding the details), 130 interrupted.  ``baseline check`` also
exits 1 when a number moved (a regression).

Each command group lives in its own module (``simulator/cli/<group>.py``: its parser and its
``cmd_*`` functions); this module assembles the parser, dispatches and turns errors into exit codes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import traceback
import warnings
from collections.abc import Iterator, Sequence

from simulator.cli.baseline import add_baseline_parser, cmd_baseline
from simulator.cli.calibrate import add_calibrate_parser, cmd_calibrate
from simulator.cli.common import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_INVALID, EXIT_OK, ErrorLog, InputError
from simulator.cli.discover import add_discover_parser, cmd_discover
from simulator.cli.explain import add_explain_parser, cmd_explain
from simulator.cli.explore import add_explore_parsers, cmd_sensitivity, cmd_sweep
from simulator.cli.optimize import add_optimize_parser, cmd_optimize
from simulator.cli.policies import add_policies_parser, cmd_policies_diff, cmd_policies_list, cmd_policies_show
from simulator.cli.report import add_report_parser, cmd_report
from simulator.cli.run import add_run_parser, add_validate_parser, cmd_run, cmd_validate
from simulator.cli.runs import add_runs_parsers, cmd_compare, cmd_runs
from simulator.cli.validate_model import add_validate_model_parser, cmd_validate_model
from simulator.scenario import ScenarioError
from simulator.scenario.confinement import outside_extends_allowed
from simulator.scenario.errors import printable

__all__ = ["EXIT_FAILURE", "EXIT_INTERRUPTED", "EXIT_INVALID", "EXIT_OK", "InputError", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``inmail-sim`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="inmail-sim",
        description="Compare InMail credit policies (refund on silence vs refund on response) by simulation.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_run_parser(commands)
    add_validate_parser(commands)
    add_policies_parser(commands)
    add_baseline_parser(commands)
    add_explore_parsers(commands)
    add_calibrate_parser(commands)
    add_optimize_parser(commands)
    add_validate_model_parser(commands)
    add_explain_parser(commands)
    add_discover_parser(commands)
    add_report_parser(commands)
    add_runs_parsers(commands)
    return parser


def run_command(args: argparse.Namespace, argv: Sequence[str], log: ErrorLog) -> int:
    """Call the function of the command ``args`` names; return its exit code."""
    command = args.command
    if command == "run":
        return cmd_run(args, argv, log)
    if command == "validate":
        return cmd_validate(args)
    if command == "baseline":
        return cmd_baseline(args)
    if command == "report":
        return cmd_report(args)
    if command == "sweep":
        return cmd_sweep(args, argv, log)
    if command == "sensitivity":
        return cmd_sensitivity(args, argv, log)
    if command == "calibrate":
        return cmd_calibrate(args, argv, log)
    if command == "optimize":
        return cmd_optimize(args, argv, log)
    if command == "validate-model":
        return cmd_validate_model(args, argv, log)
    if command == "explain":
        return cmd_explain(args, argv, log)
    if command == "discover":
        return cmd_discover(args)
    if command == "runs":
        return cmd_runs(args)
    if command == "compare":
        return cmd_compare(args)
    action = args.policies_command or "list"
    if action == "show":
        return cmd_policies_show(args.name, sys.stdout)
    if action == "diff":
        return cmd_policies_diff(args.a, args.b, args.all, sys.stdout)
    return cmd_policies_list(sys.stdout)


@contextlib.contextmanager
def deprecations_as_notes() -> Iterator[None]:
    """Show the simulator's DeprecationWarnings (an old metric name, ...) as one ``note:`` line on stderr."""
    def show(message: Warning | str, category: type[Warning], *_: object, **__: object) -> None:
        print(f"inmail-sim: note: {printable(str(message))}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("default", DeprecationWarning)
        warnings.showwarning = show
        yield


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (never raises for bad input)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else EXIT_INVALID
    log = ErrorLog()
    try:
        with deprecations_as_notes(), outside_extends_allowed(getattr(args, "allow_outside_extends", False)):
            return run_command(args, argv, log)
    except ScenarioError as exc:
        print(exc.render(), file=sys.stderr)
        return EXIT_INVALID
    except InputError as exc:
        print(f"inmail-sim: error: {printable(str(exc))}", file=sys.stderr)
        return EXIT_INVALID
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("inmail-sim: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        log_file = log.write(f"inmail-sim {' '.join(argv)}\n\n{traceback.format_exc()}")
        print(f"inmail-sim: unexpected error: {type(exc).__name__}: {printable(str(exc))}\n"
              f"  the full traceback is in {log_file}", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    raise SystemExit(main())
