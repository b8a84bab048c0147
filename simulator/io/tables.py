"""Plain-text tables of experiment results (what ``inmail-sim run`` prints; at most 100 columns).

Each row carries its unit; rates are shown in percent and their differences in percentage
points (pp); numbers in a row share one number of decimals, chosen from the width of the
difference's confidence interval, so the digits shown are the digits that are known.
"""

from __future__ import annotations

import html
import math
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING

from simulator.core.metrics import CURRENT_METRICS

if TYPE_CHECKING:
    import pandas as pd

    from simulator.experiments.experiment import Results

MISSING = "n/a"
"""How io shows a number, or a rule, that is not there (NaN, no interval, a rule a policy lacks)."""

BREAKDOWN_TABLE_KEYS: tuple[str, ...] = ("seat_type", "personalization_band", "behaviour")
"""Subgroup tables printed under the main comparison."""

RATE_METRICS: frozenset[str] = frozenset({"response_rate", "acceptance_rate"})
"""Metrics that are fractions: shown in %, their differences in percentage points."""

METRIC_UNITS: dict[str, str] = {
    "sent": "InMails", "sent_bulk": "InMails", "sent_personalized": "InMails", "responses": "InMails",
    "accepted": "InMails", "declined": "InMails", "unanswered": "InMails", "pending": "InMails",
    "response_rate": "%", "acceptance_rate": "%",
    "credits_granted": "credits", "credits_spent": "credits", "credits_refunded": "credits",
    "credits_expired": "credits", "net_credit_burn": "credits", "credits_lost": "credits",
    "credits_per_response": "cr/resp",
    "stockout_recruiter_days": "rec-days", "warnings": "count", "improvement_periods": "count",
    "inmails_per_active_member": "/member", "unanswered_per_active_member": "/member",
    "mean_member_fatigue": "index",
}
"""Short unit of every metric in :data:`METRIC_NAMES` (totals are over the whole market and run)."""

METRIC_LABELS: dict[str, str] = {
    "sent": "InMails sent", "sent_bulk": "bulk InMails sent", "sent_personalized": "one-to-one InMails sent",
    "responses": "responses", "accepted": "accepted", "declined": "declined",
    "unanswered": "unanswered", "pending": "unanswered (deprecated name)",
    "response_rate": "response rate", "acceptance_rate": "acceptance rate",
    "credits_granted": "credits granted", "credits_spent": "credits spent", "credits_refunded": "credits refunded",
    "credits_expired": "credits expired", "net_credit_burn": "net credit burn",
    "credits_lost": "credits lost (burned or expired)",
    "credits_per_response": "net credits per response", "stockout_recruiter_days": "recruiter-days short of credits",
    "warnings": "threshold warnings", "improvement_periods": "Improvement Periods",
    "inmails_per_active_member": "InMails per active member",
    "unanswered_per_active_member": "unanswered InMails per active member",
    "mean_member_fatigue": "mean member fatigue",
}
"""Plain-words name of every metric (figures and the HTML report)."""


def scale_of(metric: str) -> float:
    """Factor from stored value to displayed value (100 for rates shown in %)."""
    return 100.0 if metric in RATE_METRICS else 1.0


def num(value: float | None, signed: bool = False) -> str:
    """A compact number: 4 significant digits, k/M suffixes, :data:`MISSING` for NaN."""
    if value is None or not math.isfinite(value):
        return MISSING
    sign = "+" if signed and value > 0 else ""
    size = abs(value)
    if size >= 1e6:
        text = f"{value / 1e6:.4g}M"
    elif size >= 1e4:
        text = f"{value / 1e3:.4g}k"
    elif size >= 100:
        text = f"{value:.0f}"
    elif size >= 1 or value == 0:
        text = f"{value:.3g}" if size >= 1 else "0"
    else:
        text = f"{value:.4f}" if size >= 1e-4 else f"{value:.2e}"
    return sign + text


def pct(fraction: float | None) -> str:
    """A relative change as a signed percentage (no decimals from +/-100% on)."""
    if fraction is None or not math.isfinite(fraction):
        return MISSING
    return f"{fraction * 100:+.0f}%" if abs(fraction) >= 1 else f"{fraction * 100:+.1f}%"


