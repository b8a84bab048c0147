"""The report's "How sure is this?" section on a small real run across worlds (old_vs_new.yaml shrunk to
2,000 members, 60 recruiters, 60 days; 12 prior worlds x 2 replications) and on a plain run: the numbers
shown equal the CSVs', the figure is drawn, the discovery is shown when it exists, damaged files are notes."""

from __future__ import annotations

import base64
import json
import math
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.cli import main
from simulator.core.metrics import CURRENT_METRICS
from simulator.experiments.world_study import run_worlds
from simulator.io.plotting.world_figures import per_world_differences, plot_worlds
from simulator.io.report import build_report, load_run
from simulator.io.world_files import WorldsView, write_worlds_run
from simulator.io.worlds_section import SECTION_TITLE, WORLDS_TABLE_METRICS, worlds_section
from simulator.scenario import Scenario, load_scenario
from simulator.scenario.loading import shrink_overrides

SOURCE = str(Path(__file__).resolve().parents[1] / "scenarios" / "old_vs_new.yaml")
W, R = 12, 2
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def small() -> Scenario:
    return load_scenario(SOURCE, shrink_overrides(SOURCE))


@pytest.fixture(scope="module")
def view(small: Scenario) -> WorldsView:
    return WorldsView(run_worlds(small, small.uncertain, "prior", requirements=small.decision, world_count=W,
                                 per_world=R))


