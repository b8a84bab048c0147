"""benchmarks/bench_search.py reads the time split of a search folder right (on the hand-made contract folder)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
from search_helpers import SECONDS, TRIALS, pareto_frame, trials_frame, write_search_folder

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from bench_search import format_split, main, search_split


def test_split_of_a_folder(tmp_path: Path) -> None:
    folder = write_search_folder(tmp_path / "opt")
    split = search_split(folder, outside=50.0)
    trial_reps = int(trials_frame()["replications"].sum())
    reevaluated = int(pareto_frame()["reevaluated_replications"].sum())
    assert split["trials"] == len(TRIALS)
    assert split["replications"] == trial_reps + reevaluated  # no search.json count: the tables' (no references')
    assert split["simulation_share"] == pytest.approx(SECONDS["simulation"] / SECONDS["total"])
    assert split["outside_seconds"] == pytest.approx(50.0 - SECONDS["total"])
    assert split["seconds_per_replication"] == pytest.approx(SECONDS["simulation"] / (trial_reps + reevaluated))
    assert split["overhead_per_trial"] == pytest.approx(SECONDS["search_overhead"] / len(TRIALS))
    text = format_split(split)
    assert "simulation share of the search" in text and "90.00 %" in text


def test_the_simulated_count_of_search_json_wins(tmp_path: Path) -> None:
    folder = write_search_folder(tmp_path / "opt")
    meta = json.loads((folder / "search.json").read_text())
    meta["replications"] = {"simulated": 12, "read_back": 5, "trial_total": 30}
    (folder / "search.json").write_text(json.dumps(meta))
    split = search_split(folder)
    assert (split["replications"], split["read_back"]) == (12, 5)
    assert split["seconds_per_replication"] == pytest.approx(SECONDS["simulation"] / 12)


def test_folder_mode_prints_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_search_folder(tmp_path / "opt")
    assert main(["--folder", str(folder), "--json", str(tmp_path / "split.json")]) == 0
    assert "search overhead per trial" in capsys.readouterr().out
    stored = json.loads((tmp_path / "split.json").read_text())
    assert stored["wall_seconds"] is None and math.isclose(stored["total_seconds"], SECONDS["total"])


def test_a_real_small_search_is_split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--trials", "2", "--population", "2", "--scale", "0.02", "--horizon", "30", "--out", str(tmp_path / "s"),
            "--json", str(tmp_path / "split.json")]
    assert main(args) == 0
    split = json.loads((tmp_path / "split.json").read_text())
    assert split["trials"] == 2 and split["replications"] > 0
    assert split["wall_seconds"] >= split["total_seconds"] >= split["simulation_seconds"] > 0
    assert split["total_seconds"] == pytest.approx(split["simulation_seconds"] + split["search_overhead_seconds"],
                                                   abs=0.01)
    assert "simulation share of the search" in capsys.readouterr().out
