"""The HTML report of an ``inmail-sim optimize`` folder: what was searched and what it found.

It reads in the order an analyst asks: what was searched (levers, objectives, constraints, how the
noise was handled), the Pareto set with 95% CIs beside the presets old_2014 and new_2015, the best
policy under each constraint set and how it differs from new_2015 rule by rule
(:mod:`simulator.io.policy_rules`, as ``inmail-sim policies diff``), the figures ``pareto.png`` and
``convergence.png`` embedded, every trial (folded), the references and where the time went.  Built
from the folder's files (:mod:`simulator.io.search_folder`): ``inmail-sim report OPTIMIZE_DIR``.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from simulator.io.report import CSS, REPORT_FILE, NotARunFolderError, Report
from simulator.io.search_folder import (
    POLICIES_FILE,
    REFERENCE_POLICY,
    Objective,
    SearchFolder,
    SearchFolderError,
    as_float,
    best_under_constraints,
    converged_at,
    no_worse,
    objective_columns,
    range_ends,
    read_search_folder,
    reference_row,
    row_means,
)
from simulator.io.search_folder import shown_value as _value
from simulator.io.tables import METRIC_LABELS, METRIC_UNITS, MISSING, RATE_METRICS, RowFormat, num, scale_of
from simulator.io.tables import escape_html as _escape

FIGURE_CAPTIONS: dict[str, tuple[str, str]] = {
    "pareto": ("The Pareto front", "Each objective of the re-evaluated Pareto policies with its 95% CI (whiskers); "
               "the presets old_2014 and new_2015 are marked for comparison."),
    "convergence": ("Convergence", "Hypervolume of the feasible front found so far, by trial (objectives normalised "
                    "as search.json states): a curve that has flattened means more trials would add little."),
}
SEARCH_CSS = "tr.ref td{font-style:italic;background:#f7f9fc}td.met{color:#0a6b2b}td.unmet{color:#a00}"


def build_search_report(folder: str | Path) -> Report:
    """Write ``report.html`` into an optimize folder; a bad folder is :class:`NotARunFolderError` (exit 2)."""
    from simulator.experiments.runner import atomic_write

    try:
        found = read_search_folder(folder)
    except SearchFolderError as exc:
        raise NotARunFolderError(str(exc)) from None
    text = render_search_html(found)
    out = found.path / REPORT_FILE
    atomic_write(out, lambda p: p.write_text(text, encoding="utf-8"))
    figures = {name: found.path / f"{name}.png" for name in found.figures}
    return Report(out, figures, dict(found.notes))


def render_search_html(found: SearchFolder) -> str:
    """The whole report of an optimize folder as one HTML string (figures as base64 data URIs)."""
    name = str(found.meta.get("scenario", found.path.name))
    parts = [
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{_escape(name)}: policy design search</title><style>{CSS}{SEARCH_CSS}</style></head><body>",
        f"<header><h1>{_escape(Path(name).stem)}: policy design search</h1>",
        f"<p class=\"meta\">{_escape(setting_sentence(found))}</p></header>",
        searched_section(found),
        pareto_section(found),
        best_section(found),
        figures_section(found),
        trials_section(found),
        provenance_section(found),
        f"<footer>inmail-sim report, built {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}</footer>",
        "</body></html>",
    ]
    return "\n".join(part for part in parts if part) + "\n"


# --------------------------------------------------------------------------- what was searched


def setting_sentence(found: SearchFolder) -> str:
    """One sentence: base, trials, sampler, seed, worlds."""
    meta = found.meta
    worlds = meta.get("worlds")
    where = "the scenario's market"
    if isinstance(worlds, dict):
        score = worlds.get("score", "?")
        if isinstance(score, dict):
            score = "; ".join(f"{score[k]} ({k}d)" if k in ("maximize", "minimize") else str(score[k])
                              for k in ("maximize", "minimize", "constraints") if k in score)
        where = (f"{worlds.get('count', '?')} plausible worlds from {worlds.get('source', '?')}, each trial scored "
                 f"by {score}")
    sampler = meta.get("sampler", "?")
    if isinstance(sampler, dict):
        size = f", generations of {sampler['population']}" if "population" in sampler else ""
        sampler = f"{sampler.get('library', '')} {sampler.get('name', '?')}{size}".strip()
    told = meta.get("trials_told")
    trials = f"{told} of {meta.get('trials', '?')}" if told is not None and told != meta.get("trials") \
        else f"{meta.get('trials', '?')}"
    return (f"Policies around {meta.get('base', '?')}; {trials} trials ({sampler}, seed {meta.get('seed', '?')}) "
            f"on common random numbers, in {where}.")


def lever_range(lever: dict[str, Any]) -> str:
    """A lever's range in words: ``7 to 120 (integer)`` or ``one of on_silence, on_response``."""
    if lever.get("kind") == "choice" or lever.get("choices"):
        return "one of " + ", ".join(_value(c) for c in lever.get("choices") or [])
    kind = "integer" if lever.get("kind") == "int" else "real"
    return f"{_value(lever.get('low'))} to {_value(lever.get('high'))} ({kind})"


