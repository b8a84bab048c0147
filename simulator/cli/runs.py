"""``inmail-sim runs`` (the run index, newest first) and ``inmail-sim compare`` (runs side by side)."""

from __future__ import annotations

import argparse
import math
import numbers
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simulator.cli.common import EXIT_OK, InputError, int_at_least

if TYPE_CHECKING:
    import pandas as pd

    from simulator.cli.common import Subcommands
    from simulator.io.run_comparison import RunComparison

DEFAULT_LIMIT = 20
"""Runs listed without ``--limit``."""


def add_runs_parsers(commands: Subcommands) -> None:
    """``inmail-sim runs`` and ``inmail-sim compare``."""
    runs = commands.add_parser(
        "runs", help="list the registered runs, newest first",
        description="List the runs registered in the run index (every `inmail-sim run` registers its folder "
                    "in .inmail-sim-runs.sqlite next to it, or in $INMAIL_SIM_RUNS_DB), newest first, with "
                    "their headline numbers.")
    runs.add_argument("--scenario", metavar="NAME", help="only runs of this scenario (its name:)")
    runs.add_argument("--limit", type=int_at_least(0), default=DEFAULT_LIMIT, metavar="N",
                      help=f"show the N newest runs (default {DEFAULT_LIMIT}; 0: all)")
    add_index_option(runs)
    runs.add_argument("--prune", action="store_true",
                      help="forget the runs whose folder was deleted (or no longer holds a finished run)")

    compare = commands.add_parser(
        "compare", help="put runs side by side: means and differences with CIs",
        description="Compare the policies of several runs: means with 95% CIs and differences to the first "
                    "run with CIs - paired per replication when two runs share the root seed and the market: "
                    "block, unpaired (Welch) otherwise.")
    compare.add_argument("runs", nargs="+", metavar="RUN", help="a run folder, or a run id from `inmail-sim runs`")
    compare.add_argument("--metric", "-m", action="append", metavar="M",
                         help="a metric to compare (repeatable; default: response_rate and net_credit_burn)")
    compare.add_argument("--policy", "-p", action="append", metavar="NAME",
                         help="only this policy (repeatable; default: every policy of every run)")
    compare.add_argument("--against", metavar="POLICY",
                         help="compare every row with this policy of the first run (default: the same policy "
                              "of the first run, else its baseline)")
    add_index_option(compare)


def add_index_option(parser: argparse.ArgumentParser) -> None:
    """``--index FILE|DIR``."""
    parser.add_argument("--index", metavar="FILE",
                        help="the run index: a .sqlite file, or the folder holding .inmail-sim-runs.sqlite "
                             "(default: $INMAIL_SIM_RUNS_DB, else runs/.inmail-sim-runs.sqlite)")


# --------------------------------------------------------------------------- shared formatting


