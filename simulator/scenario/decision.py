"""What a decision requires of a policy: the ``decision:`` block's requirements on metrics.

A requirement is ``metric op bound`` (``response_rate >= 0.20``); a policy *satisfices* in a world when
its metric values there meet every requirement.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

Comparison = Literal["<=", ">=", "<", ">"]
COMPARISONS: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt,
}
"""The comparison operators a requirement may use."""


@dataclass(frozen=True)
class Requirement:
    """``metric op bound``: e.g. ``Requirement("response_rate", ">=", 0.20)``."""

    metric: str
    op: Comparison
    bound: float

    @property
    def text(self) -> str:
        return f"{self.metric} {self.op} {self.bound:g}"

    def met(self, values: np.ndarray) -> np.ndarray:
        """Element-wise: which of ``values`` (of this metric) meet the requirement."""
        return np.asarray(COMPARISONS[self.op](np.asarray(values, dtype=np.float64), self.bound), dtype=bool)


_REQUIREMENT = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|<|>|==|=|!=|=<|=>)\s*(\S+)\s*")


def parse_requirement(text: str) -> Requirement:
    """``"metric op bound"`` (``"response_rate >= 0.20"``) as a :class:`Requirement`; ``ValueError`` says why not.

    The metric name is not checked here (the scenario layer checks it against the metric names).
    """
    match = _REQUIREMENT.fullmatch(text)
    if match is None:
        raise ValueError(f"expected 'metric op number' with op one of {', '.join(COMPARISONS)}, "
                         "e.g. 'response_rate >= 0.20'")
    metric, op, bound_text = match.groups()
    if op not in COMPARISONS:
        raise ValueError(f"operator {op!r} is not allowed; allowed: {', '.join(COMPARISONS)}")
    try:
        bound = float(bound_text)
    except ValueError:
        raise ValueError(f"bound {bound_text!r} is not a number") from None
    if not math.isfinite(bound):
        raise ValueError(f"bound {bound_text!r} must be a finite number")
    return Requirement(metric, op, bound)  # type: ignore[arg-type]  # op checked against COMPARISONS


def satisfices(requirements: tuple[Requirement, ...], metrics: Mapping[str, np.ndarray]) -> np.ndarray:
    """Element-wise: where every requirement holds (``metrics`` maps metric name -> values, all one shape)."""
    shape = np.shape(next(iter(metrics.values()))) if metrics else ()
    ok = np.ones(shape, dtype=bool)
    for requirement in requirements:
        ok &= requirement.met(metrics[requirement.metric])
    return ok
