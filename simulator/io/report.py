"""The HTML report of a run folder: one self-contained ``report.html`` (figures embedded, no network).

It reads in the order an analyst asks: the scenario's description, the question and the answer
(the headline differences with their CIs), the policies side by side rule by rule, the figures,
then the provenance (``manifest.json``).  Built from the files of a finished run folder, so it
can be (re)made at any time: ``inmail-sim report DIR``.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from simulator.io.tables import METRIC_LABELS, METRIC_UNITS, RATE_METRICS, RowFormat, pct, pval, scale_of

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
        raise NotARunFolderError(f"{folder}: not a folder (give the output folder of `inmail-sim run`)")
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
    """:func:`simulator.io.outputs.load_results` of a checked folder; unreadable files: :class:`NotARunFolderError`."""
    from simulator.io.outputs import load_results
    from simulator.scenario import ScenarioError

    path = check_run_folder(folder)
    try:
        results = load_results(path)
    except ScenarioError:
        raise
    except (KeyError, ValueError, OSError, json.JSONDecodeError, pd.errors.ParserError) as exc:
        raise NotARunFolderError(f"{folder}: could not read the run files ({type(exc).__name__}: {exc})") from None
    return results


# --------------------------------------------------------------------------- building


def build_report(folder: str | Path, dpi: int = 110) -> Report:
    """Redraw the figures of a finished run folder and write ``report.html`` beside them."""
    from simulator.io.outputs import atomic_write
    from simulator.io.plotting import render_figures, write_pngs

    path = check_run_folder(folder)
    results = load_run(path)
    errors: dict[str, str] = {}
    pngs = render_figures(results, dpi, errors)
    figures = write_pngs(pngs, path)
    text = render_html(results, pngs, errors)
    out = path / REPORT_FILE
    atomic_write(out, lambda p: p.write_text(text, encoding="utf-8"))
    return Report(out, figures, errors)


def render_html(results: Results, pngs: dict[str, bytes], errors: dict[str, str] | None = None) -> str:
    """The whole report as one HTML string (figures as base64 PNG data URIs)."""
    sc = results.scenario
    man = results.extra.get("manifest", {})
    parts = [
        _head(f"{sc.name}: InMail credit policies compared"),
        f"<header><h1>{_e(sc.name)}</h1>",
        f"<p class=\"description\">{_e(sc.description) or '<i>(the scenario has no description)</i>'}</p>",
        f"<p class=\"meta\">{_e(_setting(results))}</p></header>",
        _question_and_answer(results),
        _policies_section(results),
        _figures_section(pngs, errors or {}),
        _provenance_section(results, man),
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
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body>")


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _setting(results: Results) -> str:
    sc = results.scenario
    return (f"{sc.run.horizon_days} days from {sc.run.start_date.isoformat()}; "
            f"{sc.market.members.count:,} members, {sc.market.recruiter_count:,} recruiters; "
            f"{results.n_replications} replications per policy on common random numbers (root seed "
            f"{sc.root_seed}); policies {', '.join(sc.policy_names)}; baseline {sc.baseline}.")


def _others(results: Results) -> list[str]:
    return [p for p in results.scenario.policy_names if p != results.baseline]


def _question_and_answer(results: Results) -> str:
    base = results.baseline
    others = _others(results)
    if not others:
        return ("<section><h2>The question and the answer</h2><p class=\"question\">How does "
                f"{_e(base)} perform?</p>{_single_policy_table(results)}</section>")
    out = ["<section><h2>The question and the answer</h2>"]
    comp = results.comparison
    for pol in others:
        p = results.scenario.policies.get(pol)
        desc = f" ({_e(p.description)})" if p is not None and p.description else ""
        out.append(f"<p class=\"question\">What changes when <b>{_e(pol)}</b>{desc} replaces "
                   f"<b>{_e(base)}</b>?</p>")
        c = comp[comp["policy"] == pol].set_index("metric")
        items = [_answer_sentence(m, c.loc[m], base, pol) for m in ANSWER_METRICS if m in c.index]
        out.append("<ul class=\"answer\">" + "".join(f"<li>{s}</li>" for s in items) + "</ul>")
        out.append(_comparison_table(c, [m for m in HEADLINE_METRICS if m in c.index], base, pol))
        out.append(_pairing_note(c))
        out.append(f"<details><summary>every metric ({len(c)})</summary>"
                   f"{_comparison_table(c, list(c.index), base, pol)}</details>")
    if results.precision is not None:
        out.append(f"<p class=\"note\">{_e(results.precision.message)}</p>")
    out.append("<p class=\"note\">Differences are paired replication by replication (the policies face the "
               "same members, recruiters and random streams); intervals are 95% Student-t intervals; "
               "<b>bold</b> rows are significant at 5%. Rates are in %, their differences in percentage points "
               "(pp); relative change = difference / baseline mean.</p></section>")
    return "\n".join(out)


def _values(metric: str, r: pd.Series) -> tuple[RowFormat, float, list[float]]:
    k = scale_of(metric)
    vals = [r["baseline_mean"] * k, r["policy_mean"] * k, r["diff"] * k, r["ci_low"] * k, r["ci_high"] * k]
    return RowFormat(vals, 0.5 * (vals[4] - vals[3])), k, vals


def _unit(metric: str, diff: bool = False) -> str:
    if metric in RATE_METRICS:
        return "points" if diff else "%"
    unit = METRIC_UNITS.get(metric, "")
    return {"cr/resp": "credits per response", "/member": "per active member", "rec-days": "recruiter-days",
            "count": "", "index": ""}.get(unit, unit)


def _answer_sentence(metric: str, r: pd.Series, base: str, pol: str) -> str:
    f, _, (b, p, d, lo, hi) = _values(metric, r)
    name = METRIC_LABELS.get(metric, metric)
    unit = "%" if metric in RATE_METRICS else (f" {_unit(metric)}" if _unit(metric) else "")
    level = f"{f(b)}{unit} under {_e(base)}, {f(p)}{unit} under {_e(pol)}"
    if metric in RATE_METRICS:
        change = f"{f(d, True)} points (95% CI {f(lo, True)} to {f(hi, True)})"
    elif math.isfinite(r["rel_change"]):
        change = (f"{pct(r['rel_change'])} (95% CI {pct(r['rel_ci_low'])} to {pct(r['rel_ci_high'])}), "
                  f"that is {f(d, True)}{unit}")
    else:
        change = f"{f(d, True)}{unit} (95% CI {f(lo, True)} to {f(hi, True)})"
    if bool(r["significant"]):
        verdict = f"<span class=\"{'up' if d > 0 else 'down'}\">{'higher' if d > 0 else 'lower'} under {_e(pol)}, " \
                  "significant at 5%</span>"
    else:
        verdict = "<span class=\"flat\">no difference shown at 5%</span>"
    return f"<b>{_e(name[0].upper() + name[1:])}</b>: {level} &mdash; {change}: {verdict}."


def _comparison_table(c: pd.DataFrame, metrics: Sequence[str], base: str, pol: str) -> str:
    head = ("<table><tr><th>metric</th><th>unit</th>"
            f"<th>{_e(base)}</th><th>{_e(pol)}</th><th>difference [95% CI]</th>"
            "<th>relative change [95% CI]</th><th>p</th></tr>")
    rows = []
    for m in metrics:
        r = c.loc[m]
        f, _, (b, p, d, lo, hi) = _values(m, r)
        unit = "%" if m in RATE_METRICS else METRIC_UNITS.get(m, "")
        rel = (f"{pct(r['rel_change'])} [{pct(r['rel_ci_low'])}, {pct(r['rel_ci_high'])}]"
               if math.isfinite(r["rel_change"]) else "n/a (baseline 0)")
        sig = bool(r["significant"])
        cls = " class=\"sig\"" if sig else ""
        arrow = ("&#9650; " if d > 0 else "&#9660; ") if sig else ""
        rows.append(f"<tr{cls}><td title=\"{_e(m)}\">{_e(METRIC_LABELS.get(m, m))}</td><td>{_e(unit)}</td>"
                    f"<td class=\"n\">{f(b)}</td><td class=\"n\">{f(p)}</td>"
                    f"<td class=\"n\">{arrow}{f(d, True)} {f.interval(lo, hi)}</td>"
                    f"<td class=\"n\">{rel}</td><td class=\"n\">{pval(r['p_value'])}</td></tr>")
    return head + "".join(rows) + "</table>"


def _pairing_note(c: pd.DataFrame) -> str:
    bits = []
    for m in ("response_rate", "net_credit_burn"):
        if m in c.index and math.isfinite(c.loc[m, "ci_shrink"]):
            bits.append(f"{METRIC_LABELS[m]} by {c.loc[m, 'ci_shrink'] * 100:.0f}%")
    if not bits:
        return ""
    return ("<p class=\"note\">Pairing the replications (common random numbers) narrowed the 95% CI of "
            + " and ".join(_e(b) for b in bits) + " compared with unpaired replications.</p>")


def _single_policy_table(results: Results) -> str:
    summ = results.summary
    rows = []
    for r in summ.itertuples():
        k = scale_of(r.metric)
        f = RowFormat([r.mean * k, r.ci_low * k, r.ci_high * k], 0.5 * (r.ci_high - r.ci_low) * k)
        rows.append(f"<tr><td>{_e(METRIC_LABELS.get(r.metric, r.metric))}</td>"
                    f"<td>{_e(METRIC_UNITS.get(r.metric, ''))}</td><td class=\"n\">{f(r.mean * k)}</td>"
                    f"<td class=\"n\">[{f(r.ci_low * k)}, {f(r.ci_high * k)}]</td></tr>")
    return ("<table><tr><th>metric</th><th>unit</th><th>mean</th><th>95% CI</th></tr>"
            + "".join(rows) + "</table>")


def _policies_section(results: Results) -> str:
    from simulator.io.policy_rules import rules_side_by_side, source_for

    sc = results.scenario
    names = sc.policy_names
    pols = [sc.policies[n] for n in names]
    keys, rules, differ = rules_side_by_side(pols)
    header = "<tr><th>rule</th>" + "".join(f"<th>{_e(n)}</th>" for n in names) + "</tr>"

    def row(k: str, cls: str) -> str:
        cells = "".join(f"<td title=\"{_e(source_for(p, k))}\">{_e(r.get(k, '-'))}</td>"
                        for p, r in zip(pols, rules, strict=True))
        return f"<tr class=\"{cls}\"><td class=\"rule\">{_e(k)}</td>{cells}</tr>"

    same = [k for k in keys if k not in differ]
    descs = "".join(f"<li><b>{_e(n)}</b>: {_e(p.description)}</li>" for n, p in zip(names, pols, strict=True))
    out = ["<section><h2>The policies, rule by rule</h2>", f"<ul>{descs}</ul>"]
    if differ:
        out.append(f"<p>{len(differ)} rule{'s' if len(differ) != 1 else ''} differ (hover a value for its "
                   "source):</p>")
        out.append("<table>" + header + "".join(row(k, "differ") for k in differ) + "</table>")
    else:
        out.append("<p>The policies agree on every rule.</p>")
    if same:
        out.append(f"<details><summary>the {len(same)} rules they share</summary><table>{header}"
                   + "".join(row(k, "same") for k in same) + "</table></details>")
    out.append("</section>")
    return "\n".join(out)


def _figures_section(pngs: dict[str, bytes], errors: dict[str, str]) -> str:
    from simulator.io.plotting import FIGURES

    out = ["<section><h2>Figures</h2>"]
    for spec in FIGURES:
        out.append(f"<h3 id=\"{_e(spec.name)}\">{_e(spec.title)}</h3>")
        if spec.name in pngs:
            data = base64.b64encode(pngs[spec.name]).decode("ascii")
            out.append(f"<figure><img src=\"data:image/png;base64,{data}\" alt=\"{_e(spec.title)}\">"
                       f"<figcaption>{_e(spec.caption)}</figcaption></figure>")
        else:
            out.append(f"<p class=\"error\">This figure could not be drawn: "
                       f"{_e(errors.get(spec.name, 'unknown error'))}</p>")
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


def _provenance_section(results: Results, man: dict[str, Any]) -> str:
    out = ["<section><h2>Provenance</h2>",
           "<p>Re-run with <code>inmail-sim run scenario.resolved.yaml</code> in the run folder (same root seed: "
           "the same numbers).</p>"]
    if man:
        rows = "".join(f"<tr><th>{_e(label)}</th><td>{_e(_show(man[key]))}</td></tr>"
                       for key, label in PROVENANCE_KEYS if key in man)
        out.append(f"<table>{rows}</table>")
        out.append(f"<details><summary>manifest.json</summary><pre>{_e(json.dumps(man, indent=2, default=str))}"
                   "</pre></details>")
    else:
        out.append("<p>No manifest: these results were not loaded from a run folder.</p>")
    out.append(f"<details><summary>scenario.resolved.yaml</summary><pre>{_e(results.scenario.resolved_yaml())}"
               "</pre></details></section>")
    return "\n".join(out)


def _show(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    if value is None:
        return "unknown"
    return str(value)