def searched_section(found: SearchFolder) -> str:
    """Levers, objectives, constraints and the precision rule."""
    meta = found.meta
    levers = "".join(f"<tr><td class=\"rule\">{_escape(lever['path'])}</td><td>{_escape(lever_range(lever))}</td>"
                     f"<td>{_escape(_preset_value(REFERENCE_POLICY, str(lever['path'])))}</td></tr>"
                     for lever in found.levers)
    objectives = "".join(f"<li>{_escape(o.direction)} <b>{_escape(_label(o.metric))}</b> "
                         f"(<code>{_escape(o.metric)}</code>)</li>" for o in found.objectives)
    constraints = [c for c in meta.get("constraints", []) if isinstance(c, dict)]
    listed = "".join(f"<li><code>{_escape(c.get('text', ''))}</code></li>" for c in constraints)
    out = ["<section><h2>What was searched</h2>",
           "<table><tr><th>lever</th><th>range</th><th>new_2015</th></tr>" + levers + "</table>",
           f"<p>Objectives:</p><ul>{objectives}</ul>"]
    out.append(f"<p>Constraints (met only when the 95% CI bound meets them):</p><ul>{listed}</ul>" if listed
               else "<p>No constraints.</p>")
    precision = meta.get("precision")
    if isinstance(precision, dict) and "rule" in precision:
        precision = precision["rule"]
    if precision:
        out.append(f"<p class=\"note\">Precision rule: {_escape(_show(precision))}.</p>")
    if meta.get("finished") is False:
        out.append("<p class=\"error\">The search was stopped before its last trial: the Pareto set is not final. "
                   "Run the same <code>inmail-sim optimize</code> command again to finish it.</p>")
    out.append("<p class=\"note\">Every trial ran on the same bank of seeds (common random numbers), so two "
               "policies differ by their rules, not by luck; the Pareto policies were re-evaluated with more "
               "replications and dominated ones dropped again.</p></section>")
    return "\n".join(out)


# --------------------------------------------------------------------------- the front


def pareto_section(found: SearchFolder) -> str:
    """The Pareto set and the references in one table; which Pareto policies are no worse than new_2015."""
    objectives = found.objectives
    count = len(found.pareto)
    out = [f"<section id=\"pareto\"><h2>The Pareto set ({count} polic{'y' if count == 1 else 'ies'})</h2>"]
    if not count:
        out.append("<p>No feasible policy was found: no trial met every constraint at its CI bound. Loosen a "
                   "constraint or widen a lever's range and search again.</p></section>")
        return "\n".join(out)
    out.append(_comparison_sentence(found))
    out.append(front_table(found))
    out.append(range_end_sentence(found))
    robust = isinstance(found.meta.get("worlds"), dict)
    cell = ("the scored quantile of the per-world means with its 95% interval (order statistics)" if robust
            else "the mean with its 95% CI")
    met = ("the share of worlds where the constraint holds, against the share required" if robust else
           "the constrained value as the search states it, against its bound; <b>met</b> only when its 95% CI "
           "bound meets the bound")
    out.append(f"<p class=\"note\">Each cell is {cell}; rates in %. Reference rows (italic) are the presets "
               "evaluated exactly like a trial (same seeds). <b>vs new_2015</b>: no worse on every objective by "
               f"these values ({', '.join(_escape(_label(o.metric)) for o in objectives)}). Constraint cells: "
               f"{met}.</p></section>")
    return "\n".join(out)


