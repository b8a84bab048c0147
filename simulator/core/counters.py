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
