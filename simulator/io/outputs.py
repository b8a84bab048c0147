"""The run folder: every result file written atomically, a checkpoint to resume from, a manifest to reproduce.

Files (see :data:`RUN_FILES`): ``summary.csv``, ``comparison.csv``, ``replications.csv``,
``timeseries.csv``, ``breakdowns.csv``, ``breakdown_comparison.csv``,
``breakdown_replications.csv``, ``member_distribution.csv``, ``scenario.resolved.yaml`` and
``manifest.json`` (written last, so a folder with a manifest is complete).  Each file goes to a
temporary name first and is then moved into place with ``os.replace``: a crash never leaves a
half-written file behind.

``inmail-sim run`` also keeps (:data:`CHECKPOINT_FILES`) ``checkpoint.json`` - the scenario hash,
root seed and code version the folder's results belong to, written before the first replication
- and ``replications/``, one file per finished (policy, replication), so ``--resume`` computes
only what is missing, and refuses when the scenario, seed or code differ (:func:`prepare_run_folder`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import re
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from simulator.core.metrics import METRIC_NAMES
from simulator.experiments.experiment import (
    COMPARISON_COLUMNS,
    MEMBER_COLUMNS,
    PrecisionReport,
    Results,
    empty_member_frame,
    record_store,
)
from simulator.experiments.provenance import (
    code_version,
    fingerprint_differences,
    git_revision,
    package_version,
    run_fingerprint,
    scenario_hash,
)
from simulator.experiments.runner import TEMPORARY_NAME, TaskStore, atomic_write
from simulator.io.run_index import register_run
from simulator.io.view import ResultsView
from simulator.scenario import load_scenario

SUMMARY_COLUMNS: tuple[str, ...] = ("policy", "metric", "mean", "std", "ci_low", "ci_high", "n")
TIMESERIES_COLUMNS: tuple[str, ...] = ("policy", "replication", "day", "metric", "value")

MEMBER_FILE = "member_distribution.csv"
"""Per-replication histogram of active members (``Results.member_distribution``)."""

RUN_FILES: tuple[str, ...] = (
    "summary.csv", "comparison.csv", "replications.csv", "timeseries.csv", "breakdowns.csv",
    "breakdown_comparison.csv", "breakdown_replications.csv", MEMBER_FILE, "scenario.resolved.yaml",
    "manifest.json",
)

CHECKPOINT = "checkpoint.json"
TASKS_DIR = "replications"
CHECKPOINT_FILES: tuple[str, ...] = (CHECKPOINT, TASKS_DIR)
"""What ``inmail-sim run`` keeps besides :data:`RUN_FILES`: the checkpoint and the per-replication files."""

LOCK = ".inmail-sim.lock"

__all__ = [
    "CHECKPOINT", "CHECKPOINT_FILES", "MEMBER_FILE", "RUN_FILES", "RunFolder", "RunFolderError", "atomic_write",
    "code_version", "fingerprint_differences", "load_results", "prepare_run_folder", "read_member_distribution",
    "resume_command", "run_fingerprint", "scenario_hash", "write_run",
]


def _csv(frame: pd.DataFrame) -> Callable[[Path], object]:
    return lambda p: frame.to_csv(p, index=False)


def _text(text: str) -> Callable[[Path], object]:
    return lambda p: p.write_text(text, encoding="utf-8")


# --------------------------------------------------------------------------- the run folder


class RunFolderError(Exception):
    """The output folder cannot be used as asked (exit code 2): the message says why and what to do."""


@dataclass
class RunFolder:
    """An output folder prepared for a run: its per-replication store, locked against a second run."""

    path: Path
    store: TaskStore
    fingerprint: dict[str, Any]
    found: int = 0
    notes: list[str] = field(default_factory=list)
    _lock: IO[bytes] | None = None

    def close(self) -> None:
        """Release the lock (the folder stays as it is)."""
        if self._lock is not None:
            with contextlib.suppress(OSError):
                (self.path / LOCK).unlink()
            self._lock.close()
            self._lock = None

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def stored_fingerprint(folder: Path) -> dict[str, Any] | None:
    """The fingerprint of the run in ``folder`` (checkpoint, else manifest), or None if it holds no run.

    Only files inmail-sim wrote count: a ``checkpoint.json`` with a fingerprint, a manifest of inmail-sim's.
    """
    checkpoint = _read_json(folder / CHECKPOINT)
    if checkpoint is not None and isinstance(checkpoint.get("fingerprint"), dict):
        return dict(checkpoint["fingerprint"])
    man = _ours_manifest(folder)
    if man is None:
        return None
    fp = man.get("fingerprint")
    return fp if isinstance(fp, dict) else {"scenario": man.get("scenario"), "root_seed": man.get("root_seed")}


def _lock(folder: Path) -> IO[bytes] | None:
    fh = (folder / LOCK).open("ab")
    try:
        import fcntl

        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except ImportError:  # not POSIX: no lock
        return fh
    except OSError:
        fh.close()
        raise RunFolderError(f"--out {folder}: another inmail-sim run is writing to this folder right now; "
                             "wait for it or choose another --out") from None
    return fh


TASK_FILE = re.compile(r"(p\d{5}-)?r\d{6}-[\w-]+\.npz|" + TEMPORARY_NAME.pattern)
"""A file of ``replications/`` that inmail-sim wrote: a task's result, or a temporary file a killed run left."""


