"""Every scenario shipped in scenarios/ loads at full size and runs end to end when made small."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from scenario_helpers import SCENARIOS

from simulator.cli import main
from simulator.scenario import load_scenario

FILES = sorted(SCENARIOS.glob("*.yaml"))
BASELINES = Path(__file__).resolve().parent / "baselines"
EXPECTED = {"old_vs_new", "threshold_only", "transition_2015", "bulk_sender_share", "sales_navigator"}


def test_the_library_is_complete() -> None:
    assert {f.stem for f in FILES} >= EXPECTED


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_scenario_loads_at_full_size_and_is_commented(path: Path) -> None:
    sc = load_scenario(path)
    assert sc.name == path.stem
    assert sc.baseline in sc.policies and len(sc.policies) >= 2
    text = path.read_text(encoding="utf-8")
    assert text.startswith("#") and text.count("#") >= 15, "scenario files are documented for analysts"


K_SD = 5.0
"""Tolerance in per-replication standard deviations for one replication against its stored baseline.

A baseline stores the mean and standard error ``se`` of ``n = 10`` replications, so the spread of one
replication is ``sd = se * sqrt(n)``.  A new independent replication lies within
``t(0.9995, n - 1) * sqrt(1 + 1 / n) * sd = 4.78 * 1.05 * sd = 5.0 sd`` of the stored mean with
probability 99.9% (prediction interval), whatever the seed.  With the code unchanged the run below
IS the baseline's replications 0 and 1 (same overrides, same seeds), which Samuelson's inequality
keeps within ``(n - 1) * se = 2.85 sd`` of the mean.  For old_vs_new (se 0.0020) the response rate
must so lie within 0.224 +- 0.032, where the former check accepted anything in 0.01-0.9.
"""


def within_baseline(value: float, stat: dict[str, float]) -> bool:
    """``value`` lies within K_SD per-replication SDs of a stored baseline mean (exactly equal if no spread)."""
    sd = stat["se"] * math.sqrt(stat["n"])
    return abs(value - stat["mean"]) <= K_SD * sd if sd > 0 else value == pytest.approx(stat["mean"], rel=1e-9)


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_scenario_runs_small(path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Run with the overrides of its stored baseline (tests/baselines/NAME.json), 2 replications."""
    stored = json.loads((BASELINES / f"{path.stem}.json").read_text(encoding="utf-8"))
    sets = [*stored["overrides"], "replications=2"]
    argv = ["run", str(path), "--out", str(tmp_path), "--no-progress"]
    for s in sets:
        argv += ["--set", s]
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    sc = load_scenario(path)
    comparison = pd.read_csv(tmp_path / "comparison.csv")
    assert set(comparison["policy"]) == set(sc.policies) - {sc.baseline}
    reps = pd.read_csv(tmp_path / "replications.csv")
    assert len(reps) == 2 * len(sc.policies)
    assert reps["sent"].gt(0).all()
    for row in reps.itertuples(index=False):
        for metric in ("response_rate", "sent", "net_credit_burn"):
            stat = stored["statistics"][row.policy][metric]
            value = getattr(row, metric)
            assert within_baseline(value, stat), (
                f"{row.policy} replication {row.replication}: {metric} {value:.6g}, stored mean "
                f"{stat['mean']:.6g} +- {K_SD} x {stat['se'] * math.sqrt(stat['n']):.3g} (per-replication sd)")
    assert "vs " + sc.baseline in out


OLD_RATE_MEAN = 0.22217
"""Mean 2014 response rate of the main scenario at 50,000 members and 120 days (20 replications, seed 20150201)."""

OLD_RATE_SD = 0.00192
"""Its standard deviation between replications at that size (same 20 replications).  The binomial
part alone is sqrt(0.222 x 0.778 / 428,000 InMails) = 0.0006; the rest is the draw of the recruiters."""


def test_main_scenario_old_policy_response_rate_is_in_the_observed_range() -> None:
    """POLICY_FACTS 5: lowest segments 16-19%, 'optimal' 20-30%: the 2014 rate should land in 16-30%.

    That range is the calibration target the scenario's segments were set for; the tight check is
    against the rate this model produces at this size: one replication lies within 5 SD of the
    20-replication mean (the 99.9% prediction interval is t(0.9995, 19) x sqrt(1 + 1/20) = 4.0 SD),
    i.e. 0.2222 +- 0.0096.  Re-measure both constants after a deliberate change of the model.
    """
    from simulator.experiments.experiment import run_experiment

    sc = load_scenario(SCENARIOS / "old_vs_new.yaml", ["policies.new=null", "horizon_days=120",
                                                      "market.members.count=50000", "replications=1"])
    rate = run_experiment(sc).replications["response_rate"].iloc[0]
    assert 0.16 <= rate <= 0.30
    assert abs(rate - OLD_RATE_MEAN) <= 5 * OLD_RATE_SD, rate