def pval(p_value: float | None) -> str:
    """A p-value with 3 decimals (``<0.001`` below that)."""
    if p_value is None or not math.isfinite(p_value):
        return MISSING
    return "<0.001" if p_value < 0.001 else f"{p_value:.3f}"


def compact_interval(low: float, high: float) -> str:
    """``[low, high]`` as signed compact numbers (:func:`num`)."""
    return f"[{num(low, True)}, {num(high, True)}]"


def decimals(half_width: float, scale: float) -> int:
    """Decimals that show two significant digits of ``half_width`` (else three of ``scale``), in 0..4."""
    if math.isfinite(half_width) and half_width > 0:
        places = 1 - math.floor(math.log10(half_width))
    elif math.isfinite(scale) and scale > 0:
        places = 2 - math.floor(math.log10(scale))
    else:
        places = 0
    return min(4, max(0, places))


class RowFormat:
    """Formats the numbers of one row alike: fixed decimals, or k/M suffixes for large values."""

    def __init__(self, values: Sequence[float], half_width: float) -> None:
        finite = [abs(v) for v in values if v is not None and math.isfinite(v)]
        self.compact = bool(finite) and max(finite) >= 1e4
        self.decimals = decimals(half_width, max(finite, default=0.0))

    def __call__(self, value: float | None, signed: bool = False) -> str:
        """One number of the row (:data:`MISSING` for NaN); ``signed`` writes ``+`` and a bare ``0``."""
        if value is None or not math.isfinite(value):
            return MISSING
        if self.compact:
            return num(value, signed)
        text = f"{value:+.{self.decimals}f}" if signed else f"{value:.{self.decimals}f}"
        return "0" if text.lstrip("+-").strip("0.") == "" and signed else text

    def interval(self, low: float, high: float) -> str:
        """``[low, high]`` as signed numbers of the row."""
        return f"[{self(low, True)}, {self(high, True)}]"


def _row(cells: list[tuple[str, int, str]]) -> str:
    """One line of a table from (text, width, alignment) cells."""
    return " ".join(f"{text:{align}{w}}" for text, w, align in cells).rstrip()


def _short(name: str, width: int) -> str:
    """``name`` cut to ``width`` characters (``..`` marks a cut)."""
    name = name.replace("professional_services", "pro_services")
    return name if len(name) <= width else name[: width - 2] + ".."


COMPARISON_WIDTHS: tuple[int, ...] = (28, 8, 8, 8, 8, 18, 8, 7)
"""metric, unit, baseline, policy, diff, 95% CI of diff, change, p (+ mark): 100 columns with spaces."""


def comparison_table(results: Results, metrics: tuple[str, ...] = CURRENT_METRICS) -> list[str]:
    """One block per non-baseline policy: every metric, both means, the paired difference and its CI."""
    comparison = results.comparison
    summary = results.summary.set_index(["policy", "metric"])
    base = results.baseline
    lines: list[str] = []
    others = [p for p in results.scenario.policy_names if p != base]
    if not others:
        return _single_policy_table(summary, base, metrics)
    w_metric, w_unit, w_base, w_policy, w_diff, w_ci, w_change, w_p = COMPARISON_WIDTHS
    for policy in others:
        rows = comparison[comparison["policy"] == policy].set_index("metric")
        n = int(rows["n"].max()) if len(rows) else 0
        lines.append(f"{policy} vs {base} (baseline): paired difference {policy} - {base} over {n} replications")
        lines.append(_row([("metric", w_metric, "<"), ("unit", w_unit, "<"), (_short(base, w_base), w_base, ">"),
                           (_short(policy, w_policy), w_policy, ">"), ("diff", w_diff, ">"),
                           ("95% CI of diff", w_ci, ">"), ("change", w_change, ">"), ("p", w_p - 1, ">")]))
        for metric in metrics:
            if metric not in rows.index:
                continue
            row = rows.loc[metric]
            scale = scale_of(metric)
            base_mean, policy_mean, diff, low, high = (row[column] * scale for column in (
                "baseline_mean", "policy_mean", "diff", "ci_low", "ci_high"))
            number = RowFormat([base_mean, policy_mean, diff, low, high], 0.5 * (high - low))
            interval = number.interval(low, high)
            if len(interval) > w_ci:
                interval = compact_interval(low, high)
            sig = "*" if bool(row["significant"]) else ""
            lines.append(_row([
                (metric, w_metric, "<"), (METRIC_UNITS.get(metric, ""), w_unit, "<"),
                (number(base_mean), w_base, ">"), (number(policy_mean), w_policy, ">"),
                (number(diff, True), w_diff, ">"), (interval, w_ci, ">"), (pct(row["rel_change"]), w_change, ">"),
                (f"{pval(row['p_value']):>{w_p - 1}}{sig}", w_p, "<"),
            ]))
        lines.append("* significant at 5% (paired t-test, CI excludes 0); rates in %, their diff in "
                     "points; change = diff/baseline")
        shrink = []
        for metric in ("response_rate", "net_credit_burn"):
            if metric in rows.index and math.isfinite(rows.loc[metric, "ci_shrink"]):
                shrink.append(f"{metric} by {rows.loc[metric, 'ci_shrink'] * 100:.0f}%")
        if shrink:
            lines.append("pairing the replications (common random numbers) narrowed the 95% CI of "
                         + " and ".join(shrink) + " against an unpaired comparison")
        lines.append("")
    return lines


