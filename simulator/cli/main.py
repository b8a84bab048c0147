"""``inmail-sim``: run scenarios, validate them, and look at the built-in policies.

Exit codes: 0 success, 2 invalid input (scenario, command line), 1 unexpected failure (a short
message names the log file holding the details), 130 interrupted.  ``baseline check`` also
exits 1 when a number moved (a regression).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import os
import shlex
import signal
import sys
import tempfile
import textwrap
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from simulator.core.config import Policy
from simulator.io.policy_rules import policy_rules, rules_side_by_side
from simulator.scenario import Scenario, ScenarioError, load_scenario

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
    add_executor_options(run)
    run.add_argument("--precision", type=_positive_float, metavar="X",
                     help="add replications until the 95%% CI half-width of the response-rate difference "
                          "(absolute) and of the relative net-credit-burn change are both <= X")
    run.add_argument("--max-replications", type=_int_at_least(1), metavar="N",
                     help="replication cap for --precision (default: the scenario's max_replications)")
    run.add_argument("--replication", type=_int_at_least(0), metavar="I",
                     help="run only replication I of every policy (re-run one replication alone)")
    _add_set(run)
    add_resume_options(run)
    run.add_argument("--no-timeseries", action="store_true",
                     help="do not keep the daily series (no timeseries.csv): less to ship from workers and store")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--quiet", "-q", action="store_true", help="do not print the comparison table")
    run.add_argument("--no-figures", action="store_true",
                     help="do not draw the figures (figures/*.png; `inmail-sim report DIR` draws them later)")

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
    _add_baseline_parser(sub)
    _add_explore_parsers(sub)
    _add_explain_parsers(sub)
    rep = sub.add_parser("report", help="(re)draw the figures and write report.html from a finished run folder",
                         description="Draw DIR/figures/*.png and write DIR/report.html, a single self-contained "
                                     "page (figures embedded, no network) from the files of `inmail-sim run`.")
    rep.add_argument("folder", metavar="DIR", help="the output folder of `inmail-sim run`")
    return p


def add_executor_options(parser: argparse.ArgumentParser) -> None:
    """``--workers K``, ``--dask ADDRESS|local`` and ``--memory-limit`` (shared by ``run`` and ``sweep``)."""
    parser.add_argument("--workers", "-j", type=_int_at_least(1), default=None, metavar="K",
                        help="worker processes (default 1: run in this process; with --dask local: the "
                             "number of Dask workers, default one per core); results do not depend on it")
    parser.add_argument("--dask", metavar="ADDRESS",
                        help="run the replications on a Dask cluster: a scheduler address such as "
                             "tcp://host:8786, or 'local' for a LocalCluster on this machine "
                             "(needs pip install 'inmail-sim[dask]')")
    parser.add_argument("--memory-limit", type=_memory_size, metavar="SIZE",
                        help="refuse scenarios whose memory estimate exceeds SIZE (e.g. 8G; default: the "
                             "available memory, MemAvailable)")


def add_resume_options(parser: argparse.ArgumentParser) -> None:
    """``--resume`` and ``--force`` for commands that write an output folder task by task."""
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out DIR: reuse its finished replications, compute the rest "
                             "(refused if the scenario, seed or code version differ)")
    parser.add_argument("--force", action="store_true",
                        help="replace the run already in --out DIR (deletes what inmail-sim wrote there)")


def _memory_size(text: str) -> int:
    from simulator.scenario.memory import parse_size

    try:
        return parse_size(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a memory size such as 512M or 8G, got {text!r}") from None


def executor_settings(args: argparse.Namespace) -> tuple[int, str | None]:
    """(workers, dask address) from :func:`add_executor_options`' arguments."""
    if args.dask is not None and not args.dask.strip():
        raise InputError("--dask needs a scheduler address (tcp://host:8786) or 'local'")
    if args.dask == "local" and args.workers is None:
        return max(1, os.cpu_count() or 1), "local"
    return (args.workers or 1), args.dask


def _add_set(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", "-s", action="append", default=[], metavar="PATH=VALUE",
                        help="override a scenario field by dotted path, e.g. market.members.count=200000 "
                             "(repeatable; VALUE is YAML)")


# --------------------------------------------------------------------------- commands


