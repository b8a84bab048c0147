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

from simulator.core import limits
from simulator.core.limits import MAX_DAYS as MAX_DAYS  # re-exported: the scenario layer reads it here
from simulator.core.limits import Range

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
    _check(value in limits.PROBABILITY, field, f"must be a probability in [0, 1], got {value!r}")


def _within(value: float, allowed: Range, field: str) -> None:
    """Raise :class:`ConfigError` for ``field`` unless ``value`` lies in ``allowed`` (see :mod:`limits`)."""
    _check(value in allowed, field, f"must be in {allowed.text}, got {value!r}")


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
        _within(self.a, limits.DIST_PARAMETER, "a")
        _within(self.b, limits.DIST_PARAMETER, "b")
        if self.kind == "uniform":
            _check(self.a <= self.b, "b", f"uniform needs a <= b, got a={self.a}, b={self.b}")
        if self.kind == "beta":
            _check(0.0 < self.a < 1.0, "a", f"beta mean must be in (0, 1), got {self.a}")
            _check(self.b > 0.0, "b", f"beta concentration must be > 0, got {self.b}")
        if self.kind == "lognormal":
            _check(self.a > 0.0, "a", f"lognormal median must be > 0, got {self.a}")
            _check(self.b in limits.LOG_SD, "b", f"a lognormal's log-sd must be in {limits.LOG_SD.text}, got {self.b}")

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
        _within(self.share, limits.SHARE, "share")
        _within(self.base_response, limits.OPEN_PROBABILITY, "base_response")
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
        _within(self.personalization_effect, limits.PERSONALIZATION_EFFECT, "personalization_effect")
        _prob(self.reference_personalization, "reference_personalization")
        _prob(self.bulk_personalization_factor, "bulk_personalization_factor")
        _within(self.member_heterogeneity_sd, limits.HETEROGENEITY_SD, "member_heterogeneity_sd")
        _within(self.observation_days, limits.POSITIVE_DAYS, "observation_days")


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
        _within(self.weight_bulk, limits.FATIGUE_WEIGHT, "weight_bulk")
        _within(self.weight_personalized, limits.FATIGUE_WEIGHT, "weight_personalized")
        _within(self.half_life_days, limits.HALF_LIFE_DAYS, "half_life_days")
        _within(self.sensitivity, limits.FATIGUE_SENSITIVITY, "sensitivity")


@dataclass(frozen=True, slots=True)
class MemberPopulation:
    """The simulated member population."""

    count: int = 100_000
    segments: tuple[Segment, ...] = field(default_factory=lambda: (Segment("all"),))

    def __post_init__(self) -> None:
        _within(self.count, limits.POSITIVE_COUNT, "count")
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
            _within(getattr(self, name), limits.ADAPTATION_WEIGHT, name)
        _prob(self.max_personalization_shift, "max_personalization_shift")
        _prob(self.max_volume_cut, "max_volume_cut")
        _prob(self.speed, "speed")
        _within(self.memory_days, limits.MEMORY_DAYS, "memory_days")
        _within(self.cost_reference, limits.COST_REFERENCE, "cost_reference")


@dataclass(frozen=True, slots=True)
class Anticipation:
    """Adaptive recruiters react to the published threshold before any warning (docs/model.md, 'Anticipation').

    Seed 004: the rule (``min_rate`` on ``min_sends``+ InMails in ``window_days``) is published and each
    recruiter sees their own response rate on the InMail Analytics page.  A seat the policy's
    threshold reviews feels extra adaptation pressure

        P_ant = weight * closeness * exposure,
        closeness = clip((bar * (1 + margin) - r) / (bar * margin), 0, 1),  exposure = clip(n / min_sends, 0, 1)

    with r = responses / sends and n = sends in the review window (what the review itself counts).
    No threshold (or a seat type it does not review): no pressure.  ``enabled=False`` is the off switch.
    """

    enabled: bool = False
    weight: float = 0.6
    margin: float = 0.5

    def __post_init__(self) -> None:
        _within(self.weight, limits.ADAPTATION_WEIGHT, "weight")
        _within(self.margin, limits.ANTICIPATION_MARGIN, "margin")


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
        _within(self.count, limits.COUNT, "count")
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
        _within(self.team_size, limits.POSITIVE_COUNT, "team_size")
        if self.segment_weights is not None:
            _check(all(w in limits.WEIGHT for w in self.segment_weights) and sum(self.segment_weights) > 0,
                   "segment_weights", f"each must be in {limits.WEIGHT.text}, with a positive sum")


