"""``inmail-sim optimize``: the search on a known front, on a tiny market, serial vs workers, resume, bad input."""

from __future__ import annotations

import math
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.experiments.runner import SerialExecutor
from simulator.experiments.search import SearchSettings, run_search
from simulator.experiments.search_driver import DriveSettings, Outcome, drive, open_study
from simulator.experiments.search_front import generational_distance, hypervolume, non_dominated
from simulator.scenario import load_scenario
from simulator.scenario.optimize_schema import Lever
from tests.scenario_helpers import ROOT, tiny, write_yaml

OPTIMIZE: dict[str, Any] = {
    "base": "new_2015",
    "levers": {"refund.kind": ["on_silence", "on_response"], "refund.window_days": [7, 120],
               "allotments.recruiter": [50, 300], "pooling": [True, False]},
    "objectives": [{"maximize": "response_rate"}, {"minimize": "net_credit_burn"}],
    "constraints": ["net_credit_burn <= 1.1 * baseline"],
    "trials": 8, "population": 4, "replications": 2, "max_replications": 4, "reevaluate": 6,
}
STABLE = ["trial", "state", "refund.kind", "refund.window_days", "allotments.recruiter", "pooling",
          "response_rate_mean", "net_credit_burn_mean", "net_credit_burn_ci_high", "feasible", "replications"]
"""trials.csv columns that must not depend on workers or interruptions (``seconds`` does)."""


def tiny_search(**changes: Any) -> dict[str, Any]:
    return tiny(horizon_days=60, optimize={**OPTIMIZE, **changes})


# --------------------------------------------------------------------------- a known front, no simulation


def _convex(x: float, y: float) -> tuple[float, float]:
    """f1 = x^2 + y^2, f2 = (x - 1)^2 + y^2: the front is y = 0, x in [0, 1], i.e. f2 = (1 - sqrt(f1))^2."""
    return x * x + y * y, (x - 1) ** 2 + y * y


@pytest.mark.parametrize("seed", range(8))
def test_synthetic_front_is_recovered_within_a_stated_distance(seed: int) -> None:
    """NSGA-II through the same ask/tell driver on a 2-objective convex function, 200 trials (10 generations
    of 20), for 8 seeds: the non-dominated trials lie within a generational distance of 0.04 of the true front
    (which spans [0, 1] in both objectives) and cover it (hypervolume >= 90% of the true front's)."""
    levers = (Lever("x", "float", -1.0, 2.0), Lever("y", "float", -1.0, 1.0))
    study = open_study(["minimize", "minimize"], None)

    def evaluate(batch: list[tuple[int, dict[str, Any]]]) -> list[Outcome]:
        return [Outcome(_convex(s["x"], s["y"])) for _, s in batch]

    assert drive(study, DriveSettings(levers, 200, 20, "nsga2", seed), evaluate)
    points = np.array([t.values for t in study.trials])
    front = points[non_dominated(points)]
    f1 = np.linspace(0, 1, 2001)
    true = np.column_stack([f1, (1 - np.sqrt(f1)) ** 2])
    assert generational_distance(front, true) < 0.04
    ref = np.array([1.1, 1.1])
    assert hypervolume(front, ref) >= 0.9 * hypervolume(true, ref)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=12),
       st.tuples(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1)))
def test_hypervolume_invariants(points: list[tuple[float, float, float]], extra: tuple[float, float, float]) -> None:
    """Adding a point never lowers the hypervolume; dropping dominated points never changes it; it is at most
    the box's volume and at least the largest single point's box."""
    ref = np.array([1.0, 1.0, 1.0])
    pts = np.array(points)
    hv = hypervolume(pts, ref)
    assert hypervolume(np.vstack([pts, extra]), ref) >= hv - 1e-12
    assert hypervolume(pts[non_dominated(pts)], ref) == pytest.approx(hv, abs=1e-12)
    assert max(float(np.prod(ref - p)) for p in pts) - 1e-12 <= hv <= 1.0 + 1e-12


def test_hypervolume_is_exact_on_boxes() -> None:
    ref = np.array([1.0, 1.0, 1.0])
    assert hypervolume(np.array([[0.5, 0.5, 0.5]]), ref) == pytest.approx(0.125)
    # two boxes overlapping in [0.5,1]^2 x [0,1] ... union = 0.5 + 0.5 - 0.25
    two = np.array([[0.0, 0.5, 0.0], [0.5, 0.0, 0.0]])
    assert hypervolume(two, ref) == pytest.approx(0.75)
    assert hypervolume(np.empty((0, 3)), ref) == 0.0


# --------------------------------------------------------------------------- a tiny market