@pytest.fixture(scope="module")
def run_dir(view: WorldsView, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run folder, written once; tests that change it work on a copy (:func:`copy_of`)."""
    return write_worlds_run(view.study, tmp_path_factory.mktemp("worlds") / "run", index=False)


@pytest.fixture(scope="module")
def page(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = copy_of(run_dir, tmp_path_factory.mktemp("page"))
    report = build_report(folder, dpi=40)
    assert report.errors == {}
    return report.path.read_text(encoding="utf-8")


def copy_of(run_dir: Path, where: Path) -> Path:
    return Path(shutil.copytree(run_dir, where / "run"))


def section_of(folder: Path) -> tuple[str, dict[str, str]]:
    """The section alone (without drawing the report's six figures) and the errors it noted."""
    errors: dict[str, str] = {}
    html = worlds_section(folder, load_run(folder), dpi=30, errors=errors)
    assert_balanced(html)
    return html, errors


def section(text: str) -> str:
    start = text.find("<section id=\"how-sure\">")
    assert start >= 0, "no How sure is this? section"
    return text[start:text.find("</section>", start)]


def images(html: str) -> list[bytes]:
    return [base64.b64decode(data) for data in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html)]


class Balance(HTMLParser):
    """Checks that every element is closed, in order (the report is hand-written HTML)."""

    VOID: ClassVar[set[str]] = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'} at {self.getpos()}")
        else:
            self.stack.pop()


def assert_balanced(text: str) -> None:
    checker = Balance()
    checker.feed(text)
    checker.close()
    assert checker.problems == [] and checker.stack == [], (checker.problems[:3], checker.stack)


# --------------------------------------------------------------------------- reading the numbers back


def parse_number(text: str) -> tuple[float, float]:
    """A number as the report writes it, and half a unit of its last digit (the rounding it can carry)."""
    match = re.fullmatch(r"([+-]?)(\d+)(?:\.(\d+))?([kM]?)", text.strip())
    assert match, text
    sign, whole, frac, suffix = match.groups()
    scale = {"": 1.0, "k": 1e3, "M": 1e6}[suffix]
    value = float(f"{sign}{whole}.{frac or '0'}") * scale
    return value, 0.5 * 10.0 ** -len(frac or "") * scale + 1e-12


def close(cell: str, expected: float) -> bool:
    value, tolerance = parse_number(cell)
    return abs(value - expected) <= tolerance


def table_rows(html: str) -> dict[str, list[str]]:
    """The first worlds table: metric (its title) -> the cell texts after the unit."""
    table = html[html.find("<table class=\"worlds\">"):]
    table = table[:table.find("</table>")]
    rows = {}
    for metric, cells in re.findall(r"<tr><td title=\"([a-z_]+)\">.*?</td><td>[^<]*</td>(.*?)</tr>", table):
        rows[metric] = re.findall(r"<td class=\"n\">(.*?)</td>", cells)
    return rows


def test_the_table_shows_the_csv_numbers(page: str, run_dir: Path) -> None:
    csv = pd.read_csv(run_dir / "worlds_comparison.csv").set_index("metric")
    rows = table_rows(section(page))
    assert list(rows) == [m for m in WORLDS_TABLE_METRICS if m in csv.index]
    for metric, cells in rows.items():
        row = csv.loc[metric]
        k = 100.0 if metric.endswith("_rate") else 1.0
        diff, mc, w80, w95, p_better, share = cells
        assert close(diff, row["diff_mean"] * k), (metric, diff)
        for text, (low, high) in ((mc, ("mc_ci_low", "mc_ci_high")), (w80, ("worlds_q10", "worlds_q90")),
                                  (w95, ("worlds_q025", "worlds_q975"))):
            a, b = text.strip("[]").split(", ")
            assert close(a, row[low] * k) and close(b, row[high] * k), (metric, text, row[low], row[high])
        assert p_better == "n/a" if math.isnan(row["p_better"]) else close(p_better, row["p_better"])
        assert share == "n/a" if math.isnan(row["mc_share"]) else share == f"{row['mc_share'] * 100:.0f}%"


def test_every_metric_is_in_the_folded_table(page: str) -> None:
    folded = section(page).split("<summary>every metric", 1)[1]
    assert folded.startswith(f" ({len(CURRENT_METRICS)})</summary>")
    assert "title=\"pending\"" not in folded  # the deprecated name is not shown twice


def test_the_lead_says_the_answer_in_words(page: str, run_dir: Path) -> None:
    html = section(page)
    csv = pd.read_csv(run_dir / "worlds_comparison.csv").set_index("metric")
    rate = csv.loc["response_rate"]
    assert f"<h2>{SECTION_TITLE}</h2>" in html
    lead = re.search(r"<li>(Across 12 plausible worlds, <b>new</b> .*?)</li>", html)
    assert lead, html[:2000]
    words = lead.group(1)
    verb = "raises" if rate["diff_mean"] > 0 else "lowers"
    assert f"{verb} the response rate by " in words and "in 80% of worlds the change is" in words
    low, high = re.search(r"in 80% of worlds the change is (\S+) to (\S+) points", words).groups()
    assert close(low, rate["worlds_q10"] * 100) and close(high, rate["worlds_q90"] * 100)
    flips = rate["worlds_q10"] < 0 < rate["worlds_q90"]
    assert ("Whether it goes up or down depends on the assumptions" in words) == flips
    assert "total responses" in html
    assert f"Monte Carlo noise is {rate['mc_share'] * 100:.0f}% of the variance" in html
    # where the section sits: after the answer, before who wins and who loses
    assert page.find("The question and the answer") < page.find(SECTION_TITLE) < page.find("Who wins, who loses")


def test_the_figure_is_drawn_and_matches_the_table(page: str, view: WorldsView) -> None:
    pngs = images(section(page))
    assert len(pngs) == 1 and pngs[0][:8] == PNG  # no discovery yet: one figure, the per-world differences
    assert len(images(page)) == 9  # the six report figures, the two of face validity and this one
    outcomes, comparison = view.world_outcomes, view.worlds_comparison.set_index(["policy", "metric"])
    diffs = per_world_differences(outcomes, "old", R)
    for metric, part in diffs.groupby("metric"):
        assert len(part) == W
        # the per-world means average to the table's mean difference (equal weights)
        assert part["diff"].mean() == pytest.approx(comparison.loc[("new", metric), "diff_mean"], rel=1e-9, abs=1e-9)
    fig = plot_worlds(view)
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title(loc="left") for ax in shown] == ["response rate", "responses", "net credit burn",
                                                         "unanswered InMails per active member"]
    for ax in shown:
        heights = [patch.get_height() for patch in ax.patches]
        assert sum(heights) == W  # every world in the histogram
        assert {line.get_gid() for line in ax.lines} >= {"worlds80-new", "worlds95-new"}


def test_robustness_lists_the_requirements_and_the_shares(page: str, run_dir: Path, small: Scenario) -> None:
    html = section(page)
    assert "Which policy holds up across the worlds?" in html
    for requirement in small.decision:
        assert f"<li><code>{requirement.text.replace('>', '&gt;').replace('<', '&lt;')}</code></li>" in html
    table = pd.read_csv(run_dir / "robustness.csv")
    whole = table[(table["measure"] == "satisficing") & (table["metric"] == "all requirements")]
    for policy in ("old", "new"):
        value = whole[whole["policy"] == policy].set_index("statistic")["value"]
        whole_cell = (f"<td class=\"n\"><b>{value['share'] * 100:.0f}%</b> [{value['ci_low'] * 100:.0f}%, "
                      f"{value['ci_high'] * 100:.0f}%]</td>")
        pattern = (re.escape(f"<td>{policy}</td>") + f"(?:<td class=\"n\">[^<]*</td>){{{len(small.decision)}}}"
                   + re.escape(whole_cell))
        assert re.search(pattern, html), policy
    assert "regret: how far each policy falls short" in html


