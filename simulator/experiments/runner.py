"""Running many independent tasks (one replication of one policy, at one sweep point) reliably.

* Any :class:`concurrent.futures.Executor` runs them: serial (the default), a local process pool
  (:func:`open_executor` with ``workers``), or a Dask cluster (``dask="tcp://host:8786"`` or
  ``"local"``).  Results are keyed by :class:`TaskKey`, never ordered by completion.
* Each finished task is written at once to its own small file in a :class:`TaskStore` (temporary
  name, then ``os.replace``), so an interrupted or crashed run keeps everything it computed and
  a resumed run computes only what is missing.
* A task that raises does not stop the others; a worker process that dies breaks the pool and
  ends the run.  Either way :class:`TaskRun` lists what failed and why, and the finished tasks
  are on disk.  Ctrl-C stops the workers and raises :class:`RunInterrupted`.
* Tasks that can run together (a ``batch_fn``: replications of small markets) are handed out
  in batches (:func:`batching`, ``--batch K``): one submission computes several keys in one pass
  of the batched engine and returns one result per key; each is still written to its own file,
  so a resumed run recomputes only the missing keys (batching whatever is missing).
* Fault injection for tests: ``INMAIL_SIM_TEST_FAULT`` (see :func:`inject_fault`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import threading
import time
import traceback
import zipfile
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from simulator.core.config import Market
from simulator.experiments.batching import BATCH, batch_size, batching, call_batch, next_batch
from simulator.experiments.faults import FAULT_ENV, call_task, inject_fault

Progress = Callable[[int, int], None]
"""The one progress callback of every study: ``progress(done, total)`` after each finished unit of work
(a replication, a task, an objective evaluation); ``total`` may grow while a study runs."""



# --------------------------------------------------------------------------- tasks


@dataclass(frozen=True)
class TaskKey:
    """What identifies a task: (sweep point, policy, replication index); ``point`` is None in a plain run."""

    policy: str
    replication: int
    point: int | None = None

    @property
    def label(self) -> str:
        """``replication 3 of policy 'new'`` (``... at point 12`` in a sweep)."""
        text = f"replication {self.replication} of policy {self.policy!r}"
        return text if self.point is None else f"{text} at point {self.point}"

    @property
    def filename(self) -> str:
        """The task's result file name: ``r000003-new.npz`` (``p00012-r000003-new.npz`` in a sweep)."""
        stem = f"r{self.replication:06d}-{self.policy}"
        return f"{stem}.npz" if self.point is None else f"p{self.point:05d}-{stem}.npz"

    def sort_key(self) -> tuple[int, int, str]:
        return (-1 if self.point is None else self.point, self.replication, self.policy)


@dataclass(frozen=True)
class Task:
    """``fn(*args)`` computes the result of ``key``; ``fn`` must be a picklable module-level function.

    ``batch_fn``: computes several tasks of this kind in one pass, ``batch_fn([args, ...])`` -> one
    result per args, each equal to ``fn(*args)`` (None: the task always runs alone).
    """

    key: TaskKey
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    batch_fn: Callable[[list[tuple[Any, ...]]], list[Any]] | None = None

    @property
    def cells(self) -> int:
        """Members x recruiters of the task's market (0 if it has none): what sizes an automatic batch."""
        market = next((a for a in self.args if isinstance(a, Market)), None)
        return 0 if market is None else market.members.count * max(market.recruiter_count, 1)


@dataclass(frozen=True)
class TaskFailure:
    """A task that did not finish: ``kind`` is ``raised``, ``worker died`` or ``not run``."""

    key: TaskKey
    kind: str
    error: str
    details: str = ""

    def render(self) -> str:
        return f"{self.key.label}: {self.kind}: {self.error}"


