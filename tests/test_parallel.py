"""Parallel and distributed replications: serial, process pool and Dask give identical results;
failures name the replication and keep the finished ones; the task runner's contract."""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
from scenario_helpers import tiny

from simulator.experiments.experiment import ReplicationError, Results, record_store, run_experiment
from simulator.experiments.runner import (
    FAULT_ENV,
    DaskUnavailableError,
    SerialExecutor,
    Task,
    TaskKey,
    TaskStore,
    describe_executor,
    executor_slots,
    inject_fault,
    open_executor,
    run_tasks,
)
from simulator.scenario import Scenario, load_scenario

HAVE_DASK = importlib.util.find_spec("distributed") is not None


@pytest.fixture(scope="module")
def small() -> Scenario:
    return load_scenario(tiny(horizon_days=30))


@pytest.fixture(scope="module")
def serial(small: Scenario) -> Results:
    return run_experiment(small, replications=4)


def same(a: Results, b: Results) -> None:
    pd.testing.assert_frame_equal(a.replications, b.replications)
    pd.testing.assert_frame_equal(a.summary, b.summary)
    pd.testing.assert_frame_equal(a.comparison, b.comparison)
    pd.testing.assert_frame_equal(a.timeseries, b.timeseries)
    pd.testing.assert_frame_equal(a.breakdown_replications, b.breakdown_replications)


def test_two_process_pool_gives_the_serial_results(small: Scenario, serial: Results) -> None:
    same(run_experiment(small, replications=4, workers=2), serial)


@pytest.fixture(scope="module")
def dask_executor() -> Iterator[Executor]:
    if not HAVE_DASK:
        pytest.skip("dask[distributed] not installed (pip install 'inmail-sim[dask]')")
    with open_executor(2, "local") as ex:
        yield ex


def test_dask_local_cluster_gives_the_serial_results(small: Scenario, serial: Results,
                                                      dask_executor: Executor) -> None:
    assert executor_slots(dask_executor) == 2
    same(run_experiment(small, replications=4, executor=dask_executor), serial)


def test_a_task_that_raises_on_dask_is_named_and_the_others_kept(dask_executor: Executor, tmp_path: Path) -> None:
    tasks = [Task(TaskKey("p", i), _maybe_fail, (i,)) for i in range(5)]
    run = run_tasks(tasks, dask_executor, store=_Plain(tmp_path))
    assert sorted(k.replication for k in run.results) == [0, 1, 3, 4]
    assert [(f.key.replication, f.kind) for f in run.failures] == [(2, "raised")]
    assert "ValueError: replication 2 is broken" in run.failures[0].error
    assert len(list(tmp_path.glob("*.npz"))) == 4


def test_a_worker_that_raises_names_the_replication_and_keeps_the_rest(
        small: Scenario, serial: Results, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FAULT_ENV, "raise:1:new")
    store = record_store(tmp_path)
    with pytest.raises(ReplicationError) as info:
        run_experiment(small, replications=4, workers=2, store=store)
    err = info.value
    assert "replication 1 of policy 'new' raised RuntimeError: injected fault" in str(err)
    assert [(f.key.policy, f.key.replication, f.kind) for f in err.failures] == [("new", 1, "raised")]
    assert err.finished == 7 and err.total == 8 and store.count() == 7
    monkeypatch.delenv(FAULT_ENV)
    same(run_experiment(small, replications=4, workers=2, store=store), serial)  # resumed: only one to run


def test_workers_return_no_time_series_unless_asked(small: Scenario, serial: Results) -> None:
    res = run_experiment(small, replications=4, workers=2, timeseries=False)
    assert res.timeseries.empty and not res.scenario.run.record_daily
    pd.testing.assert_frame_equal(res.summary, serial.summary)


# --------------------------------------------------------------------------- the task runner


def _slow_square(x: int) -> int:
    time.sleep(0.02 * (5 - x))  # later tasks finish first
    return x * x


def _maybe_fail(i: int) -> _Value:
    if i == 2:
        raise ValueError(f"replication {i} is broken")
    return _Value(i)


