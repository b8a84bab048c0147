"""Plain-text tables of experiment results (what ``inmail-sim run`` prints; at most 100 columns).

Each row carries its unit; rates are shown in percent and their differences in percentage
points (pp); numbers in a row share one number of decimals, chosen from the width of the
difference's confidence interval, so the digits shown are the digits that are known.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING

from simulator.core.metrics import METRIC_NAMES

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


def comparison_table(results: Results, metrics: tuple[str, ...] = METRIC_NAMES) -> list[str]:
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


BREAKDOWN_WIDTHS: tuple[int, ...] = (22, 4, 5, 5, 21, 6, 6, 22)
"""label, recruiters, rate old/new, rate diff [CI], burn old/new, burn change [CI]: 98 columns."""


def breakdown_table(results: Results, keys: tuple[str, ...] = BREAKDOWN_TABLE_KEYS) -> list[str]:
    """Who wins and who loses: paired differences per recruiter subgroup."""
    comparison = results.breakdown_comparison
    if comparison.empty:
        return []
    (w_label, w_n, w_rate_base, w_rate_policy, w_rate_diff,
     w_burn_base, w_burn_policy, w_burn_change) = BREAKDOWN_WIDTHS
    rate_widths = (w_rate_base, w_rate_policy, w_rate_diff)
    burn_widths = (w_burn_base, w_burn_policy, w_burn_change)
    lines: list[str] = []
    base = results.baseline
    for policy in comparison["policy"].drop_duplicates():
        lines.append(f"who wins, who loses: {policy} - {base} per recruiter subgroup (paired, 95% CI, "
                     "* = significant at 5%)")
        lines.append(_row([("", w_label + w_n + 1, "<"), ("response rate, %", sum(rate_widths) + 2, "<"),
                           ("net credit burn per recruiter, credits", sum(burn_widths) + 2, "<")]))
        for by in keys:
            groups = comparison[(comparison["policy"] == policy) & (comparison["by"] == by)]
            if groups.empty:
                continue
            lines.append(_row([(by, w_label, "<"), ("n", w_n, ">"), (_short(base, w_rate_base), w_rate_base, ">"),
                               (_short(policy, w_rate_policy), w_rate_policy, ">"),
                               ("diff pp [95% CI]", w_rate_diff, "<"),
                               (_short(base, w_burn_base), w_burn_base, ">"),
                               (_short(policy, w_burn_policy), w_burn_policy, ">"),
                               ("change [95% CI]", w_burn_change, "<")]))
            for label in groups["label"].drop_duplicates():
                rows = groups[groups["label"] == label].set_index("metric")
                lines.append(_row([
                    (_short(str(label), w_label), w_label, "<"),
                    (num(_get(rows, "recruiters", "baseline_mean")), w_n, ">"),
                    *_rate_cells(rows, rate_widths), *_burn_cells(rows, burn_widths),
                ]))
        lines.append("n = recruiters in the group (mean over replications)")
        lines.append("")
    return lines


def _get(rows: pd.DataFrame, metric: str, column: str) -> float:
    """``rows.loc[metric, column]``, NaN when the metric is not there."""
    return float(rows.loc[metric, column]) if metric in rows.index else math.nan


def _missing_cells(widths: tuple[int, int, int]) -> list[tuple[str, int, str]]:
    """Three :data:`MISSING` cells: a subgroup without the metric."""
    w_base, w_policy, w_change = widths
    return [(MISSING, w_base, ">"), (MISSING, w_policy, ">"), (MISSING, w_change, "<")]


def _rate_cells(rows: pd.DataFrame, widths: tuple[int, int, int]) -> list[tuple[str, int, str]]:
    """Response rate of a subgroup: both policies (%) and the difference in pp with its CI."""
    if "response_rate" not in rows.index:
        return _missing_cells(widths)
    w_base, w_policy, w_diff = widths
    row = rows.loc["response_rate"]
    low, high = 100 * row["ci_low"], 100 * row["ci_high"]
    number = RowFormat([100 * row["diff"], low, high], 0.5 * (high - low))
    sig = "*" if bool(row["significant"]) else ""
    return [(f"{100 * row['baseline_mean']:.1f}", w_base, ">"), (f"{100 * row['policy_mean']:.1f}", w_policy, ">"),
            (f"{number(100 * row['diff'], True):>5} {number.interval(low, high)}{sig}", w_diff, "<")]


def _burn_cells(rows: pd.DataFrame, widths: tuple[int, int, int]) -> list[tuple[str, int, str]]:
    """Net credit burn per recruiter of a subgroup: both policies and the relative change with its CI."""
    metric = "net_credit_burn_per_recruiter"
    if metric not in rows.index:
        return _missing_cells(widths)
    w_base, w_policy, w_change = widths
    row = rows.loc[metric]
    sig = "*" if bool(row["significant"]) else ""
    if math.isfinite(row["rel_change"]):
        change = f"{pct(row['rel_change']):>5} [{pct(row['rel_ci_low'])}, {pct(row['rel_ci_high'])}]{sig}"
    else:
        change = f"{num(row['diff'], True)} {compact_interval(row['ci_low'], row['ci_high'])}{sig}"
    return [(num(row["baseline_mean"]), w_base, ">"), (num(row["policy_mean"]), w_policy, ">"),
            (change, w_change, "<")]


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
