"""Credit accounts: grants, spending, refunds, expiry, caps and team pooling.

Credits are integers held in *lots* (one per grant event, oldest first) so that expiry
"N days after grant" and first-in-first-out spending are exact.  An account is a seat, or a
team of poolable seats when pooling is on.  Conservation lives here:
granted = spent - refunded + expired + balance, at every moment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

NEVER = np.iinfo(np.int64).max // 4
"""Expiry day of credits that never expire."""


def accounts_for(team: np.ndarray, poolable: np.ndarray, pooling: bool) -> np.ndarray:
    """Account id per recruiter: its team's when pooling applies to its seat, else its own."""
    n = team.size
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    key = np.where(pooling & poolable, team, team.max() + 1 + np.arange(n))
    _, inverse = np.unique(key, return_inverse=True)
    return inverse.astype(np.int64)


def is_identity(account_of: np.ndarray) -> bool:
    """Whether recruiter i is account i for every i (no pooling in effect)."""
    return bool(np.array_equal(account_of, np.arange(account_of.size)))


def per_account(account_of: np.ndarray, values: np.ndarray, n_accounts: int) -> np.ndarray:
    """Sum a per-recruiter integer array into accounts (exact for integer inputs)."""
    return np.bincount(account_of, weights=values, minlength=n_accounts).astype(np.int64)


@dataclass
class Lot:
    amount: np.ndarray  # int64 per account
    expires: int        # first day on which the lot is gone


