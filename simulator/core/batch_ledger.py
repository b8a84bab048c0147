"""The credit accounts of a batch of replications: one stacked ledger, the same integers as each alone.

Replication ``i`` owns the account slots ``[off_i, off_i + R_i)`` (as many as its seats; with
pooling only the first ones are used), so accounts never span replications and per-account
work (allocation, spending, refunds) is one numpy pass for the whole batch.  Lots are the rows
of one (lots x accounts) matrix: row ``j`` of replication ``i``'s columns is its ``j``-th lot,
oldest first, exactly the lot list of :class:`~simulator.core.ledger.Ledger`; spending is
first-in-first-out by a cumulative sum down the rows.  Grants, expiries and pooling switches
are rare calendar events and run per replication in Python, by the rules of ``Ledger``.
"""

from __future__ import annotations

import numpy as np

from simulator.core.ledger import NEVER, Ledger, Lot, is_identity, per_account


def segment_sums(values: np.ndarray, bounds: np.ndarray, nonempty: bool | None = None) -> np.ndarray:
    """Integer sums of ``values`` over ``[bounds[i], bounds[i + 1])`` (empty segments give 0; exact).

    One ``reduceat`` pass when no segment is empty (the usual case), else by a cumulative sum;
    ``nonempty``: whether every segment is known to be non-empty (checked when not given).
    """
    starts = bounds[:-1]
    if nonempty is None:
        nonempty = bool(starts.size) and bool((bounds[1:] > starts).all())
    if values.size and starts.size and nonempty:
        return np.add.reduceat(values, starts, dtype=np.int64)
    cum = np.zeros(values.size + 1, dtype=np.int64)
    np.cumsum(values, out=cum[1:])
    return cum[bounds[1:]] - cum[bounds[:-1]]


