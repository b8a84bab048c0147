"""``inmail-sim``: run scenarios, validate them, and look at the built-in policies.

Exit codes: 0 success, 2 invalid input (scenario, command line), 1 unexpected failure (a short
message names the log file holding the details), 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import os
import sys
import tempfile
import textwrap
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from simulator.config import SEAT_TYPES, Phase, Policy
from simulator.scenario import ScenarioError, load_scenario

EXIT_OK, EXIT_FAILURE, EXIT_INVALID, EXIT_INTERRUPTED = 0, 1, 2, 130


class InputError(Exception):
    """Bad input that is not a scenario file problem (e.g. an unknown policy name): exit code 2."""


# --------------------------------------------------------------------------- argument parsing


def _int_at_least(low: int) -> type:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse  # type: ignore[return-value]


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``inmail-sim`` argument parser."""
    p = argparse.ArgumentParser(
        prog="inmail-sim",
        description="Compare InMail credit policies (refund on silence vs refund on response) by simulation.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run a scenario's Monte Carlo experiment and write a run folder",
                         description="Run every policy of SCENARIO on common random numbers, print the "
                                     "comparison and write CSV results to the output folder.")
    run.add_argument("scenario", metavar="SCENARIO.yaml")
    run.add_argument("--out", metavar="DIR", help="output folder (default: runs/<scenario name>-<timestamp>)")
    run.add_argument("--replications", "-n", type=_int_at_least(1), metavar="N",
                     help="replications per policy (overrides the scenario)")
    run.add_argument("--seed", type=_int_at_least(0), metavar="S", help="root seed (overrides the scenario)")
    run.add_argument("--workers", "-j", type=_int_at_least(1), default=1, metavar="K",
                     help="worker processes (default 1: run in this process)")
    run.add_argument("--precision", type=_positive_float, metavar="X",
                     help="add replications until the 95%% CI half-width of the response-rate difference "
                          "(absolute) and of the relative net-credit-burn change are both <= X")
    run.add_argument("--max-replications", type=_int_at_least(1), metavar="N",
                     help="replication cap for --precision (default: the scenario's max_replications)")
    run.add_argument("--replication", type=_int_at_least(0), metavar="I",
                     help="run only replication I of every policy (re-run one replication alone)")
    _add_set(run)
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--quiet", "-q", action="store_true", help="do not print the comparison table")

    val = sub.add_parser("validate", help="check a scenario file and report every problem",
                         description="Load SCENARIO (with extends and --set overrides) and report every "
                                     "problem with its file, line and field; exit code 2 if invalid.")
    val.add_argument("scenario", metavar="SCENARIO.yaml")
    _add_set(val)

    pol = sub.add_parser("policies", help="list, show or compare credit policies",
                         description="Without arguments: list the built-in presets. A policy NAME is a "
                                     "preset name or FILE.yaml:POLICY for a policy of a scenario.")
    psub = pol.add_subparsers(dest="policies_command", metavar="ACTION")
    show = psub.add_parser("show", help="every rule of one policy, with its source")
    show.add_argument("name", metavar="NAME")
    diff = psub.add_parser("diff", help="what differs between two policies, rule by rule")
    diff.add_argument("a", metavar="A")
    diff.add_argument("b", metavar="B")
    diff.add_argument("--all", action="store_true", help="list the rules that agree as well")
    psub.add_parser("list", help="list the built-in presets (the default)")
    return p


def _add_set(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", "-s", action="append", default=[], metavar="PATH=VALUE",
                        help="override a scenario field by dotted path, e.g. market.members.count=200000 "
                             "(repeatable; VALUE is YAML)")


# --------------------------------------------------------------------------- commands


