"""Sweeps answer sweep questions: every point against a reference point or point A against point B
(paired on common random numbers, checked against a hand computation), the bad points that exit 2,
a figure per listed metric, and the printed table in ``run``'s units."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from scenario_helpers import write_yaml
from test_sweep import FATIGUE, WINDOW, line_of, with_sweep

from simulator.cli import main
from simulator.experiments.sweep import run_sweep
from simulator.scenario import load_scenario


@pytest.fixture()
def sweep_file(tmp_path: Path) -> Path:
    return write_yaml(tmp_path / "tiny_sweep.yaml", with_sweep(
        {"replications": 2, "parameters": {WINDOW: [7, 90], FATIGUE: [0.0, 0.2]}}))


# --------------------------------------------------------------------------- comparing points


def grid_sweep(**extra: Any) -> Any:
    sweep = {"replications": 4, "metrics": ["response_rate", "net_credit_burn", "sent"],
             "parameters": {WINDOW: [7, 90], FATIGUE: [0.0, 0.3]}, **extra}
    return run_sweep(load_scenario(with_sweep(sweep)))


def test_every_point_against_a_reference_matches_a_hand_computed_paired_difference() -> None:
    """Partial reference {window_days: 90}: each point against the 90-day point at its own fatigue
    level, from the per-replication frame by hand (4 replications, paired t-interval and test)."""
    from scipy import stats

    res = grid_sweep(reference={"window_days": 90})
    against = res.reference_table
    assert against is not None
    pd.testing.assert_frame_equal(against, res.against({"window_days": 90}))
    reps = res.replications.set_index(["point", "policy", "replication"]).sort_index()
    pairs = dict(zip(against["point"], against["reference"], strict=False))
    assert pairs == {0: 2, 1: 3, 2: 2, 3: 3}  # (7, 0.0) -> (90, 0.0); (7, 0.3) -> (90, 0.3)
    for row in against[against["metric"] != "sent"].to_dict("records"):
        a = reps.loc[(row["point"], row["policy"])][row["metric"]].to_numpy()
        b = reps.loc[(row["reference"], row["policy"])][row["metric"]].to_numpy()
        d = a - b
        assert row["diff"] == pytest.approx(d.mean(), rel=1e-12, abs=1e-12)
        assert row["reference_mean"] == pytest.approx(b.mean()) and row["point_mean"] == pytest.approx(a.mean())
        hw = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
        assert row["ci_low"] == pytest.approx(d.mean() - hw, abs=1e-12)
        assert row["ci_high"] == pytest.approx(d.mean() + hw, abs=1e-12)
        if d.std() > 0:
            assert row["p_value"] == pytest.approx(stats.ttest_rel(a, b).pvalue, rel=1e-9)
            assert row["rel_change"] == pytest.approx(d.mean() / b.mean())
        assert row["paired"] and row["n"] == 4
    # the same seeds at every point: the old policy (untouched by the window) differs only with fatigue
    old = against[(against["policy"] == "old")]
    assert (old["diff"] == 0).all()


def test_compare_two_points_and_a_full_reference() -> None:
    res = grid_sweep()
    one = res.compare({"window_days": 7, "sensitivity": 0.3}, 3)
    assert set(one["point"]) == {1} and set(one["reference"]) == {3}
    full = res.against({WINDOW: 90, FATIGUE: 0.0})
    assert set(full["reference"]) == {2} and set(full["point"]) == {0, 1, 2, 3}
    row = full[(full["point"] == 1) & (full["policy"] == "old") & (full["metric"] == "response_rate")].iloc[0]
    reps = res.replications.set_index(["point", "policy", "replication"])["response_rate"].sort_index()
    d = reps.loc[(1, "old")].to_numpy() - reps.loc[(2, "old")].to_numpy()
    assert row["diff"] == pytest.approx(d.mean()) and row["diff"] != 0  # fatigue 0.3 vs 0: old moves too
    assert list(full.columns[:4]) == ["point", "reference", WINDOW, FATIGUE]


def test_points_with_their_own_seeds_are_compared_unpaired() -> None:
    from scipy import stats

    res = grid_sweep(seeds="per_point")
    row = res.compare(0, 1).query("policy == 'new' and metric == 'net_credit_burn'").iloc[0]
    reps = res.replications.set_index(["point", "policy", "replication"])["net_credit_burn"]
    a, b = reps.sort_index().loc[(0, "new")].to_numpy(), reps.sort_index().loc[(1, "new")].to_numpy()
    assert not row["paired"]
    assert row["p_value"] == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue, rel=1e-9)
    assert row["ci_low"] < a.mean() - b.mean() < row["ci_high"]


@pytest.mark.parametrize(("spec", "message", "allowed"), [
    ({"window_days": 45}, "window_days=45 matches no point", "point 0 (window_days=7, sensitivity=0.0)"),
    ({"window_day": 90}, "'window_day' is not a swept parameter", f"the swept parameters: {WINDOW}, {FATIGUE}"),
    (9, "no point 9", "point 3 (window_days=90, sensitivity=0.3)"),
])
def test_a_point_not_in_the_design_is_refused_listing_the_points(spec: Any, message: str, allowed: str) -> None:
    from simulator.experiments.sweep import PointSpecError

    res = grid_sweep()
    with pytest.raises(PointSpecError, match=message) as info:
        res.against(spec)
    assert allowed in str(info.value)


def test_bad_references_exit_2_with_the_allowed_points(sweep_file: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["sweep", str(sweep_file), "--out", str(out), "--no-progress", "--reference", "window_days=45"]) == 2
    err = capsys.readouterr().err
    assert "--reference: window_days=45 matches no point; the points: point 0 (window_days=7, sensitivity=0.0)" in err
    assert "Traceback" not in err and not out.exists()
    assert main(["sweep", str(sweep_file), "--out", str(out), "--no-progress", "--compare", "0", "7"]) == 2
    assert "--compare: no point 7; the points: point 0" in capsys.readouterr().err
    data = yaml.safe_load(sweep_file.read_text())
    data["sweep"]["reference"] = {"window_days": 45}
    bad = write_yaml(tmp_path / "bad_reference.yaml", data)
    assert main(["sweep", str(bad), "--no-progress"]) == 2
    err = capsys.readouterr().err
    key_line = line_of(bad, "reference:")  # a block mapping's line is that of its first item, just below
    assert any(f"{bad}:{n}: sweep.reference" in err for n in (key_line, key_line + 1)), err
    assert "window_days=45 matches no point" in err and "point 3 (window_days=90, sensitivity=0.2)" in err
    assert main(["validate", str(bad)]) == 2


def test_sweep_command_reference_and_compare_files_and_units(sweep_file: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = main(["sweep", str(sweep_file), "--out", str(out), "--no-progress", "--set", "horizon_days=30",
                 "--reference", "window_days=90", "--compare", "window_days=7,sensitivity=0.2", "3"])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    reference = pd.read_csv(out / "sweep_reference.csv")
    assert dict(zip(reference["point"], reference["reference"], strict=False)) == {0: 2, 1: 3, 2: 2, 3: 3}
    comparison = pd.read_csv(out / "sweep_comparison.csv")
    assert set(comparison["point"]) == {1} and set(comparison["reference"]) == {3}
    assert "against the reference (window_days=90)" in stdout and "point 1 against point 3" in stdout
    assert json.loads((out / "manifest.json").read_text())["reference"] == {"window_days": 90}


# --------------------------------------------------------------------------- figures and the printed table


def test_a_figure_file_per_listed_metric(tmp_path: Path) -> None:
    from simulator.io.study_files import write_sweep

    metrics = ["response_rate", "sent", "credits_refunded"]
    res = run_sweep(load_scenario(with_sweep({"replications": 2, "metrics": metrics,
                                              "parameters": {WINDOW: [7, 90], FATIGUE: [0.0, 0.3]}})))
    write_sweep(res, tmp_path)
    pngs = sorted(p.name for p in (tmp_path / "figures").glob("*.png"))
    assert pngs == sorted([f"sweep_{m}.png" for m in metrics] + [f"sweep_heatmap_{m}_new.png" for m in metrics])
    assert all((tmp_path / "figures" / p).read_bytes()[:4] == b"\x89PNG" for p in pngs)


def test_the_printed_table_uses_runs_units_rates_in_percent_and_points() -> None:
    from simulator.io.sweep_tables import SWEEP_UNITS_NOTE, format_sweep
    from simulator.io.tables import RowFormat

    res = run_sweep(load_scenario(with_sweep({"replications": 3, "metrics": ["response_rate", "net_credit_burn"],
                                              "parameters": {WINDOW: [7, 90]}})))
    text = format_sweep(res)
    lines = text.splitlines()
    assert text.count("rates in %, their differences in percentage points") == 1
    assert SWEEP_UNITS_NOTE.splitlines()[0] in lines
    assert "response_rate (%): new - old at each point" in text and "net_credit_burn (credits)" in text
    assert max(map(len, lines)) <= 100
    row = res.table.query("point == 0 and policy == 'new' and metric == 'response_rate'").iloc[0]
    base = res.table.query("point == 0 and policy == 'old' and metric == 'response_rate'").iloc[0]
    low, high = 100 * row["diff_ci_low"], 100 * row["diff_ci_high"]
    number = RowFormat([100 * base["mean"], 100 * row["mean"], 100 * row["diff"], low, high], 0.5 * (high - low))
    printed = next(line for line in lines if line.startswith("    0 ") and number.interval(low, high) in line)
    assert number(100 * base["mean"]) in printed and number(100 * row["diff"], True) in printed
    assert 1 < float(number(100 * base["mean"])) < 100  # a percentage, not a fraction
    # the CSV keeps fractions
    assert 0 < row["mean"] < 1


def test_a_single_policy_sweep_prints_means_in_percent() -> None:
    from simulator.io.sweep_tables import format_sweep

    data = with_sweep({"replications": 2, "metrics": ["response_rate"], "parameters": {FATIGUE: [0.0, 0.3]}})
    data["policies"] = {"old": data["policies"]["old"]}
    res = run_sweep(load_scenario(data))
    text = format_sweep(res)
    mean = res.table.query("point == 1")["mean"].iloc[0]
    assert "response_rate (%): old at each point" in text and f"{100 * mean:.1f}" in text
