"""Damaged baselines and run folders: refused with exit code 2 naming the file and the field; nothing of the user's
is replaced or deleted.

* a baseline file with a NaN / null mean, a negative standard error, a negative seed, an unknown
  metric or row, an absurd count: ``baseline check`` exits 2 with ``FILE: malformed baseline file:
  field.path = value: what is allowed`` - never "OK" and never a traceback;
* a metric row deleted from a file fails the check (exit 1) unless ``--allow-missing`` (skipped);
  an old file without the metrics added since (``unanswered``, ``credits_lost``) still passes;
* ``baseline save --to notes.txt`` does not replace a file that is not a baseline (without ``--force``);
* ``run --force`` deletes only what inmail-sim wrote in the folder and keeps the user's files;
* an unwritable ``--out`` and a symlinked ``replications/`` exit 2 with a message.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from simulator.core.metrics import METRIC_NAMES
from simulator.experiments.baseline import check_scenario, load_baseline
from simulator.experiments.baseline_file import BaselineError
from simulator.experiments.baseline_schema import ADDED_SINCE_LEGACY, LEGACY_METRICS

from .helpers import ROOT, cli, tiny_file

N = 3


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A tiny scenario and the baseline document ``baseline save`` wrote for it."""
    from simulator.cli import main

    folder = tmp_path_factory.mktemp("baseline")
    scenario = tiny_file(folder, horizon_days=20)
    target = folder / "b.json"
    assert main(["baseline", "save", str(scenario), "--to", str(target), "-n", str(N), "--no-progress"]) == 0
    return scenario, json.loads(target.read_text())


