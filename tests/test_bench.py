"""The benchmark's mechanism-cost option switches off what it says, and prints the right shares."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from bench_market import default_market
from bench_mechanisms import MECHANISM_VARIANTS, mechanism_variant, print_mechanisms

from simulator import RunConfig, preset, run_replication


def test_each_variant_switches_off_exactly_its_mechanisms() -> None:
    market, policy = default_market(40, 2_000), preset("new_2015")
    expected = {
        "full model": (True, True, True),
        "no fatigue": (False, True, True),
        "no adaptation": (True, False, True),
        "no threshold": (True, True, False),
        "none of the three": (False, False, False),
    }
    assert set(expected) == set(MECHANISM_VARIANTS)
    for name, flags in expected.items():
        m, p = mechanism_variant(name, market, policy)
        assert (m.fatigue.enabled, m.sending.adaptation.enabled, p.threshold.enabled) == flags, name
        assert m.recruiters == market.recruiters and m.members == market.members
        assert p.phases == policy.phases


def test_unknown_variant_names_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match="allowed: full model, no fatigue"):
        mechanism_variant("no pooling", default_market(4, 100), preset("new_2015"))


def test_switched_off_mechanisms_leave_no_trace_in_a_run() -> None:
    """120 days of 60 recruiters (a 1.5% bulk-heavy group that the threshold catches at full size)."""
    market, policy = default_market(60, 3_000), preset("new_2015")
    run = RunConfig(horizon_days=120)
    full = run_replication(market, policy, run, seed=3)
    off = run_replication(*mechanism_variant("none of the three", market, policy), run, seed=3)
    assert full.daily["mean_member_fatigue"].max() > 0
    assert np.ptp(full.daily["mean_volume"]) > 0  # adaptive recruiters move
    assert off.daily["mean_member_fatigue"].max() == 0
    assert np.ptp(off.daily["mean_volume"]) == 0
    assert off.metrics["warnings"] == 0 and off.metrics["improvement_periods"] == 0


def test_table_shares_are_of_the_full_model_time(capsys: pytest.CaptureFixture[str]) -> None:
    walls = {"full model": [2.5, 2.0], "no fatigue": [1.5, 1.6], "no adaptation": [2.2, 1.8],
             "no threshold": [2.1, 2.0], "none of the three": [1.0, 1.2]}
    inmails = dict.fromkeys(walls, 10_000_000)
    print_mechanisms({"walls": walls, "inmails": inmails}, "large", "new_2015", 2)
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("  ") and len(line.split()) > 2]
    lines = {" ".join(line.split()[:2]): line for line in rows}
    assert "5.00 M/s" in lines["full model"]  # fastest of the rounds: 10 M / 2.0 s
    assert "25.0%" in lines["no fatigue"]      # (2.0 - 1.5) / 2.0
    assert "10.0%" in lines["no adaptation"]
    assert "0.0%" in lines["no threshold"]
    assert "50.0%" in lines["none of"]
