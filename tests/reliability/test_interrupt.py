"""Ctrl-C, SIGTERM and killed processes, for real: ``python -m simulator run`` in a subprocess.

A replication told to hang (``INMAIL_SIM_TEST_FAULT=hang:I``) keeps the run busy at a known point,
so the signal always lands mid-run after the earlier replications were written.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from simulator.io.outputs import TASKS_DIR

from .helpers import alive, kill_group, spawn, tiny_file, wait_for_children, wait_for_files

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists() or os.name != "posix",
                                reason="needs POSIX signals and /proc")

OUTPUTS = ("summary.csv", "comparison.csv", "replications.csv", "timeseries.csv", "breakdown_replications.csv")


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """An uninterrupted 4-replication serial run: (scenario file, run folder)."""
    from simulator.cli import main

    folder = tmp_path_factory.mktemp("reference")
    scenario = tiny_file(folder)
    assert main(["run", str(scenario), "--out", str(folder / "run"), "-n", "4", "--no-progress", "-q"]) == 0
    return scenario, folder / "run"


def resume_and_compare(scenario: Path, out: Path, ref: Path, *extra: str) -> None:
    """Resume in this process and check the outputs are byte-identical to the uninterrupted run."""
    from simulator.cli import main

    assert main(["run", str(scenario), "--out", str(out), "-n", "4", "-q", "--no-progress", "--resume", *extra]) == 0
    for name in OUTPUTS:
        assert (out / name).read_bytes() == (ref / name).read_bytes(), name
    assert not [p for p in (out / TASKS_DIR).iterdir() if p.name.startswith(".")]


def finish(proc: object, timeout: float = 60) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)  # type: ignore[attr-defined]
    return proc.returncode, out, err  # type: ignore[attr-defined]


@pytest.mark.parametrize(("workers", "whole_group"), [("1", False), ("2", True)],
                         ids=["serial-sigint", "2-workers-ctrl-c-to-the-group"])
def test_ctrl_c_stops_workers_keeps_finished_replications_exit_130(
        workers: str, whole_group: bool, reference: tuple[Path, Path], tmp_path: Path) -> None:
    scenario, ref = reference
    out = tmp_path / "run"
    proc = spawn(["run", str(scenario), "--out", str(out), "-n", "4", "-q", "--workers", workers], fault="hang:2")
    try:
        wait_for_files(out / TASKS_DIR, 4, proc)
        # the replication-2 tasks hang, so the pool stays at its full size: wait for it to show
        pool = wait_for_children(proc, 2 if workers == "2" else 0)
        if whole_group:  # what a terminal's Ctrl-C does: SIGINT to every process of the group
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGINT)
        code, stdout, err = finish(proc)
    finally:
        kill_group(proc)
    assert code == 130, err
    assert "interrupted: workers stopped; 4 finished replication files kept in" in err
    assert "resume with: inmail-sim run" in err and f"--out {out} --resume" in err
    assert "Traceback" not in err + stdout
    assert not any(alive(p) for p in pool), "worker processes survived Ctrl-C"
    assert sorted(p.name for p in (out / TASKS_DIR).iterdir()) == [
        "r000000-new.npz", "r000000-old.npz", "r000001-new.npz", "r000001-old.npz"]
    assert not (out / "manifest.json").exists()
    resume_and_compare(scenario, out, ref)


@pytest.mark.slow
def test_sigterm_stops_like_ctrl_c(reference: tuple[Path, Path], tmp_path: Path) -> None:
    scenario, ref = reference
    out = tmp_path / "run"
    proc = spawn(["run", str(scenario), "--out", str(out), "-n", "4", "-q"], fault="hang:1")
    try:
        wait_for_files(out / TASKS_DIR, 2, proc)
        proc.send_signal(signal.SIGTERM)
        code, _, err = finish(proc)
    finally:
        kill_group(proc)
    assert code == 130 and "resume with:" in err
    resume_and_compare(scenario, out, ref)


def test_a_worker_killed_from_outside_is_reported_and_the_run_resumes(reference: tuple[Path, Path],
                                                                       tmp_path: Path) -> None:
    scenario, ref = reference
    out = tmp_path / "run"
    proc = spawn(["run", str(scenario), "--out", str(out), "-n", "4", "-q", "--workers", "2"], fault="hang:2")
    try:
        wait_for_files(out / TASKS_DIR, 4, proc)
        pool = wait_for_children(proc, 2)
        os.kill(pool[0], signal.SIGKILL)  # e.g. the out-of-memory killer
        code, _, err = finish(proc)
    finally:
        kill_group(proc)
    assert code == 1, err
    assert "a worker process died (killed, crashed or out of memory)" in err
    assert "replication 2 of policy" in err and "4 finished replications are kept" in err
    assert "--resume" in err and "Traceback" not in err
    assert len(list((out / TASKS_DIR).glob("*.npz"))) == 4
    assert not any(alive(p) for p in pool)
    resume_and_compare(scenario, out, ref, "--workers", "2")


@pytest.mark.slow
def test_a_worker_that_exits_mid_task_is_reported(tmp_path: Path) -> None:
    scenario = tiny_file(tmp_path)
    out = tmp_path / "run"
    # --batch 1: tasks are handed out one by one, so the first worker finishes one before the other dies
    proc = spawn(["run", str(scenario), "--out", str(out), "-n", "3", "-q", "--workers", "2", "--batch", "1"],
                 fault="exit:1:old")
    try:
        code, _, err = finish(proc, timeout=120)
    finally:
        kill_group(proc)
    assert code == 1 and "a worker process died" in err and "replication 1 of policy 'old'" in err
    # the dying worker had finished a task of replication 0 before it took replication 1 (the other
    # worker's task in progress is lost with the broken pool)
    kept = sorted(p.name for p in (out / TASKS_DIR).glob("*.npz"))
    assert kept and "r000001-old.npz" not in kept
    assert f"{len(kept)} finished replications are kept" in err or f"the {len(kept)} finished" in err


def test_the_main_process_killed_with_sigkill_loses_nothing_finished(reference: tuple[Path, Path],
                                                                     tmp_path: Path) -> None:
    scenario, ref = reference
    out = tmp_path / "run"
    proc = spawn(["run", str(scenario), "--out", str(out), "-n", "4", "-q", "--workers", "2"], fault="hang:3")
    try:
        wait_for_files(out / TASKS_DIR, 6, proc)
        pool = wait_for_children(proc, 2)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        end = time.monotonic() + 10
        while any(alive(p) for p in pool) and time.monotonic() < end:  # orphaned workers notice and exit
            time.sleep(0.1)
        assert not any(alive(p) for p in pool), "worker processes outlived their killed parent"
    finally:
        kill_group(proc)
    assert len(list((out / TASKS_DIR).glob("*.npz"))) == 6
    resume_and_compare(scenario, out, ref)
