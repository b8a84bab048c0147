"""The HTML report of a run folder: one self-contained ``report.html`` (figures embedded, no network).

It reads in the order an analyst asks: the scenario's description, the question and the answer
(the headline differences with their CIs), who wins and who loses among the recruiters, the
policies side by side rule by rule, whether the run looks like the source documents (face
validity), the figures, then the provenance (``manifest.json``).  Built
from the files of a finished run folder, so it can be (re)made at any time: ``inmail-sim report DIR``.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from simulator.io.group_outcome_section import SECTION_CSS, winners_losers_section
from simulator.io.tables import (
    METRIC_LABELS,
    METRIC_UNITS,
    MISSING,
    RATE_METRICS,
    RowFormat,
    pct,
    pval,
    scale_of,
)
from simulator.io.tables import escape_html as _escape

if TYPE_CHECKING:
    from simulator.experiments.experiment import Results

REPORT_FILE = "report.html"

REQUIRED_FILES: tuple[str, ...] = ("manifest.json", "scenario.resolved.yaml", "replications.csv",
                                   "breakdown_replications.csv")
"""What the report is built from (the other CSVs are recomputed from these).

Optional: ``timeseries.csv`` (the figures over time) and ``member_distribution.csv`` (the member
histograms; a folder written before it existed shows the mean per active member instead).
"""

HEADLINE_METRICS: tuple[str, ...] = (
    "response_rate", "acceptance_rate", "net_credit_burn", "credits_per_response", "credits_expired",
    "stockout_recruiter_days", "inmails_per_active_member", "unanswered_per_active_member", "mean_member_fatigue",
    "warnings", "improvement_periods",
)
"""The rows of the answer table (every metric is in the full table below it)."""

ANSWER_METRICS: tuple[str, ...] = ("response_rate", "net_credit_burn", "unanswered_per_active_member")
"""The metrics the answer spells out in words."""


class NotARunFolderError(ValueError):
    """The folder is not a finished run folder (bad input: exit code 2)."""


@dataclass
class Report:
    """What :func:`build_report` wrote."""

    path: Path
    figures: dict[str, Path] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- reading the run folder


def check_run_folder(folder: str | Path) -> Path:
    """``folder`` as a Path if it holds a finished run; else :class:`NotARunFolderError` saying what is wrong."""
    path = Path(folder)
    if not path.exists():
        raise NotARunFolderError(f"{folder}: no such folder")
    if not path.is_dir():
        raise NotARunFolderError(f"{folder}: not a folder (give the output folder of `inmail-sim run` or "
                                 "`inmail-sim optimize`)")
    missing = [f for f in REQUIRED_FILES if not (path / f).is_file()]
    if missing:
        if len(missing) == len(REQUIRED_FILES):
            why = "is it the output folder of `inmail-sim run`?"
        elif "manifest.json" in missing:
            why = "the run has not finished: manifest.json is written last"
        else:
            why = "files were removed from the run folder"
        raise NotARunFolderError(f"{folder}: not a finished run folder, missing {', '.join(missing)}: {why}")
    return path


def load_run(folder: str | Path) -> Results:
    """:func:`simulator.io.outputs.load_results` of a checked folder.

    A damaged file (empty, truncated, not CSV, a column missing or not numeric) is a
    :class:`NotARunFolderError` whose message names the file (:mod:`simulator.io.run_files`).
    """
    from simulator.io.outputs import load_results
    from simulator.io.run_files import DamagedRunFileError, check_loaded, check_run_files, find_damaged
    from simulator.scenario import ScenarioError

    path = check_run_folder(folder)
    try:
        check_run_files(path)
        try:
            results = load_results(path)
        except ScenarioError:
            raise
        except (KeyError, ValueError, OSError, json.JSONDecodeError, pd.errors.ParserError) as exc:
            raise find_damaged(path, exc) from None
        check_loaded(path, results)
    except DamagedRunFileError as exc:
        raise NotARunFolderError(str(exc)) from None
    return results


# --------------------------------------------------------------------------- building


def build_report(folder: str | Path, dpi: int = 110) -> Report:
    """Redraw the figures of a finished run folder and write ``report.html`` beside them (an ``inmail-sim
    optimize`` folder, known by its ``search.json``, gets its own report: :mod:`simulator.io.search_section`)."""
    from simulator.experiments.runner import atomic_write
    from simulator.io.plotting import render_figures, write_pngs
    from simulator.io.search_folder import is_search_folder

    if is_search_folder(folder):
        from simulator.io.search_section import build_search_report

        return build_search_report(folder)
    path = check_run_folder(folder)
    results = load_run(path)
    errors: dict[str, str] = {}
    pngs = render_figures(results, dpi, errors)
    figures = write_pngs(pngs, path)
    from simulator.io.face_validity_section import face_validity_section
    from simulator.io.worlds_section import worlds_section

    text = render_html(results, pngs, errors, worlds=worlds_section(path, results, dpi, errors),
                       face_validity=face_validity_section(results, dpi, errors))
    out = path / REPORT_FILE
    atomic_write(out, lambda p: p.write_text(text, encoding="utf-8"))
    return Report(out, figures, errors)


def render_html(results: Results, pngs: dict[str, bytes], errors: dict[str, str] | None = None,
                worlds: str = "", face_validity: str = "") -> str:
    """The whole report as one HTML string (figures as base64 PNG data URIs); ``worlds``: the "How sure is
    this?" section (:mod:`simulator.io.worlds_section`), after the answer; ``face_validity``: the "Does the
    model look like the documents?" section (:mod:`simulator.io.face_validity_section`), before the figures."""
    scenario = results.scenario
    manifest = results.extra.get("manifest", {})
    parts = [
        _head(f"{scenario.name}: InMail credit policies compared"),
        f"<header><h1>{_escape(scenario.name)}</h1>",
        f"<p class=\"description\">{_escape(scenario.description) or '<i>(the scenario has no description)</i>'}</p>",
        f"<p class=\"meta\">{_escape(_setting(results))}</p></header>",
        _question_and_answer(results),
        worlds,
        winners_losers_section(results),
        _policies_section(results),
        face_validity,
        _figures_section(pngs, errors or {}),
        _provenance_section(results, manifest),
        f"<footer>inmail-sim report, built {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}</footer>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


# --------------------------------------------------------------------------- sections


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1d1d1f;
 max-width:1180px;margin:0 auto;padding:24px 28px 48px;line-height:1.45;background:#fff}
h1{font-size:1.9em;margin:0 0 .2em}h2{margin-top:2em;border-bottom:2px solid #e3e3e8;padding-bottom:.2em}
h3{margin:1.6em 0 .4em}
.description{font-size:1.15em;margin:.3em 0}.meta{color:#555;margin:.2em 0 1em}
.question{font-size:1.1em;font-weight:600}
.answer li{margin:.25em 0}
table{border-collapse:collapse;margin:.6em 0 1em;font-size:.92em}
th,td{padding:4px 10px;border-bottom:1px solid #e6e6ea;text-align:left;vertical-align:top}
th{background:#f4f4f7;font-weight:600}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.sig td{font-weight:600}tr.differ td{background:#fff7e6}
.up,.down{color:#00488a}.flat{color:#666}
.rule{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.9em}
figure{margin:1em 0 2em}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#444;font-size:.95em;margin-top:.4em}
.error{color:#a00;background:#fff0f0;padding:8px;border:1px solid #f3c0c0}
details{margin:.6em 0}summary{cursor:pointer;color:#0057a3}
pre{background:#f6f6f8;padding:10px;overflow-x:auto;font-size:.85em}
footer{margin-top:3em;color:#777;font-size:.85em}
.note{color:#555;font-size:.92em}
"""


def _head(title: str) -> str:
    """The document head (title and the inline style sheet) and the opening ``<body>``."""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_escape(title)}</title><style>{CSS}{SECTION_CSS}</style></head><body>")


def _setting(results: Results) -> str:
    """One sentence on the run: horizon, market, replications, seed, policies."""
    scenario = results.scenario
    return (f"{scenario.run.horizon_days} days from {scenario.run.start_date.isoformat()}; "
            f"{scenario.market.members.count:,} members, {scenario.market.recruiter_count:,} recruiters; "
            f"{results.n_replications} replications per policy on common random numbers (root seed "
            f"{scenario.root_seed}); policies {', '.join(scenario.policy_names)}; baseline {scenario.baseline}.")


def _others(results: Results) -> list[str]:
    """The policies compared with the baseline."""
    return [p for p in results.scenario.policy_names if p != results.baseline]


def _question_and_answer(results: Results) -> str:
    """Per compared policy: the question, the answer in words, the headline table, every metric."""
    base = results.baseline
    others = _others(results)
    if not others:
        return ("<section><h2>The question and the answer</h2><p class=\"question\">How does "
                f"{_escape(base)} perform?</p>{_single_policy_table(results)}</section>")
    out = ["<section><h2>The question and the answer</h2>"]
    comparison = results.comparison
    for name in others:
        policy = results.scenario.policies.get(name)
        desc = f" ({_escape(policy.description)})" if policy is not None and policy.description else ""
        out.append(f"<p class=\"question\">What changes when <b>{_escape(name)}</b>{desc} replaces "
                   f"<b>{_escape(base)}</b>?</p>")
        rows = comparison[comparison["policy"] == name].set_index("metric")
        sentences = [_answer_sentence(m, rows.loc[m], base, name) for m in ANSWER_METRICS if m in rows.index]
        out.append("<ul class=\"answer\">" + "".join(f"<li>{sentence}</li>" for sentence in sentences) + "</ul>")
        out.append(_comparison_table(rows, [m for m in HEADLINE_METRICS if m in rows.index], base, name))
        out.append(_pairing_note(rows))
        out.append(f"<details><summary>every metric ({len(rows)})</summary>"
                   f"{_comparison_table(rows, list(rows.index), base, name)}</details>")
    if results.precision is not None:
        out.append(f"<p class=\"note\">{_escape(results.precision.message)}</p>")
    out.append("<p class=\"note\">Differences are paired replication by replication (the policies face the "
               "same members, recruiters and random streams); intervals are 95% Student-t intervals; "
               "<b>bold</b> rows are significant at 5%. Rates are in %, their differences in percentage points "
               "(pp); relative change = difference / baseline mean.</p></section>")
    return "\n".join(out)


def _values(metric: str, row: pd.Series) -> tuple[RowFormat, list[float]]:
    """A comparison row as displayed (baseline mean, policy mean, diff, CI low, CI high) and their format."""
    scale = scale_of(metric)
    values = [row[column] * scale for column in ("baseline_mean", "policy_mean", "diff", "ci_low", "ci_high")]
    return RowFormat(values, 0.5 * (values[4] - values[3])), values


def _unit(metric: str, diff: bool = False) -> str:
    """The unit of a metric in words (``points`` for the difference of a rate)."""
    if metric in RATE_METRICS:
        return "points" if diff else "%"
    unit = METRIC_UNITS.get(metric, "")
    return {"cr/resp": "credits per response", "/member": "per active member", "rec-days": "recruiter-days",
            "count": "", "index": ""}.get(unit, unit)


def _answer_sentence(metric: str, row: pd.Series, base: str, policy: str) -> str:
    """One metric of the answer in words: both levels, the change with its CI, and whether it is significant."""
    number, (base_mean, policy_mean, diff, low, high) = _values(metric, row)
    name = METRIC_LABELS.get(metric, metric)
    unit = "%" if metric in RATE_METRICS else (f" {_unit(metric)}" if _unit(metric) else "")
    level = f"{number(base_mean)}{unit} under {_escape(base)}, {number(policy_mean)}{unit} under {_escape(policy)}"
    if metric in RATE_METRICS:
        change = f"{number(diff, True)} points (95% CI {number(low, True)} to {number(high, True)})"
    elif math.isfinite(row["rel_change"]):
        change = (f"{pct(row['rel_change'])} (95% CI {pct(row['rel_ci_low'])} to {pct(row['rel_ci_high'])}), "
                  f"that is {number(diff, True)}{unit}")
    else:
        change = f"{number(diff, True)}{unit} (95% CI {number(low, True)} to {number(high, True)})"
    if bool(row["significant"]):
        direction = "higher" if diff > 0 else "lower"
        verdict = (f"<span class=\"{'up' if diff > 0 else 'down'}\">{direction} under {_escape(policy)}, "
                   "significant at 5%</span>")
    else:
        verdict = "<span class=\"flat\">no difference shown at 5%</span>"
    return f"<b>{_escape(name[0].upper() + name[1:])}</b>: {level} &mdash; {change}: {verdict}."


def _comparison_table(rows: pd.DataFrame, metrics: Sequence[str], base: str, policy: str) -> str:
    """The comparison rows of ``metrics`` as an HTML table (significant rows bold, with an arrow)."""
    head = ("<table><tr><th>metric</th><th>unit</th>"
            f"<th>{_escape(base)}</th><th>{_escape(policy)}</th><th>difference [95% CI]</th>"
            "<th>relative change [95% CI]</th><th>p</th></tr>")
    lines = []
    for metric in metrics:
        row = rows.loc[metric]
        number, (base_mean, policy_mean, diff, low, high) = _values(metric, row)
        unit = "%" if metric in RATE_METRICS else METRIC_UNITS.get(metric, "")
        rel = (f"{pct(row['rel_change'])} [{pct(row['rel_ci_low'])}, {pct(row['rel_ci_high'])}]"
               if math.isfinite(row["rel_change"]) else f"{MISSING} (baseline 0)")
        sig = bool(row["significant"])
        css_class = " class=\"sig\"" if sig else ""
        arrow = ("&#9650; " if diff > 0 else "&#9660; ") if sig else ""
        lines.append(f"<tr{css_class}><td title=\"{_escape(metric)}\">{_escape(METRIC_LABELS.get(metric, metric))}</td>"
                     f"<td>{_escape(unit)}</td>"
                     f"<td class=\"n\">{number(base_mean)}</td><td class=\"n\">{number(policy_mean)}</td>"
                     f"<td class=\"n\">{arrow}{number(diff, True)} {number.interval(low, high)}</td>"
                     f"<td class=\"n\">{rel}</td><td class=\"n\">{pval(row['p_value'])}</td></tr>")
    return head + "".join(lines) + "</table>"


def _pairing_note(rows: pd.DataFrame) -> str:
    """How much pairing narrowed the CIs of the response rate and the net credit burn (empty if unknown)."""
    gains = []
    for metric in ("response_rate", "net_credit_burn"):
        if metric in rows.index and math.isfinite(rows.loc[metric, "ci_shrink"]):
            gains.append(f"{METRIC_LABELS[metric]} by {rows.loc[metric, 'ci_shrink'] * 100:.0f}%")
    if not gains:
        return ""
    return ("<p class=\"note\">Pairing the replications (common random numbers) narrowed the 95% CI of "
            + " and ".join(_escape(gain) for gain in gains) + " compared with unpaired replications.</p>")


def _single_policy_table(results: Results) -> str:
    """Mean and CI of every metric of a scenario with one policy, as an HTML table."""
    rows = []
    for row in results.summary.itertuples():
        scale = scale_of(row.metric)
        number = RowFormat([row.mean * scale, row.ci_low * scale, row.ci_high * scale],
                           0.5 * (row.ci_high - row.ci_low) * scale)
        rows.append(f"<tr><td>{_escape(METRIC_LABELS.get(row.metric, row.metric))}</td>"
                    f"<td>{_escape(METRIC_UNITS.get(row.metric, ''))}</td>"
                    f"<td class=\"n\">{number(row.mean * scale)}</td>"
                    f"<td class=\"n\">[{number(row.ci_low * scale)}, {number(row.ci_high * scale)}]</td></tr>")
    return ("<table><tr><th>metric</th><th>unit</th><th>mean</th><th>95% CI</th></tr>"
            + "".join(rows) + "</table>")


def _policies_section(results: Results) -> str:
    """The policies side by side, rule by rule: the rules that differ, then (folded) those they share."""
    from simulator.io.policy_rules import rule_text, rules_side_by_side, source_for

    scenario = results.scenario
    names = scenario.policy_names
    policies = [scenario.policies[name] for name in names]
    keys, rules, differ = rules_side_by_side(policies)
    header = "<tr><th>rule</th>" + "".join(f"<th>{_escape(name)}</th>" for name in names) + "</tr>"

    def table_row(rule: str, css_class: str) -> str:
        cells = "".join(f"<td title=\"{_escape(source_for(policy, rule))}\">{_escape(rule_text(of_policy, rule))}</td>"
                        for policy, of_policy in zip(policies, rules, strict=True))
        return f"<tr class=\"{css_class}\"><td class=\"rule\">{_escape(rule)}</td>{cells}</tr>"

    same = [rule for rule in keys if rule not in differ]
    descriptions = "".join(f"<li><b>{_escape(name)}</b>: {_escape(policy.description)}</li>"
                           for name, policy in zip(names, policies, strict=True))
    out = ["<section><h2>The policies, rule by rule</h2>", f"<ul>{descriptions}</ul>"]
    if differ:
        out.append(f"<p>{len(differ)} rule{'s' if len(differ) != 1 else ''} differ (hover a value for its "
                   "source):</p>")
        out.append("<table>" + header + "".join(table_row(rule, "differ") for rule in differ) + "</table>")
    else:
        out.append("<p>The policies agree on every rule.</p>")
    if same:
        out.append(f"<details><summary>the {len(same)} rules they share</summary><table>{header}"
                   + "".join(table_row(rule, "same") for rule in same) + "</table></details>")
    out.append("</section>")
    return "\n".join(out)


def _figures_section(pngs: dict[str, bytes], errors: dict[str, str]) -> str:
    """Every report figure under its heading, embedded as a PNG data URI (or why it could not be drawn)."""
    from simulator.io.plotting import FIGURES

    out = ["<section><h2>Figures</h2>"]
    for spec in FIGURES:
        out.append(f"<h3 id=\"{_escape(spec.name)}\">{_escape(spec.title)}</h3>")
        if spec.name in pngs:
            data = base64.b64encode(pngs[spec.name]).decode("ascii")
            out.append(f"<figure><img src=\"data:image/png;base64,{data}\" alt=\"{_escape(spec.title)}\">"
                       f"<figcaption>{_escape(spec.caption)}</figcaption></figure>")
        else:
            out.append(f"<p class=\"error\">This figure could not be drawn: "
                       f"{_escape(errors.get(spec.name, 'unknown error'))}</p>")
    out.append("</section>")
    return "\n".join(out)


PROVENANCE_KEYS: tuple[tuple[str, str], ...] = (
    ("scenario", "scenario"), ("scenario_file", "scenario file"), ("overrides", "overrides"),
    ("root_seed", "root seed"), ("replications", "replications per policy"), ("seeding", "seeding"),
    ("version", "inmail-sim version"), ("git_revision", "git revision"), ("git_dirty", "uncommitted changes"),
    ("command", "command"), ("started", "started"), ("finished", "finished"),
    ("duration_seconds", "duration (s)"), ("workers", "worker processes"), ("python_version", "Python"),
    ("numpy_version", "numpy"), ("pandas_version", "pandas"), ("platform", "platform"),
)


def _provenance_section(results: Results, manifest: dict[str, Any]) -> str:
    """How to re-run, the main manifest entries, the whole manifest and the resolved scenario (folded)."""
    out = ["<section><h2>Provenance</h2>",
           "<p>Re-run with <code>inmail-sim run scenario.resolved.yaml</code> in the run folder (same root seed: "
           "the same numbers).</p>"]
    if manifest:
        rows = "".join(f"<tr><th>{_escape(label)}</th><td>{_escape(_show(manifest[key]))}</td></tr>"
                       for key, label in PROVENANCE_KEYS if key in manifest)
        out.append(f"<table>{rows}</table>")
        out.append("<details><summary>manifest.json</summary>"
                   f"<pre>{_escape(json.dumps(manifest, indent=2, default=str))}</pre></details>")
    else:
        out.append("<p>No manifest: these results were not loaded from a run folder.</p>")
    out.append(f"<details><summary>scenario.resolved.yaml</summary><pre>{_escape(results.scenario.resolved_yaml())}"
               "</pre></details></section>")
    return "\n".join(out)


def _show(value: Any) -> str:
    """A manifest value as text: a list comma-separated (``none`` when empty), ``unknown`` for None."""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    if value is None:
        return "unknown"
    return str(value)
