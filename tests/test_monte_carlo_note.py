"""A plain run says under its table that its intervals are Monte Carlo noise only, and how to see more."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.cli import main
from simulator.cli.run import monte_carlo_note
from simulator.scenario import load_scenario, shrink_overrides

ROOT = Path(__file__).resolve().parents[1]


def test_the_note_names_the_worlds_command_when_assumptions_are_declared() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "old_vs_new.yaml")
    note = monte_carlo_note(scenario, "scenarios/old_vs_new.yaml")
    assert note.startswith("note: the CIs above cover Monte Carlo noise only")
    assert f"declares {len(scenario.uncertain)} uncertain assumptions" in note
    assert "inmail-sim run scenarios/old_vs_new.yaml --worlds prior" in note
    assert max(len(line) for line in note.splitlines()[:-1]) <= 100  # the last line holds the path


def test_without_uncertain_block_the_note_says_how_to_declare_one() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "sales_navigator.yaml")
    assert scenario.uncertain == ()
    note = monte_carlo_note(scenario, "x.yaml")
    assert "uncertain: block" in note and max(len(line) for line in note.splitlines()) <= 100


def test_a_plain_run_prints_it_and_quiet_does_not(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = ROOT / "scenarios" / "old_vs_new.yaml"
    sets = [f"--set={s}" for s in shrink_overrides(path, members=2000, recruiters=40, horizon_days=20,
                                                      replications=2)]
    assert main(["run", str(path), "--out", str(tmp_path / "a"), "--no-figures", "--no-progress", *sets]) == 0
    assert "Monte Carlo noise only" in capsys.readouterr().out
    assert main(["run", str(path), "--out", str(tmp_path / "b"), "--no-figures", "--no-progress", "-q", *sets]) == 0
    assert "Monte Carlo noise only" not in capsys.readouterr().out
