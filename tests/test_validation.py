"""Model validity: comparison targets (exact), several settings on any executor, leave-one-out on an exact
toy, ``inmail-sim validate-model`` end to end with resume and --posterior, and bad input."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from simulator.cli import main
from simulator.core.batch import ReplicationJob, run_replications
from simulator.core.seeding import replication_seed
from simulator.experiments.abc import abc_posterior
from simulator.experiments.bayes_calibration import bayes_spec, spec_settings
from simulator.experiments.observation import observe
from simulator.experiments.runner import SerialExecutor, open_executor
from simulator.experiments.target_bands import Band
from simulator.experiments.validation import leave_one_out
from simulator.experiments.validation_rows import COLUMNS, EXTRAS, verdict
from simulator.experiments.world_evaluation import EarlyRule, WorldEvaluator, band_values, world_task
from simulator.scenario import load_scenario
from simulator.scenario.uncertain import Prior, world_market
from tests.scenario_helpers import TINY, write_yaml


def tiny_files(folder: Path) -> Path:
    """main.yaml (two uncertain segment levels, two band targets, a comparison target, a validation figure on
    other.yaml's dates) and other.yaml; returns main.yaml."""
    base = copy.deepcopy(TINY)
    base["horizon_days"] = 20
    base["market"]["fatigue"] = {"enabled": False}
    other = {**copy.deepcopy(base), "name": "other", "start_date": "2015-03-01"}
    write_yaml(folder / "other.yaml", other)
    base["uncertain"] = {
        "a": {"path": "market.members.segments.a.base_response", "prior": {"kind": "uniform", "a": 0.2, "b": 0.4},
              "reason": "test"},
        "b": {"path": "market.members.segments.b.base_response", "prior": {"kind": "uniform", "a": 0.1, "b": 0.3},
              "reason": "test"},
    }
    base["calibration"] = {"policy": "old", "targets": [
        {"name": "rate_a", "metric": "response_rate", "by": "member_segment", "label": "a", "low": 0.23, "high": 0.28},
        {"name": "rate_b", "metric": "response_rate", "by": "member_segment", "label": "b", "low": 0.14, "high": 0.19},
        {"name": "rise", "metric": "response_rate", "policy": "new", "baseline": "old", "relative": True,
         "low": -0.5, "high": 0.5},
    ], "validation": [{"name": "change_other", "scenario": "other.yaml", "policy": "new", "baseline": "old"}]}
    return write_yaml(folder / "main.yaml", base)


# --------------------------------------------------------------------------- comparison targets, settings


def test_a_comparison_target_is_the_paired_relative_change_per_replication(tmp_path: Path) -> None:
    """Exact: the band value of each replication equals new / old - 1 of two run_replications on its seed."""
    sc = load_scenario(tiny_files(tmp_path))
    spec = bayes_spec(sc)
    settings = spec_settings(sc, spec)
    assert [s.name for s in settings] == ["old", "new", "other.yaml:new", "other.yaml:old"]
    assert settings[2].run.start_date.isoformat() == "2015-03-01"  # another file's dates, this market
    theta = np.array([0.3, 0.2])
    keys = tuple(dict.fromkeys(b.key for b in (*spec.bands, *spec.check_bands)))
    obs = world_task(sc.market, spec.parameters, theta, settings, sc.root_seed, (0, 1, 2), keys)
    values = band_values((*spec.bands, *spec.check_bands), obs, "old")
    market = world_market(sc.market, spec.parameters, list(theta))
    for i in range(3):
        jobs = [ReplicationJob(market, s.policy, s.run, replication_seed(sc.root_seed, i)) for s in settings]
        old, new, other_new, other_old = (observe(r, market, j.policy)["response_rate"]
                                          for r, j in zip(run_replications(jobs), jobs, strict=True))
        assert values[i, 2] == new / old - 1.0
        assert values[i, 3] == other_new / other_old - 1.0
    assert values[:, 2].std() > 0  # the replications differ: the test compares real numbers


def test_several_settings_same_results_serially_and_with_two_workers(tmp_path: Path) -> None:
    sc = load_scenario(tiny_files(tmp_path))
    spec = bayes_spec(sc)
    settings = spec_settings(sc, spec, checks=False)
    assert [s.name for s in settings] == ["old", "new"]
    thetas = np.array([[0.3, 0.2], [0.25, 0.15], [0.39, 0.11], [0.21, 0.29]])
    sds = {b.column: 0.002 for b in spec.bands}
    early = EarlyRule(spec.bands, tuple(sorted(sds.items())), 0.0)

    def run(executor: Any) -> list[np.ndarray]:
        ev = WorldEvaluator(sc.market, spec.parameters, settings, sc.root_seed, spec.bands, 3, executor, sds=sds)
        return [o.rows for o in ev.observe("x", thetas, range(3), early)]

    serial = run(SerialExecutor())
    with open_executor(2) as ex:
        pooled = run(ex)
    for a, b in zip(serial, pooled, strict=True):
        np.testing.assert_array_equal(a, b)
    lengths = sorted(len(r) for r in serial)
    assert lengths[0] == 1 and lengths[-1] == 3  # a far world stops after one replication of each setting


# --------------------------------------------------------------------------- leave-one-out on an exact toy


TOY = (Band("t1", "t1", 0.2, 0.4, 0.2, "band"), Band("t2", "t2", 0.5, 0.7, 0.2, "band"),
       Band("sum", "sum", 0.8, 1.0, 0.2, "band"))
"""theta ~ U[0, 1]^2, figures t1 = theta1, t2 = theta2, sum = theta1 + theta2 (no noise)."""


def toy_values(thetas: np.ndarray) -> dict[str, np.ndarray]:
    return {"t1": thetas[:, 0], "t2": thetas[:, 1], "sum": thetas.sum(axis=1)}


def test_leave_one_out_on_an_exact_toy() -> None:
    """Each left-out figure's posterior on the other two is exact: a difference or sum of two independent
    uniforms of width 0.2, i.e. triangular of width 0.4 - median at its centre, 2.5% quantile at
    0.4 * sqrt(0.0125) = 0.0447 from the low end.  Tolerance: 4 SE of a sample quantile
    (n >= 600 accepted worlds: about 0.014 at the median, 0.02 at the 2.5% quantile)."""
    priors = [Prior("uniform", 0.0, 1.0), Prior("uniform", 0.0, 1.0)]

    def fit_without(band: Band) -> tuple[np.ndarray, np.ndarray]:
        kept = [b for b in TOY if b.name != band.name]

        def distance(label: str, thetas: np.ndarray, tolerance: float) -> np.ndarray:
            v = toy_values(thetas)
            return np.max([b.distance(v[b.name]) for b in kept], axis=0)

        res = abc_posterior(distance, priors, 500, 20_000, np.random.default_rng(5))
        assert res.stage == 1 and len(res.weights) >= 600
        return toy_values(res.thetas)[band.name], res.weights

    got = leave_one_out(TOY, fit_without)
    exact = {"t1": (0.1, 0.5), "t2": (0.4, 0.8), "sum": (0.7, 1.1)}  # supports of the triangular predictions
    edge = 0.4 * math.sqrt(0.025 / 2)  # F(lo + x) = 2 (x / 0.4)^2 below the centre
    for name, (lo, hi) in exact.items():
        p = got[name]
        assert p.median == pytest.approx((lo + hi) / 2, abs=0.014), name
        assert p.low == pytest.approx(lo + edge, abs=0.02) and p.high == pytest.approx(hi - edge, abs=0.02), name
    assert got["sum"].inside_share == pytest.approx(0.75, abs=0.05)  # P(|tri - 0.9| <= 0.1) = 1 - 2 * 0.125
    assert verdict(TOY[2], got["sum"].low, got["sum"].high) == "covered"
    assert verdict(TOY[2], 1.01, 1.2) == "missed"
    assert verdict(Band("n", "n", -math.inf, math.inf, 1.0, "none"), 0.0, 1.0) == "not comparable"


# --------------------------------------------------------------------------- the command


def test_validate_model_without_loo_writes_a_row_per_figure(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "v"
    assert main(["validate-model", str(tiny_files(tmp_path)), "--out", str(out), "--worlds", "10", "--no-loo",
                 "--anecdote-worlds", "2", "--no-progress"]) == 0
    capsys.readouterr()
    table = pd.read_csv(out / "validation.csv")
    assert list(table["figure"]) == ["rate_a", "rate_b", "rise", "change_other", *[e[0] for e in EXTRAS]]
    assert table["loo_verdict"].isna().all() and not (out / "leave_one_out.csv").exists()
    assert table.loc[table["figure"] == "research_user_collapse", "verdict"].item() == "not comparable"


@pytest.mark.slow
def test_validate_model_end_to_end_resume_and_posterior(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """About 25 s: four calibrations (all targets, then each left out), twice (the resume), and --posterior."""
    path = tiny_files(tmp_path)
    out = tmp_path / "v"
    args = ["validate-model", str(path), "--out", str(out), "--worlds", "20", "--anecdote-worlds", "3",
            "--no-progress"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "validation.csv" in text and "covered" in text
    table = pd.read_csv(out / "validation.csv")
    assert list(table.columns) == list(COLUMNS)
    figures = ["rate_a", "rate_b", "rise", "change_other", *[e[0] for e in EXTRAS]]
    assert list(table["figure"]) == figures
    assert list(table["kind"]) == ["target"] * 3 + ["prediction", "held out", "anecdote", "anecdote", "anecdote"]
    assert set(table["verdict"]) <= {"covered", "missed", "not comparable"}
    targets = table[table["kind"] == "target"]
    assert targets["loo_verdict"].isin(["covered", "missed"]).all()
    assert np.isfinite(table.loc[table["figure"] != "research_user_collapse", "model_value"]).all()
    loo = pd.read_csv(out / "leave_one_out.csv")
    assert list(loo["target"]) == ["rate_a", "rate_b", "rise"]
    for sub in ("calibration", "loo/rate_a", "loo/rise"):
        assert (out / sub / "posterior.csv").is_file() and (out / sub / "predictive_checks.csv").is_file()
    assert "| rate_a | target |" in (out / "validation.md").read_text()
    first = (out / "validation.csv").read_text()
    # resume: the same command on the same folder reuses every stored world and writes the same table
    assert main(args) == 0
    capsys.readouterr()
    assert (out / "validation.csv").read_text() == first
    manifest = json.loads((out / "calibration" / "calibration.json").read_text())
    assert manifest["simulations"]["worlds_reused_from_store"] > 0
    # --posterior: the same worlds on the same fresh seeds give the same predictive
    again = tmp_path / "p"
    assert main(["validate-model", str(path), "--out", str(again), "--posterior", str(out / "calibration"),
                 "--no-loo", "--anecdote-worlds", "0", "--no-progress"]) == 0
    capsys.readouterr()
    reused = pd.read_csv(again / "validation.csv").set_index("figure")
    for figure in ("rate_a", "rise", "change_other"):
        assert reused.loc[figure, "model_value"] == pytest.approx(table.set_index("figure").loc[figure,
                                                                                              "model_value"])


def test_validate_model_refuses_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tiny_files(tmp_path)
    data = load_scenario(path).resolved
    bad_key = write_yaml(tmp_path / "bad_key.yaml", {**copy.deepcopy(TINY), "colour": "blue"})
    assert main(["validate-model", str(bad_key), "--out", str(tmp_path / "o1"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "colour" in err and "Traceback" not in err
    plain = write_yaml(tmp_path / "plain.yaml", copy.deepcopy(TINY))
    assert main(["validate-model", str(plain), "--out", str(tmp_path / "o2"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "no uncertain: block" in err and "Traceback" not in err
    folder = tmp_path / "post"
    folder.mkdir()
    pd.DataFrame({"world": [0], "weight": [1.0], "a": [0.3], "nope": [0.2]}).to_csv(folder / "posterior.csv",
                                                                                   index=False)
    assert main(["validate-model", str(path), "--out", str(tmp_path / "o3"), "--posterior", str(folder),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "posterior.csv: columns" in err and "allowed: world, weight, a, b" in err and "Traceback" not in err
    assert not (tmp_path / "o3").exists()  # refused before anything ran
    data["calibration"]["targets"][2]["baseline"] = "nowhere"
    wrong = write_yaml(tmp_path / "wrong.yaml", data)
    assert main(["validate-model", str(wrong), "--out", str(tmp_path / "o4"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "calibration.targets" in err and "baseline" in err and "old, new" in err and "Traceback" not in err
