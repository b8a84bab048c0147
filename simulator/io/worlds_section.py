"""The report's "How sure is this?" section: the answer across plausible worlds, not only its Monte Carlo noise.

With a run across worlds (``inmail-sim run --worlds``; files of :mod:`simulator.io.world_files`) it shows,
per compared policy, a lead in plain words, the headline differences with their 95% Monte Carlo interval
*next to* their 80% and 95% ranges across worlds, P(better) and the Monte Carlo share of the variance
(``worlds_comparison.csv``); a figure of the per-world differences; robustness (regret, and the share of
worlds meeting the ``decision:`` requirements, ``robustness.csv``); and the scenario discovery of
``inmail-sim discover`` when ``discover/discovery.json`` is there.  Without worlds it says that the
intervals cover Monte Carlo noise only and how to get the plausible-world answer.  A file that cannot
be read is a note in its place (and in ``errors``), never a failed report.
"""

from __future__ import annotations

import math
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from simulator.core.metrics import CURRENT_METRICS
from simulator.io.robustness_section import WorldsFileError, discovery_part, embedded_png, read_table, robustness_part
from simulator.io.tables import METRIC_LABELS, METRIC_UNITS, MISSING, RATE_METRICS, RowFormat, scale_of
from simulator.io.tables import escape_html as _escape

if TYPE_CHECKING:
    from simulator.experiments.experiment import Results

SECTION_TITLE = "How sure is this?"
FIGURE_NAME = "worlds"
"""The key of the per-world figure in the report's ``errors``."""

WORLDS_TABLE_METRICS: tuple[str, ...] = (
    "response_rate", "responses", "acceptance_rate", "net_credit_burn", "credits_per_response",
    "stockout_recruiter_days", "unanswered_per_active_member", "warnings", "improvement_periods",
)
"""The rows of the section's table (every metric is in the folded table under it)."""

LEAD_METRICS: tuple[str, ...] = ("response_rate", "responses", "net_credit_burn")
"""The metrics the lead spells out in words (total responses: its sign can flip between worlds)."""

COMPARISON_COLUMNS: tuple[str, ...] = (
    "policy", "metric", "diff_mean", "mc_ci_low", "mc_ci_high", "worlds_q10", "worlds_q90", "worlds_q025",
    "worlds_q975", "p_better", "mc_share",
)
OUTCOME_KEYS: tuple[str, ...] = ("replication", "world", "policy")


def has_worlds(folder: Path, manifest: dict[str, Any]) -> bool:
    """Whether the run folder holds a run across worlds (its manifest says so, or its files are there)."""
    return "worlds" in manifest or (folder / "worlds_comparison.csv").is_file()


def worlds_section(folder: str | Path, results: Results, dpi: int = 110,
                   errors: dict[str, str] | None = None) -> str:
    """The whole section for the run folder ``folder`` (its results already loaded as ``results``)."""
    path = Path(folder)
    manifest = results.extra.get("manifest", {}) or {}
    if not has_worlds(path, manifest):
        return no_worlds_section(results, manifest)
    errors = {} if errors is None else errors
    found = manifest.get("worlds")
    entry: dict[str, Any] = found if isinstance(found, dict) else {}
    out = [f"<section id=\"how-sure\"><h2>{SECTION_TITLE}</h2>",
           "<p>This run asked the question in many plausible worlds. The answer above pools all their "
           "replications; here each world is kept apart, so the Monte Carlo noise and the spread that the "
           "uncertain assumptions cause are shown side by side.</p>"]
    try:
        comparison = read_table(path / "worlds_comparison.csv", COMPARISON_COLUMNS, ("policy", "metric"), empty=True)
    except WorldsFileError as exc:
        errors[FIGURE_NAME] = str(exc)
        out.append(f"<p class=\"error\">The answer across plausible worlds cannot be shown: {_escape(exc)}. "
                   "Re-run with <code>inmail-sim run ... --worlds</code> to rewrite it.</p>")
        comparison = None
    if comparison is not None and comparison.empty:
        out.append(f"<p>The scenario has one policy ({_escape(results.baseline)}), so there is no difference to "
                   "show across worlds; robustness below says in how many worlds it meets the requirements.</p>")
    elif comparison is not None:
        out += [_lead(comparison, results, entry, policy) for policy in _policies(comparison, results)]
        out.append(_figure(path, comparison, results, entry, dpi, errors))
    out.append(_assumptions(results, entry))
    out.append(robustness_part(path, results))
    out.append(discovery_part(path, entry.get("replications_per_world")))
    out.append("</section>")
    return "\n".join(part for part in out if part)