def _single_policy_table(summary: pd.DataFrame, base: str, metrics: Sequence[str]) -> list[str]:
    """Mean and CI of every metric of a scenario with one policy."""
    lines = [_row([("metric", 28, "<"), ("unit", 8, "<"), (_short(base, 10), 10, ">"), ("95% CI", 24, ">")])]
    for metric in metrics:
        if (base, metric) not in summary.index:
            continue
        row = summary.loc[(base, metric)]
        scale = scale_of(metric)
        low, high = row["ci_low"] * scale, row["ci_high"] * scale
        number = RowFormat([row["mean"] * scale, low, high], 0.5 * (high - low))
        lines.append(_row([(metric, 28, "<"), (METRIC_UNITS.get(metric, ""), 8, "<"),
                           (number(row["mean"] * scale), 10, ">"), (f"[{number(low)}, {number(high)}]", 24, ">")]))
    lines += ["rates in %; 95% Student-t interval over replications", ""]
    return lines


BREAKDOWN_WIDTHS: tuple[int, ...] = (15, 4, 6, 6, 18, 6, 5, 5, 6, 5, 6, 5)
"""label, n, responses old/new/change [CI], rate pp, stock-out days old/new/ratio, credits/resp old/new,
verdict: 98 columns with the spaces."""

BY_WORDS: dict[str, str] = {"personalization_band": "personalization"}
"""Subgroupings whose name is longer than the label column, shortened for the table."""

LOSS_WORDS: dict[str, str] = {"responses": "responses", "stockout_days_per_recruiter": "stock-out days"}
"""How the loss quantities of :data:`~simulator.experiments.group_outcomes.LOSS_DIRECTIONS` read in a sentence."""


def short(value: float | None) -> str:
    """A small positive quantity in at most 5 characters (``0``, ``0.42``, ``6.13``, ``12.3``, ``140``)."""
    if value is None or not math.isfinite(value):
        return MISSING
    if value == 0:
        return "0"
    size = abs(value)
    if size >= 1e4:
        return num(value)
    return f"{value:.0f}" if size >= 100 else f"{value:.1f}" if size >= 10 else f"{value:.2f}"


def ratio_text(ratio: float) -> str:
    """A ratio new/old as ``6.0x``, ``14x``, ``0.5x`` (:data:`MISSING` from a zero baseline)."""
    if not math.isfinite(ratio):
        return MISSING
    if ratio >= 9.95:
        return f"{ratio:.0f}x"
    return f"{ratio:.1f}x" if ratio >= 0.095 or ratio == 0 else "<0.1x"


def places_that_show(values: Sequence[float], places: int, most: int = 3) -> int:
    """``places``, raised (up to ``most``) until no non-zero value rounds to 0.

    So an interval that excludes 0 never shows a bound of ``0`` or ``-0``.
    """
    while places < most and any(v != 0 and round(abs(v), places) == 0 for v in values if math.isfinite(v)):
        places += 1
    return places


def _signed(value: float, places: int) -> str:
    """``value`` with a sign and ``places`` decimals (a bare ``0`` for zero)."""
    return "0" if value == 0 else f"{value:+.{places}f}"


