"""The report's "who wins, who loses" section: per recruiter subgroup and compared policy, what changes.

One table per subgrouping (seat type, personalization band, behaviour, recruiter group) with
responses, response rate, stock-out days per recruiter and net credits per response, each with
its paired 95% CI; groups that end up worse off (:func:`~simulator.experiments.group_outcomes.worse_off`)
are highlighted, named in a list above the tables, and the rule is written under them.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from simulator.io.tables import MISSING, RowFormat, loss_summary, num, ratio_text, rel_interval, short
from simulator.io.tables import escape_html as _escape

if TYPE_CHECKING:
    import pandas as pd

    from simulator.experiments.experiment import Results

SECTION_KEYS: tuple[str, ...] = ("seat_type", "personalization_band", "behaviour", "group")
"""The subgroupings of the section, in order."""

KEY_WORDS: dict[str, str] = {"seat_type": "seat type", "personalization_band": "personalization band",
                             "behaviour": "behaviour", "group": "recruiter group"}

SECTION_CSS = "tr.loser td{background:#fdecea}tr.loser td.verdict{color:#a50f15;font-weight:700}" \
              "tr.winner td.verdict{color:#00488a}.losers li{color:#a50f15}"
"""Style of the section (appended to the report's style sheet)."""


def _diff_cell(row: pd.Series, scale: float = 1.0) -> str:
    """``+1.2 [+0.8, +1.6]`` of a comparison row (bold when the CI excludes 0)."""
    diff, low, high = (float(row[c]) * scale for c in ("diff", "ci_low", "ci_high"))
    number = RowFormat([diff, low, high], 0.5 * (high - low))
    text = f"{number(diff, True)} {number.interval(low, high)}"
    return f"<b>{text}</b>" if bool(row["significant"]) else text


def _rel_cell(row: pd.Series) -> str:
    """``-22% [-25%, -19%]`` of a comparison row (bold when the CI excludes 0)."""
    text = rel_interval(float(row["rel_change"]), float(row["rel_ci_low"]), float(row["rel_ci_high"]), True)
    return f"<b>{text}</b>" if bool(row["significant"]) and text != MISSING else text


def _td(text: object) -> str:
    """A number cell."""
    return f"<td class=\"n\">{text}</td>"


def _metric_cells(metric: str, row: pd.Series) -> list[str]:
    """The cells of one outcome: both levels and the change (with the ratio for stock-outs)."""
    if metric == "responses":
        return [_td(num(row["baseline_mean"])), _td(num(row["policy_mean"])), _td(_rel_cell(row))]
    if metric == "response_rate":
        return [_td(f"{100 * row['baseline_mean']:.1f}"), _td(f"{100 * row['policy_mean']:.1f}"),
                _td(_diff_cell(row, 100))]
    levels = [_td(short(row["baseline_mean"])), _td(short(row["policy_mean"]))]
    if metric == "stockout_days_per_recruiter":
        return [*levels, _td(ratio_text(float(row["ratio"]))), _td(_diff_cell(row))]
    return [*levels, _td(_rel_cell(row))]


TABLE_METRICS: dict[str, int] = {"responses": 3, "response_rate": 3, "stockout_days_per_recruiter": 4,
                                 "credits_per_response": 3}
"""The outcomes of a table row and how many cells each takes."""


def _group_row(label: str, rows: pd.DataFrame) -> str:
    """One table row: a subgroup's outcomes and its verdict."""
    cells = [f"<td>{_escape(label)}</td>",
             _td(num(rows.loc["recruiters", "baseline_mean"]) if "recruiters" in rows.index else MISSING)]
    for metric, width in TABLE_METRICS.items():
        cells += _metric_cells(metric, rows.loc[metric]) if metric in rows.index else [_td(MISSING)] * width
    worse = bool(rows["worse_off"].any())
    better = bool(rows["better_off"].any()) and not worse
    verdict = f"WORSE OFF: {_escape(loss_summary(rows))}" if worse else "better off" if better else "no loss shown"
    css = " class=\"loser\"" if worse else " class=\"winner\"" if better else ""
    return f"<tr{css}>" + "".join(cells) + f"<td class=\"verdict\">{verdict}</td></tr>"


def _table(by: str, groups: pd.DataFrame, base: str, policy: str) -> str:
    """The table of one subgrouping for one compared policy."""
    b, p = _escape(base), _escape(policy)
    head = ("<table><tr><th rowspan=\"2\">" + _escape(KEY_WORDS.get(by, by)) + "</th><th rowspan=\"2\">recruiters</th>"
            "<th colspan=\"3\">responses (per replication)</th><th colspan=\"3\">response rate (%)</th>"
            "<th colspan=\"4\">days short of credits per recruiter</th><th colspan=\"3\">net credits per response</th>"
            "<th rowspan=\"2\">verdict</th></tr>"
            f"<tr><th>{b}</th><th>{p}</th><th>change [95% CI]</th><th>{b}</th><th>{p}</th><th>diff, points [95% CI]"
            f"</th><th>{b}</th><th>{p}</th><th>ratio</th><th>diff [95% CI]</th><th>{b}</th><th>{p}</th>"
            "<th>change [95% CI]</th></tr>")
    body = "".join(_group_row(str(label), groups[groups["label"] == label].set_index("metric"))
                   for label in groups["label"].drop_duplicates())
    return head + body + "</table>"


def winners_losers_section(results: Results) -> str:
    """The whole section (empty when there is no compared policy or no breakdown)."""
    from simulator.experiments.group_outcomes import WORSE_OFF_RULE, group_verdicts

    outcomes = results.group_outcomes
    if outcomes.empty:
        return ""
    base = results.baseline
    verdicts = group_verdicts(outcomes)
    out = ["<section id=\"winners-losers\"><h2>Who wins, who loses</h2>"]
    for policy in outcomes["policy"].drop_duplicates():
        losers = verdicts[(verdicts["policy"] == policy) & verdicts["worse_off"]]
        out.append(f"<h3>{_escape(policy)} against {_escape(base)}</h3>")
        if losers.empty:
            out.append(f"<p>No recruiter subgroup is shown worse off under {_escape(policy)} (95% paired CIs).</p>")
        else:
            items = []
            for row in losers.itertuples():
                rows = outcomes[(outcomes["policy"] == policy) & (outcomes["by"] == row.by)
                                & (outcomes["label"] == row.label)].set_index("metric")
                items.append(f"<li><b>{_escape(KEY_WORDS.get(str(row.by), row.by))} {_escape(row.label)}</b>: "
                             f"{_escape(loss_summary(rows))}</li>")
            out.append(f"<p>Worse off under {_escape(policy)}:</p><ul class=\"losers\">{''.join(items)}</ul>")
        of_policy = outcomes[outcomes["policy"] == policy]
        for by in SECTION_KEYS:
            groups = of_policy[of_policy["by"] == by]
            if not groups.empty:
                out.append(_table(by, groups, base, policy))
    n = int(outcomes["n"].max()) if math.isfinite(outcomes["n"].max()) else 0
    out.append(f"<p class=\"note\">Paired over {n} replications (common random numbers); 95% Student-t "
               "intervals; bold = the interval excludes 0. Responses are the group's total per replication; "
               "net credits per response = (credits spent - refunded) / responses, taken replication by "
               f"replication. <b>{_escape(WORSE_OFF_RULE[0].upper() + WORSE_OFF_RULE[1:])}</b>; better off = better "
               "on one of the two and worse on neither.</p></section>")
    return "\n".join(out)
