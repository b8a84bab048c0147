"""The member population: who can be reached, who answers, how fast, and how tired they are.

State is a handful of arrays over members, sorted by segment so that "a member of segment k"
is a contiguous index range.  The four fields an InMail reads at random (score, fatigue, delay
scale, openness) are the float32 columns of one (n, 4) table: one InMail is one 16-byte random
memory access, half the traffic of float64 and far more precision than the model's inputs have.
Fatigue decays lazily (see :class:`FatigueClock`), and the population total is kept exactly
(decay is the same for everyone).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.core.config import Dist, Fatigue, MemberPopulation, ResponseModel


def draw(dist: Dist, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` draws of a :class:`Dist` as float64."""
    if dist.kind == "fixed":
        return np.full(n, dist.a, dtype=np.float64)
    if dist.kind == "uniform":
        return rng.uniform(dist.a, dist.b, size=n)
    if dist.kind == "beta":
        return rng.beta(dist.a * dist.b, (1.0 - dist.a) * dist.b, size=n)
    return dist.a * np.exp(dist.b * rng.standard_normal(n))


def apportion(total: int, weights: np.ndarray) -> np.ndarray:
    """Split ``total`` into integers proportional to ``weights`` (largest remainder, deterministic)."""
    w = np.asarray(weights, dtype=np.float64)
    exact = total * w / w.sum()
    counts = np.floor(exact).astype(np.int64)
    short = total - int(counts.sum())
    if short > 0:
        order = np.argsort(-(exact - counts), kind="stable")
        counts[order[:short]] += 1
    return counts


def logit(p: float | np.ndarray) -> float | np.ndarray:
    return np.log(p) - np.log1p(-p)


@dataclass
class Members:
    """Member arrays (index = member id) plus fatigue state."""

    segment: np.ndarray          # int16, non-decreasing
    seg_start: np.ndarray        # int64 per segment
    seg_size: np.ndarray         # int64 per segment
    active: np.ndarray           # bool
    logit: np.ndarray            # float64: logit(base_response[seg]) + eta_m
    score: np.ndarray            # float32: what a skilled recruiter sees (logit, -inf if inactive)
    check_prob: np.ndarray       # float64 in (0, 1]: chance of reading InMail on a given day
    inv_log_miss: np.ndarray     # float32: 1 / log(1 - check_prob), -0.0 when checked daily (for delays)
    openness: np.ndarray         # float32 in [0, 1]: P(accept | answer)
    fatigue: np.ndarray          # float32, scaled to the FatigueClock's reference day
    received: np.ndarray         # int32 InMails received
    answered: np.ndarray         # int32 InMails answered (unanswered = received - answered)
    records: np.ndarray          # complex128 view: one 16-byte row (score, fatigue, inv_log_miss, openness)
    total_fatigue: float = 0.0   # sum of all members' fatigue as of the current day

    def gather_rows(self, idx: np.ndarray) -> np.ndarray:
        """The (score, fatigue, inv_log_miss, openness) rows of members ``idx``, one 16-byte element each.

        One random memory access per InMail instead of four; the copy is cheap to swap rows in, and
        ``rows.view(np.float32).reshape(-1, 4)`` reads the fields (see :func:`build_members`).
        """
        return self.records.take(idx)

    @property
    def count(self) -> int:
        return int(self.segment.size)

    @property
    def active_count(self) -> int:
        return int(self.active.sum())


def build_members(pop: MemberPopulation, response: ResponseModel, rng: np.random.Generator) -> Members:
    """Draw a member population (same for every policy given the same stream)."""
    n = pop.count
    sizes = apportion(n, np.array([s.share for s in pop.segments]))
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    segment = np.repeat(np.arange(len(pop.segments), dtype=np.int16), sizes)
    active = np.empty(n, dtype=bool)
    base = np.empty(n, dtype=np.float64)
    interval = np.empty(n, dtype=np.float64)
    openness = np.empty(n, dtype=np.float64)
    for k, seg in enumerate(pop.segments):
        sl = slice(int(starts[k]), int(starts[k] + sizes[k]))
        size = int(sizes[k])
        active[sl] = rng.random(size) < seg.active_share
        base[sl] = logit(seg.base_response)
        interval[sl] = draw(seg.check_interval_days, size, rng)
        openness[sl] = np.clip(draw(seg.openness, size, rng), 0.0, 1.0)
    check_prob = 1.0 / np.maximum(interval, 1.0)
    with np.errstate(divide="ignore"):
        inv_log_miss = 1.0 / np.log1p(-check_prob)  # 1 / -inf = -0.0 for daily checkers
    eta = response.member_heterogeneity_sd * rng.standard_normal(n) if response.member_heterogeneity_sd > 0 else 0.0
    member_logit = base + eta
    hot = np.zeros((n, 4), dtype=np.float32)  # one row per member: score, fatigue, inv_log_miss, openness
    hot[:, 0] = np.where(active, member_logit, -np.inf)
    hot[:, 2] = inv_log_miss
    hot[:, 3] = openness
    return Members(
        segment=segment,
        seg_start=starts,
        seg_size=sizes.astype(np.int64),
        active=active,
        logit=member_logit,
        score=hot[:, 0],
        check_prob=check_prob,
        inv_log_miss=hot[:, 2],
        openness=hot[:, 3],
        fatigue=hot[:, 1],
        records=hot.view(np.complex128).reshape(n),
        received=np.zeros(n, dtype=np.int32),
        answered=np.zeros(n, dtype=np.int32),
    )