def cmd_run(args: argparse.Namespace, argv: Sequence[str], state: dict[str, Path]) -> int:
    from tqdm import tqdm

    from simulator.experiment import run_experiment
    from simulator.outputs import write_run
    from simulator.tables import format_results

    if args.replication is not None and args.precision is not None:
        raise InputError("--replication re-runs one replication; it cannot be combined with --precision")
    started = dt.datetime.now().astimezone()
    scenario = load_scenario(args.scenario, args.set)
    out = Path(args.out) if args.out else Path("runs") / f"{scenario.name}-{started:%Y%m%d-%H%M%S}"
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    state["log_dir"] = out
    bar = tqdm(total=0, unit="replication", desc=scenario.name, file=sys.stderr,
               disable=True if args.no_progress else None, dynamic_ncols=True)

    def progress(done: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    try:
        results = run_experiment(
            scenario, replications=args.replications, root_seed=args.seed, workers=args.workers,
            precision=args.precision, max_replications=args.max_replications,
            indices=[args.replication] if args.replication is not None else None, progress=progress,
        )
    finally:
        bar.close()
    finished = dt.datetime.now().astimezone()
    write_run(results, out, argv=["inmail-sim", *argv], started=started, finished=finished, workers=args.workers)
    if not args.quiet:
        print(format_results(results))
    print("results (summary.csv, comparison.csv, replications.csv, timeseries.csv, ...) written to")
    print(f"  {out}")
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    sc = load_scenario(args.scenario, args.set)
    m = sc.market
    print(f"{args.scenario}: OK")
    print(f"  scenario {sc.name}: {sc.run.horizon_days} days from {sc.run.start_date.isoformat()}, "
          f"{sc.replications} replications (cap {sc.max_replications}), root seed {sc.root_seed}")
    print(f"  market: {m.members.count:,} members in {len(m.members.segments)} segments, "
          f"{m.recruiter_count:,} recruiters in {len(m.recruiters)} groups")
    for name in sc.policy_names:
        p = sc.policies[name]
        tag = " (baseline)" if name == sc.baseline else ""
        print(f"  policy {name}{tag}: {p.description}")
    return EXIT_OK


def resolve_policy(name: str) -> Policy:
    """A preset name, or ``FILE.yaml:POLICY`` for a policy of a scenario file."""
    from simulator.presets import PRESETS, preset

    file, sep, pname = name.rpartition(":")
    if sep and file.endswith((".yaml", ".yml")):
        sc = load_scenario(file)
        if pname not in sc.policies:
            raise InputError(f"{file} has no policy {pname!r}; its policies: {', '.join(sc.policies)}")
        return sc.policies[pname]
    if name not in PRESETS:
        raise InputError(f"unknown policy {name!r}; presets: {', '.join(PRESETS)} "
                         "(or FILE.yaml:POLICY for a scenario's policy)")
    return preset(name)


def _value(v: object) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, tuple):
        return ", ".join(str(x) for x in v) or "none"
    return str(v)


def _fields(prefix: str, obj: object) -> dict[str, str]:
    return {f"{prefix}{f.name}": _value(getattr(obj, f.name)) for f in dataclasses.fields(obj)}  # type: ignore[arg-type]


def _phase_rules(prefix: str, ph: Phase) -> dict[str, str]:
    rules = _fields(f"{prefix}refund.", ph.refund)
    rules |= {f"{prefix}allotments.{s}": str(ph.allotment(s)) for s in SEAT_TYPES}
    rules |= _fields(f"{prefix}accrual.", ph.accrual)
    rules[f"{prefix}pooling"] = _value(ph.pooling)
    return rules


def policy_rules(p: Policy) -> dict[str, str]:
    """Every rule of a policy as ``{rule path: value}`` (the rows of ``policies show`` and ``diff``)."""
    rules = _phase_rules("", p.phase)
    rules |= _fields("threshold.", p.threshold)
    rules["grants"] = "; ".join(f"+{g.amount} on {g.date.isoformat()} for {', '.join(g.seat_types)}"
                                for g in p.grants) or "none"
    rules["switch_date"] = p.switch_date.isoformat() if p.switch_date else "none"
    if p.before is not None:
        rules |= _phase_rules("before.", p.before)
    return rules


def _source_for(p: Policy, rule: str) -> str:
    """The most specific source note of a rule (``refund.window_days`` falls back to ``refund``)."""
    notes = dict(p.sources)
    parts = rule.removeprefix("before.").split(".")
    for n in range(len(parts), 0, -1):
        key = ".".join(parts[:n])
        if key in notes:
            return notes[key]
    return ""


def cmd_policies_list(out: TextIO) -> int:
    from simulator.presets import PRESETS

    print("built-in policy presets (use in a scenario as `preset: NAME`):", file=out)
    for name, make in PRESETS.items():
        print(f"  {name:<20} {make().description}", file=out)
    print("\ninmail-sim policies show NAME     every rule of a policy, with its source", file=out)
    print("inmail-sim policies diff A B     what differs between two policies (NAME or FILE.yaml:POLICY)",
          file=out)
    return EXIT_OK