def _ours_log(path: Path) -> bool:
    """Whether ``error.log`` is inmail-sim's: its first line is the command (``inmail-sim ...``), then a blank."""
    try:
        with path.open(encoding="utf-8", errors="replace") as fh:
            head = [fh.readline(), fh.readline()]
    except OSError:
        return False
    return head[0].startswith("inmail-sim ") and head[1] == "\n"


def _ours_manifest(folder: Path) -> dict[str, Any] | None:
    """The folder's ``manifest.json`` if inmail-sim wrote it (``package`` or ``fingerprint`` in it)."""
    man = _read_json(folder / "manifest.json")
    return man if man is not None and (man.get("package") == "inmail-sim" or "fingerprint" in man) else None


DRAWN_FILES: tuple[str, ...] = (
    *(f"figures/{name}.png" for name in ("rates", "credits", "differences", "winners_losers", "members", "threshold")),
    "report.html",
)
"""What `run` draws after its manifest (the report figures, ``io.plotting.FIGURES``, kept equal by a test) and
what `report` writes: not in the manifest's file list, but inmail-sim's all the same."""


def _written_by_us(folder: Path, holds_run: bool) -> set[str]:
    """Names (relative to ``folder``) of the files an earlier inmail-sim run wrote there."""
    names = {n for n in ("error.log",) if _ours_log(folder / n)}
    man = _ours_manifest(folder)
    if holds_run:
        names |= set(RUN_FILES) | {CHECKPOINT} | set(DRAWN_FILES)
    if man is not None:
        names |= {"manifest.json"} | {n for n in man.get("files", []) if isinstance(n, str) and n}
    return names


def _clear_run(folder: Path, holds_run: bool) -> list[str]:
    """Delete what an earlier run wrote (``--force``); return the files kept (not written by inmail-sim)."""
    root = folder.resolve()
    for name in _written_by_us(folder, holds_run):
        p = folder / name
        parent = p.parent.resolve()
        if Path(name).is_absolute() or ".." in Path(name).parts or (parent != root and root not in parent.parents):
            continue  # only files inside the folder, whatever the manifest says
        if p.is_file() or p.is_symlink():
            p.unlink()
            with contextlib.suppress(OSError):  # a sub-folder the run created (e.g. figures/), if now empty
                if p.parent != folder:
                    p.parent.rmdir()
    tasks = folder / TASKS_DIR
    if tasks.is_dir() and not tasks.is_symlink():
        for p in tasks.iterdir():
            if p.is_file() and TASK_FILE.fullmatch(p.name):
                p.unlink()
        with contextlib.suppress(OSError):
            tasks.rmdir()
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if p.name != LOCK and (p.is_file() or p.is_symlink()))


def _refuse_links_out(folder: Path) -> None:
    """``replications/`` must be a real folder inside the run folder: a resume must not write elsewhere."""
    tasks = folder / TASKS_DIR
    if tasks.is_symlink():
        raise RunFolderError(f"--out {folder}: {TASKS_DIR}/ is a symbolic link (to {os.readlink(tasks)}); inmail-sim "
                             "writes its replication files only inside the run folder and does not follow it: "
                             "remove the link, or choose another --out")
    if tasks.exists() and not tasks.is_dir():
        raise RunFolderError(f"--out {folder}: {TASKS_DIR} exists and is not a folder (inmail-sim keeps its "
                             "replication files there): move it, or choose another --out")


