"""The shipped search's question and loose ends: how far new_2015 is from the front (exact, and on a tiny
search), lever ranges overridden with --set, --max-tasks / --memory-limit enforced for optimize, validate's
optimize: line, and the help text."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simulator.experiments.search_distance import budget_objectives, distance_to_front
from simulator.scenario import ScenarioError, load_scenario
from tests.scenario_helpers import ROOT, write_yaml
from tests.test_optimize import tiny_search

DESIGN = ROOT / "scenarios" / "design_2015.yaml"


def _frame(rows: dict[str, tuple[float, float]]) -> pd.DataFrame:
    return pd.DataFrame([{"name": n, "trial": k, "responses_mean": r, "net_credit_burn_mean": b}
                         for k, (n, (r, b)) in enumerate(rows.items())])


def _spec() -> object:
    scenario = load_scenario(tiny_search(objectives=[{"maximize": "responses"}, {"minimize": "net_credit_burn"}]))
    return scenario.optimize


# --------------------------------------------------------------------------- distance to the front


def test_distance_to_front_exact() -> None:
    """new_2015 at (100 answers, 50 burn); a: (110, 50) dominates it, b: (120, 60) does not; c: (90, 10) neither.
    Normalised over answers 90..120 and burn 10..60, a is nearest (1/3 away); the largest gain in answers at
    burn <= 50 is a's +10, and its paired CI is the t-interval of the per-replication differences."""
    spec = _spec()
    pareto = _frame({"a": (110, 50), "b": (120, 60), "c": (90, 10)})
    references = _frame({"old_2014": (95, 40), "new_2015": (100, 50)})
    values = {"a": np.array([[108.0, 50], [112, 50]]), "new_2015": np.array([[99.0, 50], [101, 50]])}
    found = distance_to_front(pareto, references, spec, {}, values, ["responses", "net_credit_burn"])
    assert found is not None
    assert found["dominated_by"] == ["a"]
    assert found["nearest"]["name"] == "a"
    assert found["nearest"]["distance"] == pytest.approx(10 / 30)
    gain = found["gain"]
    assert gain["name"] == "a" and gain["difference"] == pytest.approx(10.0)
    assert gain["at"] == "net_credit_burn <= new_2015's"
    # differences 9 and 11: mean 10, sd sqrt(2), t(0.975, 1) = 12.706 -> half-width 12.706
    assert gain["ci_low"] == pytest.approx(10 - 12.7062, abs=1e-3) and gain["ci_high"] == pytest.approx(22.7062,
                                                                                                         abs=1e-3)
    assert [o.metric for o in budget_objectives(spec)] == ["net_credit_burn"]  # type: ignore[arg-type]


def test_distance_to_front_without_a_dominating_policy() -> None:
    spec = _spec()
    pareto = _frame({"a": (90, 40), "b": (120, 70)})
    references = _frame({"new_2015": (100, 50)})
    found = distance_to_front(pareto, references, spec, {}, None, None)
    assert found is not None and found["dominated_by"] == []
    assert found["nearest"]["name"] in ("a", "b") and found["nearest"]["distance"] > 0
    assert found["gain"]["name"] == "a" and found["gain"]["ci_low"] is None  # the only one at burn <= 50
    none = distance_to_front(_frame({"b": (120, 70)}), references, spec, {}, None, None)
    assert none is not None and none["gain"]["name"] is None and "no Pareto policy" in none["gain"]["note"]
    assert distance_to_front(pareto.iloc[:0], references, spec, {}) is None


def test_a_tiny_search_says_how_far_new_2015_is(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "tiny.yaml", tiny_search())
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "simulator", "optimize", str(path), "--out", str(out),
                           "--no-progress"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    closest = json.loads((out / "search.json").read_text())["closest_to_new_2015"]
    pareto = pd.read_csv(out / "pareto.csv")
    assert "closest to new_2015:" in proc.stdout and "largest gain in" in proc.stdout
    assert set(closest) == {"reference", "dominated_by", "nearest", "gain"}
    assert pareto.loc[pareto["dominates_new_2015"], "name"].tolist() == closest["dominated_by"]
    nearest = pareto.loc[pareto["distance_to_new_2015"].idxmin(), "name"]
    assert nearest == closest["nearest"]["name"]
    gain = closest["gain"]  # seeded: a Pareto policy burns no more than new_2015 (pareto_02 at this seed)
    assert gain["name"] is not None and gain["at"] == "net_credit_burn <= new_2015's"
    row = pareto.set_index("name").loc[gain["name"]]
    ref = pd.read_csv(out / "references.csv").set_index("name").loc["new_2015"]
    assert row["net_credit_burn_mean"] <= ref["net_credit_burn_mean"]
    # the paired mean difference over the common replications is the difference of the stored means
    assert gain["difference"] == pytest.approx(row["response_rate_mean"] - ref["response_rate_mean"])
    assert gain["ci_low"] <= gain["difference"] <= gain["ci_high"]


# --------------------------------------------------------------------------- loose ends


