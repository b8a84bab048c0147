"""Frozen configuration objects: the only inputs the simulation core accepts.

YAML, pydantic and the command line live at the edge (``simulator.scenario``, ``simulator.cli``);
they build these plain, immutable dataclasses.  Every field has a default and the
reason for it is given in ``docs/model.md`` (ODD description).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field, replace
from typing import Literal

SEAT_TYPES: tuple[str, ...] = (
    "recruiter",
    "recruiter_professional_services",
    "recruiter_lite",
    "talent_finder",
    "sales_navigator_team",
    "sales_navigator_professional",
    "sales_navigator_basic",
)
"""The seven seat types of POLICY_FACTS section 2, in a fixed order (index = seat id)."""

POOLABLE_SEATS: frozenset[str] = frozenset({"recruiter", "recruiter_professional_services"})
"""Seats whose credits can be pooled across a team (POLICY_FACTS section 2; seeds 002, 003)."""


MAX_DAYS = 36_500
"""Upper bound of every day count (a century): calendars are arrays over days."""


class ConfigError(ValueError):
    """An invalid field of a config object: ``field`` (a dotted path inside the object) and the reason.

    A ``ValueError`` whose text is ``"field: message"``, so callers that catch ``ValueError`` keep
    working; the scenario layer reads ``field`` to point at the YAML line that set it.
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


def _check(cond: bool, field: str, message: str) -> None:
    """Raise :class:`ConfigError` for ``field`` unless ``cond`` holds."""
    if not cond:
        raise ConfigError(field, message)


def _prob(value: float, field: str) -> None:
    _check(0.0 <= value <= 1.0, field, f"must be a probability in [0, 1], got {value!r}")


# --------------------------------------------------------------------------- distributions


DistKind = Literal["fixed", "uniform", "beta", "lognormal"]


@dataclass(frozen=True, slots=True)
class Dist:
    """A one-dimensional distribution for a per-agent attribute.

    * ``fixed``: always ``a``.
    * ``uniform``: uniform on ``[a, b]``.
    * ``beta``: on ``[0, 1]`` with mean ``a`` and concentration ``b`` (alpha = a*b, beta = (1-a)*b).
    * ``lognormal``: median ``a`` and log-scale standard deviation ``b``.
    """

    kind: DistKind = "fixed"
    a: float = 0.0
    b: float = 0.0

    def __post_init__(self) -> None:
        _check(self.kind in ("fixed", "uniform", "beta", "lognormal"), "kind",
               f"must be one of fixed, uniform, beta, lognormal, got {self.kind!r}")
        if self.kind == "uniform":
            _check(self.a <= self.b, "b", f"uniform needs a <= b, got a={self.a}, b={self.b}")
        if self.kind == "beta":
            _check(0.0 < self.a < 1.0, "a", f"beta mean must be in (0, 1), got {self.a}")
            _check(self.b > 0.0, "b", f"beta concentration must be > 0, got {self.b}")
        if self.kind == "lognormal":
            _check(self.a > 0.0, "a", f"lognormal median must be > 0, got {self.a}")
            _check(self.b >= 0.0, "b", f"lognormal sigma must be >= 0, got {self.b}")

    @property
    def mean(self) -> float:
        """The distribution's mean (used for documentation and sanity checks)."""
        if self.kind == "fixed":
            return self.a
        if self.kind == "uniform":
            return 0.5 * (self.a + self.b)
        if self.kind == "beta":
            return self.a
        return self.a * math.exp(0.5 * self.b**2)

    @property
    def low(self) -> float:
        """Smallest value the distribution can produce."""
        return {"fixed": self.a, "uniform": self.a, "beta": 0.0, "lognormal": 0.0}[self.kind]

    @property
    def high(self) -> float:
        """Largest value the distribution can produce (inf if unbounded)."""
        return {"fixed": self.a, "uniform": self.b, "beta": 1.0, "lognormal": float("inf")}[self.kind]


def fixed(value: float) -> Dist:
    """Shorthand for a degenerate distribution."""
    return Dist("fixed", value, 0.0)


# --------------------------------------------------------------------------- members