def cmd_run(args: argparse.Namespace, argv: Sequence[str], state: dict[str, Path]) -> int:
    """``inmail-sim run``: every finished replication is kept in OUT/replications as it finishes."""
    from simulator.experiments.runner import DaskUnavailableError, open_executor
    from simulator.scenario import with_changes
    from simulator.scenario.memory import check_memory

    if args.replication is not None and args.precision is not None:
        raise InputError("--replication re-runs one replication; it cannot be combined with --precision")
    if args.resume and not args.out:
        raise InputError("--resume needs --out DIR: the folder of the run to continue")
    workers, dask = executor_settings(args)
    started = dt.datetime.now().astimezone()
    scenario = with_changes(load_scenario(args.scenario, args.set), replications=args.replications,
                            root_seed=args.seed, max_replications=args.max_replications)
    note_ignored_blocks(scenario)
    if args.no_timeseries:
        scenario = dataclasses.replace(scenario, run=dataclasses.replace(scenario.run, record_daily=False))
    if dask in (None, "local"):
        n = 1 if args.replication is not None else scenario.replications
        check_memory(scenario, concurrent=workers, limit=args.memory_limit,
                     replications=scenario.max_replications if args.precision is not None else n)
    out = Path(args.out) if args.out else Path("runs") / f"{scenario.name}-{started:%Y%m%d-%H%M%S}"
    previous = _handle_sigterm_as_interrupt()
    try:
        with open_executor(workers, dask) as executor:
            return _run_in_folder(args, argv, state, scenario, out, executor, workers, dask, started)
    except DaskUnavailableError as exc:
        raise InputError(str(exc)) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


def _handle_sigterm_as_interrupt() -> Any:
    """``kill PID`` stops a run like Ctrl-C: workers stopped, finished replications kept."""
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        return signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread
        return signal.getsignal(signal.SIGTERM)


