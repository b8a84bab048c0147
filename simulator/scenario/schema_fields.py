"""Building blocks of the scenario schema: the strict base class and the constrained field types.

Every range check names the allowed range in words an analyst can act on ("must be in [0, 1]").
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from simulator.core import limits
from simulator.core.config import SEAT_TYPES
from simulator.core.limits import Range
from simulator.core.metrics import METRIC_NAMES
from simulator.core.presets import PRESETS


def in_range(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
             hi_open: bool = False) -> AfterValidator:
    """A validator with an analyst-readable message naming the allowed range."""
    if lo is not None and hi is not None:
        text = f"must be in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    elif lo is not None:
        text = f"must be {'>' if lo_open else '>='} {lo:g}"
    else:
        text = f"must be {'<' if hi_open else '<='} {hi:g}"

    def check(value: float) -> float:
        ok = True
        if lo is not None:
            ok &= value > lo if lo_open else value >= lo
        if hi is not None:
            ok &= value < hi if hi_open else value <= hi
        if not ok:
            raise ValueError(text)
        return value

    check.range_text = text  # type: ignore[attr-defined]  # read by schema_issues for "whole number" errors
    return AfterValidator(check)


def within(allowed: Range) -> AfterValidator:
    """The validator of a range of :mod:`simulator.core.limits` (the one the config classes check too)."""
    return in_range(allowed.lo, allowed.hi, lo_open=allowed.lo_open, hi_open=allowed.hi_open)


Prob = Annotated[float, within(limits.PROBABILITY)]
Days = Annotated[int, within(limits.DAYS)]
"""A number of days (a window, delay or period): at most 100 years, like the horizon."""
PosDays = Annotated[int, within(limits.POSITIVE_DAYS)]
Credits = Annotated[int, within(limits.CREDITS)]
"""Credits granted at once (far above any real allotment; keeps the ledger's integers exact)."""
Count = Annotated[int, within(limits.COUNT)]
PosCount = Annotated[int, within(limits.POSITIVE_COUNT)]
Seed = Annotated[int, within(limits.SEED)]
Replications = Annotated[int, within(limits.REPLICATIONS)]
Finite = Annotated[float, in_range(-1e12, 1e12)]
"""A value a study block compares with a metric or applies to a field (checked there again)."""
Name = Annotated[str, Field(min_length=1)]
if TYPE_CHECKING:  # the type checker cannot read Literal[...] built from a tuple at run time
    SeatType = str
    PresetName = str
    MetricName = str
else:
    SeatType = Literal[SEAT_TYPES]
    PresetName = Literal[tuple(PRESETS)]
    MetricName = Literal[METRIC_NAMES]
LaxDate = Annotated[dt.date, Field(strict=False)]


class StrictSchema(BaseModel):
    """Strict base: unknown keys are errors, no silent string-to-number coercion.

    ``target`` is the config class a schema mirrors (None: built by hand, or not a config object).
    """

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
    target: ClassVar[type | None] = None

