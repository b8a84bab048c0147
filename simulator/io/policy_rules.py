"""Credit policies as text: every rule of a policy as ``{rule path: value}``, side by side, with sources.

Used by ``inmail-sim policies show / diff`` and by the HTML report.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from simulator.core.config import SEAT_TYPES, Phase, Policy


def _value(v: object) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, tuple):
        return ", ".join(str(x) for x in v) or "none"
    return str(v)


def _fields(prefix: str, obj: object) -> dict[str, str]:
    return {f"{prefix}{f.name}": _value(getattr(obj, f.name)) for f in dataclasses.fields(obj)}  # type: ignore[arg-type]


def _phase_rules(prefix: str, ph: Phase) -> dict[str, str]:
    rules = _fields(f"{prefix}refund.", ph.refund)
    rules |= {f"{prefix}allotments.{s}": str(ph.allotment(s)) for s in SEAT_TYPES}
    rules |= _fields(f"{prefix}accrual.", ph.accrual)
    rules[f"{prefix}pooling"] = _value(ph.pooling)
    return rules


def policy_rules(p: Policy) -> dict[str, str]:
    """Every rule of a policy as ``{rule path: value}`` (the rows of ``policies show`` and ``diff``)."""
    rules = _phase_rules("", p.phase)
    rules |= _fields("threshold.", p.threshold)
    rules["grants"] = "; ".join(f"+{g.amount} on {g.date.isoformat()} for {', '.join(g.seat_types)}"
                                for g in p.grants) or "none"
    rules["switch_date"] = p.switch_date.isoformat() if p.switch_date else "none"
    if p.before is not None:
        rules |= _phase_rules("before.", p.before)
    return rules


def source_for(p: Policy, rule: str) -> str:
    """The most specific source note of a rule (``refund.window_days`` falls back to ``refund``)."""
    notes = dict(p.sources)
    parts = rule.removeprefix("before.").split(".")
    for n in range(len(parts), 0, -1):
        key = ".".join(parts[:n])
        if key in notes:
            return notes[key]
    return ""


def rules_side_by_side(policies: Sequence[Policy]) -> tuple[list[str], list[dict[str, str]], list[str]]:
    """Every rule of several policies, aligned: (rule keys in order, ``{rule: value}`` per policy, keys that differ).

    A policy without a switch date has the same rules before any date as after it, so when
    another policy has a ``before`` phase its rules are repeated under ``before.``.  A rule a
    policy lacks reads ``-``.  (``policies diff`` and the HTML report use it.)
    """
    rules = [policy_rules(p) for p in policies]
    if any(p.before is not None for p in policies):
        for p, r in zip(policies, rules, strict=True):
            if p.before is None:
                r |= _phase_rules("before.", p.phase)
    keys = list(dict.fromkeys(k for r in rules for k in r))
    differ = [k for k in keys if len({r.get(k, "-") for r in rules}) > 1]
    return keys, rules, differ