def _run_in_folder(args: argparse.Namespace, argv: Sequence[str], state: dict[str, Path], scenario: Scenario,
                   out: Path, executor: Any, workers: int, dask: str | None, started: dt.datetime) -> int:
    from tqdm import tqdm

    from simulator.experiments.experiment import ReplicationError, run_experiment
    from simulator.experiments.runner import describe_executor, failure_details
    from simulator.io.outputs import RunFolderError, prepare_run_folder, resume_command, run_fingerprint, write_run
    from simulator.io.tables import format_results

    try:
        folder = prepare_run_folder(out, run_fingerprint(scenario), resume=args.resume, force=args.force)
    except RunFolderError as exc:
        raise InputError(str(exc)) from None
    state["log_dir"] = out
    for note in folder.notes:
        print(f"inmail-sim: {note}", file=sys.stderr)
    again = resume_command(argv, out)
    bar = tqdm(total=0, unit="replication", desc=scenario.name, file=sys.stderr,
               disable=True if args.no_progress else None, dynamic_ncols=True)

    def progress(done: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    try:
        with folder:
            try:
                results = run_experiment(
                    scenario, executor=executor, precision=args.precision,
                    indices=[args.replication] if args.replication is not None else None, progress=progress,
                    store=folder.store, memory_check=False,
                )
            finally:
                bar.close()
            write_run(results, out, argv=["inmail-sim", *argv], started=started,
                      finished=dt.datetime.now().astimezone(), workers=workers,
                      executor=describe_executor(workers, dask))
    except KeyboardInterrupt:
        bar.close()
        kept = folder.store.count()
        print(f"inmail-sim: interrupted: workers stopped; {kept} finished replication file{'s' if kept != 1 else ''} "
              f"kept in {folder.store.folder}\n  resume with: {again}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ReplicationError as exc:
        log = _error_log(state, f"inmail-sim {shlex.join(argv)}\n\n{failure_details(exc.failures)}")
        print(f"inmail-sim: error: {exc}\n  the {exc.finished} finished replications are kept in "
              f"{folder.store.folder}; tracebacks in {log}\n  to finish the run (after fixing the cause): {again}",
              file=sys.stderr)
        return EXIT_FAILURE
    if not args.no_figures:
        try:  # figures come after the results are written: a plotting failure never loses them
            from simulator.io.plotting import write_figures

            write_figures(results, out)
        except Exception as exc:
            print(f"inmail-sim: warning: figures not (all) written: {type(exc).__name__}: {exc}", file=sys.stderr)
    if not args.quiet:
        print(format_results(results))
    series = "" if args.no_timeseries else " timeseries.csv,"
    print(f"results (summary.csv, comparison.csv, replications.csv,{series} ...) written to")
    print(f"  {out}")
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    """``inmail-sim report DIR``: figures and report.html from a finished run folder (see ``simulator.io.report``)."""
    from simulator.io.report import NotARunFolderError, build_report

    try:
        report = build_report(args.folder)
    except NotARunFolderError as exc:
        raise InputError(str(exc)) from None
    for name, error in report.errors.items():
        print(f"inmail-sim: figure {name} could not be drawn: {error}", file=sys.stderr)
    print(f"report written to\n  {report.path}")
    return EXIT_FAILURE if report.errors else EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    sc = load_scenario(args.scenario, args.set)
    explore = validate_explore_blocks(sc)
    if sc.resolved.get("calibration") is not None:  # checked before anything is printed
        from simulator.experiments.calibration import describe_spec

        explore.append(describe_spec(sc))
    m = sc.market
    print(f"{args.scenario}: OK")
    print(f"  scenario {sc.name}: {sc.run.horizon_days} days from {sc.run.start_date.isoformat()}, "
          f"{sc.replications} replications (cap {sc.max_replications}), root seed {sc.root_seed}")
    print(f"  market: {m.members.count:,} members in {len(m.members.segments)} segments, "
          f"{m.recruiter_count:,} recruiters in {len(m.recruiters)} groups")
    print(f"  memory: about {_memory_note(sc)}")
    for name in sc.policy_names:
        p = sc.policies[name]
        tag = " (baseline)" if name == sc.baseline else ""
        print(f"  policy {name}{tag}: {p.description}")
    for line in explore:
        print(line)
    return EXIT_OK


def _memory_note(sc: Scenario) -> str:
    """``0.15 GiB per replication (available: 22.10 GiB)`` for ``validate``."""
    from simulator.scenario.memory import estimate, gib, memory_limit

    est = estimate(sc)
    cap, source = memory_limit()
    limit = f" (limit: {gib(cap)}, {source})" if cap is not None else ""
    return f"{gib(est.per_replication)} per replication at a time{limit}"


def resolve_policy(name: str) -> Policy:
    """A preset name, or ``FILE.yaml:POLICY`` for a policy of a scenario file."""
    from simulator.core.presets import PRESETS, preset

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


def cmd_policies_list(out: TextIO) -> int:
    from simulator.core.presets import PRESETS

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
    keys, (ra, rb), differ = rules_side_by_side([pa, pb])
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


# --------------------------------------------------------------------------- baseline (regression checks)


def _add_baseline_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``inmail-sim baseline save|check`` (the mechanism is in ``simulator.experiments.baseline``)."""
    base = sub.add_parser("baseline", help="store a run's summary statistics, or check a new run against them",
                          description="Regression tests on summary statistics. `check` exits 1 when a number "
                                      "moved, 0 when none did, 2 on bad input or a changed scenario.")
    bsub = base.add_subparsers(dest="baseline_command", metavar="ACTION", required=True)
    save = bsub.add_parser("save", help="run SCENARIO; store means, standard errors and n in FILE (JSON)")
    save.add_argument("scenario", metavar="SCENARIO.yaml")
    save.add_argument("--to", required=True, metavar="FILE", help="the baseline file to write")
    save.add_argument("--replications", "-n", type=_int_at_least(2), metavar="N",
                      help="replications per policy (default: the scenario's; at least 2, 10+ recommended)")
    save.add_argument("--seed", type=_int_at_least(0), metavar="S", help="root seed (default: the scenario's)")
    _add_set(save)
    check = bsub.add_parser("check", help="re-run SCENARIO as the baseline was made and compare metric by metric")
    check.add_argument("scenario", metavar="SCENARIO.yaml")
    check.add_argument("--against", required=True, metavar="FILE", help="the baseline file")
    check.add_argument("--mode", choices=("statistical", "exact"), default="statistical",
                       help="statistical (default): any seed or version, each difference tested against its "
                            "standard error; exact: same seed, replications and versions, identical numbers")
    check.add_argument("--seed", type=_int_at_least(0), metavar="S", help="root seed (default: the stored one)")
    check.add_argument("--replications", "-n", type=_int_at_least(2), metavar="N",
                       help="replications per policy (default: the stored number)")
    check.add_argument("--alpha", type=_positive_float, default=0.01, metavar="A",
                       help="family-wise false-alarm rate of statistical mode (default 0.01)")
    check.add_argument("--allow-changed-scenario", action="store_true",
                       help="compare even if the scenario changed since the baseline was saved")
    check.add_argument("--failures-only", action="store_true", help="print only the rows that moved")
    for p in (save, check):
        p.add_argument("--workers", "-j", type=_int_at_least(1), default=1, metavar="K",
                       help="worker processes (default 1); results do not depend on it")
        p.add_argument("--no-progress", action="store_true", help="no progress bar")


def cmd_baseline(args: argparse.Namespace) -> int:
    """``baseline save`` / ``baseline check``; exit 1 when a check finds a regression."""
    from tqdm import tqdm

    from simulator.experiments import baseline as bl
    from simulator.experiments.experiment import run_experiment

    bar = tqdm(total=0, unit="replication", desc="baseline", file=sys.stderr,
               disable=True if args.no_progress else None, dynamic_ncols=True)

    def progress(done: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    try:
        if args.baseline_command == "save":
            if Path(args.to).is_dir():
                raise InputError(f"--to {args.to}: is a folder; give the baseline file name")
            sc = load_scenario(args.scenario, args.set)
            if (args.replications or sc.replications) < 2:
                raise InputError(f"{args.scenario}: a baseline needs at least 2 replications (10+ recommended); "
                                 "use --replications N")
            results = run_experiment(sc, replications=args.replications, root_seed=args.seed,
                                     workers=args.workers, progress=progress)
            bar.close()
            saved = bl.save_baseline(results, args.to, scenario_file=args.scenario)
            rows = len(saved.stats)
            print(f"baseline of {saved.scenario} saved to {args.to}: {rows} rows (policies and paired differences) "
                  f"x {len(next(iter(saved.stats.values())))} metrics, {saved.replications} replications, "
                  f"seed {saved.root_seed}, scenario hash {saved.scenario_hash[:12]}")
            return EXIT_OK
        report = bl.check_scenario(args.scenario, args.against, args.mode, seed=args.seed,
                                   replications=args.replications, alpha=args.alpha,
                                   allow_changed_scenario=args.allow_changed_scenario, workers=args.workers,
                                   progress=progress)
        bar.close()
        print(report.render(only_failures=args.failures_only))
        return EXIT_OK if report.ok else EXIT_FAILURE
    except bl.BaselineError as exc:
        raise InputError(str(exc)) from None
    finally:
        bar.close()


# --------------------------------------------------------------------------- sweeps and sensitivity (issue 8)


def _add_explore_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``inmail-sim sweep`` and ``inmail-sim sensitivity`` (simulator.experiments.sweep, .sensitivity)."""
    sw = sub.add_parser("sweep", help="run the scenario over the parameter values of its sweep: block",
                        description="Run every point of SCENARIO's sweep: block x every policy x replications "
                                    "(common random numbers) and write sweep.csv and figures.")
    sens = sub.add_parser("sensitivity", help="Sobol indices and a tornado chart over parameter ranges",
                          description="Global sensitivity of the sensitivity: block's outputs (default: the "
                                      "response-rate difference and net credit burn) to its parameter ranges "
                                      "(or the sweep: block's). Costs N (d + 2) + 2 d + 1 evaluations.")
    for p in (sw, sens):
        p.add_argument("scenario", metavar="SCENARIO.yaml")
        p.add_argument("--out", metavar="DIR",
                       help="output folder (default: runs/<scenario name>-<command>-<timestamp>)")
        p.add_argument("--replications", "-n", type=_int_at_least(1), metavar="N",
                       help="replications per point and policy (overrides the block's)")
        add_executor_options(p)
        _add_set(p)
        add_resume_options(p)
        p.add_argument("--no-progress", action="store_true", help="no progress bar")
        p.add_argument("--quiet", "-q", action="store_true", help="do not print the summary")
    sens.add_argument("--samples", type=_int_at_least(2), metavar="N",
                      help="Sobol base sample size N, a power of 2 (overrides sensitivity.n)")
    sens.add_argument("--no-sobol", action="store_true", help="the tornado only (2 d + 1 evaluations)")
    sens.add_argument("--no-tornado", action="store_true", help="the Sobol indices only")


def note_ignored_blocks(scenario: Scenario) -> None:
    """``run`` ignores the sweep: and sensitivity: blocks; say so (on stderr)."""
    for block in ("sweep", "sensitivity"):
        if scenario.resolved.get(block) is not None:
            print(f"inmail-sim: note: `run` ignores the {block}: block (`inmail-sim {block}` runs it)",
                  file=sys.stderr)


def cmd_explore(args: argparse.Namespace, argv: Sequence[str], state: dict[str, Path]) -> int:
    """``sweep`` / ``sensitivity``: check the block, run every point into the folder, print a summary."""
    from simulator.experiments.runner import DaskUnavailableError, open_executor
    from simulator.experiments.sensitivity import plan_sensitivity
    from simulator.experiments.sweep import plan_sweep

    if args.resume and not args.out:
        raise InputError(f"--resume needs --out DIR: the folder of the {args.command} to continue")
    workers, dask = executor_settings(args)
    started = dt.datetime.now().astimezone()
    scenario = load_scenario(args.scenario, args.set)
    if args.command == "sweep":  # every point is checked: bad input exits 2 before the folder is touched
        plan: Any = plan_sweep(scenario, args.replications)
    else:
        plan = plan_sensitivity(scenario, n=args.samples, replications=args.replications,
                                sobol=False if args.no_sobol else None, tornado=False if args.no_tornado else None)
    out = Path(args.out) if args.out else Path("runs") / f"{scenario.name}-{args.command}-{started:%Y%m%d-%H%M%S}"
    previous = _handle_sigterm_as_interrupt()
    try:
        with open_executor(workers, dask) as executor:
            return _explore_in_folder(args, argv, state, scenario, plan, out, executor, workers, dask, started)
    except DaskUnavailableError as exc:
        raise InputError(str(exc)) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


def _explore_in_folder(args: argparse.Namespace, argv: Sequence[str], state: dict[str, Path], scenario: Scenario,
                       plan: Any, out: Path, executor: Any, workers: int, dask: str | None,
                       started: dt.datetime) -> int:
    from tqdm import tqdm

    from simulator.experiments.runner import describe_executor, failure_details
    from simulator.experiments.sensitivity import run_sensitivity
    from simulator.experiments.sweep import SweepError, run_sweep, task_store
    from simulator.io.outputs import RunFolderError, prepare_run_folder, resume_command, run_fingerprint
    from simulator.io.study_files import write_sensitivity, write_sweep

    try:
        folder = prepare_run_folder(out, run_fingerprint(scenario), resume=args.resume, force=args.force)
    except RunFolderError as exc:
        raise InputError(str(exc)) from None
    state["log_dir"] = out
    for note in folder.notes:
        print(f"inmail-sim: {note}", file=sys.stderr)
    again = resume_command(argv, out)
    store = task_store(out, resume=args.resume)
    bar = tqdm(total=0, unit="task", desc=f"{scenario.name} {args.command}", file=sys.stderr,
               disable=True if args.no_progress else None, dynamic_ncols=True)

    def progress(done: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    common: dict[str, Any] = {"replications": args.replications, "executor": executor, "progress": progress,
                              "store": store, "memory_limit": args.memory_limit, "plan": plan}
    if dask not in (None, "local"):
        common["dask"] = dask  # a remote cluster: no local memory check
    try:
        with folder:
            try:
                if args.command == "sweep":
                    res: Any = run_sweep(scenario, **common)
                else:
                    res = run_sensitivity(scenario, **common)
            finally:
                bar.close()
            write = write_sweep if args.command == "sweep" else write_sensitivity
            write(res, out, argv=["inmail-sim", *argv], started=started, finished=dt.datetime.now().astimezone(),
                  workers=workers, executor=describe_executor(workers, dask))
    except KeyboardInterrupt:
        kept = store.count()
        print(f"inmail-sim: interrupted: workers stopped; {kept} finished task file{'s' if kept != 1 else ''} "
              f"kept in {store.folder}\n  resume with: {again}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SweepError as exc:
        log = _error_log(state, f"inmail-sim {shlex.join(argv)}\n\n{failure_details(exc.failures)}")
        print(f"inmail-sim: error: {exc}\n  the {exc.finished} finished tasks are kept in {store.folder}; "
              f"tracebacks in {log}\n  to finish (after fixing the cause): {again}", file=sys.stderr)
        return EXIT_FAILURE
    if not args.quiet:
        print(res.text())
    files = "sweep.csv" if args.command == "sweep" else "sensitivity.csv, tornado.csv"
    print(f"results ({files}, figures, ...) written to")
    print(f"  {out}")
    return EXIT_OK


def validate_explore_blocks(sc: Scenario) -> list[str]:
    """Check the sweep: / sensitivity: blocks as the commands would (raises ScenarioError); describe them."""
    lines = []
    if sc.resolved.get("sweep") is not None:
        from simulator.experiments.sweep import check_sweep, sweep_spec

        spec, points = sweep_spec(sc), check_sweep(sc)
        lines.append(f"  sweep: {spec.method}, {len(points)} points x {len(sc.policies)} policies x "
                     f"{spec.replications} replications over " + ", ".join(spec.paths))
    if sc.resolved.get("sensitivity") is not None:
        from simulator.experiments.sensitivity import check_sensitivity

        sp = check_sensitivity(sc)
        lines.append(f"  sensitivity: {len(sp.parameters)} inputs, {sp.evaluations} evaluations x "
                     f"{sp.replications} replications; outputs " + ", ".join(o.name for o in sp.outputs))
    return lines


# --------------------------------------------------------------------------- calibration and explain (issue 8)


def _add_explain_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``inmail-sim calibrate`` and ``inmail-sim explain`` (simulator.experiments.calibration, .explain)."""
    cal = sub.add_parser("calibrate", help="fit the calibration: block's market parameters to published figures",
                         description="Fit the free parameters of SCENARIO's calibration: block so that its "
                                     "baseline world reproduces the targets (common random numbers), check the "
                                     "fit on fresh replications, predict the validation figures, and write "
                                     "calibrated.yaml (ready for `inmail-sim run`). See docs/calibration.md.")
    cal.add_argument("--replications", "-n", type=_int_at_least(1), metavar="N",
                     help="replications per objective evaluation (overrides calibration.replications)")
    cal.add_argument("--check-replications", type=_int_at_least(2), metavar="N",
                     help="fresh replications for the achieved-vs-target table and the validation")
    cal.add_argument("--max-evaluations", type=_int_at_least(1), metavar="N",
                     help="objective evaluations at most (overrides calibration.max_evaluations)")
    cal.add_argument("--no-validation", action="store_true", help="skip the validation figures")
    cal.add_argument("--scenario-out", metavar="FILE",
                     help="write the calibrated scenario here instead of DIR/calibrated.yaml")
    exp = sub.add_parser("explain", help="why the new policy differs: Shapley contributions of its mechanisms",
                         description="Split the baseline -> POLICY difference of each metric into the Shapley "
                                     "contributions of the rule changes and of the channels (credit limit, "
                                     "adaptation, fatigue, threshold), by running every counterfactual world "
                                     "on common random numbers. Writes explain.csv and explain.png. Finished "
                                     "world replications are kept in DIR/worlds and reused by a re-run.")
    exp.add_argument("--policy", metavar="NAME", help="the policy to explain (default: the first non-baseline)")
    exp.add_argument("--metric", "-m", action="append", metavar="M",
                     help="metric to decompose (repeatable; default: response_rate and net_credit_burn)")
    exp.add_argument("--channels", metavar="A,B",
                     help="channels to switch (default: all available: credit_limit, adaptation, fatigue, "
                          "threshold); '' for none")
    exp.add_argument("--replications", "-n", type=_int_at_least(2), metavar="N",
                     help="replications per world (default: the scenario's)")
    exp.add_argument("--no-figure", action="store_true", help="do not draw explain.png")
    for p in (cal, exp):
        p.add_argument("scenario", metavar="SCENARIO.yaml")
        p.add_argument("--out", metavar="DIR",
                       help="output folder (default: runs/<scenario name>-<command>-<timestamp>)")
        add_executor_options(p)
        _add_set(p)
        p.add_argument("--no-progress", action="store_true", help="no progress bar")
        p.add_argument("--quiet", "-q", action="store_true", help="do not print the summary")


def cmd_calibrate_explain(args: argparse.Namespace, argv: Sequence[str], state: dict[str, Path]) -> int:
    """``calibrate`` / ``explain``: check the input, run into the folder, print the summary."""
    from tqdm import tqdm

    from simulator.experiments import calibration, explain
    from simulator.experiments.runner import DaskUnavailableError, open_executor
    from simulator.io.study_files import write_calibration, write_explain

    workers, dask = executor_settings(args)
    started = dt.datetime.now().astimezone()
    scenario = load_scenario(args.scenario, args.set)
    if args.command == "calibrate":  # bad input exits 2 before anything runs
        spec = calibration.calibration_spec(scenario, replications=args.replications,
                                            check_replications=args.check_replications,
                                            max_evaluations=args.max_evaluations)
    else:
        channels = None if args.channels is None else [c for c in args.channels.split(",") if c.strip()]
        metrics = tuple(args.metric or explain.DEFAULT_METRICS)
        try:
            explain.plan(scenario, args.policy, channels)
            explain.check_metrics(metrics)
        except explain.ExplainInputError as exc:
            raise InputError(f"{args.scenario}: {exc}") from None
    out = Path(args.out) if args.out else Path("runs") / f"{scenario.name}-{args.command}-{started:%Y%m%d-%H%M%S}"
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    state["log_dir"] = out
    bar = tqdm(total=0, desc=f"{scenario.name} {args.command}", file=sys.stderr,
               disable=True if args.no_progress else None, dynamic_ncols=True)

    def progress(done: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    previous = _handle_sigterm_as_interrupt()
    try:
        with open_executor(workers, dask) as executor:
            if args.command == "calibrate":
                res: Any = calibration.calibrate(scenario, executor, spec=spec, out=out, progress=progress,
                                                 validation=not args.no_validation, check_overrides=args.set or ())
                bar.close()
                files = write_calibration(res, out, argv=["inmail-sim", *argv], scenario_out=args.scenario_out)
                text = calibration.format_calibration(res)
            else:
                res = explain.explain(scenario, executor, policy=args.policy, metrics=metrics,
                                      replications=args.replications, channels=channels,
                                      store=explain.world_store(out), progress=progress)
                bar.close()
                files = write_explain(res, out, argv=["inmail-sim", *argv], figure=not args.no_figure)
                text = explain.format_explain(res)
    except DaskUnavailableError as exc:
        raise InputError(str(exc)) from None
    except KeyboardInterrupt:
        bar.close()
        kept = "calibration_trace.csv (every finished evaluation)" if args.command == "calibrate" else "worlds/"
        print(f"inmail-sim: interrupted; {kept} kept in {out}", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        bar.close()
        signal.signal(signal.SIGTERM, previous)
    if not args.quiet:
        print(text)
    print("results (" + ", ".join(f.name for f in files) + ") written to")
    print(f"  {out}")
    return EXIT_INTERRUPTED if getattr(res, "status", "") == "interrupted" else EXIT_OK


# --------------------------------------------------------------------------- entry point


def _error_log(state: dict[str, Path], text: str) -> Path:
    folder = state.get("log_dir")
    if folder is not None and folder.is_dir():
        path = folder / "error.log"
    else:
        fd, name = tempfile.mkstemp(prefix="inmail-sim-error-", suffix=".log")
        os.close(fd)
        path = Path(name)
    from simulator.experiments.runner import atomic_write

    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
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
        if args.command == "baseline":
            return cmd_baseline(args)
        if args.command == "report":
            return cmd_report(args)
        if args.command in ("sweep", "sensitivity"):
            return cmd_explore(args, argv, state)
        if args.command in ("calibrate", "explain"):
            return cmd_calibrate_explain(args, argv, state)
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