def range_end_sentence(found: SearchFolder) -> str:
    """The numeric levers some Pareto policy sets to an end of its range (the best may lie beyond it)."""
    ends = [f"<code>{_escape(path)}</code> = {_escape(_value(end))}, its {word} end, in {_escape(', '.join(names))}"
            for path, end, word, names in range_ends(found)]
    if not ends:
        return ""
    return ("<p><b>At the end of a range:</b> " + "; ".join(ends) + ". The best may lie beyond it: widen the range "
            "if such a rule is allowed, and search again.</p>")


def _comparison_sentence(found: SearchFolder) -> str:
    reference = reference_row(found)
    if reference is None:
        return "<p>references.csv has no new_2015 row, so the front is not compared with it.</p>"
    objectives = found.objectives
    target = row_means(reference, objectives)
    better = [str(r["name"]) for _, r in found.pareto.iterrows() if no_worse(row_means(r, objectives), target,
                                                                             objectives)]
    if better:
        text = (f"<p><b>{len(better)} of the {len(found.pareto)} Pareto policies are no worse than new_2015 on "
                f"every objective</b>: {_escape(', '.join(better))}.")
    else:
        text = ("<p>No Pareto policy is no worse than new_2015 on every objective: each trades one objective for "
                "another against it.")
    return text + _gain_sentence(found.meta.get("closest_to_new_2015")) + "</p>"


def _gain_sentence(closest: Any) -> str:
    """search.json's ``closest_to_new_2015``: the nearest Pareto policy and the largest gain, with its CI."""
    if not isinstance(closest, dict) or not isinstance(closest.get("nearest"), dict):
        return ""
    near = closest["nearest"]
    out = (f" Nearest to new_2015: {_escape(near.get('name'))} (normalised distance "
           f"{as_float(near.get('distance')):.3f}).")
    gain = closest.get("gain") or {}
    if gain.get("name") and gain.get("ci_low") is not None:
        metric = str(gain.get("objective", " ")).split(" ", 1)[-1]
        k, unit = scale_of(metric), " pp" if metric in RATE_METRICS else ""
        low, mid, high = (num(as_float(gain[key]) * k) for key in ("ci_low", "difference", "ci_high"))
        out += (f" <b>Largest gain in {_escape(METRIC_LABELS.get(metric, metric))} at {_escape(gain.get('at'))}"
                f"</b>: {_escape(gain['name'])}, {mid}{unit} [{low}, {high}] ({_escape(gain.get('ci'))}).")
    return out


def front_table(found: SearchFolder) -> str:
    """References, then the Pareto rows: levers, objectives with CIs, constraints, replications."""
    objectives = found.objectives
    levers = [str(lever["path"]) for lever in found.levers]
    indices = found.constraint_indices
    robust = isinstance(found.meta.get("worlds"), dict)
    constraints = [(i, "" if robust else found.constraint_metric(position)) for position, i in enumerate(indices)]
    head = ("<table><tr><th>policy</th>" + "".join(f"<th class=\"rule\">{_escape(p)}</th>" for p in levers)
            + "".join(f"<th>{_escape(o.direction)} {_escape(_label(o.metric))}</th>" for o in objectives)
            + "".join(f"<th><code>{_escape(found.constraint_text(i))}</code></th>" for i in range(len(indices)))
            + "<th>vs new_2015</th><th>replications</th></tr>")
    reference = reference_row(found)
    target = row_means(reference, objectives) if reference is not None else None
    rows = []
    if found.references is not None:
        for _, row in found.references.iterrows():
            values = {p: _preset_value(str(row["name"]), p) for p in levers}
            rows.append(_front_row(row, values, objectives, constraints, target, "ref"))
    for _, row in found.pareto.iterrows():
        values = {p: _value(row.get(p, MISSING)) for p in levers}
        rows.append(_front_row(row, values, objectives, constraints, target, ""))
    return head + "".join(rows) + "</table>"