class BatchLedger:
    """All accounts of a batch; the running totals of every flow are kept per replication."""

    def __init__(self, ledgers: list[Ledger], seat_off: np.ndarray) -> None:
        self.off = seat_off
        self.k = len(ledgers)
        total = int(seat_off[-1])
        self.account_of = np.zeros(total, dtype=np.int64)
        self.seat_size = np.ones(total, dtype=np.int64)
        self.bal = np.zeros(total, dtype=np.int64)
        self.rep_identity = [True] * self.k
        self.expires: list[list[int]] = [[] for _ in range(self.k)]
        self.amounts = np.zeros((1, total), dtype=np.int64)
        self.granted = [0] * self.k
        self.spent = np.zeros(self.k, dtype=np.int64)
        self.refunded = np.zeros(self.k, dtype=np.int64)
        self.counts = np.diff(seat_off)
        self.nonempty = bool(self.counts.size) and bool((self.counts > 0).all())
        self.seat_index = np.arange(total)
        self._stale = True
        self.expired = [0] * self.k
        for i, ledger in enumerate(ledgers):
            self._load(i, ledger.account_of, ledger.lots)
        self._index()

    # ------------------------------------------------------------------ layout

    def cols(self, i: int) -> slice:
        return slice(int(self.off[i]), int(self.off[i + 1]))

    def _load(self, i: int, account_of: np.ndarray, lots: list[Lot]) -> None:
        """Put replication ``i``'s account structure and lots (local account ids) into the batch."""
        cols, start = self.cols(i), int(self.off[i])
        self.account_of[cols] = account_of + start
        n_acc = int(account_of.max()) + 1 if account_of.size else 0
        self.seat_size[cols] = np.bincount(account_of, minlength=n_acc)[account_of] if account_of.size else 1
        self.rep_identity[i] = is_identity(account_of)
        self._rows(len(lots))
        self.amounts[:, cols] = 0
        self.bal[cols] = 0
        for j, lot in enumerate(lots):
            self.amounts[j, start:start + n_acc] = lot.amount
            self.bal[start:start + n_acc] += lot.amount
        self.expires[i] = [lot.expires for lot in lots]

    def _index(self) -> None:
        """Note that the lots or accounts changed: the summaries below are worked out when next read
        (a grant day changes every replication's lots one by one; refreshing each time cost K x K)."""
        self._stale = True

    def _refresh(self) -> None:
        self._identity = all(self.rep_identity)
        self._n_lots = np.array([len(e) for e in self.expires], dtype=np.int64)
        self._max_lots = int(self._n_lots.max(initial=0))
        self._newest = np.repeat(np.maximum(self._n_lots - 1, 0), self.counts)
        rows = np.maximum(self._n_lots - 1, 0)
        self._newest_row = int(rows[0]) if rows.size and bool((rows == rows[0]).all()) else None
        self._stale = False

    @property
    def identity(self) -> bool:
        """Every seat of the batch is its own account."""
        if self._stale:
            self._refresh()
        return self._identity

    @property
    def max_lots(self) -> int:
        if self._stale:
            self._refresh()
        return self._max_lots

    @property
    def newest_row(self) -> int | None:
        """The row of the newest lot when it is the same in every replication, else None."""
        if self._stale:
            self._refresh()
        return self._newest_row

    @property
    def n_lots(self) -> np.ndarray:
        """Lots held per replication."""
        if self._stale:
            self._refresh()
        return self._n_lots

    @property
    def newest(self) -> np.ndarray:
        """Per seat, the row of its replication's newest lot (0 when it holds none)."""
        if self._stale:
            self._refresh()
        return self._newest

    def _rows(self, n: int) -> None:
        if n > self.amounts.shape[0]:
            grown = np.zeros((n, self.amounts.shape[1]), dtype=np.int64)
            grown[:self.amounts.shape[0]] = self.amounts
            self.amounts = grown

    def lots_of(self, i: int) -> list[Lot]:
        """Replication ``i``'s lots as :class:`Lot` objects over its own accounts (copies)."""
        start, n_acc = int(self.off[i]), self.n_accounts(i)
        return [Lot(self.amounts[j, start:start + n_acc].copy(), e) for j, e in enumerate(self.expires[i])]

    def n_accounts(self, i: int) -> int:
        cols = self.cols(i)
        return int(self.account_of[cols].max()) + 1 - int(self.off[i]) if cols.stop > cols.start else 0

    # ------------------------------------------------------------------ the daily flows (whole batch)

    def to_accounts(self, per_seat: np.ndarray) -> np.ndarray:
        if self.identity:
            return per_seat.astype(np.int64, copy=False)
        return per_account(self.account_of, per_seat, self.bal.size)

    def balance_per_seat(self) -> np.ndarray:
        if self.identity:
            return self.bal.astype(np.float64)
        return self.bal[self.account_of] / self.seat_size

    def spend(self, need: np.ndarray) -> None:
        """Debit ``need`` per account, oldest lot first, then drop emptied lots (as ``Ledger.spend``)."""
        need = need.astype(np.int64)
        if ((need < 0) | (need > self.bal)).any():
            raise RuntimeError("ledger overdraft or negative spend in a batch (engine bug)")
        self.spent += segment_sums(need, self.off, self.nonempty)
        self.bal -= need
        if self.max_lots == 1:
            self.amounts[0] -= need
            return
        if self.max_lots == 0:
            return
        left = need.copy()  # still to debit, lot by lot from the oldest (what a cumulative sum gives)
        take = np.empty_like(left)
        for row in self.amounts[:self.max_lots]:
            np.minimum(left, row, out=take)
            row -= take
            left -= take
            if not left.any():
                break
        self._drop_empty()

    def _drop_empty(self) -> None:
        """Remove lots left empty in every account of their replication (never the newest)."""
        rows = self.amounts[:self.max_lots]
        starts = self.off[:-1]
        if bool((self.off[1:] > starts).all()):
            alive = np.logical_or.reduceat(rows != 0, starts, axis=1)  # (lots, replications)
        else:  # a replication without seats: by cumulative counts
            nonzero = np.zeros((rows.shape[0], rows.shape[1] + 1), dtype=np.int64)
            np.cumsum(rows != 0, axis=1, out=nonzero[:, 1:])
            alive = (nonzero[:, self.off[1:]] - nonzero[:, starts]) > 0
        dead = ~alive & (np.arange(rows.shape[0])[:, None] < self.n_lots[None, :] - 1)
        if not dead.any():
            return
        for i in np.flatnonzero(dead.any(axis=0)).tolist():
            keep = [j for j in range(len(self.expires[i])) if not dead[j, i]] + [len(self.expires[i]) - 1]
            keep = sorted(set(keep))
            self._keep_rows(i, keep)
        self._index()

    def _keep_rows(self, i: int, keep: list[int]) -> None:
        cols = self.cols(i)
        kept = self.amounts[keep, cols]
        self.amounts[:, cols] = 0
        self.amounts[:len(keep), cols] = kept
        self.expires[i] = [self.expires[i][j] for j in keep]

    def refund(self, due_per_seat: np.ndarray, totals: np.ndarray, fallback: dict[int, int]) -> None:
        """Credit refunds into each account's newest lot (a new lot where a replication holds none).

        ``totals``: the refunds of each replication; ``fallback``: the expiry of the new lot, for
        each replication with refunds and no lot.
        """
        amounts = self.to_accounts(due_per_seat)
        self.refunded += totals
        if fallback:
            for i, back in fallback.items():
                self._rows(1)
                self.expires[i] = [back]
            self._index()
        row = self.newest_row
        if row is not None:  # every replication's newest lot is the same row: one contiguous add
            self.amounts[row] += amounts
        else:
            self.amounts[self.newest, self.seat_index] += amounts
        self.bal += amounts

    # ------------------------------------------------------------------ calendar events (one replication)

    def grant(self, i: int, amounts: np.ndarray, expires: int, cap: np.ndarray | None) -> tuple[int, int]:
        """``Ledger.grant`` for replication ``i`` (``amounts``, ``cap``: over its own accounts)."""
        start, n_acc = int(self.off[i]), amounts.size
        bal = self.bal[start:start + n_acc]
        amounts = amounts.astype(np.int64)
        credited = amounts if cap is None else np.minimum(amounts, np.maximum(cap - bal, 0))
        dropped = int((amounts - credited).sum())
        lots = self.expires[i]
        if not (lots and lots[-1] == expires):
            self._rows(len(lots) + 1)
            lots.append(expires)
            self._index()
        self.amounts[len(lots) - 1, start:start + n_acc] += credited
        bal += credited
        total = int(amounts.sum())
        self.granted[i] += total
        self.expired[i] += dropped
        return total, dropped

    def expire(self, i: int, day: int) -> int:
        """``Ledger.expire`` for replication ``i``: drop the lots whose day has come; returns the credits."""
        lots = self.expires[i]
        gone = [j for j, e in enumerate(lots) if e <= day]
        if not gone:
            return 0
        cols = self.cols(i)
        lost = self.amounts[gone, cols].sum(axis=0)
        n = int(lost.sum())
        self.bal[cols] -= lost
        self._keep_rows(i, [j for j, e in enumerate(lots) if e > day])
        self._index()
        self.expired[i] += n
        return n

    def remap(self, i: int, new_account_of: np.ndarray) -> None:
        """``Ledger.remap`` for replication ``i`` (pooling switched on or off)."""
        ledger = Ledger.open(self.account_of[self.cols(i)] - int(self.off[i]))
        ledger.lots = self.lots_of(i)
        ledger.remap(new_account_of)
        self._load(i, new_account_of, ledger.lots)
        self._index()

    def has_lots(self, i: int) -> bool:
        return bool(self.expires[i])


class LedgerView:
    """Replication ``i`` of a :class:`BatchLedger`, read as a ``Ledger`` by the result summary."""

    def __init__(self, batch: BatchLedger, i: int) -> None:
        self.batch, self.i = batch, i

    granted = property(lambda self: self.batch.granted[self.i])
    spent = property(lambda self: int(self.batch.spent[self.i]))
    refunded = property(lambda self: int(self.batch.refunded[self.i]))
    expired = property(lambda self: self.batch.expired[self.i])

    def total_balance(self) -> int:
        return int(sum(int(lot.amount.sum()) for lot in self.batch.lots_of(self.i)))

    def conserved(self) -> bool:
        total = self.total_balance()
        return (self.granted == self.spent - self.refunded + self.expired + total
                and int(self.batch.bal[self.batch.cols(self.i)].sum()) == total)


__all__ = ["NEVER", "BatchLedger", "LedgerView", "segment_sums"]
