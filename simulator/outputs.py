"""The run folder: every result file written atomically, plus a manifest to reproduce the run.

Files (see :data:`RUN_FILES`): ``summary.csv``, ``comparison.csv``, ``replications.csv``,
``timeseries.csv``, ``breakdowns.csv``, ``breakdown_comparison.csv``,
``breakdown_replications.csv``, ``scenario.resolved.yaml`` and ``manifest.json`` (written last,
so a folder with a manifest is complete).  Each file goes to a temporary name first and is then
moved into place with ``os.replace``: a crash never leaves a half-written file behind.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simulator.experiment import COMPARISON_COLUMNS, PrecisionReport, Results
from simulator.metrics import METRIC_NAMES
from simulator.scenario import load_scenario

SUMMARY_COLUMNS: tuple[str, ...] = ("policy", "metric", "mean", "std", "ci_low", "ci_high", "n")
TIMESERIES_COLUMNS: tuple[str, ...] = ("policy", "replication", "day", "metric", "value")

RUN_FILES: tuple[str, ...] = (
    "summary.csv", "comparison.csv", "replications.csv", "timeseries.csv", "breakdowns.csv",
    "breakdown_comparison.csv", "breakdown_replications.csv", "scenario.resolved.yaml", "manifest.json",
)


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file next to ``path``, then move it into place."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _csv(frame: pd.DataFrame) -> Callable[[Path], None]:
    return lambda p: frame.to_csv(p, index=False)


def _text(text: str) -> Callable[[Path], None]:
    return lambda p: p.write_text(text, encoding="utf-8")


def package_version() -> str:
    """The installed ``inmail-sim`` version (the source tree's if not installed)."""
    try:
        from importlib.metadata import version

        return version("inmail-sim")
    except Exception:  # not installed: fall back to the package attribute
        import simulator

        return str(getattr(simulator, "__version__", "unknown"))


def git_revision() -> dict[str, Any]:
    """The commit of the source tree the package was imported from, if it is a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=False)
        if rev.returncode != 0:
            return {"revision": None, "dirty": None}
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=False)
        return {"revision": rev.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"revision": None, "dirty": None}


def manifest(results: Results, *, argv: Sequence[str] | None, started: dt.datetime, finished: dt.datetime,
             files: Sequence[str], workers: int | None = None) -> dict[str, Any]:
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
              workers: int | None = None) -> Path:
    """Write the run folder ``out`` (created if needed); return its path."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    finished = finished or dt.datetime.now().astimezone()
    started = started or finished
    summary = results.summary[list(SUMMARY_COLUMNS)]
    comparison = results.comparison[list(COMPARISON_COLUMNS)]
    writes: list[tuple[str, Callable[[Path], None]]] = [
        ("summary.csv", _csv(summary)),
        ("comparison.csv", _csv(comparison)),
        ("replications.csv", _csv(results.replications)),
        ("timeseries.csv", _csv(results.timeseries[list(TIMESERIES_COLUMNS)])),
        ("breakdowns.csv", _csv(results.breakdowns)),
        ("breakdown_comparison.csv", _csv(results.breakdown_comparison)),
        ("breakdown_replications.csv", _csv(results.breakdown_replications)),
        ("scenario.resolved.yaml", _text(_resolved_header(results) + results.scenario.resolved_yaml())),
    ]
    for name, write in writes:
        atomic_write(folder / name, write)
    files = [name for name, _ in writes] + ["manifest.json"]
    man = manifest(results, argv=argv, started=started, finished=finished, files=files, workers=workers)
    atomic_write(folder / "manifest.json", _text(json.dumps(man, indent=2, default=str) + "\n"))
    return folder


def _resolved_header(results: Results) -> str:
    sc = results.scenario
    lines = ["# The scenario as run: after 'extends' and every override. Re-run it with",
             f"#   inmail-sim run scenario.resolved.yaml   (root seed {sc.root_seed})"]
    if sc.source:
        lines.append(f"# source: {sc.source}")
    lines += [f"# override: {o}" for o in sc.overrides]
    return "\n".join(lines) + "\n"


def load_results(folder: str | Path) -> Results:
    """Rebuild :class:`Results` from a run folder (statistics are recomputed from the replications)."""
    folder = Path(folder)
    scenario = load_scenario(folder / "scenario.resolved.yaml")
    reps = pd.read_csv(folder / "replications.csv")
    reps = reps[["policy", "replication", "seed", *METRIC_NAMES]]
    ts = pd.read_csv(folder / "timeseries.csv")
    bd = pd.read_csv(folder / "breakdown_replications.csv", keep_default_na=False, na_values=[""])
    man = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    prec = man.get("precision")
    report = None if prec is None else PrecisionReport(prec["target"], prec["reached"], prec["replications"],
                                                      prec["cap"], prec["half_widths"])
    return Results(scenario=scenario, replications=reps, timeseries=ts, breakdown_replications=bd,
                   precision=report, extra={"manifest": man})
