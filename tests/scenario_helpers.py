"""Shared pieces for the scenario / experiment / CLI tests: a tiny market and file helpers."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"

TINY: dict[str, Any] = {
    "name": "tiny",
    "description": "a market small enough for unit tests",
    "start_date": "2015-02-01",
    "horizon_days": 40,
    "replications": 3,
    "max_replications": 12,
    "root_seed": 7,
    "baseline": "old",
    "policies": {"old": {"preset": "old_2014"}, "new": {"preset": "new_2015"}},
    "market": {
        "members": {"count": 1500, "segments": [
            {"name": "a", "share": 0.6, "base_response": 0.3},
            {"name": "b", "share": 0.4, "base_response": 0.2},
        ]},
        "recruiters": [
            {"name": "corporate", "count": 24, "seat_type": "recruiter", "team_size": 4,
             "daily_volume": {"kind": "lognormal", "a": 5, "b": 0.6}},
            {"name": "lite", "count": 8, "seat_type": "recruiter_lite", "behaviour": "fixed",
             "daily_volume": 2},
            {"name": "bulk", "count": 2, "seat_type": "recruiter", "behaviour": "fixed",
             "daily_volume": {"kind": "lognormal", "a": 30, "b": 0.5},
             "bulk_share": {"kind": "beta", "a": 0.85, "b": 10}},
        ],
    },
}
"""A two-policy scenario that runs a replication in a few hundredths of a second."""


def tiny(**changes: Any) -> dict[str, Any]:
    """A deep copy of :data:`TINY` with top-level keys replaced."""
    data = copy.deepcopy(TINY)
    data.update(changes)
    return data


def write_yaml(path: Path, data: dict[str, Any] | str) -> Path:
    """Write a scenario (a mapping, or YAML text as is) and return its path."""
    text = data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path
