"""Explain's market channels for the 2014 rise: anticipation, platform targeting, warnings / Improvement
Periods split out of adaptation; exact additivity, refusals, dummies and the cost of the design."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scenario_helpers import tiny, write_yaml

from simulator.cli import main
from simulator.experiments.channels import (
    CHANNELS,
    adaptation_parts,
    available_channels,
    channel_label,
    default_channels,
    switch_off,
)
from simulator.experiments.experiment import run_single
from simulator.experiments.explain import explain, plan, world_count
from simulator.experiments.runner import SerialExecutor
from simulator.scenario import load_scenario

RISE_POLICIES = {"no_threshold": {"preset": "pre_threshold_2014"}, "threshold": {"preset": "old_2014"}}


def rise(**market: Any) -> dict[str, Any]:
    """A tiny 2014 rise (threshold vs no threshold) with both 2014 mechanisms on and a lower bar that bites."""
    data = tiny(horizon_days=45, policies=copy.deepcopy(RISE_POLICIES), baseline="no_threshold")
    data["policies"]["threshold"]["threshold"] = {"min_sends": 30, "min_rate": 0.2}
    data["market"]["sending"] = {"anticipation": {"enabled": True}}
    data["market"]["platform_targeting"] = {"enabled": True}
    for key, value in market.items():
        data["market"][key] = value
    return data


# --------------------------------------------------------------------------- the switches


def test_new_channels_are_available_only_when_on() -> None:
    on = load_scenario(rise())
    base, new = on.policies["no_threshold"], on.policies["threshold"]
    assert available_channels(on.market, base, new, ["threshold"]) == [
        "credit_limit", "adaptation", "sanction_pressure", "anticipation", "platform_targeting", "fatigue"]
    off = load_scenario(tiny(policies=copy.deepcopy(RISE_POLICIES), baseline="no_threshold"))
    assert available_channels(off.market, base, new, ["threshold"]) == [
        "credit_limit", "adaptation", "sanction_pressure", "fatigue"]
    # both policies share the threshold: it is a channel, and sanction_pressure is not a default one
    plain = load_scenario(tiny())
    avail = available_channels(plain.market, plain.policies["old"], plain.policies["new"], [])
    assert "sanction_pressure" in avail and "sanction_pressure" not in default_channels(avail)
    assert default_channels(avail) == ["credit_limit", "adaptation", "fatigue", "threshold"]


def test_adaptation_keeps_only_the_pressure_no_other_channel_owns() -> None:
    sc = load_scenario(rise())
    market, policy = sc.market, sc.policies["threshold"]
    # alone: the whole of adaptation, as it always was
    m, _ = switch_off(market, policy, ["adaptation"])
    assert not m.sending.adaptation.enabled
    # with sanction_pressure and anticipation as players: only credit cost and scarcity
    m, _ = switch_off(market, policy, ["adaptation"], players=["sanction_pressure", "anticipation"])
    a = m.sending.adaptation
    assert a.enabled and a.weight_cost == a.weight_scarcity == 0.0
    assert a.weight_warning == market.sending.adaptation.weight_warning and m.sending.anticipation.enabled
    # with only sanction_pressure as a player, anticipation goes with adaptation
    m, _ = switch_off(market, policy, ["adaptation"], players=["sanction_pressure"])
    assert not m.sending.anticipation.enabled and m.sending.adaptation.weight_warning > 0
    m, _ = switch_off(market, policy, ["sanction_pressure", "anticipation", "platform_targeting"])
    assert m.sending.adaptation.weight_warning == m.sending.adaptation.weight_improvement == 0.0
    assert not m.sending.anticipation.enabled and not m.platform_targeting.enabled
    assert m.sending.adaptation.weight_cost == market.sending.adaptation.weight_cost
    assert adaptation_parts(["sanction_pressure"]) == ["credit cost", "scarcity", "anticipation"]
    assert channel_label("adaptation", ["adaptation"]) == "how they send: adaptation"
    assert channel_label("adaptation", CHANNELS) == "how they send: adaptation to credit cost, scarcity"
    assert channel_label("sanction_pressure", CHANNELS) == "warnings / Improvement Periods"


def test_every_part_of_adaptation_off_is_adaptation_off() -> None:
    """Zero pressure leaves adaptive recruiters where they start: the split 'all off' world is the old one."""
    sc = load_scenario(rise())
    policy = sc.policies["threshold"]
    parts = ["adaptation", "sanction_pressure", "anticipation"]
    split, _ = switch_off(sc.market, policy, parts, players=parts)
    whole, _ = switch_off(switch_off(sc.market, policy, ["anticipation"])[0], policy, ["adaptation"])
    assert split.sending.adaptation.enabled and not whole.sending.adaptation.enabled
    a = run_single(split, policy, sc.run, sc.root_seed, 0).metrics
    b = run_single(whole, policy, sc.run, sc.root_seed, 0).metrics
    assert a == b


def test_world_count_is_the_design_size() -> None:
    sc = load_scenario(rise())
    design = plan(sc)
    assert design.rules == ("threshold",)
    assert design.channels == ("credit_limit", "adaptation", "sanction_pressure", "anticipation",
                               "platform_targeting", "fatigue")
    assert len(design.worlds) == world_count(1, 6) == 128
    assert len(plan(sc, channels=["anticipation", "platform_targeting"]).worlds) == world_count(1, 2) == 8
    old_new = plan(load_scenario(tiny()))
    assert len(old_new.worlds) == world_count(4, 4) == 46  # the usual explanation keeps its size
    assert world_count(0, 3) == 8


# --------------------------------------------------------------------------- decompositions


@pytest.fixture(scope="module")
def rise_explanation():  # type: ignore[no-untyped-def]
    sc = load_scenario(rise())
    return explain(sc, SerialExecutor(), replications=3, channels=["adaptation", "sanction_pressure", "anticipation",
                                                                   "platform_targeting"],
                   metrics=("response_rate", "sent", "warned_share"))


def test_the_rise_sums_to_the_total_in_every_replication(rise_explanation) -> None:  # type: ignore[no-untyped-def]
    c = rise_explanation.contributions
    for (metric, kind), g in c.groupby(["metric", "decomposition"]):
        parts = g[g["mechanism"] != "total"].groupby("replication")["contribution"].sum()
        total = g[g["mechanism"] == "total"].set_index("replication")["contribution"]
        assert np.abs(parts - total).max() <= 1e-12 * max(1.0, float(total.abs().max())), (metric, kind)
    t = rise_explanation.table
    rows = t[(t["metric"] == "response_rate") & (t["decomposition"] == "channel")]
    assert list(rows["mechanism"]) == ["direct", "adaptation", "sanction_pressure", "anticipation",
                                       "platform_targeting", "total"]
    assert list(rows["label"])[:3] == ["direct: IPs cut bulk (channels off)",
                                      "how they send: adaptation to credit cost, scarcity",
                                      "warnings / Improvement Periods"]
    ok = rows.dropna(subset=["ci_low"])
    assert ((ok["ci_low"] <= ok["contribution"]) & (ok["contribution"] <= ok["ci_high"])).all()


def test_the_threshold_bites_in_the_tiny_rise(rise_explanation) -> None:  # type: ignore[no-untyped-def]
    """Otherwise the sums above would be sums of zeros: the bar is set so that seats are warned, and each
    new channel moves the InMails sent in some replication."""
    t = rise_explanation.table
    warned = t[(t["metric"] == "warned_share") & (t["mechanism"] == "total")]["contribution"]
    assert float(warned.iloc[0]) > 0.0
    for channel in ("sanction_pressure", "anticipation"):
        assert (_channel_values(rise_explanation, "sent", channel) != 0.0).any(), channel
    assert (_channel_values(rise_explanation, "response_rate", "platform_targeting") != 0.0).any()


def _channel_values(res, metric: str, mechanism: str) -> np.ndarray:  # type: ignore[no-untyped-def]
    c = res.contributions
    rows = c[(c["metric"] == metric) & (c["decomposition"] == "channel") & (c["mechanism"] == mechanism)]
    return rows["contribution"].to_numpy()


def test_a_mechanism_that_cannot_act_contributes_exactly_zero() -> None:
    """Exactly 0 in every replication, not just on average, while the channels beside it move.

    The 2014 rise with anticipation at weight 0 (no pressure) and platform targeting at strength 0 (no
    InMail steered); then old -> new with a bar nobody reaches in both (no warning, no Improvement Period,
    so their pressure is nil)."""
    sc = load_scenario(rise(sending={"anticipation": {"enabled": True, "weight": 0.0}},
                            platform_targeting={"enabled": True, "strength": 0.0}))
    res = explain(sc, SerialExecutor(), replications=2, channels=list(CHANNELS[1:5]), metrics=("response_rate", "sent"))
    for metric in ("response_rate", "sent"):
        for channel in ("anticipation", "platform_targeting"):
            assert (_channel_values(res, metric, channel) == 0.0).all(), (metric, channel)
    assert (_channel_values(res, "sent", "sanction_pressure") != 0.0).any()
    data = tiny(horizon_days=45)
    for policy in data["policies"].values():
        policy["threshold"] = {"min_sends": 100000}
    sc = load_scenario(data)
    res = explain(sc, SerialExecutor(), replications=2, channels=["adaptation", "sanction_pressure"],
                  metrics=("response_rate", "sent"))
    for metric in ("response_rate", "sent"):
        assert (_channel_values(res, metric, "sanction_pressure") == 0.0).all(), metric
        assert (_channel_values(res, metric, "adaptation") != 0.0).any(), metric


# --------------------------------------------------------------------------- the command


def test_a_channel_that_is_off_is_refused_with_the_allowed_list(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    data = tiny(policies=copy.deepcopy(RISE_POLICIES), baseline="no_threshold")
    path = write_yaml(tmp_path / "rise.yaml", data)
    for channel, switch in (("anticipation", "market.sending.anticipation.enabled=true"),
                            ("platform_targeting", "market.platform_targeting.enabled=true")):
        assert main(["explain", str(path), "--channels", f"adaptation,{channel}", "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert f"{channel} is off in this scenario" in err and switch in err
        assert "available: credit_limit, adaptation, sanction_pressure, fatigue" in err
        assert "Traceback" not in err
    assert main(["explain", str(path), "--channels", "threshold", "--no-progress"]) == 2  # a rule here
    assert "available:" in capsys.readouterr().err


def test_the_command_prints_the_rise_by_mechanism(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_yaml(tmp_path / "rise.yaml", rise())
    out = tmp_path / "ex"
    code = main(["explain", str(path), "--out", str(out), "-n", "2", "--no-figure", "--no-progress",
                 "--channels", "platform_targeting,sanction_pressure,anticipation", "-m", "response_rate"])
    assert code == 0
    text = capsys.readouterr().out
    for label in ("warnings / Improvement Periods", "anticipation of the threshold", "platform targeting",
                  "direct: IPs cut bulk", "x 16 worlds"):
        assert label in text, label

