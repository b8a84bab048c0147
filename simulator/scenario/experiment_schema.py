"""Schema of the ``sweep:``, ``sensitivity:`` and ``calibration:`` blocks of a scenario.

``inmail-sim sweep`` / ``sensitivity`` / ``calibrate`` read them (simulator.experiments) and ``run``
ignores them.  Here only their shape is checked; whether each dotted path, metric and label fits
the scenario is checked by the experiment that applies them (as ``--set`` overrides).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from simulator.scenario.schema_fields import (
    Finite,
    MetricName,
    Name,
    Replications,
    Seed,
    StrictSchema,
    in_range,
)

Samples = Annotated[int, in_range(1, 100_000)]
"""Design points or samples of a study (each runs the scenario's policies: the memory and time
checks of the experiment bound the real cost)."""
Weight = Annotated[float, in_range(0, 1e6)]
Scale = Annotated[float, in_range(1e-9, 1e9)]
"""A target's scale: the squared misfit is divided by its square, so it stays away from 0."""

# --------------------------------------------------------------------------- sweep and sensitivity blocks


class ParameterRangeSchema(StrictSchema):
    """A numeric range of one parameter: ``{low, high}``; ``num`` evenly spaced points for a grid."""

    low: Finite
    high: Finite
    num: Annotated[int, in_range(2, 100_000)] | None = None
    integer: bool | None = None
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> ParameterRangeSchema:
        if not self.low < self.high:
            raise ValueError(f"needs low < high, got low={self.low:g}, high={self.high:g}")
        if self.log and self.low <= 0:
            raise ValueError(f"log: true needs low > 0, got low={self.low:g}")
        return self


SweepValues = Annotated[list[Any], Field(min_length=1)] | ParameterRangeSchema


class SweepSchema(StrictSchema):
    """``sweep:``: a grid (lists of values / ``{low, high, num}``) or ``n`` QMC points over ranges."""

    method: Literal["grid", "lhs", "sobol", "halton"] = "grid"
    n: Samples | None = None
    seed: Seed | None = None
    seeds: Literal["common", "per_point"] = "common"
    replications: Replications | None = None
    metrics: Annotated[list[MetricName], Field(min_length=1)] | None = None
    parameters: Annotated[dict[str, SweepValues], Field(min_length=1)]
    reference: Annotated[dict[str, Any], Field(min_length=1)] | Annotated[int, in_range(0, 100_000)] | None = None
    """The point every other point is compared with: ``{path or last name: value}`` or a point id."""


class SensitivitySchema(StrictSchema):
    """``sensitivity:``: Sobol indices and a tornado chart of chosen outputs over parameter ranges."""

    parameters: Annotated[dict[str, ParameterRangeSchema], Field(min_length=1)] | None = None
    outputs: Annotated[list[Name], Field(min_length=1)] | None = None
    policy: Name | None = None
    n: Samples = 32
    replications: Replications = 2
    bootstrap: Annotated[int, in_range(0, 100_000)] = 999
    confidence: Annotated[float, in_range(0, 1, lo_open=True, hi_open=True)] = 0.95
    seed: Seed | None = None
    sobol: bool = True
    tornado: bool = True


# --------------------------------------------------------------------------- calibration block


class CalibrationParameterSchema(StrictSchema):
    """A free parameter: one market path (or several tied ones, ``{path: factor}``) and its range."""

    name: Name | None = None
    path: Name | None = None
    paths: Annotated[list[Name], Field(min_length=1)] | Annotated[dict[str, Finite], Field(min_length=1)] | None = None
    low: Finite
    high: Finite
    start: Finite | None = None

    @model_validator(mode="after")
    def _consistent(self) -> CalibrationParameterSchema:
        if (self.path is None) == (self.paths is None):
            raise ValueError("give either path (one field) or paths (several fields tied to one value)")
        if not self.low < self.high:
            raise ValueError(f"needs low < high, got low={self.low:g}, high={self.high:g}")
        if self.start is not None and not self.low <= self.start <= self.high:
            raise ValueError(f"start={self.start:g} must lie in [low, high] = [{self.low:g}, {self.high:g}]")
        return self


class CalibrationTargetSchema(StrictSchema):
    """A figure to reproduce: a point ``value``, a band ``low``..``high``, or a one-sided bound; observed
    under ``policy`` (of ``scenario``, another file, when given), or a comparison of ``policy`` with
    ``baseline`` (``relative`` change or difference, per replication)."""

    name: Name | None = None
    metric: Name
    by: Name | None = None
    label: Name | None = None
    value: Finite | None = None
    low: Finite | None = None
    high: Finite | None = None
    scale: Scale | None = None
    weight: Weight = 1.0
    source: str = ""
    scenario: Name | None = None
    policy: Name | None = None
    baseline: Name | None = None
    relative: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> CalibrationTargetSchema:
        if (self.by is None) != (self.label is None):
            raise ValueError("by and label go together (e.g. by: personalization_band, label: high)")
        if self.value is not None and (self.low is not None or self.high is not None):
            raise ValueError("give either value (a point) or low/high (a band or a bound), not both")
        if self.value is None and self.low is None and self.high is None:
            raise ValueError("needs value, or low and/or high")
        if self.low is not None and self.high is not None and not self.low < self.high:
            raise ValueError(f"needs low < high, got low={self.low:g}, high={self.high:g}")
        return self


class CalibrationCheckSchema(StrictSchema):
    """A validation figure NOT used in fitting: a policy comparison predicted by the fitted market."""

    name: Name
    scenario: Name | None = None
    policy: Name | None = None
    baseline: Name | None = None
    metric: Name = "response_rate"
    relative: bool = True
    low: Finite | None = None
    high: Finite | None = None
    source: str = ""


class CalibrationSchema(StrictSchema):
    """``calibration:``: free market parameters, the figures to reproduce, and validation figures."""

    policy: Name | None = None
    replications: Annotated[int, in_range(1, 10_000)] = 4
    check_replications: Annotated[int, in_range(2, 10_000)] = 10
    method: Literal["nelder-mead", "powell"] = "nelder-mead"
    max_evaluations: Annotated[int, in_range(1, 100_000)] = 80
    tolerance: Annotated[float, in_range(0, 1e6, lo_open=True)] = 0.002
    regularization: Weight = 0.01
    parameters: Annotated[list[CalibrationParameterSchema], Field(min_length=1)] | None = None
    targets: Annotated[list[CalibrationTargetSchema], Field(min_length=1)] | None = None
    validation: list[CalibrationCheckSchema] | None = None

