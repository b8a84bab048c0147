"""What every ``inmail-sim`` command shares: exit codes, shared arguments, the progress bar,
opening the executor, the error log and the output folder.

Heavy modules (tqdm, the experiments) are imported inside the functions that need them, so that
``inmail-sim --help`` and a bad command line answer at once.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from concurrent.futures import Executor

    Subcommands = argparse._SubParsersAction[argparse.ArgumentParser]
    """What ``add_subparsers`` returns: each command module adds its parsers to it."""

    from simulator.experiments.budget import Limits, Workload
    from simulator.io.outputs import RunFolder
    from simulator.scenario import Scenario

EXIT_OK, EXIT_FAILURE, EXIT_INVALID, EXIT_INTERRUPTED = 0, 1, 2, 130


class InputError(Exception):
    """Bad input that is not a scenario file problem (e.g. an unknown policy name): exit code 2."""


# --------------------------------------------------------------------------- argument types


def int_at_least(low: int) -> Callable[[str], int]:
    """An argparse type: a whole number >= ``low`` (its name shows in argparse's messages)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


def positive_float(text: str) -> float:
    """An argparse type: a number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def memory_size(text: str) -> int:
    """An argparse type: a memory size such as ``512M`` or ``8G``, in bytes."""
    from simulator.scenario.memory import parse_size

    try:
        return parse_size(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a memory size such as 512M or 8G, got {text!r}") from None


# --------------------------------------------------------------------------- shared arguments


def add_scenario_argument(parser: argparse.ArgumentParser) -> None:
    """The positional ``SCENARIO.yaml`` and ``--allow-outside-extends`` (applied by ``main``)."""
    parser.add_argument("scenario", metavar="SCENARIO.yaml")
    parser.add_argument("--allow-outside-extends", action="store_true",
                        help="let extends: name files outside the scenario's folder tree (absolute paths, ../)")


def add_study_out_option(parser: argparse.ArgumentParser) -> None:
    """``--out DIR`` of the studies (sweep, sensitivity, calibrate, explain)."""
    parser.add_argument("--out", metavar="DIR",
                        help="output folder (default: runs/<scenario name>-<command>-<timestamp>)")


def scale_factor(text: str) -> float:
    """An argparse type: the ``--scale`` factor, a number in (0, 10]."""
    from simulator.scenario.scale import MAX_SCALE, check_scale

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in (0, {MAX_SCALE:g}], got {text!r}") from None
    try:
        return check_scale(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be in (0, {MAX_SCALE:g}] (0.2 = a fifth of the members and of "
                                         f"every recruiter group), got {text}") from None


class _SetAction(argparse.Action):
    """``--set``: appended to ``args.set``, before the ``scale=F`` entry of ``--scale`` (which stays last)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        entries = list(getattr(namespace, self.dest) or [])
        at = len(entries) - 1 if getattr(namespace, "scale", None) is not None else len(entries)
        entries.insert(at, values)
        setattr(namespace, self.dest, entries)


class _ScaleAction(argparse.Action):
    """``--scale F``: ``args.scale``, and the override ``scale=F`` last in ``args.set`` (so every command
    that loads the scenario with ``args.set`` scales it, and baselines and manifests record it)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        entries = list(getattr(namespace, "set", None) or [])
        if getattr(namespace, "scale", None) is not None:
            entries.pop()
        namespace.set = [*entries, f"scale={values!r}"]
        setattr(namespace, self.dest, values)


def add_set_option(parser: argparse.ArgumentParser) -> None:
    """``--set PATH=VALUE`` scenario overrides (repeatable) and ``--scale F``."""
    parser.add_argument("--set", "-s", action=_SetAction, default=[], metavar="PATH=VALUE",
                        help="override a scenario field by dotted path, e.g. market.members.count=200000 "
                             "(repeatable; VALUE is YAML)")
    parser.add_argument("--scale", type=scale_factor, action=_ScaleAction, default=None, metavar="F",
                        help="multiply members and every recruiter group's count by F in (0, 10] after "
                             "extends and --set (a quick look that keeps members per recruiter, so it keeps "
                             "the answer: e.g. --scale 0.2); same as the scenario key scale: F")


def add_executor_options(parser: argparse.ArgumentParser) -> None:
    """``--workers K``, ``--dask ADDRESS|local`` and ``--memory-limit``."""
    parser.add_argument("--workers", "-j", type=int_at_least(1), default=None, metavar="K",
                        help="worker processes (default 1: run in this process; with --dask local: the "
                             "number of Dask workers, default one per core); results do not depend on it")
    parser.add_argument("--dask", metavar="ADDRESS",
                        help="run the replications on a Dask cluster: a scheduler address such as "
                             "tcp://host:8786, or 'local' for a LocalCluster on this machine "
                             "(needs pip install 'inmail-sim[dask]')")
    parser.add_argument("--batch", type=int_at_least(1), default=None, metavar="K",
                        help="replications a worker runs together in one pass (default: by market size, up to "
                             "64 for small markets, 8 at 1,000 recruiters x 100,000 members, 1 for large ones); "
                             "results do not depend on it")
    add_limit_options(parser)


def add_limit_options(parser: argparse.ArgumentParser) -> None:
    """``--memory-limit`` and ``--max-tasks``: the limits every command checks its work against up front."""
    parser.add_argument("--memory-limit", type=memory_size, metavar="SIZE",
                        help="refuse scenarios whose memory estimate exceeds SIZE (e.g. 8G; default: the "
                             "available memory, MemAvailable)")
    parser.add_argument("--max-tasks", type=int_at_least(1), metavar="N",
                        help="refuse more than N tasks (replications of one policy in one point or world; "
                             "default 1,000,000 or $INMAIL_SIM_MAX_TASKS)")


def add_resume_options(parser: argparse.ArgumentParser) -> None:
    """``--resume`` and ``--force`` for commands that write an output folder task by task."""
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out DIR: reuse its finished replications, compute the rest "
                             "(refused if the scenario, seed or code version differ)")
    parser.add_argument("--force", action="store_true",
                        help="replace the run already in --out DIR (deletes what inmail-sim wrote there)")


def add_no_progress_option(parser: argparse.ArgumentParser) -> None:
    """``--no-progress``."""
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_quiet_summary_option(parser: argparse.ArgumentParser) -> None:
    """``--quiet`` of the studies, which print a summary."""
    parser.add_argument("--quiet", "-q", action="store_true", help="do not print the summary")


def executor_settings(args: argparse.Namespace) -> tuple[int, str | None]:
    """(workers, dask address) from :func:`add_executor_options`' arguments."""
    if args.dask is not None and not args.dask.strip():
        raise InputError("--dask needs a scheduler address (tcp://host:8786) or 'local'")
    if args.dask == "local" and args.workers is None:
        return max(1, os.cpu_count() or 1), "local"
    return (args.workers or 1), args.dask


def command_limits(args: argparse.Namespace, workers: int = 1, dask: str | None = None) -> Limits:
    """The limits of this command line: ``--memory-limit``, ``--max-tasks``, the workers; a capped
    ``--workers`` is noted on stderr."""
    from simulator.experiments.budget import Limits

    def note(text: str) -> None:
        print(f"inmail-sim: note: {text}", file=sys.stderr)

    asked = getattr(args, "workers", None) is not None
    return Limits(workers=workers, memory=getattr(args, "memory_limit", None),
                  max_tasks=getattr(args, "max_tasks", None), local=dask in (None, "local"),
                  batch=getattr(args, "batch", None),
                  note=note if asked else None)


def admit_work(args: argparse.Namespace, work: Workload, workers: int = 1,
               dask: str | None = None) -> tuple[int, Limits]:
    """Refuse ``work`` past this command line's limits (exit code 2, the estimate in the message) before
    anything starts; return the workers to start (capped at the tasks) and the limits to pass on."""
    from dataclasses import replace

    from simulator.experiments.budget import admit, fitting_batch
    from simulator.experiments.runner import BATCH

    limits = command_limits(args, workers, dask)
    workers = admit(work, limits)
    BATCH.set(fitting_batch(work, workers, limits))  # this command's batches (the process runs one command)
    return workers, replace(limits, workers=workers, note=None)


# --------------------------------------------------------------------------- progress bar


class ProgressBar:
    """A progress bar on stderr, driven by the studies' ``progress(done, total)`` callback.

    Pass the bar itself as the callback.  ``total`` may change (``run --precision`` adds
    replications); ``done`` going back means a new stage began (calibrate: fit, check, validation),
    and the bar starts again.  Close it before printing results, or use it as a context manager.
    """

    def __init__(self, description: str, *, unit: str = "it", hidden: bool = False) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=0, unit=unit, desc=description, file=sys.stderr,
                         disable=True if hidden else None, dynamic_ncols=True)

    def __call__(self, done: int, total: int) -> None:
        if done < self._bar.n:
            self._bar.reset(total=total)
        elif self._bar.total != total:
            self._bar.total = total
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        """Remove the bar from the terminal (closing twice is harmless)."""
        self._bar.close()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- running