# --------------------------------------------------------------------------- without worlds


def no_worlds_section(results: Results, manifest: dict[str, Any]) -> str:
    """Two sentences: the CIs are Monte Carlo noise only; the command that gives the plausible-world answer."""
    scenario = results.scenario
    source = manifest.get("scenario_file") or scenario.source or "SCENARIO.yaml"
    quoted = shlex.quote(str(source))
    count = len(scenario.uncertain)
    if count:
        what = (f"the {count} uncertain assumption{'s' if count != 1 else ''} of its <code>uncertain:</code> "
                "block")
    else:
        what = ("the market assumptions an <code>uncertain:</code> block names (the scenario has none yet: see "
                "docs/scenarios.md, \"Uncertain assumptions\")")
    return (f"<section id=\"how-sure\"><h2>{SECTION_TITLE}</h2>"
            "<p>The 95% confidence intervals above cover <b>Monte Carlo noise only</b>: they narrow with more "
            "replications, but every replication ran in the same market, so they say nothing about how the "
            f"answer moves with what is not known about that market.</p><p>To see it, run the policies across "
            f"plausible values of {what}: <code>inmail-sim run {_escape(quoted)} --worlds prior --out DIR</code> "
            "(worlds drawn from the priors), or after <code>inmail-sim calibrate</code>, with the worlds the "
            f"published figures leave plausible: <code>inmail-sim run {_escape(quoted)} --worlds "
            "CAL_DIR/posterior.csv --out DIR</code>; then <code>inmail-sim report DIR</code>.</p></section>")


# --------------------------------------------------------------------------- the answer across worlds


def _policies(comparison: pd.DataFrame, results: Results) -> list[str]:
    present = list(dict.fromkeys(comparison["policy"].astype(str)))
    order = [p for p in results.scenario.policy_names if p in present]
    return order + [p for p in present if p not in order]


def _source_words(entry: dict[str, Any]) -> str:
    source = str(entry.get("source", ""))
    if source == "prior":
        return "drawn from the priors of the scenario's uncertain assumptions"
    if source:
        return f"resampled from {_escape(Path(source).name)} (a calibration's posterior)"
    return "of the scenario's uncertain assumptions"


def _row_values(row: pd.Series, metric: str) -> tuple[RowFormat, dict[str, float]]:
    k = scale_of(metric)
    values = {c: float(row[c]) * k for c in COMPARISON_COLUMNS[2:9]}
    return RowFormat(list(values.values()), 0.5 * (values["mc_ci_high"] - values["mc_ci_low"])), values


def _unit_words(metric: str) -> str:
    if metric in RATE_METRICS:
        return " points"
    unit = METRIC_UNITS.get(metric, "")
    return {"InMails": " responses" if metric == "responses" else " InMails", "credits": " credits",
            "cr/resp": " credits per response", "/member": " per active member",
            "rec-days": " recruiter-days"}.get(unit, "")


def _share(value: float) -> str:
    return MISSING if not math.isfinite(value) else f"{value * 100:.0f}%"


def lead_sentence(row: pd.Series, metric: str, policy: str, count: int | str | None, first: bool) -> str:
    """One metric across worlds in words: the mean change, the 80% range, whether its sign flips."""
    number, v = _row_values(row, metric)
    unit = _unit_words(metric)
    if not math.isfinite(v["diff_mean"]):
        return f"{_escape(METRIC_LABELS.get(metric, metric))}: no difference could be computed ({MISSING})."
    name = "total responses" if metric == "responses" else f"the {METRIC_LABELS.get(metric, metric)}"
    verb = "raises" if v["diff_mean"] > 0 else "lowers" if v["diff_mean"] < 0 else "leaves"
    size = number(abs(v["diff_mean"])) if verb != "leaves" else ""
    mean = f"{verb} {name} by {size}{unit} on average" if size else f"leaves {name} unchanged on average"
    where = f"Across {count} plausible worlds" if first and count else "Across the worlds" if first else "It"
    text = (f"{where}, <b>{_escape(policy)}</b> {mean}" if first else f"It {mean}")
    text += f" (95% Monte Carlo CI {number.interval(v['mc_ci_low'], v['mc_ci_high'])})"
    if v["worlds_q025"] == v["worlds_q975"]:
        return text + ("; the worlds do not differ measurably on it: its spread across them is lost in the Monte "
                       "Carlo noise.")
    text += (f"; in 80% of worlds the change is {number(v['worlds_q10'], True)} to {number(v['worlds_q90'], True)}"
             f"{unit}, in 95% {number(v['worlds_q025'], True)} to {number(v['worlds_q975'], True)}.")
    p = float(row["p_better"])
    if v["worlds_q10"] < 0 < v["worlds_q90"]:
        better = f" (better in {_share(p)} of worlds)" if math.isfinite(p) else ""
        text += f" <b>Whether it goes up or down depends on the assumptions</b>{better}."
    elif v["worlds_q025"] < 0 < v["worlds_q975"]:
        text += " Its sign flips only in the outermost worlds."
    return text


