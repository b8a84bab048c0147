"""The report of an ``inmail-sim optimize`` folder, on the hand-made contract folder of tests/search_helpers.py:
the numbers shown equal the CSVs', the rule-by-rule difference from new_2015 is right, the figures are
embedded, a damaged folder is exit 2 or a note, and the small helpers (dominance, convergence) hold."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from search_helpers import PNG, SECONDS, pareto_frame, write_search_folder
from test_worlds_report import assert_balanced, close, images

from simulator.cli import main
from simulator.io.report import REPORT_FILE, NotARunFolderError, build_report
from simulator.io.search_folder import (
    Objective,
    best_under_constraints,
    converged_at,
    is_search_folder,
    no_worse,
    read_search_folder,
)
from simulator.io.search_section import front_table, render_search_html


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return write_search_folder(tmp_path / "opt")


@pytest.fixture
def page(folder: Path) -> str:
    report = build_report(folder)
    assert report.errors == {}
    assert report.path == folder / REPORT_FILE
    return report.path.read_text(encoding="utf-8")


def rows_of(html: str) -> dict[str, list[str]]:
    """The cells of every table row, keyed by its first cell."""
    out: dict[str, list[str]] = {}
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", html, flags=re.S):
        cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)]
        if cells:
            out.setdefault(cells[0], cells)
    return out


def test_the_folder_kind_is_known_by_search_json(folder: Path, tmp_path: Path) -> None:
    assert is_search_folder(folder)
    assert not is_search_folder(tmp_path)


def test_report_is_balanced_html_with_both_figures(page: str) -> None:
    assert_balanced(page)
    assert images(page) == [PNG, PNG]
    assert "policy design search" in page and "Traceback" not in page


def test_pareto_table_shows_the_csv_means_and_cis(folder: Path) -> None:
    found = read_search_folder(folder)
    rows = rows_of(front_table(found))
    pareto = pareto_frame()
    assert set(pareto["name"]) | {"old_2014", "new_2015"} <= set(rows)
    for _, expected in pareto.iterrows():
        cells = rows[expected["name"]]
        rate = re.fullmatch(r"([\d.]+)% \[([\d.]+), ([\d.]+)\]", cells[4])
        assert rate, cells[4]
        for text, column in zip(rate.groups(), ("mean", "ci_low", "ci_high"), strict=True):
            assert close(text, 100 * expected[f"response_rate_{column}"])
        burn = re.fullmatch(r"([\d.k]+) \[([\d.k]+), ([\d.k]+)\]", cells[5])
        assert burn, cells[5]
        assert close(burn.group(1), expected["net_credit_burn_mean"])
        assert cells[1] == str(expected["refund.window_days"]) and cells[2] == expected["refund.kind"]
        assert cells[-1] == "20"  # re-evaluated replications
    assert rows["pareto_02"][7] == "no worse" and rows["pareto_01"][7] == "trades off"
    # a reference row shows its preset's own lever values
    assert rows["new_2015"][1:3] == ["90", "on_response"] and rows["old_2014"][1:3] == ["7", "on_silence"]
    assert rows["pareto_01"][6].startswith("met")


def test_the_best_policy_differs_from_new_2015_rule_by_rule(page: str) -> None:
    best = page[page.index("<section id=\"best\">"):]
    best = best[:best.index("</section>")]
    first = best[:best.index("response_rate &gt;= 0.30")]
    rows = rows_of(first)
    assert rows["refund.window_days"] == ["refund.window_days", "90", "30"]
    assert rows["threshold.min_rate"] == ["threshold.min_rate", "0.13", "0.1"]
    assert "refund.kind" not in rows  # both on_response
    assert "This is new_2015 itself" in best  # the second constraint set's answer is the reference


def test_summary_sentences(page: str) -> None:
    assert "1 of the 2 Pareto policies are no worse than new_2015 on every objective</b>: pareto_02" in page
    total, simulation, overhead = SECONDS["total"], SECONDS["simulation"], SECONDS["search_overhead"]
    assert f"took {total:.1f} s: {simulation:.1f} s simulating (90%) and {overhead:.1f} s" in page
    assert "reached 99% of its final value at trial 3 of 6" in page
    assert "6 trials: 4 complete, 1 infeasible, 1 failed; 30 replications in all." in page
    assert "6 trials (optuna NSGAIISampler, generations of 3, seed 7)" in page
    assert "best at maximize response rate: pareto_01</h3>" in page
    assert "Precision rule: start with 4 replications" in page and "stopped before its last trial" not in page


def test_a_lever_at_a_range_end_is_named(folder: Path) -> None:
    pareto = pareto_frame()
    assert "At the end of a range" not in render_search_html(read_search_folder(folder))
    pareto.loc[1, "refund.window_days"] = 7
    pareto.loc[0, "threshold.min_rate"] = 0.25
    pareto.to_csv(folder / "pareto.csv", index=False)
    page = render_search_html(read_search_folder(folder))
    assert "<code>refund.window_days</code> = 7, its lower end, in pareto_02" in page
    assert "<code>threshold.min_rate</code> = 0.25, its upper end, in pareto_01" in page


def test_a_stopped_search_says_so(folder: Path) -> None:
    meta = json.loads((folder / "search.json").read_text())
    meta |= {"finished": False, "trials_told": 4}
    (folder / "search.json").write_text(json.dumps(meta))
    page = render_search_html(read_search_folder(folder))
    assert "stopped before its last trial" in page and "4 of 6 trials" in page


def test_cli_report_of_an_optimize_folder(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(folder)]) == 0
    assert str(folder / REPORT_FILE) in capsys.readouterr().out


def test_missing_figure_and_table_are_notes(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (folder / "convergence.png").unlink()
    (folder / "trials.csv").write_text("nonsense\n1\n")
    assert main(["report", str(folder)]) == 0
    err = capsys.readouterr().err
    assert "convergence.png is missing" in err and "trials.csv lacks the columns" in err
    page = (folder / REPORT_FILE).read_text(encoding="utf-8")
    assert_balanced(page)
    assert len(images(page)) == 1 and "This figure cannot be shown: convergence.png is missing" in page


@pytest.mark.parametrize("damage", ["json", "pareto", "columns"])
def test_an_unusable_folder_is_exit_2(folder: Path, damage: str, capsys: pytest.CaptureFixture[str]) -> None:
    if damage == "json":
        (folder / "search.json").write_text("{not json")
        expected = "search.json: cannot be read"
    elif damage == "pareto":
        (folder / "pareto.csv").unlink()
        expected = "missing pareto.csv"
    else:
        pareto_frame().drop(columns=["net_credit_burn_mean"]).to_csv(folder / "pareto.csv", index=False)
        expected = "pareto.csv lacks the column net_credit_burn_mean"
    with pytest.raises(NotARunFolderError, match=re.escape(expected)):
        build_report(folder)
    assert main(["report", str(folder)]) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err


def test_an_invalid_policy_block_is_a_note_not_a_crash(folder: Path) -> None:
    block = "policies:\n  pareto_01: {preset: new_2015, refund: {window_days: -3}}\n"
    (folder / "pareto_policies.yaml").write_text(block)
    page = build_report(folder).path.read_text(encoding="utf-8")
    assert "The policy pareto_01 cannot be built" in page and "window_days" in page


def test_an_empty_front_says_so(folder: Path) -> None:
    pareto_frame().iloc[:0].to_csv(folder / "pareto.csv", index=False)
    meta = json.loads((folder / "search.json").read_text())
    meta["best_under_constraints"] = []
    (folder / "search.json").write_text(json.dumps(meta))
    page = render_search_html(read_search_folder(folder))
    assert "No feasible policy was found" in page
    assert_balanced(page)


def test_robust_mode_is_described(folder: Path) -> None:
    meta = json.loads((folder / "search.json").read_text())
    meta["worlds"] = {"source": "prior", "count": 16, "score": {"maximize": "the 0.25 quantile of the world means",
                                                                "constraints": "met in at least 0.8 of the worlds"}}
    (folder / "search.json").write_text(json.dumps(meta))
    pareto = pareto_frame()
    pareto["constraint_0_value"], pareto["constraint_0_bound"] = 0.875, 0.8
    pareto.to_csv(folder / "pareto.csv", index=False)
    page = render_search_html(read_search_folder(folder))
    assert ("16 plausible worlds from prior, each trial scored by the 0.25 quantile of the world means (maximized); "
            "met in at least 0.8 of the worlds") in page
    assert "Each cell is the scored quantile of the per-world means" in page
    assert "in 88% of worlds (needs 80%)" in page


# --------------------------------------------------------------------------- the helpers, exactly and as invariants


MAXMIN = [Objective("response_rate", "maximize"), Objective("net_credit_burn", "minimize")]


def test_no_worse_exact() -> None:
    assert no_worse([0.25, 10.0], [0.20, 12.0], MAXMIN)
    assert not no_worse([0.25, 13.0], [0.20, 12.0], MAXMIN)
    assert no_worse([0.20, 12.0], [0.20, 12.0], MAXMIN)


finite = st.floats(-1e6, 1e6, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(finite, finite), min_size=2, max_size=2))
def test_no_worse_is_a_preorder(points: list[tuple[float, float]]) -> None:
    a, b = ([*p] for p in points)
    assert no_worse(a, a, MAXMIN)
    if no_worse(a, b, MAXMIN) and no_worse(b, a, MAXMIN):
        assert a == b


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 10, allow_nan=False), min_size=1, max_size=40))
def test_converged_at_is_the_first_trial_at_99_percent(steps: list[float]) -> None:
    values = pd.Series(steps).cummax()
    frame = pd.DataFrame({"trial": range(len(values)), "hypervolume": values})
    at = converged_at(frame)
    final = float(values.iloc[-1])
    if final <= 0:
        assert at is None
        return
    assert at is not None and values[at] >= 0.99 * final
    assert at == 0 or values[at - 1] < 0.99 * final


def test_a_policy_best_at_several_objectives_is_shown_once(folder: Path) -> None:
    meta = json.loads((folder / "search.json").read_text())
    meta["best_under_constraints"] = [
        {"constraints": "c", "objective": "maximize response_rate", "name": "pareto_02"},
        {"constraints": "c", "objective": "minimize net_credit_burn", "name": "pareto_02"}]
    (folder / "search.json").write_text(json.dumps(meta))
    page = render_search_html(read_search_folder(folder))
    assert page.count("<h3>Under <code>c</code>") == 1
    assert "best at maximize response rate and minimize net credit burn: pareto_02</h3>" in page


# --------------------------------------------------------------------------- on a real small search


DESIGN = str(Path(__file__).resolve().parents[1] / "scenarios" / "design_2015.yaml")
SMALL_SEARCH = ["--scale", "0.02", "--set", "horizon_days=60", "--trials", "4", "--set", "optimize.population=2",
                "--set", "optimize.replications=2", "--set", "optimize.max_replications=4",
                "--set", "optimize.reevaluate=4", "--no-progress", "--quiet"]


def test_report_of_a_real_small_search(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "search"
    assert main(["optimize", DESIGN, "--out", str(out), *SMALL_SEARCH]) == 0
    assert main(["report", str(out)]) == 0
    capsys.readouterr()
    page = (out / REPORT_FILE).read_text(encoding="utf-8")
    assert_balanced(page)
    assert len(images(page)) == 2
    found = read_search_folder(out)
    assert found.notes == {} and len(found.pareto) >= 1 and found.references is not None
    rows = rows_of(front_table(found))
    first_objective = found.objectives[0].metric
    column = 1 + len(found.levers)
    for frame in (found.pareto, found.references):
        assert frame is not None
        for _, expected in frame.iterrows():
            mean = rows[str(expected["name"])][column].split(" ")[0].rstrip("%")
            k = 100 if first_objective == "response_rate" else 1
            assert close(mean, k * expected[f"{first_objective}_mean"])
    for _, _, name in best_under_constraints(found):
        assert f": {name}</h3>" in page