@pytest.fixture(scope="module")
def tiny_result(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path, Path]:
    folder = tmp_path_factory.mktemp("tiny_search")
    path = write_yaml(folder / "tiny.yaml", tiny_search())
    out = folder / "out"
    proc = subprocess.run([sys.executable, "-m", "simulator", "optimize", str(path), "--out", str(out),
                           "--no-progress"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc, path, out


def test_output_folder_follows_the_contract(tiny_result: tuple[Any, Path, Path]) -> None:
    proc, _, out = tiny_result
    for name in ("trials.csv", "pareto.csv", "references.csv", "hypervolume.csv", "pareto_policies.yaml",
                 "search.json", "pareto.png", "convergence.png", "study.journal"):
        assert (out / name).is_file(), name
    trials = pd.read_csv(out / "trials.csv")
    assert list(trials.columns[:2]) == ["trial", "state"]
    assert trials["trial"].tolist() == list(range(8))
    assert set(trials["state"]) <= {"complete", "infeasible", "failed"}
    assert {"response_rate_mean", "response_rate_ci_low", "response_rate_ci_high", "constraint_0_value",
            "constraint_0_bound", "constraint_0_met", "feasible", "replications", "worlds", "seconds"} \
        <= set(trials.columns)
    # trial 0 is new_2015's own rules, scored like the new_2015 reference (same seeds)
    refs = pd.read_csv(out / "references.csv").set_index("name")
    assert trials.loc[0, "refund.window_days"] == 90
    assert trials["replications"].between(2, 4).all()
    pareto = pd.read_csv(out / "pareto.csv")
    assert pareto.columns[0] == "name" and "reevaluated_replications" in pareto.columns
    assert (pareto["reevaluated_replications"] == 6).all() and pareto["feasible"].all()
    assert "best at" in proc.stdout and "new_2015" in proc.stdout
    assert set(refs.index) == {"old_2014", "new_2015"}


def test_a_pareto_policy_is_no_worse_than_new_2015(tiny_result: tuple[Any, Path, Path]) -> None:
    """The re-evaluated Pareto set holds new_2015 itself or a policy at least as good on every objective."""
    _, _, out = tiny_result
    pareto = pd.read_csv(out / "pareto.csv")
    new = pd.read_csv(out / "references.csv").set_index("name").loc["new_2015"]
    no_worse = (pareto["response_rate_mean"] >= new["response_rate_mean"]) & \
               (pareto["net_credit_burn_mean"] <= new["net_credit_burn_mean"])
    assert no_worse.any()


def test_pareto_policies_run_as_is_and_reproduce_their_means(tiny_result: tuple[Any, Path, Path],
                                                             tmp_path: Path) -> None:
    """Every pareto_policies.yaml block pasted under policies: runs with `inmail-sim run` on the same seeds
    and lands inside its stored 95% CI (exactly on the mean: common random numbers)."""
    _, path, out = tiny_result
    blocks = yaml.safe_load((out / "pareto_policies.yaml").read_text())["policies"]
    data = yaml.safe_load(path.read_text())
    data.pop("optimize")
    data["policies"] = {"new": {"preset": "new_2015"}, **blocks}
    data["baseline"] = "new"
    scenario = write_yaml(tmp_path / "pareto_run.yaml", data)
    run_out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "simulator", "run", str(scenario), "--out", str(run_out), "-n", "6",
                           "--no-figures", "--no-progress"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    reps = pd.read_csv(run_out / "replications.csv")
    means = reps.groupby("policy")[["response_rate", "net_credit_burn"]].mean()
    for _, row in pd.read_csv(out / "pareto.csv").iterrows():
        for metric in ("response_rate", "net_credit_burn"):
            got = means.loc[row["name"], metric]
            assert row[f"{metric}_ci_low"] <= got <= row[f"{metric}_ci_high"]
            assert got == pytest.approx(row[f"{metric}_mean"], rel=1e-12)


def test_serial_and_two_workers_give_the_same_trials(tmp_path: Path) -> None:
    scenario = load_scenario(tiny_search())
    serial = run_search(scenario, SerialExecutor(), out=tmp_path / "serial")
    with ProcessPoolExecutor(2) as pool:
        parallel = run_search(scenario, pool, out=tmp_path / "parallel")
    pd.testing.assert_frame_equal(serial.trials[STABLE], parallel.trials[STABLE])
    pd.testing.assert_frame_equal(serial.pareto[["name", *STABLE]], parallel.pareto[["name", *STABLE]])


def test_an_interrupted_search_resumes_without_redoing_trials(tmp_path: Path) -> None:
    """Stopped after 5 of 8 trials (mid-generation), then resumed: the same trials and Pareto set as an
    uninterrupted search, and the two runs together simulate exactly what the uninterrupted one did."""
    scenario = load_scenario(tiny_search())
    whole = run_search(scenario, SerialExecutor(), out=tmp_path / "whole")
    first = run_search(scenario, SerialExecutor(), out=tmp_path / "cut", settings=SearchSettings(stop_after=5))
    assert not first.finished and len(first.trials) == 5 and first.pareto.empty
    second = run_search(scenario, SerialExecutor(), out=tmp_path / "cut")
    assert second.finished
    pd.testing.assert_frame_equal(whole.trials[STABLE], second.trials[STABLE])
    pd.testing.assert_frame_equal(whole.pareto[["name", *STABLE]], second.pareto[["name", *STABLE]])
    simulated = whole.info["replications"]["simulated"]
    assert first.info["replications"]["simulated"] + second.info["replications"]["simulated"] == simulated


def test_robust_mode_scores_across_worlds(tmp_path: Path) -> None:
    data = tiny_search(trials=4, robust={"replications": 1})
    data["uncertain"] = {"effect": {"path": "market.response.personalization_effect",
                                    "prior": {"kind": "uniform", "a": 0.5, "b": 2.5}, "reason": "a test"}}
    from simulator.experiments.search import search_worlds

    scenario = load_scenario(data)
    markets, info = search_worlds(scenario, "prior", 4)
    result = run_search(scenario, SerialExecutor(), settings=SearchSettings(worlds=markets, worlds_info=info))
    assert (result.trials["worlds"] == 4).all()
    assert (result.trials["constraint_0_bound"] == 0.8).all()
    assert result.trials["constraint_0_value"].between(0, 1).all()
    assert math.isclose(result.info["worlds"]["count"], 4)


# --------------------------------------------------------------------------- bad input


BAD: list[tuple[str, Any, str, str]] = [
    ("levers", {"refund.window_days": [-5, 120]}, "optimize.levers.refund.window_days", "must be in [0,"),
    ("levers", {"market.members.count": [1000, 2000]}, "optimize.levers.market.members.count", "uncertain:"),
    ("levers", {"refund.windows": [7, 90]}, "optimize.levers.refund.windows", "refund.window_days"),
    ("levers", {"refund.window_days": [90, 7]}, "optimize.levers.refund.window_days", "needs low < high"),
    ("levers", {"refund.window_days": [7.5, 90]}, "optimize.levers.refund.window_days", "whole-number"),
    ("levers", {"pooling": [1, 2]}, "optimize.levers.pooling", "true/false"),
    ("objectives", [{"maximize": "respons_rate"}], "optimize.objectives.0", "response_rate"),
    ("objectives", ["sent"], "optimize.objectives.0", "{maximize: sent}"),
    ("constraints", ["net_credit_burn < 3"], "optimize.constraints.0", "METRIC <= NUMBER"),
    ("constraints", ["burn <= 3"], "optimize.constraints.0", "net_credit_burn"),
    ("population", 1, "optimize.population", "[2,"),
]


def _optimize(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """``inmail-sim optimize ARGV`` in this process (bad input never starts a search): exit code, stderr."""
    from simulator.cli.main import main

    code = main(["optimize", *argv])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(("key", "value", "field", "allowed"), BAD, ids=[b[2] + ":" + str(b[1])[:20] for b in BAD])
def test_bad_optimize_blocks_exit_2_naming_file_field_and_allowed_values(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str, value: Any, field: str, allowed: str) -> None:
    path = write_yaml(tmp_path / "bad.yaml", tiny_search(**{key: value}))
    code, err = _optimize([str(path), "--out", str(tmp_path / "o")], capsys)
    assert code == 2, err
    assert "Traceback" not in err
    assert "bad.yaml:" in err and field in err and allowed in err, err


def test_bad_command_lines_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plain = write_yaml(tmp_path / "plain.yaml", tiny(horizon_days=60))
    good = write_yaml(tmp_path / "good.yaml", tiny_search())
    cases = [
        ([str(plain)], "needs an optimize: block"),
        ([str(good), "--world-count", "4"], "--world-count needs --worlds"),
        ([str(good), "--worlds", "prior"], "no uncertain: block"),
        ([str(good), "--worlds", str(tmp_path / "missing.csv")], "missing.csv"),
        ([str(good), "--trials", "0"], "--trials"),
    ]
    for argv, message in cases:
        code, err = _optimize([*argv, "--out", str(tmp_path / "o")], capsys)
        assert code == 2 and message in err and "Traceback" not in err, err


def test_a_folder_holding_another_search_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o"
    first = write_yaml(tmp_path / "a.yaml", tiny_search(trials=2, population=2))
    second = write_yaml(tmp_path / "b.yaml", tiny_search(trials=2, population=2, reevaluate=4))
    code, err = _optimize([str(first), "--out", str(out), "--no-progress", "--quiet"], capsys)
    assert code == 0, err
    code, err = _optimize([str(second), "--out", str(out)], capsys)
    assert code == 2 and "--force" in err, err
    code, err = _optimize([str(second), "--out", str(out), "--force", "--no-progress", "--quiet"], capsys)
    assert code == 0, err
