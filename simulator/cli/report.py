"""``inmail-sim report DIR``: figures and report.html from a finished run folder (see :mod:`simulator.io.report`)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from simulator.cli.common import EXIT_OK, InputError

if TYPE_CHECKING:
    from simulator.cli.common import Subcommands


def add_report_parser(commands: Subcommands) -> None:
    """``inmail-sim report DIR``."""
    report = commands.add_parser(
        "report", help="(re)draw the figures and write report.html from a finished run or optimize folder",
        description="Draw DIR/figures/*.png and write DIR/report.html, a single self-contained page (figures "
                    "embedded, no network) from the files of `inmail-sim run`; for the folder of `inmail-sim optimize` "
                    "(it holds search.json): the Pareto set, the best policy under each constraint set and its "
                    "rules beside new_2015.")
    report.add_argument("folder", metavar="DIR", help="the output folder of `inmail-sim run` or `inmail-sim optimize`")


def cmd_report(args: argparse.Namespace) -> int:
    """``inmail-sim report DIR``; a figure that cannot be drawn is a note in the page (and on stderr), not a failure."""
    from simulator.io.report import NotARunFolderError, build_report

    try:
        report = build_report(args.folder)
    except NotARunFolderError as exc:
        raise InputError(str(exc)) from None
    for name, error in report.errors.items():
        print(f"inmail-sim: note: figure {name} could not be drawn (the report says so in its place): {error}",
              file=sys.stderr)
    print(f"report written to\n  {report.path}")
    return EXIT_OK
