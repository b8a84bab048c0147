"""Every command bounds its work before it starts: absurd sizes exit 2 at once with the estimate.

The hostile-input probe found commands other than ``run`` that grew to gigabytes before checking
anything (``baseline save -n 10^9``, a baseline file whose ``replications`` is 10^9, a 1000^3 sweep
grid, ``sensitivity.n: 2^30`` - the last two during ``validate``), and ``--workers 50`` starting 50
processes for 4 tasks.  Each case here exits 2 quickly (a subprocess under a timeout, or the design
builders replaced by a function that fails the test), with what was asked, the limit and how to ask
for less in the message; valid small commands run as before.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from simulator.experiments import budget, design, explain, runner, sensitivity
from simulator.experiments.budget import DEFAULT_MAX_TASKS, MAX_TASKS_ENV, capped_workers, max_workers

from .helpers import ROOT, cli, tiny, tiny_file, write_yaml

QUICK = 60.0
"""Seconds an absurd command may take to be refused (generous: the interpreter and imports on a busy machine)."""

GRID_1000_CUBED = {"method": "grid", "replications": 2, "parameters": {
    "policies.new.refund.window_days": {"low": 1, "high": 1000, "num": 1000},
    "market.fatigue.sensitivity": {"low": 0.0, "high": 1.0, "num": 1000},
    "policies.old.refund.window_days": {"low": 1, "high": 1000, "num": 1000}}}

SOBOL_2_30 = {"n": 2**30, "parameters": {"policies.new.refund.window_days": {"low": 1, "high": 90},
                                         "market.fatigue.sensitivity": {"low": 0.0, "high": 1.0}}}
"""The probe's case: ``sensitivity.n`` is now outside its range (at most 100,000), refused by the schema."""

SOBOL_MAX_N = {**SOBOL_2_30, "n": 65_536}
"""The largest power of 2 the schema allows, still too much work: 262,149 evaluations x 2 policies x 2 replications
(1,048,596 tasks, over the default 1,000,000)."""


def run_quickly(*argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m simulator ARGV`` as a real process; fails the test if it is not done within :data:`QUICK`."""
    import os

    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "simulator", *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=QUICK, env={**os.environ, **env})
    assert time.monotonic() - started < QUICK
    return done


@pytest.fixture
def no_design(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building a design or its points fails the test: a refused size must be refused before."""
    def never(*_: Any, **__: Any) -> Any:
        pytest.fail("the design was built before its size was checked")

    for module, name in ((design, "design"), (design, "build_points"), (sensitivity, "evaluation_design"),
                         (sensitivity, "build_points")):
        monkeypatch.setattr(module, name, never)


def refused(err: str, *needles: str) -> None:
    """The message of a refusal: the estimate, the limit, how to ask for less."""
    assert "too much work asked for" in err and "Ask for less:" in err and "--max-tasks" in err, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err


# --------------------------------------------------------------------------- the probe's examples


def test_baseline_save_of_a_billion_replications_exits_2_at_once(tmp_path: Path) -> None:
    target = tmp_path / "x.json"
    done = run_quickly("baseline", "save", "scenarios/old_vs_new.yaml", "--to", str(target), "-n", "1000000000",
                       "--no-progress")
    assert done.returncode == 2
    refused(done.stderr, "baseline save asks for 2,000,000,000 tasks (1,000,000,000 replications x 2 policies)",
            f"the limit is {DEFAULT_MAX_TASKS:,} tasks (the default)", "years on one core")
    assert not target.exists()


def test_baseline_check_against_a_file_asking_too_much_exits_2_before_running(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    scenario = tiny_file(tmp_path, horizon_days=10)
    saved = tmp_path / "base.json"
    code, _, err = cli(capsys, "baseline", "save", str(scenario), "--to", str(saved), "-n", "2", "--no-progress")
    assert code == 0, err
    data = json.loads(saved.read_text())

    def no_run(*_: Any, **__: Any) -> Any:
        pytest.fail("a replication ran before the work was checked")

    monkeypatch.setattr("simulator.experiments.baseline.run_experiment", no_run)
    code, _, err = cli(capsys, "baseline", "check", str(scenario), "--against", str(saved), "--max-tasks", "3",
                       "--no-progress")
    assert code == 2
    refused(err, "baseline check asks for 4 tasks (2 replications x 2 policies)", "the limit is 3 tasks (--max-tasks)")
    data["replications"] = 10**9
    saved.write_text(json.dumps(data))
    started = time.monotonic()
    code, _, err = cli(capsys, "baseline", "check", str(scenario), "--against", str(saved), "--no-progress")
    assert code == 2 and time.monotonic() - started < QUICK and "Traceback" not in err
    assert "1,000,000,000" in err or "replications" in err, err  # the work limit, or the file's own check


def test_baseline_file_of_a_billion_replications_exits_2_at_once_in_a_real_process(tmp_path: Path) -> None:
    scenario = tiny_file(tmp_path, horizon_days=10)
    saved = tmp_path / "base.json"
    done = run_quickly("baseline", "save", str(scenario), "--to", str(saved), "-n", "2", "--no-progress")
    assert done.returncode == 0, done.stderr
    data = json.loads(saved.read_text())
    data["replications"] = 10**9
    saved.write_text(json.dumps(data))
    done = run_quickly("baseline", "check", str(scenario), "--against", str(saved), "--no-progress")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr


@pytest.mark.parametrize("command", ["validate", "sweep"])
def test_a_1000_cubed_grid_is_refused_before_a_point_is_built(
        command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], no_design: None) -> None:
    path = write_yaml(tmp_path / "grid.yaml", tiny(sweep=GRID_1000_CUBED))
    argv = [command, str(path)] + (["--out", str(tmp_path / "out"), "--no-progress"] if command == "sweep" else [])
    code, _, err = cli(capsys, *argv)
    assert code == 2
    refused(err, "sweep asks for 4,000,000,000 tasks (1,000,000,000 points x 2 policies x 2 replications)",
            "fewer sweep values")
    assert not (tmp_path / "out").exists()


def test_a_1000_cubed_grid_exits_2_at_once_in_a_real_process(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "grid.yaml", tiny(sweep=GRID_1000_CUBED))
    for argv in (["validate", str(path)], ["sweep", str(path), "--out", str(tmp_path / "out"), "--no-progress"]):
        done = run_quickly(*argv)
        assert done.returncode == 2
        refused(done.stderr, "1,000,000,000 points")


@pytest.mark.parametrize("command", ["validate", "sensitivity"])
def test_sobol_n_2_to_the_30_is_refused_before_the_design_is_drawn(
        command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], no_design: None) -> None:
    path = write_yaml(tmp_path / "sobol.yaml", tiny(sensitivity=SOBOL_MAX_N))
    argv = [command, str(path)] + (["--out", str(tmp_path / "out"), "--no-progress"] if command != "validate" else [])
    code, _, err = cli(capsys, *argv)
    assert code == 2
    # N (d + 2) + 2 d + 1 evaluations: 65,536 x 4 + 5
    refused(err, f"{65_536 * 4 + 5:,} evaluations x 2 policies x 2 replications", "a smaller sensitivity.n")