def test_a_lever_range_is_overridden_with_set() -> None:
    """The dotted lever path after optimize.levers names the lever; a lever not in the file is added; a
    misspelt one is refused naming the allowed paths."""
    scenario = load_scenario(DESIGN, ["optimize.levers.refund.window_days=[10, 60]",
                                      "optimize.levers.refund.latency_days=[0, 3]"])
    levers = {lv.path: lv for lv in scenario.optimize.levers}  # type: ignore[union-attr]
    assert (levers["refund.window_days"].low, levers["refund.window_days"].high) == (10, 60)
    assert (levers["refund.latency_days"].low, levers["refund.latency_days"].high) == (0, 3)
    assert len(levers) == 10
    dropped = load_scenario(DESIGN, ["optimize.levers.threshold.min_sends=null"])
    assert "threshold.min_sends" not in {lv.path for lv in dropped.optimize.levers}  # type: ignore[union-attr]
    with pytest.raises(ScenarioError) as bad:
        load_scenario(DESIGN, ["optimize.levers.refund.window_dayz=[10, 60]"])
    text = bad.value.render()
    assert "optimize.levers.refund.window_dayz" in text and "refund.window_days" in text


def test_a_nested_lever_section_counts_as_its_dotted_levers(tmp_path: Path) -> None:
    nested = load_scenario(tiny_search(levers={"refund": {"window_days": [7, 120], "kind": ["on_silence",
                                                                                           "on_response"]}}))
    assert [lv.path for lv in nested.optimize.levers] == ["refund.window_days", "refund.kind"]  # type: ignore
    path = write_yaml(tmp_path / "twice.yaml", tiny_search(levers={"refund.window_days": [7, 90],
                                                                   "refund": {"window_days": [7, 120]}}))
    with pytest.raises(ScenarioError, match="given twice"):
        load_scenario(path)


def test_optimize_enforces_max_tasks_and_memory_limit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The upper estimate of the tiny search: 2 presets x 6 + 8 trials x 4 + 8 x 6 = 92 replications."""
    from simulator.cli.main import main

    path = write_yaml(tmp_path / "tiny.yaml", tiny_search())
    out = tmp_path / "o"
    assert main(["optimize", str(path), "--out", str(out), "--max-tasks", "91"]) == 2
    err = capsys.readouterr().err
    assert "optimize asks for 92 tasks" in err and "--max-tasks" in err and "Traceback" not in err
    assert not (out / "study.journal").exists()
    assert main(["optimize", str(path), "--out", str(out), "--memory-limit", "1K"]) == 2
    err = capsys.readouterr().err
    assert "needs about" in err and "the given limit" in err and "optimize: 2 presets x 6 + 8 trials" in err
    assert not (out / "study.journal").exists()
    assert main(["optimize", str(path), "--out", str(out), "--max-tasks", "92", "--trials", "2", "--no-progress",
                 "--quiet"]) == 0


def test_validate_summarises_the_optimize_block(capsys: pytest.CaptureFixture[str]) -> None:
    from simulator.cli.main import main

    assert main(["validate", str(DESIGN)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("  optimize:"))
    assert "from new_2015, 9 levers (refund.kind, refund.window_days" in line
    assert "objectives: maximize responses, minimize net_credit_burn, maximize response_rate" in line
    assert "constraints: unanswered_per_active_member <= 1.0 * baseline; response_rate >= 0.2" in line
    assert "budget: 320 trials in generations of 16 (nsga2), 4 to 16 replications each" in line
    assert main(["validate", str(DESIGN), "--max-tasks", "100"]) == 2  # the search's estimate is refused too


def test_optimize_help_shows_a_plain_percent_sign() -> None:
    proc = subprocess.run([sys.executable, "-m", "simulator", "optimize", "--help"], capture_output=True,
                          text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0 and "95%" in proc.stdout and "%%" not in proc.stdout


def test_the_report_says_how_far_new_2015_is(tmp_path: Path) -> None:
    from simulator.io.search_folder import read_search_folder
    from simulator.io.search_section import render_search_html
    from tests.search_helpers import write_search_folder

    folder = write_search_folder(tmp_path / "opt")
    meta = json.loads((folder / "search.json").read_text())
    meta["closest_to_new_2015"] = {
        "reference": "new_2015", "dominated_by": ["pareto_02"],
        "nearest": {"name": "pareto_02", "distance": 0.125, "space": "normalised"},
        "gain": {"objective": "maximize response_rate", "at": "net_credit_burn <= new_2015's", "name": "pareto_02",
                 "difference": 0.0125, "ci_low": 0.01, "ci_high": 0.015, "ci": "paired"}}
    (folder / "search.json").write_text(json.dumps(meta))
    page = render_search_html(read_search_folder(folder))
    assert "Nearest to new_2015: pareto_02 (normalised distance 0.125)" in page
    assert "Largest gain in response rate at net_credit_burn &lt;= new_2015&#x27;s</b>: pareto_02, 1.25 pp " \
           "[1, 1.5] (paired)." in page


def test_a_large_front_names_at_most_twelve_policies_the_best_at_each_objective_among_them() -> None:
    """pareto.png names every policy of a small front, and of a front of 131 the best at each objective
    plus evenly spaced ones, 12 in all."""
    import numpy as np
    import pandas as pd

    from simulator.io.plotting.search_figures import MAX_LABELS, labelled

    objectives = [("responses", "maximize"), ("net_credit_burn", "minimize")]
    small = pd.DataFrame({"responses_mean": [3.0, 1.0], "net_credit_burn_mean": [5.0, 2.0]})
    assert labelled(small, objectives) == [0, 1]
    rng = np.random.default_rng(1)
    front = pd.DataFrame({"responses_mean": rng.random(131), "net_credit_burn_mean": rng.random(131)})
    picks = labelled(front, objectives)
    assert len(picks) == MAX_LABELS == len(set(picks))
    assert int(front["responses_mean"].idxmax()) in picks
    assert int(front["net_credit_burn_mean"].idxmin()) in picks