def _write(tmp_path: Path, doc: dict[str, Any], name: str = "damaged.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc))  # NaN is written as the bare word NaN, as Python's json reads it
    return path


def _check(capsys: pytest.CaptureFixture[str], scenario: Path, path: Path, *extra: str) -> tuple[int, str, str]:
    return cli(capsys, "baseline", "check", str(scenario), "--against", str(path), "--no-progress", *extra)


def _stat(doc: dict[str, Any], row: str, metric: str) -> dict[str, Any]:
    return doc["statistics"][row][metric]


DAMAGE: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "nan_mean": (lambda d: _stat(d, "old", "sent").update(mean=float("nan")),
                 "statistics.old.sent.mean = nan: must be a finite number"),
    "null_mean": (lambda d: _stat(d, "new", "response_rate").update(mean=None),
                  "statistics.new.response_rate.mean = null: must be a number"),
    "inf_se": (lambda d: _stat(d, "old", "accepted").update(se=float("inf")),
               "statistics.old.accepted.se = inf: must be a finite number"),
    "negative_se": (lambda d: _stat(d, "new - old", "sent").update(se=-1.0),
                    "statistics.new - old.sent.se = -1.0: must be >= 0"),
    "zero_n": (lambda d: _stat(d, "old", "sent").update(n=0), "statistics.old.sent.n = 0: must be a whole number in"),
    "text_n": (lambda d: _stat(d, "old", "sent").update(n="3"), "statistics.old.sent.n = '3': must be a whole number"),
    "negative_seed": (lambda d: d.update(root_seed=-3), "root_seed = -3: must be a whole number >= 0"),
    "bool_seed": (lambda d: d.update(root_seed=True), "root_seed = true: must be a whole number"),
    "zero_replications": (lambda d: d.update(replications=0), "replications = 0: must be a whole number in [1, 1"),
    "huge_replications": (lambda d: d.update(replications=10**12), "replications = 1000000000000: must be a whole"),
    "unknown_metric": (lambda d: d["statistics"]["old"].update(respons_rate=_stat(d, "old", "sent")),
                       "statistics.old.respons_rate: unknown metric; allowed: sent,"),
    "unknown_row": (lambda d: d["statistics"].update(other=d["statistics"]["old"]),
                    "statistics.other: unknown row; allowed: old, new, new - old"),
    "unknown_field": (lambda d: d.update(seed=1), "seed: unknown field; allowed: format,"),
    "missing_field": (lambda d: d.pop("root_seed"), "field 'root_seed' is missing"),
    "baseline_policy": (lambda d: d.update(baseline_policy="nope"), "baseline_policy = 'nope': must be one of the"),
    "metrics_list": (lambda d: d["metrics"].append("bogus"), "metrics.23 = 'bogus': unknown metric"),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_a_damaged_baseline_exits_2_naming_file_and_field(case: str, saved: tuple[Path, dict[str, Any]],
                                                          tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario, doc = saved
    damage, message = DAMAGE[case]
    broken = copy.deepcopy(doc)
    damage(broken)
    path = _write(tmp_path, broken)
    code, out, err = _check(capsys, scenario, path)
    assert code == 2, out + err
    assert f"{path}: malformed baseline file: {message}" in err
    assert "Traceback" not in err and "OK:" not in out
    with pytest.raises(BaselineError, match="malformed baseline file"):
        load_baseline(path)


def test_the_plan_command_reads_baselines_through_the_same_schema(saved: tuple[Path, dict[str, Any]],
                                                                  tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    scenario, doc = saved
    broken = copy.deepcopy(doc)
    _stat(broken, "old", "response_rate").update(se=-0.5)
    path = _write(tmp_path, broken)
    code, _, err = cli(capsys, "baseline", "plan", str(scenario), "--detect", "1%", "--against", str(path),
                       "--no-progress")
    assert code == 2 and "statistics.old.response_rate.se = -0.5" in err


def test_a_deleted_metric_row_fails_the_check_unless_allowed(saved: tuple[Path, dict[str, Any]], tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    scenario, doc = saved
    broken = copy.deepcopy(doc)
    del broken["statistics"]["new"]["credits_spent"]
    path = _write(tmp_path, broken)
    code, out, err = _check(capsys, scenario, path)
    assert code == 1, out + err
    assert "MISSING in file" in out and f"MISSING: 1 of {3 * len(METRIC_NAMES)} rows are not in {path}" in out
    code, out, err = _check(capsys, scenario, path, "--allow-missing")
    assert code == 0, out + err
    assert "skipped (not in file)" in out and "1 rows not in the file skipped" in out


def test_a_metric_deleted_from_every_row_and_the_list_is_missing_too(saved: tuple[Path, dict[str, Any]],
                                                                      tmp_path: Path) -> None:
    scenario, doc = saved
    broken = copy.deepcopy(doc)
    for row in broken["statistics"].values():
        del row["sent"]
    report = check_scenario(scenario, _write(tmp_path, broken))
    assert not report.ok and set(report.regressions["metric"]) == {"sent"} and len(report.regressions) == 3


def test_an_old_file_without_the_metrics_added_since_still_passes(saved: tuple[Path, dict[str, Any]],
                                                                   tmp_path: Path) -> None:
    """A file saved before ``unanswered`` and ``credits_lost`` existed (no metrics list, 21 metrics) is complete."""
    scenario, doc = saved
    old = copy.deepcopy(doc)
    del old["metrics"]
    for row in old["statistics"].values():
        for metric in ADDED_SINCE_LEGACY:
            del row[metric]
    report = check_scenario(scenario, _write(tmp_path, old))
    assert report.ok and len(report.rows) == 3 * len(LEGACY_METRICS)
    # ... but one of the metrics it did have, deleted, is missing
    del old["statistics"]["old"]["pending"]
    report = check_scenario(scenario, _write(tmp_path, old, "older.json"))
    assert not report.ok and list(report.regressions["metric"]) == ["pending"]


def test_the_project_baselines_are_valid_files() -> None:
    for path in sorted((ROOT / "tests" / "baselines").glob("*.json")):
        stored = load_baseline(path)
        assert stored.missing() == [], path.name


def test_a_file_without_its_metric_list_is_read_with_the_legacy_list(saved: tuple[Path, dict[str, Any]],
                                                                      tmp_path: Path) -> None:
    _, doc = saved
    old = copy.deepcopy(doc)
    del old["metrics"]
    assert load_baseline(_write(tmp_path, old)).metrics == LEGACY_METRICS
    assert load_baseline(_write(tmp_path, doc, "new.json")).metrics == tuple(METRIC_NAMES)


# --------------------------------------------------------------------------- overwrites


def test_save_does_not_replace_a_file_that_is_not_a_baseline(saved: tuple[Path, dict[str, Any]], tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    scenario, doc = saved
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    code, _, err = cli(capsys, "baseline", "save", str(scenario), "--to", str(notes), "-n", "2", "--no-progress")
    assert code == 2 and f"{notes}: exists and is not a baseline file" in err and "--force" in err
    assert notes.read_text() == "my notes\n"
    other = _write(tmp_path, {"format": "something"}, "other.json")
    code, _, err = cli(capsys, "baseline", "save", str(scenario), "--to", str(other), "-n", "2", "--no-progress")
    assert code == 2 and "is not a baseline file" in err
    # a baseline file (even a damaged one) is replaced: that is how a baseline is regenerated
    damaged = copy.deepcopy(doc)
    _stat(damaged, "old", "sent").update(se=-1.0)
    path = _write(tmp_path, damaged, "b.json")
    code, _, err = cli(capsys, "baseline", "save", str(scenario), "--to", str(path), "-n", "2", "--no-progress")
    assert code == 0, err
    assert load_baseline(path).replications == 2
    code, _, err = cli(capsys, "baseline", "save", str(scenario), "--to", str(notes), "-n", "2", "--force",
                       "--no-progress")
    assert code == 0, err
    assert load_baseline(notes).replications == 2


def _run(capsys: pytest.CaptureFixture[str], scenario: Path, out: Path, *extra: str) -> tuple[int, str, str]:
    return cli(capsys, "run", str(scenario), "--out", str(out), "-n", "2", "--no-figures", "-q", *extra)


def test_force_keeps_the_users_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tiny_file(tmp_path, horizon_days=20)
    out = tmp_path / "run"
    assert _run(capsys, scenario, out)[0] == 0
    (out / "replications" / "mydata.txt").write_text("mine\n")
    (out / "error.log").write_text("my own log\n")
    (out / "notes.md").write_text("notes\n")
    code, _, err = _run(capsys, scenario, out, "--force")
    assert code == 0, err
    assert (out / "replications" / "mydata.txt").read_text() == "mine\n"
    assert (out / "error.log").read_text() == "my own log\n" and (out / "notes.md").is_file()
    assert "kept 3 other files: error.log, notes.md, replications/mydata.txt" in err
    assert len(list((out / "replications").glob("*.npz"))) == 4 and (out / "manifest.json").is_file()


def test_force_deletes_inmail_sims_own_error_log_and_task_files(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tiny_file(tmp_path, horizon_days=20)
    out = tmp_path / "run"
    assert _run(capsys, scenario, out)[0] == 0
    (out / "error.log").write_text("inmail-sim run tiny.yaml\n\nTraceback (most recent call last):\n")
    (out / "replications" / "r000007-old.npz").write_bytes(b"stale")
    code, _, err = _run(capsys, scenario, out, "--force")
    assert code == 0, err
    assert not (out / "error.log").exists() and not (out / "replications" / "r000007-old.npz").exists()
    assert "kept" not in err


def test_a_manifest_inmail_sim_did_not_write_deletes_nothing(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tiny_file(tmp_path, horizon_days=20)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "manifest.json").write_text(json.dumps({"files": ["data.csv"]}))
    (out / "data.csv").write_text("a,b\n")
    code, _, err = _run(capsys, scenario, out)
    assert code == 2 and "holds no inmail-sim run" in err
    code, _, err = _run(capsys, scenario, out, "--force")
    assert code == 0, err
    assert (out / "data.csv").read_text() == "a,b\n"


def test_a_symlinked_replications_folder_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tiny_file(tmp_path, horizon_days=20)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "run"
    out.mkdir()
    (out / "replications").symlink_to(elsewhere, target_is_directory=True)
    for extra in ((), ("--resume",), ("--force",)):
        code, _, err = _run(capsys, scenario, out, *extra)
        assert code == 2, (extra, err)
        assert "replications/ is a symbolic link" in err and "Traceback" not in err
    assert not list(elsewhere.iterdir()) and (out / "replications").is_symlink()
    shutil.rmtree(out)
    out.mkdir()
    (out / "replications").write_text("not a folder")
    code, _, err = _run(capsys, scenario, out, "--force")
    assert code == 2 and "replications exists and is not a folder" in err


COMMANDS: dict[str, Callable[[pytest.CaptureFixture[str], Path, Path], tuple[int, str, str]]] = {
    "run": _run,
    "explain": lambda capsys, scenario, out: cli(capsys, "explain", str(scenario), "--out", str(out), "-n", "2",
                                                 "--no-progress"),
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_an_out_folder_that_cannot_be_created_exits_2(command: str, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tiny_file(tmp_path, horizon_days=20)
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    code, _, err = COMMANDS[command](capsys, scenario, blocker / "run")
    assert code == 2 and "cannot write there" in err and "Traceback" not in err


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_read_only_out_folder_exits_2(command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tiny_file(tmp_path, horizon_days=20)
    out = tmp_path / "readonly"
    out.mkdir()
    out.chmod(0o555)
    immutable = False
    try:
        if os.access(out, os.W_OK):  # root ignores the mode: make the folder immutable instead, if we can
            immutable = subprocess.run(["chattr", "+i", str(out)], capture_output=True).returncode == 0
            if not immutable:
                pytest.skip("cannot make a folder read-only for this user")
        code, _, err = COMMANDS[command](capsys, scenario, out)
        assert code == 2, err
        assert f"--out {out}: cannot write there" in err and "Traceback" not in err
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(out)], check=True)
        out.chmod(0o755)


def test_force_knows_every_file_run_and_report_draw() -> None:
    """``--force`` deletes the figures and report.html of the run it replaces: the list it uses is the figures'."""
    from simulator.io.outputs import DRAWN_FILES
    from simulator.io.plotting import FIGURES, FIGURES_DIR
    from simulator.io.report import REPORT_FILE

    assert set(DRAWN_FILES) == {f"{FIGURES_DIR}/{spec.name}.png" for spec in FIGURES} | {REPORT_FILE}