@dataclass(frozen=True, slots=True)
class Segment:
    """A slice of the member population (an industry / region / group).

    ``base_response`` is the chance that an active, unfatigued member of median
    responsiveness (eta = 0) answers an InMail of reference personalization.
    """

    name: str
    share: float = 1.0
    base_response: float = 0.30
    active_share: float = 0.75
    check_interval_days: Dist = field(default_factory=lambda: Dist("lognormal", 4.0, 0.8))
    openness: Dist = field(default_factory=lambda: Dist("beta", 0.45, 4.0))

    def __post_init__(self) -> None:
        _check(bool(self.name), "name", "must be a non-empty string")
        _check(self.share > 0.0, "share", f"must be > 0, got {self.share}")
        _check(0.0 < self.base_response < 1.0, "base_response", f"must be in (0, 1), got {self.base_response}")
        _prob(self.active_share, "active_share")
        _check(self.check_interval_days.low >= 0.0, "check_interval_days", "must be non-negative")
        _check(self.openness.low >= 0.0 and self.openness.high <= 1.0, "openness",
               "must stay within [0, 1] (use beta, or fixed/uniform inside [0, 1])")


@dataclass(frozen=True, slots=True)
class ResponseModel:
    """Functional form of the answer probability (see docs/model.md, submodel 'InMail outcome').

    logit p = logit(base_response[seg]) + eta_m + personalization_effect * (pi - reference_personalization)
    p      *= active_m * exp(-fatigue_sensitivity * F_m)
    """

    personalization_effect: float = 1.6
    reference_personalization: float = 0.5
    bulk_personalization_factor: float = 0.3
    member_heterogeneity_sd: float = 0.5
    observation_days: int = 180

    def __post_init__(self) -> None:
        _check(self.personalization_effect >= 0.0, "personalization_effect", "must be >= 0")
        _prob(self.reference_personalization, "reference_personalization")
        _prob(self.bulk_personalization_factor, "bulk_personalization_factor")
        _check(self.member_heterogeneity_sd >= 0.0, "member_heterogeneity_sd", "must be >= 0")
        _check(self.observation_days >= 1, "observation_days", "must be >= 1 day")


@dataclass(frozen=True, slots=True)
class Fatigue:
    """Shared member fatigue: the externality of generic InMails (POLICY_FACTS section 6).

    F_m(t+1) = (F_m(t) + w_bulk * bulk_received(t) + w_personalized * personalized_received(t)) * 2**(-1/half_life_days)
    The answer probability of an InMail received on day t is multiplied by exp(-sensitivity * F_m(t)),
    the fatigue at the start of that day.
    """

    enabled: bool = True
    weight_bulk: float = 1.0
    weight_personalized: float = 0.3
    half_life_days: float = 30.0
    sensitivity: float = 0.08

    def __post_init__(self) -> None:
        _check(self.weight_bulk >= 0.0, "weight_bulk", "must be >= 0")
        _check(self.weight_personalized >= 0.0, "weight_personalized", "must be >= 0")
        _check(self.half_life_days > 0.0, "half_life_days", "must be > 0")
        _check(self.sensitivity >= 0.0, "sensitivity", "must be >= 0")


@dataclass(frozen=True, slots=True)
class MemberPopulation:
    """The simulated member population."""

    count: int = 100_000
    segments: tuple[Segment, ...] = field(default_factory=lambda: (Segment("all"),))

    def __post_init__(self) -> None:
        _check(self.count >= 1, "count", f"must be >= 1, got {self.count}")
        _check(len(self.segments) >= 1, "segments", "needs at least one segment")
        names = [segment.name for segment in self.segments]
        _check(len(set(names)) == len(names), "segments", f"segment names must be unique, got {names}")


# --------------------------------------------------------------------------- recruiters


