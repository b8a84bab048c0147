"""Explain: Shapley axioms, the counterfactual worlds, exact additivity, and the command end to end."""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.cli import main
from simulator.core.config import SEAT_TYPES
from simulator.core.presets import preset
from simulator.experiments.explain import (
    UNLIMITED_CREDITS,
    available_channels,
    decompose,
    differing_rules,
    explain,
    hybrid_policy,
    plan,
    rule_content,
    run_worlds,
    shapley,
    switch_off,
)
from simulator.experiments.runner import SerialExecutor
from simulator.scenario import load_scenario
from tests.scenario_helpers import tiny, write_yaml

# --------------------------------------------------------------------------- Shapley axioms on toy games


def _game(n: int, v: callable) -> np.ndarray:  # type: ignore[valid-type]
    return np.array([v(frozenset(j for j in range(n) if mask >> j & 1)) for mask in range(1 << n)], dtype=float)


def _brute_force(values: np.ndarray) -> np.ndarray:
    """Shapley values as the mean marginal contribution over all orderings (the definition)."""
    n = values.shape[0].bit_length() - 1
    out = np.zeros(n)
    perms = list(itertools.permutations(range(n)))
    for order in perms:
        mask = 0
        for j in order:
            out[j] += values[mask | 1 << j] - values[mask]
            mask |= 1 << j
    return out / len(perms)


def test_unanimity_game_splits_equally_among_the_needed_players() -> None:
    # v(S) = 1 if S contains players 0 and 2, else 0: those two get 1/2 each, the others nothing
    phi = shapley(_game(4, lambda s: float({0, 2} <= s)))
    assert phi == pytest.approx([0.5, 0.0, 0.5, 0.0])


def test_majority_game_and_a_dummy() -> None:
    # three symmetric voters (any two win) and a dummy player 3
    phi = shapley(_game(4, lambda s: float(len(s - {3}) >= 2)))
    assert phi == pytest.approx([1 / 3, 1 / 3, 1 / 3, 0.0])


def test_additive_game_gives_each_player_its_own_effect() -> None:
    effects = [0.3, -1.2, 2.0]
    phi = shapley(_game(3, lambda s: sum(effects[j] for j in s) + 5.0))  # + a constant v(empty)
    assert phi == pytest.approx(effects)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 5).flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.floats(-10, 10), min_size=1 << n, max_size=1 << n),
    st.lists(st.floats(-10, 10), min_size=1 << n, max_size=1 << n))))
def test_shapley_axioms_on_random_games(case: tuple[int, list[float], list[float]]) -> None:
    _, a, b = case
    v, w = np.array(a), np.array(b)
    phi = shapley(v)
    assert phi.sum() == pytest.approx(v[-1] - v[0], abs=1e-9)                  # efficiency
    assert phi == pytest.approx(_brute_force(v), abs=1e-9)                      # the definition
    assert shapley(v + w) == pytest.approx(phi + shapley(w), abs=1e-9)          # additivity
    assert shapley(2.5 * v) == pytest.approx(2.5 * phi, abs=1e-9)              # linearity


def test_symmetric_players_get_the_same_value() -> None:
    rng = np.random.default_rng(3)
    base = {frozenset(s): rng.normal() for k in range(4) for s in itertools.combinations(range(4), k)}
    swap = {0: 1, 1: 0, 2: 2, 3: 3}

    def v(s: frozenset[int]) -> float:  # symmetric in players 0 and 1 by construction
        key = frozenset(s)
        return base.get(key, 0.0) + base.get(frozenset(swap[j] for j in key), 0.0)

    phi = shapley(_game(4, v))
    assert phi[0] == pytest.approx(phi[1])


def test_per_replication_values_are_carried_along() -> None:
    v = np.random.default_rng(0).normal(size=(8, 5))  # 3 players x 5 replications
    phi = shapley(v)
    assert phi.shape == (3, 5)
    assert phi.sum(axis=0) == pytest.approx(v[-1] - v[0])
    assert phi[:, 2] == pytest.approx(shapley(v[:, 2]))
    with pytest.raises(ValueError, match="2\\*\\*n"):
        shapley(np.zeros(6))


# --------------------------------------------------------------------------- counterfactual worlds


