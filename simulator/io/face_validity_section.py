"""The report's "Does the model look like the documents?" section (numbers: :mod:`simulator.io.face_validity`).

Two figures and a table: (a) the response rate week by week around the switch dates, with the
documents' "optimal" band; (b) per month, the reviewed seats warned and in an Improvement Period,
against the documents' "under 2% misuse bulk"; the table holds every document figure beside the
run's value.  One sentence per figure says whether the run agrees.  A run without daily series
says how to get them; a figure that cannot be drawn is a note in its place (and in ``errors``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import pandas as pd

from simulator.io.face_validity import (
    DOCUMENT_FIGURES,
    good_senders_rate,
    has_daily_series,
    monthly_threshold_shares,
    switch_dates,
    threshold_contrasts,
    weekly_response_rate,
)
from simulator.io.tables import escape_html as _escape

if TYPE_CHECKING:
    from simulator.experiments.experiment import Results

SECTION_TITLE = "Does the model look like the documents?"
FIGURE_NAMES: tuple[str, ...] = ("face_validity_response_rate", "face_validity_threshold")
"""Keys of the section's figures in the report's ``errors``."""


def _pc(value: float, digits: int = 1) -> str:
    return "-" if not math.isfinite(value) else f"{100 * value:.{digits}f}%"


def _verdict(agrees: bool | None) -> str:
    if agrees is None:
        return "<span class=\"flat\">not measured</span>"
    return "<b class=\"up\">agrees</b>" if agrees else "<b class=\"down\">does not agree</b>"


def _lead(agrees: bool | None) -> str:
    """The start of a figure's sentence: whether the run agrees with the documents."""
    if agrees is None:
        return "<span class=\"flat\">Not measured</span>"
    return "The run " + _verdict(agrees)


def response_sentence(results: Results, weekly: pd.DataFrame, good: pd.DataFrame) -> tuple[str, bool | None]:
    """One sentence on figure (a) and whether the run agrees (the good senders inside the 'optimal' band)."""
    optimal = DOCUMENT_FIGURES["optimal"]
    low, high = float(weekly["mean"].min()), float(weekly["mean"].max())
    where = ("inside" if optimal.low <= low and high <= optimal.high
             else "below" if high < optimal.low else "above" if low > optimal.high else "across")
    text = f"weekly response rates run {_pc(low)} to {_pc(high)}, {where} the documents' 20-30% 'optimal' band"
    switches = switch_dates(results)
    base = results.baseline
    for name, date in sorted(switches.items(), key=lambda item: item[1]):
        after = weekly[(weekly["week"] >= date) & (weekly["week"] < date + pd.Timedelta(days=28))]
        mine, theirs = after[after["policy"] == name]["mean"], after[after["policy"] == base]["mean"]
        if name != base and len(mine) and len(theirs):
            gap = float(mine.mean() - theirs.mean())
            text += (f"; in the four weeks after {name} switches ({date:%Y-%m-%d}) its rate is "
                     f"{_pc(float(mine.mean()))} against {_pc(float(theirs.mean()))} under {base} "
                     f"({100 * gap:+.1f} points)")
    agrees = None
    if not good.empty:
        inside = [optimal.holds(float(v)) for v in good["mean"]]
        agrees = all(inside)
        text += (f"; the good senders (high personalization band) answer {_pc(float(good['mean'].min()))} to "
                 f"{_pc(float(good['mean'].max()))}, the group the documents' band speaks of")
    return f"{_lead(agrees)}: {_escape(text)}.", agrees


def threshold_sentence(monthly: pd.DataFrame) -> tuple[str, bool | None]:
    """One sentence on figure (b) and whether the run agrees (every month's IP share under 2%)."""
    if monthly.empty:
        return ("<span class=\"flat\">Not measured</span>: no policy of this run has a threshold, so no seat is "
                "reviewed.", None)
    bound = DOCUMENT_FIGURES["misuse"]
    worst = monthly.loc[monthly["ip_mean"].idxmax()]
    warned = monthly.loc[monthly["warned_mean"].idxmax()]
    agrees = bool((monthly["ip_mean"] <= bound.high).all())
    text = (f"in the worst month ({worst['month']:%Y-%m}, {worst['policy']}) {_pc(float(worst['ip_mean']), 2)} of the "
            f"reviewed seats are in an Improvement Period on an average day "
            f"({'under' if agrees else 'over'} the documents' 2% who misuse bulk), and at most "
            f"{_pc(float(warned['warned_mean']), 2)} are warned in a month "
            f"({warned['month']:%Y-%m}, {warned['policy']})")
    return f"{_lead(agrees)}: {_escape(text)}.", agrees


def _row(figure: str, run: str, agrees: bool | None, how: str) -> str:
    fig = DOCUMENT_FIGURES[figure]
    return (f"<tr><td>{_escape(fig.text)} <span class=\"note\">({_escape(fig.source)})</span></td>"
            f"<td class=\"n\">{run}</td><td>{_verdict(agrees)}</td><td class=\"note\">{how}</td></tr>")


