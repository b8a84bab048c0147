"""Credit policies as text: every rule of a policy as ``{rule path: value}``, side by side, with sources.

Used by ``inmail-sim policies show / diff`` and by the HTML report.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from simulator.core.config import SEAT_TYPES, Phase, Policy
from simulator.io.tables import MISSING


def _value(value: object) -> str:
    """A rule's value as text: ``true``/``false``, a comma-separated list (``none`` when empty), or as is."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return ", ".join(str(item) for item in value) or "none"
    return str(value)


def _fields(prefix: str, rule_group: object) -> dict[str, str]:
    """Every field of a dataclass of rules, under ``prefix``."""
    return {f"{prefix}{field.name}": _value(getattr(rule_group, field.name))
            for field in dataclasses.fields(rule_group)}  # type: ignore[arg-type]


def _phase_rules(prefix: str, phase: Phase) -> dict[str, str]:
    """The rules of one phase of a policy (refunds, allotments, accrual, pooling), under ``prefix``."""
    rules = _fields(f"{prefix}refund.", phase.refund)
    rules |= {f"{prefix}allotments.{seat}": str(phase.allotment(seat)) for seat in SEAT_TYPES}
    rules |= _fields(f"{prefix}accrual.", phase.accrual)
    rules[f"{prefix}pooling"] = _value(phase.pooling)
    return rules


def policy_rules(policy: Policy) -> dict[str, str]:
    """Every rule of a policy as ``{rule path: value}`` (the rows of ``policies show`` and ``diff``)."""
    rules = _phase_rules("", policy.phase)
    rules |= _fields("threshold.", policy.threshold)
    rules["grants"] = "; ".join(f"+{grant.amount} on {grant.date.isoformat()} for {', '.join(grant.seat_types)}"
                                for grant in policy.grants) or "none"
    rules["switch_date"] = policy.switch_date.isoformat() if policy.switch_date else "none"
    if policy.before is not None:
        rules |= _phase_rules("before.", policy.before)
    return rules


def source_for(policy: Policy, rule: str) -> str:
    """The most specific source note of a rule (``refund.window_days`` falls back to ``refund``)."""
    notes = dict(policy.sources)
    parts = rule.removeprefix("before.").split(".")
    for depth in range(len(parts), 0, -1):
        key = ".".join(parts[:depth])
        if key in notes:
            return notes[key]
    return ""


def rule_text(rules: dict[str, str], rule: str) -> str:
    """The value of ``rule`` in one policy's ``rules``, :data:`~simulator.io.tables.MISSING` when it has none."""
    return rules.get(rule, MISSING)


def rules_side_by_side(policies: Sequence[Policy]) -> tuple[list[str], list[dict[str, str]], list[str]]:
    """Every rule of several policies, aligned: (rule keys in order, ``{rule: value}`` per policy, keys that differ).

    A policy without a switch date has the same rules before any date as after it, so when
    another policy has a ``before`` phase its rules are repeated under ``before.``.  A rule a
    policy lacks reads :data:`~simulator.io.tables.MISSING` (:func:`rule_text`).  (``policies diff``
    and the HTML report use it.)
    """
    rules = [policy_rules(p) for p in policies]
    if any(p.before is not None for p in policies):
        for policy, of_policy in zip(policies, rules, strict=True):
            if policy.before is None:
                of_policy |= _phase_rules("before.", policy.phase)
    keys = list(dict.fromkeys(key for of_policy in rules for key in of_policy))
    differ = [key for key in keys if len({rule_text(of_policy, key) for of_policy in rules}) > 1]
    return keys, rules, differ
