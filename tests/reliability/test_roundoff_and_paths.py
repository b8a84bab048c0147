"""Hostile inputs, failure classes 6 and 7 (part): round-off that broke figures, and ``--set`` list paths.

Every interval holds its estimate (``statistics.contain``), figures draw NaN and collapsed
intervals, a figure that cannot be drawn is a note in the report (exit 0), a damaged run folder
is refused naming the file (exit 2), and a ``--set`` list segment means one item: a name first,
else an index 0..n-1, never a negative index.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simulator.experiments.comparison import compare, summarize
from simulator.experiments.statistics import contain, t_interval
from simulator.io import plotting
from simulator.io.plotting import report_figures
from simulator.io.plotting.panels import whiskers
from simulator.io.report import load_run

from .helpers import ROOT, cli, tiny, write_yaml

SMALL_RUN = ("run", str(ROOT / "scenarios" / "old_vs_new.yaml"), "-n", "2", "--set", "horizon_days=20",
             "--set", "market.members.count=2000", "--set", "market.recruiters.corporate_adaptive.count=31",
             "--set", "market.recruiters.corporate_fixed.count=11", "--set", "market.recruiters.agency.count=7",
             "--set", "market.recruiters.lite.count=6", "--set", "market.recruiters.talent_finder.count=4",
             "--set", "market.recruiters.bulk_heavy.count=1")
"""The probe's failing run: credits_granted is the same in both replications, so its relative
interval collapses and ``diff / mean`` came out one ulp above ``(diff + 0) * (1 / mean)``."""


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The output folder of :data:`SMALL_RUN` (about 5 s)."""
    from simulator.cli import main

    out = tmp_path_factory.mktemp("roundoff") / "run"
    assert main([*SMALL_RUN, "--out", str(out), "--no-progress", "-q"]) == 0
    return out


# --------------------------------------------------------------------------- the clipping


def test_contain_clips_the_probe_floats_and_leaves_good_bounds_bit_for_bit() -> None:
    low, high = contain(1.462962962962963, 1.4629629629629628, 1.4629629629629628)
    assert float(low) == 1.4629629629629628 and float(high) == 1.462962962962963
    low, high = contain(np.array([1.0, 2.0, np.nan, 5.0]), np.array([0.9, 2.5, 1.0, np.nan]),
                        np.array([1.1, 1.5, 2.0, np.nan]))
    assert low.tolist()[:3] == [0.9, 2.0, 1.0] and math.isnan(low[3])
    assert high.tolist()[:3] == [1.1, 2.0, 2.0] and math.isnan(high[3])


def _frame(values: dict[str, list[float]]) -> pd.DataFrame:
    rows = [{"policy": policy, "replication": i, "x": v} for policy, vs in values.items() for i, v in enumerate(vs)]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("values", [
    {"old": [8250.0], "new": [22290.0]},                  # one replication: every interval collapses
    {"old": [8250.0] * 3, "new": [22290.0] * 3},          # identical replications: the probe's case
    {"old": [2205.0] * 2, "new": [2997.0] * 2},
    {"old": [-10.0, -12.0, -11.0], "new": [-5.0, -6.5, -4.0]},  # a negative baseline mean
])
def test_every_comparison_interval_holds_its_estimate(values: dict[str, list[float]]) -> None:
    row = compare(_frame(values), "old", ["x"]).iloc[0]
    for estimate, low, high in (("diff", "ci_low", "ci_high"), ("rel_change", "rel_ci_low", "rel_ci_high"),
                                ("diff", "unpaired_ci_low", "unpaired_ci_high")):
        assert row[low] <= row[estimate] <= row[high], (estimate, row[low], row[estimate], row[high])
    summary = summarize(_frame(values), ["x"])
    assert (summary["ci_low"] <= summary["mean"]).all() and (summary["mean"] <= summary["ci_high"]).all()


def test_a_negative_baseline_gives_the_relative_interval_the_sign_of_its_change() -> None:
    row = compare(_frame({"old": [-10.0, -12.0, -11.0], "new": [-5.0, -6.5, -4.0]}), "old", ["x"]).iloc[0]
    assert row["rel_change"] < 0 and row["rel_ci_high"] < 0  # less negative = a smaller magnitude: -50%


def test_t_interval_of_one_value_is_nan_and_whiskers_draw_nothing() -> None:
    mean, low, high = t_interval(np.array([3.0]))
    assert mean == 3.0 and math.isnan(low) and math.isnan(high)
    err = whiskers(np.array([1.0, 2.0, 3.0]), np.array([np.nan, 2.0 + 1e-16, 2.5]), np.array([np.nan, 2.0, 3.5]))
    assert err.tolist() == [[0.0, 0.0, 0.5], [0.0, 0.0, 0.5]]