def rel_interval(rel: float, low: float, high: float, brackets_pct: bool = False) -> str:
    """A relative change with its CI, ``-22% [-25,-19]`` (one decimal when the CI is narrower than +/-1%)."""
    if not math.isfinite(rel):
        return MISSING
    values = [100 * rel, 100 * low, 100 * high]
    places = places_that_show(values, 1 if math.isfinite(high - low) and 50 * (high - low) < 1 else 0, 2)
    unit = "%" if brackets_pct else ""
    sep = ", " if brackets_pct else ","
    v, lo, hi = (_signed(x, places) for x in values)
    return f"{v}% [{lo}{unit}{sep}{hi}{unit}]"


def diff_interval(diff: float, low: float, high: float) -> str:
    """A difference with its CI, ``+2.5 [+2.1, +2.9]``: two significant digits of the half-width."""
    if not math.isfinite(diff):
        return MISSING
    places = places_that_show([diff, low, high], decimals(0.5 * (high - low), abs(diff)), 4)
    return f"{_signed(diff, places)} [{_signed(low, places)}, {_signed(high, places)}]"


def breakdown_table(results: Results, keys: tuple[str, ...] = BREAKDOWN_TABLE_KEYS) -> list[str]:
    """Who wins and who loses: per recruiter subgroup, responses, rate, stock-outs, credits per response.

    Groups whose responses fall or whose stock-out days rise (95% paired CI excluding zero) are
    marked ``LOSES`` and listed again in words under the table.
    """
    from simulator.experiments.group_outcomes import WORSE_OFF_RULE, group_verdicts

    outcomes = results.group_outcomes
    if outcomes.empty:
        return []
    verdicts = group_verdicts(outcomes).set_index(["policy", "by", "label"])
    w = BREAKDOWN_WIDTHS
    base = results.baseline
    lines: list[str] = []
    for policy in outcomes["policy"].drop_duplicates():
        of_policy = outcomes[outcomes["policy"] == policy]
        n = int(of_policy["n"].max())
        lines.append(f"who wins, who loses: {policy} - {base} per recruiter subgroup, paired over {n} "
                     "replications (95% CI)")
        lines.append(_row([("", w[0] + w[1] + 1, "<"), ("responses per group", w[2] + w[3] + w[4] + 2, "<"),
                           ("rate", w[5], ">"), (" stock-out d/recr.", w[6] + w[7] + w[8] + 2, "<"),
                           (" credits/resp", w[9] + w[10] + 1, "<")]))
        losers: list[str] = []
        for by in keys:
            groups = of_policy[of_policy["by"] == by]
            if groups.empty:
                continue
            lines.append(_row([(BY_WORDS.get(by, by), w[0], "<"), ("n", w[1], ">"), (_short(base, w[2]), w[2], ">"),
                               (_short(policy, w[3]), w[3], ">"), ("change [95% CI]", w[4], "<"),
                               ("pp", w[5], ">"), (_short(base, w[6]), w[6], ">"), (_short(policy, w[7]), w[7], ">"),
                               ("ratio", w[8], ">"), (_short(base, w[9]), w[9], ">"),
                               (_short(policy, w[10]), w[10], ">"), ("", w[11], "<")]))
            for label in groups["label"].drop_duplicates():
                rows = groups[groups["label"] == label].set_index("metric")
                verdict = verdicts.loc[(policy, by, label)]
                mark = "LOSES" if verdict["worse_off"] else "gains" if verdict["better_off"] else ""
                lines.append(_row([(_short(str(label), w[0]), w[0], "<"), *_group_cells(rows), (mark, w[11], "<")]))
                if verdict["worse_off"]:
                    losers += textwrap.wrap(f"  {by} {label}: {loss_summary(rows)}", 100,
                                            subsequent_indent="      ")
        lines.append("n = recruiters; responses = mean per replication, change = paired relative change; "
                     "* = CI excludes 0")
        lines.append("rate pp = response-rate diff in points; stock-out d/recr. = days short of credits per "
                     "recruiter")
        lines.append(f"LOSES = {WORSE_OFF_RULE}")
        lines.append("gains = better off on responses or stock-out days, and worse off on neither")
        lines += ([f"worse off under {policy}:", *losers] if losers
                  else [f"no recruiter subgroup is worse off under {policy} (at 95%)"])
        lines.append("")
    return lines