@dataclass(frozen=True, slots=True)
class Adaptation:
    """The documented rule by which ``adaptive`` recruiters answer the policy's incentives.

    Pressure P in [0, 1] = clip(w_cost * c + w_scarcity * s + w_warning * in_grace + w_improvement * in_ip, 0, 1)
    where c = clip((cost - cost_reference) / (1 - cost_reference), 0, 1) rescales the recruiter's own
    recent net credit cost per InMail (the cost under which nobody feels pressure is ``cost_reference``)
    and s is the credit scarcity; in_grace is 1 during the warning period after the one-time warning,
    in_ip is 1 during an Improvement Period.
    Targets: personalization pi0 + (1 - pi0) * max_personalization_shift * P,
    bulk share b0 * (1 - P), volume V0 * (1 - max_volume_cut * P); the state moves a share
    ``speed`` of the way to the target each day.
    """

    enabled: bool = True
    weight_cost: float = 0.6
    weight_scarcity: float = 0.6
    weight_warning: float = 0.3
    weight_improvement: float = 0.6
    max_personalization_shift: float = 0.6
    max_volume_cut: float = 0.5
    speed: float = 0.05
    memory_days: float = 30.0
    cost_reference: float = 0.3

    def __post_init__(self) -> None:
        for name in ("weight_cost", "weight_scarcity", "weight_warning", "weight_improvement"):
            _check(getattr(self, name) >= 0.0, name, "must be >= 0")
        _prob(self.max_personalization_shift, "max_personalization_shift")
        _prob(self.max_volume_cut, "max_volume_cut")
        _prob(self.speed, "speed")
        _check(self.memory_days >= 1.0, "memory_days", f"must be >= 1 day, got {self.memory_days}")
        _check(0.0 <= self.cost_reference < 1.0, "cost_reference", "must be in [0, 1)")


@dataclass(frozen=True, slots=True)
class RecruiterGroup:
    """A block of recruiters sharing a seat type, a behaviour and attribute distributions."""

    name: str
    count: int
    seat_type: str = "recruiter"
    behaviour: Literal["fixed", "adaptive"] = "adaptive"
    personalization: Dist = field(default_factory=lambda: Dist("beta", 0.5, 6.0))
    targeting_skill: Dist = field(default_factory=lambda: Dist("beta", 0.4, 4.0))
    daily_volume: Dist = field(default_factory=lambda: Dist("lognormal", 6.0, 0.6))
    bulk_share: Dist = field(default_factory=lambda: Dist("beta", 0.3, 4.0))
    time_budget_minutes: Dist = field(default_factory=lambda: fixed(90.0))
    team_size: int = 1
    segment_weights: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        _check(bool(self.name), "name", "must be a non-empty string")
        _check(self.count >= 0, "count", f"must be >= 0, got {self.count}")
        _check(self.seat_type in SEAT_TYPES, "seat_type",
               f"must be one of {', '.join(SEAT_TYPES)}, got {self.seat_type!r}")
        _check(self.behaviour in ("fixed", "adaptive"), "behaviour",
               f"must be fixed or adaptive, got {self.behaviour!r}")
        for name in ("personalization", "targeting_skill", "bulk_share"):
            dist: Dist = getattr(self, name)
            _check(dist.low >= 0.0 and dist.high <= 1.0, name,
                   "must stay within [0, 1] (use beta, or fixed/uniform inside [0, 1])")
        _check(self.daily_volume.low >= 0.0, "daily_volume", "must be non-negative")
        _check(self.time_budget_minutes.low >= 0.0, "time_budget_minutes", "must be non-negative")
        _check(self.team_size >= 1, "team_size", f"must be >= 1, got {self.team_size}")
        if self.segment_weights is not None:
            _check(all(w >= 0 for w in self.segment_weights) and sum(self.segment_weights) > 0,
                   "segment_weights", "must be non-negative with a positive sum")


@dataclass(frozen=True, slots=True)
class SendingModel:
    """How desired volume becomes InMails: time costs, weekends, adaptation."""

    minutes_personalized: float = 12.0
    minutes_bulk: float = 1.0
    weekend_factor: float = 0.15
    adaptation: Adaptation = field(default_factory=Adaptation)

    def __post_init__(self) -> None:
        _check(self.minutes_personalized >= 0.0, "minutes_personalized", "must be >= 0")
        _check(self.minutes_bulk >= 0.0, "minutes_bulk", "must be >= 0")
        _check(self.weekend_factor >= 0.0, "weekend_factor", "must be >= 0")


