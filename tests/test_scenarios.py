"""Every scenario shipped in scenarios/ loads at full size and runs end to end when made small."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from scenario_helpers import SCENARIOS

from simulator.cli import main
from simulator.scenario import load_scenario, shrink_overrides

FILES = sorted(SCENARIOS.glob("*.yaml"))
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


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_scenario_runs_small(path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sets = shrink_overrides(path, members=2000, recruiters=60, horizon_days=60, replications=2)
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
    assert reps["sent"].gt(0).all() and reps["response_rate"].between(0.01, 0.9).all()
    assert "vs " + sc.baseline in out


def test_main_scenario_old_policy_response_rate_is_in_the_observed_range() -> None:
    """POLICY_FACTS 5: lowest segments 16-19%, 'optimal' 20-30%: the 2014 rate should land in 16-30%."""
    from simulator.experiments.experiment import run_experiment

    sc = load_scenario(SCENARIOS / "old_vs_new.yaml", ["policies.new=null", "horizon_days=120",
                                                      "market.members.count=50000", "replications=1"])
    rate = run_experiment(sc).replications["response_rate"].iloc[0]
    assert 0.16 <= rate <= 0.30