def test_without_a_discovery_the_command_is_shown(page: str) -> None:
    html = section(page)
    assert "In which worlds does the conclusion flip?" in html
    assert "inmail-sim discover " in html and "--where &quot;diff.response_rate &lt; 0&quot;" in html


def test_the_discovery_is_shown_with_its_figure(run_dir: Path, tmp_path: Path) -> None:
    from simulator.experiments.discovery import discover
    from simulator.io.discovery_files import write_discovery

    folder = copy_of(run_dir, tmp_path)
    result = discover(folder, "diff.response_rate < 0", resamples=5)
    write_discovery(result, folder / "discover")
    doc = json.loads((folder / "discover" / "discovery.json").read_text())
    doc["sentence"] += " <script>alert(1)</script>"  # text from a file is escaped, never markup
    (folder / "discover" / "discovery.json").write_text(json.dumps(doc), encoding="utf-8")
    html, errors = section_of(folder)
    assert errors == {}
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    shown = result.sentence.replace("'", "&#x27;").replace("<", "&lt;").replace(">", "&gt;")
    assert f"<p><b>{shown} " in html
    assert result.n_worlds == W  # the R replications of a world are one world
    assert f"holds in {result.n_true} of the {result.n_worlds} worlds" in html
    assert "<code>diff.new.response_rate &lt; 0</code>" in html
    pngs = images(html)
    assert len(pngs) == (2 if (folder / "discover" / "tradeoff.png").is_file() else 1)
    if len(pngs) == 2:
        assert pngs[1] == (folder / "discover" / "tradeoff.png").read_bytes()


def test_the_page_is_well_formed(page: str) -> None:
    assert_balanced(page)


# --------------------------------------------------------------------------- without worlds, damaged files


def test_a_run_without_worlds_says_what_its_ci_covers(small: Scenario, tmp_path: Path) -> None:
    from simulator.api import run_experiment

    folder = run_experiment(small, replications=2).write(tmp_path / "plain")
    html, errors = section_of(folder)
    assert errors == {} and html.startswith("<section id=\"how-sure\">") and html.endswith("</section>")
    assert "Monte Carlo noise only" in html and f"the {len(small.uncertain)} uncertain assumptions" in html
    assert "--worlds prior --out DIR</code>" in html and "--worlds CAL_DIR/posterior.csv" in html
    assert "inmail-sim calibrate" in html and "<table" not in html and images(html) == []


