"""Experiments: common random numbers, collection by index, statistics, --precision."""

from __future__ import annotations

import math
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scenario_helpers import tiny
from scipy import stats

import simulator.core.batch as batch
import simulator.core.engine as engine
from simulator.api import Results, run_experiment, run_scenario
from simulator.core.metrics import METRIC_NAMES
from simulator.core.seeding import replication_seed, streams
from simulator.experiments.experiment import compare, precision_half_widths, run_single, summarize
from simulator.scenario import Scenario, load_scenario


@pytest.fixture(scope="module")
def small() -> Scenario:
    return load_scenario(tiny())


@pytest.fixture(scope="module")
def serial_results(small: Scenario) -> Results:
    return run_experiment(small, replications=3)


# --------------------------------------------------------------------------- common random numbers


def test_every_policy_gets_the_same_seed_per_replication(small: Scenario, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, int, tuple[int, ...]]] = []
    real = engine.run_replication

    def spy(market: Any, policy: Any, run: Any = None, *, seed: Any) -> Any:
        seen.append((policy.name, seed.entropy, tuple(seed.spawn_key)))
        return real(market, policy, run, seed=seed)

    real_batch = batch.run_replications

    def spy_batch(jobs: Any) -> Any:  # replications run in batches (the default for small markets)
        seen.extend((job.policy.name, job.seed.entropy, tuple(job.seed.spawn_key)) for job in jobs)
        return real_batch(jobs)

    monkeypatch.setattr(engine, "run_replication", spy)
    monkeypatch.setattr(batch, "run_replications", spy_batch)
    run_experiment(small, replications=2)
    expected = {(p, small.root_seed, (i,)) for p in ("old", "new") for i in range(2)}
    assert sorted(seen) == sorted(expected)


def test_identical_populations_across_policies_in_one_replication(small: Scenario) -> None:
    seed = replication_seed(small.root_seed, 1)
    sims = [engine.Simulation(small.market, small.policies[p], small.run, streams(seed)) for p in ("old", "new")]
    for name in ("segment", "active", "logit", "check_prob", "openness"):
        np.testing.assert_array_equal(getattr(sims[0].members, name), getattr(sims[1].members, name))
    for name in ("seat", "group", "adaptive", "team", "segment", "skill", "budget", "pers0", "bulk0", "vol0"):
        np.testing.assert_array_equal(getattr(sims[0].rec, name), getattr(sims[1].rec, name))
    other = engine.Simulation(small.market, small.policies["old"], small.run,
                              streams(replication_seed(small.root_seed, 2)))
    assert not np.array_equal(other.rec.vol0, sims[0].rec.vol0)  # another replication, another market

    results = [run_single(small.market, small.policies[p], small.run, small.root_seed, 1) for p in ("old", "new")]
    for name in ("seat_type", "behaviour", "group", "personalization_band"):
        np.testing.assert_array_equal(getattr(results[0].recruiters, name), getattr(results[1].recruiters, name))


def test_the_same_policy_twice_differs_by_exactly_zero() -> None:
    sc = load_scenario(tiny(baseline="a", policies={"a": {"preset": "old_2014"},
                                      "b": {"preset": "old_2014", "description": "a copy"}}))
    comp = run_experiment(sc, replications=3).comparison
    assert (comp["diff"] == 0).all() and (comp["ci_low"] == 0).all() and (comp["ci_high"] == 0).all()
    assert (comp["p_value"] == 1.0).all()


def test_paired_ci_is_narrower_than_unpaired_where_it_must_be() -> None:
    """Two nearly identical policies on a market with very unequal recruiters: the replication-to-
    replication spread is large, the within-replication policy effect small, so pairing must help."""
    data = tiny(policies={"old": {"preset": "old_2014"},
                          "old8": {"preset": "old_2014", "refund": {"window_days": 8}}})
    for g in data["market"]["recruiters"]:
        g["daily_volume"] = {"kind": "lognormal", "a": 5, "b": 1.2}
    res = run_experiment(load_scenario(data), replications=6)
    comp = res.comparison.set_index("metric")
    for m in ("sent", "responses", "credits_refunded", "mean_member_fatigue"):
        paired = comp.loc[m, "ci_high"] - comp.loc[m, "ci_low"]
        unpaired = comp.loc[m, "unpaired_ci_high"] - comp.loc[m, "unpaired_ci_low"]
        assert paired < 0.5 * unpaired, m
        assert comp.loc[m, "ci_shrink"] == pytest.approx(1 - paired / unpaired)
    assert set(res.pairing()["metric"]) == {"response_rate", "net_credit_burn"}


