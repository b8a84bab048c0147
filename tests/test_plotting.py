"""Figures: each renders from a tiny run and draws the numbers of the results (artists' data, not pixels)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from scenario_helpers import ROOT, tiny

from simulator.api import Results, run_scenario
from simulator.core.metrics import MEMBER_BINS
from simulator.experiments.experiment import empty_member_frame
from simulator.io import plotting
from simulator.io.plotting import report_figures


@pytest.fixture(scope="module")
def res() -> Results:
    return run_scenario(tiny(), {"horizon_days": 30}, replications=3)


def _series(res: Results, metric: str) -> pd.DataFrame:
    """[replication x day] for policy 'new'."""
    ts = res.timeseries
    sub = ts[(ts["metric"] == metric) & (ts["policy"] == "new")]
    return sub.pivot(index="replication", columns="day", values="value")


def _line(fig: object, label: str) -> np.ndarray:
    ax = fig.axes[0]  # type: ignore[attr-defined]
    lines = [ln for ln in ax.get_lines() if ln.get_label() == label]
    assert len(lines) == 1, [ln.get_label() for ln in ax.get_lines()]
    return np.asarray(lines[0].get_ydata(), dtype=float)


@pytest.mark.parametrize(("fn", "top"), [(plotting.response_rate, "responses"), (plotting.acceptance_rate, "accepted")])
def test_rates_are_7_day_ratios_averaged_over_replications(res: Results, fn: object, top: str) -> None:
    fig = fn(res)  # type: ignore[operator]
    ax = fig.axes[0]
    assert [ln.get_label() for ln in ax.get_lines()] == ["old", "new"]
    num = _series(res, top).T.rolling(7, min_periods=1).sum().T
    den = _series(res, "sent").T.rolling(7, min_periods=1).sum().T
    expected = (100 * num / den).mean(axis=0).to_numpy()
    np.testing.assert_allclose(_line(fig, "new"), expected, rtol=1e-9)
    bands = [c for c in ax.collections if (c.get_gid() or "").startswith("band:")]
    assert sorted(c.get_gid() for c in bands) == ["band:new", "band:old"]
    ys = bands[0].get_paths()[0].vertices[:, 1]
    line = _line(fig, bands[0].get_gid().split(":")[1])
    assert ys.min() <= np.nanmin(line) and ys.max() >= np.nanmax(line)
    assert "%" in ax.get_ylabel()


def test_credit_series_are_per_recruiter(res: Results) -> None:
    recruiters = res.scenario.market.recruiter_count
    fig = plotting.credit_balance(res)
    np.testing.assert_allclose(_line(fig, "new"), _series(res, "balance").mean(axis=0) / recruiters)
    fig = plotting.net_credit_burn(res)
    burn = _series(res, "net_credit_burn").cumsum(axis=1).mean(axis=0) / recruiters
    np.testing.assert_allclose(_line(fig, "new"), burn)
    assert "credits" in fig.axes[0].get_ylabel()


def test_threshold_events_add_up_to_the_metrics(res: Results) -> None:
    fig = plotting.threshold_events(res)
    labels = [ln.get_label() for ln in fig.axes[0].get_lines()]
    assert labels == ["old: warnings", "new: warnings", "old: Improvement Periods", "new: Improvement Periods"]
    reps = res.replications
    for pol in ("old", "new"):
        final = _line(fig, f"{pol}: warnings")[-1]
        assert final == pytest.approx(reps[reps["policy"] == pol]["warnings"].mean())
    assert plotting.in_improvement(res).axes[0].get_lines()[0].get_label() == "old"
    fatigue = plotting.member_fatigue(res)
    np.testing.assert_allclose(_line(fatigue, "new"), _series(res, "mean_member_fatigue").mean(axis=0))


def test_forest_plot_shows_the_relative_change_of_every_metric(res: Results) -> None:
    fig = plotting.differences(res)
    ax = fig.axes[0]
    comp = res.comparison.set_index("metric")
    points = np.concatenate([c.get_offsets() for c in ax.collections if (c.get_gid() or "").endswith(":new")
                             and c.get_gid().split(":")[0] in ("sig", "nonsig")])
    finite = comp["rel_change"].dropna()
    assert len(points) == len(comp)
    assert np.isfinite(points[:, 0].astype(float)).sum() == len(finite)
    reps = res.replications.groupby("policy")["response_rate"].mean()
    rel = 100 * (reps["new"] - reps["old"]) / reps["old"]
    assert any(abs(x - rel) < 1e-9 for x in points[:, 0].astype(float))
    assert len(ax.get_yticklabels()) == len(comp) and ax.get_xscale() == "symlog"
    texts = [t.get_text() for t in ax.texts]
    assert any(t.startswith(("+", "-")) and " pp " in t for t in texts)  # the absolute difference of a rate


@pytest.mark.parametrize("by", ["personalization_band", "seat_type", "behaviour"])
def test_winners_and_losers_per_group(res: Results, by: str) -> None:
    fig = plotting.breakdown(res, by, "response_rate")
    ax = fig.axes[0]
    bd = res.breakdowns
    sub = bd[(bd["by"] == by) & (bd["metric"] == "response_rate") & (bd["policy"] == "new")]
    container = next(c for c in ax.containers if c.get_label() == "new")
    np.testing.assert_allclose(container.lines[0].get_ydata(), 100 * sub["mean"].to_numpy())
    assert len(ax.get_xticklabels()) == sub["label"].nunique()
    fig = plotting.breakdown(res, by, "net_credit_burn_per_recruiter")
    assert "credits" in fig.axes[0].get_ylabel()


def test_winners_losers_figure_draws_responses_change_stockouts_and_credits(res: Results) -> None:
    from simulator.io.tables import ratio_text

    fig = report_figures.winners_losers(res)
    keys = list(report_figures.BREAKDOWN_PANELS)
    assert len(fig.axes) == 4 * len(keys)
    outcomes = res.group_outcomes
    for i, by in enumerate(keys):
        change, rate, stock, cpr = fig.axes[4 * i: 4 * i + 4]
        rows = outcomes[(outcomes["by"] == by) & (outcomes["policy"] == "new")].set_index(["metric", "label"])
        labels = list(dict.fromkeys(rows.loc["responses"].index))
        dots = next(c for c in change.collections if c.get_gid() == "change:new")
        np.testing.assert_allclose(dots.get_offsets()[:, 1], 100 * rows.loc["responses", "rel_change"].to_numpy())
        assert "responses" in change.get_title("left").lower() and "%" in change.get_ylabel()
        assert "Response rate" in rate.get_title("left")
        # stock-out levels: the mean over replications of days short of credits per recruiter
        br = res.breakdown_replications
        sub = br[(br["by"] == by) & (br["policy"] == "old")]
        expected = (sub["stockout_recruiter_days"] / sub["recruiters"]).groupby(sub["label"], sort=False).mean()
        container = next(c for c in stock.containers if c.get_label() == "old")
        np.testing.assert_allclose(container.lines[0].get_ydata(), expected.reindex(labels).to_numpy())
        ratios = [t.get_text().split("\n")[0] for t in stock.texts if t.get_gid() in ("ratio", "worse_off")]
        assert ratios == [ratio_text(v) for v in rows.loc["stockout_days_per_recruiter", "ratio"]]
        losers = int(rows.loc[["responses", "stockout_days_per_recruiter"], "worse_off"].sum())
        marked = [t for ax in (change, stock) for t in ax.texts if t.get_gid() == "worse_off"]
        assert len(marked) == losers and all("worse off" in t.get_text() for t in marked)
        assert "per response" in cpr.get_ylabel()
    assert outcomes["worse_off"].any()  # the tiny market has a loser (Recruiter Lite runs out of credits)


def test_winners_losers_of_one_policy_shows_levels_only() -> None:
    one = run_scenario(tiny(policies={"old": {"preset": "old_2014"}}), {"horizon_days": 15}, replications=2)
    fig = report_figures.winners_losers(one)
    assert len(fig.axes) == 2 * len(report_figures.BREAKDOWN_PANELS)


def test_threshold_share_is_warned_recruiters_over_recruiters(res: Results) -> None:
    fig = plotting.threshold_share(res, "group")
    br = res.breakdown_replications
    sub = br[(br["by"] == "group") & (br["policy"] == "old")]
    expected = (100 * sub["warnings"] / sub["recruiters"]).groupby(sub["label"], sort=False).mean()
    container = next(c for c in fig.axes[0].containers if c.get_label() == "old")
    np.testing.assert_allclose(container.lines[0].get_ydata(), expected.to_numpy())


def _hist_bars(ax: object, policy: str) -> list[object]:
    return [p for p in ax.patches if p.get_gid() == f"hist:{policy}"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("quantity", ["received", "unanswered"])
def test_member_distribution_of_a_real_run_is_a_histogram_of_shares(res: Results, quantity: str) -> None:
    fig = plotting.member_distribution(res, quantity)
    ax = fig.axes[0]
    md = res.member_distribution
    for pol in ("old", "new"):
        heights = np.array([b.get_height() for b in _hist_bars(ax, pol)])
        assert len(heights) == len(MEMBER_BINS)
        assert heights.sum() == pytest.approx(100.0)
        sub = md[(md["policy"] == pol) & (md["quantity"] == quantity)]
        counts = sub.pivot(index="replication", columns="bin", values="members").to_numpy(dtype=float)
        np.testing.assert_allclose(heights, (100 * counts / counts.sum(axis=1, keepdims=True)).mean(axis=0))
    assert [t.get_text() for t in ax.get_xticklabels()] == plotting.bin_labels(MEMBER_BINS)
    assert "share of active members" in ax.get_ylabel() and "not recorded" not in ax.get_xlabel()


def test_members_figure_draws_both_histograms(res: Results) -> None:
    fig = plotting.members(res)
    for ax in fig.axes[:2]:
        for pol in ("old", "new"):
            assert sum(b.get_height() for b in _hist_bars(ax, pol)) == pytest.approx(100.0)


def test_member_distribution_falls_back_to_the_mean_then_uses_the_histogram(res: Results) -> None:
    bare = dataclasses.replace(res, member_distribution=empty_member_frame())  # an old run folder
    fig = plotting.member_distribution(bare, "received")
    container = next(c for c in fig.axes[0].containers if c.get_label() == "new")
    summ = res.summary.set_index(["policy", "metric"])
    assert container.lines[0].get_ydata()[0] == pytest.approx(summ.loc[("new", "inmails_per_active_member"), "mean"])
    assert "not recorded" in fig.axes[0].get_xlabel() and not _hist_bars(fig.axes[0], "new")
    rows = [{"policy": p, "replication": r, "quantity": "received", "bin": b, "members": m}
            for p, counts in (("old", [10, 30, 60]), ("new", [20, 20, 60])) for r in range(2)
            for b, m in zip((0, 1, 3), counts, strict=True)]
    with_hist = dataclasses.replace(res, member_distribution=pd.DataFrame(rows))
    fig = plotting.member_distribution(with_hist, "received")
    bars = next(c for c in fig.axes[0].containers if c.get_label() == "new")
    np.testing.assert_allclose([b.get_height() for b in bars], [20, 20, 60])
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["0", "1-2", "3+"]
    fig = plotting.member_distribution(with_hist, "unanswered")  # a quantity the frame lacks: the mean
    assert "not recorded" in fig.axes[0].get_xlabel()


def test_report_figures_render_and_share_colours(res: Results) -> None:
    for spec in plotting.FIGURES:
        png = plotting.render_png(spec.make(res), dpi=40)
        assert png[:8] == b"\x89PNG\r\n\x1a\n", spec.name
    colours = plotting.policy_colors(res)
    line = next(ln for ln in plotting.response_rate(res).axes[0].get_lines() if ln.get_label() == "new")
    assert line.get_color() == colours["new"] != colours["old"]


def test_ax_is_drawn_into_and_its_figure_returned(res: Results) -> None:
    fig = Figure()
    ax = fig.subplots(1, 2)[1]
    assert plotting.response_rate(res, ax=ax) is fig and ax.get_lines()
    assert res.plot.breakdown("seat_type", ax=fig.axes[0]) is fig
    assert isinstance(res.plot.winners_losers(), Figure)


def test_without_daily_series_the_time_panels_say_so(res: Results) -> None:
    bare = Results(res.scenario, res.replications, res.timeseries.iloc[0:0], res.breakdown_replications)
    fig = plotting.rates(bare)
    assert not fig.axes[0].get_lines() and "not recorded" in fig.axes[0].texts[0].get_text()
    assert plotting.render_png(plotting.threshold(bare), dpi=30)


def test_write_figures_keeps_going_when_one_fails(res: Results, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    paths = plotting.write_figures(res, tmp_path, dpi=30)
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == sorted(f"{s.name}.png" for s in plotting.FIGURES)
    assert set(paths) == {s.name for s in plotting.FIGURES}

    def boom(_: Results) -> None:
        raise RuntimeError("broken figure")

    specs = list(plotting.FIGURES)
    specs[0] = plotting.FigureSpec(specs[0].name, "t", "c", boom)  # type: ignore[arg-type]
    monkeypatch.setattr(report_figures, "FIGURES", tuple(specs))  # the list write_figures draws
    with pytest.raises(plotting.FigureError, match="broken figure"):
        plotting.write_figures(res, tmp_path / "again", dpi=30)
    assert len(list((tmp_path / "again" / "figures").iterdir())) == len(specs) - 1


def test_bin_labels() -> None:
    assert plotting.bin_labels([0, 1, 2, 3, 5, 10]) == ["0", "1", "2", "3-4", "5-9", "10+"]


def test_only_plotting_imports_matplotlib() -> None:
    code = ("import sys, simulator, simulator.experiments.experiment, simulator.io.outputs, simulator.cli, "
            "simulator.io.tables, simulator.io.report; assert 'matplotlib' not in sys.modules, 'matplotlib imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stderr


def test_figures_display_in_jupyter_without_pyplot(res: Results) -> None:
    """A returned figure is shown by IPython's display machinery as a PNG (no %matplotlib needed)."""
    from IPython.core.interactiveshell import InteractiveShell

    fig = res.plot.response_rate()
    data, _ = InteractiveShell.instance().display_formatter.format(fig)
    assert data["image/png"][:8] == b"\x89PNG\r\n\x1a\n"
