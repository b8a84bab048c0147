"""The report's face-validity section: a transition run, a run without a switch, a run without daily series,
and the per-month warned share against a hand count from the daily series."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from scenario_helpers import tiny

from simulator.api import run_scenario
from simulator.io.face_validity import (
    DOCUMENT_FIGURES,
    monthly_threshold_shares,
    reviewed_seats,
    switch_dates,
    threshold_contrasts,
    weekly_response_rate,
)
from simulator.io.face_validity_section import SECTION_TITLE
from simulator.io.report import build_report, load_run


def transition() -> dict[str, Any]:
    """A tiny changeover: the 2014 rules against the switch on 2015-02-01, from mid-December, with a bar that bites."""
    data = tiny(start_date="2014-12-15", horizon_days=75, policies={
        "stay_old": {"preset": "old_2014", "threshold": {"min_sends": 30, "min_rate": 0.2}},
        "transition": {"preset": "transition_2015", "threshold": {"min_sends": 30, "min_rate": 0.2}}},
        baseline="stay_old")
    return data


def rise() -> dict[str, Any]:
    data = tiny(horizon_days=40, baseline="no_threshold", policies=copy.deepcopy(
        {"no_threshold": {"preset": "pre_threshold_2014"}, "threshold": {"preset": "old_2014"}}))
    return data


@pytest.fixture(scope="module")
def transition_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    res = run_scenario(transition(), replications=3)
    return res.write(tmp_path_factory.mktemp("fv") / "transition")


def _section(folder: Path) -> str:
    report = build_report(folder, dpi=50)
    assert report.errors == {}
    text = report.path.read_text(encoding="utf-8")
    start = text.index(f"<h2>{SECTION_TITLE}</h2>")
    return text[start:text.index("</section>", start)]


def test_a_transition_run_shows_both_figures_and_a_verdict_per_figure(transition_run: Path) -> None:
    section = _section(transition_run)
    assert section.count("data:image/png;base64,") == 2
    assert "(a) The response rate around the switch" in section and "(b) Warnings and Improvement Periods" in section
    assert "in the four weeks after transition switches (2015-02-01)" in section
    # one sentence per figure, each with a verdict
    for verdict in ("The run <b class=", "reviewed seats are in an Improvement Period"):
        assert verdict in section
    for figure in DOCUMENT_FIGURES.values():
        assert figure.source in section
    assert "run <code>scenarios/threshold_only.yaml</code>" in section  # no 2014 contrast in this run
    results = load_run(transition_run)
    assert switch_dates(results) == {"transition": dt.date(2015, 2, 1)}


def test_a_run_without_a_switch_renders_and_measures_the_2014_rise(tmp_path: Path) -> None:
    res = run_scenario(rise(), replications=2)
    folder = res.write(tmp_path / "rise")
    results = load_run(folder)
    assert switch_dates(results) == {} and threshold_contrasts(results) == ["threshold"]
    section = _section(folder)
    assert "switches" not in section
    rel = res.comparison.set_index(["policy", "metric"]).loc[("threshold", "response_rate"), "rel_change"]
    assert f"threshold {100 * rel:+.1f}%" in section


def test_a_run_without_daily_series_says_how_to_get_them(tmp_path: Path) -> None:
    res = run_scenario(tiny(horizon_days=20), replications=2, timeseries=False)
    folder = res.write(tmp_path / "plain")
    section = _section(folder)
    assert "kept no daily series" in section and "inmail-sim run scenario.resolved.yaml" in section
    assert "data:image/png" not in section
    assert "20-30% is generally considered optimal" in section  # the table still holds what the run measured


def test_monthly_shares_against_a_hand_count(transition_run: Path) -> None:
    results = load_run(transition_run)
    monthly = monthly_threshold_shares(results)
    ts = pd.read_csv(transition_run / "timeseries.csv")
    bd = pd.read_csv(transition_run / "breakdown_replications.csv")
    start = dt.date(2014, 12, 15)
    assert set(monthly["month"]) == {dt.date(2014, 12, 1), dt.date(2015, 1, 1), dt.date(2015, 2, 1)}
    assert monthly["warned_mean"].max() > 0  # the bar bites, so the count below is not a count of zeros
    for policy in ("stay_old", "transition"):
        for month in sorted(set(monthly["month"])):
            shares, ip = [], []
            for replication in range(3):
                seats = bd[(bd["by"] == "seat_type") & (bd["policy"] == policy) & (bd["replication"] == replication)
                           & bd["label"].isin(["recruiter", "recruiter_professional_services"])]["recruiters"].sum()
                warned, in_ip, days = 0.0, 0.0, 0
                for row in ts[(ts["policy"] == policy) & (ts["replication"] == replication)].itertuples():
                    date = start + dt.timedelta(days=int(row.day))
                    if (date.year, date.month) != (month.year, month.month):
                        continue
                    if row.metric == "warnings":
                        warned += row.value
                        days += 1
                    elif row.metric == "in_improvement":
                        in_ip += row.value
                shares.append(warned / seats)
                ip.append(in_ip / days / seats)
            got = monthly[(monthly["policy"] == policy) & (monthly["month"] == month)].iloc[0]
            assert got["warned_mean"] == pytest.approx(sum(shares) / 3, abs=1e-12)
            assert got["warned_low"] == pytest.approx(min(shares)) and got["warned_high"] == pytest.approx(max(shares))
            assert got["ip_mean"] == pytest.approx(sum(ip) / 3, abs=1e-12)
    assert (reviewed_seats(results)["reviewed"] == 26).all()  # corporate 24 + bulk 2 (lite seats are not reviewed)


def test_weekly_rate_is_responses_over_sent_of_the_week(transition_run: Path) -> None:
    results = load_run(transition_run)
    weekly = weekly_response_rate(results)
    ts = pd.read_csv(transition_run / "timeseries.csv")
    first = ts[(ts["policy"] == "stay_old") & (ts["day"] < 7)]
    per_rep = first.pivot_table(index="replication", columns="metric", values="value", aggfunc="sum")
    rates = per_rep["responses"] / per_rep["sent"]
    got = weekly[(weekly["policy"] == "stay_old") & (weekly["week"] == dt.date(2014, 12, 15))].iloc[0]
    assert got["mean"] == pytest.approx(rates.mean()) and got["low"] == pytest.approx(rates.min())
    assert got["n"] == 3