def _sigterm_as_interrupt() -> Any:
    """``kill PID`` stops a run like Ctrl-C; returns the previous SIGTERM handler."""
    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    try:
        return signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread
        return signal.getsignal(signal.SIGTERM)


@contextlib.contextmanager
def opened_executor(workers: int, dask: str | None) -> Iterator[Executor]:
    """The executor of ``workers`` processes or of a Dask cluster, with SIGTERM acting as Ctrl-C.

    Workers are stopped and finished tasks kept however the body ends; a missing Dask is bad
    input (:class:`InputError`).
    """
    from simulator.experiments.runner import DaskUnavailableError, open_executor

    previous = _sigterm_as_interrupt()
    try:
        with open_executor(workers, dask) as executor:
            yield executor
    except DaskUnavailableError as exc:
        raise InputError(str(exc)) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


@dataclass
class ErrorLog:
    """Where tracebacks are written: ``error.log`` in the command's output folder once there is one,
    else a new temporary file."""

    folder: Path | None = None

    def write(self, text: str) -> Path:
        """Write ``text`` to the log file and return its path."""
        if self.folder is not None and self.folder.is_dir():
            path = self.folder / "error.log"
        else:
            fd, name = tempfile.mkstemp(prefix="inmail-sim-error-", suffix=".log")
            os.close(fd)
            path = Path(name)
        from simulator.experiments.runner import atomic_write

        atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
        return path


