"""Who wins, who loses: the marking rule, the per-group outcomes and their CIs, the printed table end to end."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scenario_helpers import tiny, write_yaml
from scipy import stats

from simulator.api import Results, run_scenario
from simulator.cli import main
from simulator.experiments.group_outcomes import (
    WORSE_OFF_RULE,
    better_off,
    group_outcome_replications,
    group_outcomes,
    group_verdicts,
    worse_off,
)
from simulator.io.tables import BREAKDOWN_WIDTHS, diff_interval, ratio_text, rel_interval

# --------------------------------------------------------------------------- the marking rule


@pytest.mark.parametrize(("metric", "low", "high", "worse", "better"), [
    ("responses", -30.0, -10.0, True, False),         # CI entirely below 0: lost responses
    ("responses", -30.0, 5.0, False, False),          # CI spans 0: no evidence either way
    ("responses", -30.0, 0.0, False, False),          # CI touches 0: does not exclude it
    ("responses", 2.0, 9.0, False, True),             # more responses: a gain
    ("stockout_days_per_recruiter", 0.5, 3.0, True, False),   # more days short of credits: a loss
    ("stockout_days_per_recruiter", -0.1, 3.0, False, False),
    ("stockout_days_per_recruiter", -3.0, -0.5, False, True),
    ("response_rate", -3.0, -1.0, False, False),      # not a loss quantity
    ("credits_per_response", 1.0, 3.0, False, False),
    ("responses", math.nan, math.nan, False, False),  # one replication: no interval, no verdict
])
def test_worse_off_only_when_the_ci_excludes_zero_on_the_losing_side(
        metric: str, low: float, high: float, worse: bool, better: bool) -> None:
    assert worse_off(metric, low, high) is worse
    assert better_off(metric, low, high) is better


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """A breakdown_replications frame of one subgrouping from (label, policy, replication, values) rows."""
    base = {"by": "seat_type", "recruiters": 10.0, "response_rate": 0.2, "stockout_recruiter_days": 0.0}
    return pd.DataFrame([{**base, **row} for row in rows])


def test_group_outcomes_pair_per_replication_ratios_and_mark_losers() -> None:
    # 4 replications, two groups: "lite" loses responses and runs short of credits; "full" does not
    old_lite = [100.0, 120.0, 90.0, 110.0]
    new_lite = [70.0, 80.0, 66.0, 74.0]
    burn_old = [10.0, 30.0, 20.0, 40.0]
    burn_new = [140.0, 200.0, 100.0, 180.0]
    rows = []
    for r in range(4):
        rows.append({"label": "lite", "policy": "old", "replication": r, "responses": old_lite[r],
                     "net_credit_burn": burn_old[r], "stockout_recruiter_days": 10.0 + r})
        rows.append({"label": "lite", "policy": "new", "replication": r, "responses": new_lite[r],
                     "net_credit_burn": burn_new[r], "stockout_recruiter_days": 60.0 + 2 * r})
        rows.append({"label": "full", "policy": "old", "replication": r, "responses": 50.0 + r,
                     "net_credit_burn": 5.0, "stockout_recruiter_days": 3.0})
        rows.append({"label": "full", "policy": "new", "replication": r, "responses": 49.0 + 3 * (r % 2),
                     "net_credit_burn": 6.0, "stockout_recruiter_days": 3.0 + (r % 2)})
    out = group_outcomes(_frame(rows), "old").set_index(["label", "metric"])
    t = stats.t.ppf(0.975, 3)

    resp = out.loc[("lite", "responses")]
    d = np.subtract(new_lite, old_lite)
    assert resp["diff"] == pytest.approx(d.mean())
    assert resp["ci_high"] == pytest.approx(d.mean() + t * d.std(ddof=1) / 2)
    assert resp["rel_change"] == pytest.approx(d.mean() / np.mean(old_lite))
    assert bool(resp["worse_off"]) and not bool(resp["better_off"])

    # credits per response: the ratio of each replication, then paired - not the ratio of the means
    cpr = out.loc[("lite", "credits_per_response")]
    per_rep = np.divide(burn_new, new_lite) - np.divide(burn_old, old_lite)
    assert cpr["diff"] == pytest.approx(per_rep.mean())
    assert cpr["ci_low"] == pytest.approx(per_rep.mean() - t * per_rep.std(ddof=1) / 2)
    assert cpr["policy_mean"] != pytest.approx(np.sum(burn_new) / np.sum(new_lite))

    stock = out.loc[("lite", "stockout_days_per_recruiter")]
    assert stock["baseline_mean"] == pytest.approx(1.15) and stock["policy_mean"] == pytest.approx(6.3)
    assert stock["ratio"] == pytest.approx(6.3 / 1.15)
    assert bool(stock["worse_off"])

    assert not out.loc[("full", "responses"), "worse_off"]
    assert not out.loc[("full", "stockout_days_per_recruiter"), "worse_off"]  # +0.05 days, CI spans 0
    verdicts = group_verdicts(group_outcomes(_frame(rows), "old")).set_index("label")
    assert verdicts.loc["lite", "lost_on"] == "responses, stockout_days_per_recruiter"
    assert bool(verdicts.loc["lite", "worse_off"]) and not bool(verdicts.loc["full", "worse_off"])


def test_a_replication_without_responses_leaves_out_only_its_credits_per_response() -> None:
    rows = [{"label": "g", "policy": p, "replication": r, "responses": 0.0 if (p, r) == ("new", 0) else 10.0,
             "net_credit_burn": 20.0} for p in ("old", "new") for r in range(3)]
    per_rep = group_outcome_replications(_frame(rows))
    assert per_rep["credits_per_response"].isna().sum() == 1
    out = group_outcomes(_frame(rows), "old").set_index("metric")
    assert out.loc["credits_per_response", "n"] == 2 and out.loc["responses", "n"] == 3


def test_one_policy_has_no_outcomes() -> None:
    rows = [{"label": "g", "policy": "old", "replication": r, "responses": 10.0, "net_credit_burn": 2.0}
            for r in range(3)]
    assert group_outcomes(_frame(rows), "old").empty


def test_number_texts() -> None:
    assert ratio_text(6.0) == "6.0x" and ratio_text(14.2) == "14x" and ratio_text(0.5) == "0.5x"
    assert ratio_text(math.nan) == "n/a" and ratio_text(0.01) == "<0.1x"
    assert rel_interval(-0.22, -0.25, -0.19) == "-22% [-25,-19]"
    assert rel_interval(-0.013, -0.021, -0.005, True) == "-1.3% [-2.1%, -0.5%]"
    # an interval that excludes 0 never shows a bound of 0: more decimals instead
    assert rel_interval(-0.02, -0.033, -0.004) == "-2.0% [-3.3,-0.4]"
    assert diff_interval(1.94, 0.004, 3.876) == "+1.940 [+0.004, +3.876]"
    assert diff_interval(2.5, 2.1, 2.9) == "+2.50 [+2.10, +2.90]"  # two digits of the half-width
    assert diff_interval(0.0, 0.0, 0.0) == "0 [0, 0]"


# --------------------------------------------------------------------------- end to end


def loser_scenario() -> dict[str, Any]:
    """The tiny market with 10 Recruiter Lite seats sending 6 InMails a day: their small allotment,
    no longer refunded for silence under the 2015 rules, runs out - a seat type that clearly loses."""
    data = tiny(horizon_days=40)
    lite = data["market"]["recruiters"][1]
    lite["count"], lite["daily_volume"] = 10, 6
    return data


@pytest.fixture(scope="module")
def loser_run() -> Results:
    return run_scenario(loser_scenario(), replications=4)


def _lite_row(text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith("recruiter_lite "))


def test_the_losing_seat_type_is_marked_with_its_numbers(loser_run: Results) -> None:
    text = loser_run.table()
    assert max(len(line) for line in text.splitlines()) <= 100
    br = loser_run.breakdown_replications
    lite = br[(br["by"] == "seat_type") & (br["label"] == "recruiter_lite")].pivot(
        index="replication", columns="policy", values="responses")
    d = (lite["new"] - lite["old"]).to_numpy()
    n = len(d)                                 # 4 paired replications
    half = stats.t.ppf(0.975, n - 1) * d.std(ddof=1) / math.sqrt(n)
    base = lite["old"].mean()
    assert (d.mean() + half) / base < -0.1     # clearly worse off: the whole CI is below -10%
    row = _lite_row(text)
    assert row.rstrip().endswith("LOSES"), row
    change = rel_interval(d.mean() / base, (d.mean() - half) / base, (d.mean() + half) / base)
    assert change + "*" in row, (change, row)
    stock = br[(br["by"] == "seat_type") & (br["label"] == "recruiter_lite")].groupby("policy")[
        "stockout_recruiter_days"].mean() / 10
    assert ratio_text(stock["new"] / stock["old"]) in row
    corporate = next(line for line in text.splitlines() if line.startswith("recruiter "))
    assert "LOSES" not in corporate
    lines = text.splitlines()
    at = lines.index("worse off under new:")
    assert lines[at + 1].startswith(f"  seat_type recruiter_lite: responses {change.split(' [')[0]}")
    assert "LOSES = " + WORSE_OFF_RULE in lines


def test_cli_run_prints_the_loser(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_yaml(tmp_path / "losers.yaml", loser_scenario())
    code = main(["run", str(path), "--out", str(tmp_path / "out"), "-n", "4", "--no-progress", "--no-figures"])
    out = capsys.readouterr().out
    assert code == 0
    assert _lite_row(out).rstrip().endswith("LOSES")
    assert "worse off under new:" in out and "who wins, who loses" in out
    header = next(line for line in out.splitlines() if line.startswith("seat_type "))
    assert len(header) <= sum(BREAKDOWN_WIDTHS) + len(BREAKDOWN_WIDTHS)