@dataclass(frozen=True, slots=True)
class SendingModel:
    """How desired volume becomes InMails: time costs, weekends, adaptation."""

    minutes_personalized: float = 12.0
    minutes_bulk: float = 1.0
    weekend_factor: float = 0.15
    adaptation: Adaptation = field(default_factory=Adaptation)
    anticipation: Anticipation = field(default_factory=Anticipation)

    def __post_init__(self) -> None:
        _within(self.minutes_personalized, limits.MINUTES, "minutes_personalized")
        _within(self.minutes_bulk, limits.MINUTES, "minutes_bulk")
        _within(self.weekend_factor, limits.WEEKEND_FACTOR, "weekend_factor")


@dataclass(frozen=True, slots=True)
class PlatformTargeting:
    """The platform steers InMails towards members likely to respond (docs/model.md, 'Platform targeting').

    Seed 004 (the 2014 threshold FAQ): "algorithmic changes to surface candidates who are most likely to
    respond to you (based on past InMail behaviors)".  With probability ``strength`` an InMail's
    recipient is compared with ``candidates`` more members of the same segment, surfaced by the
    platform, and the best by static score is kept (on top of the recruiter's own look, see
    targeting skill).
    ``requires_threshold``: the feature came with the 2014 response-rate programme, so it serves the
    seats the policy's threshold reviews; ``false`` serves every seat whatever the policy.
    ``enabled=False`` is the off switch.
    """

    enabled: bool = False
    strength: float = 0.5
    candidates: int = 1
    requires_threshold: bool = True

    def __post_init__(self) -> None:
        _prob(self.strength, "strength")
        _within(self.candidates, limits.PLATFORM_CANDIDATES, "candidates")


@dataclass(frozen=True, slots=True)
class Market:
    """Everything about the world that does not depend on the credit policy."""

    members: MemberPopulation = field(default_factory=MemberPopulation)
    recruiters: tuple[RecruiterGroup, ...] = field(default_factory=lambda: (RecruiterGroup("standard", 1000),))
    response: ResponseModel = field(default_factory=ResponseModel)
    fatigue: Fatigue = field(default_factory=Fatigue)
    sending: SendingModel = field(default_factory=SendingModel)
    platform_targeting: PlatformTargeting = field(default_factory=PlatformTargeting)

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
        _within(self.window_days, limits.DAYS, "window_days")
        _within(self.latency_days, limits.DAYS, "latency_days")

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
        _within(self.cap_months, limits.CAP_MONTHS, "cap_months")
        _within(self.expire_days, limits.POSITIVE_DAYS, "expire_days")


@dataclass(frozen=True, slots=True)
class Grant:
    """A one-off credit grant on a calendar date, e.g. the January 2015 launch bonus."""

    date: dt.date
    amount: int
    seat_types: tuple[str, ...] = ("recruiter", "recruiter_professional_services")
    name: str = "grant"

    def __post_init__(self) -> None:
        _within(self.amount, limits.CREDITS, "amount")
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
        _within(self.min_sends, limits.POSITIVE_COUNT, "min_sends")
        _within(self.window_days, limits.POSITIVE_DAYS, "window_days")
        _prob(self.min_rate, "min_rate")
        for name in ("warning_days", "ack_delay_days", "maturity_days"):
            _within(getattr(self, name), limits.DAYS, name)
        for name in ("improvement_days", "review_every_days"):
            _within(getattr(self, name), limits.POSITIVE_DAYS, name)
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
            _within(credits, limits.CREDITS, f"allotments.{seat}")

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
        _within(self.horizon_days, limits.POSITIVE_DAYS, "horizon_days")
