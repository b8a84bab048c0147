"""``inmail-sim discover`` end to end on fabricated run folders (worlds.csv, world_outcomes.csv, manifest.json
written by hand in the COMMON16 format): files, sentence, bad input (exit 2, no traceback), edge cases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from simulator.api import discover
from simulator.cli.main import main
from simulator.experiments.discovery import BOX_COLUMNS, TRAJECTORY_COLUMNS
from tests.discovery_helpers import PARAMETERS, fabricate_run

REPO = Path(__file__).resolve().parents[1]
FAST = ("--resamples", "10")


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fabricate_run(tmp_path_factory.mktemp("run") / "run")


def test_end_to_end_files_and_sentence(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The planted region (personalization_effect < 0.7, check_interval_median > 4) comes back in every file."""
    out = tmp_path / "disc"
    code, stdout, err = run_cli(capsys, "discover", str(run_dir), "--where", "diff.response_rate < 0",
                                "--out", str(out), *FAST)
    assert code == 0, err
    first = stdout.splitlines()[0]
    assert first.startswith("new loses on response rate when personalization_effect < 0.")
    assert "check_interval_median > 4" in first and "(coverage " in first and "density " in first
    assert {p.name for p in out.iterdir()} == {"boxes.csv", "trajectory.csv", "tradeoff.png", "discovery.json"}
    boxes = pd.read_csv(out / "boxes.csv")
    assert list(boxes.columns) == BOX_COLUMNS
    assert set(boxes["dimension"]) == {"personalization_effect", "check_interval_median"}
    row = boxes.set_index("dimension")
    assert abs(row.loc["personalization_effect", "high"] - 0.7) < 0.06
    assert abs(row.loc["check_interval_median", "low"] - 4.0) < 0.4
    assert (boxes["quasi_p"] < 1e-6).all()
    assert boxes["density"].iloc[0] > 0.8 and boxes["coverage"].iloc[0] >= 0.5
    trajectory = pd.read_csv(out / "trajectory.csv")
    assert list(trajectory.columns) == TRAJECTORY_COLUMNS
    assert trajectory["chosen"].sum() == 1 and trajectory["mass"].is_monotonic_decreasing
    assert (out / "tradeoff.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = json.loads((out / "discovery.json").read_text())
    assert doc["where"] == "diff.new.response_rate < 0" and doc["policy"] == "new" and doc["baseline"] == "old"
    assert doc["n_worlds"] == 400 and 0.2 < doc["share_true"] < 0.35
    assert doc["sentence"] == first
    assert doc["box"]["trajectory_step"] == int(trajectory["step"][trajectory["chosen"]].iloc[0])
    assert doc["parameters"] == list(PARAMETERS) and doc["root_seed"] == 7
    assert {s["dimension"]: s["restricted_share_in_resamples"] for s in doc["stability"]}["noise"] <= 0.2


def test_default_output_folder_and_reproducible(run_dir: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Without --out the files go to RUN_DIR/discover; the resampling is seeded by the run's root seed."""
    assert run_cli(capsys, "discover", str(run_dir), "--where", "diff.response_rate < 0", *FAST)[0] == 0
    first = (run_dir / "discover" / "boxes.csv").read_text()
    assert run_cli(capsys, "discover", str(run_dir), "--where", "diff.response_rate < 0", *FAST)[0] == 0
    assert (run_dir / "discover" / "boxes.csv").read_text() == first


def test_api_result(run_dir: Path) -> None:
    res = discover(run_dir, where="diff.response_rate > 0", resamples=0)
    assert res.sentence.startswith("new wins on response rate when ")
    assert isinstance(res.boxes, pd.DataFrame) and isinstance(res.trajectory, pd.DataFrame)
    assert "personalization_effect" in set(res.boxes["dimension"])
    assert res.boxes["restricted_share_in_resamples"].isna().all()  # no resampling asked
    value = discover(run_dir, where="new.acceptance_rate > 50", resamples=0)
    assert value.sentence.startswith("new.acceptance_rate > 50 holds ")


@pytest.mark.parametrize(("where", "expected"), [
    ("diff.response_rat < 0", "'response_rat' is not a metric"),
    ("diff.response_rate = 0", "operator '=' unknown"),
    ("diff.response_rate << 0", "'< 0' is not a finite number"),
    ("diff.response_rate ! 0", "expected LHS OP NUMBER"),
    ("diff.response_rate < zero", "'zero' is not a finite number"),
    ("diff.response_rate < nan", "is not a finite number"),
    ("mystery.response_rate < 0", "'mystery' is not a policy"),
    ("diff.old.response_rate < 0", "baseline 'old' with itself"),
    ("response_rate < 0", "say whose response_rate"),
])
def test_bad_where_exits_2_listing_what_is_allowed(run_dir: Path, where: str, expected: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "discover", str(run_dir), "--where", where)
    assert code == 2
    assert expected in err and "Traceback" not in err
    assert "allowed: diff.METRIC" in err and "response_rate" in err and "old, new" in err


def test_several_policies_need_a_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = fabricate_run(tmp_path / "three", n=120, policies=("old", "new", "newer"))
    code, _, err = run_cli(capsys, "discover", str(folder), "--where", "diff.response_rate < 0")
    assert code == 2 and "2 non-baseline policies (new, newer)" in err
    code, out, _ = run_cli(capsys, "discover", str(folder), "--where", "diff.response_rate < 0", "--policy", "newer",
                           "--resamples", "0")
    assert code == 0 and out.startswith("newer ")
    code, out, _ = run_cli(capsys, "discover", str(folder), "--where", "diff.new.response_rate < 0",
                           "--resamples", "0")
    assert code == 0 and out.startswith("new ")
    code, _, err = run_cli(capsys, "discover", str(folder), "--where", "diff.new.response_rate < 0",
                           "--policy", "newer")
    assert code == 2 and "--policy is 'newer'" in err


def test_deprecated_metric_name_is_mapped(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = run_cli(capsys, "discover", str(run_dir), "--where", "diff.pending > 0", "--out",
                             str(tmp_path / "d"), "--resamples", "0")
    assert code == 0 and "unanswered" in err and "pending" in err
    assert json.loads((tmp_path / "d" / "discovery.json").read_text())["metric"] == "unanswered"


@pytest.mark.parametrize(("flip", "words"), [("never", "holds in none of the"), ("always", "holds in all")])
def test_condition_in_no_or_every_world(tmp_path: Path, flip: str, words: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Nothing to discover is an answer, not an error: exit 0, the message, empty tables, no figure."""
    folder = fabricate_run(tmp_path / flip, n=50, flip=flip)
    (folder / "discover").mkdir()
    (folder / "discover" / "tradeoff.png").write_bytes(b"stale")
    code, out, _ = run_cli(capsys, "discover", str(folder), "--where", "diff.response_rate < 0")
    assert code == 0 and words in out
    assert pd.read_csv(folder / "discover" / "boxes.csv").empty
    assert not (folder / "discover" / "tradeoff.png").exists()
    assert json.loads((folder / "discover" / "discovery.json").read_text())["box"] is None


def test_no_box_reaching_the_floor_is_said(run_dir: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "discover", str(run_dir), "--where", "diff.response_rate < 0", "--threshold",
                           "0.999", "--out", str(tmp_path / "d"), "--resamples", "0")
    assert code == 0 and "no box reaches coverage >= 50% and density >= 100%" in out


def test_missing_and_damaged_files_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = fabricate_run(tmp_path / "run", n=60)
    where = ("--where", "diff.response_rate < 0")

    def error() -> str:
        code, _, err = run_cli(capsys, "discover", str(folder), *where)
        assert code == 2 and "Traceback" not in err
        return err

    worlds = (folder / "worlds.csv").read_text()
    outcomes = (folder / "world_outcomes.csv").read_text()
    (folder / "worlds.csv").unlink()
    assert "run with --worlds first" in error()
    (folder / "worlds.csv").write_text('replication,world,a\n1,2,"unterminated\n')
    assert "damaged" in error()
    (folder / "worlds.csv").write_text("replication,world\n0,1\n")
    assert "no column for the uncertain parameter(s) personalization_effect" in error()
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({k: v for k, v in manifest.items() if k != "worlds"}))
    assert "no uncertain-parameter columns" in error()
    lines = worlds.splitlines()
    lines[3] = ",".join([*lines[3].split(",")[:2], "oops", *lines[3].split(",")[3:]])
    (folder / "worlds.csv").write_text("\n".join(lines) + "\n")
    assert "column personalization_effect row 4 = 'oops'" in error()
    (folder / "worlds.csv").write_text(worlds)
    (folder / "world_outcomes.csv").write_text("\n".join(outcomes.splitlines()[:-1]) + "\n")
    assert "no row for policy new in replication 59" in error()
    (folder / "world_outcomes.csv").write_text(outcomes)
    (folder / "manifest.json").write_text("{not json")
    assert "manifest.json: damaged" in error()
    (folder / "manifest.json").unlink()
    assert "not a finished run folder" in error()
    code, _, err = run_cli(capsys, "discover", str(tmp_path / "nowhere"), *where)
    assert code == 2 and "not a folder" in err


def test_missing_values_are_left_out_and_counted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = fabricate_run(tmp_path / "run", n=100)
    outcomes = pd.read_csv(folder / "world_outcomes.csv")
    outcomes.loc[outcomes.index[:3], "response_rate"] = float("nan")
    outcomes.to_csv(folder / "world_outcomes.csv", index=False)
    code, out, _ = run_cli(capsys, "discover", str(folder), "--where", "diff.response_rate < 0", "--resamples", "0")
    assert code == 0 and "3 replication(s) without a value left out" in out
    assert json.loads((folder / "discover" / "discovery.json").read_text())["n_worlds"] == 97


def test_too_few_worlds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = fabricate_run(tmp_path / "run", n=8)
    code, _, err = run_cli(capsys, "discover", str(folder), "--where", "diff.response_rate < 0")
    assert code == 2 and "at least 10" in err


def test_command_line_process_exits_2_without_traceback(tmp_path: Path) -> None:
    """The real entry point (python -m simulator) on a folder without worlds."""
    (tmp_path / "manifest.json").write_text('{"baseline": "old", "policies": ["old", "new"], "root_seed": 1}')
    proc = subprocess.run([sys.executable, "-m", "simulator", "discover", str(tmp_path), "--where",
                           "diff.response_rate < 0"], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 2
    assert "run with --worlds first" in proc.stderr and "Traceback" not in proc.stderr


def test_manifest_parameter_list_selects_the_columns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An extra column of worlds.csv that the manifest does not list is not a dimension; a listed one that is
    missing is a damaged file."""
    folder = fabricate_run(tmp_path / "run", n=100)
    worlds = pd.read_csv(folder / "worlds.csv")
    worlds["weight"] = 1.0
    worlds.to_csv(folder / "worlds.csv", index=False)
    res = discover(folder, where="diff.response_rate < 0", resamples=0)
    assert list(res.prim.names) == list(PARAMETERS)  # type: ignore[union-attr]
    worlds.drop(columns=["noise"]).to_csv(folder / "worlds.csv", index=False)
    code, _, err = run_cli(capsys, "discover", str(folder), "--where", "diff.response_rate < 0")
    assert code == 2 and "uncertain parameter(s) noise that manifest.json lists" in err


def test_out_that_is_a_file_exits_2(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("x")
    code, _, err = run_cli(capsys, "discover", str(run_dir), "--where", "diff.response_rate < 0", "--out",
                           str(tmp_path / "file"), "--resamples", "0")
    assert code == 2 and "is not a folder" in err


def test_tradeoff_figure_marks(run_dir: Path) -> None:
    """The figure holds the trajectory, the chosen step, the reported box and the coverage floor."""
    from simulator.api import tradeoff_figure

    res = discover(run_dir, where="diff.response_rate < 0", resamples=0)
    fig = tradeoff_figure(res)
    gids = {artist.get_gid() for artist in fig.axes[0].get_children()}
    assert {"trajectory", "chosen", "reported", "min_coverage"} <= gids
    offsets = next(a for a in fig.axes[0].get_children() if a.get_gid() == "trajectory").get_offsets()
    assert len(offsets) == len(res.trajectory)
