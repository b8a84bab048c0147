"""The channels of an explanation: market mechanisms that can be switched off in both worlds.

A channel is a way a policy difference comes about on the market side (:mod:`simulator.experiments.explain`
decomposes the difference over them, exact Shapley).  Each has an off switch:

* ``credit_limit`` - who sends: off gives every seat :data:`UNLIMITED_CREDITS` a month in every phase.
* ``adaptation`` - how adaptive recruiters send: off switches their pressure off.  When
  ``sanction_pressure`` or ``anticipation`` is a channel of the same decomposition, that part of the
  pressure is *theirs*, and ``adaptation`` keeps only the rest (credit cost and scarcity): the
  channels then split the pressure into disjoint terms instead of nesting one inside the other
  (a nested channel would share half of its effect with ``adaptation`` under Shapley).
* ``sanction_pressure`` - the pressure of a warning and of an Improvement Period on adaptive
  recruiters (``adaptation.weight_warning`` and ``weight_improvement``): off sets both weights to 0.
* ``anticipation`` - adaptive recruiters reacting to the published threshold before any warning:
  off means ``market.sending.anticipation.enabled = false``.
* ``platform_targeting`` - the platform surfacing likely responders: off means
  ``market.platform_targeting.enabled = false``.
* ``fatigue`` - the shared-fatigue externality: ``market.fatigue.enabled = false``.
* ``threshold`` - only when both policies have the same threshold (otherwise it is a rule):
  ``threshold.enabled = false`` in both.

A pressure term set to zero leaves an adaptive recruiter exactly where it starts, so switching
every part of adaptation off gives the same numbers as ``adaptation.enabled = false``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

from simulator.core.config import SEAT_TYPES, Market, Phase, Policy

CHANNELS: tuple[str, ...] = ("credit_limit", "adaptation", "sanction_pressure", "anticipation",
                             "platform_targeting", "fatigue", "threshold")
"""Market-side mechanisms switched off in both worlds (in the order the tables show them)."""

PRESSURE_PARTS: tuple[str, ...] = ("sanction_pressure", "anticipation")
"""Channels that take their part of the adaptation pressure away from ``adaptation``."""

CHANNEL_LABELS: dict[str, str] = {
    "credit_limit": "who sends: credits run out",
    "adaptation": "how they send: adaptation",
    "sanction_pressure": "warnings / Improvement Periods",
    "anticipation": "anticipation of the threshold",
    "platform_targeting": "platform targeting",
    "fatigue": "member fatigue",
    "threshold": "response-rate threshold",
}

UNLIMITED_CREDITS = 1_000_000
"""Monthly credits per seat when the credit limit is switched off: far above any sending volume."""


def _adaptive(market: Market) -> bool:
    return market.sending.adaptation.enabled and any(g.behaviour == "adaptive" and g.count
                                                     for g in market.recruiters)


def available_channels(market: Market, base: Policy, new: Policy, rules: Sequence[str]) -> list[str]:
    """Channels that are on in the scenario and can be switched off in both worlds (order of :data:`CHANNELS`)."""
    adaptation = market.sending.adaptation
    thresholds = base.threshold.enabled or new.threshold.enabled
    on = {
        "credit_limit": True,
        "adaptation": _adaptive(market),
        "sanction_pressure": _adaptive(market) and thresholds
        and adaptation.weight_warning + adaptation.weight_improvement > 0,
        "anticipation": _adaptive(market) and market.sending.anticipation.enabled,
        "platform_targeting": market.platform_targeting.enabled,
        "fatigue": market.fatigue.enabled,
        "threshold": "threshold" not in rules and base.threshold.enabled,
    }
    return [c for c in CHANNELS if on[c]]


def default_channels(available: Sequence[str]) -> list[str]:
    """The channels of a decomposition when none are asked for: every available one, except
    ``sanction_pressure`` when the threshold itself is a channel (it is then part of that channel;
    ask for it with ``--channels``).  Keeps the usual explanation at ``2^4`` channel worlds."""
    return [c for c in available if not (c == "sanction_pressure" and "threshold" in available)]


def adaptation_parts(players: Iterable[str]) -> list[str]:
    """What the ``adaptation`` channel switches off, given every channel of the decomposition."""
    players = set(players)
    parts = ["credit cost", "scarcity"]
    if "sanction_pressure" not in players:
        parts.append("warnings / IPs")
    if "anticipation" not in players:
        parts.append("anticipation")
    return parts


def channel_label(channel: str, players: Iterable[str]) -> str:
    """The row label of ``channel`` in a decomposition over ``players`` (adaptation names what it keeps)."""
    players = set(players)
    if channel == "adaptation" and players & set(PRESSURE_PARTS):
        return "how they send: adaptation to " + ", ".join(adaptation_parts(players))
    return CHANNEL_LABELS.get(channel, channel)


def _unlimited(phase: Phase) -> Phase:
    return dataclasses.replace(phase, allotments=tuple((s, UNLIMITED_CREDITS) for s in SEAT_TYPES))


def _sending(market: Market, **adaptation: Any) -> Market:
    sending = market.sending
    return dataclasses.replace(market, sending=dataclasses.replace(
        sending, adaptation=dataclasses.replace(sending.adaptation, **adaptation)))


def _disabled(market: Market, *path: str) -> Market:
    """``market`` with ``enabled = False`` on the nested config object at ``path`` (e.g. sending, anticipation)."""
    def off(obj: Any, rest: tuple[str, ...]) -> Any:
        if not rest:
            return dataclasses.replace(obj, enabled=False)
        return dataclasses.replace(obj, **{rest[0]: off(getattr(obj, rest[0]), rest[1:])})
    return off(market, path)


def switch_off(market: Market, policy: Policy, off: Iterable[str],
               players: Iterable[str] = ()) -> tuple[Market, Policy]:
    """The world with the channels ``off`` switched off (see the module docstring for each).

    ``players``: every channel of the decomposition (``off`` is added to it); it decides which part
    of the pressure ``adaptation`` owns.  With neither ``sanction_pressure`` nor ``anticipation``
    among them, ``adaptation`` off is ``adaptation.enabled = false``, as it always was.
    """
    off = set(off)
    unknown = off - set(CHANNELS)
    if unknown:
        raise ValueError(f"unknown channel(s) {sorted(unknown)}; allowed: {', '.join(CHANNELS)}")
    players = set(players) | off
    split = bool(players & set(PRESSURE_PARTS))
    if "adaptation" in off and not split:
        market = _disabled(market, "sending", "adaptation")
    elif "adaptation" in off:
        market = _sending(market, weight_cost=0.0, weight_scarcity=0.0)
        if "sanction_pressure" not in players:
            market = _sending(market, weight_warning=0.0, weight_improvement=0.0)
        if "anticipation" not in players:
            market = _disabled(market, "sending", "anticipation")
    if "sanction_pressure" in off:
        market = _sending(market, weight_warning=0.0, weight_improvement=0.0)
    if "anticipation" in off:
        market = _disabled(market, "sending", "anticipation")
    if "platform_targeting" in off:
        market = _disabled(market, "platform_targeting")
    if "fatigue" in off:
        market = _disabled(market, "fatigue")
    if "credit_limit" in off:
        policy = dataclasses.replace(policy, phase=_unlimited(policy.phase),
                                     before=_unlimited(policy.before) if policy.before is not None else None)
    if "threshold" in off:
        policy = dataclasses.replace(policy, threshold=dataclasses.replace(policy.threshold, enabled=False))
    return market, policy


__all__ = ["CHANNELS", "CHANNEL_LABELS", "PRESSURE_PARTS", "UNLIMITED_CREDITS", "adaptation_parts",
           "available_channels", "channel_label", "default_channels", "switch_off"]