class _Value:
    """A picklable result with the ``to_arrays`` a TaskStore needs."""

    def __init__(self, v: int) -> None:
        self.v = v

    def to_arrays(self) -> dict[str, object]:
        import numpy as np

        return {"v": np.array([self.v])}


class _Plain(TaskStore):
    def __init__(self, folder: Path) -> None:
        super().__init__(folder, lambda a: _Value(int(a["v"][0])))


def test_results_are_keyed_not_ordered_by_completion() -> None:
    tasks = [Task(TaskKey("p", i), _slow_square, (i,)) for i in range(5)]
    with ThreadPoolExecutor(5) as pool:
        run = run_tasks(tasks, pool)
    assert {k.replication: v for k, v in run.results.items()} == {i: i * i for i in range(5)}
    assert run.computed == 5 and run.ok


def test_at_most_max_in_flight_tasks_are_queued() -> None:
    active, peak, lock = [0], [0], threading.Lock()

    def work(i: int) -> int:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.01)
        with lock:
            active[0] -= 1
        return i

    tasks = [Task(TaskKey("p", i), work, (i,)) for i in range(12)]
    done: list[int] = []
    with ThreadPoolExecutor(8) as pool:
        run = run_tasks(tasks, pool, max_in_flight=3, on_done=lambda k: done.append(k.replication))
    assert peak[0] <= 3 and sorted(done) == list(range(12)) and len(run.results) == 12


def test_stored_results_are_reused_and_keep_false_holds_nothing(tmp_path: Path) -> None:
    store = _Plain(tmp_path)
    tasks = [Task(TaskKey("p", i), _Value, (i,)) for i in range(4)]
    first = run_tasks(tasks, SerialExecutor(), store, keep=False)
    assert first.computed == 4 and first.results == {}
    again = run_tasks([*tasks, Task(TaskKey("p", 9), _Value, (9,))], SerialExecutor(), store)
    assert (again.reused, again.computed) == (4, 1)
    assert sorted(r.v for r in again.results.values()) == [0, 1, 2, 3, 9]


def test_a_failure_does_not_stop_the_other_tasks(tmp_path: Path) -> None:
    tasks = [Task(TaskKey("p", i), _maybe_fail, (i,)) for i in range(5)]
    with ProcessPoolExecutor(2) as pool:
        run = run_tasks(tasks, pool, _Plain(tmp_path))
    assert sorted(k.replication for k in run.results) == [0, 1, 3, 4]
    assert run.failures[0].key == TaskKey("p", 2) and "replication 2 is broken" in run.failures[0].details


def test_fault_hook_matches_replication_and_policy() -> None:
    inject_fault(TaskKey("new", 3), "raise:2,raise:3:old")  # no match: returns
    with pytest.raises(RuntimeError, match="injected fault"):
        inject_fault(TaskKey("new", 3), "raise:3")
    with pytest.raises(RuntimeError):
        inject_fault(TaskKey("old", 3), "raise:3:old")


def test_executors_and_their_descriptions(monkeypatch: pytest.MonkeyPatch) -> None:
    with open_executor(1) as ex:
        assert isinstance(ex, SerialExecutor) and executor_slots(ex) == 1
    with open_executor(3) as ex:
        assert isinstance(ex, ProcessPoolExecutor) and executor_slots(ex) == 3
    assert describe_executor(1, None) == "serial" and describe_executor(4, None) == "4 worker processes"
    assert describe_executor(2, "tcp://h:8786") == "Dask at tcp://h:8786"
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if dask were not installed
    with pytest.raises(DaskUnavailableError, match=r"pip install 'inmail-sim\[dask\]'"), open_executor(2, "local"):
        pass


@pytest.mark.skipif(not HAVE_DASK, reason="dask[distributed] not installed")
def test_a_bad_dask_address_exits_2_before_anything_is_written(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    from scenario_helpers import write_yaml

    from simulator.cli import main

    f = write_yaml(tmp_path / "t.yaml", tiny())
    assert main(["run", str(f), "--out", str(tmp_path / "o"), "--dask", "foo", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--dask foo: not a scheduler address" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()
