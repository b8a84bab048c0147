"""Sweeps: designs (grid sizes, seeded QMC points within ranges), common random numbers across
points, a known monotone effect, the tidy table, resuming, and bad sweep blocks (exit 2, file:line)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scenario_helpers import SCENARIOS, tiny, write_yaml

from simulator.cli import main
from simulator.core.metrics import METRIC_NAMES
from simulator.experiments.design import Parameter, design, design_rng, sweep_spec, unit_sample
from simulator.experiments.runner import SerialExecutor, call_batch
from simulator.experiments.sweep import TABLE_COLUMNS, run_sweep, task_store
from simulator.scenario import ScenarioError, load_scenario, shrink_overrides

WINDOW = "policies.new.refund.window_days"
FATIGUE = "market.fatigue.sensitivity"
BASE_RESPONSE = "market.members.segments.a.base_response"


def with_sweep(sweep: dict[str, Any], **changes: Any) -> dict[str, Any]:
    data = tiny(**changes)
    data["sweep"] = copy.deepcopy(sweep)
    return data


def spec_of(sweep: dict[str, Any], **changes: Any) -> Any:
    return sweep_spec(load_scenario(with_sweep(sweep, **changes)))


# --------------------------------------------------------------------------- designs


def test_grid_is_the_cartesian_product_last_parameter_fastest() -> None:
    spec = spec_of({"parameters": {WINDOW: [7, 30, 90], FATIGUE: [0.0, 0.1],
                                   "market.members.count": {"low": 1000, "high": 2000, "num": 3}}})
    pts = design(spec)
    assert len(pts) == 3 * 2 * 3
    assert [p[WINDOW] for p in pts[:6]] == [7] * 6
    assert [p[FATIGUE] for p in pts[:6]] == [0.0, 0.0, 0.0, 0.1, 0.1, 0.1]
    assert [p["market.members.count"] for p in pts[:3]] == [1000, 1500, 2000]
    assert len({tuple(p.values()) for p in pts}) == 18


def test_ranges_are_whole_numbers_exactly_when_the_field_takes_them() -> None:
    spec = spec_of({"parameters": {"market.members.count": {"low": 1000, "high": 1003, "num": 3},
                                   FATIGUE: {"low": 0, "high": 1, "num": 3}}})
    count, fatigue = spec.parameters
    assert count.integer and not fatigue.integer
    assert count.grid_values() == [1000, 1002, 1003]  # 1001.5 rounds to 1002
    assert all(isinstance(v, int) for v in count.grid_values())
    assert fatigue.grid_values() == [0.0, 0.5, 1.0]


def test_integer_rounding_that_merges_values_keeps_each_once() -> None:
    p = Parameter("x", low=1, high=2, num=5, integer=True)
    assert p.grid_values() == [1, 2]


@pytest.mark.parametrize("method", ["lhs", "sobol", "halton"])
def test_qmc_designs_are_seeded_reproducible_and_within_ranges(method: str) -> None:
    sweep = {"method": method, "n": 16, "parameters": {
        WINDOW: {"low": 7, "high": 90}, FATIGUE: {"low": 0.01, "high": 1.0, "log": True},
        BASE_RESPONSE: {"low": 0.1, "high": 0.4}}}
    a, b = design(spec_of(sweep)), design(spec_of(sweep))
    assert a == b and len(a) == 16
    other = design(spec_of(sweep, root_seed=8))
    assert other != a  # the design follows the root seed ...
    assert design(spec_of({**sweep, "seed": 5})) == design(spec_of({**sweep, "seed": 5}, root_seed=8))  # ... or seed
    w = np.array([p[WINDOW] for p in a])
    assert all(isinstance(p[WINDOW], int) for p in a) and w.min() >= 7 and w.max() <= 90
    f = np.array([p[FATIGUE] for p in a])
    assert f.min() >= 0.01 and f.max() <= 1.0
    assert np.mean(f < 0.1) > 0.3  # log scale: a decade below 0.1 holds half the points, not 9%
    r = np.array([p[BASE_RESPONSE] for p in a])
    assert r.min() >= 0.1 and r.max() <= 0.4 and r.std() > 0.05


def test_latin_hypercube_hits_every_stratum_once() -> None:
    u = unit_sample("lhs", 20, 3, design_rng(1, 0))
    for j in range(3):
        assert sorted(np.floor(u[:, j] * 20).astype(int)) == list(range(20))


# --------------------------------------------------------------------------- running


def test_a_known_monotone_effect_shows_base_response_up_response_rate_up() -> None:
    """Members' base response probability drives the response rate: the sweep must show it rising."""
    sc = load_scenario(with_sweep({"replications": 3, "metrics": ["response_rate", "sent"],
                                   "parameters": {"market.members.segments.a.base_response": [0.1, 0.25, 0.4],
                                                  "market.members.segments.b.base_response": [0.1, 0.25, 0.4]}}))
    res = run_sweep(sc)
    t = res.table
    rr = t[(t["metric"] == "response_rate")]
    for pol in ("old", "new"):
        rows = rr[rr["policy"] == pol]
        grid = rows.set_index(["market.members.segments.a.base_response",
                               "market.members.segments.b.base_response"])
        for b in (0.1, 0.25, 0.4):
            means = grid.xs(b, level=1)["mean"].to_numpy()
            assert np.all(np.diff(means) > 0), (pol, b, means)
        low, high = grid.loc[(0.1, 0.1)], grid.loc[(0.4, 0.4)]
        assert low["ci_high"] < high["ci_low"]  # not a noise-sized rise