# --------------------------------------------------------------------------- executors and re-runs


def test_results_do_not_depend_on_executor_or_completion_order(small: Scenario, serial_results: Results) -> None:
    with ThreadPoolExecutor(4) as pool:
        threaded = run_experiment(small, replications=3, executor=pool)
    pd.testing.assert_frame_equal(threaded.replications, serial_results.replications)
    pd.testing.assert_frame_equal(threaded.timeseries, serial_results.timeseries)
    with ProcessPoolExecutor(2) as pool:
        processes = run_experiment(small, replications=3, executor=pool)
    pd.testing.assert_frame_equal(processes.replications, serial_results.replications)
    pd.testing.assert_frame_equal(processes.breakdown_replications, serial_results.breakdown_replications)


def test_one_replication_can_be_rerun_alone(small: Scenario, serial_results: Results) -> None:
    alone = run_experiment(small, indices=[2])
    full = serial_results.replications
    pd.testing.assert_frame_equal(alone.replications, full[full["replication"] == 2].reset_index(drop=True))
    r = run_single(small.market, small.policies["new"], small.run, small.root_seed, 2)
    row = full[(full["policy"] == "new") & (full["replication"] == 2)].iloc[0]
    assert [r.metrics[m] for m in METRIC_NAMES] == pytest.approx([row[m] for m in METRIC_NAMES])


def test_results_frames(serial_results: Results) -> None:
    r = serial_results
    assert list(r.replications.columns[:3]) == ["policy", "replication", "seed"]
    assert len(r.replications) == 6 and (r.replications["seed"] == 7).all()
    assert list(r.summary.columns) == ["policy", "metric", "mean", "std", "ci_low", "ci_high", "n"]
    assert list(r.summary["policy"].unique()) == ["old", "new"]
    assert list(r.comparison.columns[:8]) == ["metric", "baseline", "policy", "diff", "ci_low", "ci_high",
                                              "rel_change", "p_value"]
    assert list(r.comparison["metric"]) == list(METRIC_NAMES)
    assert list(r.timeseries.columns) == ["policy", "replication", "day", "metric", "value"]
    assert r.timeseries["day"].max() == 39
    assert set(r.breakdowns["by"]) == {"seat_type", "personalization_band", "behaviour", "group"}
    seat = r.breakdown("seat_type")
    assert set(seat["label"]) == {"recruiter", "recruiter_lite"}
    assert {"diff", "ci_low", "ci_high", "p_value"} <= set(seat.columns)


# --------------------------------------------------------------------------- statistics


def _frame(values: dict[str, list[float]], metric: str = "x") -> pd.DataFrame:
    rows = [{"policy": p, "replication": i, "seed": 0, metric: v} for p, vs in values.items() for i, v in enumerate(vs)]
    return pd.DataFrame(rows)


def test_summary_is_a_student_t_interval() -> None:
    x = [1.0, 2.0, 4.0, 7.0, 11.0]
    row = summarize(_frame({"a": x}), ["x"]).iloc[0]
    lo, hi = stats.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=stats.sem(x))
    assert (row["mean"], row["std"], row["n"]) == (pytest.approx(5.0), pytest.approx(np.std(x, ddof=1)), 5)
    assert (row["ci_low"], row["ci_high"]) == (pytest.approx(lo), pytest.approx(hi))


