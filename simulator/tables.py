"""Plain-text tables of experiment results (what ``inmail-sim run`` prints; at most 100 columns)."""

from __future__ import annotations

import math
import textwrap
from typing import TYPE_CHECKING

from simulator.metrics import METRIC_NAMES

if TYPE_CHECKING:
    import pandas as pd

    from simulator.experiment import Results

BREAKDOWN_TABLE_KEYS: tuple[str, ...] = ("seat_type", "personalization_band", "behaviour")
"""Subgroup tables printed under the main comparison."""


def num(x: float, signed: bool = False) -> str:
    """A compact number: 4 significant digits, k/M suffixes, ``n/a`` for NaN."""
    if x is None or not math.isfinite(x):
        return "n/a"
    sign = "+" if signed and x > 0 else ""
    a = abs(x)
    if a >= 1e6:
        text = f"{x / 1e6:.4g}M"
    elif a >= 1e4:
        text = f"{x / 1e3:.4g}k"
    elif a >= 100:
        text = f"{x:.0f}"
    elif a >= 1 or x == 0:
        text = f"{x:.3g}" if a >= 1 else "0"
    else:
        text = f"{x:.4f}" if a >= 1e-4 else f"{x:.2e}"
    return sign + text


def pct(x: float) -> str:
    """A relative change as a signed percentage."""
    return "n/a" if x is None or not math.isfinite(x) else f"{x * 100:+.1f}%"


def pval(p: float) -> str:
    if p is None or not math.isfinite(p):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def ci(lo: float, hi: float) -> str:
    return f"[{num(lo, True)}, {num(hi, True)}]"


def _row(cells: list[tuple[str, int, str]]) -> str:
    return " ".join(f"{text:{align}{w}}" for text, w, align in cells).rstrip()


def comparison_table(results: Results, metrics: tuple[str, ...] = METRIC_NAMES) -> list[str]:
    """One block per non-baseline policy: every metric, both means, the paired difference and its CI."""
    comp = results.comparison
    summ = results.summary.set_index(["policy", "metric"])
    base = results.baseline
    lines: list[str] = []
    others = [p for p in results.scenario.policy_names if p != base]
    if not others:
        lines.append(_row([("metric", 28, "<"), (base[:12], 12, ">"), ("95% CI", 24, ">")]))
        for m in metrics:
            r = summ.loc[(base, m)]
            lines.append(_row([(m, 28, "<"), (num(r["mean"]), 12, ">"), (ci(r["ci_low"], r["ci_high"]), 24, ">")]))
        return lines
    for pol in others:
        c = comp[comp["policy"] == pol].set_index("metric")
        lines.append(f"{pol} vs {base} (baseline): paired difference {pol} - {base}, * = significant at 5%")
        lines.append(_row([("metric", 28, "<"), (base[:9], 9, ">"), (pol[:9], 9, ">"), ("diff", 9, ">"),
                           ("95% CI of diff", 20, ">"), ("change", 8, ">"), ("p", 6, ">")]))
        for m in metrics:
            if m not in c.index:
                continue
            r = c.loc[m]
            sig = "*" if bool(r["significant"]) else ""
            lines.append(_row([
                (m, 28, "<"), (num(r["baseline_mean"]), 9, ">"), (num(r["policy_mean"]), 9, ">"),
                (num(r["diff"], True), 9, ">"), (ci(r["ci_low"], r["ci_high"]), 20, ">"),
                (pct(r["rel_change"]), 8, ">"), (pval(r["p_value"]), 6, ">"), (sig, 1, "<"),
            ]))
        shrink = []
        for m in ("response_rate", "net_credit_burn"):
            if m in c.index and math.isfinite(c.loc[m, "ci_shrink"]):
                shrink.append(f"{m} by {c.loc[m, 'ci_shrink'] * 100:.0f}%")
        if shrink:
            lines.append("pairing the replications (common random numbers) narrowed the 95% CI of "
                         + " and ".join(shrink) + " against an unpaired comparison")
        lines.append("")
    return lines


def breakdown_table(results: Results, keys: tuple[str, ...] = BREAKDOWN_TABLE_KEYS) -> list[str]:
    """Who wins and who loses: paired differences per recruiter subgroup."""
    bc = results.breakdown_comparison
    if bc.empty:
        return []
    lines: list[str] = []
    for pol in bc["policy"].drop_duplicates():
        lines.append(f"who wins, who loses: {pol} - {results.baseline} per recruiter subgroup "
                     "(mean over replications, * = significant)")
        for by in keys:
            sub = bc[(bc["policy"] == pol) & (bc["by"] == by)]
            if sub.empty:
                continue
            lines.append(_row([(by, 31, "<"), ("n", 5, ">"), ("response rate diff [95% CI]", 30, "<"),
                               ("net credits/recruiter diff [CI]", 31, "<")]))
            for label in sub["label"].drop_duplicates():
                rows = sub[sub["label"] == label].set_index("metric")
                lines.append(_row([
                    (str(label)[:31], 31, "<"), (num(rows.loc["recruiters", "baseline_mean"]), 5, ">"),
                    (_diff_cell(rows, "response_rate"), 30, "<"),
                    (_diff_cell(rows, "net_credit_burn_per_recruiter"), 31, "<"),
                ]))
        lines.append("")
    return lines


def _diff_cell(rows: pd.DataFrame, metric: str) -> str:
    if metric not in rows.index:
        return "n/a"
    r = rows.loc[metric]
    sig = "*" if bool(r["significant"]) else ""
    return f"{num(r['diff'], True)} {ci(r['ci_low'], r['ci_high'])}{sig}"


def format_results(results: Results, width: int = 100) -> str:
    """The whole printed report: header, comparison, pairing gain, subgroups, precision outcome."""
    sc = results.scenario
    head = [
        f"scenario {sc.name}: {results.n_replications} replications per policy (paired), root seed "
        f"{sc.root_seed}, {sc.run.horizon_days} days from {sc.run.start_date.isoformat()}",
        f"market: {sc.market.members.count:,} members, {sc.market.recruiter_count:,} recruiters; "
        f"policies: " + ", ".join(sc.policy_names) + f" (baseline {sc.baseline})",
        "",
    ]
    lines = head + comparison_table(results) + breakdown_table(results)
    if results.precision is not None:
        lines.append(results.precision.message)
    out: list[str] = []
    for line in lines:
        out += textwrap.wrap(line, width, subsequent_indent="  ") if len(line) > width else [line]
    return "\n".join(out).rstrip() + "\n"