def _front_row(row: pd.Series, levers: dict[str, str], objectives: list[Objective],
               constraints: list[tuple[int, str]], target: list[float] | None, css: str) -> str:
    name = str(row["name"])
    cells = [f"<td>{_escape(name)}</td>"] + [f"<td>{_escape(v)}</td>" for v in levers.values()]
    cells += [f"<td class=\"n\">{estimate(row, o.metric)}</td>" for o in objectives]
    cells += [_constraint_cell(row, i, metric) for i, metric in constraints]
    if target is None or css:
        verdict = "reference" if name == REFERENCE_POLICY else ""
    else:
        verdict = "no worse" if no_worse(row_means(row, objectives), target, objectives) else "trades off"
    reps = row.get("reevaluated_replications", row.get("replications", math.nan))
    cells += [f"<td>{verdict}</td>", f"<td class=\"n\">{_escape(_value(reps))}</td>"]
    return f"<tr class=\"{css}\">" + "".join(cells) + "</tr>"


def estimate(row: pd.Series, metric: str) -> str:
    """``mean [low, high]`` of a metric in one row (rates in %)."""
    mean_c, low_c, high_c = objective_columns(metric)
    k = scale_of(metric)
    mean, low, high = (as_float(row.get(c)) * k for c in (mean_c, low_c, high_c))
    number = RowFormat([mean, low, high], 0.5 * (high - low))
    unit = "%" if metric in RATE_METRICS else ""
    return f"{number(mean)}{unit} [{number(low)}, {number(high)}]"


def _constraint_cell(row: pd.Series, index: int, metric: str) -> str:
    """``met: value vs bound`` (rates in %) of constraint ``index`` in one row; ``metric`` empty: robust mode,
    where the value is the share of worlds meeting the constraint and the bound the share required."""
    value = as_float(row.get(f"constraint_{index}_value"))
    bound = as_float(row.get(f"constraint_{index}_bound"))
    met = str(row.get(f"constraint_{index}_met", "")).strip().lower() in ("true", "1", "1.0")
    if not math.isfinite(value):
        return f"<td>{MISSING}</td>"
    word = "met" if met else "not met"
    if not metric:
        text = f"{word}: in {value * 100:.0f}% of worlds (needs {bound * 100:.0f}%)"
    else:
        k, unit = scale_of(metric), "%" if metric in RATE_METRICS else ""
        text = f"{word}: {num(value * k)}{unit} vs {num(bound * k)}{unit}"
    return f"<td class=\"n {'met' if met else 'unmet'}\">{text}</td>"


# --------------------------------------------------------------------------- the recommendations


def best_section(found: SearchFolder) -> str:
    """Per constraint set (and objective): the best policy, its objectives beside new_2015, its rules that differ
    from new_2015."""
    entries = best_under_constraints(found)
    if not entries:
        return ""
    out = ["<section id=\"best\"><h2>The best policy under the constraints</h2>",
           "<p>Every Pareto policy meets every constraint; here, for each objective, the one best at it.</p>"]
    reference = reference_row(found)
    grouped: dict[tuple[str, str], list[str]] = {}
    for text, objective, name in entries:
        grouped.setdefault((text, name), []).append(_objective_words(objective) if objective else "")
    for (text, name), objectives in grouped.items():
        words = " and ".join(o for o in objectives if o)
        best_at = f", best at {_escape(words)}" if words else ""
        out.append(f"<h3>Under <code>{_escape(text)}</code>{best_at}: {_escape(name)}</h3>")
        row = _named_row(found, name)
        if row is not None and found.objectives:
            items = "".join(f"<li>{_escape(METRIC_LABELS.get(o.metric, o.metric))}: {estimate(row, o.metric)}"
                            + (f" (new_2015: {estimate(reference, o.metric)})" if reference is not None else "")
                            + "</li>" for o in found.objectives)
            out.append(f"<ul>{items}</ul>")
        out.append(rule_difference(found, name))
    out.append("</section>")
    return "\n".join(out)


