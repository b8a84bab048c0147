"""``scale: F`` / ``--scale F``: members and recruiter groups scaled together, so the answer is kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from scenario_helpers import SCENARIOS, tiny, write_yaml
from scipy import stats

from simulator import run_scenario
from simulator.cli import main
from simulator.core.config import Market
from simulator.scenario import ScenarioError, load_scenario
from simulator.scenario.scale import members_per_recruiter, scaled_group_count, smallest_scale

OLD_VS_NEW = SCENARIOS / "old_vs_new.yaml"
FULL_GROUPS = {"corporate_adaptive": 520, "corporate_fixed": 180, "agency": 120, "lite": 100, "talent_finder": 65,
               "bulk_heavy": 15}


def counts(market: Market) -> dict[str, int]:
    return {group.name: group.count for group in market.recruiters}


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------- counts scale together


def test_scale_multiplies_members_and_every_group_together() -> None:
    full = load_scenario(OLD_VS_NEW)
    fifth = load_scenario(OLD_VS_NEW, scale=0.2)
    assert counts(full.market) == FULL_GROUPS
    assert fifth.market.members.count == 20_000
    assert counts(fifth.market) == {"corporate_adaptive": 104, "corporate_fixed": 36, "agency": 24, "lite": 20,
                                    "talent_finder": 13, "bulk_heavy": 3}
    assert members_per_recruiter(fifth.market) == members_per_recruiter(full.market) == 100
    for before, after in zip(full.market.recruiters, fifth.market.recruiters, strict=True):
        # per-recruiter quantities do not move
        assert (after.team_size, after.daily_volume, after.bulk_share, after.seat_type) == \
               (before.team_size, before.daily_volume, before.bulk_share, before.seat_type)
    assert fifth.policies == full.policies  # allotments, refunds, thresholds: per recruiter, unchanged
    assert fifth.market.response == full.market.response and fifth.market.members.segments == \
           full.market.members.segments
    assert (fifth.scale, fifth.full_market, fifth.overrides) == (0.2, full.market, ("scale=0.2",))


@pytest.mark.parametrize(("count", "team_size", "factor", "expected"), [
    (0, 4, 0.5, 0),      # an empty group stays empty
    (520, 4, 0.01, 5),   # proportional when above a team
    (120, 4, 0.01, 4),   # never below one team ...
    (3, 4, 0.1, 3),      # ... or all the group had
    (15, 1, 0.01, 1),    # at least one recruiter
    (45, 1, 0.5, 23),    # half up, not to even
    (15, 1, 2.5, 38),    # scaling up
])
def test_group_counts_round_half_up_and_keep_a_team(count: int, team_size: int, factor: float,
                                                    expected: int) -> None:
    assert scaled_group_count(count, team_size, factor) == expected


def test_scale_one_is_the_scenario_as_written() -> None:
    full = load_scenario(OLD_VS_NEW)
    same = load_scenario(OLD_VS_NEW, scale=1.0)
    assert same.market == full.market and same.full_market is None


def test_default_market_scales_too() -> None:
    data: dict[str, Any] = {"policies": {"old": {"preset": "old_2014"}}}
    scaled = load_scenario(data, scale=0.1)
    assert scaled.market.members.count == 10_000
    assert counts(scaled.market) == {"standard": 100}


def test_scale_is_applied_after_extends_and_set(tmp_path: Path) -> None:
    child = write_yaml(tmp_path / "child.yaml", {"extends": str(OLD_VS_NEW), "scale": 0.5})
    from_file = load_scenario(child, allow_outside=True)
    assert from_file.market.members.count == 50_000 and counts(from_file.market)["corporate_adaptive"] == 260
    overridden = load_scenario(child, ["market.members.count=30000", "market.recruiters.lite.count=40"],
                               allow_outside=True)
    assert overridden.market.members.count == 15_000 and counts(overridden.market)["lite"] == 20
    # the argument wins over the file key
    assert load_scenario(child, scale=0.1, allow_outside=True).market.members.count == 10_000
    assert load_scenario(child, {"scale": 0.2}, allow_outside=True).market.members.count == 20_000


def test_resolved_scenario_reproduces_the_scaled_market() -> None:
    scaled = load_scenario(OLD_VS_NEW, ["market.members.count=50000"], scale=0.2)
    assert scaled.resolved["scale"] == 0.2  # the factor and the unscaled counts are recorded ...
    assert scaled.resolved["market"]["members"]["count"] == 50_000
    again = load_scenario(yaml.safe_load(scaled.resolved_yaml()))
    assert again.market == scaled.market and again.scale == 0.2  # ... and loading them scales the same way


def test_smallest_scale_keeping_every_group() -> None:
    market = load_scenario(OLD_VS_NEW).market
    assert smallest_scale(market) == pytest.approx(10 / 15)  # bulk_heavy: 15 recruiters
    assert smallest_scale(market, 1) == pytest.approx(1 / 15)


# --------------------------------------------------------------------------- bad values


@pytest.mark.parametrize("value", [0, -0.5, 10.5, ".inf", ".nan", "'0.2'", "true", "[0.2]"])
def test_bad_scale_in_a_file_names_file_line_field_and_range(tmp_path: Path, value: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(f"extends: {OLD_VS_NEW}\n\nscale: {value}\n", encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, allow_outside=True)
    text = str(info.value)
    assert f"{path}:3" in text and "scale" in text
    assert "(0, 10]" in text or "number" in text


def test_bad_scale_argument_of_the_api() -> None:
    with pytest.raises(ScenarioError, match=r"scale.*\(0, 10\]"):
        load_scenario(OLD_VS_NEW, scale=0)


@pytest.mark.parametrize(("value", "message"), [("0", "must be in (0, 10]"), ("11", "must be in (0, 10]"),
                                                ("-1", "must be in (0, 10]"), ("nan", "must be in (0, 10]"),
                                                ("fifth", "must be a number in (0, 10]")])
def test_bad_scale_option_exits_2(capsys: pytest.CaptureFixture[str], value: str, message: str) -> None:
    code, _, err = run_cli(capsys, "validate", str(OLD_VS_NEW), "--scale", value)
    assert code == 2
    assert "--scale" in err and message in err


def test_bad_scale_in_a_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_yaml(tmp_path / "bad.yaml", {**tiny(), "scale": 0})
    code, _, err = run_cli(capsys, "validate", str(path))
    assert code == 2
    assert str(path) in err and "scale" in err and "(0, 10]" in err
    assert "Traceback" not in err


def test_scale_option_comes_after_set_whatever_the_order(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "validate", str(OLD_VS_NEW), "--scale", "0.1", "--set", "scale=0.5",
                             "--set", "market.members.count=50000")
    assert code == 0, err
    assert "5,000 members" in out and "101 recruiters" in out
    assert "(scale 0.1 of 50,000 members, 1,000 recruiters)" in out


# --------------------------------------------------------------------------- warnings


def test_validate_warns_when_set_changes_members_per_recruiter(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "validate", str(OLD_VS_NEW), "--set", "market.members.count=20000")
    assert code == 0
    assert "overrides change(s) members per recruiter from 100.0 to 20.0 (-80%)" in err and "5x the InMails" in err
    assert "--scale" in err


@pytest.mark.parametrize("argv", [
    ["--scale", "0.2"],                                                        # the same market, smaller
    ["--set", "market.members.count=85000"],                                   # -15%: within 20%
    ["--set", "market.members.count=20000", "--set", "market.recruiters.corporate_adaptive.count=104",
     "--set", "market.recruiters.corporate_fixed.count=36", "--set", "market.recruiters.agency.count=24",
     "--set", "market.recruiters.lite.count=20", "--set", "market.recruiters.talent_finder.count=13",
     "--set", "market.recruiters.bulk_heavy.count=3"],                         # shrunk by hand, consistently
])
def test_no_load_warning_when_members_per_recruiter_is_kept(capsys: pytest.CaptureFixture[str],
                                                            argv: list[str]) -> None:
    code, _, err = run_cli(capsys, "validate", str(OLD_VS_NEW), *argv)
    assert code == 0
    assert "members per recruiter" not in err


def test_validate_warns_when_a_scale_leaves_a_group_tiny(capsys: pytest.CaptureFixture[str]) -> None:
    _, _, err = run_cli(capsys, "validate", str(OLD_VS_NEW), "--scale", "0.1")
    assert "leaves 2 recruiter group(s) with fewer than 10" in err
    assert "bulk_heavy 2 (2.0% of recruiters, 1.5% at scale 1)" in err and "from scale 0.67 up" in err
    _, _, err = run_cli(capsys, "validate", str(OLD_VS_NEW), "--scale", "0.7")
    assert "fewer than" not in err


# --------------------------------------------------------------------------- end to end


def test_run_folder_reproduces_a_scaled_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    quiet = ("--no-progress", "-q", "--no-figures", "-n", "2", "--set", "horizon_days=20")
    code, _, err = run_cli(capsys, "run", str(OLD_VS_NEW), "--scale", "0.03", "--out", str(tmp_path / "a"), *quiet)
    assert code == 0, err
    resolved = tmp_path / "a" / "scenario.resolved.yaml"
    assert yaml.safe_load(resolved.read_text(encoding="utf-8"))["scale"] == 0.03
    code, _, err = run_cli(capsys, "run", str(resolved), "--out", str(tmp_path / "b"), *quiet)
    assert code == 0, err
    first, second = (pd.read_csv(tmp_path / run / "replications.csv") for run in ("a", "b"))
    pd.testing.assert_frame_equal(first, second)
    assert first["sent"].gt(0).all()


def test_baseline_records_the_scale(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``baseline check`` re-runs with the stored overrides, so a baseline saved with --scale checks scaled."""
    import json

    target = tmp_path / "base.json"
    code, _, err = run_cli(capsys, "baseline", "save", str(OLD_VS_NEW), "--to", str(target), "-n", "2",
                           "--scale", "0.03", "--set", "horizon_days=20", "--no-progress")
    assert code == 0, err
    assert json.loads(target.read_text(encoding="utf-8"))["overrides"] == ["horizon_days=20", "scale=0.03"]
    code, out, err = run_cli(capsys, "baseline", "check", str(OLD_VS_NEW), "--against", str(target),
                             "--mode", "exact", "--no-progress")
    assert code == 0, out + err


