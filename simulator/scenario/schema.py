"""The scenario schema (pydantic): the shape of a scenario file, checked before anything is built.

Unknown keys are errors and nothing is coerced silently ("3" is not 3).  A schema whose ``target``
is a config class (:mod:`simulator.core.config`) mirrors that class field by field; ``None``
means "not given" (the preset's or the config class's default).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, model_validator

from simulator.core import limits
from simulator.core.config import (
    Adaptation,
    Anticipation,
    Dist,
    Fatigue,
    Market,
    MemberPopulation,
    PlatformTargeting,
    RecruiterGroup,
    ResponseModel,
    Segment,
    SendingModel,
)
from simulator.core.limits import MAX_LOG_SD
from simulator.scenario.errors import SAFE_NAME_PATTERN
from simulator.scenario.experiment_schema import CalibrationSchema, SensitivitySchema, SweepSchema
from simulator.scenario.optimize_schema import OptimizeSchema
from simulator.scenario.scale import ScaleFactor
from simulator.scenario.schema_fields import (
    Count,
    Credits,
    Days,
    LaxDate,
    Name,
    PosCount,
    PosDays,
    PresetName,
    Prob,
    Replications,
    SeatType,
    Seed,
    StrictSchema,
    within,
)
from simulator.scenario.uncertain_schema import DecisionSchema, UncertainBlock, WorldsKey

Share = Annotated[float, within(limits.SHARE)]
Weight = Annotated[float, within(limits.WEIGHT)]
FatigueWeight = Annotated[float, within(limits.FATIGUE_WEIGHT)]
AdaptationWeight = Annotated[float, within(limits.ADAPTATION_WEIGHT)]
Minutes = Annotated[float, within(limits.MINUTES)]

# --------------------------------------------------------------------------- market


class DistSchema(StrictSchema):
    """A distribution; a bare number means ``fixed``."""

    target: ClassVar[type | None] = Dist
    kind: Literal["fixed", "uniform", "beta", "lognormal"] = "fixed"
    a: Annotated[float, within(limits.DIST_PARAMETER)] = 0.0
    b: Annotated[float, within(limits.DIST_PARAMETER)] = 0.0

    @model_validator(mode="before")
    @classmethod
    def _number_is_fixed(cls, given: Any) -> Any:
        if isinstance(given, (int, float)) and not isinstance(given, bool):
            return {"kind": "fixed", "a": float(given)}
        if isinstance(given, dict) and "kind" not in given:
            # a partial mapping (e.g. --set ...check_interval_days.a=2 over a default) would silently
            # become fixed(a): ask for the whole distribution instead
            raise ValueError("a distribution needs its kind (fixed, uniform, beta or lognormal): write it whole, "
                             "e.g. {kind: lognormal, a: 4, b: 0.8}, or a bare number for fixed")
        return given

    @model_validator(mode="after")
    def _sane_spread(self) -> DistSchema:
        if self.kind == "lognormal" and self.b > MAX_LOG_SD:  # e^(3 x 3 sd) is already a factor of 8,000
            raise ValueError(f"a lognormal's log-sd b must be <= {MAX_LOG_SD:g}, got {self.b:g}")
        return self


class SegmentSchema(StrictSchema):
    target: ClassVar[type | None] = Segment
    name: Name
    share: Share | None = None
    base_response: Annotated[float, within(limits.OPEN_PROBABILITY)] | None = None
    active_share: Prob | None = None
    check_interval_days: DistSchema | None = None
    openness: DistSchema | None = None


class MembersSchema(StrictSchema):
    target: ClassVar[type | None] = MemberPopulation
    count: PosCount | None = None
    segments: Annotated[list[SegmentSchema], Field(min_length=1)] | None = None


class RecruiterGroupSchema(StrictSchema):
    target: ClassVar[type | None] = RecruiterGroup
    name: Name
    count: Count
    seat_type: SeatType | None = None
    behaviour: Literal["fixed", "adaptive"] | None = None
    personalization: DistSchema | None = None
    targeting_skill: DistSchema | None = None
    daily_volume: DistSchema | None = None
    bulk_share: DistSchema | None = None
    time_budget_minutes: DistSchema | None = None
    team_size: PosCount | None = None
    segment_weights: dict[str, Weight] | list[Weight] | None = None


class ResponseModelSchema(StrictSchema):
    target: ClassVar[type | None] = ResponseModel
    personalization_effect: Annotated[float, within(limits.PERSONALIZATION_EFFECT)] | None = None
    reference_personalization: Prob | None = None
    bulk_personalization_factor: Prob | None = None
    member_heterogeneity_sd: Annotated[float, within(limits.HETEROGENEITY_SD)] | None = None
    observation_days: PosDays | None = None


class FatigueSchema(StrictSchema):
    target: ClassVar[type | None] = Fatigue
    enabled: bool | None = None
    weight_bulk: FatigueWeight | None = None
    weight_personalized: FatigueWeight | None = None
    half_life_days: Annotated[float, within(limits.HALF_LIFE_DAYS)] | None = None
    sensitivity: Annotated[float, within(limits.FATIGUE_SENSITIVITY)] | None = None


class AdaptationSchema(StrictSchema):
    target: ClassVar[type | None] = Adaptation
    enabled: bool | None = None
    weight_cost: AdaptationWeight | None = None
    weight_scarcity: AdaptationWeight | None = None
    weight_warning: AdaptationWeight | None = None
    weight_improvement: AdaptationWeight | None = None
    max_personalization_shift: Prob | None = None
    max_volume_cut: Prob | None = None
    speed: Prob | None = None
    memory_days: Annotated[float, within(limits.MEMORY_DAYS)] | None = None
    cost_reference: Annotated[float, within(limits.COST_REFERENCE)] | None = None


class AnticipationSchema(StrictSchema):
    target: ClassVar[type | None] = Anticipation
    enabled: bool | None = None
    weight: AdaptationWeight | None = None
    margin: Annotated[float, within(limits.ANTICIPATION_MARGIN)] | None = None


class PlatformTargetingSchema(StrictSchema):
    target: ClassVar[type | None] = PlatformTargeting
    enabled: bool | None = None
    strength: Prob | None = None
    candidates: Annotated[int, within(limits.PLATFORM_CANDIDATES)] | None = None
    requires_threshold: bool | None = None


class SendingModelSchema(StrictSchema):
    target: ClassVar[type | None] = SendingModel
    minutes_personalized: Minutes | None = None
    minutes_bulk: Minutes | None = None
    weekend_factor: Annotated[float, within(limits.WEEKEND_FACTOR)] | None = None
    adaptation: AdaptationSchema | None = None
    anticipation: AnticipationSchema | None = None


class MarketSchema(StrictSchema):
    target: ClassVar[type | None] = Market
    members: MembersSchema | None = None
    recruiters: list[RecruiterGroupSchema] | None = None
    response: ResponseModelSchema | None = None
    fatigue: FatigueSchema | None = None
    sending: SendingModelSchema | None = None
    platform_targeting: PlatformTargetingSchema | None = None


# --------------------------------------------------------------------------- policies


class RefundSchema(StrictSchema):
    kind: Literal["on_silence", "on_response", "never"] | None = None
    window_days: Days | None = None
    latency_days: Days | None = None


class AccrualSchema(StrictSchema):
    kind: Literal["unlimited", "cap", "expire"] | None = None
    cap_months: Annotated[float, within(limits.CAP_MONTHS)] | None = None
    expire_days: PosDays | None = None


class ThresholdSchema(StrictSchema):
    """``on`` / ``off`` or a mapping of threshold fields (a mapping switches it on unless it says otherwise)."""

    enabled: bool | None = None
    min_sends: PosCount | None = None
    window_days: PosDays | None = None
    min_rate: Prob | None = None
    warning_days: Days | None = None
    ack_delay_days: Days | None = None
    improvement_days: PosDays | None = None
    maturity_days: Days | None = None
    review_every_days: PosDays | None = None
    seat_types: list[SeatType] | None = None

    @model_validator(mode="before")
    @classmethod
    def _bool_is_switch(cls, given: Any) -> Any:
        if isinstance(given, bool):
            return {"enabled": given}
        if not isinstance(given, dict):
            fields = ", ".join(name for name in cls.model_fields if name != "target")
            raise ValueError(f"must be on or off (also true/false, yes/no), or a mapping of threshold fields "
                             f"({fields})")
        return given


class GrantSchema(StrictSchema):
    date: LaxDate
    amount: Credits
    seat_types: list[SeatType] | None = None
    name: Name | None = None


class PhaseSchema(StrictSchema):
    """Overrides of the credit rules of one phase."""

    refund: RefundSchema | None = None
    allotments: dict[SeatType, Credits] | None = None
    accrual: AccrualSchema | None = None
    pooling: bool | None = None


class BeforeSchema(PhaseSchema):
    """The phase before ``switch_date``: a preset's rules (``preset: old_2014``) plus overrides."""

    preset: PresetName | None = None


