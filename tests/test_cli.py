"""The ``inmail-sim`` command end to end: output files, columns, exit codes, error messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from scenario_helpers import ROOT, tiny, write_yaml

import simulator.experiments.experiment as experiment
from simulator.cli import main
from simulator.core.metrics import MEMBER_BINS, MEMBER_QUANTITIES, METRIC_NAMES
from simulator.io.outputs import CHECKPOINT_FILES, RUN_FILES, load_results
from simulator.io.plotting import FIGURES


@pytest.fixture()
def scenario_file(tmp_path: Path) -> Path:
    return write_yaml(tmp_path / "tiny.yaml", tiny())


QUIET: tuple[str, ...] = ("--no-progress", "-q", "--no-figures")
"""For runs whose figures the test does not look at (drawing them costs more than the tiny run)."""


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------- run


def test_run_writes_every_file_with_the_documented_columns(scenario_file: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    code, stdout, err = run_cli(capsys, "run", str(scenario_file), "--out", str(out), "--replications", "2",
                                "--seed", "11", "--set", "horizon_days=30", "--no-progress")
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == sorted((*RUN_FILES, *CHECKPOINT_FILES, "figures"))
    assert not any(p.name.startswith(".") for p in out.iterdir())  # no temporary files left
    assert sorted(p.name for p in (out / "figures").iterdir()) == sorted(f"{f.name}.png" for f in FIGURES)

    summary = pd.read_csv(out / "summary.csv")
    assert list(summary.columns) == ["policy", "metric", "mean", "std", "ci_low", "ci_high", "n"]
    assert len(summary) == 2 * len(METRIC_NAMES) and (summary["n"] == 2).all()
    comparison = pd.read_csv(out / "comparison.csv")
    assert list(comparison.columns[:8]) == ["metric", "baseline", "policy", "diff", "ci_low", "ci_high",
                                            "rel_change", "p_value"]
    assert set(comparison["policy"]) == {"new"} and set(comparison["baseline"]) == {"old"}
    reps = pd.read_csv(out / "replications.csv")
    assert list(reps.columns) == ["policy", "replication", "seed", *METRIC_NAMES]
    assert len(reps) == 4 and (reps["seed"] == 11).all()
    ts = pd.read_csv(out / "timeseries.csv")
    assert list(ts.columns) == ["policy", "replication", "day", "metric", "value"]
    assert ts["day"].max() == 29
    md = pd.read_csv(out / "member_distribution.csv")
    assert list(md.columns) == ["policy", "replication", "quantity", "bin", "members"]
    assert len(md) == len(reps) * len(MEMBER_QUANTITIES) * len(MEMBER_BINS)

    man = json.loads((out / "manifest.json").read_text())
    for key in ("version", "git_revision", "root_seed", "numpy_version", "command_line", "started", "finished"):
        assert key in man
    assert man["root_seed"] == 11 and man["replications"] == 2 and man["command_line"][:2] == ["inmail-sim", "run"]

    # the table: both policies, significance marks, within 100 columns
    assert "new vs old (baseline)" in stdout and "response_rate" in stdout
    assert "who wins, who loses" in stdout and "pairing the replications" in stdout
    paths = (str(out), str(scenario_file))
    assert max(len(line) for line in stdout.splitlines() if not any(p in line for p in paths)) <= 100
    assert stdout.rstrip().endswith(str(out))


def test_resolved_scenario_reproduces_the_run(scenario_file: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert run_cli(capsys, "run", str(scenario_file), "--out", str(a), "-n", "2", "--set",
                   "market.members.count=1200", *QUIET)[0] == 0
    assert run_cli(capsys, "run", str(a / "scenario.resolved.yaml"), "--out", str(b), *QUIET)[0] == 0
    pd.testing.assert_frame_equal(pd.read_csv(a / "replications.csv"), pd.read_csv(b / "replications.csv"))
    again = load_results(a)
    pd.testing.assert_frame_equal(again.summary, pd.read_csv(a / "summary.csv"), check_dtype=False)


def test_run_one_replication_alone(scenario_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    full, one = tmp_path / "full", tmp_path / "one"
    assert run_cli(capsys, "run", str(scenario_file), "--out", str(full), "-n", "3", *QUIET)[0] == 0
    assert run_cli(capsys, "run", str(scenario_file), "--out", str(one), "--replication", "2", *QUIET)[0] == 0
    f, o = pd.read_csv(full / "replications.csv"), pd.read_csv(one / "replications.csv")
    pd.testing.assert_frame_equal(o, f[f["replication"] == 2].reset_index(drop=True))


def test_run_with_workers_matches_serial(scenario_file: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    s, w = tmp_path / "s", tmp_path / "w"
    assert run_cli(capsys, "run", str(scenario_file), "--out", str(s), "-n", "2", *QUIET)[0] == 0
    assert run_cli(capsys, "run", str(scenario_file), "--out", str(w), "-n", "2", "--workers", "2", *QUIET)[0] == 0
    pd.testing.assert_frame_equal(pd.read_csv(s / "replications.csv"), pd.read_csv(w / "replications.csv"))


def test_precision_says_why_it_stopped(scenario_file: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "run", str(scenario_file), "--out", str(tmp_path / "p"), "--precision", "1e-9",
                           "--max-replications", "4", "--no-progress", "--no-figures")
    assert code == 0 and "replication cap 4 hit before the precision target" in out
    man = json.loads((tmp_path / "p" / "manifest.json").read_text())
    assert man["precision"]["reached"] is False and man["replications"] == 4
    code, out, _ = run_cli(capsys, "run", str(scenario_file), "--out", str(tmp_path / "q"), "--precision", "5",
                           "--no-progress", "--no-figures")
    assert code == 0 and "precision target 5 reached after 3 replications" in out


# --------------------------------------------------------------------------- bad input: exit code 2


BAD_FILES = {
    "malformed": ("name: t\npolicies: {a: {preset: old_2014}\n", ":3: (top level): malformed YAML"),
    "unknown_key": ("name: t\nreplicatons: 3\npolicies: {a: {preset: old_2014}}\n",
                    ":2: replicatons = 3: unknown field; did you mean 'replications'?"),
    "duplicate_key": ("name: t\nname: u\npolicies: {a: {preset: old_2014}}\n", ":2: name: duplicate key 'name'"),
    "wrong_type": ("name: t\nhorizon_days: a year\npolicies: {a: {preset: old_2014}}\n",
                   ":2: horizon_days = 'a year': must be a whole number"),
    "out_of_range": ("name: t\npolicies:\n  a: {preset: old_2014, threshold: {min_rate: 1.3}}\n",
                     ":3: policies.a.threshold.min_rate = 1.3: must be in [0, 1]"),
    "bad_choice": ("name: t\npolicies:\n  a: {preset: old_2014, refund: {kind: on_silnce}}\n",
                   ":3: policies.a.refund.kind = 'on_silnce': must be one of: on_silence, on_response, never"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
@pytest.mark.parametrize("command", ["run", "validate"])
def test_bad_scenarios_exit_2_with_file_line_and_field(case: str, command: str, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    text, expected = BAD_FILES[case]
    f = write_yaml(tmp_path / f"{case}.yaml", text)
    code, out, err = run_cli(capsys, command, str(f), "--out", str(tmp_path / "o")) if command == "run" \
        else run_cli(capsys, command, str(f))
    assert code == 2
    assert f"{f}{expected}" in err
    assert "Traceback" not in err + out
    assert not (tmp_path / "o").exists()  # nothing written for invalid input


def test_missing_file_and_bad_set_path_exit_2(scenario_file: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "validate", str(tmp_path / "nope.yaml"))
    assert code == 2 and "nope.yaml: (top level): file not found" in err
    code, _, err = run_cli(capsys, "run", str(scenario_file), "--set", "market.members.count.x=3")
    assert code == 2 and "bad --set path" in err
    code, _, err = run_cli(capsys, "validate", str(scenario_file), "--set", "market.membrs.count=3")
    assert code == 2 and "--set market.membrs.count=3: market.membrs" in err and "did you mean 'members'" in err
    code, _, err = run_cli(capsys, "validate", str(scenario_file), "--set", "nonsense")
    assert code == 2 and "expected path=value" in err
    code, _, err = run_cli(capsys, "run", str(scenario_file), "--replication", "1", "--precision", "0.1")
    assert code == 2 and "cannot be combined" in err


@pytest.mark.parametrize("args", [
    ["run"], ["run", "x.yaml", "--replications", "0"], ["run", "x.yaml", "--workers", "many"],
    ["run", "x.yaml", "--precision", "-1"], ["frobnicate"], ["policies", "diff", "old_2014"],
])
def test_bad_command_lines_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, *args)
    assert code == 2 and "usage: inmail-sim" in err and "Traceback" not in err


def test_unexpected_failure_exits_1_and_names_the_log(scenario_file: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("engine exploded")

    monkeypatch.setattr(experiment, "run_experiment", boom)
    out = tmp_path / "o"
    code, _, err = run_cli(capsys, "run", str(scenario_file), "--out", str(out), "--no-progress", "--no-figures")
    assert code == 1
    assert "unexpected error: RuntimeError: engine exploded" in err and str(out / "error.log") in err
    assert "Traceback" not in err and "Traceback" in (out / "error.log").read_text()


# --------------------------------------------------------------------------- validate and policies


def test_validate_ok(scenario_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "validate", str(scenario_file), "--set", "replications=9")
    assert code == 0 and ": OK" in out and "9 replications" in out and "policy old (baseline)" in out


def test_policies_list_show_diff(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "policies")
    assert code == 0 and all(name in out for name in ("old_2014", "new_2015", "transition_2015"))
    code, out, _ = run_cli(capsys, "policies", "show", "new_2015")
    assert code == 0 and "refund.window_days" in out and "source:" in out
    code, out, _ = run_cli(capsys, "policies", "diff", "old_2014", "new_2015")
    assert code == 0
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[1:] if line.strip() and " " in line}
    assert rows["refund.kind"] == ["on_silence", "on_response"]
    assert rows["allotments.recruiter"] == ["50", "150"]
    assert "allotments.talent_finder" not in rows  # 25 in both: only differences are listed
    code, out, _ = run_cli(capsys, "policies", "diff", "old_2014", "pre_threshold_2014")
    assert code == 0 and "threshold.enabled" in out and "1 rule differ" in out
    assert max(len(line) for line in out.splitlines()) <= 100


def test_policies_from_a_scenario_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = write_yaml(tmp_path / "s.yaml", tiny(policies={
        "old": {"preset": "old_2014"}, "new60": {"preset": "new_2015", "refund": {"window_days": 60}}}))
    code, out, _ = run_cli(capsys, "policies", "diff", "new_2015", f"{f}:new60")
    assert code == 0 and "refund.window_days" in out and "1 rule differ" in out
    code, _, err = run_cli(capsys, "policies", "show", "nope")
    assert code == 2 and "unknown policy 'nope'" in err
    code, _, err = run_cli(capsys, "policies", "show", f"{f}:nope")
    assert code == 2 and "has no policy 'nope'" in err


def test_module_entry_point_in_a_real_process(tmp_path: Path) -> None:
    bad = write_yaml(tmp_path / "bad.yaml", "name: t\nreplicatons: 3\npolicies: {a: {preset: old_2014}}\n")
    proc = subprocess.run([sys.executable, "-m", "simulator", "validate", str(bad)], capture_output=True,
                          text=True, cwd=ROOT, timeout=120, check=False)
    assert proc.returncode == 2 and "replicatons" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "simulator", "--help"], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, check=False)
    assert proc.returncode == 0 and "run" in proc.stdout