def document_table(results: Results, monthly: pd.DataFrame, good: pd.DataFrame) -> str:
    """Every document figure beside the run's value (or what run measures it)."""
    rows = []
    if monthly.empty:
        rows.append(_row("misuse", "-", None, "no policy with a threshold here"))
    else:
        per_policy = monthly.groupby("policy")["ip_mean"].mean()
        text = ", ".join(f"{_escape(p)} {_pc(float(v), 2)}" for p, v in per_policy.items())
        rows.append(_row("misuse", text, bool((per_policy <= DOCUMENT_FIGURES["misuse"].high).all()),
                         "reviewed seats in an Improvement Period on an average day, over the run"))
    rows.append(_row("lowest", "-", None, "a member-segment rate, not kept in a run folder: "
                     "<code>inmail-sim calibrate</code> measures it (target <code>lowest_segment</code>)"))
    if good.empty:
        rows.append(_row("optimal", "-", None, "no recruiter in the high personalization band"))
    else:
        text = ", ".join(f"{_escape(str(r.policy))} {_pc(float(r.mean))}" for r in good.itertuples())
        rows.append(_row("optimal", text, bool(all(DOCUMENT_FIGURES["optimal"].holds(float(v)) for v in good["mean"])),
                         "response rate of the high personalization band"))
    rows.append(_rise_row(results))
    return ("<table><tr><th>the documents say</th><th>this run</th><th></th><th>measured as</th></tr>"
            + "".join(rows) + "</table>")


def _rise_row(results: Results) -> str:
    """+25% after the 2014 updates: the relative response-rate change of a policy adding the threshold."""
    contrasts = threshold_contrasts(results)
    if not contrasts:
        return _row("rise_2014", "-", None, "this run has no policy adding the threshold to a baseline without one: "
                    "run <code>scenarios/threshold_only.yaml</code>")
    comparison = results.comparison
    rows = comparison[(comparison["metric"] == "response_rate") & comparison["policy"].isin(contrasts)]
    parts, agrees = [], True
    for r in rows.itertuples():
        parts.append(f"{_escape(str(r.policy))} {100 * r.rel_change:+.1f}% [{100 * r.rel_ci_low:+.1f}, "
                     f"{100 * r.rel_ci_high:+.1f}]")
        agrees = agrees and r.rel_change > DOCUMENT_FIGURES["rise_2014"].low
    return _row("rise_2014", "; ".join(parts), agrees,
                f"relative change of the response rate against {_escape(results.baseline)} (95% CI)")


def face_validity_section(results: Results, dpi: int = 110, errors: dict[str, str] | None = None) -> str:
    """The whole section (figures embedded)."""
    errors = {} if errors is None else errors
    out = [f"<section><h2>{SECTION_TITLE}</h2>",
           "<p class=\"note\">The run beside the figures the source documents publish (docs/calibration.md, "
           "'Targets'). Bands are the range across replications.</p>"]
    good = good_senders_rate(results)
    if not has_daily_series(results):
        out.append("<p>This run kept no daily series (it was run with <code>--no-timeseries</code>), so the "
                   "figures over time cannot be drawn. Re-run with them: <code>inmail-sim run "
                   "scenario.resolved.yaml --out DIR</code> in the run folder, then <code>inmail-sim report "
                   "DIR</code>.</p>")
        out.append(document_table(results, pd.DataFrame(), good) + "</section>")
        return "\n".join(out)
    weekly, monthly = weekly_response_rate(results), monthly_threshold_shares(results)
    sentence_a, _ = response_sentence(results, weekly, good)
    sentence_b, _ = threshold_sentence(monthly)
    out.append("<h3>(a) The response rate around the switch</h3>")
    out.append(_figure(FIGURE_NAMES[0], lambda: _response_png(results, weekly, dpi), errors,
                       "Weekly response rate per policy (InMails of the week; band: range across replications); "
                       "dotted lines: switch dates; grey band: the documents' 20-30% 'optimal'."))
    out.append(f"<p>{sentence_a}</p>")
    out.append("<h3>(b) Warnings and Improvement Periods per month</h3>")
    if not monthly.empty:
        out.append(_figure(FIGURE_NAMES[1], lambda: _threshold_png(results, monthly, dpi), errors,
                           "Share of the seats the threshold reviews warned in the month (left) and in an "
                           "Improvement Period on an average day of it (right); dashed: the documents' 2%."))
    out.append(f"<p>{sentence_b}</p>")
    out.append(document_table(results, monthly, good) + "</section>")
    return "\n".join(out)


def _figure(name: str, draw: Callable[[], bytes], errors: dict[str, str], caption: str) -> str:
    from simulator.io.robustness_section import embedded_png

    try:
        png = draw()
    except Exception as exc:  # a figure that fails is a note, never a failed report
        errors[name] = f"{type(exc).__name__}: {exc}"
        return f"<p class=\"error\">This figure could not be drawn: {_escape(errors[name])}</p>"
    return embedded_png(png, name, caption)


def _response_png(results: Results, weekly: pd.DataFrame, dpi: int) -> bytes:
    from simulator.io.plotting.canvas import render_png
    from simulator.io.plotting.face_validity_figures import response_rate_figure

    optimal = DOCUMENT_FIGURES["optimal"]
    bars = {p.threshold.min_rate for p in results.scenario.policies.values() if p.threshold.enabled}
    fig = response_rate_figure(weekly, results.scenario.policy_names, switch_dates(results),
                               (optimal.low, optimal.high), bars.pop() if len(bars) == 1 else None)
    return render_png(fig, dpi)


def _threshold_png(results: Results, monthly: pd.DataFrame, dpi: int) -> bytes:
    from simulator.io.plotting.canvas import render_png
    from simulator.io.plotting.face_validity_figures import threshold_share_figure

    fig = threshold_share_figure(monthly, results.scenario.policy_names, DOCUMENT_FIGURES["misuse"].high)
    return render_png(fig, dpi)


__all__ = ["FIGURE_NAMES", "SECTION_TITLE", "document_table", "face_validity_section", "response_sentence",
           "threshold_sentence"]