class PolicySchema(PhaseSchema):
    """A named policy: a preset (or nothing = built from scratch) plus overrides."""

    preset: PresetName | None = None
    description: str | None = None
    threshold: ThresholdSchema | None = None
    grants: list[GrantSchema] | None = None
    switch_date: LaxDate | None = None
    before: BeforeSchema | None = None


PolicyName = Annotated[str, Field(pattern=SAFE_NAME_PATTERN)]


# --------------------------------------------------------------------------- the whole scenario


class ScenarioSchema(StrictSchema):
    """The whole experiment."""

    name: Name | None = None
    description: str = ""
    start_date: LaxDate | None = None
    horizon_days: PosDays | None = None
    replications: Replications = 20
    max_replications: Replications = 200
    root_seed: Seed = 20150201
    scale: ScaleFactor | None = None
    baseline: Name | None = None
    market: MarketSchema | None = None
    policies: Annotated[dict[PolicyName, PolicySchema], Field(min_length=1)]
    sweep: SweepSchema | None = None
    sensitivity: SensitivitySchema | None = None
    calibration: CalibrationSchema | None = None
    uncertain: UncertainBlock | None = None
    decision: DecisionSchema | None = None
    worlds: WorldsKey | None = None
    optimize: OptimizeSchema | None = None

