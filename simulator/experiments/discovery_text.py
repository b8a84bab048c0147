"""The plain sentence of a scenario discovery: "new loses on response rate when x < 0.7 and y > 4 (...)".

A difference condition at 0 on a metric whose better side is plain
(:data:`HIGHER_IS_BETTER`) reads as the policy *winning* or *losing*;
any other condition is quoted as written, followed by "holds".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from simulator.experiments.discovery import Condition
    from simulator.experiments.prim import PrimResult, PrimSettings


HIGHER_IS_BETTER: dict[str, bool] = {
    "responses": True, "accepted": True, "response_rate": True, "acceptance_rate": True,
    "unanswered": False, "stockout_recruiter_days": False, "warnings": False, "improvement_periods": False,
    "unanswered_per_active_member": False, "mean_member_fatigue": False,
}
"""Metrics whose better side is plain (recruiters and members agree): a diff condition on them at 0 reads
as the policy *winning* or *losing*. Credit metrics have no such side (LinkedIn and recruiters disagree)."""


def number(value: float) -> str:
    """A bound as a reader wants it: 3 significant digits, thousands written out."""
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def subject(condition: Condition) -> str:
    """"new loses on response rate" where the direction is plain, else the condition and "holds"."""
    words = condition.metric.replace("_", " ")
    higher = HIGHER_IS_BETTER.get(condition.metric)
    if condition.kind == "diff" and condition.bound == 0 and higher is not None:
        below = condition.op in ("<", "<=")
        return f"{condition.policy} {'loses' if below == higher else 'wins'} on {words}"
    return f"{condition.text} holds"


def restriction_text(name: str, low: float, high: float, prior_low: float, prior_high: float) -> str:
    """One restriction: ``name > low``, ``name < high`` or ``name between low and high``."""
    if low > prior_low and high < prior_high:
        return f"{name} between {number(low)} and {number(high)}"
    if low > prior_low:
        return f"{name} > {number(low)}"
    return f"{name} < {number(high)}"


def joined(parts: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"


def sentence(condition: Condition, result: PrimResult | None, n_true: int, n_worlds: int,
             settings: PrimSettings) -> str:
    """The one-sentence answer (restrictions ordered by quasi-p, the most significant first)."""
    if n_true == 0:
        return f"{condition.text} holds in none of the {n_worlds} worlds: there is no region to find"
    if n_true == n_worlds:
        return f"{condition.text} holds in all {n_worlds} worlds: there is no region to find"
    share = f"in {n_true / n_worlds:.0%} of the {n_worlds} worlds"
    if result is None or result.box is None:
        floor = f"coverage >= {settings.min_coverage:.0%}"
        if settings.threshold > 0:
            floor += f" and density >= {settings.threshold:.0%}"
        return (f"{subject(condition)} {share}, but no box reaches {floor}: lower --min-coverage or --threshold "
                f"(the peeling trajectory is in trajectory.csv)")
    box = result.box
    if not box.restricted:
        return f"{subject(condition)} {share}, in no particular region of the uncertain parameters"
    order = sorted(box.restricted, key=lambda j: (result.quasi_p.get(result.names[j], np.inf), j))
    parts = [restriction_text(result.names[j], float(box.low[j]), float(box.high[j]),
                              float(result.prior_low[j]), float(result.prior_high[j])) for j in order]
    return f"{subject(condition)} when {joined(parts)} (coverage {box.coverage:.0%}, density {box.density:.0%})"