def _objective_words(objective: str) -> str:
    """``maximize response_rate`` -> ``maximize response rate``."""
    direction, _, metric = objective.partition(" ")
    return f"{direction} {METRIC_LABELS.get(metric, metric)}" if metric else objective


def _named_row(found: SearchFolder, name: str) -> pd.Series | None:
    for frame in (found.pareto, found.references):
        if frame is not None and (rows := frame[frame["name"] == name]).shape[0]:
            return rows.iloc[0]
    return None


def rule_difference(found: SearchFolder, name: str) -> str:
    """The rules on which policy ``name`` of ``pareto_policies.yaml`` differs from new_2015 (as ``policies diff``)."""
    from simulator.io.policy_rules import rule_text, rules_side_by_side
    from simulator.scenario import ScenarioError, load_scenario

    if name == REFERENCE_POLICY:
        return "<p>This is new_2015 itself: under this constraint set the current rules are the pick.</p>"
    block = found.policies.get(name)
    if block is None:
        return f"<p class=\"error\">{_escape(POLICIES_FILE)} has no policy {_escape(name)}.</p>"
    try:
        scenario = load_scenario({"policies": {REFERENCE_POLICY: {"preset": REFERENCE_POLICY}, name: block}})
    except ScenarioError as exc:
        return f"<p class=\"error\">The policy {_escape(name)} cannot be built: {_escape(exc)}</p>"
    policies = [scenario.policies[REFERENCE_POLICY], scenario.policies[name]]
    _, (ref, mine), differ = rules_side_by_side(policies)
    if not differ:
        return "<p>It has the same rules as new_2015.</p>"
    rows = "".join(f"<tr class=\"differ\"><td class=\"rule\">{_escape(rule)}</td><td>{_escape(rule_text(ref, rule))}"
                   f"</td><td>{_escape(rule_text(mine, rule))}</td></tr>" for rule in differ)
    block_yaml = json.dumps({name: block})
    return (f"<p>{len(differ)} rule{'s' if len(differ) != 1 else ''} differ from new_2015:</p>"
            f"<table><tr><th>rule</th><th>new_2015</th><th>{_escape(name)}</th></tr>{rows}</table>"
            f"<p class=\"note\">Run it: paste <code>{_escape(block_yaml)}</code> under a scenario's "
            f"<code>policies:</code> (or all of {_escape(POLICIES_FILE)}), then <code>inmail-sim run</code>.</p>")


# --------------------------------------------------------------------------- figures, trials, provenance


def figures_section(found: SearchFolder) -> str:
    """``pareto.png`` and ``convergence.png`` embedded, or a note in the place of a missing one."""
    out = ["<section><h2>Figures</h2>"]
    for name, (title, caption) in FIGURE_CAPTIONS.items():
        out.append(f"<h3 id=\"{name}\">{_escape(title)}</h3>")
        if name in found.figures:
            data = base64.b64encode(found.figures[name]).decode("ascii")
            out.append(f"<figure><img src=\"data:image/png;base64,{data}\" alt=\"{_escape(title)}\">"
                       f"<figcaption>{_escape(caption)}</figcaption></figure>")
        else:
            out.append(f"<p class=\"error\">This figure cannot be shown: {_escape(found.notes.get(name, 'missing'))}"
                       ".</p>")
    if found.hypervolume is not None and len(found.hypervolume):
        at = converged_at(found.hypervolume)
        last = int(found.hypervolume["trial"].max())
        if at is not None:
            out.append(f"<p>The hypervolume reached 99% of its final value at trial {at} of {last + 1}"
                       + (": the front had settled well before the end." if at < 0.8 * last else
                          ": it was still growing near the end, more trials may improve the front.") + "</p>")
    out.append("</section>")
    return "\n".join(out)