def test_a_damaged_worlds_comparison_is_a_note(run_dir: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    folder = copy_of(run_dir, tmp_path)
    (folder / "worlds_comparison.csv").write_text("policy,metric\nnew,response_rate\n", encoding="utf-8")
    assert main(["report", str(folder)]) == 0
    err = capsys.readouterr().err
    assert "worlds_comparison.csv lacks the columns diff_mean" in err
    text = (folder / "report.html").read_text(encoding="utf-8")
    html = section(text)
    assert "<p class=\"error\">The answer across plausible worlds cannot be shown: worlds_comparison.csv" in html
    assert "Which policy holds up across the worlds?" in html  # the rest is still there
    assert_balanced(text)


@pytest.mark.parametrize("name, content, note", [
    ("worlds_comparison.csv", b"\x00\xff\xfe garbage", "The answer across plausible worlds cannot be shown"),
    ("world_outcomes.csv", b"replication,world\n0,0\n", "This figure could not be drawn"),
    ("robustness.csv", b"", "Robustness cannot be shown: robustness.csv"),
])
def test_damaged_worlds_files_are_named(run_dir: Path, tmp_path: Path, name: str, content: bytes,
                                        note: str) -> None:
    folder = copy_of(run_dir, tmp_path)
    (folder / name).write_bytes(content)
    html, errors = section_of(folder)
    assert note in html
    assert ("worlds" in errors) == (name != "robustness.csv")


def test_a_run_with_one_policy_has_no_difference_to_show(run_dir: Path, tmp_path: Path) -> None:
    """What a one-policy run across worlds writes: worlds_comparison.csv with its header and no row."""
    folder = copy_of(run_dir, tmp_path)
    header = (folder / "worlds_comparison.csv").read_text(encoding="utf-8").splitlines()[0]
    (folder / "worlds_comparison.csv").write_text(header + "\n", encoding="utf-8")
    html, errors = section_of(folder)
    assert errors == {} and "so there is no difference to show across worlds" in html
    assert "class=\"error\"" not in html and images(html) == []
    assert "Which policy holds up across the worlds?" in html


def test_resampled_worlds_say_how_many_are_distinct(run_dir: Path, tmp_path: Path) -> None:
    """A posterior's resample repeats heavy rows: the lead says how many of the draws differ."""
    folder = copy_of(run_dir, tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    manifest["worlds"] |= {"source": str(tmp_path / "cal" / "posterior.csv"), "distinct_worlds": 7}
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    html, _ = section_of(folder)
    assert f"Across {W} (7 distinct) plausible worlds" in html
    assert "resampled from posterior.csv (a calibration's posterior)" in html


def test_a_damaged_discovery_is_a_note(run_dir: Path, tmp_path: Path) -> None:
    folder = copy_of(run_dir, tmp_path)
    (folder / "discover").mkdir()
    (folder / "discover" / "discovery.json").write_text("{not json", encoding="utf-8")
    html, _ = section_of(folder)
    assert "The scenario discovery cannot be shown: discovery.json cannot be read" in html


def test_per_world_differences_are_the_paired_means() -> None:
    """Exact, on a hand-made table: 2 worlds x 2 replications."""
    rows = [{"replication": r, "world": r // 2, "policy": p, "response_rate": v}
            for r, (a, b) in enumerate([(0.10, 0.12), (0.20, 0.26), (0.30, 0.29), (0.40, 0.37)])
            for p, v in (("old", a), ("new", b))]
    diffs = per_world_differences(pd.DataFrame(rows), "old", 2, ["response_rate"])
    assert diffs["policy"].tolist() == ["new", "new"] and diffs["draw"].tolist() == [0, 1]
    np.testing.assert_allclose(diffs["diff"], [0.04, -0.02], atol=1e-12)


finite = st.floats(-1e7, 1e7, allow_nan=False)


@settings(max_examples=150, deadline=None)
@given(values=st.lists(finite, min_size=7, max_size=7), p=st.one_of(st.just(math.nan), st.floats(0, 1)),
       share=st.one_of(st.just(math.nan), st.floats(0, 1)), metric=st.sampled_from(["response_rate", "responses",
                                                                                    "net_credit_burn"]),
       policy=st.text(min_size=1, max_size=8))
def test_the_lead_says_a_flip_exactly_when_the_80_percent_range_straddles_zero(
        values: list[float], p: float, share: float, metric: str, policy: str) -> None:
    """Invariants of the words, whatever the numbers: the sign-flip phrase iff q10 < 0 < q90, the policy name
    escaped, a cell per column, and one verb that matches the sign of the mean."""
    from simulator.io.worlds_section import lead_sentence, worlds_table

    mean, low, high, q10, q90, q025, q975 = values
    q10, q90 = min(q10, q90), max(q10, q90)
    row = pd.Series({"policy": policy, "metric": metric, "diff_mean": mean, "mc_ci_low": low, "mc_ci_high": high,
                     "worlds_q10": q10, "worlds_q90": q90, "worlds_q025": min(q025, q10),
                     "worlds_q975": max(q975, q90), "p_better": p, "mc_share": share})
    text = lead_sentence(row, metric, policy, 40, True)
    k = 100.0 if metric == "response_rate" else 1.0
    assert ("depends on the assumptions" in text) == (q10 * k < 0 < q90 * k)
    assert f"<b>{policy}</b>" not in text or policy == policy.replace("<", "").replace("&", "").replace(">", "")
    verb = text.split("</b> ", 1)[1].split(" ", 1)[0]  # the word after the policy's name
    assert verb == ("raises" if mean > 0 else "lowers" if mean < 0 else "leaves")
    table = worlds_table(pd.DataFrame([row]).set_index("metric"), [metric])
    assert table.count("<td class=\"n\">") == 6
    assert_balanced(table)


def test_the_worlds_report_opens_in_chromium_without_console_errors(page: str, tmp_path: Path) -> None:
    from test_report import _console_errors, _png_colours, _screenshot  # skipped without chromium, as there

    html = tmp_path / "report.html"
    html.write_text(page, encoding="utf-8")
    shot = tmp_path / "report.png"
    assert _console_errors(_screenshot(html, shot, tmp_path / "profile")) == []
    assert _png_colours(shot) > 100