def test_table_columns_rows_and_paired_differences() -> None:
    sc = load_scenario(with_sweep({"replications": 2, "parameters": {WINDOW: [7, 90]}}))
    res = run_sweep(sc)
    t = res.table
    assert list(t.columns) == ["point", WINDOW, *TABLE_COLUMNS]
    assert len(t) == 2 * 2 * len(METRIC_NAMES) and (t["n"] == 2).all()
    assert t.loc[t["policy"] == "old", "diff"].isna().all()
    reps = res.replications
    for point in (0, 1):
        r = reps[reps["point"] == point]
        new = r[r["policy"] == "new"].set_index("replication")["sent"]
        old = r[r["policy"] == "old"].set_index("replication")["sent"]
        row = t[(t["point"] == point) & (t["policy"] == "new") & (t["metric"] == "sent")].iloc[0]
        assert row["diff"] == pytest.approx((new - old).mean())
        assert row["diff_ci_low"] < row["diff"] < row["diff_ci_high"] or (new - old).std() == 0
    assert list(res.point_frame[WINDOW]) == [7, 90]


def test_common_random_numbers_across_points_and_per_point_seeds() -> None:
    """The refund window of the new policy cannot change the old policy's numbers: with common
    random numbers the old policy's replications are identical at every point; with per-point
    seeds they are not."""
    sweep = {"replications": 2, "parameters": {WINDOW: [7, 30, 90]}}
    reps = run_sweep(load_scenario(with_sweep(sweep))).replications
    old = reps[reps["policy"] == "old"]
    by_point = [g[list(METRIC_NAMES)].to_numpy() for _, g in old.groupby("point")]
    assert all(np.array_equal(by_point[0], x) for x in by_point[1:])
    new = reps[reps["policy"] == "new"]
    assert not np.array_equal(new[new["point"] == 0]["net_credit_burn"].to_numpy(),
                              new[new["point"] == 2]["net_credit_burn"].to_numpy())

    reps2 = run_sweep(load_scenario(with_sweep({**sweep, "seeds": "per_point"}))).replications
    old2 = reps2[reps2["policy"] == "old"]
    assert not np.array_equal(old2[old2["point"] == 0]["sent"].to_numpy(), old2[old2["point"] == 1]["sent"].to_numpy())
    assert len(set(reps2.groupby("point")["seed"].first())) == 3


