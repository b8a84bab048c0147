"""Built-in credit policies, each rule traced to the source documents in POLICY_FACTS.md.

Where the documents disagree the preset picks one value and says so in ``sources``;
the other value is one override away (e.g. ``recruiter: 100``, ``accrual: {kind: cap, cap_months: 3}``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from simulator.core.config import Accrual, Grant, Phase, Policy, RefundRule, Threshold

OLD_ALLOTMENTS: tuple[tuple[str, int], ...] = (
    ("recruiter", 50),
    ("recruiter_professional_services", 50),
    ("recruiter_lite", 25),
    ("talent_finder", 25),
    ("sales_navigator_team", 25),
    ("sales_navigator_professional", 10),
    ("sales_navigator_basic", 5),
)
"""Monthly credits per seat before 2015 (POLICY_FACTS section 2; seeds 000, 002)."""

NEW_ALLOTMENTS: tuple[tuple[str, int], ...] = (
    ("recruiter", 150),
    ("recruiter_professional_services", 100),
    ("recruiter_lite", 30),
    ("talent_finder", 25),
    ("sales_navigator_team", 30),
    ("sales_navigator_professional", 15),
    ("sales_navigator_basic", 8),
)
"""Monthly credits per seat from 2015 (POLICY_FACTS section 2; seeds 000, 002; Recruiter 150 per 002)."""

THRESHOLD_2014 = Threshold(
    enabled=True, min_sends=100, window_days=14, min_rate=0.13,
    warning_days=14, ack_delay_days=0, improvement_days=14,
)
"""The August 2014 response-rate threshold (POLICY_FACTS section 3; seed 004)."""

LAUNCH_BONUS = Grant(
    date=dt.date(2015, 1, 1), amount=100,
    seat_types=("recruiter", "recruiter_professional_services"), name="launch_bonus_jan_2015",
)
"""+100 credits for Recruiter and Recruiter Professional Services seats in January 2015 (seeds 002, 003)."""

OLD_PHASE = Phase(
    refund=RefundRule(kind="on_silence", window_days=7, latency_days=0),
    allotments=OLD_ALLOTMENTS,
    accrual=Accrual(kind="unlimited"),
    pooling=False,
)

NEW_PHASE = Phase(
    refund=RefundRule(kind="on_response", window_days=90, latency_days=1),
    allotments=NEW_ALLOTMENTS,
    accrual=Accrual(kind="expire", expire_days=90),
    pooling=True,
)

OLD_SOURCES: tuple[tuple[str, str], ...] = (
    ("refund", "no response within 7 days -> credited back (seeds 000, 002)"),
    ("allotments", "50/50/25/25 Recruiter/RPS/Lite/Talent Finder (002); 25/10/5 Sales Navigator (000)"),
    ("accrual", "credits effectively never ran out or expired: hoarding (003)"),
    ("pooling", "not described for the old policy; pooling is announced with the 2015 update (002) - assumption"),
    ("threshold", "100+ sends in 14 days below 13% -> warning, then 14-day Improvement Period (004), from Aug 2014"),
)

NEW_SOURCES: tuple[tuple[str, str], ...] = (
    ("refund", "response (reply, accept or 'Not interested') within 90 days -> credited back (000, 002, 003)"),
    ("refund.latency_days", "credit reappears 24-48 h after the response (comment in 003): "
                            "credited at the end of the day after the response"),
    ("allotments.recruiter", "150 per month (002); 003 says '100 a seat' - override recruiter: 100"),
    ("allotments", "RPS 100, Lite 30, Talent Finder 25 (002); Sales Navigator 30/15/8 (000)"),
    ("accrual", "'InMails can accrue for up to 90 days' (002) read as credits expiring 90 days after grant; "
                "003 reads it as a cap of 3 months of allotment - override accrual: {kind: cap, cap_months: 3}"),
    ("pooling", "Recruiter and Recruiter Professional Services credits pooled across a team (002, 003)"),
    ("grants", "launch bonus +100 for Recruiter and RPS seats in January 2015 (002, 003)"),
    ("threshold", "the August 2014 threshold stays in force (004)"),
)


def old_2014() -> Policy:
    """Refund on silence after 7 days, 2014 allotments, unlimited accrual, threshold on."""
    return Policy(
        name="old_2014", phase=OLD_PHASE, threshold=THRESHOLD_2014,
        description="2014: an InMail with no response within 7 days is credited back",
        sources=OLD_SOURCES,
    )


def new_2015() -> Policy:
    """Refund on response within 90 days, 2015 allotments, 90-day expiry, pooling, launch bonus."""
    return Policy(
        name="new_2015", phase=NEW_PHASE, threshold=THRESHOLD_2014, grants=(LAUNCH_BONUS,),
        description="2015: an InMail with a response within 90 days is credited back",
        sources=NEW_SOURCES,
    )


def pre_threshold_2014() -> Policy:
    """The old credit rule before the August 2014 threshold: no threshold at all."""
    old = old_2014()
    return replace(old, name="pre_threshold_2014", threshold=replace(old.threshold, enabled=False),
                   description="early 2014: refund on silence, no response-rate threshold")


def transition_2015() -> Policy:
    """The old policy until the switch at the end of January 2015, the new one after.

    InMails sent before the switch keep the 7-day refund on silence (seed 000); the switch
    slipped from January 1 to the end of January (000), taken here as 2015-02-01.
    """
    new = new_2015()
    return replace(new, name="transition_2015", switch_date=dt.date(2015, 2, 1), before=OLD_PHASE,
                   description="old rules until 2015-02-01, new rules from then on",
                   sources=(*new.sources, ("switch_date", "end of January 2015 (000); 2015-01-01 was the first plan")))


PRESETS = {
    "old_2014": old_2014,
    "new_2015": new_2015,
    "pre_threshold_2014": pre_threshold_2014,
    "transition_2015": transition_2015,
}
"""Preset name -> factory returning a fresh :class:`Policy`."""


def preset(name: str) -> Policy:
    """Look up a preset by name, with a clear error naming the allowed ones."""
    try:
        return PRESETS[name]()
    except KeyError:
        raise KeyError(f"unknown policy preset {name!r}; allowed: {', '.join(PRESETS)}") from None