def response_delay(inv_log_miss: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Days until an answer: Geometric(q) - 1 on {0, 1, ...} by inversion, given 1 / log(1 - q) per InMail.

    floor(log(U) / log(1 - q)) with U uniform on (0, 1] has P(d >= k) = (1 - q)**k; one uniform and a
    log per draw is several times faster than ``Generator.geometric`` with an array of ``q``.  U is
    float32 (steps of 2**-24): the tail it cuts off has probability below 6e-8.
    """
    u = rng.random(inv_log_miss.size, dtype=np.float32)
    np.subtract(np.float32(1.0), u, out=u)  # in (0, 1], so log(u) is finite
    np.log(u, out=u)
    u *= inv_log_miss
    np.minimum(u, np.float32(2.0**40), out=u)  # bounded: members who (almost) never read
    return u.astype(np.int64)  # non-negative, so truncation is floor


def daily_decay(fatigue: Fatigue) -> float:
    """Multiplicative fatigue decay per day."""
    return float(2.0 ** (-1.0 / fatigue.half_life_days))


class FatigueClock:
    """Exact exponential decay of every member's fatigue without touching every member every day.

    Member fatigue is stored scaled to a reference day: F_m(t) = G_m * decay**(t - ref).  Reading or
    adding for a few members is one gather or one scatter; the population total decays exactly by
    one multiplication a day.  When decay**(ref - t) grows large, G is rescaled (O(N), rarely).
    """

    RESCALE_AT = 1e30  # float32 state: stored values stay below ~1e31 per unit of fatigue

    def __init__(self, members: Members, decay: float) -> None:
        self.members = members
        self.log_decay = float(np.log(decay))
        self.ref = 0
        self.day = 0
        self.scale = 1.0  # decay ** (day - ref)

    def advance(self, day: int) -> None:
        """Move the clock to ``day`` (days only move forward)."""
        members = self.members
        members.total_fatigue *= float(np.exp(self.log_decay * (day - self.day)))
        self.day = day
        self.scale = float(np.exp(self.log_decay * (day - self.ref)))
        if self.scale < 1.0 / self.RESCALE_AT:
            members.fatigue *= self.scale
            self.ref, self.scale = day, 1.0

    def now(self, idx: np.ndarray) -> np.ndarray:
        """Fatigue of members ``idx`` as of the clock's day (before today's InMails), float32."""
        return self.current(self.members.fatigue[idx])

    def current(self, stored: np.ndarray) -> np.ndarray:
        """Fatigue as of the clock's day from stored values (e.g. gathered rows), float32, a new array."""
        return stored * np.float32(self.scale)

    def add(self, idx: np.ndarray, weight: np.ndarray | float, total: float | None = None) -> None:
        """Add today's InMails to the receivers' fatigue (duplicates in ``idx`` accumulate).

        ``weight``: one per InMail (float32 arrays are scaled in place), or one number for all of
        them; ``total``: the sum of the weights, when the caller knows it.
        """
        if idx.size == 0:
            return
        if np.ndim(weight) == 0:
            np.add.at(self.members.fatigue, idx, np.float32(weight / self.scale))
            self.members.total_fatigue += float(weight) * idx.size
            return
        w = np.asarray(weight)
        added = float(w.sum(dtype=np.float64)) if total is None else float(total)
        if w.dtype == np.float32:
            w *= np.float32(1.0 / self.scale)
        else:
            w = (w / self.scale).astype(np.float32)
        np.add.at(self.members.fatigue, idx, w)
        self.members.total_fatigue += added

    def all(self) -> np.ndarray:
        """Every member's fatigue as of the clock's day (O(N): for summaries only)."""
        return self.members.fatigue * self.scale