@dataclass
class Ledger:
    """All accounts' credit lots plus the running totals of every flow.

    ``bal`` is the running balance per account (the sum of the lots, kept up to date by every
    flow so that the daily step reads it without re-adding the lots).  Derived from ``account_of``
    (set by :meth:`_index`): ``identity``, true when every recruiter is its own account (so
    per-recruiter amounts are already per account), and ``seat_size``, each recruiter's account size.
    """

    account_of: np.ndarray
    n_accounts: int
    lots: list[Lot] = field(default_factory=list)
    granted: int = 0
    spent: int = 0
    refunded: int = 0
    expired: int = 0
    bal: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    identity: bool = False
    seat_size: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @classmethod
    def open(cls, account_of: np.ndarray) -> Ledger:
        n = int(account_of.max()) + 1 if account_of.size else 0
        ledger = cls(account_of=account_of, n_accounts=n, bal=np.zeros(n, dtype=np.int64))
        ledger._index()
        return ledger

    def _index(self) -> None:
        """Work out what follows from ``account_of`` (once per account structure, not per day)."""
        self.identity = is_identity(self.account_of)
        self.seat_size = self.account_sizes()[self.account_of]

    def balance_per_seat(self) -> np.ndarray:
        """Each recruiter's share of its account's balance (balance / seats of the account), float64."""
        if self.identity:
            return self.bal.astype(np.float64)
        return self.bal[self.account_of] / self.seat_size

    def balance(self) -> np.ndarray:
        """Credits per account (a copy)."""
        return self.bal.copy()

    def lots_balance(self) -> np.ndarray:
        """Credits per account re-added from the lots (a check on :attr:`bal`)."""
        total = np.zeros(self.n_accounts, dtype=np.int64)
        for lot in self.lots:
            total += lot.amount
        return total

    def total_balance(self) -> int:
        return int(sum(int(lot.amount.sum()) for lot in self.lots))

    def account_sizes(self) -> np.ndarray:
        return np.bincount(self.account_of, minlength=self.n_accounts)

    def to_accounts(self, per_recruiter: np.ndarray) -> np.ndarray:
        """Sum a per-recruiter integer array into accounts (no work when every seat is its own account)."""
        if self.identity:
            return per_recruiter.astype(np.int64, copy=False)
        return per_account(self.account_of, per_recruiter, self.n_accounts)

    def grant(self, amounts: np.ndarray, expires: int, cap: np.ndarray | None = None) -> tuple[int, int]:
        """Credit ``amounts`` per account as a new lot; with a cap, the excess is dropped (counted expired).

        Returns (granted, dropped).
        """
        amounts = amounts.astype(np.int64)
        credited = amounts
        if cap is not None:
            room = np.maximum(cap - self.bal, 0)
            credited = np.minimum(amounts, room)
        dropped = int((amounts - credited).sum())
        if self.lots and self.lots[-1].expires == expires:
            self.lots[-1].amount += credited
        else:
            self.lots.append(Lot(credited.copy(), expires))
        self.bal += credited
        total = int(amounts.sum())
        self.granted += total
        self.expired += dropped
        return total, dropped

    def spend(self, amounts: np.ndarray) -> None:
        """Debit ``amounts`` per account, oldest lot first.  Raises if an account would go negative."""
        need = amounts.astype(np.int64)  # a copy: it is used up below
        if ((need < 0) | (need > self.bal)).any():
            if (need < 0).any():
                raise ValueError("cannot spend a negative number of credits")
            raise RuntimeError(f"ledger overdraft of {int(np.maximum(need - self.bal, 0).sum())} credits (engine bug)")
        left = int(need.sum())
        self.spent += left
        self.bal -= need
        for lot in self.lots:
            take = np.minimum(lot.amount, need)
            lot.amount -= take
            need -= take
            left -= int(take.sum())
            if not left:  # the older lots covered everything: the newer ones are untouched
                break
        self._drop_empty()

    def refund(self, amounts: np.ndarray, day: int, fallback_expires: int, *, total: int | None = None) -> None:
        """Credit refunds per account into the newest lot (a new lot if the account holds none).

        ``total``: the sum of ``amounts``, when the caller has it already.
        """
        amounts = np.asarray(amounts, dtype=np.int64)
        total = int(amounts.sum()) if total is None else total
        if total == 0:
            return
        self.refunded += total
        if not self.lots:
            self.lots.append(Lot(np.zeros(self.n_accounts, dtype=np.int64), fallback_expires))
        self.lots[-1].amount += amounts
        self.bal += amounts

    def expire(self, day: int) -> int:
        """Remove the lots whose expiry day has come; returns the credits that expired."""
        gone = [lot for lot in self.lots if lot.expires <= day]
        if not gone:
            return 0
        n = int(sum(int(lot.amount.sum()) for lot in gone))
        for lot in gone:
            self.bal -= lot.amount
        self.lots = [lot for lot in self.lots if lot.expires > day]
        self.expired += n
        return n

    def remap(self, new_account_of: np.ndarray) -> None:
        """Move every lot to a new account structure (pooling switched on or off), conserving credits.

        Each old account's lot is split evenly over its seats (remainders to the lowest ids), then the
        seats' shares are summed into their new accounts.
        """
        sizes = self.account_sizes()
        order = np.argsort(self.account_of, kind="stable")
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size) - starts[self.account_of[order]]
        n_new = int(new_account_of.max()) + 1 if new_account_of.size else 0
        for lot in self.lots:
            amt = lot.amount[self.account_of]
            size = sizes[self.account_of]
            share = amt // size + (rank < amt % size)
            lot.amount = per_account(new_account_of, share, n_new)
        self.account_of = new_account_of
        self.n_accounts = n_new
        self.bal = self.lots_balance()
        self._index()

    def conserved(self) -> bool:
        """granted == spent - refunded + expired + balance."""
        total = self.total_balance()
        return (self.granted == self.spent - self.refunded + self.expired + total
                and int(self.bal.sum()) == total)

    def _drop_empty(self) -> None:
        # keep the newest lot even when empty: refunds join it
        if len(self.lots) > 1:
            self.lots = [lot for lot in self.lots[:-1] if lot.amount.any()] + [self.lots[-1]]