def _family(rule: str) -> str:
    parts = rule.split(".")
    return ".".join(parts[:2]) if parts[0] == "before" else parts[0]


def cmd_policies_show(name: str, out: TextIO) -> int:
    p = resolve_policy(name)
    print(f"policy {p.name}: {p.description}", file=out)
    rules = policy_rules(p)
    width = max(len(r) for r in rules) + 2
    notes = list(p.sources)
    shown: set[int] = set()
    families = list(dict.fromkeys(_family(r) for r in rules))
    for fam in families:
        print("", file=out)
        for rule, value in rules.items():
            if _family(rule) == fam:
                print(f"  {rule:<{width}} {value}", file=out)
        base = fam.removeprefix("before.")
        for i, (key, note) in enumerate(notes):
            if i not in shown and (key == base or key.startswith(base + ".")):
                shown.add(i)
                label = "source" if key == base else f"source ({key})"
                print(textwrap.fill(f"{label}: {note}", 100, initial_indent="      ",
                                    subsequent_indent="        "), file=out)
    rest = [n for i, n in enumerate(notes) if i not in shown]
    if rest:
        print("\nother notes:", file=out)
        for key, note in rest:
            print(textwrap.fill(f"{key}: {note}", 100, initial_indent="  ", subsequent_indent="    "), file=out)
    return EXIT_OK


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def cmd_policies_diff(a: str, b: str, show_all: bool, out: TextIO) -> int:
    pa, pb = resolve_policy(a), resolve_policy(b)
    ra, rb = policy_rules(pa), policy_rules(pb)
    # A policy without a switch date has the same rules before any date as after it.
    if pa.before is None and pb.before is not None:
        ra |= _phase_rules("before.", pa.phase)
    if pb.before is None and pa.before is not None:
        rb |= _phase_rules("before.", pb.phase)
    keys = list(ra) + [k for k in rb if k not in ra]
    differ = [k for k in keys if ra.get(k, "-") != rb.get(k, "-")]
    shown = keys if show_all else differ
    rw = max([len(k) for k in shown] + [4])
    w = max(12, (100 - rw - 5) // 2)
    print(f"{'rule':<{rw}} {_cut(pa.name, w):<{w}} {_cut(pb.name, w):<{w}}".rstrip(), file=out)
    for k in shown:
        mark = " <" if k in differ and show_all else ""
        print(f"{k:<{rw}} {_cut(ra.get(k, '-'), w):<{w}} {_cut(rb.get(k, '-'), w):<{w}}".rstrip() + mark, file=out)
    if not differ:
        print(f"{pa.name} and {pb.name} agree on every rule", file=out)
    else:
        print(f"\n{len(differ)} rule{'s' if len(differ) != 1 else ''} differ", file=out)
    return EXIT_OK


# --------------------------------------------------------------------------- entry point


def _error_log(state: dict[str, Path], text: str) -> Path:
    folder = state.get("log_dir")
    if folder is not None and folder.is_dir():
        path = folder / "error.log"
    else:
        fd, name = tempfile.mkstemp(prefix="inmail-sim-error-", suffix=".log")
        os.close(fd)
        path = Path(name)
    path.write_text(text, encoding="utf-8")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (never raises for bad input)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else EXIT_INVALID
    state: dict[str, Path] = {}
    try:
        if args.command == "run":
            return cmd_run(args, argv, state)
        if args.command == "validate":
            return cmd_validate(args)
        action = args.policies_command or "list"
        if action == "show":
            return cmd_policies_show(args.name, sys.stdout)
        if action == "diff":
            return cmd_policies_diff(args.a, args.b, args.all, sys.stdout)
        return cmd_policies_list(sys.stdout)
    except ScenarioError as exc:
        print(exc.render(), file=sys.stderr)
        return EXIT_INVALID
    except InputError as exc:
        print(f"inmail-sim: error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("inmail-sim: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        log = _error_log(state, f"inmail-sim {' '.join(argv)}\n\n{traceback.format_exc()}")
        print(f"inmail-sim: unexpected error: {type(exc).__name__}: {exc}\n"
              f"  the full traceback is in {log}", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    raise SystemExit(main())