@dataclass(frozen=True, slots=True)
class Market:
    """Everything about the world that does not depend on the credit policy."""

    members: MemberPopulation = field(default_factory=MemberPopulation)
    recruiters: tuple[RecruiterGroup, ...] = field(default_factory=lambda: (RecruiterGroup("standard", 1000),))
    response: ResponseModel = field(default_factory=ResponseModel)
    fatigue: Fatigue = field(default_factory=Fatigue)
    sending: SendingModel = field(default_factory=SendingModel)

    def __post_init__(self) -> None:
        names = [group.name for group in self.recruiters]
        _check(len(set(names)) == len(names), "recruiters", f"group names must be unique, got {names}")
        segment_count = len(self.members.segments)
        for group in self.recruiters:
            if group.segment_weights is not None:
                _check(len(group.segment_weights) == segment_count, f"recruiters.{group.name}.segment_weights",
                       f"needs one weight per segment ({segment_count}), got {len(group.segment_weights)}")

    @property
    def recruiter_count(self) -> int:
        return sum(group.count for group in self.recruiters)


# --------------------------------------------------------------------------- policy


@dataclass(frozen=True, slots=True)
class RefundRule:
    """When a spent credit comes back.

    * ``on_silence``: credited back if there is no response within ``window_days`` (old, 2014),
      at the end of day ``send + window_days + latency_days``.
    * ``on_response``: credited back at the end of day ``send + d + latency_days`` after a
      response on day ``send + d`` with ``d <= window_days`` (new, 2015).
    * ``never``: credits are never returned.
    A response on day ``send + d`` is "within N days" when ``d <= N``.  Credits returned at the end
    of a day can be spent from the next day on.
    """

    kind: Literal["on_silence", "on_response", "never"] = "on_response"
    window_days: int = 90
    latency_days: int = 0

    def __post_init__(self) -> None:
        _check(self.kind in ("on_silence", "on_response", "never"), "kind",
               f"must be one of on_silence, on_response, never, got {self.kind!r}")
        _check(0 <= self.window_days <= MAX_DAYS, "window_days", f"must be in [0, {MAX_DAYS}], got {self.window_days}")
        _check(0 <= self.latency_days <= MAX_DAYS, "latency_days",
               f"must be in [0, {MAX_DAYS}], got {self.latency_days}")

    @property
    def max_delay(self) -> int:
        """Days after sending by which every refund of this rule has been credited."""
        if self.kind == "never":
            return 0
        return self.window_days + self.latency_days


@dataclass(frozen=True, slots=True)
class Accrual:
    """What happens to unused credits.

    * ``unlimited``: they accumulate forever (the 2014 hoarding, seed 003).
    * ``cap``: a grant (monthly or one-off) is credited only up to a balance of ``cap_months`` x the
      account's monthly allotment; the excess counts as expired.  Refunds are not capped.
    * ``expire``: each grant lot expires ``expire_days`` after it was granted (first in, first out).
    """

    kind: Literal["unlimited", "cap", "expire"] = "unlimited"
    cap_months: float = 3.0
    expire_days: int = 90

    def __post_init__(self) -> None:
        _check(self.kind in ("unlimited", "cap", "expire"), "kind",
               f"must be one of unlimited, cap, expire, got {self.kind!r}")
        _check(0.0 <= self.cap_months <= 1200.0, "cap_months", f"must be in [0, 1200], got {self.cap_months}")
        _check(1 <= self.expire_days <= MAX_DAYS, "expire_days", f"must be in [1, {MAX_DAYS}], got {self.expire_days}")


@dataclass(frozen=True, slots=True)
class Grant:
    """A one-off credit grant on a calendar date, e.g. the January 2015 launch bonus."""

    date: dt.date
    amount: int
    seat_types: tuple[str, ...] = ("recruiter", "recruiter_professional_services")
    name: str = "grant"

    def __post_init__(self) -> None:
        _check(self.amount >= 0, "amount", f"must be >= 0, got {self.amount}")
        for seat in self.seat_types:
            _check(seat in SEAT_TYPES, "seat_types", f"must be among {', '.join(SEAT_TYPES)}, got {seat!r}")