def test_sobol_n_2_to_the_30_is_outside_its_range(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   no_design: None) -> None:
    path = write_yaml(tmp_path / "sobol.yaml", tiny(sensitivity=SOBOL_2_30))
    code, _, err = cli(capsys, "validate", str(path))
    assert code == 2 and "sensitivity.n = 1073741824: must be in [1, 100000]" in err and "Traceback" not in err


def test_sobol_n_2_to_the_30_exits_2_at_once_in_a_real_process(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "sobol.yaml", tiny(sensitivity=SOBOL_MAX_N))
    done = run_quickly("sensitivity", str(path), "--out", str(tmp_path / "out"), "--no-progress")
    assert done.returncode == 2
    refused(done.stderr, "evaluations")


def test_run_explain_and_calibrate_refuse_absurd_counts_before_their_folder(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    def no_run(*_: Any, **__: Any) -> Any:
        pytest.fail("tasks ran before the work was checked")

    monkeypatch.setattr(runner, "run_tasks", no_run)
    monkeypatch.setattr(explain, "run_tasks", no_run)
    path = tiny_file(tmp_path)
    out = tmp_path / "out"
    code, _, err = cli(capsys, "run", str(path), "-n", str(10**9), "--out", str(out))
    assert code == 2
    refused(err, "run asks for 2,000,000,000 tasks (1,000,000,000 replications x 2 policies)")
    code, _, err = cli(capsys, "explain", str(path), "-n", str(10**8), "--out", str(out), "--no-progress")
    assert code == 2
    refused(err, "explain asks for", "worlds x 100,000,000 replications", "fewer --replications")
    calibrated = ROOT / "scenarios" / "calibrated_old_vs_new.yaml"
    code, _, err = cli(capsys, "calibrate", str(calibrated), "--method", "point", "--max-evaluations", str(10**8),
                       "--out", str(out), "--no-progress")
    assert code == 2
    refused(err, "calibrate asks for", "evaluations x", "--max-evaluations")
    code, _, err = cli(capsys, "calibrate", str(calibrated), "--worlds", str(10**8), "--out", str(out),
                       "--no-progress")
    assert code == 2
    refused(err, "calibrate asks for", "fewer --worlds")
    code, _, err = cli(capsys, "calibrate", str(calibrated), "--max-evaluations", "5", "--out", str(out),
                       "--no-progress")
    assert code == 2
    assert "--max-evaluations: an option of --method point" in err and "Traceback" not in err
    code, _, err = cli(capsys, "baseline", "plan", str(path), "--detect", "1pp", "--pilot", str(10**9),
                       "--no-progress")
    assert code == 2
    refused(err, "baseline plan asks for 2,000,000,000 tasks", "a smaller --pilot")
    assert not out.exists()


# --------------------------------------------------------------------------- the limits


def test_the_task_limit_can_be_raised_or_lowered(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path = tiny_file(tmp_path)  # 3 replications x 2 policies = 6 tasks
    code, out, err = cli(capsys, "validate", str(path))
    assert code == 0 and "work of `run`: 6 tasks (3 replications x 2 policies)" in out, err
    code, _, err = cli(capsys, "validate", str(path), "--max-tasks", "5")
    assert code == 2
    refused(err, "the limit is 5 tasks (--max-tasks)")
    monkeypatch.setenv(MAX_TASKS_ENV, "5")
    code, _, err = cli(capsys, "validate", str(path))
    assert code == 2
    refused(err, f"the limit is 5 tasks ({MAX_TASKS_ENV}=5)")
    code, _, err = cli(capsys, "validate", str(path), "--max-tasks", "6")
    assert code == 0, err  # the option wins over the environment
    monkeypatch.setenv(MAX_TASKS_ENV, "lots")
    code, _, err = cli(capsys, "validate", str(path))
    assert code == 2 and MAX_TASKS_ENV in err and "whole number" in err


def test_a_design_too_big_for_memory_is_refused_with_its_estimate(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], no_design: None) -> None:
    """Under the task limit, but 100,000 points held at once need gigabytes: refused on memory, before building."""
    grid = {"method": "grid", "replications": 1, "parameters": {
        "policies.new.refund.window_days": {"low": 1, "high": 1000, "num": 100},
        "market.fatigue.sensitivity": {"low": 0.0, "high": 1.0, "num": 1000}}}
    path = write_yaml(tmp_path / "grid.yaml", tiny(sweep=grid))
    code, _, err = cli(capsys, "sweep", str(path), "--out", str(tmp_path / "out"), "--memory-limit", "1G",
                       "--no-progress")
    assert code == 2
    assert "scenario too large for this machine" in err and "the limit is 1.00 GiB (the given limit)" in err, err
    assert "sweep: 100,000 points x 2 policies x 1 replications" in err and "results and design ~" in err, err
    assert "fewer sweep values" in err


def test_workers_are_capped_at_the_tasks(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """``--workers 50`` for 2 replications x 2 policies starts a pool of 4 processes, with a note."""
    sizes: list[int] = []

    class Spy(ProcessPoolExecutor):
        def __init__(self, max_workers: int | None = None, **kw: Any) -> None:
            sizes.append(int(max_workers or 0))
            super().__init__(max_workers=max_workers, **kw)

    monkeypatch.setattr(runner, "ProcessPoolExecutor", Spy)
    path = tiny_file(tmp_path, horizon_days=10)
    code, _, err = cli(capsys, "run", str(path), "-n", "2", "--workers", "50", "--out", str(tmp_path / "out"),
                       "--no-figures", "-q")
    assert code == 0, err
    assert sizes == [4] and "--workers 50 capped at 4: only 4 tasks to run" in err


def test_the_cap_also_holds_at_twice_the_cores() -> None:
    assert capped_workers(3, 10) == (3, None)
    assert capped_workers(50, 4)[0] == 4
    workers, note = capped_workers(10**6, 10**6)
    assert workers == max_workers() >= 4 and note is not None and "cores" in note


def test_the_library_is_bounded_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """``plan_sweep`` / ``plan_sensitivity`` (and so ``check_sweep``, used by validate) count before they build."""
    from simulator.scenario import load_scenario

    monkeypatch.setattr(design, "design", lambda *_: pytest.fail("built"))
    monkeypatch.setattr(sensitivity, "evaluation_design", lambda *_: pytest.fail("built"))
    with pytest.raises(budget.WorkLimitError):
        design.plan_sweep(load_scenario(tiny(sweep=GRID_1000_CUBED)))
    with pytest.raises(budget.WorkLimitError):
        sensitivity.plan_sensitivity(load_scenario(tiny(sensitivity=SOBOL_MAX_N)))
    qmc = {"method": "sobol", "n": 65_536, "replications": 10, "parameters": SOBOL_2_30["parameters"]}
    with pytest.raises(budget.WorkLimitError, match="65,536 points"):  # x 2 policies x 10 replications
        design.check_sweep(load_scenario(tiny(sweep=qmc)))
