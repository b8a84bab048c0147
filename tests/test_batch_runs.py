"""Batches in the runner and on the command line: same outputs whatever the batch, resume per key, refusal.

* ``run --batch 4`` and ``run --batch 1`` write byte-identical result files;
* a run that dies in the middle of a batch (the fault hook: ``exit`` ends the process) keeps the
  finished batches' files, and ``--resume`` computes only the missing keys, giving the same files
  as an uninterrupted run;
* the runner hands out batches of consecutive missing tasks and writes one file per key; a key
  that raises fails alone;
* a ``--batch`` too big for the memory limit is refused up front (exit 2) naming the largest that fits.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scenario_helpers import ROOT, tiny, write_yaml

from simulator.cli import main
from simulator.experiments.runner import FAULT_ENV, SerialExecutor, Task, TaskKey, TaskStore, batching, run_tasks
from simulator.io.outputs import TASKS_DIR

OUTPUTS = ("summary.csv", "comparison.csv", "replications.csv", "timeseries.csv", "breakdowns.csv",
           "breakdown_comparison.csv", "breakdown_replications.csv", "member_distribution.csv")


def run_cli(*argv: str) -> int:
    return main(["run", *argv, "--no-progress", "-q", "--no-figures"])


def same_outputs(a: Path, b: Path) -> None:
    for name in OUTPUTS:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_yaml(tmp_path_factory.mktemp("batch") / "tiny.yaml", tiny())


@pytest.fixture(scope="module")
def unbatched(scenario: Path) -> Path:
    out = scenario.parent / "batch1"
    assert run_cli(str(scenario), "--out", str(out), "-n", "5", "--batch", "1") == 0
    return out


def test_batch_4_and_batch_1_write_identical_files(scenario: Path, unbatched: Path, tmp_path: Path) -> None:
    assert run_cli(str(scenario), "--out", str(tmp_path / "b4"), "-n", "5", "--batch", "4") == 0
    same_outputs(unbatched, tmp_path / "b4")
    assert run_cli(str(scenario), "--out", str(tmp_path / "auto"), "-n", "5") == 0  # by market size: batched
    same_outputs(unbatched, tmp_path / "auto")


def test_a_run_killed_in_the_middle_of_a_batch_resumes_to_identical_files(scenario: Path, unbatched: Path,
                                                                         tmp_path: Path) -> None:
    """SIGKILL once the first batch is on disk (the second is running), then ``--resume``."""
    out = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k != FAULT_ENV}
    argv = [sys.executable, "-m", "simulator", "run", str(scenario), "--out", str(out), "-n", "5", "--batch", "3",
            "--no-progress", "-q", "--no-figures"]
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        end = time.monotonic() + 120
        while len(list((out / TASKS_DIR).glob("*.npz"))) < 3 and proc.poll() is None and time.monotonic() < end:
            time.sleep(0.01)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.communicate(timeout=60)
    files = sorted(p.name for p in (out / TASKS_DIR).glob("*.npz"))
    assert 3 <= len(files) < 10, files  # the first batch, not all of them
    assert not (out / "summary.csv").exists()
    resumed = subprocess.run([*argv, "--resume"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming: {len(files)} finished replication files" in resumed.stderr
    same_outputs(unbatched, out)


def test_a_task_the_fault_hook_names_fails_alone_in_a_batched_run(scenario: Path, unbatched: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "run"
    monkeypatch.setenv(FAULT_ENV, "raise:2:new")
    assert run_cli(str(scenario), "--out", str(out), "-n", "5", "--batch", "4") == 1
    assert "replication 2 of policy 'new' raised RuntimeError: injected fault" in capsys.readouterr().err
    assert len(list((out / TASKS_DIR).glob("*.npz"))) == 9
    monkeypatch.delenv(FAULT_ENV)
    assert run_cli(str(scenario), "--out", str(out), "-n", "5", "--batch", "4", "--resume") == 0
    same_outputs(unbatched, out)


def test_a_too_big_batch_is_refused_with_the_largest_that_fits(scenario: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    argv = [str(scenario), "--out", str(tmp_path / "big"), "-n", "3", "--set", "market.members.count=150000",
            "--memory-limit", "150M"]
    assert run_cli(*argv, "--batch", "6") == 2
    err = capsys.readouterr().err
    assert "--batch 6 needs about" in err and "the largest --batch that fits is 3" in err, err
    assert "Traceback" not in err and not (tmp_path / "big").exists()


# --------------------------------------------------------------------------- the runner


SEEN: list[list[int]] = []


def square(x: int) -> dict[str, Any]:
    if x == 7:
        raise ValueError("seven")
    return {"x": x * x}


def squares(args: list[tuple[int]]) -> list[dict[str, Any]]:
    SEEN.append([a[0] for a in args])
    if any(a[0] == 7 for a in args):
        raise ValueError("a batch with seven")
    return [{"x": a[0] * a[0]} for a in args]


class Value:
    def __init__(self, x: int) -> None:
        self.x = x

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"x": np.array(self.x)}


def test_the_runner_batches_missing_keys_writes_one_file_each_and_fails_a_raising_key_alone(tmp_path: Path) -> None:
    store = TaskStore(tmp_path, lambda a: Value(int(a["x"])))

    def tasks(n: int) -> list[Task]:
        return [Task(TaskKey("p", i), wrapped_square, (i,), wrapped_squares) for i in range(n)]

    SEEN.clear()
    with batching(4):
        first = run_tasks(tasks(6)[:3] + tasks(6)[4:], SerialExecutor(), store)
    assert first.ok and SEEN == [[0, 1, 2, 4]]  # the last key alone runs without its batch_fn
    assert sorted(p.name for p in tmp_path.glob("*.npz")) == [f"r{i:06d}-p.npz" for i in (0, 1, 2, 4, 5)]
    SEEN.clear()
    second = run_tasks(tasks(9), SerialExecutor(), store, batch=4)
    assert SEEN == [[3, 6, 7, 8]]  # only the missing keys, batched; the batch with 7 failed ...
    assert [f.key.replication for f in second.failures] == [7]  # ... and its keys ran alone: only 7 fails
    assert second.reused == 5 and second.computed == 3
    assert {k.replication: v.x for k, v in second.results.items()} == {i: i * i for i in range(9) if i != 7}


def wrapped_square(x: int) -> Value:
    return Value(square(x)["x"])


def wrapped_squares(args: list[tuple[int]]) -> list[Value]:
    return [Value(r["x"]) for r in squares(args)]


def test_the_api_takes_a_batch_size_and_gives_the_same_results(scenario: Path) -> None:
    from simulator.experiments.experiment import run_experiment
    from simulator.scenario import load_scenario

    sc = load_scenario(scenario)
    one, four = run_experiment(sc, replications=3, batch=1), run_experiment(sc, replications=3, batch=4)
    pd.testing.assert_frame_equal(one.replications, four.replications)
    pd.testing.assert_frame_equal(one.timeseries, four.timeseries)
    pd.testing.assert_frame_equal(one.member_distribution, four.member_distribution)
