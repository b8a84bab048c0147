"""``inmail-sim run --worlds``: the run folder, resume after an interruption (byte-identical), and bad
input (exit 2, the file and column named, nothing run)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from scenario_helpers import tiny, write_yaml

from simulator.cli import main
from simulator.experiments.runner import FAULT_ENV
from simulator.io.world_files import WORLD_FILES
from simulator.scenario import load_scenario
from simulator.scenario.loading import shrink_overrides

SOURCE = str(Path(__file__).resolve().parents[1] / "scenarios" / "old_vs_new.yaml")
SMALL = [arg for text in shrink_overrides(SOURCE) for arg in ("--set", text)]
QUIET = ["--no-progress", "--no-figures"]
ONE_PARAMETER = {"personalization_effect": {"path": "market.response.personalization_effect",
                                            "prior": {"kind": "uniform", "a": 0.5, "b": 2.4},
                                            "reason": "a test"}}


def run(*args: str) -> int:
    """old_vs_new.yaml on a small market, with its own uncertain: and decision: blocks."""
    return main(["run", SOURCE, *SMALL, *QUIET, *args])


def one_parameter_scenario(folder: Path, **changes: object) -> Path:
    """The tiny scenario with one uncertain parameter (the personalization effect)."""
    return write_yaml(folder / "scenario.yaml", tiny(uncertain=ONE_PARAMETER, **changes))


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("worlds") / "run"
    assert run("--worlds", "prior", "--world-count", "5", "--out", str(out), "-q") == 0
    return out


def test_the_run_folder_holds_the_worlds_files_and_the_usual_ones(reference: Path) -> None:
    for name in (*WORLD_FILES, "summary.csv", "comparison.csv", "replications.csv", "manifest.json"):
        assert (reference / name).is_file(), name
    manifest = json.loads((reference / "manifest.json").read_text())
    assert manifest["worlds"]["count"] == 5 and manifest["worlds"]["replications_per_world"] == 2
    assert manifest["replications"] == 10
    scenario = load_scenario(SOURCE)
    assert manifest["worlds"]["parameters"] == [p.name for p in scenario.uncertain]
    worlds = (reference / "worlds.csv").read_text().splitlines()[0].split(",")
    assert worlds == ["replication", "world", *(p.name for p in scenario.uncertain)]
    robustness = (reference / "robustness.csv").read_text()
    for requirement in scenario.decision:  # the scenario's decision: block
        assert requirement.text in robustness


def test_the_table_is_printed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("--worlds", "prior", "--world-count", "3", "--out", str(tmp_path / "o")) == 0
    out = capsys.readouterr().out
    assert "across 3 plausible worlds x 2 replications" in out and "95% MC CI" in out
    assert max(len(line) for line in out.splitlines()) <= 100


def test_resume_after_an_interruption_is_byte_identical(reference: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    monkeypatch.setenv(FAULT_ENV, "raise:6")
    assert run("--worlds", "prior", "--world-count", "5", "--out", str(out), "-q") == 1
    assert "--resume" in capsys.readouterr().err
    assert not (out / "manifest.json").exists()
    monkeypatch.delenv(FAULT_ENV)
    # another world count is another run: refused, nothing mixed
    assert run("--worlds", "prior", "--world-count", "4", "--out", str(out), "-q", "--resume") == 2
    assert "the worlds differ" in capsys.readouterr().err
    assert run("--worlds", "prior", "--world-count", "5", "--out", str(out), "-q", "--resume") == 0
    for name in (*WORLD_FILES, "replications.csv", "comparison.csv", "summary.csv"):
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name


@pytest.mark.parametrize(("text", "expected"), [
    ("world,weight\n1,1\n", "missing column personalization_effect; expected the columns world, weight, "
                            "personalization_effect"),
    ("world,weight,personalization_effect\n1,1,nan\n", ":2: world 1, column personalization_effect = nan: "
                                                       "not a finite number"),
    ("world,weight,personalization_effect\n1,-1,1.0\n2,1,1.0\n", ":2: world 1, column weight = -1.0: a weight "
                                                                 "must be >= 0"),
    ("world,weight,personalization_effect\n1,0,1.0\n2,0,1.0\n", "column weight: every weight is 0"),
    (None, "no such file"),
])
def test_a_bad_worlds_file_exits_2_naming_file_and_column(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                           text: str | None, expected: str) -> None:
    path = tmp_path / "posterior.csv"
    if text is not None:
        path.write_text(text, encoding="utf-8")
    scenario = one_parameter_scenario(tmp_path)
    assert main(["run", str(scenario), *QUIET, "--worlds", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and expected in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(("args", "expected"), [
    (["--world-count", "5"], "--world-count needs --worlds"),
    (["--worlds", "prior", "--precision", "0.01"], "cannot be combined with --precision"),
    (["--worlds", "prior", "--replications", "1"], "at least 2 replications per world"),
])
def test_bad_combinations_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                 expected: str) -> None:
    assert run(*args, "--out", str(tmp_path / "o")) == 2
    assert expected in capsys.readouterr().err


def test_no_uncertain_block_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = write_yaml(tmp_path / "plain.yaml", tiny())
    assert main(["run", str(scenario), *QUIET, "--worlds", "prior", "--out", str(tmp_path / "o")]) == 2
    assert "no uncertain: block" in capsys.readouterr().err


def test_the_worlds_key_runs_across_worlds_and_worlds_none_runs_plainly(tmp_path: Path) -> None:
    (tmp_path / "posterior.csv").write_text("world,weight,personalization_effect\na,1,0.6\nb,3,2.2\n",
                                            encoding="utf-8")
    scenario = one_parameter_scenario(tmp_path, worlds="posterior.csv")  # relative to the scenario file
    out = tmp_path / "o"
    assert main(["run", str(scenario), *QUIET, "-q", "--world-count", "4", "--out", str(out)]) == 0
    worlds = pd.read_csv(out / "worlds.csv")
    assert worlds["world"].tolist() == ["a", "a", "b", "b", "b", "b", "b", "b"]  # weights 1:3, 4 draws x 2
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["worlds"]["source"] == str(tmp_path / "posterior.csv")
    plain = tmp_path / "plain"
    assert main(["run", str(scenario), *QUIET, "-q", "--worlds", "none", "--out", str(plain)]) == 0
    assert not (plain / "worlds.csv").exists() and "worlds" not in json.loads((plain / "manifest.json").read_text())


def test_two_workers_write_byte_identical_files(reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert run("--worlds", "prior", "--world-count", "5", "--out", str(out), "-q", "--workers", "2") == 0
    for name in (*WORLD_FILES, "replications.csv"):
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name