@dataclass
class TaskRun:
    """The outcome of :func:`run_tasks`."""

    total: int
    results: dict[TaskKey, Any] = field(default_factory=dict)
    failures: list[TaskFailure] = field(default_factory=list)
    reused: int = 0
    computed: int = 0

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def finished(self) -> int:
        return self.reused + self.computed


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`run_tasks`: the workers were stopped; finished tasks are in the store."""

    def __init__(self, finished: int, total: int) -> None:
        super().__init__(f"interrupted after {finished} of {total} tasks")
        self.finished, self.total = finished, total


__all__ = ["BATCH", "FAULT_ENV", "batch_size", "batching", "call_batch", "call_task", "inject_fault"]


# --------------------------------------------------------------------------- the store


class Storable(Protocol):
    def to_arrays(self) -> dict[str, np.ndarray]: ...


TEMPORARY_NAME = re.compile(r"\..+\.tmp-\d+-\d+")
"""The name :func:`atomic_write` gives a file until it is moved into place (what a killed run leaves behind)."""


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` on a temporary file next to ``path``, then move it into place (``os.replace``).

    A crash or Ctrl-C at any moment leaves either the old file or the new one, never half of one.
    """
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{time.monotonic_ns() % 10**9}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


class TaskStore:
    """One ``.npz`` file per finished task in ``folder`` (written atomically, read without pickle).

    ``decode`` rebuilds a result from the arrays its ``to_arrays()`` gave.  A file that cannot be
    read (e.g. copied half-way) counts as missing and is computed again.
    """

    def __init__(self, folder: str | Path, decode: Callable[[Mapping[str, np.ndarray]], Any]) -> None:
        self.folder = Path(folder)
        self.decode = decode
        self.folder.mkdir(parents=True, exist_ok=True)
        for stale in self.folder.iterdir():  # left by a killed run
            if TEMPORARY_NAME.fullmatch(stale.name):
                with contextlib.suppress(OSError):
                    stale.unlink()

    def path(self, key: TaskKey) -> Path:
        return self.folder / key.filename

    def save(self, key: TaskKey, result: Storable) -> None:
        arrays = result.to_arrays()

        def write(tmp: Path) -> None:
            with tmp.open("wb") as fh:
                np.savez_compressed(fh, **arrays)  # type: ignore[arg-type]

        atomic_write(self.path(key), write)

    def load(self, key: TaskKey) -> Any | None:
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                return self.decode({k: data[k] for k in data.files})
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
            return None

    def count(self) -> int:
        """How many task files the folder holds."""
        return sum(1 for _ in self.folder.glob("*.npz"))

    def clear(self) -> None:
        """Delete every task file (``--force``: start over)."""
        for p in self.folder.glob("*.npz"):
            p.unlink()


# --------------------------------------------------------------------------- running


