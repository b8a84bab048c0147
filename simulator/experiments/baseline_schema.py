"""The schema of a baseline file (pydantic): what a readable baseline holds, checked before it is used.

A damaged file - a NaN mean, a negative standard error, a negative seed, an unknown metric, a row
that belongs to none of its policies - is refused with the file, the field path and what is
allowed (:func:`validate_document` raises ``ValueError`` with that text), never compared.

Which metrics a file must hold: a file records the metrics it was saved with (``metrics``); a file
written before that list existed is expected to hold :data:`LEGACY_METRICS`, the metrics of the
package when the format was introduced.  Metrics added since (:data:`ADDED_SINCE_LEGACY`) are
compared when the file has them and are never required of it.
"""

from __future__ import annotations

import math
import warnings
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from simulator.core.metrics import METRIC_NAMES, canonical_metric
from simulator.scenario.errors import show_value

MAX_REPLICATIONS = 100_000
"""Largest number of replications a file may state (the scenario schema's bound)."""

LEGACY_METRICS: tuple[str, ...] = (
    "sent", "sent_bulk", "sent_personalized", "responses", "accepted", "declined", "pending",
    "response_rate", "acceptance_rate", "credits_granted", "credits_spent", "credits_refunded",
    "credits_expired", "net_credit_burn", "credits_per_response", "stockout_recruiter_days",
    "warnings", "improvement_periods", "inmails_per_active_member", "unanswered_per_active_member",
    "mean_member_fatigue",
)
"""The metrics a baseline file without a ``metrics`` list must hold (the package's metrics when the
file format was introduced)."""

ADDED_SINCE_LEGACY: tuple[str, ...] = tuple(m for m in METRIC_NAMES if m not in LEGACY_METRICS)
"""Metrics added after :data:`LEGACY_METRICS` (``unanswered``, ``credits_lost``): not required of old files."""


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


def _non_negative(value: float) -> float:
    if value < 0:
        raise ValueError("must be >= 0 (a standard error)")
    return value


def _count(lo: int, hi: int | None = None) -> AfterValidator:
    def check(value: int) -> int:
        if value < lo or (hi is not None and value > hi):
            raise ValueError(f"must be a whole number >= {lo}" if hi is None else
                             f"must be a whole number in [{lo}, {hi}]")
        return value
    return AfterValidator(check)


Finite = Annotated[float, AfterValidator(_finite)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class StatSchema(_Strict):
    """One (row, metric): mean, standard error, replications."""

    mean: Finite
    se: Annotated[float, AfterValidator(_finite), AfterValidator(_non_negative)]
    n: Annotated[int, _count(1, MAX_REPLICATIONS)]


class BaselineSchema(_Strict):
    """A baseline file (see :meth:`simulator.experiments.baseline_file.Baseline.to_dict`)."""

    format: Literal["inmail-sim-baseline/1"]
    scenario: Annotated[str, Field(min_length=1)]
    scenario_file: str | None = None
    scenario_hash: Annotated[str, Field(min_length=1)]
    config_hash: str = ""
    overrides: list[str]
    root_seed: Annotated[int, _count(0)]
    replications: Annotated[int, _count(1, MAX_REPLICATIONS)]
    baseline_policy: Annotated[str, Field(min_length=1)]
    policies: Annotated[list[str], Field(min_length=1)]
    versions: dict[str, str]
    git_revision: str | None = None
    created: str = ""
    metrics: list[str] | None = None
    statistics: dict[str, dict[str, StatSchema]]


def known_metric(name: str) -> str | None:
    """``name`` if the package records it; a deprecated name no longer recorded -> its new name; else None."""
    if name in METRIC_NAMES:
        return name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        new = canonical_metric(name)
    return new if new in METRIC_NAMES else None


_TYPE_MESSAGES: dict[str, str] = {
    "int_type": "must be a whole number", "float_type": "must be a number", "string_type": "must be text",
    "list_type": "must be a list", "dict_type": "must be an object", "model_type": "must be an object",
    "too_short": "must not be empty", "string_too_short": "must not be empty",
    "literal_error": "must be 'inmail-sim-baseline/1'",
}


def _pydantic_problems(exc: ValidationError, data: Any) -> list[str]:
    problems = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        value = error.get("input")
        kind = error["type"]
        if kind == "missing":
            problems.append(f"field {'.'.join(loc)!r} is missing")
            continue
        if kind == "extra_forbidden":
            allowed = ", ".join(StatSchema.model_fields if len(loc) > 1 else BaselineSchema.model_fields)
            problems.append(f"{'.'.join(loc)}: unknown field; allowed: {allowed}")
            continue
        message = str(error.get("ctx", {}).get("error", error["msg"])) if kind == "value_error" else \
            _TYPE_MESSAGES.get(kind, error["msg"])
        if kind in ("float_type", "int_type") and value is None:
            message = "must be a number (null is not one)"
        problems.append(f"{'.'.join(loc)} = {show_value(value)}: {message}")
    return problems


def _row_problems(doc: BaselineSchema) -> list[str]:
    rows = expected_rows(doc.policies, doc.baseline_policy)
    problems = []
    if doc.baseline_policy not in doc.policies:
        problems.append(f"baseline_policy = {doc.baseline_policy!r}: must be one of the policies: "
                        f"{', '.join(doc.policies)}")
    for row, stats in doc.statistics.items():
        if row not in rows:
            problems.append(f"statistics.{row}: unknown row; allowed: {', '.join(rows)}")
        for metric in stats:
            if known_metric(metric) is None:
                problems.append(f"statistics.{row}.{metric}: unknown metric; allowed: {', '.join(METRIC_NAMES)}")
    for position, metric in enumerate(doc.metrics or []):
        if known_metric(metric) is None:
            problems.append(f"metrics.{position} = {metric!r}: unknown metric; allowed: {', '.join(METRIC_NAMES)}")
    return problems


def expected_rows(policies: list[str] | tuple[str, ...], baseline_policy: str) -> list[str]:
    """The rows of a baseline: every policy, then every paired difference ``"new - old"``."""
    return [*policies, *(f"{p} - {baseline_policy}" for p in policies if p != baseline_policy)]


def validate_document(data: Any, where: str) -> BaselineSchema:
    """The parsed document; ``ValueError`` listing every problem as ``FILE: field.path = value: allowed``."""
    try:
        doc = BaselineSchema.model_validate(data)
    except ValidationError as exc:
        problems = _pydantic_problems(exc, data)
    else:
        problems = _row_problems(doc)
        if not problems:
            return doc
    shown = problems[:10] + ([f"... and {len(problems) - 10} more problems"] if len(problems) > 10 else [])
    raise ValueError("\n".join(f"{where}: malformed baseline file: {p}" for p in shown))


def canonical_names(names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Known metric names with deprecated ones no longer recorded mapped to their new names, in order."""
    out = [known_metric(n) for n in names]
    return tuple(dict.fromkeys(n for n in out if n is not None))
