"""The allowed range of every numeric parameter: wide enough for any sensible analysis, narrow
enough that the engine's arithmetic stays finite.

The config classes (:mod:`simulator.core.config`) check their fields against these ranges and the
scenario schema names the same ranges in its messages, so the API and the files refuse the same
values.  The bounds follow from the equations of docs/model.md section 7 and are tabled in
docs/model.md section 8.5:

* logit terms: ``personalization_effect`` x a personalization difference and the member
  heterogeneity ``sd`` x a normal draw stay far inside exp's range (about 700);
* fatigue is stored in float32 (max 3e38, rescaled at 1e30 per unit): weights and the
  sensitivity stay small enough that fatigue and ``sensitivity * fatigue`` cannot overflow in a run;
* a lognormal's log-sd is at most 3 (``e^(3 x 6)`` is already a factor of 6.6e7 at the extreme draw)
  and distribution parameters at most 1e20 in size (a check interval of 1e20 days is "never reads";
  1/log(1 - 1/c) of the largest draw still fits the float32 member state);
* shares and weights are normalized: each is finite and at most 1e9, and their sum is positive.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Range:
    """A closed (or half-open) interval of allowed values, with the text a message shows."""

    lo: float
    hi: float
    lo_open: bool = False
    hi_open: bool = False

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, numbers.Real) or isinstance(value, bool):
            return False
        number = int(value) if isinstance(value, numbers.Integral) else float(value)  # huge ints stay exact
        above = number > self.lo if self.lo_open else number >= self.lo
        below = number < self.hi if self.hi_open else number <= self.hi
        return bool(above and below)  # NaN is in no range

    @property
    def text(self) -> str:
        """The interval as an analyst reads it, e.g. ``[0, 100]`` or ``(0, 1)``."""
        return f"{'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}{')' if self.hi_open else ']'}"


MAX_DAYS = 36_500
"""Upper bound of every day count (a century): calendars are arrays over days."""
MAX_COUNT = 10**9
"""Upper bound of member, recruiter and seat counts (the memory check bounds the real size)."""
MAX_CREDITS = 10**9
"""Credits granted at once (far above any real allotment; keeps the ledger's integers exact)."""
MAX_LOG_SD = 3.0
"""Largest lognormal log-sd ``b`` accepted (larger spreads give absurd, overflowing draws)."""

PROBABILITY = Range(0.0, 1.0)
OPEN_PROBABILITY = Range(0.0, 1.0, lo_open=True, hi_open=True)
DIST_PARAMETER = Range(-1e20, 1e20)
"""``a`` and ``b`` of any distribution (medians, bounds, means, concentrations)."""
LOG_SD = Range(0.0, MAX_LOG_SD)
SHARE = Range(0.0, 1e9, lo_open=True)
"""A segment's relative share (normalized over the segments)."""
WEIGHT = Range(0.0, 1e9)
"""A recruiter group's segment weight (normalized; their sum must be positive)."""
COUNT = Range(0, MAX_COUNT)
POSITIVE_COUNT = Range(1, MAX_COUNT)
CREDITS = Range(0, MAX_CREDITS)
DAYS = Range(0, MAX_DAYS)
POSITIVE_DAYS = Range(1, MAX_DAYS)
PERSONALIZATION_EFFECT = Range(0.0, 100.0)
"""Logit per unit of personalization: 100 moves the logit by at most 100."""
HETEROGENEITY_SD = Range(0.0, 10.0)
"""Logit sd of the member effect: 10 already spreads answer probabilities from ~0 to ~1."""
FATIGUE_WEIGHT = Range(0.0, 100.0)
"""Fatigue units per InMail received."""
FATIGUE_SENSITIVITY = Range(0.0, 1000.0)
"""Log answer-probability lost per fatigue unit (exp(-s F) only underflows to 0: no overflow risk
from s alone; 1000 already silences a member after one InMail)."""
HALF_LIFE_DAYS = Range(0.1, MAX_DAYS)
"""A tenth of a day (fatigue gone by the next day) to a century."""
ADAPTATION_WEIGHT = Range(0.0, 100.0)
"""Weight of one pressure term (the pressure is clipped to [0, 1])."""
MEMORY_DAYS = Range(1.0, MAX_DAYS)
ANTICIPATION_MARGIN = Range(0.0, 10.0, lo_open=True)
"""How far above the bar (a multiple of it) anticipation starts: (0, 10]."""
PLATFORM_CANDIDATES = Range(1, 16)
"""Members the platform surfaces per InMail it steers (each one more gather per InMail)."""
COST_REFERENCE = Range(0.0, 1.0, hi_open=True)
MINUTES = Range(0.0, 1440.0)
"""Minutes one InMail takes: at most a whole day."""
WEEKEND_FACTOR = Range(0.0, 10.0)
CAP_MONTHS = Range(0.0, 1200.0)
REPLICATIONS = Range(1, 100_000)
SEED = Range(0, 10**18)
"""A root or design seed (numpy's SeedSequence takes any non-negative integer; 1e18 is plenty)."""