def allocate(desired: np.ndarray, account_of: np.ndarray, balance: np.ndarray, *,
             identity: bool | None = None) -> np.ndarray:
    """How many of its desired InMails each recruiter can pay for today.

    An account with enough credits serves every seat in full; a short account is shared in
    proportion to demand by largest remainder (exact integers: the whole balance is handed out,
    never more, no seat above its demand; ties go to the lower recruiter id).  ``identity``:
    every seat is its own account (see :func:`is_identity`; worked out when not given).
    """
    return allocate_with_accounts(desired, account_of, balance, identity=identity)[0]


def group_rank(sorted_keys: np.ndarray) -> np.ndarray:
    """Position of each entry within its run of equal keys (``sorted_keys`` sorted): 0, 1, ... per run.

    ``arange(n) - searchsorted(sorted_keys, sorted_keys)``; from a thousand keys on by the run
    starts (linear; measured faster there, the search faster below).
    """
    n = sorted_keys.size
    if n < 1024:
        return np.arange(n) - np.searchsorted(sorted_keys, sorted_keys)
    first = np.flatnonzero(np.concatenate(([True], sorted_keys[1:] != sorted_keys[:-1])))
    return np.arange(n) - np.repeat(first, np.diff(np.append(first, n)))


def allocate_with_accounts(desired: np.ndarray, account_of: np.ndarray, balance: np.ndarray, *,
                           identity: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`allocate`, plus what each account spends: min(demand, balance), known without re-adding the seats."""
    n_acc = balance.size
    if identity is None:
        identity = n_acc == desired.size and is_identity(account_of)
    if identity:
        allowed = np.minimum(desired, balance).astype(np.int64, copy=False)  # every seat its own account
        return allowed, allowed
    demand = np.bincount(account_of, weights=desired, minlength=n_acc).astype(np.int64)
    short_acc = demand > balance
    if not short_acc.any():
        return desired.astype(np.int64), demand
    allowed = desired.astype(np.int64)
    idx = short_acc[account_of].nonzero()[0]  # only seats of short accounts take part in the sharing
    acc = account_of[idx]
    num = allowed[idx] * balance[acc]
    den = demand[acc]
    share = num // den
    remainder = num % den
    leftover = balance - np.bincount(acc, weights=share, minlength=n_acc).astype(np.int64)
    # by account, then largest remainder, then lowest id (idx is increasing and the sort is stable);
    # one sort of a combined key where it fits in int64, else the three-key lexsort
    top = int(remainder.max())
    if (n_acc + 1) * (top + 1) < 2**62:
        order = np.argsort(acc * (top + 1) + (top - remainder), kind="stable")
    else:
        order = np.lexsort((idx, -remainder, acc))
    acc_sorted = acc[order]
    rank = group_rank(acc_sorted)
    share[order[(rank < leftover[acc_sorted]) & (remainder[order] > 0)]] += 1
    allowed[idx] = share
    return allowed, np.minimum(demand, balance)  # a short account hands out its whole balance


class Payer(Protocol):
    """What :func:`pay` needs of a ledger (:class:`Ledger`, or the batched one)."""

    account_of: np.ndarray
    bal: np.ndarray

    @property
    def identity(self) -> bool: ...

    def spend(self, amounts: np.ndarray, /) -> None: ...


def pay(ledger: Payer, n_one: np.ndarray, n_bulk: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each seat's wanted one-to-one and bulk InMails cut to what its account pays for; the credits are spent.

    Returns (one-to-one, bulk, sends, indices of the seats short of credits); a seat short of credits
    keeps its bulk share of what it can pay for (desired > 0 there).
    """
    desired = n_one + n_bulk
    allowed, spend = allocate_with_accounts(desired, ledger.account_of, ledger.bal, identity=ledger.identity)
    short = (allowed < desired).nonzero()[0]
    if short.size:
        n_bulk[short] = (n_bulk[short] * allowed[short]) // desired[short]
        n_one = allowed - n_bulk
    ledger.spend(spend)
    return n_one, n_bulk, allowed, short