# --------------------------------------------------------------------------- figures and report


def test_the_probe_run_draws_every_figure_and_report_exits_0(small_run: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert {p.stem for p in (small_run / "figures").glob("*.png")} == {spec.name for spec in plotting.FIGURES}
    code, _, err = cli(capsys, "report", str(small_run))
    assert code == 0, err
    assert "could not be drawn" not in err and "could not be drawn" not in (small_run / "report.html").read_text()


def test_every_figure_draws_one_replication(small_run: Path) -> None:
    results = load_run(small_run)
    one = dataclasses.replace(results, replications=results.replications[results.replications["replication"] == 0],
                              timeseries=results.timeseries[results.timeseries["replication"] == 0],
                              breakdown_replications=results.breakdown_replications[
                                  results.breakdown_replications["replication"] == 0],
                              member_distribution=results.member_distribution[
                                  results.member_distribution["replication"] == 0])
    assert one.n_replications == 1
    for spec in plotting.FIGURES:
        assert plotting.render_png(spec.make(one))[:4] == b"\x89PNG", spec.name
    assert plotting.render_png(plotting.differences(one))[:4] == b"\x89PNG"


def test_a_figure_that_fails_is_a_note_in_the_report_and_exit_0(small_run: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    def broken(results: object) -> None:
        raise ValueError("'xerr' must not contain negative values")

    figures = tuple(dataclasses.replace(spec, make=broken) if spec.name == "differences" else spec
                    for spec in plotting.FIGURES)
    monkeypatch.setattr(report_figures, "FIGURES", figures)
    monkeypatch.setattr(plotting, "FIGURES", figures)
    folder = tmp_path / "run"
    shutil.copytree(small_run, folder)
    code, _, err = cli(capsys, "report", str(folder))
    assert code == 0, err
    assert "figure differences could not be drawn" in err
    page = (folder / "report.html").read_text()
    assert "This figure could not be drawn" in page and "must not contain negative values" in page


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:300])


def _bad_number(path: Path) -> None:
    lines = path.read_text().splitlines(keepends=True)
    cells = lines[2].split(",")
    cells[11] = "abc"
    lines[2] = ",".join(cells)
    path.write_text("".join(lines))


@pytest.mark.parametrize(("name", "damage", "why"), [
    ("replications.csv", _truncate, "truncated"),
    ("breakdown_replications.csv", _truncate, "truncated"),
    ("replications.csv", lambda p: p.write_text(""), "empty"),
    ("replications.csv", lambda p: p.write_bytes(b"\xff\xfe\x00garbage\n"), "not UTF-8"),
    ("timeseries.csv", lambda p: p.write_text("x,y\n1,2\n"), "missing column(s) policy"),
    ("replications.csv", _bad_number, "must hold numbers"),
    ("manifest.json", lambda p: p.write_text("{bad"), "not readable JSON"),
])
def test_a_damaged_run_folder_exits_2_naming_the_file(small_run: Path, tmp_path: Path, name: str, damage: object,
                                                       why: str, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "run"
    shutil.copytree(small_run, folder)
    damage(folder / name)  # type: ignore[operator]
    code, _, err = cli(capsys, "report", str(folder))
    assert code == 2, err
    assert f"{folder / name}:" in err and why in err
    assert "Traceback" not in err


# --------------------------------------------------------------------------- --set list paths


@pytest.mark.parametrize("segment", ["-1", "-6", "6", "01", "+1", "nope"])
def test_a_set_list_segment_outside_the_list_exits_2_with_the_allowed_items(
        segment: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "validate", str(ROOT / "scenarios" / "old_vs_new.yaml"),
                       "--set", f"market.recruiters.{segment}.count=5")
    assert code == 2, err
    assert f"no item '{segment}'" in err and "an index 0..5 or a name: corporate_adaptive" in err
    if segment.startswith("-"):
        assert "negative indices are not accepted" in err


def test_a_group_named_like_an_index_is_reached_by_its_name(tmp_path: Path) -> None:
    from simulator.scenario import load_scenario

    data = tiny()
    data["market"]["recruiters"][2]["name"] = "0"
    path = write_yaml(tmp_path / "digits.yaml", data)
    by_name = load_scenario(path, overrides=["market.recruiters.0.count=5"])
    assert [(g.name, g.count) for g in by_name.market.recruiters] == [("corporate", 24), ("lite", 8), ("0", 5)]
    by_index = load_scenario(path, overrides=["market.recruiters.1.count=5"])
    assert [g.count for g in by_index.market.recruiters] == [24, 5, 2]
    first = load_scenario(path, overrides=["market.recruiters.corporate.count=5"])
    assert [g.count for g in first.market.recruiters] == [5, 8, 2]
