"""Sensitivity: Sobol indices recovered on the Ishigami function (known analytic indices), the
tornado's ordering on a toy function, and the simulator analysis end to end (exact common-random-
number checks, the command, bad blocks)."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scenario_helpers import SCENARIOS, tiny, write_yaml

from simulator.cli import main
from simulator.experiments.design import Parameter
from simulator.experiments.sensitivity import (
    TARGET_HALF_WIDTH,
    check_sensitivity,
    run_sensitivity,
    sensitivity_spec,
    sobol_analyse,
    sobol_table,
    tornado_analyse,
)
from simulator.experiments.sobol import sample_warnings, suggested_n
from simulator.scenario import load_scenario, shrink_overrides

# --------------------------------------------------------------------------- Ishigami

A, B = 7.0, 0.1
_V = A**2 / 8 + B * np.pi**4 / 5 + B**2 * np.pi**8 / 18 + 0.5
_V1 = 0.5 * (1 + B * np.pi**4 / 5) ** 2
_V2 = A**2 / 8
_VT3 = 8 * B**2 * np.pi**8 / 225
ISHIGAMI_S1 = np.array([_V1 / _V, _V2 / _V, 0.0])              # 0.3139, 0.4424, 0
ISHIGAMI_ST = np.array([(_V1 + _VT3) / _V, _V2 / _V, _VT3 / _V])  # 0.5576, 0.4424, 0.2437


def ishigami(x: np.ndarray) -> np.ndarray:
    """Ishigami & Homma (1990); inputs uniform on [-pi, pi]^3."""
    return np.sin(x[:, 0]) + A * np.sin(x[:, 1]) ** 2 + B * x[:, 2] ** 4 * np.sin(x[:, 0])


PARAMS = [Parameter(f"x{i + 1}", low=-np.pi, high=np.pi) for i in range(3)]


def test_sobol_indices_of_the_ishigami_function_are_recovered() -> None:
    """N = 1024 base samples (5,120 evaluations): every analytic index lies inside its 95% BCa
    bootstrap CI, and the CIs are narrow (half-width < 0.1), so the check has teeth."""
    tab = sobol_analyse(ishigami, PARAMS, 1024, seed=20150201, n_resamples=500)
    assert list(tab["parameter"]) == ["x1", "x2", "x3"] and (tab["n"] == 1024).all()
    for col, truth in (("S1", ISHIGAMI_S1), ("ST", ISHIGAMI_ST)):
        lo, hi = tab[f"{col}_ci_low"].to_numpy(), tab[f"{col}_ci_high"].to_numpy()
        assert np.all(lo <= truth) and np.all(truth <= hi), (col, lo, hi, truth)
        assert np.all(hi - lo < 0.2)
        assert np.all(np.abs(tab[col].to_numpy() - truth) < 0.05)
    # x3 acts only through its interaction with x1: no first-order effect, a clear total effect
    x3 = tab.iloc[2]
    assert x3["ST_ci_low"] > 0.15 and x3["S1_ci_low"] < 0 < x3["S1_ci_high"]


def test_sobol_analysis_is_reproducible_and_follows_the_seed() -> None:
    a = sobol_analyse(ishigami, PARAMS, 64, seed=3, n_resamples=100)
    b = sobol_analyse(ishigami, PARAMS, 64, seed=3, n_resamples=100)
    pd.testing.assert_frame_equal(a, b)  # the bootstrap CIs too: seeded from the root seed
    c = sobol_analyse(ishigami, PARAMS, 64, seed=4, n_resamples=100)
    assert not np.allclose(a["S1"], c["S1"])


def test_an_output_that_does_not_vary_gets_zero_indices() -> None:
    tab = sobol_analyse(lambda x: np.column_stack([x[:, 0], np.full(len(x), 2.0)]), PARAMS, 32, seed=1,
                        outputs=["y", "flat"], n_resamples=50)
    flat = tab[tab["output"] == "flat"]
    assert (flat[["S1", "ST", "S1_ci_low", "S1_ci_high", "ST_ci_low", "ST_ci_high"]].to_numpy() == 0).all()
    y = tab[tab["output"] == "y"].set_index("parameter")
    assert y.loc["x1", "ST"] > 0.9 and y.loc["x2", "ST"] == 0 and y.loc["x3", "ST"] == 0  # exactly: f_AB = f_A


def test_sobol_table_checks_shapes() -> None:
    with pytest.raises(ValueError):
        sobol_table(np.ones((1, 8)), np.ones((1, 8)), np.ones((2, 1, 8)), ["a", "b", "c"], ["y"])


# --------------------------------------------------------------------------- tornado


def test_tornado_orders_inputs_by_their_swing() -> None:
    params = [Parameter("a", low=0, high=1), Parameter("b", low=-1, high=1), Parameter("c", low=2, high=4)]

    def f(x: np.ndarray) -> np.ndarray:  # swings: a -> 5, b -> -1 (2 x -0.5), c -> 6 (2 x 3) but curved
        return 5 * x[:, 0] - 0.5 * x[:, 1] + 3 * (x[:, 2] - 3) ** 2 + 10

    tab = tornado_analyse(f, params, base=[0.5, 0.0, 3.0])
    assert list(tab["parameter"]) == ["a", "c", "b"]  # bar width: a 5, c 3 (both ends +3), b 1
    rows = tab.set_index("parameter")
    assert rows.loc["a", "output_base"] == pytest.approx(10.0 + 2.5)
    assert rows.loc["a", "effect_low"] == pytest.approx(-2.5) and rows.loc["a", "effect_high"] == pytest.approx(2.5)
    assert rows.loc["b", "swing"] == pytest.approx(-1.0)
    assert rows.loc["c", "swing"] == pytest.approx(0.0) and rows.loc["c", "span"] == pytest.approx(3.0)
    assert rows.loc["a", "base_value"] == 0.5 and rows.loc["c", "low"] == 2.0


# --------------------------------------------------------------------------- the simulator

WINDOW = "policies.new.refund.window_days"
FATIGUE = "market.fatigue.sensitivity"


def with_block(block: dict[str, Any], **changes: Any) -> dict[str, Any]:
    data = tiny(**changes)
    data["sensitivity"] = copy.deepcopy(block)
    return data


SMALL = {"parameters": {WINDOW: {"low": 7, "high": 90}, FATIGUE: {"low": 0.0, "high": 1.0}},
         "outputs": ["diff.response_rate", "net_credit_burn", "old.response_rate"], "n": 8, "replications": 2,
         "bootstrap": 100}


def test_simulator_sensitivity_runs_the_documented_number_of_evaluations() -> None:
    res = run_sensitivity(load_scenario(with_block(SMALL), ["horizon_days=30"]))
    d, n = 2, 8
    assert res.spec.evaluations == n * (d + 2) + 2 * d + 1 == len(res.samples)
    assert list(res.samples["design"].value_counts().sort_index().items()) == [
        ("A", 8), ("AB0", 8), ("AB1", 8), ("B", 8), ("tornado", 5)]
    ind = res.indices.set_index(["output", "parameter"])
    # the new policy's refund window cannot move the old policy's response rate: with common random
    # numbers f(AB_window) equals f(A) row by row, so its total index is exactly 0 ...
    assert ind.loc[("old.response_rate", WINDOW), "ST"] == 0.0 == ind.loc[("old.response_rate", WINDOW), "S1"]
    # ... so the old rate is a function of fatigue alone, f(AB_fatigue) equals f(B) row by row, and the
    # Saltelli 2010 / Jansen estimators (on outputs centred by their mean m over A and B, as scipy's
    # sobol_indices does) reduce to S1 = mean((f_B - m)(f_B - f_A)) / V and ST = mean((f_A - f_B)^2) / (2 V),
    # V the variance over the 2N = 16 rows of A and B.  The true
    # indices are both 1; with N = 8 the estimates scatter widely (here about 0.45-0.5), so the check
    # is on the estimator's own arithmetic, by hand from the 24 evaluations it used.
    old = res.samples.set_index(["design", "row"])["old.response_rate"]
    f_A, f_B, f_AB = (old.loc[d].sort_index().to_numpy() for d in ("A", "B", "AB1"))
    assert np.array_equal(f_AB, f_B)
    both = np.concatenate([f_A, f_B])
    var, centre = np.var(both), np.mean(both)
    assert var > 0
    assert ind.loc[("old.response_rate", FATIGUE), "S1"] == pytest.approx(
        np.mean((f_B - centre) * (f_B - f_A)) / var, rel=1e-9)
    assert ind.loc[("old.response_rate", FATIGUE), "ST"] == pytest.approx(np.mean((f_A - f_B) ** 2) / (2 * var),
                                                                         rel=1e-9)
    assert ind.loc[("old.response_rate", FATIGUE), "ST"] > 0.2  # fatigue matters (the value for this seed: 0.45)
    tor = res.tornado.set_index(["output", "parameter"])
    assert tor.loc[("old.response_rate", WINDOW), "effect_low"] == 0.0
    assert tor.loc[("old.response_rate", WINDOW), "effect_high"] == 0.0
    assert tor.loc[("old.response_rate", FATIGUE), "effect_high"] < 0  # more fatigue, fewer answers
    assert tor.loc[("old.response_rate", FATIGUE), "base_value"] == pytest.approx(0.08)  # the default
    assert tor.loc[("diff.response_rate", WINDOW), "base_value"] == 90  # the preset's window
    assert "diff.response_rate" in res.text() and "tornado" in res.text()


def test_sensitivity_reuses_the_sweep_ranges() -> None:
    data = tiny()
    data["sweep"] = {"parameters": {WINDOW: [7, 30, 90], FATIGUE: {"low": 0.0, "high": 0.5, "num": 3}}}
    spec = sensitivity_spec(load_scenario(data))
    assert spec.block == "sweep" and spec.paths == [WINDOW, FATIGUE]
    window, fatigue = spec.parameters
    assert (window.low, window.high, window.integer) == (7, 90, True)
    assert (fatigue.low, fatigue.high, fatigue.integer) == (0.0, 0.5, False)
    assert [o.name for o in spec.outputs] == ["diff.response_rate", "net_credit_burn"]
    assert spec.outputs[0].diff and spec.outputs[1].policy == "new"


def test_sensitivity_command_writes_indices_tornado_and_figures(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = write_yaml(tmp_path / "s.yaml", with_block({**SMALL, "outputs": ["diff.response_rate"]}))
    out = tmp_path / "out"
    code = main(["sensitivity", str(path), "--out", str(out), "--no-progress", "--set", "horizon_days=30",
                 "--samples", "4", "--replications", "1"])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    ind = pd.read_csv(out / "sensitivity.csv")
    assert list(ind.columns) == ["output", "parameter", "S1", "S1_ci_low", "S1_ci_high", "ST", "ST_ci_low",
                                 "ST_ci_high", "n", "warning"]
    assert len(ind) == 2 and (ind["n"] == 4).all()
    assert len(pd.read_csv(out / "tornado.csv")) == 2
    assert len(pd.read_csv(out / "sensitivity_samples.csv")) == 4 * 4 + 5
    for name in ("sobol_0_diff_response_rate.png", "tornado_0_diff_response_rate.png"):
        assert (out / "figures" / name).read_bytes()[:4] == b"\x89PNG"
    man = json.loads((out / "manifest.json").read_text())
    assert man["kind"] == "sensitivity" and man["evaluations"] == 21 and man["model_runs"] == 21 * 2
    assert "S1 [95% CI]" in stdout
    # n = 4 is far too small: the warning is in the printout, the manifest and every row of the CSV
    assert len(man["warnings"]) == 1 and "n = 4" in man["warnings"][0] and man["target_half_width"] == 0.05
    assert set(ind["warning"]) == {man["warnings"][0]} and f"WARNING: {man['warnings'][0]}" in stdout


def test_tornado_only_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_yaml(tmp_path / "s.yaml", with_block(SMALL))
    out = tmp_path / "out"
    assert main(["sensitivity", str(path), "--out", str(out), "--no-progress", "--no-sobol", "-q",
                 "--set", "horizon_days=20", "--replications", "1"]) == 0
    assert len(pd.read_csv(out / "sensitivity_samples.csv")) == 5
    assert not (out / "sensitivity.csv").read_text().strip() or pd.read_csv(out / "sensitivity.csv").empty


BAD = [
    ("unknown metric", {**SMALL, "outputs": ["diff.respons_rate"]}, "diff.respons_rate", "unknown metric"),
    ("unknown policy", {**SMALL, "outputs": ["newer.sent"]}, "newer.sent", "unknown policy 'newer'"),
    ("n not a power of 2", {**SMALL, "n": 12}, "n: 12", "power of 2"),
    ("bad path", {**SMALL, "parameters": {"market.fatigue.sensitivty": {"low": 0, "high": 1}}}, "sensitivty",
     "did you mean 'sensitivity'"),
    ("low above high", {**SMALL, "parameters": {FATIGUE: {"low": 1, "high": 0}}}, FATIGUE, "needs low < high"),
]


@pytest.mark.parametrize(("label", "block", "line_text", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_sensitivity_blocks_exit_2_with_file_and_line(label: str, block: dict[str, Any], line_text: str,
                                                          message: str, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = write_yaml(tmp_path / "bad.yaml", with_block(block))
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("sensitivity:"))
    line = next(i for i, text in enumerate(lines[start:], start + 1) if line_text in text)
    code = main(["sensitivity", str(path), "--out", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert any(f"{path}:{n}:" in err for n in (line, line + 1)) and message in err, err
    assert "Traceback" not in err and not (tmp_path / "out").exists()


def test_no_parameters_anywhere_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_yaml(tmp_path / "plain.yaml", tiny())
    assert main(["sensitivity", str(path), "--no-progress"]) == 2
    assert "no parameters to analyse" in capsys.readouterr().err


def test_the_shipped_example_has_a_valid_sensitivity_block() -> None:
    path = SCENARIOS / "sweep_refund_window.yaml"
    spec = check_sensitivity(load_scenario(path, shrink_overrides(path)))
    assert len(spec.parameters) == 4 and spec.evaluations == 16 * 6 + 9


# --------------------------------------------------------------------------- too small a sample


def test_a_too_small_sobol_sample_warns_and_its_suggested_n_does_not() -> None:
    """Ishigami at N = 256 (CIs ~ +-0.15): a warning with a suggested N; at that N no warning."""
    small = sobol_analyse(ishigami, PARAMS, 256, seed=20150201, n_resamples=200)
    warning = small["warning"].iloc[0]
    assert warning and (small["warning"] == warning).all()
    widest = max(((small["S1_ci_high"] - small["S1_ci_low"]) / 2).max(),
                 ((small["ST_ci_high"] - small["ST_ci_low"]) / 2).max())
    assert widest > TARGET_HALF_WIDTH and f"+-{widest:.2f} wide" in warning
    n = suggested_n(256, widest)
    assert n == 2 ** math.ceil(math.log2(256 * (widest / (0.8 * TARGET_HALF_WIDTH)) ** 2)) and n > 256
    assert f"n = {n} would bring the widest" in warning
    large = sobol_analyse(ishigami, PARAMS, n, seed=20150201, n_resamples=200)
    assert (large["warning"] == "").all()
    assert max((large["ST_ci_high"] - large["ST_ci_low"]).max(), (large["S1_ci_high"] - large["S1_ci_low"]).max()) \
        < 2 * TARGET_HALF_WIDTH
    assert sample_warnings(large) == {}


def _indices(s1: list[float], st: list[float], half_width: float = 0.01) -> pd.DataFrame:
    return pd.DataFrame({"output": "y", "parameter": [f"x{i}" for i in range(len(s1))], "S1": s1,
                         "S1_ci_low": np.array(s1) - half_width, "S1_ci_high": np.array(s1) + half_width, "ST": st,
                         "ST_ci_low": np.array(st) - half_width, "ST_ci_high": np.array(st) + half_width, "n": 64})


def test_inconsistent_indices_beyond_their_cis_warn() -> None:
    fine = _indices([0.3, 0.4], [0.35, 0.6])
    assert sample_warnings(fine) == {}
    over = sample_warnings(_indices([0.5, 0.2], [0.3, 0.6]))["y"]
    assert "first-order above total beyond their CIs for x0" in over and "n = 128" in over
    assert "sum to" not in over
    summed = sample_warnings(_indices([0.6, 0.5], [0.7, 0.6]))["y"]
    assert "first-order indices sum to 1.10, above 1 beyond their CIs" in summed
    assert sample_warnings(_indices([0.6, 0.5], [0.7, 0.6], half_width=0.1)) != {}  # wide: the width warns
    no_ci = _indices([0.5, 0.2], [0.3, 0.6]).assign(S1_ci_low=np.nan)
    assert sample_warnings(no_ci) == {}  # no bootstrap, nothing to judge