def _lead(comparison: pd.DataFrame, results: Results, entry: dict[str, Any], policy: str) -> str:
    """The question, the lead in words and the table of one compared policy."""
    rows = comparison[comparison["policy"].astype(str) == policy].drop_duplicates("metric").set_index("metric")
    count: int | str | None = entry.get("count") if isinstance(entry.get("count"), int) else None
    distinct = entry.get("distinct_worlds")
    if count is not None and isinstance(distinct, int) and distinct < int(count):
        count = f"{count} ({distinct} distinct)"
    per_world = entry.get("replications_per_world")
    out = [f"<h3>{_escape(policy)} against {_escape(results.baseline)} across plausible worlds</h3>"]
    sentences = [lead_sentence(rows.loc[m], m, policy, count, i == 0)
                 for i, m in enumerate(m for m in LEAD_METRICS if m in rows.index)]
    if sentences:
        out.append("<ul class=\"answer\">" + "".join(f"<li>{s}</li>" for s in sentences) + "</ul>")
    if "response_rate" in rows.index:
        out.append(f"<p>{_noise_sentence(float(rows.loc['response_rate', 'mc_share']), per_world)}</p>")
    table_metrics = [m for m in WORLDS_TABLE_METRICS if m in rows.index]
    out.append(worlds_table(rows, table_metrics))
    every = [m for m in CURRENT_METRICS if m in rows.index]
    out.append(f"<details><summary>every metric ({len(every)})</summary>{worlds_table(rows, every)}</details>")
    out.append(f"<p class=\"note\">The worlds are {_source_words(entry)}"
               + (f", {per_world} replications each on common random numbers" if per_world else "")
               + ". <b>95% MC CI</b>: the Monte Carlo interval of the mean over worlds (it narrows with more "
               "worlds and replications). <b>80% / 95% of worlds</b>: where the difference lies across the "
               "plausible worlds, Monte Carlo noise removed: the assumption uncertainty, which more runs do not "
               "remove. <b>P(better)</b>: share of worlds where the policy is better (n/a: the metric has no "
               "better direction). <b>MC share</b>: the share of one replication's variance of the difference "
               "that is Monte Carlo noise. Rates in %, their differences in points.</p>")
    return "\n".join(out)


def _noise_sentence(share: float, per_world: Any) -> str:
    if not math.isfinite(share):
        return "The response rate's difference does not vary between replications."
    head = f"Monte Carlo noise is {_share(share)} of the variance of one replication's response-rate difference"
    if share < 0.5:
        return (f"{head}; the rest is the spread between worlds: the assumptions, not the number of replications, "
                "limit what we know.")
    more = f" (now {per_world})" if per_world else ""
    return (f"{head}: more replications per world{more} would separate the worlds better before the ranges are "
            "read closely.")


