"""Draw the report figures in parallel without shipping the results to each process.

A serial ``inmail-sim run`` (one worker) would draw its six figures one after the other. On a
machine with more than one core, :func:`figure_pool` forks a few processes *after* the results
exist: each inherits them (copy on write), so a figure task sends only the figure's drawing
function and gets back PNG bytes. Where ``fork`` is not available (Windows, macOS defaults) or
there is one core, it yields ``None`` and the figures are drawn serially, the same images.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import Any

_SHARED: Any = None
"""The object the forked processes inherit (the results being drawn); set only while a pool is open."""


class _Shared:
    """Stands for :data:`_SHARED` in a task's arguments (pickled instead of the object itself)."""


def _call_with_shared(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Run ``fn`` in a forked process, with the inherited shared object put back into its arguments."""
    args = tuple(_SHARED if isinstance(a, _Shared) else a for a in args)
    return fn(*args, **kwargs)


class SharedObjectPool(Executor):
    """A forked process pool in which ``shared`` is passed to tasks by inheritance, not by pickling."""

    def __init__(self, shared: Any, workers: int) -> None:
        self._shared = shared
        self._pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Queue ``fn(*args, **kwargs)``; an argument that *is* the shared object travels as a token."""
        packed = tuple(_Shared() if a is self._shared else a for a in args)
        return self._pool.submit(_call_with_shared, fn, packed, kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)


def pool_size(tasks: int) -> int:
    """How many processes to fork for ``tasks`` figures: 0 (draw serially) on one core or without fork."""
    cores = os.cpu_count() or 1
    if cores < 2 or tasks < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return 0
    return min(cores, tasks, 4)


@contextlib.contextmanager
def figure_pool(results: Any, tasks: int) -> Iterator[Executor | None]:
    """A :class:`SharedObjectPool` sharing ``results`` for ``tasks`` figures, or None to draw serially."""
    global _SHARED
    workers = pool_size(tasks)
    if workers == 0:
        yield None
        return
    _SHARED = results  # set before the first submit: the processes are forked then
    pool = SharedObjectPool(results, workers)
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        _SHARED = None