def loss_summary(rows: pd.DataFrame) -> str:
    """What a subgroup loses, in words (``rows``: its ``group_outcomes`` rows indexed by metric).

    ``responses -22% [-25%, -19%]; stock-out days 6.0x, +2.5 [+2.1, +2.9] per recruiter``.
    """
    lost = [m for m in LOSS_WORDS if m in rows.index and bool(rows.loc[m, "worse_off"])]
    return "; ".join(_loss_words(rows, metric) for metric in lost)


def _loss_words(rows: pd.DataFrame, metric: str) -> str:
    """A loss in words: ``responses -22% [-25%, -19%]`` or ``stock-out days 6.0x (+2.5 [+2.1, +2.9] per recruiter)``."""
    row = rows.loc[metric]
    if metric == "responses":
        return f"{LOSS_WORDS[metric]} {rel_interval(row['rel_change'], row['rel_ci_low'], row['rel_ci_high'], True)}"
    ratio = ratio_text(row["ratio"])
    level = ratio if ratio != MISSING else f"from {short(row['baseline_mean'])} to {short(row['policy_mean'])}"
    return (f"{LOSS_WORDS[metric]} {level} "
            f"({diff_interval(row['diff'], row['ci_low'], row['ci_high'])} per recruiter)")


def _star(rows: pd.DataFrame, metric: str) -> str:
    """``*`` when the metric's paired CI excludes zero."""
    return "*" if metric in rows.index and bool(rows.loc[metric, "significant"]) else ""


def _value(rows: pd.DataFrame, metric: str, column: str) -> float:
    """``rows.loc[metric, column]``, NaN when the metric is not there."""
    return float(rows.loc[metric, column]) if metric in rows.index else math.nan


def _group_cells(rows: pd.DataFrame) -> list[tuple[str, int, str]]:
    """The number cells of one subgroup row of :func:`breakdown_table` (every column but label and verdict)."""
    w = BREAKDOWN_WIDTHS

    def value(metric: str, column: str) -> float:
        return _value(rows, metric, column)

    change = MISSING
    if "responses" in rows.index:
        change = rel_interval(value("responses", "rel_change"), value("responses", "rel_ci_low"),
                              value("responses", "rel_ci_high"))
    rate = value("response_rate", "diff") * 100
    rate_text = _signed(rate, places_that_show([rate], 1, 2)) if math.isfinite(rate) else MISSING
    stockouts = "stockout_days_per_recruiter"

    def starred(text: str, metric: str, width: int) -> tuple[str, int, str]:
        return f"{text:>{width - 1}}{_star(rows, metric)}", width, "<"

    return [
        (num(value("recruiters", "baseline_mean")), w[1], ">"),
        (num(value("responses", "baseline_mean")), w[2], ">"), (num(value("responses", "policy_mean")), w[3], ">"),
        (change + _star(rows, "responses"), w[4], "<"), starred(rate_text, "response_rate", w[5]),
        (short(value(stockouts, "baseline_mean")), w[6], ">"), (short(value(stockouts, "policy_mean")), w[7], ">"),
        starred(ratio_text(value(stockouts, "ratio")), stockouts, w[8]),
        (short(value("credits_per_response", "baseline_mean")), w[9], ">"),
        starred(short(value("credits_per_response", "policy_mean")), "credits_per_response", w[10]),
    ]


def format_results(results: Results, width: int = 100) -> str:
    """The whole printed report: header, comparison, pairing gain, subgroups, precision outcome."""
    scenario = results.scenario
    head = [
        f"scenario {scenario.name}: {scenario.run.horizon_days} days from {scenario.run.start_date.isoformat()}, "
        f"{results.n_replications} paired replications per policy, root seed {scenario.root_seed}",
        f"market: {scenario.market.members.count:,} members, {scenario.market.recruiter_count:,} recruiters; "
        f"policies: " + ", ".join(scenario.policy_names) + f" (baseline {scenario.baseline})",
        "",
    ]
    lines = head + comparison_table(results) + breakdown_table(results)
    if results.precision is not None:
        lines.append(results.precision.message)
    out: list[str] = []
    for line in lines:
        out += textwrap.wrap(line, width, subsequent_indent="  ") if len(line) > width else [line]
    return "\n".join(out).rstrip() + "\n"


def escape_html(text: object) -> str:
    """``text`` safe to put in HTML, also inside an attribute value (the report and its sections)."""
    return html.escape(str(text), quote=True)
