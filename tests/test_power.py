"""The power of a baseline check: the printed minimum detectable effect and ``baseline plan``.

The formula is checked by hand (scipy quantiles typed out here); ``plan``'s answer is checked by a
Monte Carlo of the check itself (Welch tests + Holm over a family) on synthetic normal data, not the
simulator; the command line end to end on the tiny scenario of ``scenario_helpers``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from scenario_helpers import tiny, write_yaml
from scipy import stats

from simulator.cli import main
from simulator.experiments.baseline import Baseline, Stat, compare_baselines, load_baseline, plan_replications
from simulator.experiments.power import (
    detectable_effect,
    holm_family_size,
    mde_table,
    parse_detect,
    replications_needed,
    row_alpha,
)

ALPHA = 0.01


def _baseline(stats_: dict[str, dict[str, Stat]], seed: int = 1) -> Baseline:
    return Baseline(scenario="s", scenario_hash="h", config_hash="c", root_seed=seed, replications=10,
                    baseline_policy="old", policies=("old", "new"), overrides=(), versions={}, stats=stats_)


def _hand_mde(se_a: float, n_a: int, se_b: float, n_b: int, alpha_row: float) -> float:
    va, vb = se_a**2, se_b**2
    dof = (va + vb) ** 2 / (va**2 / (n_a - 1) + vb**2 / (n_b - 1))
    return (stats.t.ppf(1 - alpha_row / 2, dof) + stats.t.ppf(0.8, dof)) * math.sqrt(va + vb)


# --------------------------------------------------------------------------- the formula


def test_mde_matches_the_formula_by_hand() -> None:
    stored, now = Stat(0.2, 0.004, 10), Stat(0.21, 0.006, 8)
    # alpha 0.01 over 4 tested rows: Holm's first step is 0.0025 per row
    assert row_alpha(ALPHA, 4) == pytest.approx(0.0025)
    expected = _hand_mde(0.004, 10, 0.006, 8, 0.0025)
    assert detectable_effect(stored, now, 0.0025) == pytest.approx(expected, rel=1e-12)
    # by a calculator: Welch dof = 52e-6^2 / (16e-6^2 / 9 + 36e-6^2 / 7) = 12.66, t_{0.99875} = 3.757,
    # t_{0.8} = 0.871, se = sqrt(52e-6) = 0.007211: (3.757 + 0.871) * 0.007211 = 0.03337
    assert expected == pytest.approx(0.03337, abs=1e-5)
    assert detectable_effect(Stat(5.0, 0.0, 10), Stat(5.0, 0.0, 10), 0.0025) == 0.0  # no spread: exact


def test_check_report_prints_and_stores_the_mde_of_its_rows() -> None:
    metrics = {"response_rate": (0.2, 0.004), "sent": (1000.0, 20.0)}
    stored = _baseline({"old": {m: Stat(mu, se, 10) for m, (mu, se) in metrics.items()},
                        "new": {m: Stat(mu, se, 10) for m, (mu, se) in metrics.items()}})
    now = _baseline({row: {m: Stat(s.mean, 2 * s.se, 10) for m, s in ms.items()}
                     for row, ms in stored.stats.items()}, seed=2)
    report = compare_baselines(stored, now)
    assert report.tested == 4
    rr = report.rows.set_index(["row", "metric"]).loc[("old", "response_rate"), "mde"]
    assert rr == pytest.approx(_hand_mde(0.004, 10, 0.008, 10, ALPHA / 4), rel=1e-12)
    text = report.render()
    assert "Holm-corrected over 4 rows -> 0.0025 per row" in text
    line = next(ln for ln in text.splitlines() if ln.strip().startswith("old") and "%" in ln)
    assert f"{rr:.3g} ({100 * rr / 0.2:.0f}%)" in line


def test_save_prints_the_mde_of_a_check_at_the_same_replications(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    scenario = write_yaml(tmp_path / "tiny.yaml", tiny(horizon_days=30))
    target = tmp_path / "b.json"
    assert main(["baseline", "save", str(scenario), "--to", str(target), "-n", "6", "--alpha", "0.05",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    saved = load_baseline(target)
    s = saved.stats["old"]["response_rate"]
    m = holm_family_size(saved.stats)
    expected = _hand_mde(s.se, s.n, s.se, s.n, 0.05 / m)
    assert f"Holm-corrected over {m} rows" in out
    header = next(ln for ln in out.splitlines() if ln.strip().startswith("row "))
    old = next(ln for ln in out.splitlines() if ln.strip().startswith("old "))
    assert header.split()[1:] == ["response_rate", "net_credit_burn", "sent", "responses", "credits_per_response"]
    assert old.split()[1] == f"{expected:.3g}"
    table = mde_table(saved.stats, None, 0.05)
    assert set(table["row"]) == {"old", "new", "new - old"}


# --------------------------------------------------------------------------- planning


def test_replications_needed_is_the_smallest_n_that_reaches_the_effect() -> None:
    alpha_row = ALPHA / 5
    n = replications_needed(0.5, 1.0, alpha_row)
    assert n is not None
    mde = lambda k: detectable_effect(Stat(0, 1 / math.sqrt(k), k), Stat(0, 1 / math.sqrt(k), k), alpha_row)  # noqa: E731
    assert mde(n) <= 0.5 < mde(n - 1)
    z = stats.norm.ppf(1 - alpha_row / 2) + stats.norm.ppf(0.8)
    assert n > 2 * (z / 0.5) ** 2  # the t quantiles need more than the normal answer
    # against a fixed stored row whose own se already exceeds what the effect allows: out of reach
    assert replications_needed(0.5, 1.0, alpha_row, stored=Stat(0.0, 0.2, 25)) is None
    assert replications_needed(0.5, 1.0, alpha_row, stored=Stat(0.0, 0.05, 400)) < n


def test_plan_gives_80_percent_power_in_a_simulated_check() -> None:
    """A Holm-corrected family of m = 5 Welch tests, one row shifted by the wanted effect.

    R = 4000 simulated checks at the planned n: the power estimate has standard error
    sqrt(0.8 * 0.2 / 4000) = 0.0063; tolerance 4 se = 0.025 around 0.8 (plus the rounding of n up,
    which can only add power: at n - 1 the power must be below 0.8 + tolerance as well).
    """
    m, effect, sd, reps = 5, 0.8, 1.0, 4000
    n = replications_needed(effect, sd, row_alpha(ALPHA, m))
    assert n is not None and 10 < n < 100
    rng = np.random.default_rng(20261206)

    def power(k: int) -> float:
        a = rng.normal(0.0, sd, (reps, m, k))
        b = rng.normal(0.0, sd, (reps, m, k))
        b[:, 0] += effect
        p = stats.ttest_ind(b, a, axis=2, equal_var=False).pvalue  # (reps, m)
        order = np.sort(p, axis=1)
        # Holm step-down: reject row 0 when every smaller-or-equal p passes its step
        steps = ALPHA / (m - np.arange(m))
        passes = np.cumprod(order <= steps, axis=1).astype(bool)
        rank = (p < p[:, :1]).sum(axis=1)  # position of row 0 among the sorted p-values
        return float(passes[np.arange(reps), rank].mean())

    tol = 4 * math.sqrt(0.8 * 0.2 / reps)
    assert abs(power(n) - 0.8) < tol + 0.02  # n is rounded up: at most a couple of points of power above
    assert power(n - 2) < 0.8 + tol


def test_parse_detect_units() -> None:
    assert parse_detect("0.1pp", "response_rate").absolute(0.2) == pytest.approx(0.001)
    assert parse_detect("2%", "sent").absolute(-500.0) == pytest.approx(10.0)
    assert parse_detect("25", "sent").absolute(500.0) == 25.0


def test_plan_end_to_end_from_a_pilot_and_from_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = write_yaml(tmp_path / "tiny.yaml", tiny(horizon_days=30))
    plan = plan_replications(scenario, "1pp", "response_rate", pilot=6, seed=3)
    assert plan.needed == max(int(n) for n in plan.table["n_new"])
    row = plan.table.set_index("row").loc["old"]
    assert row["n_new"] == replications_needed(0.01, row["sd"], row_alpha(ALPHA, plan.tested))
    target = tmp_path / "b.json"
    assert main(["baseline", "save", str(scenario), "--to", str(target), "-n", "6", "--no-progress"]) == 0
    capsys.readouterr()
    code = main(["baseline", "plan", str(scenario), "--detect", "2%", "--metric", "sent", "--against", str(target)])
    out = capsys.readouterr().out
    assert code == 0
    assert "n (check against the file)" in out and re.search(r"needed: \d+ replications per run", out)


@pytest.mark.parametrize(("argv", "message"), [
    (["--detect", "abc"], "give a positive change"),
    (["--detect", "0"], "give a positive change"),
    (["--detect=-1pp"], "give a positive change"),
    (["--detect", "1pp", "--metric", "sent"], "percentage points apply to rates"),
    (["--detect", "150%"], "below 100%"),
    (["--detect", "1pp", "--metric", "nope"], "unknown metric"),
])
def test_bad_plan_input_exits_2(argv: list[str], message: str, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    scenario = write_yaml(tmp_path / "tiny.yaml", tiny(horizon_days=30))
    code = main(["baseline", "plan", str(scenario), *argv, "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
