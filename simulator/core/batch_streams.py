"""The daily reset of a batch's random streams, without a state dictionary per stream and day.

``Simulation.day_streams`` puts each PCG64 stream at ``state0`` advanced by ``day << 64`` draws
(``bit_generator.state = state0`` then ``advance``): about 2 us a stream, three streams per
replication and day - a tenth of a small replication's batched day.  The advanced state is a
linear function of the saved one: ``A_d * state0 + C_d * inc (mod 2**128)`` with ``A_d, C_d``
the same for every stream (they depend only on the day and PCG64's multiplier), so the batch
works them out once a day and writes each stream's 128-bit state into the bit generator's own
memory (``PCG64.ctypes``), clearing its buffered 32-bit half as ``advance`` does.  A check at
construction compares the written state with the dictionary path; if the memory layout is not
the expected one (another numpy build), the batch keeps the dictionary path.
"""

from __future__ import annotations

import ctypes
from functools import lru_cache
from typing import Any

import numpy as np

MULTIPLIER = 0x2360ED051FC65DA44385DF649FCCF645
"""PCG64's 128-bit LCG multiplier (``PCG_DEFAULT_MULTIPLIER_128`` of numpy's pcg64.h)."""

MASK = (1 << 128) - 1
LOW = (1 << 64) - 1


@lru_cache(maxsize=1024)
def day_terms(day: int) -> tuple[int, int]:
    """``advance_terms(day << 64)``, worked out once per day and process."""
    return advance_terms(day << 64)


def advance_terms(delta: int) -> tuple[int, int]:
    """(A, C) with LCG^delta(s) = A s + C inc (mod 2**128): Brown's jump-ahead, as numpy's ``advance``."""
    acc_mult, acc_plus, cur_mult, cur_plus = 1, 0, MULTIPLIER, 1
    while delta:
        if delta & 1:
            acc_mult = (acc_mult * cur_mult) & MASK
            acc_plus = (acc_plus * cur_mult + cur_plus) & MASK
        cur_plus = ((cur_mult + 1) * cur_plus) & MASK
        cur_mult = (cur_mult * cur_mult) & MASK
        delta >>= 1
    return acc_mult, acc_plus


class DayStreams:
    """Every PCG64 stream of a batch, reset to its own block of ``day``: the same states as ``day_streams``."""

    def __init__(self, pairs: list[tuple[np.random.PCG64, Any]]) -> None:
        self.pairs = pairs
        self.saved = [(int(state["state"]["state"]), int(state["state"]["inc"])) for _, state in pairs]
        self.words = [(ctypes.c_uint64 * 2).from_address(_pcg_address(bg)) for bg, _ in pairs]
        self.flags = [(ctypes.c_uint32 * 2).from_address(bg.ctypes.state_address + 8) for bg, _ in pairs]
        self.fast = bool(pairs) and self._check()

    def reset(self, day: int) -> None:
        if not self.fast:
            for bit_generator, state in self.pairs:
                bit_generator.state = state
                bit_generator.advance(day << 64)
            return
        a, c = day_terms(day)
        for (s0, inc), words, flags in zip(self.saved, self.words, self.flags, strict=True):
            s = (a * s0 + c * inc) & MASK
            words[0] = s & LOW
            words[1] = s >> 64
            flags[0] = 0
            flags[1] = 0

    def _check(self) -> bool:
        """Whether writing the state gives what ``state =`` and ``advance`` give (then undone)."""
        bg, state = self.pairs[0]
        keep = bg.state
        try:
            bg.state = state
            bg.advance(3 << 64)
            expected = bg.state
            bg.state = keep
            a, c = advance_terms(3 << 64)
            s0, inc = self.saved[0]
            s = (a * s0 + c * inc) & MASK
            self.words[0][0], self.words[0][1] = s & LOW, s >> 64
            self.flags[0][0] = self.flags[0][1] = 0
            ok = bg.state == expected
        except (TypeError, ValueError, AttributeError):  # pragma: no cover - an unexpected build
            ok = False
        bg.state = keep
        return ok


def _pcg_address(bit_generator: np.random.PCG64) -> int:
    """Address of the 128-bit (state, inc) pair: the first field of the PCG64 state struct points to it."""
    pointer = ctypes.c_void_p.from_address(bit_generator.ctypes.state_address).value
    if not pointer:  # pragma: no cover
        raise ValueError("PCG64 state pointer is null")
    return int(pointer)
