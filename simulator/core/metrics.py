"""Named metrics of one replication: pure functions from engine tallies to numbers and tables.

The names in :data:`METRIC_NAMES` are a public contract (analysts write regression tests
against them); definitions follow POLICY_FACTS section 4 and are tabled in docs/metrics.md.
A renamed metric keeps its old name for one release in :data:`DEPRECATED_METRICS`: the old
column is still recorded (same values) and :func:`canonical_metric` maps the old name to the new.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

METRIC_NAMES: tuple[str, ...] = (
    "sent", "sent_bulk", "sent_personalized", "responses", "accepted", "declined", "unanswered", "pending",
    "response_rate", "acceptance_rate", "credits_granted", "credits_spent", "credits_refunded",
    "credits_expired", "net_credit_burn", "credits_lost", "credits_per_response", "stockout_recruiter_days",
    "warnings", "improvement_periods", "inmails_per_active_member", "unanswered_per_active_member",
    "mean_member_fatigue",
)
"""Per-replication metrics, in report order (deprecated names included while they are still recorded)."""

DEPRECATED_METRICS: dict[str, str] = {"pending": "unanswered"}
"""Old metric name -> its new name.  The old column is recorded for one more release with the
new one's values, so scripts reading ``replications.csv`` or ``metrics["pending"]`` keep working."""

CURRENT_METRICS: tuple[str, ...] = tuple(m for m in METRIC_NAMES if m not in DEPRECATED_METRICS)
"""The metric names to use: :data:`METRIC_NAMES` without the deprecated ones."""

METRIC_DIRECTIONS: dict[str, int] = {
    "responses": 1, "accepted": 1, "unanswered": -1, "pending": -1, "response_rate": 1, "acceptance_rate": 1,
    "credits_expired": -1, "net_credit_burn": -1, "credits_lost": -1, "credits_per_response": -1,
    "stockout_recruiter_days": -1, "warnings": -1, "improvement_periods": -1, "unanswered_per_active_member": -1,
    "mean_member_fatigue": -1,
}
"""Which way a metric is better, from the recruiters' and members' side: +1 higher, -1 lower.  Metrics
left out have no clear direction (volumes sent, credits granted, spent or refunded, InMails per member):
more of them is neither good nor bad in itself."""

BREAKDOWN_KEYS: tuple[str, ...] = ("seat_type", "personalization_band", "behaviour", "group")
"""Recruiter attributes a breakdown can be taken by."""

BREAKDOWN_METRICS: tuple[str, ...] = (
    "recruiters", "sent", "sent_bulk", "responses", "accepted", "response_rate", "acceptance_rate",
    "credits_spent", "credits_refunded", "net_credit_burn", "sent_per_recruiter",
    "net_credit_burn_per_recruiter", "stockout_recruiter_days", "warnings", "improvement_periods",
)
"""Metrics of one recruiter subgroup."""

MEMBER_BINS: tuple[int, ...] = (0, 1, 2, 3, 5, 10, 15, 20, 30, 50, 75, 100, 200, 500)
"""Lower edges of the count bins of the per-member histograms (the last bin is open: 500+)."""

MEMBER_QUANTITIES: tuple[str, ...] = ("received", "unanswered")
"""Per-member counts whose distribution over active members a replication records."""

PERSONALIZATION_BANDS: tuple[str, ...] = ("low", "mid", "high")
"""Bands of a recruiter's initial personalization: [0, 1/3), [1/3, 2/3), [2/3, 1]."""


def deprecation_note(name: str) -> str | None:
    """The one-line note shown when the deprecated metric ``name`` is used, or None if it is current."""
    new = DEPRECATED_METRICS.get(name)
    if new is None:
        return None
    return (f"metric {name!r} is deprecated and will be removed in the next release: "
            f"use {new!r} (same values)")


