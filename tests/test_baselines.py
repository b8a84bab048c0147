"""The project checks itself: every shipped scenario against its stored baseline, in statistical mode.

Each baseline in tests/baselines/ holds the overrides (small sizes), seed and replications it was
made with; the check re-runs the scenario the same way and tests every mean and paired difference
against its standard error at a family-wise false-alarm rate of 1%.  Statistical mode (not exact)
so that a change in how the engine draws its random numbers, which keeps the distributions, does
not fail it.  After a deliberate model or scenario change, regenerate (and say why in the commit):

    python tests/baselines/regenerate.py [NAME ...]
"""

from __future__ import annotations

from pathlib import Path

import pytest
from scenario_helpers import ROOT, SCENARIOS

from simulator.experiments.baseline import ScenarioChangedError, check_scenario, load_baseline

BASELINES = ROOT / "tests" / "baselines"
FILES = sorted(SCENARIOS.glob("*.yaml"))
REGENERATE = "python tests/baselines/regenerate.py"


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_scenario_matches_its_baseline(path: Path) -> None:
    stored = BASELINES / f"{path.stem}.json"
    assert stored.is_file(), f"no baseline for {path.name}; create it with: {REGENERATE} {path.stem}"
    try:
        report = check_scenario(path, stored, "statistical")
    except ScenarioChangedError as exc:
        pytest.fail(f"{exc}\nIf the change is deliberate: {REGENERATE} {path.stem}", pytrace=False)
    assert report.ok, (f"{report.render(only_failures=True)}\n"
                       f"If the change is deliberate: {REGENERATE} {path.stem}")


def test_every_baseline_has_its_scenario() -> None:
    orphans = [p.name for p in BASELINES.glob("*.json") if not (SCENARIOS / f"{p.stem}.yaml").is_file()]
    assert not orphans, f"baselines without a scenario in scenarios/: {orphans} (delete them)"


def test_baselines_are_small_and_have_a_standard_error() -> None:
    for p in BASELINES.glob("*.json"):
        b = load_baseline(p)
        assert 2 <= b.replications <= 20, p.name
        assert any(o.startswith("market.members.count=") for o in b.overrides), f"{p.name} is not run small"
