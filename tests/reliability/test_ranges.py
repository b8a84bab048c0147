"""Values that overflow: every numeric parameter has a documented finite range, and no metric is inf.

``--set market.fatigue.weight_bulk=1e308`` used to validate, run and write ``inf`` into summary.csv.
Now every example of the hostile-input probe ends in exit code 2 naming the field and its range
(``validate`` and ``run``); any value inside the documented ranges runs with finite metrics
(hypothesis); the config classes refuse the same values (the API is protected too); and a metric
that still comes out NaN or infinite is refused, not written (the backstop).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import simulator.core.engine as engine
from simulator.core import config as c
from simulator.core import limits
from simulator.core.engine import run_replication
from simulator.core.metrics import METRIC_NAMES, MetricOverflowError
from simulator.scenario import load_scenario

from .helpers import ROOT, cli, tiny, tiny_file

OVERFLOWS: dict[str, str] = {
    "market.fatigue.weight_bulk=1e308": "market.fatigue.weight_bulk = 1e+308: must be in [0, 100]",
    "market.fatigue.weight_personalized=1e308": "market.fatigue.weight_personalized = 1e+308: must be in [0, 100]",
    "market.response.personalization_effect=1e300":
        "market.response.personalization_effect = 1e+300: must be in [0, 100]",
    "market.response.member_heterogeneity_sd=1e308": "market.response.member_heterogeneity_sd = 1e+308: must be in "
                                                     "[0, 10]",
    "market.fatigue.sensitivity=1e308": "market.fatigue.sensitivity = 1e+308: must be in [0, 1000]",
    "market.fatigue.half_life_days=1e-300": "market.fatigue.half_life_days = 1e-300: must be in [0.1, 36500]",
    "market.members.segments=[{name: a, share: 1e308}, {name: b, share: 1e308}]":
        "market.members.segments.a.share = 1e+308: must be in (0, 1e+09]",
    "market.sending.adaptation.weight_cost=1e308":
        "market.sending.adaptation.weight_cost = 1e+308: must be in [0, 100]",
    "market.sending.minutes_bulk=1e308": "market.sending.minutes_bulk = 1e+308: must be in [0, 1440]",
    "market.recruiters.0.segment_weights=[1e308, 1]":
        "market.recruiters.corporate.segment_weights.0 = 1e+308: must be in [0, 1e+09]",
    "market.recruiters.0.daily_volume={kind: lognormal, a: 1e300, b: 1}":
        "market.recruiters.corporate.daily_volume.a = 1e+300: must be in [-1e+20, 1e+20]",
    "policies.old.grants=[{date: 2015-03-01, amount: 1e10}]":
        "policies.old.grants.0.amount = 10000000000.0: must be a whole number in [0, 1e+09]",
    "policies.old.allotments.recruiter=1e10":
        "policies.old.allotments.recruiter = 10000000000.0: must be a whole number in [0, 1e+09]",
    "policies.old.threshold.min_sends=1e12": "policies.old.threshold.min_sends = 1000000000000.0: must be a whole "
                                             "number in [1, 1e+09]",
    "policies.old.threshold=maybe": "policies.old.threshold = 'maybe': must be on or off (also true/false, yes/no), "
                                    "or a mapping of threshold fields (enabled, min_sends,",
    "root_seed=1e30": "root_seed = 1e+30: must be a whole number in [0, 1e+18]",
    "sensitivity={parameters: {market.fatigue.sensitivity: {low: 0, high: 1e300}}}":
        "sensitivity.parameters.market.fatigue.sensitivity.high = 1e+300: must be in [-1e+12, 1e+12]",
    "calibration={parameters: [{path: market.fatigue.sensitivity, low: 0, high: 1}], "
    "targets: [{metric: response_rate, value: 0.2, scale: 1e-300}]}":
        "calibration.targets.0.scale = 1e-300: must be in [1e-09, 1e+09]",
}


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("override", list(OVERFLOWS))
def test_an_overflowing_value_exits_2_naming_the_field_and_its_range(
        override: str, command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tiny_file(tmp_path)
    extra = ["--out", str(tmp_path / "out")] if command == "run" else []
    code, out, err = cli(capsys, command, str(path), "--set", override, *extra)
    assert code == 2, out + err
    assert OVERFLOWS[override] in err
    assert "Traceback" not in err and not (tmp_path / "out").exists()


@pytest.mark.parametrize(("cls", "field", "value", "allowed"), [
    (c.Fatigue, "weight_bulk", 1e308, "[0, 100]"),
    (c.Fatigue, "sensitivity", math.inf, "[0, 1000]"),
    (c.Fatigue, "half_life_days", 1e-300, "[0.1, 36500]"),
    (c.ResponseModel, "personalization_effect", 1e300, "[0, 100]"),
    (c.ResponseModel, "member_heterogeneity_sd", math.nan, "[0, 10]"),
    (c.Adaptation, "weight_scarcity", 1e308, "[0, 100]"),
    (c.SendingModel, "minutes_personalized", 1e308, "[0, 1440]"),
    (c.Threshold, "min_sends", 10**12, "[1, 1e+09]"),
])
def test_the_config_classes_refuse_the_same_values(cls: type, field: str, value: float, allowed: str) -> None:
    """The API is protected too: the ranges live in the core, the schema only names them."""
    with pytest.raises(c.ConfigError) as info:
        cls(**{field: value})
    assert info.value.field == field and f"must be in {allowed}" in info.value.message


def test_core_refuses_out_of_range_shares_grants_and_distributions() -> None:
    with pytest.raises(c.ConfigError, match=r"share: must be in \(0, 1e\+09\]"):
        c.Segment("a", share=1e308)
    with pytest.raises(c.ConfigError, match=r"amount: must be in \[0, 1e\+09\]"):
        c.Grant(date=dt.date(2015, 3, 1), amount=10**10)
    with pytest.raises(c.ConfigError, match=r"a: must be in \[-1e\+20, 1e\+20\]"):
        c.Dist("lognormal", 1e300, 1.0)
    with pytest.raises(c.ConfigError, match=r"log-sd must be in \[0, 3\]"):
        c.Dist("lognormal", 5.0, 50.0)


def test_every_shipped_scenario_is_inside_the_ranges(capsys: pytest.CaptureFixture[str]) -> None:
    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        code, out, err = cli(capsys, "validate", str(path))
        assert code == 0, f"{path.name}: {out}{err}"


def test_the_docs_table_lists_every_range() -> None:
    """docs/model.md section 8.5 tables the ranges of simulator.core.limits, with their texts."""
    text = (ROOT / "docs" / "model.md").read_text(encoding="utf-8")
    section = text.split("### 8.5", 1)[1].split("\n## ", 1)[0]
    for name, value in vars(limits).items():
        if isinstance(value, limits.Range):
            assert value.text in section, f"{name} {value.text} is not in docs/model.md 8.5"


# --------------------------------------------------------------------------- inside the ranges, finite


def _extremes(allowed: limits.Range) -> st.SearchStrategy[float]:
    """Values of a range, its end points (and the largest values) most of all."""
    lo = allowed.lo if not allowed.lo_open else math.nextafter(allowed.lo, math.inf)
    hi = allowed.hi if not allowed.hi_open else math.nextafter(allowed.hi, -math.inf)
    return st.one_of(st.sampled_from([lo, hi]), st.floats(lo, hi, allow_nan=False, allow_infinity=False))


SMALL = {"count": 300, "segments": [{"name": "a", "share": 0.6, "base_response": 0.3},
                                     {"name": "b", "share": 0.4, "base_response": 0.2}]}
SMALL_GROUPS = [
    {"name": "corporate", "count": 4, "seat_type": "recruiter", "team_size": 2,
     "daily_volume": {"kind": "lognormal", "a": 20, "b": 0.6}},
    {"name": "bulk", "count": 1, "seat_type": "recruiter", "behaviour": "fixed", "daily_volume": 80,
     "bulk_share": {"kind": "beta", "a": 0.85, "b": 10}},
]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(weight_bulk=_extremes(limits.FATIGUE_WEIGHT), weight_personalized=_extremes(limits.FATIGUE_WEIGHT),
       sensitivity=_extremes(limits.FATIGUE_SENSITIVITY), half_life=_extremes(limits.HALF_LIFE_DAYS),
       effect=_extremes(limits.PERSONALIZATION_EFFECT), sd=_extremes(limits.HETEROGENEITY_SD),
       share_a=_extremes(limits.SHARE), share_b=_extremes(limits.SHARE),
       adapt=_extremes(limits.ADAPTATION_WEIGHT), minutes=_extremes(limits.MINUTES))
def test_any_value_inside_the_ranges_gives_finite_metrics(
        weight_bulk: float, weight_personalized: float, sensitivity: float, half_life: float, effect: float,
        sd: float, share_a: float, share_b: float, adapt: float, minutes: float) -> None:
    data = tiny(horizon_days=20)
    members = {**SMALL, "segments": [{**SMALL["segments"][0], "share": share_a},
                                     {**SMALL["segments"][1], "share": share_b}]}
    data["market"] = {
        "members": members, "recruiters": SMALL_GROUPS,
        "response": {"personalization_effect": effect, "member_heterogeneity_sd": sd},
        "fatigue": {"weight_bulk": weight_bulk, "weight_personalized": weight_personalized,
                    "sensitivity": sensitivity, "half_life_days": half_life},
        "sending": {"minutes_bulk": minutes, "adaptation": {"weight_cost": adapt, "weight_scarcity": adapt}},
    }
    scenario = load_scenario(data)
    for policy in scenario.policies.values():
        result = run_replication(scenario.market, policy, scenario.run, seed=11)
        assert all(math.isfinite(result.metrics[name]) for name in METRIC_NAMES), result.metrics


# --------------------------------------------------------------------------- the backstop


def _broken_ratio(num: float, den: float) -> float:
    return math.inf


def test_a_non_finite_metric_is_refused_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "ratio", _broken_ratio)
    scenario = load_scenario(tiny(horizon_days=5))
    with pytest.raises(MetricOverflowError) as info:
        run_replication(scenario.market, scenario.policies["old"], scenario.run, seed=1)
    assert "response_rate = inf" in str(info.value) and info.value.policy == "old"
    assert set(info.value.bad) >= {"response_rate", "credits_per_response"}


def test_the_run_command_writes_no_inf(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """A forced overflow ends the run with exit 1 and the log naming the metric; no summary holds inf."""
    monkeypatch.setattr(engine, "ratio", _broken_ratio)
    out_dir = tmp_path / "out"
    code, out, err = cli(capsys, "run", str(tiny_file(tmp_path, horizon_days=5, replications=2)),
                         "--out", str(out_dir))
    assert code == 1, out + err
    assert re.search(r"the parameters make response_rate = inf", err)
    for table in out_dir.rglob("*.csv"):
        assert "inf" not in table.read_text(encoding="utf-8").lower(), table