def canonical_metric(name: str) -> str:
    """The current name of metric ``name``: a deprecated name is mapped to its replacement, with a
    DeprecationWarning; any other name is returned unchanged (validating it is the caller's job).

    Scenario validation, the CLI's ``--metric`` options and the experiment layers call this on
    every metric name a user writes, so an old name keeps working and says what replaced it.
    """
    note = deprecation_note(name)
    if note is None:
        return name
    warnings.warn(note, DeprecationWarning, stacklevel=2)
    return DEPRECATED_METRICS[name]


def ratio(num: float, den: float) -> float:
    """num / den, or 0.0 when the denominator is zero (no NaN leaks into summaries)."""
    return float(num) / float(den) if den else 0.0


MAY_BE_NON_FINITE: frozenset[str] = frozenset()
"""Metrics allowed to be NaN or infinite: none (a ratio over nothing is 0, see :func:`ratio`)."""


class MetricOverflowError(ArithmeticError):
    """A replication produced a NaN or infinite metric: refused rather than written to a summary.

    The parameter ranges (:mod:`simulator.core.limits`) are meant to make this impossible; this is
    the backstop, so the message asks for a report with the scenario.
    """

    def __init__(self, policy: str, bad: dict[str, float]) -> None:
        self.policy = policy
        self.bad = bad
        shown = ", ".join(f"{name} = {value}" for name, value in bad.items())
        super().__init__(f"policy {policy!r}: the parameters make {shown} (the metric overflowed although "
                         "every parameter is inside its documented range, docs/model.md section 8.5); "
                         "please report it with the scenario")


def check_finite(policy: str, metrics: dict[str, float]) -> None:
    """Raise :class:`MetricOverflowError` naming every metric that is NaN or infinite."""
    bad = {name: value for name, value in metrics.items()
           if name not in MAY_BE_NON_FINITE and not np.isfinite(value)}
    if bad:
        raise MetricOverflowError(policy, bad)


def member_histogram(counts: np.ndarray, active: np.ndarray, edges: tuple[int, ...] = MEMBER_BINS) -> np.ndarray:
    """Active members per count bin: entry ``i`` counts members with ``edges[i] <= count < edges[i + 1]``.

    Inactive members never answer and are left out, as in the per-active-member metrics; the
    histogram is what a replication returns instead of a whole per-member array.
    """
    e = np.asarray(edges, dtype=np.int64)
    top = int(e[-1])
    c = np.asarray(counts)[np.asarray(active, dtype=bool)]
    if not 0 <= top <= 1 << 16:
        bins = np.searchsorted(e, c, side="right") - 1
        return np.bincount(np.maximum(bins, 0), minlength=len(edges)).astype(np.int64)
    # counts are small integers: a lookup table from count (capped at the last edge) to bin is
    # twice as fast as a binary search per member (a million members at the large size)
    lut = np.maximum(np.searchsorted(e, np.arange(top + 1), side="right") - 1, 0)
    c = np.clip(c, 0, top)
    return np.bincount(lut[c], minlength=len(edges)).astype(np.int64)


@dataclass(frozen=True)
class RecruiterTally:
    """Per-recruiter totals over a replication (eventual outcomes) and the recruiters' labels."""

    seat_type: np.ndarray          # str labels, one per recruiter
    behaviour: np.ndarray          # "fixed" / "adaptive"
    group: np.ndarray              # recruiter group name
    personalization_band: np.ndarray  # "low" / "mid" / "high"
    sent: np.ndarray
    sent_bulk: np.ndarray
    responses: np.ndarray
    accepted: np.ndarray
    credits_spent: np.ndarray
    credits_refunded: np.ndarray
    stockout_recruiter_days: np.ndarray
    warnings: np.ndarray
    improvement_periods: np.ndarray


