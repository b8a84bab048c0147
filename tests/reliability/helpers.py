"""Shared pieces of the reliability tests: a tiny scenario, the CLI in this process or as a real process."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from scenario_helpers import ROOT, tiny, write_yaml

from simulator.cli import main
from simulator.experiments.runner import FAULT_ENV

__all__ = ["FAULT_ENV", "ROOT", "RUN_OUTPUTS", "children", "cli", "group_members", "spawn", "tiny", "tiny_file",
           "unreadable_files", "wait_for_children", "wait_for_files", "wait_group_gone", "write_yaml"]

RUN_OUTPUTS: tuple[str, ...] = (
    "summary.csv", "comparison.csv", "replications.csv", "timeseries.csv", "breakdowns.csv",
    "breakdown_comparison.csv", "breakdown_replications.csv", "member_distribution.csv", "scenario.resolved.yaml",
)
"""The result files of a finished ``inmail-sim run`` (manifest.json, whose times differ, left out)."""


def tiny_file(folder: Path, name: str = "tiny.yaml", **changes: object) -> Path:
    """The tiny two-policy scenario of the unit tests, written to ``folder/name``."""
    return write_yaml(folder / name, tiny(**changes))


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``inmail-sim ARGV`` in this process: (exit code, stdout, stderr)."""
    code = main([*argv, "--no-progress"] if argv and argv[0] == "run" else list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def spawn(argv: Sequence[str], fault: str | None = None, **env: str) -> subprocess.Popen[str]:
    """``python -m simulator ARGV`` as a real process in its own session (so its group can be signalled)."""
    environ = {k: v for k, v in os.environ.items() if k != FAULT_ENV} | env
    if fault:
        environ[FAULT_ENV] = fault
    return subprocess.Popen([sys.executable, "-m", "simulator", *argv, "--no-progress"], cwd=ROOT, env=environ,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def wait_for_files(folder: Path, n: int, proc: subprocess.Popen[str], timeout: float = 90.0) -> list[Path]:
    """Wait until ``folder`` holds at least ``n`` per-replication files (fail if the process ends first)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        files = sorted(folder.glob("*.npz")) if folder.is_dir() else []
        if len(files) >= n:
            return files
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the run ended early with code {proc.returncode}:\n{out}\n{err}")
        time.sleep(0.05)
    kill_group(proc)
    pytest.fail(f"fewer than {n} replication files in {folder} after {timeout} s")


def children(pid: int) -> list[int]:
    """The child processes of ``pid`` (from the parent pid in /proc/*/stat)."""
    out: list[int] = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def wait_for_children(proc: subprocess.Popen[str], n: int, timeout: float = 60.0) -> list[int]:
    """Wait until the run ``proc`` has exactly ``n`` live child processes (its worker pool) and return them.

    Polls instead of sleeping a fixed time: a pool's workers start when the executor gets round to
    it, which on a loaded machine can be long after the first replication files appear.
    """
    end = time.monotonic() + timeout
    pool: list[int] = []
    while time.monotonic() < end:
        pool = [p for p in children(proc.pid) if alive(p)]
        if len(pool) == n:
            return pool
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the run ended early with code {proc.returncode}:\n{out}\n{err}")
        time.sleep(0.05)
    kill_group(proc)
    pytest.fail(f"the run has {len(pool)} live child processes, not {n}, after {timeout} s")


def alive(pid: int) -> bool:
    """Whether ``pid`` is a running (not zombie) process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].split()[0] != "Z"
    except OSError:
        return False


def kill_group(proc: subprocess.Popen[str]) -> None:
    """Clean up after a test: SIGKILL the process group the run started."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def unreadable_files(folder: Path) -> list[str]:
    """The files under ``folder`` that do not parse as what their name says (a half-written file).

    Hidden files are left out: the lock, and the ``.NAME.tmp-*`` files every write goes through
    before it is moved into place.
    """
    import json

    import numpy as np
    import pandas as pd
    import yaml

    from simulator.experiments.replication import Record

    bad: list[str] = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue
        try:
            if path.suffix == ".csv":
                pd.read_csv(path)
            elif path.suffix == ".json":
                json.loads(path.read_text(encoding="utf-8"))
            elif path.suffix == ".yaml":
                yaml.safe_load(path.read_text(encoding="utf-8"))
            elif path.suffix == ".npz":
                with np.load(path, allow_pickle=False) as data:
                    Record.from_arrays({k: data[k] for k in data.files})
        except Exception as exc:  # anything that fails to parse is what this looks for
            bad.append(f"{path.relative_to(folder)}: {type(exc).__name__}: {exc}")
    return bad


def group_members(pgid: int) -> list[int]:
    """The live (not zombie) processes of process group ``pgid`` (from /proc/*/stat)."""
    out: list[int] = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _ppid, pgrp = stat.read_text().rsplit(") ", 1)[1].split()[:3]
        except (OSError, IndexError, ValueError):
            continue
        if int(pgrp) == pgid and state != "Z":
            out.append(int(stat.parent.name))
    return out


def wait_group_gone(pgid: int, timeout: float = 30.0) -> None:
    """Wait until every process of group ``pgid`` has exited (a killed worker holds the folder's lock until then)."""
    end = time.monotonic() + timeout
    while (left := group_members(pgid)) and time.monotonic() < end:
        time.sleep(0.01)
    assert not left, f"processes {left} of group {pgid} outlived SIGKILL for {timeout} s"
