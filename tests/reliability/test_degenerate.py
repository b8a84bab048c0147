"""Degenerate markets run with correct (often zero) metrics and no NaN in the written summary.

Zero recruiters (of a seat type, or at all), fewer members than one day's InMails, every member
inactive, no credits, refund windows of 0 and 1 day, a one-day horizon, a single replication.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from simulator.experiments.experiment import Results, run_experiment
from simulator.io.outputs import write_run
from simulator.scenario import load_scenario

from .helpers import tiny

NO_CREDITS = {"recruiter": 0, "recruiter_lite": 0}


def run(overrides: dict[str, Any], replications: int = 2, **changes: Any) -> Results:
    return run_experiment(load_scenario(tiny(horizon_days=20, **changes), overrides), replications=replications)


def metric(res: Results, name: str, policy: str | None = None) -> np.ndarray:
    r = res.replications
    if policy is not None:
        r = r[r["policy"] == policy]
    return r[name].to_numpy()


def assert_clean(res: Results, tmp_path: Path) -> dict[str, pd.DataFrame]:
    """Every written table reads back without NaN where a number is defined (see docs/scenarios.md)."""
    folder = write_run(res, tmp_path / "run")
    text = (folder / "summary.csv").read_text()
    assert ",," not in text and not any(line.endswith(",") for line in text.splitlines()), "empty cell"
    frames = {n: pd.read_csv(folder / f"{n}.csv") for n in ("summary", "comparison", "replications", "timeseries",
                                                             "breakdowns", "breakdown_replications")}
    for name in ("summary", "replications", "timeseries", "breakdowns", "breakdown_replications"):
        assert not frames[name].isna().any().any(), name
    comp = frames["comparison"]
    assert not comp[["diff", "ci_low", "ci_high", "baseline_mean", "policy_mean", "ci_shrink"]].isna().any().any()
    # rel_change is empty only where the baseline mean is 0 and the policy's is not (no relative size)
    undefined = comp["rel_change"].isna()
    assert ((comp.loc[undefined, "baseline_mean"] == 0) & (comp.loc[undefined, "diff"] != 0)).all()
    rates = frames["replications"][["response_rate", "acceptance_rate"]]
    assert ((rates >= 0) & (rates <= 1)).all().all()
    return frames


def test_no_recruiters_of_one_seat_type(tmp_path: Path) -> None:
    res = run({"market.recruiters.lite.count": 0})
    frames = assert_clean(res, tmp_path)
    seats = frames["breakdowns"].query("by == 'seat_type'")["label"].unique()
    assert list(seats) == ["recruiter"]
    assert (metric(res, "sent") > 0).all()


def test_no_recruiters_at_all(tmp_path: Path) -> None:
    res = run({"market.recruiters.lite.count": 0, "market.recruiters.corporate.count": 0,
               "market.recruiters.bulk.count": 0})
    assert_clean(res, tmp_path)
    for name in ("sent", "responses", "response_rate", "credits_granted", "credits_spent", "net_credit_burn",
                 "credits_per_response", "inmails_per_active_member", "stockout_recruiter_days"):
        assert (metric(res, name) == 0).all(), name


@pytest.mark.parametrize("members", [1, 5])
def test_fewer_members_than_one_days_inmails(members: int, tmp_path: Path) -> None:
    res = run({"market.members.count": members})
    assert_clean(res, tmp_path)
    daily = res.timeseries.query("metric == 'sent' and day == 2")["value"]
    assert (daily > members).all()  # more InMails a day than members: they all go to the same few people
    sent, active = metric(res, "sent"), metric(res, "inmails_per_active_member")
    assert (active <= sent).all() and (sent > 0).all()


def test_every_member_inactive(tmp_path: Path) -> None:
    res = run({"market.members.segments.a.active_share": 0, "market.members.segments.b.active_share": 0})
    assert_clean(res, tmp_path)
    for name in ("responses", "accepted", "declined", "response_rate", "acceptance_rate", "credits_per_response",
                 "inmails_per_active_member", "unanswered_per_active_member"):
        assert (metric(res, name) == 0).all(), name
    assert (metric(res, "sent") > 0).all()
    assert (metric(res, "net_credit_burn", "old") == 0).all()  # refund on silence gives every credit back
    assert (metric(res, "net_credit_burn", "new") == metric(res, "credits_spent", "new")).all()  # none back


def test_zero_allotment(tmp_path: Path) -> None:
    res = run({"policies.old.allotments": NO_CREDITS, "policies.new.allotments": NO_CREDITS,
               "policies.new.grants": []})
    assert_clean(res, tmp_path)
    for name in ("sent", "credits_granted", "credits_spent", "credits_refunded", "net_credit_burn", "response_rate"):
        assert (metric(res, name) == 0).all(), name
    assert (metric(res, "stockout_recruiter_days") > 0).all()


@pytest.mark.parametrize("window", [0, 1])
def test_refund_windows_of_zero_and_one_day(window: int, tmp_path: Path) -> None:
    res = run({"policies.old.refund.window_days": window, "policies.new.refund.window_days": window,
               "policies.new.threshold": {"window_days": 1}})
    assert_clean(res, tmp_path)
    for p in ("old", "new"):
        assert (metric(res, "credits_refunded", p) <= metric(res, "credits_spent", p)).all()
    assert (metric(res, "credits_refunded", "old") > 0).all()


def test_one_day_horizon_and_one_replication(tmp_path: Path) -> None:
    res = run({"horizon_days": 1}, replications=1)
    frames = assert_clean(res, tmp_path)
    assert frames["timeseries"]["day"].max() == 0
    summ = frames["summary"]
    assert (summ["n"] == 1).all() and (summ["std"] == 0).all()
    assert np.allclose(summ["ci_low"], summ["mean"]) and np.allclose(summ["ci_high"], summ["mean"])
    comp = frames["comparison"]
    assert np.allclose(comp["ci_low"], comp["diff"]) and comp["p_value"].isna().all()
    assert not comp["significant"].any()


def test_identical_policies_differ_by_exactly_zero_even_from_a_zero_baseline(tmp_path: Path) -> None:
    res = run({}, policies={"a": {"preset": "old_2014"}, "b": {"preset": "old_2014", "description": "copy"}},
              baseline="a")
    frames = assert_clean(res, tmp_path)
    comp = frames["comparison"]
    assert (comp["diff"] == 0).all() and (comp["rel_change"] == 0).all() and (comp["p_value"] == 1).all()
    assert comp.set_index("metric").loc["credits_expired", "baseline_mean"] == 0  # 0 -> 0 reads as 0%, not NaN
