"""Per-member and per-seat counters fed with index batches (the engine's tallies of who got what)."""

from __future__ import annotations

import numpy as np


class CountBuffer:
    """Per-member counters fed with index batches: buffered, then counted with one bincount.

    ``np.add.at`` per day costs a random scatter per InMail; collecting indices and flushing
    with ``np.bincount`` once the buffer holds about as many entries as there are members keeps
    the cost near a sequential pass, and memory bounded by the member count.
    """

    def __init__(self, target: np.ndarray) -> None:
        self.target = target
        self.buf = np.empty(max(target.size, 1 << 16), dtype=np.int64)
        self.n = 0

    def add(self, idx: np.ndarray) -> None:
        if self.n + idx.size > self.buf.size:
            self.flush()
        if idx.size > self.buf.size:
            self.target += np.bincount(idx, minlength=self.target.size).astype(self.target.dtype)
            return
        self.buf[self.n:self.n + idx.size] = idx
        self.n += idx.size

    def flush(self) -> np.ndarray:
        if self.n:
            counts = np.bincount(self.buf[:self.n], minlength=self.target.size)
            self.target += counts.astype(self.target.dtype)
            self.n = 0
        return self.target


class Done:
    """A counter already summed: what ``Simulation.result`` flushes, when the batch did the counting."""

    def __init__(self, target: np.ndarray) -> None:
        self.target = target

    def flush(self) -> np.ndarray:
        return self.target


class ScatterCount:
    """Per-member counters fed with index batches, counted as they come (``np.add.at``).

    The same counts as :class:`CountBuffer`; cheaper where a day's indices are few against the
    members (numpy's ``add.at`` is a tight scatter loop, about 2-4 ns an index): the buffer's
    ``bincount`` passes over every member at each flush.  Measured with the batched engine's
    member tables (320,000 to 1,000,000 members, 10,000 to 31,000 indices a day): 1.0-1.8x faster.
    """

    def __init__(self, target: np.ndarray) -> None:
        self.target = target
        self.one = target.dtype.type(1)

    def add(self, idx: np.ndarray) -> None:
        np.add.at(self.target, idx, self.one)

    def flush(self) -> np.ndarray:
        return self.target
