"""Building blocks of the scenario schema: the strict base class and the constrained field types.

Every range check names the allowed range in words an analyst can act on ("must be in [0, 1]").
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from simulator.core.config import MAX_DAYS, SEAT_TYPES
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

    return AfterValidator(check)


Prob = Annotated[float, in_range(0, 1)]
NonNeg = Annotated[float, in_range(0)]
Positive = Annotated[float, in_range(0, lo_open=True)]
NonNegInt = Annotated[int, in_range(0)]
PosInt = Annotated[int, in_range(1)]
Days = Annotated[int, in_range(0, MAX_DAYS)]
"""A number of days (a window, delay or period): at most 100 years, like the horizon."""
PosDays = Annotated[int, in_range(1, MAX_DAYS)]
MAX_CREDITS = 10**9
Credits = Annotated[int, in_range(0, MAX_CREDITS)]
"""Credits granted at once (far above any real allotment; keeps the ledger's integers exact)."""
MAX_LOG_SD = 3.0
"""Largest lognormal log-sd ``b`` accepted (larger spreads give absurd, overflowing draws)."""
MAX_COUNT = 10**9
Count = Annotated[int, in_range(0, MAX_COUNT)]
PosCount = Annotated[int, in_range(1, MAX_COUNT)]
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