def test_paired_comparison_matches_scipy() -> None:
    base = [10.0, 14.0, 9.0, 20.0, 13.0, 11.0]
    pol = [11.0, 15.5, 9.2, 21.0, 14.1, 11.3]
    row = compare(_frame({"b": base, "p": pol}), "b", ["x"]).iloc[0]
    d = np.subtract(pol, base)
    test = stats.ttest_rel(pol, base)
    lo, hi = test.confidence_interval(0.95)
    welch = stats.ttest_ind(pol, base, equal_var=False).confidence_interval(0.95)
    assert row["diff"] == pytest.approx(d.mean())
    assert (row["ci_low"], row["ci_high"]) == (pytest.approx(lo), pytest.approx(hi))
    assert row["p_value"] == pytest.approx(test.pvalue)
    assert (row["unpaired_ci_low"], row["unpaired_ci_high"]) == (pytest.approx(welch.low), pytest.approx(welch.high))
    assert row["rel_change"] == pytest.approx(d.mean() / np.mean(base))
    assert row["ci_shrink"] > 0.8 and bool(row["significant"])


def test_single_replication_collapses_intervals_to_the_mean_without_nan() -> None:
    row = compare(_frame({"b": [1.0], "p": [2.0]}), "b", ["x"]).iloc[0]
    assert row["diff"] == 1.0 and row["ci_low"] == row["ci_high"] == 1.0 and math.isnan(row["p_value"])
    assert row["rel_change"] == 1.0 and row["ci_shrink"] == 0.0
    assert not bool(row["significant"])
    summ = summarize(_frame({"b": [3.0]}), ["x"]).iloc[0]
    assert (summ["mean"], summ["std"], summ["ci_low"], summ["ci_high"], summ["n"]) == (3.0, 0.0, 3.0, 3.0, 1)


# --------------------------------------------------------------------------- --precision


def test_precision_reached_at_once(small: Scenario) -> None:
    res = run_experiment(small, replications=3, precision=10.0)
    assert res.precision is not None and res.precision.reached
    assert res.n_replications == 3 and "reached after 3" in res.precision.message


def test_precision_stops_at_the_cap(small: Scenario) -> None:
    res = run_experiment(small, replications=3, precision=1e-9, max_replications=5)
    assert res.precision is not None and not res.precision.reached
    assert res.n_replications == 5 and res.scenario.replications == 5
    assert "cap 5 hit" in res.precision.message


def test_precision_adds_replications_until_narrow_enough(small: Scenario, serial_results: Results) -> None:
    """The target is half the widest main half-width after 3 replications, so the branch taken is known.

    At n = 3 the widest half-width is 2x the target: the rule asks for ceil(3 x 2^2 x 1.1) = 14
    replications, capped at 4n = 12 per step.  At n = 12 the t quantile drops from 4.30 (2 df) to
    2.20 (11 df) and the standard error by about sqrt(12 / 3) = 2, so the width is about a quarter
    of where it started (for this seed: 0.185 against the target 0.338): reached after 12, not the cap.
    """
    start = precision_half_widths(serial_results.replications, small.baseline)
    target = max(start.values()) / 2
    res = run_experiment(small, replications=3, precision=target, max_replications=40)
    assert res.precision is not None
    assert res.precision.reached and res.n_replications == 12
    assert "reached after 12 replications" in res.precision.message
    assert max(res.precision.half_widths.values()) <= target
    assert res.precision.half_widths == precision_half_widths(res.replications, small.baseline)
    # the first replications are the same as without --precision
    first = res.replications[res.replications["replication"] < 3].reset_index(drop=True)
    pd.testing.assert_frame_equal(first, serial_results.replications)


# --------------------------------------------------------------------------- notebook API


def test_notebook_api_path_or_dict_with_overrides(tmp_path: Path) -> None:
    res = run_scenario(tiny(), {"replications": 2, "horizon_days": 20})
    for frame in (res.summary, res.comparison, res.replications, res.timeseries, res.breakdowns):
        assert isinstance(frame, pd.DataFrame) and not frame.empty
    assert res.n_replications == 2 and res.timeseries["day"].max() == 19
    assert "new vs old (baseline)" in res.table()
    folder = res.write(tmp_path / "nb")
    assert (folder / "summary.csv").is_file() and (folder / "manifest.json").is_file()


def test_progress_reports_every_replication_and_a_growing_total(small: Scenario) -> None:
    calls: list[tuple[int, int]] = []
    run_experiment(small, replications=2, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]
    calls.clear()
    run_experiment(small, replications=3, precision=1e-9, max_replications=5,
                   progress=lambda d, t: calls.append((d, t)))
    assert calls[0] == (1, 6) and calls[-1] == (10, 10)