def trials_section(found: SearchFolder) -> str:
    """How many trials were complete, infeasible or failed, and (folded) every trial."""
    trials = found.trials
    if trials is None:
        return f"<section><h2>Trials</h2><p class=\"error\">{_escape(found.notes.get('trials.csv', ''))}</p></section>"
    counts = trials["state"].astype(str).value_counts()
    words = ", ".join(f"{n} {state}" for state, n in counts.items())
    columns = ["trial", "state", *[str(lever["path"]) for lever in found.levers]]
    columns += [objective_columns(o.metric)[0] for o in found.objectives]
    columns += [c for c in ("feasible", "replications", "worlds", "seconds") if c in trials.columns]
    shown = trials[[c for c in columns if c in trials.columns]]
    head = "<tr>" + "".join(f"<th>{_escape(c)}</th>" for c in shown.columns) + "</tr>"
    rows = "".join("<tr>" + "".join(f"<td>{_escape(_value(v))}</td>" for v in values) + "</tr>"
                   for values in shown.itertuples(index=False))
    reps = pd.to_numeric(trials.get("replications"), errors="coerce") if "replications" in trials else None
    spent = f"; {int(reps.sum()):,} replications in all" if reps is not None and reps.notna().any() else ""
    return (f"<section><h2>Trials</h2><p>{len(trials)} trials: {_escape(words)}{spent}.</p>"
            f"<details><summary>every trial ({len(trials)})</summary><table>{head}{rows}</table></details></section>")


def time_sentence(found: SearchFolder) -> str:
    """Where the wall time went: simulation against search overhead (``search.json`` ``seconds``)."""
    seconds = found.meta.get("seconds")
    if not isinstance(seconds, dict):
        return ""
    total = as_float(seconds.get("total"))
    simulation = as_float(seconds.get("simulation"))
    overhead = as_float(seconds.get("search_overhead"))
    if not math.isfinite(total) or total <= 0:
        return ""
    share = f" ({simulation / total * 100:.0f}%)" if math.isfinite(simulation) else ""
    return (f"<p>The search took {total:.1f} s: {simulation:.1f} s simulating{share} and {overhead:.1f} s of search "
            "overhead (sampler, bookkeeping, study storage).</p>")


def provenance_section(found: SearchFolder) -> str:
    """The references, the time split, notes on missing files and ``search.json`` (folded)."""
    out = ["<section><h2>Provenance</h2>", time_sentence(found)]
    for note in found.notes.values():
        out.append(f"<p class=\"note\">Note: {_escape(note)}.</p>")
    policies = found.path / POLICIES_FILE
    if policies.is_file():
        out.append(f"<details><summary>{POLICIES_FILE} (ready to paste under <code>policies:</code>)</summary>"
                   f"<pre>{_escape(policies.read_text(encoding='utf-8', errors='replace'))}</pre></details>")
    out.append(f"<details><summary>search.json</summary><pre>{_escape(json.dumps(found.meta, indent=2))}</pre>"
               "</details></section>")
    return "\n".join(part for part in out if part)


# --------------------------------------------------------------------------- small helpers


def _label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric) + (f" ({METRIC_UNITS[metric]})" if metric in METRIC_UNITS else "")


def _preset_value(preset: str, path: str) -> str:
    """The value of rule ``path`` in a preset (:data:`MISSING` for a name that is not a preset)."""
    from simulator.core.presets import PRESETS
    from simulator.core.presets import preset as make
    from simulator.io.policy_rules import policy_rules, rule_text

    return rule_text(policy_rules(make(preset)), path) if preset in PRESETS else MISSING


def _show(value: Any) -> str:
    return json.dumps(value) if isinstance(value, dict | list) else str(value)