def run_tasks(tasks: Sequence[Task], executor: Executor, store: TaskStore | None = None, *,
              reuse: Callable[[Any], Any | None] | None = None,
              on_done: Callable[[TaskKey], None] | None = None,
              max_in_flight: int | None = None, keep: bool = True, batch: int | None = None) -> TaskRun:
    """Run ``tasks`` on ``executor``, writing each result to ``store`` as it finishes.

    Tasks whose result is already in ``store`` are not run again (``reuse(result)`` may adapt a
    stored result or return None to recompute it).  At most ``max_in_flight`` tasks are queued at
    once (default: twice the executor's workers), so results reach the disk as they finish even
    with the serial executor and Ctrl-C has little to cancel.  ``keep=False``: results are only
    written, not kept in memory (large sweeps).  A task that raises is recorded in
    ``TaskRun.failures`` and the others go on; a dead worker process ends the run (the pool is
    broken) with the unfinished tasks listed.  Ctrl-C stops the workers and raises
    :class:`RunInterrupted`.  ``batch``: keys per submission for tasks with a ``batch_fn`` (default:
    :func:`batch_size`); consecutive missing tasks of one kind go together.
    """
    run = TaskRun(total=len(tasks))
    todo: deque[Task] = deque()
    for task in tasks:
        stored = store.load(task.key) if store is not None else None
        if stored is not None and reuse is not None:
            stored = reuse(stored)
        if stored is None:
            todo.append(task)
            continue
        run.reused += 1
        if keep:
            run.results[task.key] = stored
        if on_done is not None:
            on_done(task.key)
    slots = executor_slots(executor)
    size = batch_size(todo[0], len(todo), slots, batch) if todo else 1
    # a serial executor computes at submit: one batch at a time, so each is on disk before the next starts
    limit = max_in_flight or (1 if size > 1 and isinstance(executor, SerialExecutor) else 2 * slots)
    in_flight: dict[Future[Any], list[Task]] = {}
    broken: BaseException | None = None

    def finished(key: TaskKey, result: Any) -> None:
        if store is not None:
            store.save(key, result)
        run.computed += 1
        if keep:
            run.results[key] = result
        if on_done is not None:
            on_done(key)

    try:
        while (todo and broken is None) or in_flight:
            while todo and broken is None and len(in_flight) < limit:
                group = next_batch(todo, size)
                try:
                    if len(group) == 1:
                        task = group[0]
                        fut = executor.submit(call_task, task.key, task.fn, task.args)
                    else:
                        assert group[0].batch_fn is not None  # _next_batch groups batchable tasks only
                        fut = executor.submit(call_batch, [t.key for t in group], group[0].fn, group[0].batch_fn,
                                              [t.args for t in group])
                    in_flight[fut] = group
                except BrokenProcessPool as exc:
                    todo.extendleft(reversed(group))
                    broken = exc
            if not in_flight:
                break
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for fut in sorted(done, key=lambda f: in_flight[f][0].key.sort_key()):
                group = in_flight.pop(fut)
                if fut.cancelled():  # e.g. a Dask scheduler that cancelled it
                    run.failures += [TaskFailure(t.key, "raised", "cancelled by the executor") for t in group]
                    continue
                error = fut.exception()
                if error is None and len(group) == 1:
                    finished(group[0].key, fut.result())
                elif error is None:
                    for task, (ok, value, details) in zip(group, fut.result(), strict=True):
                        if ok:
                            finished(task.key, value)
                        else:
                            run.failures.append(TaskFailure(task.key, "raised", value, details))
                elif isinstance(error, BrokenProcessPool):
                    broken = error
                    run.failures += [TaskFailure(t.key, "worker died", _worker_died(error)) for t in group]
                else:
                    run.failures += [TaskFailure(t.key, "raised", f"{type(error).__name__}: {error}",
                                                 "".join(traceback.format_exception(error))) for t in group]
    except KeyboardInterrupt:
        for fut in in_flight:
            fut.cancel()
        abort_executor(executor)
        raise RunInterrupted(run.finished, run.total) from None
    if broken is not None:
        run.failures += [TaskFailure(t.key, "not run", "the worker pool broke before it started") for t in todo]
    run.failures.sort(key=lambda f: f.key.sort_key())
    return run


def _worker_died(exc: BaseException) -> str:
    return ("a worker process died while this task was queued or running (killed, crashed or out of memory): "
            f"{exc}")


# --------------------------------------------------------------------------- executors


class SerialExecutor(Executor):
    """Runs each task at once in the calling process (the default; easiest to debug)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        fut: Future[Any] = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except Exception as exc:  # handed to the caller through the future
            fut.set_exception(exc)
        return fut


_SLOTS: dict[int, int] = {}


def executor_slots(executor: Executor) -> int:
    """How many tasks the executor runs at once (1 for serial; a guess for unknown executors)."""
    if id(executor) in _SLOTS:
        return _SLOTS[id(executor)]
    if isinstance(executor, SerialExecutor):
        return 1
    if isinstance(executor, (ProcessPoolExecutor, ThreadPoolExecutor)):
        return int(getattr(executor, "_max_workers", 1) or 1)
    return 16


def _worker_init() -> None:
    """Pool workers leave Ctrl-C to the parent (which stops them and keeps what finished), and exit
    by themselves if the parent dies (``kill -9``): a pool's queues would otherwise keep them alive."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="inmail-sim-parent-watch", daemon=True).start()


class DaskUnavailableError(RuntimeError):
    """``--dask`` without the optional dependency, or a scheduler that cannot be reached."""