def _remove_stale_temporaries(folder: Path) -> None:
    """Delete the half-written temporary files a killed run left at the top of its folder.

    Called with the folder's lock held, so no other run is writing them; without this a kill -9 while a
    table or ``checkpoint.json`` was being written would leave the file behind, and a folder holding
    only such a file would not count as empty.
    """
    for stale in folder.iterdir():
        if TEMPORARY_NAME.fullmatch(stale.name) and stale.is_file() and not stale.is_symlink():
            with contextlib.suppress(OSError):
                stale.unlink()


def _is_empty(folder: Path) -> bool:
    return not any(p.name != LOCK for p in folder.iterdir())


def prepare_run_folder(out: str | Path, fingerprint: dict[str, Any], *, resume: bool = False,
                       force: bool = False) -> RunFolder:
    """Check ``out`` against the run about to start and open its per-replication store.

    * ``resume``: reuse the replications the folder holds; refused (:class:`RunFolderError`) if
      the folder's scenario, root seed or code version differ.  An empty or missing folder just
      starts a new run.
    * otherwise the folder must be new or empty; one holding a run (or anything else) is only
      replaced with ``force`` (which deletes what inmail-sim wrote there before).

    Writes ``checkpoint.json`` and removes an old ``manifest.json`` (the folder is incomplete
    until the run's manifest is written again).
    """
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise RunFolderError(f"--out {folder}: exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = _lock(folder)
    except OSError as exc:
        raise _unwritable(folder, exc) from None
    try:
        _refuse_links_out(folder)
        _remove_stale_temporaries(folder)
        notes: list[str] = []
        stored = stored_fingerprint(folder)
        empty = _is_empty(folder)
        if resume and stored is not None:
            diffs = fingerprint_differences(stored, fingerprint)
            if diffs:
                raise RunFolderError(
                    f"cannot resume {folder}: " + "; ".join(diffs) + ". Mixing them would give wrong results: "
                    "re-run the original command with --resume, or start over with --force (deletes the "
                    "finished replications), or choose another --out")
        elif not empty and not force:
            if stored is not None:
                raise RunFolderError(
                    f"--out {folder} already holds a run (scenario {stored.get('scenario')!r}, root seed "
                    f"{stored.get('root_seed')}): add --resume to continue it (only if it is the same scenario, "
                    "seed and code), --force to replace it, or choose another --out")
            raise RunFolderError(f"--out {folder} is not empty and holds no inmail-sim run: choose another "
                                 "--out, or add --force to write into it anyway")
        elif resume:
            notes.append(f"nothing to resume in {folder}: starting a new run")
        if force and not resume:
            kept = _clear_run(folder, holds_run=stored is not None)
            if kept:
                notes.append(f"--force deleted only what inmail-sim wrote in {folder}; kept {len(kept)} other "
                             f"file{'s' if len(kept) != 1 else ''}: {', '.join(kept[:8])}"
                             + (f" and {len(kept) - 8} more" if len(kept) > 8 else ""))
        _start_over(folder)
        checkpoint = {"format": 1, "fingerprint": fingerprint,
                      "created": dt.datetime.now().astimezone().isoformat(timespec="seconds")}
        try:
            atomic_write(folder / CHECKPOINT, _text(json.dumps(checkpoint, indent=2, default=str) + "\n"))
            store = record_store(folder / TASKS_DIR)
        except OSError as exc:
            raise _unwritable(folder, exc) from None
        found = store.count() if resume else 0
        if found:
            notes.append(f"resuming: {found} finished replication file{'s' if found != 1 else ''} in {folder}")
        return RunFolder(folder, store, fingerprint, found, notes, lock)
    except BaseException:
        lock_path = folder / LOCK
        if lock is not None:
            lock.close()
        with contextlib.suppress(OSError):
            lock_path.unlink()
        raise


def _unwritable(folder: Path, exc: OSError) -> RunFolderError:
    return RunFolderError(f"--out {folder}: cannot write there ({exc.strerror or exc}): choose a folder you can "
                          "write to")


def _start_over(folder: Path) -> None:
    """Remove the manifest (the folder is incomplete until the run writes it again) and inmail-sim's error.log."""
    if _ours_manifest(folder) is not None:
        with contextlib.suppress(FileNotFoundError):
            (folder / "manifest.json").unlink()
    if _ours_log(folder / "error.log"):
        with contextlib.suppress(FileNotFoundError):
            (folder / "error.log").unlink()


def resume_command(argv: Sequence[str], out: str | Path) -> str:
    """The command line that resumes a run: ``argv`` without --out/--force/--resume, plus ``--out DIR --resume``."""
    args: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--out":
            skip = True
            continue
        if a.startswith("--out=") or a in ("--force", "--resume"):
            continue
        args.append(a)
    return shlex.join(["inmail-sim", *args, "--out", str(out), "--resume"])


# --------------------------------------------------------------------------- writing and reading results


def manifest(results: Results, *, argv: Sequence[str] | None, started: dt.datetime, finished: dt.datetime,
             files: Sequence[str], workers: int | None = None, executor: str | None = None) -> dict[str, Any]:
    """What is needed to reproduce and audit a run."""
    sc = results.scenario
    prec: PrecisionReport | None = results.precision
    git = git_revision()
    return {
        "package": "inmail-sim",
        "version": package_version(),
        "git_revision": git["revision"],
        "git_dirty": git["dirty"],
        "scenario": sc.name,
        "scenario_file": sc.source,
        "overrides": list(sc.overrides),
        "baseline": sc.baseline,
        "policies": sc.policy_names,
        "root_seed": sc.root_seed,
        "replications": results.n_replications,
        "replication_indices": sorted(int(i) for i in results.replications["replication"].unique()),
        "seeding": "replication i of every policy uses numpy SeedSequence(root_seed, spawn_key=(i,))",
        "precision": None if prec is None else {
            "target": prec.target, "reached": prec.reached, "replications": prec.replications,
            "cap": prec.cap, "half_widths": prec.half_widths, "message": prec.message,
        },
        "workers": workers,
        "executor": executor,
        "timeseries": bool(sc.run.record_daily),
        "fingerprint": run_fingerprint(sc),
        "numpy_version": np.__version__,
        "pandas_version": pd.__version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "command_line": list(argv) if argv is not None else list(sys.argv),
        "command": shlex.join(list(argv) if argv is not None else sys.argv),
        "started": started.isoformat(timespec="seconds"),
        "finished": finished.isoformat(timespec="seconds"),
        "duration_seconds": round((finished - started).total_seconds(), 3),
        "files": list(files),
    }


def write_run(results: Results, out: str | Path, *, argv: Sequence[str] | None = None,
              started: dt.datetime | None = None, finished: dt.datetime | None = None,
              workers: int | None = None, executor: str | None = None,
              index: str | Path | bool | None = None,
              extra_files: Sequence[tuple[str, Callable[[Path], object]]] = (),
              manifest_extra: Mapping[str, Any] | None = None) -> Path:
    """Write the run folder ``out`` (created if needed), register it in the run index; return its path.

    ``timeseries.csv`` is left out when the run did not keep the daily series (``--no-timeseries``),
    ``member_distribution.csv`` when the results hold no member histograms.  ``index``: the run index
    file (default: :func:`~simulator.io.run_index.index_for_folder`), or False not to register; an index
    that cannot be written is a warning, never a failed run.  ``extra_files``: more ``(name, write)``
    files of the run (e.g. the worlds tables), written before the manifest and listed in it;
    ``manifest_extra``: entries added to (or replacing) the manifest's.
    """
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    finished = finished or dt.datetime.now().astimezone()
    started = started or finished
    summary = results.summary[list(SUMMARY_COLUMNS)]
    comparison = results.comparison[list(COMPARISON_COLUMNS)]
    writes: list[tuple[str, Callable[[Path], object]]] = [
        ("summary.csv", _csv(summary)),
        ("comparison.csv", _csv(comparison)),
        ("replications.csv", _csv(results.replications)),
        ("timeseries.csv", _csv(results.timeseries[list(TIMESERIES_COLUMNS)])),
        ("breakdowns.csv", _csv(results.breakdowns)),
        ("breakdown_comparison.csv", _csv(results.breakdown_comparison)),
        ("breakdown_replications.csv", _csv(results.breakdown_replications)),
        (MEMBER_FILE, _csv(results.member_distribution[list(MEMBER_COLUMNS)])),
        ("scenario.resolved.yaml", _text(_resolved_header(results) + results.scenario.resolved_yaml())),
    ]
    left_out = {name for name, absent in (("timeseries.csv", not results.scenario.run.record_daily),
                                          (MEMBER_FILE, results.member_distribution.empty)) if absent}
    writes = [w for w in writes if w[0] not in left_out] + list(extra_files)
    for name in left_out:
        with contextlib.suppress(FileNotFoundError):
            (folder / name).unlink()  # a stale one from an earlier run would not match
    for name, write in writes:
        atomic_write(folder / name, write)
    files = [name for name, _ in writes] + ["manifest.json"]
    man = manifest(results, argv=argv, started=started, finished=finished, files=files, workers=workers,
                   executor=executor)
    man.update(manifest_extra or {})
    atomic_write(folder / "manifest.json", _text(json.dumps(man, indent=2, default=str) + "\n"))
    if index is not False:
        register_run(results, folder, man, index=None if index is True else index)
    return folder


def _resolved_header(results: Results) -> str:
    sc = results.scenario
    lines = ["# The scenario as run: after 'extends' and every override. Re-run it with",
             f"#   inmail-sim run scenario.resolved.yaml   (root seed {sc.root_seed})"]
    if sc.source:
        lines.append(f"# source: {sc.source}")
    lines += [f"# override: {o}" for o in sc.overrides]
    return "\n".join(lines) + "\n"


def with_derived_metrics(reps: pd.DataFrame) -> pd.DataFrame:
    """A replications frame with the metrics a run folder written before they existed lacks, derived from
    the ones it has (``unanswered`` was called ``pending``; ``credits_lost`` = net burn + expired)."""
    reps = reps.copy()
    if "unanswered" not in reps.columns and "pending" in reps.columns:
        reps["unanswered"] = reps["pending"]
    if "credits_lost" not in reps.columns and {"net_credit_burn", "credits_expired"} <= set(reps.columns):
        reps["credits_lost"] = reps["net_credit_burn"] + reps["credits_expired"]
    return reps


def load_results(folder: str | Path) -> ResultsView:
    """Rebuild the results (:class:`ResultsView`) of a run folder (statistics recomputed from the replications)."""
    folder = Path(folder)
    scenario = load_scenario(folder / "scenario.resolved.yaml")
    reps = with_derived_metrics(pd.read_csv(folder / "replications.csv"))
    reps = reps[["policy", "replication", "seed", *METRIC_NAMES]]
    ts_path = folder / "timeseries.csv"
    ts = pd.read_csv(ts_path) if ts_path.is_file() else pd.DataFrame(columns=list(TIMESERIES_COLUMNS))
    bd = pd.read_csv(folder / "breakdown_replications.csv", keep_default_na=False, na_values=[""])
    man = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    prec = man.get("precision")
    report = None if prec is None else PrecisionReport(prec["target"], prec["reached"], prec["replications"],
                                                      prec["cap"], prec["half_widths"])
    return ResultsView(scenario=scenario, replications=reps, timeseries=ts, breakdown_replications=bd,
                       precision=report, extra={"manifest": man},
                       member_distribution=read_member_distribution(folder))


def read_member_distribution(folder: str | Path) -> pd.DataFrame:
    """``member_distribution.csv`` of a run folder; empty if the folder has none (written before it existed).

    Raises ``ValueError`` naming the file when its columns are not ``MEMBER_COLUMNS``.
    """
    path = Path(folder) / MEMBER_FILE
    if not path.is_file():
        return empty_member_frame()
    frame = pd.read_csv(path, keep_default_na=False, na_values=[""],
                        dtype={"policy": str, "quantity": str})
    if list(frame.columns) != list(MEMBER_COLUMNS):
        raise ValueError(f"{path}: columns {', '.join(map(str, frame.columns))}, expected {', '.join(MEMBER_COLUMNS)}")
    return frame.astype({"replication": np.int64, "bin": np.int64, "members": np.int64})