def test_results_do_not_depend_on_the_number_of_workers() -> None:
    sc = load_scenario(with_sweep({"replications": 2, "parameters": {FATIGUE: [0.0, 0.3]}}))
    serial = run_sweep(sc).table
    parallel = run_sweep(sc, workers=2).table
    pd.testing.assert_frame_equal(serial, parallel)


class CountingExecutor(SerialExecutor):
    def __init__(self) -> None:
        self.calls = 0

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        self.calls += len(args[0]) if fn is call_batch else 1  # tasks, whether batched or not
        return super().submit(fn, *args, **kwargs)


class InterruptAfter:
    """A progress callback that presses Ctrl-C after ``n`` finished tasks."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __call__(self, done: int, total: int) -> None:
        if done >= self.n:
            raise KeyboardInterrupt


def test_an_interrupted_sweep_keeps_its_tasks_and_a_resumed_one_computes_only_the_rest(tmp_path: Path) -> None:
    sweep = {"replications": 2, "parameters": {WINDOW: [7, 30, 90]}}
    sc = load_scenario(with_sweep(sweep))
    with pytest.raises(KeyboardInterrupt):
        run_sweep(sc, store=task_store(tmp_path), progress=InterruptAfter(5))
    assert task_store(tmp_path).count() == 5
    ex = CountingExecutor()
    resumed = run_sweep(sc, store=task_store(tmp_path), executor=ex)
    assert ex.calls == (3 + 1) * 2 - 5  # new at 3 points, old (untouched by the window) at one, 2 replications
    pd.testing.assert_frame_equal(resumed.table, run_sweep(sc).table)
    # change one point's value: only that point is computed again
    sc2 = load_scenario(with_sweep({**sweep, "parameters": {WINDOW: [7, 30, 60]}}))
    ex2 = CountingExecutor()
    run_sweep(sc2, store=task_store(tmp_path), executor=ex2)
    assert ex2.calls == 2  # the new policy at the changed point; the old one's inputs did not change


# --------------------------------------------------------------------------- the command line


@pytest.fixture()
def sweep_file(tmp_path: Path) -> Path:
    return write_yaml(tmp_path / "tiny_sweep.yaml", with_sweep(
        {"replications": 2, "parameters": {WINDOW: [7, 90], FATIGUE: [0.0, 0.2]}}))


def test_sweep_command_writes_the_table_figures_and_manifest(sweep_file: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = main(["sweep", str(sweep_file), "--out", str(out), "--no-progress", "--set", "horizon_days=30"])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    table = pd.read_csv(out / "sweep.csv")
    assert list(table.columns) == ["point", WINDOW, FATIGUE, *TABLE_COLUMNS]
    assert len(table) == 4 * 2 * len(METRIC_NAMES)
    for name in ("figures/sweep_response_rate.png", "figures/sweep_net_credit_burn.png",
                 "figures/sweep_heatmap_response_rate_new.png", "figures/sweep_heatmap_net_credit_burn_new.png",
                 "sweep_points.csv", "sweep_replications.csv", "scenario.resolved.yaml"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "figures/sweep_response_rate.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    man = json.loads((out / "manifest.json").read_text())
    assert man["kind"] == "sweep" and man["points"] == 4 and man["replications"] == 2
    assert man["figure_errors"] == {} and "figures/sweep_response_rate.png" in man["files"]
    assert "window_days" in stdout and "response_rate (%)" in stdout
    # the same command again: refused (the folder holds a sweep); --resume computes nothing new
    assert main(["sweep", str(sweep_file), "--out", str(out), "--no-progress", "--set", "horizon_days=30"]) == 2
    assert "--resume" in capsys.readouterr().err
    code = main(["sweep", str(sweep_file), "--out", str(out), "--no-progress", "--set", "horizon_days=30",
                 "--resume", "-q"])
    assert code == 0
    pd.testing.assert_frame_equal(pd.read_csv(out / "sweep.csv"), table)


def test_run_ignores_the_sweep_block_with_a_note(sweep_file: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", str(sweep_file), "--out", str(tmp_path / "run"), "-n", "1", "--no-progress", "-q"])
    _, err = capsys.readouterr()
    assert code == 0, err
    assert "ignores the sweep: block" in err


def test_validate_checks_and_describes_the_sweep(sweep_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(sweep_file)]) == 0
    assert "sweep: grid, 4 points x 2 policies x 2 replications" in capsys.readouterr().out


def line_of(path: Path, text: str, after: str = "sweep:") -> int:
    """The first line holding ``text`` after the line that starts with ``after``."""
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(after))
    return next(i for i, line in enumerate(lines[start:], start + 1) if text in line)


BAD_SWEEPS: list[tuple[str, dict[str, Any], str, str]] = [
    ("typo", {"parameters": {"policies.new.refund.windw_days": [7, 30]}}, "windw_days",
     "did you mean 'window_days'"),
    ("unknown policy", {"parameters": {"policies.newer.refund.window_days": [7]}}, "policies.newer",
     "must name a policy of the scenario: old, new"),
    ("not sweepable", {"parameters": {"root_seed": [1, 2]}}, "root_seed", "cannot vary 'root_seed'"),
    ("bad value", {"parameters": {FATIGUE: [0.1, -1]}}, FATIGUE, "must be in [0, 1000]"),
    ("not a whole number", {"parameters": {WINDOW: [7, 7.5]}}, WINDOW, "whole number"),
    ("low above high", {"method": "lhs", "n": 8, "parameters": {FATIGUE: {"low": 2, "high": 1}}}, FATIGUE,
     "needs low < high"),
    ("unknown list item", {"parameters": {"market.recruiters.nobody.count": [1]}}, "market.recruiters.nobody",
     "no item 'nobody'"),
    ("grid range without num", {"parameters": {FATIGUE: {"low": 0, "high": 1}}}, FATIGUE,
     "a grid needs a list of values or {low, high, num}"),
    ("list for lhs", {"method": "lhs", "n": 8, "parameters": {FATIGUE: [0.0, 1.0]}}, FATIGUE,
     "samples ranges"),
    ("num for lhs", {"method": "lhs", "n": 8, "parameters": {FATIGUE: {"low": 0, "high": 1, "num": 3}}}, "num: 3",
     "num is for method grid"),
    ("lhs without n", {"method": "lhs", "parameters": {FATIGUE: {"low": 0, "high": 1}}}, "method: lhs",
     "needs n, the number of points"),
]


@pytest.mark.parametrize(("label", "sweep", "line_text", "message"), BAD_SWEEPS, ids=[b[0] for b in BAD_SWEEPS])
def test_bad_sweeps_exit_2_naming_file_line_and_path(label: str, sweep: dict[str, Any], line_text: str,
                                                     message: str, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = write_yaml(tmp_path / "bad.yaml", with_sweep(sweep))
    out = tmp_path / "out"
    code = main(["sweep", str(path), "--out", str(out), "--no-progress"])
    _, err = capsys.readouterr()
    assert code == 2, err
    assert "Traceback" not in err
    key_line = line_of(path, line_text)  # a block list's line is that of its first item, just below
    assert any(f"{path}:{n}:" in err for n in (key_line, key_line + 1)), err
    assert message in err, err
    assert not out.exists()  # nothing written for bad input
    assert main(["validate", str(path)]) == 2  # validate finds it too


def test_sobol_size_and_missing_blocks_are_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_yaml(tmp_path / "s.yaml", with_sweep({"method": "sobol", "n": 12,
                                                       "parameters": {FATIGUE: {"low": 0, "high": 1}}}))
    assert main(["sweep", str(path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"{path}:{line_of(path, 'n: 12')}: sweep.n = 12: sobol needs a power of 2" in err
    plain = write_yaml(tmp_path / "plain.yaml", tiny())
    assert main(["sweep", str(plain), "--no-progress"]) == 2
    assert "no sweep: block" in capsys.readouterr().err
    with pytest.raises(ScenarioError, match="unknown field"):
        load_scenario(with_sweep({"parameters": {FATIGUE: [1]}, "nn": 3}))


# --------------------------------------------------------------------------- the shipped example


def test_the_shipped_sweep_example_runs_small(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = SCENARIOS / "sweep_refund_window.yaml"
    sc = load_scenario(path)
    spec = sweep_spec(sc)
    assert spec.method == "grid" and len(design(spec)) == 15
    argv = ["sweep", str(path), "--out", str(tmp_path / "out"), "--no-progress", "-q", "--replications", "1"]
    for s in shrink_overrides(path, members=1500, recruiters=40, horizon_days=30):
        argv += ["--set", s]
    code = main(argv)
    assert code == 0, capsys.readouterr().err
    table = pd.read_csv(tmp_path / "out" / "sweep.csv")
    assert table["point"].nunique() == 15 and set(table["policy"]) == {"old", "new"}


# --------------------------------------------------------------------------- reuse of untouched policies


def test_a_policy_the_levers_do_not_touch_runs_once_with_the_numbers_of_a_full_rerun() -> None:
    """Sweeping the new policy's window leaves the old policy's inputs unchanged: its replications run
    at the first point only (task count), and every number equals a forced re-run at every point."""
    sc = load_scenario(with_sweep({"replications": 2, "parameters": {WINDOW: [7, 30, 90]}}))
    shared_ex, full_ex = CountingExecutor(), CountingExecutor()
    shared = run_sweep(sc, executor=shared_ex)
    full = run_sweep(sc, executor=full_ex, share=False)
    assert shared_ex.calls == 3 * 2 + 1 * 2  # new at 3 points + old once, 2 replications each
    assert full_ex.calls == 3 * 2 * 2
    assert shared.tasks == {"planned": 12, "run": 8, "shared_policies": ["old"], "points_run": {"old": 1, "new": 3}}
    assert full.tasks["run"] == 12 and full.tasks["shared_policies"] == []
    pd.testing.assert_frame_equal(shared.replications, full.replications, check_exact=True)
    pd.testing.assert_frame_equal(shared.table, full.table, check_exact=True)


def test_a_market_lever_touches_every_policy_so_nothing_is_shared() -> None:
    ex = CountingExecutor()
    res = run_sweep(load_scenario(with_sweep({"replications": 1, "parameters": {FATIGUE: [0.0, 0.3]}})), executor=ex)
    assert ex.calls == 2 * 2 and res.tasks["shared_policies"] == []
    # a window x fatigue grid: the old policy runs once per fatigue level, not once per point
    sc = load_scenario(with_sweep({"replications": 2, "parameters": {WINDOW: [7, 30, 90], FATIGUE: [0.0, 0.3]}}))
    ex = CountingExecutor()
    mixed = run_sweep(sc, executor=ex)
    assert ex.calls == (6 + 2) * 2 and mixed.tasks["points_run"] == {"old": 2, "new": 6}
    pd.testing.assert_frame_equal(mixed.replications, run_sweep(sc, share=False).replications, check_exact=True)
    per_point = load_scenario(with_sweep({"replications": 1, "seeds": "per_point", "parameters": {WINDOW: [7, 90]}}))
    assert run_sweep(per_point).tasks["run"] == 4  # other seeds at every point: nothing to share


def test_a_resumed_sharing_sweep_reuses_the_shared_task_files(tmp_path: Path) -> None:
    sc = load_scenario(with_sweep({"replications": 2, "parameters": {WINDOW: [7, 30]}}))
    first = run_sweep(sc, store=task_store(tmp_path))
    assert task_store(tmp_path).count() == 2 * 2 + 2  # old's files at point 0 only
    ex = CountingExecutor()
    again = run_sweep(sc, store=task_store(tmp_path), executor=ex)
    assert ex.calls == 0
    pd.testing.assert_frame_equal(first.replications, again.replications, check_exact=True)