@dataclass
class ReplicationResult:
    """What one replication of one policy returns.

    ``metrics``: name -> value for every name in :data:`METRIC_NAMES`.
    ``daily``: name -> array over sending days (see ``engine.DAILY_SERIES``).
    ``recruiters``: per-recruiter tallies, for breakdowns.
    ``member_histograms``: quantity (:data:`MEMBER_QUANTITIES`) -> active members per
    :data:`MEMBER_BINS` bin.  ``member_received`` / ``member_unanswered``: the whole per-member
    arrays (in this process only; an experiment keeps the histograms).
    """

    policy: str
    seed_entropy: int
    spawn_key: tuple[int, ...]
    metrics: dict[str, float]
    daily: dict[str, np.ndarray]
    recruiters: RecruiterTally
    member_received: np.ndarray | None = None
    member_unanswered: np.ndarray | None = None
    member_histograms: dict[str, np.ndarray] = field(default_factory=dict)
    extra: dict[str, float] = field(default_factory=dict)

    def metrics_frame(self) -> pd.DataFrame:
        """Metrics as a one-row DataFrame (columns in :data:`METRIC_NAMES` order)."""
        import pandas as pd

        return pd.DataFrame([self.metrics], columns=list(METRIC_NAMES))

    def daily_frame(self) -> pd.DataFrame:
        """The daily time series as a DataFrame indexed by day."""
        import pandas as pd

        df = pd.DataFrame(self.daily)
        df.index.name = "day"
        return df

    def breakdown(self, by: str = "seat_type") -> pd.DataFrame:
        """Metrics per recruiter subgroup (``by`` in :data:`BREAKDOWN_KEYS`)."""
        return breakdown_frame(self.recruiters, by)


def _label_order(by: str, present: set[str]) -> list[str]:
    """Labels in their natural order (seat types as in SEAT_TYPES, bands low -> high), else sorted."""
    from simulator.core.config import SEAT_TYPES

    natural = {"seat_type": SEAT_TYPES, "personalization_band": PERSONALIZATION_BANDS,
               "behaviour": ("fixed", "adaptive")}.get(by)
    if natural is None:
        return sorted(present)
    return [x for x in natural if x in present] + sorted(present - set(natural))


def breakdown_arrays(tally: RecruiterTally, by: str) -> dict[str, dict[str, float]]:
    """label -> {metric -> value} for the recruiters grouped by attribute ``by``."""
    if by not in BREAKDOWN_KEYS:
        raise ValueError(f"breakdown key must be one of {', '.join(BREAKDOWN_KEYS)}, got {by!r}")
    labels = getattr(tally, by)
    out: dict[str, dict[str, float]] = {}
    for label in _label_order(by, set(labels.tolist())):
        in_group = labels == label
        n = int(in_group.sum())
        sent = float(tally.sent[in_group].sum())
        resp = float(tally.responses[in_group].sum())
        acc = float(tally.accepted[in_group].sum())
        spent = float(tally.credits_spent[in_group].sum())
        refunded = float(tally.credits_refunded[in_group].sum())
        out[str(label)] = {
            "recruiters": float(n),
            "sent": sent,
            "sent_bulk": float(tally.sent_bulk[in_group].sum()),
            "responses": resp,
            "accepted": acc,
            "response_rate": ratio(resp, sent),
            "acceptance_rate": ratio(acc, sent),
            "credits_spent": spent,
            "credits_refunded": refunded,
            "net_credit_burn": spent - refunded,
            "sent_per_recruiter": ratio(sent, n),
            "net_credit_burn_per_recruiter": ratio(spent - refunded, n),
            "stockout_recruiter_days": float(tally.stockout_recruiter_days[in_group].sum()),
            "warnings": float(tally.warnings[in_group].sum()),
            "improvement_periods": float(tally.improvement_periods[in_group].sum()),
        }
    return out


def breakdown_frame(tally: RecruiterTally, by: str) -> pd.DataFrame:
    """:func:`breakdown_arrays` as a DataFrame indexed by the group label."""
    import pandas as pd

    data = breakdown_arrays(tally, by)
    df = pd.DataFrame.from_dict(data, orient="index", columns=list(BREAKDOWN_METRICS))
    df.index.name = by
    return df
