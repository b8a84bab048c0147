"""Resume: per-replication files, the checkpoint's checks, --force, and identical results after resume."""

from __future__ import annotations

import fcntl
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simulator.experiments.experiment import Record, record_store
from simulator.experiments.replication import replication_record
from simulator.experiments.runner import TaskKey
from simulator.io.outputs import CHECKPOINT, TASKS_DIR, resume_command
from simulator.scenario import load_scenario

from .helpers import FAULT_ENV, cli, tiny, tiny_file

OUTPUTS = ("summary.csv", "comparison.csv", "replications.csv", "timeseries.csv", "breakdowns.csv",
           "breakdown_comparison.csv", "breakdown_replications.csv")


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """An uninterrupted 3-replication serial run of the tiny scenario: (scenario file, run folder)."""
    folder = tmp_path_factory.mktemp("reference")
    scenario = tiny_file(folder)
    from simulator.cli import main

    assert main(["run", str(scenario), "--out", str(folder / "run"), "-n", "3", "--no-progress", "-q"]) == 0
    return scenario, folder / "run"


def same_outputs(a: Path, b: Path, names: tuple[str, ...] = OUTPUTS) -> None:
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_a_failed_replication_keeps_the_others_and_resume_finishes_identically(
        reference: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    scenario, ref = reference
    out = tmp_path / "run"
    monkeypatch.setenv(FAULT_ENV, "raise:1:new")
    code, _, err = cli(capsys, "run", str(scenario), "--out", str(out), "-n", "3", "-q")
    assert code == 1
    assert "replication 1 of policy 'new' raised RuntimeError: injected fault" in err
    assert "5 finished replications are kept" in err and "--resume" in err and "Traceback" not in err
    assert "injected fault" in (out / "error.log").read_text() and "Traceback" in (out / "error.log").read_text()
    files = sorted(p.name for p in (out / TASKS_DIR).iterdir())
    assert files == [f"r{i:06d}-{p}.npz" for i in range(3) for p in ("new", "old") if (i, p) != (1, "new")]
    assert not (out / "manifest.json").exists() and not (out / "summary.csv").exists()

    monkeypatch.delenv(FAULT_ENV)
    code, _, err = cli(capsys, "run", str(scenario), "--out", str(out), "-n", "3", "-q", "--resume")
    assert code == 0, err
    assert "resuming: 5 finished replication files" in err
    same_outputs(out, ref)
    assert not (out / "error.log").exists()
    assert json.loads((out / "manifest.json").read_text())["fingerprint"]["root_seed"] == 7


def test_resume_computes_only_the_missing_replications(reference: tuple[Path, Path], tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    scenario, ref = reference
    out = tmp_path / "run"
    assert cli(capsys, "run", str(scenario), "--out", str(out), "-n", "1", "-q")[0] == 0
    # any replication that would be computed again now fails: only 1 and 2 may run
    monkeypatch.setenv(FAULT_ENV, "raise:0")
    code, _, err = cli(capsys, "run", str(scenario), "--out", str(out), "-n", "3", "-q", "--resume")
    assert code == 0, err
    same_outputs(out, ref)
    assert len(list((out / TASKS_DIR).glob("*.npz"))) == 6


def test_a_complete_run_resumes_to_the_same_files_and_fewer_replications_reuse_a_subset(
        reference: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    scenario, ref = reference
    out = tmp_path / "run"
    assert cli(capsys, "run", str(scenario), "--out", str(out), "-n", "3", "-q")[0] == 0
    monkeypatch.setenv(FAULT_ENV, "raise:0,raise:1,raise:2")  # nothing may be recomputed
    assert cli(capsys, "run", str(scenario), "--out", str(out), "-n", "3", "-q", "--resume")[0] == 0
    same_outputs(out, ref)
    assert cli(capsys, "run", str(scenario), "--out", str(out), "-n", "2", "-q", "--resume")[0] == 0
    reps = pd.read_csv(out / "replications.csv")
    full = pd.read_csv(ref / "replications.csv")
    pd.testing.assert_frame_equal(reps, full[full["replication"] < 2].reset_index(drop=True))


@pytest.mark.parametrize(("change", "why"), [
    (["--set", "market.members.count=1400"], "the scenario differs"),
    (["--seed", "8"], "the root seed differs (stored: 7, now: 8)"),
])
def test_resume_refuses_another_scenario_or_seed(change: list[str], why: str, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tiny_file(tmp_path)
    out = tmp_path / "run"
    assert cli(capsys, "run", str(scenario), "--out", str(out), "-n", "1", "-q")[0] == 0
    before = {p.name: p.read_bytes() for p in (out / TASKS_DIR).iterdir()}
    code, _, err = cli(capsys, "run", str(scenario), "--out", str(out), "-n", "2", "-q", "--resume", *change)
    assert code == 2 and f"cannot resume {out}: {why}" in err and "--force" in err and "Traceback" not in err
    assert {p.name: p.read_bytes() for p in (out / TASKS_DIR).iterdir()} == before  # nothing touched
    assert (out / "manifest.json").exists()


def test_resume_refuses_another_code_version(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tiny_file(tmp_path)
    out = tmp_path / "run"
    assert cli(capsys, "run", str(scenario), "--out", str(out), "-n", "1", "-q")[0] == 0
    cp = json.loads((out / CHECKPOINT).read_text())
    cp["fingerprint"]["code"]["model_sha256"] = "0123456789abcdef"
    (out / CHECKPOINT).write_text(json.dumps(cp))
    code, _, err = cli(capsys, "run", str(scenario), "--out", str(out), "-q", "--resume")
    assert code == 2 and "the code version differs (stored: inmail-sim" in err and "model 0123456789abcdef" in err


def test_a_folder_holding_a_run_is_not_overwritten_without_force(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tiny_file(tmp_path)
    other = tiny_file(tmp_path, name="other.yaml", root_seed=99)
    out = tmp_path / "run"
    assert cli(capsys, "run", str(scenario), "--out", str(out), "-n", "2", "-q")[0] == 0
    summary = (out / "summary.csv").read_bytes()
    for s in (other, scenario):  # another scenario, or the same one again: both need --resume or --force
        code, _, err = cli(capsys, "run", str(s), "--out", str(out), "-n", "1", "-q")
        assert code == 2 and f"--out {out} already holds a run (scenario 'tiny', root seed 7)" in err
        assert (out / "summary.csv").read_bytes() == summary
    code, _, err = cli(capsys, "run", str(other), "--out", str(out), "-n", "1", "-q", "--force")
    assert code == 0, err
    reps = pd.read_csv(out / "replications.csv")
    assert (reps["seed"] == 99).all() and len(reps) == 2
    assert len(list((out / TASKS_DIR).glob("*.npz"))) == 2  # the old run's files are gone


def test_a_foreign_non_empty_folder_needs_force_and_keeps_its_files(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tiny_file(tmp_path)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    code, _, err = cli(capsys, "run", str(scenario), "--out", str(out), "-n", "1", "-q")
    assert code == 2 and "is not empty and holds no inmail-sim run" in err
    code, _, err = cli(capsys, "run", str(scenario), "--out", str(out), "-n", "1", "-q", "--resume")
    assert code == 2 and "holds no inmail-sim run" in err
    assert cli(capsys, "run", str(scenario), "--out", str(out), "-n", "1", "-q", "--force")[0] == 0
    assert (out / "notes.txt").read_text() == "my notes" and (out / "summary.csv").is_file()
    (out / "file").write_text("x")
    assert cli(capsys, "run", str(scenario), "--out", str(out / "file"), "-q")[0] == 2


def test_resume_into_a_new_folder_just_starts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tiny_file(tmp_path)
    code, _, err = cli(capsys, "run", str(scenario), "--out", str(tmp_path / "new"), "-n", "1", "-q", "--resume")
    assert code == 0 and "nothing to resume" in err
    code, _, err = cli(capsys, "run", str(scenario), "-n", "1", "-q", "--resume")
    assert code == 2 and "--resume needs --out DIR" in err


def test_a_damaged_replication_file_is_computed_again(reference: tuple[Path, Path], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    scenario, ref = reference
    out = tmp_path / "run"
    assert cli(capsys, "run", str(scenario), "--out", str(out), "-n", "3", "-q")[0] == 0
    victim = out / TASKS_DIR / "r000001-old.npz"
    victim.write_bytes(victim.read_bytes()[:100])  # e.g. copied half-way
    stale = out / TASKS_DIR / ".r000002-new.npz.tmp-123-456"  # what a kill -9 in mid-write leaves
    stale.write_bytes(b"partial")
    assert cli(capsys, "run", str(scenario), "--out", str(out), "-n", "3", "-q", "--resume")[0] == 0
    same_outputs(out, ref)
    assert not stale.exists() and Record.from_arrays(dict(np.load(victim))).replication == 1


def test_a_second_run_into_the_same_folder_is_refused_while_the_first_runs(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tiny_file(tmp_path)
    out = tmp_path / "run"
    assert cli(capsys, "run", str(scenario), "--out", str(out), "-n", "1", "-q")[0] == 0
    with (out / ".inmail-sim.lock").open("ab") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running inmail-sim holds it
        code, _, err = cli(capsys, "run", str(scenario), "--out", str(out), "-q", "--resume")
    assert code == 2 and "another inmail-sim run is writing to this folder" in err


def test_no_timeseries_gives_the_same_summary_and_its_files_are_not_reused_for_a_full_run(
        reference: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario, ref = reference
    out = tmp_path / "run"
    assert cli(capsys, "run", str(scenario), "--out", str(out), "-n", "3", "-q", "--no-timeseries")[0] == 0
    assert not (out / "timeseries.csv").exists()
    same_outputs(out, ref, tuple(n for n in OUTPUTS if n != "timeseries.csv"))
    assert json.loads((out / "manifest.json").read_text())["timeseries"] is False
    code, _, err = cli(capsys, "run", str(scenario), "--out", str(out), "-n", "3", "-q", "--resume")
    assert code == 0, err
    same_outputs(out, ref)  # the time series was computed again, the rest is the same


def test_record_files_round_trip_exactly(tmp_path: Path) -> None:
    sc = load_scenario(tiny(horizon_days=15))
    rec = replication_record(sc.market, sc.policies["new"], sc.run, sc.root_seed, 4)
    store = record_store(tmp_path)
    key = TaskKey("new", 4)
    store.save(key, rec)
    back = store.load(key)
    assert back is not None and back.metrics == rec.metrics and back.breakdowns == rec.breakdowns
    assert list(back.daily) == list(rec.daily)
    for k, v in rec.daily.items():
        assert back.daily[k].tobytes() == v.tobytes()
    assert (back.policy, back.replication, back.root_seed, back.spawn_key) == ("new", 4, 7, (4,))
    assert store.load(TaskKey("old", 4)) is None
    assert TaskKey("new", 4, point=12).filename == "p00012-r000004-new.npz"


def test_resume_command_replaces_out_and_drops_force() -> None:
    argv = ["run", "s.yaml", "--out", "a b", "--force", "-n", "3", "--set", "x=1"]
    assert resume_command(argv, "a b") == "inmail-sim run s.yaml -n 3 --set x=1 --out 'a b' --resume"
    assert resume_command(["run", "s.yaml", "--out=x", "--resume"], "x") == "inmail-sim run s.yaml --out x --resume"


def test_force_deletes_only_what_the_old_run_wrote(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tiny_file(tmp_path)
    out = tmp_path / "run"
    assert cli(capsys, "run", str(scenario), "--out", str(out), "-n", "1", "-q", "--no-figures")[0] == 0
    (out / "figures").mkdir()
    (out / "figures" / "a.png").write_bytes(b"png")
    (out / "mine.txt").write_text("keep")
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    man = json.loads((out / "manifest.json").read_text())
    man["files"] += ["figures/a.png", "../outside.txt"]  # as a figure writer would list its files
    (out / "manifest.json").write_text(json.dumps(man))
    args = ("run", str(scenario), "--out", str(out), "-n", "1", "-q", "--seed", "3", "--force", "--no-figures")
    assert cli(capsys, *args)[0] == 0
    assert not (out / "figures").exists() and (out / "mine.txt").exists() and outside.exists()