@dataclass(frozen=True, slots=True)
class Threshold:
    """The response-rate threshold (POLICY_FACTS section 3, seed 004).

    A seat that sent at least ``min_sends`` InMails in the rolling ``window_days``-day window
    with a response rate below ``min_rate`` breaches.  First breach: a one-time warning, then
    a grace period of ``warning_days`` counted from acknowledgement (``ack_delay_days`` later).
    Any later breach: an Improvement Period of ``improvement_days`` with bulk disabled;
    at its end bulk returns only if the seat meets the threshold, otherwise another period.
    The window covers InMails sent between ``maturity_days + window_days - 1`` and
    ``maturity_days`` days ago, counting the responses received so far.  Only seats of
    ``seat_types`` are reviewed: seed 004 is the policy of LinkedIn Recruiter (corporate and
    professional services seats); other seat types are never warned.
    """

    enabled: bool = True
    min_sends: int = 100
    window_days: int = 14
    min_rate: float = 0.13
    warning_days: int = 14
    ack_delay_days: int = 0
    improvement_days: int = 14
    maturity_days: int = 0
    review_every_days: int = 1
    seat_types: tuple[str, ...] = ("recruiter", "recruiter_professional_services")

    def __post_init__(self) -> None:
        _check(self.min_sends >= 1, "min_sends", f"must be >= 1, got {self.min_sends}")
        _check(self.window_days >= 1, "window_days", f"must be >= 1, got {self.window_days}")
        _prob(self.min_rate, "min_rate")
        _check(self.warning_days >= 0, "warning_days", "must be >= 0")
        _check(self.ack_delay_days >= 0, "ack_delay_days", "must be >= 0")
        _check(self.improvement_days >= 1, "improvement_days", "must be >= 1")
        _check(self.maturity_days >= 0, "maturity_days", "must be >= 0")
        _check(self.review_every_days >= 1, "review_every_days", "must be >= 1")
        for seat in self.seat_types:
            _check(seat in SEAT_TYPES, "seat_types", f"must be among {', '.join(SEAT_TYPES)}, got {seat!r}")


@dataclass(frozen=True, slots=True)
class Phase:
    """The credit rules in force for a stretch of time (everything except the threshold)."""

    refund: RefundRule = field(default_factory=RefundRule)
    allotments: tuple[tuple[str, int], ...] = ()
    accrual: Accrual = field(default_factory=Accrual)
    pooling: bool = False

    def __post_init__(self) -> None:
        seats = [seat for seat, _ in self.allotments]
        _check(len(set(seats)) == len(seats), "allotments", "a seat type is listed twice")
        for seat, credits in self.allotments:
            _check(seat in SEAT_TYPES, f"allotments.{seat}", f"unknown seat type; allowed: {', '.join(SEAT_TYPES)}")
            _check(credits >= 0, f"allotments.{seat}", f"must be >= 0, got {credits}")

    def allotment(self, seat: str) -> int:
        """Monthly credits for one seat of this type (0 when not listed)."""
        return dict(self.allotments).get(seat, 0)


@dataclass(frozen=True, slots=True)
class Policy:
    """A complete InMail credit policy.

    ``phase`` is in force from ``switch_date`` on; before it, ``before`` is (allotments, accrual,
    pooling and, for InMails sent before the switch, the refund rule).  Without a switch date the
    policy is ``phase`` throughout.  ``grants`` and ``threshold`` apply throughout.
    """

    name: str
    phase: Phase
    threshold: Threshold = field(default_factory=Threshold)
    grants: tuple[Grant, ...] = ()
    switch_date: dt.date | None = None
    before: Phase | None = None
    description: str = ""
    sources: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        _check(bool(self.name), "name", "must be a non-empty string")
        _check((self.switch_date is None) == (self.before is None), "switch_date",
               "switch_date and before go together: give both or neither")

    def phase_on(self, day: dt.date) -> Phase:
        """The phase in force on a calendar date."""
        if self.switch_date is not None and self.before is not None and day < self.switch_date:
            return self.before
        return self.phase

    @property
    def phases(self) -> tuple[Phase, ...]:
        return (self.phase,) if self.before is None else (self.before, self.phase)

    @property
    def max_refund_delay(self) -> int:
        return max(p.refund.max_delay for p in self.phases)

    def with_phase(self, **changes: object) -> Policy:
        """A copy whose current phase has the given fields replaced."""
        return replace(self, phase=replace(self.phase, **changes))  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class RunConfig:
    """The calendar of one replication."""

    start_date: dt.date = dt.date(2015, 2, 1)
    horizon_days: int = 365
    record_daily: bool = True
    """Return the daily time series (off: ``result.daily`` is empty, less to ship from workers)."""

    def __post_init__(self) -> None:
        _check(1 <= self.horizon_days <= MAX_DAYS, "horizon_days",
               f"must be in [1, {MAX_DAYS}], got {self.horizon_days}")