# --------------------------------------------------------------------------- invariance

REPLICATIONS = 12
SHORT = ["horizon_days=180"]
Z = 3.0
"""Tolerance in standard errors of the difference of two independent estimates (two-sided ~0.3% false alarm)."""


def headline(res: Any) -> dict[str, tuple[float, float]]:
    """(mean, standard error) of the old policy's response rate and of the new-minus-old difference.

    The standard error is the 95% CI half-width (the project's Student-t interval, n - 1 degrees of
    freedom) divided by its t quantile.
    """
    q = stats.t.ppf(0.975, REPLICATIONS - 1)
    old = res.summary.set_index(["policy", "metric"]).loc[("old", "response_rate")]
    diff = res.comparison.set_index("metric").loc["response_rate"]
    return {"old_rate": (old["mean"], (old["ci_high"] - old["mean"]) / q),
            "difference": (diff["diff"], (diff["ci_high"] - diff["diff"]) / q)}


def z_scores(a: dict[str, tuple[float, float]], b: dict[str, tuple[float, float]]) -> dict[str, float]:
    """|mean_a - mean_b| / sqrt(se_a^2 + se_b^2) per quantity: the two runs are independent (the markets
    differ in size, so the same root seed draws different members and recruiters)."""
    return {key: abs(a[key][0] - b[key][0]) / (a[key][1] ** 2 + b[key][1] ** 2) ** 0.5 for key in a}


