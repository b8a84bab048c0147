"""The HTML report (self-contained, in the right order, opens in a browser), the CLI around it, the terminal table."""

from __future__ import annotations

import base64
import dataclasses
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from scenario_helpers import tiny, write_yaml

from simulator.api import Results, run_scenario
from simulator.cli import main
from simulator.io.report import REPORT_FILE, NotARunFolderError, build_report, load_run


@pytest.fixture(scope="module")
def res() -> Results:
    return run_scenario(tiny(), {"horizon_days": 30}, replications=3)


@pytest.fixture(scope="module")
def report_html(res: Results, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = res.write(tmp_path_factory.mktemp("run") / "run")
    report = build_report(folder, dpi=60)
    assert report.errors == {}
    return report.path


class Links(HTMLParser):
    """Every src/href attribute and every tag of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.refs += [(tag, k, v or "") for k, v in attrs if k in ("src", "href", "srcset", "data", "action")]


def test_report_is_self_contained(report_html: Path) -> None:
    text = report_html.read_text(encoding="utf-8")
    parser = Links()
    parser.feed(text)
    assert "link" not in parser.tags and "script" not in parser.tags and "iframe" not in parser.tags
    imgs = [v for tag, k, v in parser.refs if tag == "img"]
    assert len(imgs) == 8  # the six figures and the two of "Does the model look like the documents?"
    for tag, key, value in parser.refs:
        assert not value.lower().startswith(("http:", "https:", "//", "file:")), (tag, key, value[:80])
        assert value.startswith("data:image/png;base64,"), (tag, key, value[:80])
    for src in imgs:
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "url(" not in text and "@import" not in text


def test_report_reads_question_answer_policies_figures_provenance(report_html: Path, res: Results) -> None:
    text = report_html.read_text(encoding="utf-8")
    order = [res.scenario.description, "The question and the answer", "What changes when <b>new</b>",
             "Response rate</b>:", "The policies, rule by rule", "Figures", "Provenance", "manifest.json"]
    positions = [text.find(s) for s in order]
    assert all(p >= 0 for p in positions), dict(zip(order, positions, strict=True))
    assert positions == sorted(positions)
    # the policies side by side: refund rule differs, cell by cell
    assert '<td class="rule">refund.kind</td>' in text and ">on_silence</td>" in text and ">on_response</td>" in text
    assert "95% CI" in text and str(res.scenario.root_seed) in text
    assert (report_html.parent / "figures" / "rates.png").is_file()


def test_report_shows_who_wins_and_who_loses(report_html: Path, res: Results) -> None:
    from simulator.experiments.group_outcomes import WORSE_OFF_RULE, group_verdicts

    text = report_html.read_text(encoding="utf-8")
    at = text.find("<h2>Who wins, who loses</h2>")
    assert text.find("The question and the answer") < at < text.find("The policies, rule by rule")
    section = text[at:text.find("</section>", at)]
    for head in ("responses (per replication)", "response rate (%)", "days short of credits per recruiter",
                 "net credits per response", "ratio", "verdict", "seat type", "personalization band", "behaviour",
                 "recruiter group"):
        assert head in section, head
    verdicts = group_verdicts(res.group_outcomes)
    losers = verdicts[verdicts["worse_off"]]
    assert len(losers) > 0  # the tiny market's Recruiter Lite seats run out of credits under the new rules
    assert section.count('<tr class="loser">') == len(losers)
    assert section.count("WORSE OFF: ") == len(losers)
    for row in losers.itertuples():
        assert f" {row.label}</b>: " in section  # named in the list above the tables
    assert WORSE_OFF_RULE[1:] in section
    lite = res.group_outcomes.set_index(["by", "label", "metric"]).loc[("seat_type", "recruiter_lite",
                                                                        "stockout_days_per_recruiter")]
    from simulator.io.tables import ratio_text

    assert f'<td class="n">{ratio_text(lite["ratio"])}</td>' in section


def test_member_distribution_csv_is_picked_up(res: Results, tmp_path: Path) -> None:
    folder = res.write(tmp_path / "run")
    rows = pd.DataFrame({"policy": ["old", "new"], "replication": [0, 0], "quantity": ["received"] * 2,
                         "bin": [0, 0], "members": [5, 6]})
    rows.to_csv(folder / "member_distribution.csv", index=False)
    assert load_run(folder).member_distribution["members"].tolist() == [5, 6]


def _embedded_png(text: str, figure: str) -> bytes:
    """The PNG the report shows under the heading of ``figure``."""
    marker = 'src="data:image/png;base64,'
    head = text.index(f'<h3 id="{figure}">')
    nxt = text.find("<h3", head + 1)
    src = text.find(marker, head, nxt if nxt >= 0 else len(text))
    assert src >= 0, f"no image under the heading {figure!r}"
    start = src + len(marker)
    return base64.b64decode(text[start:text.index('"', start)])


def test_report_shows_the_member_histogram_of_the_run(report_html: Path, res: Results) -> None:
    from simulator.experiments.experiment import empty_member_frame
    from simulator.io import plotting

    folder = report_html.parent
    loaded = load_run(folder)
    pd.testing.assert_frame_equal(loaded.member_distribution, res.member_distribution)
    for ax in plotting.members(loaded).axes[:2]:
        bars = [p for p in ax.patches if (p.get_gid() or "").startswith("hist:")]
        assert {b.get_gid() for b in bars} == {"hist:old", "hist:new"}
    shown = _embedded_png(report_html.read_text(encoding="utf-8"), "members")
    assert shown == plotting.render_png(plotting.members(loaded), dpi=60)
    fallback = dataclasses.replace(loaded, member_distribution=empty_member_frame())
    assert shown != plotting.render_png(plotting.members(fallback), dpi=60)


def test_report_of_an_old_folder_falls_back_to_the_mean(res: Results, tmp_path: Path) -> None:
    folder = res.write(tmp_path / "run")
    (folder / "member_distribution.csv").unlink()
    report = build_report(folder, dpi=40)
    assert report.errors == {} and _embedded_png(report.path.read_text(encoding="utf-8"), "members")[:4] == b"\x89PNG"
    from simulator.io import plotting
    ax = plotting.members(load_run(folder)).axes[0]
    assert "not recorded" in ax.get_xlabel() and not [p for p in ax.patches if (p.get_gid() or "").startswith("hist:")]


def test_bad_folders_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(NotARunFolderError, match="no such folder"):
        build_report(tmp_path / "missing")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "replications.csv").write_text("policy\n")
    with pytest.raises(NotARunFolderError, match=r"missing manifest\.json"):
        build_report(tmp_path / "half")
    assert main(["report", str(tmp_path / "half")]) == 2
    err = capsys.readouterr().err
    assert "not a finished run folder" in err and "Traceback" not in err
    assert main(["report", str(tmp_path / "nope")]) == 2


def test_cli_run_writes_figures_and_report_rebuilds(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    scenario = write_yaml(tmp_path / "tiny.yaml", tiny(horizon_days=20))
    out = tmp_path / "run"
    assert main(["run", str(scenario), "--out", str(out), "-n", "2", "--no-progress", "-q"]) == 0
    assert sorted(p.name for p in (out / "figures").iterdir()) == sorted(
        ["credits.png", "differences.png", "members.png", "rates.png", "threshold.png", "winners_losers.png"])
    assert main(["report", str(out)]) == 0
    assert (out / REPORT_FILE).is_file() and str(out / REPORT_FILE) in capsys.readouterr().out

    import simulator.io.plotting as plotting

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("no plots today")

    monkeypatch.setattr(plotting, "write_figures", boom)
    again = tmp_path / "again"
    assert main(["run", str(scenario), "--out", str(again), "-n", "2", "--no-progress", "-q"]) == 0
    assert (again / "manifest.json").is_file() and (again / "summary.csv").is_file()
    assert "no plots today" in capsys.readouterr().err
    bare = tmp_path / "bare"
    assert main(["run", str(scenario), "--out", str(bare), "-n", "2", "--no-progress", "-q", "--no-figures"]) == 0
    assert not (bare / "figures").exists()


# --------------------------------------------------------------------------- in a real browser


def _chromium() -> str:
    """The browser's path; without one, the test fails in CI (which installs it) and is skipped elsewhere."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    why = "chromium is not installed (apt-get install -y chromium)"
    if os.environ.get("CI"):
        pytest.fail(f"{why}: CI installs it, so the report must be checked in a browser here")
    pytest.skip(why)


def _screenshot(page: Path, shot: Path, profile: Path, size: str = "1200,2000") -> str:
    proc = subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", f"--screenshot={shot}",
         f"--window-size={size}", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    return proc.stderr


def _console_errors(log: str) -> list[str]:
    return [line for line in log.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def _png_colours(path: Path) -> int:
    """Distinct colours of a screenshot (1 for a blank page)."""
    from PIL import Image  # pillow comes with matplotlib

    with Image.open(path) as img:
        return len(img.convert("RGB").getcolors(maxcolors=1 << 24) or [])


def test_report_opens_in_chromium_without_console_errors(report_html: Path, tmp_path: Path) -> None:
    # the detector works: a page with a console error is caught
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><p>x</p><script>console.error('boom'); nope();</script>", encoding="utf-8")
    assert _console_errors(_screenshot(bad, tmp_path / "bad.png", tmp_path / "p1", "300,200"))

    shot = tmp_path / "report.png"
    log = _screenshot(report_html, shot, tmp_path / "p2")
    assert _console_errors(log) == []
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body></body></html>", encoding="utf-8")
    _screenshot(blank, tmp_path / "blank.png", tmp_path / "p3", "300,200")
    assert _png_colours(tmp_path / "blank.png") == 1  # the measure says "blank" for a blank page
    assert _png_colours(shot) > 100  # text, tables and figures: many colours


# --------------------------------------------------------------------------- the terminal table


def test_terminal_table_fits_100_columns_with_units_signs_and_marks(res: Results) -> None:
    text = res.table()
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 100
    header = next(line for line in lines if line.startswith("metric"))
    for col in ("unit", "old", "new", "diff", "95% CI of diff", "change", "p"):
        assert col in header
    rate = next(line for line in lines if line.startswith("response_rate "))
    assert " % " in rate and "[" in rate and ("+" in rate or "-" in rate)
    comp = res.comparison.set_index("metric")
    for metric in ("sent", "credits_refunded", "net_credit_burn"):
        row = next(line for line in lines if line.startswith(metric + " "))
        assert row.rstrip().endswith("*") == bool(comp.loc[metric, "significant"]), row
        assert f"{comp.loc[metric, 'rel_change'] * 100:+.0f}"[:2] in row  # signed relative change
    assert "who wins, who loses" in text and "responses per group" in text and "stock-out d/recr." in text
    assert any(line.startswith("LOSES = worse off") for line in lines)


def test_terminal_table_with_three_policies_fits(tmp_path: Path) -> None:
    data = tiny(horizon_days=15)
    data["policies"]["threshold_off"] = {"preset": "old_2014", "threshold": False}
    res = run_scenario(data, replications=2)
    lines = res.table().splitlines()
    assert max(len(line) for line in lines) <= 100
    assert sum(line.startswith("who wins") for line in lines) == 2