def abort_executor(executor: Executor) -> None:
    """Stop at once: cancel queued tasks and terminate running workers (Ctrl-C)."""
    if isinstance(executor, ProcessPoolExecutor):
        procs = list((getattr(executor, "_processes", None) or {}).values())
        executor.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            with contextlib.suppress(Exception):
                p.terminate()
        for p in procs:
            with contextlib.suppress(Exception):
                p.join(timeout=5)
                if p.is_alive():
                    p.kill()
        return
    try:
        executor.shutdown(wait=False, cancel_futures=True)
    except TypeError:  # dask's ClientExecutor: shutdown(wait=False) cancels
        executor.shutdown(wait=False)


@contextlib.contextmanager
def open_executor(workers: int = 1, dask: str | None = None) -> Iterator[Executor]:
    """The executor for ``--workers`` / ``--dask``, shut down on exit.

    ``dask``: a scheduler address (``tcp://host:8786``) or ``"local"`` for a ``LocalCluster`` of
    ``workers`` single-threaded worker processes on this machine.  Without ``dask``: serial for
    one worker, else a process pool whose workers ignore Ctrl-C (the parent stops them).
    """
    if dask is not None:
        with _dask_executor(dask, workers) as ex:
            yield ex
        return
    if workers <= 1:
        yield SerialExecutor()
        return
    pool = ProcessPoolExecutor(max_workers=workers, initializer=_worker_init)
    try:
        yield pool
    except BaseException:
        abort_executor(pool)
        raise
    else:
        pool.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def _dask_executor(address: str, workers: int) -> Iterator[Executor]:
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise DaskUnavailableError("--dask needs the optional Dask dependency: pip install 'inmail-sim[dask]'") \
            from None
    cluster = None
    with contextlib.ExitStack() as stack:
        try:
            if address == "local":
                cluster = stack.enter_context(LocalCluster(
                    n_workers=max(1, workers), threads_per_worker=1, processes=True, dashboard_address=None,
                    silence_logs=logging.ERROR))
                client = stack.enter_context(Client(cluster))
            else:
                client = stack.enter_context(Client(address, timeout="20s"))
        except (OSError, TimeoutError) as exc:
            raise DaskUnavailableError(f"cannot connect to the Dask scheduler at {address}: {exc}") from None
        except (ValueError, TypeError) as exc:
            raise DaskUnavailableError(f"--dask {address}: not a scheduler address ({exc}); give "
                                       "tcp://host:8786 or 'local'") from None
        ex = client.get_executor(pure=False)
        slots = sum(client.nthreads().values()) or max(1, workers)
        _SLOTS[id(ex)] = slots
        try:
            yield ex
        except BaseException:
            abort_executor(ex)
            raise
        finally:
            _SLOTS.pop(id(ex), None)


def describe_executor(workers: int, dask: str | None) -> str:
    """``serial`` / ``2 worker processes`` / ``Dask at tcp://...`` for messages and the manifest."""
    if dask == "local":
        return f"Dask LocalCluster with {workers} worker{'s' if workers != 1 else ''}"
    if dask:
        return f"Dask at {dask}"
    return "serial" if workers <= 1 else f"{workers} worker processes"


def failure_report(failures: Sequence[TaskFailure], limit: int = 10) -> str:
    """A few lines naming the failed tasks and why: each that raised, the ones a dead worker took down,
    and how many were never started."""
    raised = [f for f in failures if f.kind == "raised"]
    died = [f for f in failures if f.kind == "worker died"]
    not_run = [f for f in failures if f.kind == "not run"]
    lines = [f"  {f.key.label} raised {f.error}" for f in raised[:limit]]
    if len(raised) > limit:
        lines.append(f"  ... and {len(raised) - limit} more that raised")
    if died:
        names = ", ".join(f.key.label for f in died[:limit])
        more = f" and {len(died) - limit} more" if len(died) > limit else ""
        lines.append(f"  a worker process died (killed, crashed or out of memory) while these were running or "
                     f"queued: {names}{more}")
    if not_run:
        lines.append(f"  {len(not_run)} more not started (the worker pool was broken)")
    return "\n".join(lines)


def failure_details(failures: Sequence[TaskFailure]) -> str:
    """Every failure with its traceback (for the error log)."""
    parts = []
    for f in failures:
        parts.append(f"== {f.render()}\n{f.details}".rstrip())
    return "\n\n".join(parts) + "\n"