def render(rows: Sequence[Sequence[str]], right: Sequence[bool], indent: str = "  ") -> list[str]:
    """Rows of cells as aligned text columns (``right[i]``: right-align column i)."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(right))]
    return [indent + "  ".join(f"{c:>{w}}" if r else f"{c:<{w}}" for c, w, r in zip(row, widths, right, strict=True))
            .rstrip() for row in rows]


def shown_folder(folder: str | Path) -> str:
    """``folder`` relative to the current folder when inside it, else as it is."""
    path = Path(folder)
    try:
        return os.path.relpath(path) if path.resolve().is_relative_to(Path.cwd()) else str(path)
    except ValueError:
        return str(path)


def finite(value: Any) -> float | None:
    """``value`` as a float, or None when it is missing or not finite."""
    return float(value) if isinstance(value, numbers.Real) and math.isfinite(value) else None


def significant(low: Any, high: Any) -> bool:
    """Whether the interval [low, high] is known and excludes 0."""
    lo, hi = finite(low), finite(high)
    return lo is not None and hi is not None and (lo > 0 or hi < 0)


def headline_cell(row: dict[str, Any], metric: str) -> str:
    """``23.1%`` or ``25.4% (+2.30pp*)``: the mean, and the difference to the baseline (``*``: CI excludes 0)."""
    from simulator.io.run_index import RELATIVE_METRICS
    from simulator.io.tables import num, pct, scale_of

    mean = finite(row.get(metric))
    if mean is None:
        return "-"
    scale = scale_of(metric)
    text = f"{mean * scale:.2f}%" if scale != 1 else num(mean)
    diff = finite(row.get(f"{metric}_diff"))
    if diff is None:
        return text
    mark = "*" if significant(row.get(f"{metric}_diff_ci_low"), row.get(f"{metric}_diff_ci_high")) else ""
    if metric in RELATIVE_METRICS:
        change = pct(row.get(f"{metric}_rel_change"))
    elif scale != 1:
        change = f"{diff * scale:+.2f}pp"
    else:
        change = num(diff, signed=True)
    return f"{text} ({change}{mark})"


# --------------------------------------------------------------------------- runs


def format_runs(frame: pd.DataFrame) -> str:
    """The :func:`~simulator.io.run_index.list_runs` frame as a table: one line per (run, policy)."""
    from simulator.io.run_index import HEADLINE_METRICS

    header = ["run", "finished", "scenario", "seed x reps", "policy", *HEADLINE_METRICS, "folder"]
    rows = [header]
    for _, group in frame.groupby("id", sort=False):
        for i, row in enumerate(group.to_dict("records")):
            policy = f"{row['policy']} (base)" if row["is_baseline"] else row["policy"]
            heads = [headline_cell(row, m) for m in HEADLINE_METRICS]
            if i:
                rows.append(["", "", "", "", policy, *heads, ""])
                continue
            folder = shown_folder(row["folder"]) + ("" if row["exists"] else "  (missing)")
            rows.append([str(row["id"]), _when(row["finished"]), row["scenario"],
                         f"{row['root_seed']} x {row['replications']}", policy, *heads, folder])
    return "\n".join(render(rows, [True, False, False, False, False, *([False] * len(HEADLINE_METRICS)), False],
                            indent=""))


def _when(stamp: str) -> str:
    """``2026-12-06 01:20`` in local time."""
    import datetime as dt

    try:
        return dt.datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return stamp


def cmd_runs(args: argparse.Namespace) -> int:
    """``inmail-sim runs``: the index as a table, newest first (``--prune`` forgets deleted folders)."""
    from simulator.io.run_index import RunIndexError, index_path, list_runs, prune

    path = index_path(args.index)
    if args.index is None and not path.is_file():
        print(f"no runs registered yet in {path} (`inmail-sim run` registers each run folder in the "
              ".inmail-sim-runs.sqlite next to it; another index: --index FILE)")
        return EXIT_OK
    try:
        if args.prune:
            for run_id, folder in prune(path):
                print(f"pruned run {run_id}: {folder} no longer holds a finished run")
        frame = list_runs(path, scenario=args.scenario)
    except RunIndexError as exc:
        raise InputError(str(exc)) from None
    if frame.empty:
        which = f" of scenario {args.scenario!r}" if args.scenario else ""
        print(f"no runs{which} in {path}")
        return EXIT_OK
    total = frame["id"].nunique()
    if args.limit:
        frame = frame[frame["id"].isin(list(dict.fromkeys(frame["id"]))[: args.limit])]
    print(format_runs(frame))
    shown = frame["id"].nunique()
    count = f"the newest {shown} of {total} runs (--limit 0 shows all)" if shown < total else \
        f"{total} run{'s' if total != 1 else ''}"
    print(f"\n{count} in {path}; (base) = baseline, (+x) = difference to it, * = its 95% CI excludes 0")
    return EXIT_OK


# --------------------------------------------------------------------------- compare


def format_comparison(comparison: RunComparison) -> str:
    """The comparison as text: the runs, how each pairs with the first, one table per metric."""
    from simulator.io.run_comparison import COLUMNS
    from simulator.io.tables import METRIC_LABELS, METRIC_UNITS, RowFormat, pct, scale_of

    lines = [f"Comparing {len(comparison.runs)} run{'s' if len(comparison.runs) != 1 else ''} "
             "(means and differences with 95% confidence intervals):"]
    for run in comparison.runs:
        sc = run.results.scenario
        ident = f"run {run.run_id}" if run.run_id is not None else "not indexed"
        overrides = run.results.extra.get("manifest", {}).get("overrides") or []
        sets = "  " + " ".join(f"--set {o}" for o in overrides) if overrides else ""
        lines.append(f"  {run.label}  {ident}  {sc.name}  seed {sc.root_seed} x {run.results.n_replications}  "
                     f"{shown_folder(run.folder)}{sets}")
    lines += ["Differences are to the first run:"] + [f"  {k} vs A: {v}" for k, v in comparison.pairings.items()
                                                    if k != "A"] + ["  within a run: paired (common random numbers)"]
    table = comparison.table
    for metric, block in table.groupby("metric", sort=False):
        scale = scale_of(str(metric))
        hw = float((block["diff_ci_high"] - block["diff_ci_low"]).abs().max(skipna=True) * scale / 2)
        fmt = RowFormat([v * scale for v in block["mean"]], hw if math.isfinite(hw) else 0.0)
        unit = "%; differences in pp" if scale != 1 else METRIC_UNITS.get(str(metric), "")
        lines += ["", f"{METRIC_LABELS.get(str(metric), metric)} ({metric}, {unit})"]
        rows = [["run:policy", "mean", "95% CI", "vs", "diff", "95% CI", "change", "how"]]
        for r in block[list(COLUMNS)].to_dict("records"):
            cells = [f"{r['run']}:{r['policy']}", fmt(r["mean"] * scale),
                     f"[{fmt(r['ci_low'] * scale)}, {fmt(r['ci_high'] * scale)}]"]
            if r["pairing"] == "reference":
                rows.append([*cells, "reference", "", "", "", ""])
                continue
            low, high = r["diff_ci_low"], r["diff_ci_high"]
            mark = " *" if significant(low, high) else ""
            how = f"paired, {r['n_pairs']} replications" if r["pairing"] == "paired" else "unpaired (Welch)"
            rows.append([*cells, r["reference"], fmt(r["diff"] * scale, True),
                         fmt.interval(low * scale, high * scale) + mark, pct(r["rel_change"]), how])
        lines += render(rows, [False, True, False, False, True, False, True, False])
    lines += ["", "* the difference's 95% CI excludes 0; change = diff / the reference's mean"]
    return "\n".join(lines)


def cmd_compare(args: argparse.Namespace) -> int:
    """``inmail-sim compare``: bad runs, metrics or policies are bad input (exit 2)."""
    from simulator.io.run_comparison import RunComparisonError, run_comparison

    try:
        comparison = run_comparison(args.runs, args.metric, args.policy, against=args.against, index=args.index)
    except RunComparisonError as exc:
        raise InputError(str(exc)) from None
    print(format_comparison(comparison))
    return EXIT_OK
