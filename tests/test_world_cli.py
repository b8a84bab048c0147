"""``inmail-sim run --worlds``: the run folder, resume after an interruption (byte-identical), and bad
input (exit 2, the file and column named, nothing run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulator.cli import main
from simulator.experiments.runner import FAULT_ENV
from simulator.io.world_files import WORLD_FILES
from simulator.scenario.loading import shrink_overrides
from simulator.scenario.uncertain import Prior, UncertainParameter

SOURCE = str(Path(__file__).resolve().parents[1] / "scenarios" / "old_vs_new.yaml")
PARAMETERS = (UncertainParameter("personalization_effect", (("market.response.personalization_effect", 1.0),),
                                 Prior("uniform", 0.5, 2.4)),)
SMALL = [arg for text in shrink_overrides(SOURCE) for arg in ("--set", text)]
QUIET = ["--no-progress", "--no-figures"]


@pytest.fixture(autouse=True)
def uncertain(monkeypatch: pytest.MonkeyPatch) -> None:
    """The scenario's uncertain: block (built by hand until the scenario layer reads it)."""
    import simulator.cli.worlds as worlds

    monkeypatch.setattr(worlds, "uncertain_parameters", lambda scenario: PARAMETERS)


def run(*args: str) -> int:
    return main(["run", SOURCE, *SMALL, *QUIET, *args])


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("worlds") / "run"
    mp = pytest.MonkeyPatch()
    import simulator.cli.worlds as worlds

    mp.setattr(worlds, "uncertain_parameters", lambda scenario: PARAMETERS)
    try:
        assert run("--worlds", "prior", "--world-count", "5", "--out", str(out), "-q") == 0
    finally:
        mp.undo()
    return out


def test_the_run_folder_holds_the_worlds_files_and_the_usual_ones(reference: Path) -> None:
    for name in (*WORLD_FILES, "summary.csv", "comparison.csv", "replications.csv", "manifest.json"):
        assert (reference / name).is_file(), name
    manifest = json.loads((reference / "manifest.json").read_text())
    assert manifest["worlds"]["count"] == 5 and manifest["worlds"]["replications_per_world"] == 2
    assert manifest["replications"] == 10


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
    assert run("--worlds", str(path), "--out", str(tmp_path / "o")) == 2
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


def test_no_uncertain_block_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import simulator.cli.worlds as worlds

    monkeypatch.setattr(worlds, "uncertain_parameters", lambda scenario: ())
    assert run("--worlds", "prior", "--out", str(tmp_path / "o")) == 2
    assert "no uncertain: block" in capsys.readouterr().err


def test_two_workers_write_byte_identical_files(reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert run("--worlds", "prior", "--world-count", "5", "--out", str(out), "-q", "--workers", "2") == 0
    for name in (*WORLD_FILES, "replications.csv"):
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name