def study_folder(args: argparse.Namespace, scenario_name: str, started: dt.datetime) -> Path:
    """``--out``, or ``runs/<scenario name>-<command>-<timestamp>``."""
    if args.out:
        return Path(args.out)
    return Path("runs") / f"{scenario_name}-{args.command}-{started:%Y%m%d-%H%M%S}"


def open_run_folder(args: argparse.Namespace, scenario: Scenario, out: Path, log: ErrorLog,
                    fingerprint: dict[str, Any] | None = None) -> RunFolder:
    """Prepare ``out`` for ``--resume`` / ``--force`` (refusals are bad input), log into it, print its notes.

    ``fingerprint``: what the folder's results depend on (default the scenario's run fingerprint).
    """
    from simulator.io.outputs import RunFolderError, prepare_run_folder, run_fingerprint

    try:
        folder = prepare_run_folder(out, fingerprint or run_fingerprint(scenario), resume=args.resume,
                                    force=args.force)
    except RunFolderError as exc:
        raise InputError(str(exc)) from None
    log.folder = out
    for note in folder.notes:
        print(f"inmail-sim: {note}", file=sys.stderr)
    return folder


def stopped_run(exc: BaseException, folder: RunFolder, log: ErrorLog, argv: Sequence[str], again: str) -> int:
    """The note and exit code of a run folder's run stopped by Ctrl-C (130) or by failed replications (1).

    Either way the finished replications are in the folder's store, and the note gives the command
    that finishes the run; the tracebacks of failed replications go to the log file.
    """
    import shlex

    from simulator.experiments.runner import failure_details

    if isinstance(exc, KeyboardInterrupt):
        kept = folder.store.count()
        print(f"inmail-sim: interrupted: workers stopped; {kept} finished replication file{'s' if kept != 1 else ''} "
              f"kept in {folder.store.folder}\n  resume with: {again}", file=sys.stderr)
        return EXIT_INTERRUPTED
    failures = getattr(exc, "failures", [])
    log_file = log.write(f"inmail-sim {shlex.join(argv)}\n\n{failure_details(failures)}")
    print(f"inmail-sim: error: {exc}\n  the {getattr(exc, 'finished', 0)} finished replications are kept in "
          f"{folder.store.folder}; tracebacks in {log_file}\n  to finish the run (after fixing the cause): "
          f"{again}", file=sys.stderr)
    return EXIT_FAILURE


def make_output_folder(out: Path, log: ErrorLog) -> None:
    """Create ``out`` (calibrate, explain: no run-folder lock) and log into it."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=out).close()  # writable? (a read-only folder fails here, not at the end)
    except OSError as exc:
        raise InputError(f"--out {out}: cannot write there ({exc.strerror or exc}): choose a folder you can "
                         "write to") from None
    log.folder = out


def print_written(files: str, out: Path) -> None:
    """The closing lines of a command: which files were written, and where."""
    print(f"results ({files}) written to")
    print(f"  {out}")


# --------------------------------------------------------------------------- calibrate and explain


def add_study_arguments(parser: argparse.ArgumentParser) -> None:
    """SCENARIO.yaml, ``--out``, the executor options, ``--set``, ``--no-progress``, ``--quiet``."""
    add_scenario_argument(parser)
    add_study_out_option(parser)
    add_executor_options(parser)
    add_set_option(parser)
    add_no_progress_option(parser)
    add_quiet_summary_option(parser)


@dataclass(frozen=True)
class StudySummary:
    """What a study run by :func:`run_study_into_folder` hands back: its printed summary, its files."""

    text: str
    files: list[Path]
    interrupted: bool = False


Study = Callable[["Executor", Path, ProgressBar], StudySummary]
"""Runs a study with the executor into the output folder (reporting to the bar) and writes its files."""


def run_study_into_folder(args: argparse.Namespace, log: ErrorLog, scenario_name: str, started: dt.datetime,
                          workers: int, dask: str | None, study: Study, *, kept_on_interrupt: str) -> int:
    """Run ``study`` into ``--out`` (created, no run-folder lock), print its summary; exit 130 if interrupted.

    ``kept_on_interrupt`` names what Ctrl-C leaves in the folder for a re-run.
    """
    out = study_folder(args, scenario_name, started)
    make_output_folder(out, log)
    bar = ProgressBar(f"{scenario_name} {args.command}", hidden=args.no_progress)
    try:
        with bar, opened_executor(workers, dask) as executor:
            summary = study(executor, out, bar)
    except KeyboardInterrupt:
        print(f"inmail-sim: interrupted; {kept_on_interrupt} kept in {out}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if not args.quiet:
        print(summary.text)
    print_written(", ".join(f.name for f in summary.files), out)
    return EXIT_INTERRUPTED if summary.interrupted else EXIT_OK