def test_rule_changes_between_the_presets() -> None:
    old, new = preset("old_2014"), preset("new_2015")
    assert differing_rules(old, new) == ["refund", "allotments", "accrual", "pooling"]
    assert rule_content(hybrid_policy(old, new, differing_rules(old, new))) == rule_content(new)
    assert rule_content(hybrid_policy(old, new, [])) == rule_content(old)
    h = hybrid_policy(old, new, ["refund"])
    assert h.phase.refund == new.phase.refund and h.phase.allotments == old.phase.allotments
    assert h.grants == old.grants  # the launch bonus goes with the allotments
    assert hybrid_policy(old, new, ["allotments"]).grants == new.grants
    assert differing_rules(preset("pre_threshold_2014"), old) == ["threshold"]
    jan1 = dataclasses.replace(preset("transition_2015"), switch_date=preset("transition_2015").switch_date.replace(
        month=1))
    assert differing_rules(preset("transition_2015"), jan1) == ["switch"]
    # old -> transition: the rules differ after the switch and the switch itself
    t = preset("transition_2015")
    both = hybrid_policy(old, t, differing_rules(old, t))
    assert rule_content(both) == rule_content(t)


def test_switching_channels_off() -> None:
    sc = load_scenario(tiny())
    m, p = sc.market, sc.policies["new"]
    m2, p2 = switch_off(m, p, ["credit_limit", "adaptation", "fatigue", "threshold"])
    assert not m2.sending.adaptation.enabled and not m2.fatigue.enabled
    assert p2.phase.allotments == tuple((s, UNLIMITED_CREDITS) for s in SEAT_TYPES)
    assert not p2.threshold.enabled
    assert p2.phase.refund == p.phase.refund and m2.members == m.members  # nothing else moves
    m3, p3 = switch_off(m, p, [])
    assert (m3, p3) == (m, p)
    with pytest.raises(ValueError, match="unknown channel"):
        switch_off(m, p, ["luck"])


def test_plan_has_every_world_once() -> None:
    sc = load_scenario(tiny())
    p = plan(sc)
    assert p.rules == ("refund", "allotments", "accrual", "pooling")
    assert p.channels == ("credit_limit", "adaptation", "fatigue", "threshold")
    assert len(p.worlds) == 2**4 + 2 * 2**4 - 2  # rule worlds + channel worlds, two shared
    assert len({w.id for w in p.worlds.values()}) == len(p.worlds)
    t = load_scenario(tiny(policies={"pre": {"preset": "pre_threshold_2014"}, "thr": {"preset": "old_2014"}},
                           baseline="pre"))
    tp = plan(t)
    assert tp.rules == ("threshold",) and "threshold" not in tp.channels  # a rule here, not a channel
    fixed = load_scenario(tiny(market={**tiny()["market"], "fatigue": {"enabled": False}}))
    assert "fatigue" not in available_channels(fixed.market, fixed.policies["old"], fixed.policies["new"], [])


# --------------------------------------------------------------------------- decomposition on real runs


@pytest.fixture(scope="module")
def small_explanation():  # type: ignore[no-untyped-def]
    sc = load_scenario(tiny(horizon_days=60))
    return explain(sc, SerialExecutor(), replications=3, metrics=("response_rate", "net_credit_burn", "sent"))


def test_contributions_add_up_to_the_difference_in_every_replication(small_explanation) -> None:  # type: ignore[no-untyped-def]
    res = small_explanation
    c = res.contributions
    for (metric, kind), g in c.groupby(["metric", "decomposition"]):
        parts = g[g["mechanism"] != "total"].groupby("replication")["contribution"].sum()
        total = g[g["mechanism"] == "total"].set_index("replication")["contribution"]
        assert np.abs(parts - total).max() < 1e-9 * max(1.0, float(total.abs().max())), (metric, kind)
    # the total is the paired old -> new difference of a plain run of the two policies
    w = res.worlds
    base = w[w["world"] == res.plan.world([], res.plan.channels).id].set_index("replication")
    new = w[w["world"] == res.plan.world(res.plan.rules, res.plan.channels).id].set_index("replication")
    tot = c[(c["metric"] == "sent") & (c["mechanism"] == "total") & (c["decomposition"] == "rule")]
    expected = (new["sent"] - base["sent"]).to_numpy()
    assert tot.set_index("replication")["contribution"].to_numpy() == pytest.approx(expected)


def test_with_every_channel_off_the_response_rate_does_not_move(small_explanation) -> None:  # type: ignore[no-untyped-def]
    # no adaptation, no fatigue, unlimited credits, no threshold: both policies send the same InMails
    t = small_explanation.table
    direct = t[(t["mechanism"] == "direct") & (t["metric"].isin(["response_rate", "sent"]))]
    assert (direct["contribution"] == 0.0).all()
    burn = t[(t["mechanism"] == "direct") & (t["metric"] == "net_credit_burn")]
    assert float(burn["contribution"].iloc[0]) != 0.0  # the refund rule's accounting remains