def worlds_table(rows: pd.DataFrame, metrics: list[str]) -> str:
    """The HTML table of ``metrics`` (rows of ``worlds_comparison.csv`` indexed by metric)."""
    head = ("<table class=\"worlds\"><tr><th>metric</th><th>unit</th><th>mean difference</th><th>95% MC CI</th>"
            "<th>80% of worlds</th><th>95% of worlds</th><th>P(better)</th><th>MC share</th></tr>")
    lines = []
    for metric in metrics:
        row = rows.loc[metric]
        number, v = _row_values(row, metric)
        p = float(row["p_better"])
        unit = "points" if metric in RATE_METRICS else METRIC_UNITS.get(metric, "")
        lines.append(f"<tr><td title=\"{_escape(metric)}\">{_escape(METRIC_LABELS.get(metric, metric))}</td>"
                     f"<td>{_escape(unit)}</td><td class=\"n\">{number(v['diff_mean'], True)}</td>"
                     f"<td class=\"n\">{number.interval(v['mc_ci_low'], v['mc_ci_high'])}</td>"
                     f"<td class=\"n\">{number.interval(v['worlds_q10'], v['worlds_q90'])}</td>"
                     f"<td class=\"n\">{number.interval(v['worlds_q025'], v['worlds_q975'])}</td>"
                     f"<td class=\"n\">{MISSING if not math.isfinite(p) else f'{p:.2f}'}</td>"
                     f"<td class=\"n\">{_share(float(row['mc_share']))}</td></tr>")
    return head + "".join(lines) + "</table>"


# --------------------------------------------------------------------------- the figure


FIGURE_CAPTION = ("Each world's mean difference (policy minus baseline, paired within the world), as a histogram. "
                  "Above it: thick bar = 80% of worlds, thin bar = 95% of worlds, black dot and whiskers = the mean "
                  "with its 95% Monte Carlo interval; dashed line = no change. A world's mean still carries the "
                  "Monte Carlo noise of its few replications, which the bars remove, so a few worlds may lie "
                  "beyond them.")


def _figure(folder: Path, comparison: pd.DataFrame, results: Results, entry: dict[str, Any], dpi: int,
            errors: dict[str, str]) -> str:
    """The per-world differences figure, embedded; or why it could not be drawn."""
    from simulator.io.plotting.canvas import PALETTE, render_png
    from simulator.io.plotting.world_figures import per_world_differences, world_differences

    title = "The difference in each plausible world"
    try:
        per_world = entry.get("replications_per_world")
        if not isinstance(per_world, int) or per_world < 1:
            raise WorldsFileError("manifest.json has no worlds.replications_per_world")
        outcomes = read_table(folder / "world_outcomes.csv", OUTCOME_KEYS, ("policy",))
        outcomes["policy"] = outcomes["policy"].astype(str)
        colors = {p: PALETTE[i % len(PALETTE)] for i, p in enumerate(results.scenario.policy_names)}
        differences = per_world_differences(outcomes, results.baseline, per_world)
        png = render_png(world_differences(differences, comparison, baseline=results.baseline, colors=colors), dpi)
    except Exception as exc:  # a figure that fails must not cost the report
        errors[FIGURE_NAME] = f"{type(exc).__name__}: {exc}"
        return f"<h3>{title}</h3><p class=\"error\">This figure could not be drawn: {_escape(errors[FIGURE_NAME])}</p>"
    return f"<h3>{title}</h3>" + embedded_png(png, title, FIGURE_CAPTION)


# --------------------------------------------------------------------------- assumptions, robustness, discovery


def _assumptions(results: Results, entry: dict[str, Any]) -> str:
    """The uncertain assumptions the worlds vary (folded): name, prior, why."""
    parameters = results.scenario.uncertain
    if not parameters:
        names = entry.get("parameters") or []
        return (f"<p class=\"note\">The worlds vary {_escape(', '.join(map(str, names)))}.</p>" if names else "")
    rows = "".join(f"<tr><td class=\"rule\">{_escape(p.name)}</td><td>{_escape(_prior_text(p.prior))}</td>"
                   f"<td>{_escape(p.reason)}</td></tr>" for p in parameters)
    return (f"<details><summary>the {len(parameters)} uncertain assumptions the worlds vary</summary>"
            f"<table><tr><th>assumption</th><th>prior</th><th>why uncertain</th></tr>{rows}</table></details>")


def _prior_text(prior: Any) -> str:
    words = {"uniform": "uniform on [{a:g}, {b:g}]", "loguniform": "loguniform on [{a:g}, {b:g}]",
             "beta": "beta, mean {a:g}, concentration {b:g}", "lognormal": "lognormal, median {a:g}, log-sd {b:g}"}
    text = words.get(prior.kind, "{a:g}, {b:g}").format(a=prior.a, b=prior.b)
    cut = [f"{'>=' if side == 'lower' else '<='} {value:g}" for side, value in (("lower", prior.lower),
                                                                                  ("upper", prior.upper))
           if math.isfinite(value)]
    return text + (f", cut at {' and '.join(cut)}" if cut else "")
