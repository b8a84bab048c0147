"""``inmail-sim discover RUN_DIR --where COND``: in which plausible worlds does the conclusion flip?

The mechanism is :mod:`simulator.experiments.discovery` (PRIM in :mod:`simulator.experiments.prim`);
the files are written by :mod:`simulator.io.discovery_files`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from simulator.cli.common import EXIT_OK, InputError, int_at_least

if TYPE_CHECKING:
    from simulator.cli.common import Subcommands
    from simulator.experiments.discovery import DiscoveryResult


def share_between(low: float, high: float, *, open_low: bool = False) -> Callable[[str], float]:
    """An argparse type: a number in [low, high] (or (low, high] with ``open_low``)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
        if not ((low < value if open_low else low <= value) and value <= high):
            raise argparse.ArgumentTypeError(f"must be in {'(' if open_low else '['}{low}, {high}], got {text}")
        return value

    parse.__name__ = f"number in {'(' if open_low else '['}{low}, {high}]"
    return parse


def add_discover_parser(commands: Subcommands) -> None:
    """``inmail-sim discover``."""
    discover = commands.add_parser(
        "discover", help="in which plausible worlds does the conclusion flip? (PRIM on a run with --worlds)",
        description="Scenario discovery on a run with worlds: the condition (--where) is true or false in each "
                    "world; PRIM finds the box of uncertain parameters where it mostly holds. Writes "
                    "boxes.csv, trajectory.csv, tradeoff.png and discovery.json into RUN_DIR/discover/. "
                    "See docs/discovery.md.")
    discover.add_argument("folder", metavar="RUN_DIR", help="the output folder of `inmail-sim run --worlds`")
    discover.add_argument("--where", required=True, metavar="COND",
                          help="e.g. 'diff.response_rate < 0' (policy minus baseline), 'diff.POLICY.METRIC > 0', "
                               "'POLICY.METRIC < 0.1'; operators < <= > >=")
    discover.add_argument("--policy", metavar="NAME", help="the policy of diff.METRIC when the run has several")
    discover.add_argument("--min-coverage", type=share_between(0.0, 1.0), default=0.5, metavar="C",
                          help="the reported box explains at least this share of the worlds where COND holds "
                               "(default 0.5)")
    discover.add_argument("--threshold", type=share_between(0.0, 1.0), default=0.0, metavar="D",
                          help="and COND holds in at least this share of the box's worlds (default 0: no floor)")
    discover.add_argument("--alpha", type=share_between(0.0, 0.5, open_low=True), default=0.05, metavar="A",
                          help="share of the box's worlds removed per peel (default 0.05)")
    discover.add_argument("--min-mass", type=share_between(0.0, 1.0), default=0.05, metavar="M",
                          help="peeling stops before the box holds less than this share of all worlds (default 0.05)")
    discover.add_argument("--max-quasi-p", type=share_between(0.0, 1.0), default=0.05, metavar="P",
                          help="edges of the chosen box with a larger quasi-p are dropped (default 0.05; 1 keeps all)")
    discover.add_argument("--resamples", type=int_at_least(0), default=50, metavar="N",
                          help="bootstrap resamples for the box's stability (default 50; 0 skips it)")
    discover.add_argument("--out", metavar="DIR", help="output folder (default RUN_DIR/discover)")
    discover.add_argument("--no-figure", action="store_true", help="do not draw tradeoff.png")


def cmd_discover(args: argparse.Namespace) -> int:
    """``inmail-sim discover``: bad input exits 2 (via :class:`InputError`); otherwise print and write."""
    from simulator.experiments.discovery import DiscoveryInputError, discover
    from simulator.experiments.prim import PrimSettings
    from simulator.io.discovery_files import DISCOVER_DIR, write_discovery

    settings = PrimSettings(alpha=args.alpha, min_mass=args.min_mass, min_coverage=args.min_coverage,
                            threshold=args.threshold, max_quasi_p=args.max_quasi_p)
    try:
        result = discover(args.folder, args.where, policy=args.policy, settings=settings, resamples=args.resamples)
    except DiscoveryInputError as exc:
        raise InputError(str(exc)) from None
    out = Path(args.out) if args.out else Path(args.folder) / DISCOVER_DIR
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a folder")
    files = write_discovery(result, out, figure=not args.no_figure)
    print_result(result, sys.stdout)
    print("files:\n" + "\n".join(f"  {path}" for path in files))
    return EXIT_OK


def print_result(result: DiscoveryResult, stream: TextIO) -> None:
    """The sentence, the share of worlds, and one line per restriction of the reported box."""
    print(result.sentence, file=stream)
    print(f"  {result.condition.text}: holds in {result.n_true} of {result.n_worlds} worlds ({result.share:.0%})"
          + (f"; {result.n_dropped} replication(s) without a value left out" if result.n_dropped else ""),
          file=stream)
    if result.boxes.empty:
        return
    header = f"  {'parameter':<28} {'box':>23} {'prior range':>23} {'quasi-p':>9} {'in resamples':>12}"
    print(header, file=stream)
    for row in result.boxes.itertuples(index=False):
        share = row.restricted_share_in_resamples
        shown = "-" if share != share else f"{share:.0%}"
        print(f"  {row.dimension!s:<28} {_range(row.low, row.high):>23} "
              f"{_range(row.prior_low, row.prior_high):>23} {row.quasi_p:>9.2g} {shown:>12}", file=stream)


def _range(low: float, high: float) -> str:
    return f"[{low:.4g}, {high:.4g}]"