def test_headline_rates_are_scale_invariant_and_members_only_shrinks_are_not() -> None:
    """n = 12 replications per policy at each size, 180 days of old_vs_new.yaml (~20 s).

    Scale 0.1 and 0.2 must agree within Z = 3 combined standard errors on the 2014 response rate and
    on the 2015-minus-2014 difference.  The naive quick look (members cut to 10,000 as at scale 0.1,
    recruiters kept at 1,000: ten times the InMails per member) must not: measured 70 and 14 standard
    errors away from scale 0.2, so this test fails if scaling stopped moving the recruiters.
    """
    tenth = headline(run_scenario(OLD_VS_NEW, SHORT, scale=0.1, replications=REPLICATIONS))
    fifth = headline(run_scenario(OLD_VS_NEW, SHORT, scale=0.2, replications=REPLICATIONS))
    naive = headline(run_scenario(OLD_VS_NEW, [*SHORT, "market.members.count=10000"], replications=REPLICATIONS))
    agree = z_scores(tenth, fifth)
    assert all(z < Z for z in agree.values()), (agree, tenth, fifth)
    disagree = z_scores(naive, fifth)
    assert all(z > Z for z in disagree.values()), (disagree, naive, fifth)


def test_validate_warns_when_team_floors_change_members_per_recruiter(capsys: pytest.CaptureFixture[str]) -> None:
    """At scale 0.01 old_vs_new keeps 16 recruiters (5 + one team of 4 twice + 3 x 1) for 1,000 members."""
    _, out, err = run_cli(capsys, "validate", str(OLD_VS_NEW), "--scale", "0.01")
    assert "1,000 members" in out and "16 recruiters" in out
    assert "scale 0.01 change(s) members per recruiter from 100.0 to 62.5 (-38%)" in err
    assert "each group keeps at least one team" in err


def test_a_scale_that_pushes_a_count_out_of_its_range_exits_2(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    path = write_yaml(tmp_path / "big.yaml", tiny(scale=10, market={"members": {"count": 900_000_000}}))
    code = main(["validate", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and "scale = 10.0: scales count out of its range: must be in [1, 1e+09]" in err
    assert "Traceback" not in err


def test_the_baseline_hash_sees_the_scale_only_when_it_is_set() -> None:
    from simulator.experiments.baseline import MODEL_KEYS
    from simulator.experiments.provenance import scenario_hash
    from simulator.scenario import load_scenario

    plain = scenario_hash(load_scenario(tiny()), MODEL_KEYS)
    assert plain == scenario_hash(load_scenario(tiny()), MODEL_KEYS)  # unset: the hash baselines already store
    assert scenario_hash(load_scenario(tiny(scale=0.5)), MODEL_KEYS) not in (
        plain, scenario_hash(load_scenario(tiny(scale=0.8)), MODEL_KEYS))