def test_table_rows_and_cis(small_explanation) -> None:  # type: ignore[no-untyped-def]
    t = small_explanation.table
    rr = t[t["metric"] == "response_rate"]
    assert list(rr[rr["decomposition"] == "rule"]["mechanism"]) == ["refund", "allotments", "accrual", "pooling",
                                                                    "total"]
    assert list(rr[rr["decomposition"] == "channel"]["mechanism"]) == [
        "direct", "credit_limit", "adaptation", "fatigue", "threshold", "total"]
    ok = rr.dropna(subset=["ci_low"])
    assert ((ok["ci_low"] <= ok["contribution"]) & (ok["contribution"] <= ok["ci_high"])).all()
    assert (t["n"] == 3).all()


def test_decompose_on_synthetic_observations() -> None:
    """A world's outcome built from known effects is decomposed back into them."""
    from simulator.experiments.observation import Observation

    sc = load_scenario(tiny())
    p = plan(sc, channels=["adaptation", "fatigue"])
    effect = {"refund": 1.0, "allotments": -0.5, "accrual": 0.0, "pooling": 0.25}
    obs = {}
    for (rules, on), w in p.worlds.items():
        for i in range(2):
            # each rule acts only through adaptation (zero with adaptation off): a pure interaction
            y = 10.0 + i + sum(effect[r] for r in rules) * (1.0 if "adaptation" in on else 0.0)
            obs[(w.id, i)] = Observation({"x": y})
    parts = decompose(p, obs, "x", [0, 1])
    assert {k: float(v.mean()) for k, v in parts["rule"].items()} == pytest.approx({**effect, "total": 0.75})
    chan = {k: float(v.mean()) for k, v in parts["channel"].items()}
    assert chan == pytest.approx({"adaptation": 0.75, "fatigue": 0.0, "direct": 0.0, "total": 0.75})


def test_worlds_share_seeds_and_reuse_the_store(tmp_path: Path) -> None:
    from simulator.experiments.explain import world_store

    sc = load_scenario(tiny(horizon_days=30))
    p = plan(sc, channels=[])
    store = world_store(tmp_path)
    first = run_worlds(sc, p, [0], SerialExecutor(), store=store)
    assert store.count() == len(p.worlds) == 16
    calls = []
    again = run_worlds(sc, p, [0], SerialExecutor(), store=store, progress=lambda d, t: calls.append(d))
    assert {k: v.values for k, v in again.items()} == {k: v.values for k, v in first.items()}
    assert len(calls) == 16


# --------------------------------------------------------------------------- the command


def test_explain_command_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_yaml(tmp_path / "tiny.yaml", tiny(horizon_days=30))
    out = tmp_path / "ex"
    code = main(["explain", str(path), "--out", str(out), "-n", "2", "--channels", "adaptation,fatigue",
                 "--no-progress"])
    assert code == 0
    text = capsys.readouterr().out
    assert "by rule change" in text and "member fatigue" in text
    table = pd.read_csv(out / "explain.csv")
    assert set(table["metric"]) == {"response_rate", "net_credit_burn"}
    for name in ("explain_replications.csv", "explain_worlds.csv", "explain.png", "explain.json"):
        assert (out / name).is_file(), name
    rr = table[(table["metric"] == "response_rate") & (table["decomposition"] == "channel")]
    parts = rr[rr["mechanism"] != "total"]["contribution"].sum()
    assert math.isclose(parts, float(rr[rr["mechanism"] == "total"]["contribution"].iloc[0]), abs_tol=1e-12)


def test_explain_bad_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_yaml(tmp_path / "tiny.yaml", tiny())
    assert main(["explain", str(path), "--policy", "old", "--no-progress"]) == 2
    assert "non-baseline" in capsys.readouterr().err
    assert main(["explain", str(path), "--channels", "luck", "--no-progress"]) == 2
    assert main(["explain", str(path), "--metric", "happiness", "--no-progress"]) == 2


def test_without_an_executor_workers_give_the_same_decomposition(small_explanation) -> None:  # type: ignore[no-untyped-def]
    """``explain(scenario, workers=2)`` opens its own pool; the numbers do not depend on it."""
    sc = load_scenario(tiny(horizon_days=60))
    res = explain(sc, workers=2, replications=3, metrics=("response_rate", "net_credit_burn", "sent"))
    pd.testing.assert_frame_equal(res.contributions, small_explanation.contributions)
