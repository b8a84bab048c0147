"""Tasks handed out in batches: several keys computed in one pass, one result (or failure) per key.

The runner groups consecutive missing tasks of one batchable kind (a ``Task.batch_fn``) into
batches of :func:`batch_size` keys; a worker runs :func:`call_batch`.  The size is ``--batch K``
(:data:`BATCH`, set with :func:`batching`), else chosen by the market
(:func:`simulator.core.batch.default_batch`), and never more than keeps every worker busy.
"""

from __future__ import annotations

import contextlib
import os
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from simulator.core.batch import default_batch
from simulator.experiments.faults import FAULT_ENV, faults_for, inject_fault

if TYPE_CHECKING:
    from simulator.experiments.runner import Task, TaskKey

Outcome = tuple[bool, Any, str]
"""One key of a batch: (finished, result or the error line, the traceback)."""


def call_batch(keys: Sequence[TaskKey], fn: Callable[..., Any], batch_fn: Callable[[list[tuple[Any, ...]]], list[Any]],
               args: Sequence[tuple[Any, ...]]) -> list[Outcome]:
    """What a worker runs for a batch: the fault hook of every key, then ``batch_fn`` on the rest.

    A key whose fault hook raises fails alone; if the batch raises, its keys run one by one so
    that only the failing ones fail (as without batching).
    """
    outcomes: list[Outcome | None] = [None] * len(keys)
    if os.environ.get(FAULT_ENV):
        for j, key in enumerate(keys):
            try:
                inject_fault(key)
            except Exception as exc:
                outcomes[j] = _failed(exc)
    todo = [j for j, o in enumerate(outcomes) if o is None]
    try:
        results = batch_fn([args[j] for j in todo]) if len(todo) > 1 else [fn(*args[j]) for j in todo]
    except Exception:
        results = None
    for n, j in enumerate(todo):
        if results is not None:
            outcomes[j] = (True, results[n], "")
            continue
        try:
            outcomes[j] = (True, fn(*args[j]), "")
        except Exception as exc:
            outcomes[j] = _failed(exc)
    return [o for o in outcomes if o is not None]


def _failed(exc: BaseException) -> Outcome:
    return False, f"{type(exc).__name__}: {exc}", "".join(traceback.format_exception(exc))


BATCH: ContextVar[int | None] = ContextVar("inmail_sim_batch", default=None)
"""The batch size of the running command (``--batch K``); None: chosen by the market size."""


@contextlib.contextmanager
def batching(size: int | None) -> Iterator[None]:
    """Hand out tasks in batches of ``size`` keys inside the block (None: by the market size)."""
    token = BATCH.set(size)
    try:
        yield
    finally:
        BATCH.reset(token)


def batch_size(task: Task, todo: int, slots: int, size: int | None = None) -> int:
    """Keys per batch: ``size``, else :data:`BATCH`, else :func:`~simulator.core.batch.default_batch` of
    the market; never more than keeps every worker busy (``todo`` tasks over ``slots`` workers)."""
    if task.batch_fn is None:
        return 1
    chosen = size if size is not None else BATCH.get()
    if chosen is None:
        chosen = default_batch(task.cells)
    return max(1, min(chosen, -(-todo // max(slots, 1))))


def next_batch(todo: deque[Task], size: int) -> list[Task]:
    """The next tasks to submit together: up to ``size`` consecutive ones of the same batchable kind."""
    group = [todo.popleft()]
    batch_fn = group[0].batch_fn
    faults = bool(os.environ.get(FAULT_ENV))  # tests: a task the fault hook names runs alone, as unbatched
    if faults and faults_for(group[0].key):
        return group
    while batch_fn is not None and todo and len(group) < size and todo[0].batch_fn is batch_fn:
        if faults and faults_for(todo[0].key):
            break
        group.append(todo.popleft())
    return group
