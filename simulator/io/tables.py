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

BREAKDOWN_TABLE_KEYS: tuple[str, ...] = ("seat_type", "personalization_band", "behaviour")
"""Subgroup tables printed under the main comparison."""

RATE_METRICS: frozenset[str] = frozenset({"response_rate", "acceptance_rate"})
"""Metrics that are fractions: shown in %, their differences in percentage points."""

METRIC_UNITS: dict[str, str] = {
    "sent": "InMails", "sent_bulk": "InMails", "sent_personalized": "InMails", "responses": "InMails",
    "accepted": "InMails", "declined": "InMails", "pending": "InMails",
    "response_rate": "%", "acceptance_rate": "%",
    "credits_granted": "credits", "credits_spent": "credits", "credits_refunded": "credits",
    "credits_expired": "credits", "net_credit_burn": "credits", "credits_per_response": "cr/resp",
    "stockout_recruiter_days": "rec-days", "warnings": "count", "improvement_periods": "count",
    "inmails_per_active_member": "/member", "unanswered_per_active_member": "/member",
    "mean_member_fatigue": "index",
}
"""Short unit of every metric in :data:`METRIC_NAMES` (totals are over the whole market and run)."""

METRIC_LABELS: dict[str, str] = {
    "sent": "InMails sent", "sent_bulk": "bulk InMails sent", "sent_personalized": "one-to-one InMails sent",
    "responses": "responses", "accepted": "accepted", "declined": "declined", "pending": "no response",
    "response_rate": "response rate", "acceptance_rate": "acceptance rate",
    "credits_granted": "credits granted", "credits_spent": "credits spent", "credits_refunded": "credits refunded",
    "credits_expired": "credits expired", "net_credit_burn": "net credit burn",
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


def num(x: float | None, signed: bool = False) -> str:
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


def pct(x: float | None) -> str:
    """A relative change as a signed percentage (no decimals from +/-100% on)."""
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x * 100:+.0f}%" if abs(x) >= 1 else f"{x * 100:+.1f}%"


def pval(p: float | None) -> str:
    if p is None or not math.isfinite(p):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def ci(lo: float, hi: float) -> str:
    return f"[{num(lo, True)}, {num(hi, True)}]"


def decimals(half_width: float, scale: float) -> int:
    """Decimals that show two significant digits of ``half_width`` (else three of ``scale``), in 0..4."""
    if math.isfinite(half_width) and half_width > 0:
        d = 1 - math.floor(math.log10(half_width))
    elif math.isfinite(scale) and scale > 0:
        d = 2 - math.floor(math.log10(scale))
    else:
        d = 0
    return min(4, max(0, d))


class RowFormat:
    """Formats the numbers of one row alike: fixed decimals, or k/M suffixes for large values."""

    def __init__(self, values: Sequence[float], half_width: float) -> None:
        finite = [abs(v) for v in values if v is not None and math.isfinite(v)]
        self.big = bool(finite) and max(finite) >= 1e4
        self.d = decimals(half_width, max(finite, default=0.0))

    def __call__(self, x: float | None, signed: bool = False) -> str:
        if x is None or not math.isfinite(x):
            return "n/a"
        if self.big:
            return num(x, signed)
        text = f"{x:+.{self.d}f}" if signed else f"{x:.{self.d}f}"
        return "0" if text.lstrip("+-").strip("0.") == "" and signed else text

    def interval(self, lo: float, hi: float) -> str:
        return f"[{self(lo, True)}, {self(hi, True)}]"


def _row(cells: list[tuple[str, int, str]]) -> str:
    return " ".join(f"{text:{align}{w}}" for text, w, align in cells).rstrip()


def _short(name: str, width: int) -> str:
    name = name.replace("professional_services", "pro_services")
    return name if len(name) <= width else name[: width - 2] + ".."


COMPARISON_WIDTHS: tuple[int, ...] = (28, 8, 8, 8, 8, 18, 8, 7)
"""metric, unit, baseline, policy, diff, 95% CI of diff, change, p (+ mark): 100 columns with spaces."""


def comparison_table(results: Results, metrics: tuple[str, ...] = METRIC_NAMES) -> list[str]:
    """One block per non-baseline policy: every metric, both means, the paired difference and its CI."""
    comp = results.comparison
    summ = results.summary.set_index(["policy", "metric"])
    base = results.baseline
    lines: list[str] = []
    others = [p for p in results.scenario.policy_names if p != base]
    if not others:
        return _single_policy_table(summ, base, metrics)
    wm, wu, wb, wp, wd, wc, wr, wpv = COMPARISON_WIDTHS
    for pol in others:
        c = comp[comp["policy"] == pol].set_index("metric")
        n = int(c["n"].max()) if len(c) else 0
        lines.append(f"{pol} vs {base} (baseline): paired difference {pol} - {base} over {n} replications")
        lines.append(_row([("metric", wm, "<"), ("unit", wu, "<"), (_short(base, wb), wb, ">"),
                           (_short(pol, wp), wp, ">"), ("diff", wd, ">"), ("95% CI of diff", wc, ">"),
                           ("change", wr, ">"), ("p", wpv - 1, ">")]))
        for m in metrics:
            if m not in c.index:
                continue
            r = c.loc[m]
            k = scale_of(m)
            vals = [r["baseline_mean"] * k, r["policy_mean"] * k, r["diff"] * k, r["ci_low"] * k, r["ci_high"] * k]
            f = RowFormat(vals, 0.5 * (vals[4] - vals[3]))
            interval = f.interval(vals[3], vals[4])
            if len(interval) > wc:
                interval = ci(vals[3], vals[4])
            sig = "*" if bool(r["significant"]) else ""
            lines.append(_row([
                (m, wm, "<"), (METRIC_UNITS.get(m, ""), wu, "<"), (f(vals[0]), wb, ">"), (f(vals[1]), wp, ">"),
                (f(vals[2], True), wd, ">"), (interval, wc, ">"), (pct(r["rel_change"]), wr, ">"),
                (f"{pval(r['p_value']):>{wpv - 1}}{sig}", wpv, "<"),
            ]))
        lines.append("* significant at 5% (paired t-test, CI excludes 0); rates in %, their diff in "
                     "points; change = diff/baseline")
        shrink = []
        for m in ("response_rate", "net_credit_burn"):
            if m in c.index and math.isfinite(c.loc[m, "ci_shrink"]):
                shrink.append(f"{m} by {c.loc[m, 'ci_shrink'] * 100:.0f}%")
        if shrink:
            lines.append("pairing the replications (common random numbers) narrowed the 95% CI of "
                         + " and ".join(shrink) + " against an unpaired comparison")
        lines.append("")
    return lines


def _single_policy_table(summ: pd.DataFrame, base: str, metrics: Sequence[str]) -> list[str]:
    lines = [_row([("metric", 28, "<"), ("unit", 8, "<"), (_short(base, 10), 10, ">"), ("95% CI", 24, ">")])]
    for m in metrics:
        if (base, m) not in summ.index:
            continue
        r = summ.loc[(base, m)]
        k = scale_of(m)
        lo, hi = r["ci_low"] * k, r["ci_high"] * k
        f = RowFormat([r["mean"] * k, lo, hi], 0.5 * (hi - lo))
        lines.append(_row([(m, 28, "<"), (METRIC_UNITS.get(m, ""), 8, "<"), (f(r["mean"] * k), 10, ">"),
                           (f"[{f(lo)}, {f(hi)}]", 24, ">")]))
    lines += ["rates in %; 95% Student-t interval over replications", ""]
    return lines


BREAKDOWN_WIDTHS: tuple[int, ...] = (22, 4, 5, 5, 21, 6, 6, 22)
"""label, recruiters, rate old/new, rate diff [CI], burn old/new, burn change [CI]: 98 columns."""


def breakdown_table(results: Results, keys: tuple[str, ...] = BREAKDOWN_TABLE_KEYS) -> list[str]:
    """Who wins and who loses: paired differences per recruiter subgroup."""
    bc = results.breakdown_comparison
    if bc.empty:
        return []
    wl, wn, wb, wp, wd, wcb, wcp, wcc = BREAKDOWN_WIDTHS
    lines: list[str] = []
    base = results.baseline
    for pol in bc["policy"].drop_duplicates():
        lines.append(f"who wins, who loses: {pol} - {base} per recruiter subgroup (paired, 95% CI, "
                     "* = significant at 5%)")
        lines.append(_row([("", wl + wn + 1, "<"), ("response rate, %", wb + wp + wd + 2, "<"),
                           ("net credit burn per recruiter, credits", wcb + wcp + wcc + 2, "<")]))
        for by in keys:
            sub = bc[(bc["policy"] == pol) & (bc["by"] == by)]
            if sub.empty:
                continue
            lines.append(_row([(by, wl, "<"), ("n", wn, ">"), (_short(base, wb), wb, ">"),
                               (_short(pol, wp), wp, ">"), ("diff pp [95% CI]", wd, "<"),
                               (_short(base, wcb), wcb, ">"), (_short(pol, wcp), wcp, ">"),
                               ("change [95% CI]", wcc, "<")]))
            for label in sub["label"].drop_duplicates():
                rows = sub[sub["label"] == label].set_index("metric")
                lines.append(_row([
                    (_short(str(label), wl), wl, "<"), (num(_get(rows, "recruiters", "baseline_mean")), wn, ">"),
                    *_rate_cells(rows, (wb, wp, wd)), *_burn_cells(rows, (wcb, wcp, wcc)),
                ]))
        lines.append("n = recruiters in the group (mean over replications)")
        lines.append("")
    return lines


def _get(rows: pd.DataFrame, metric: str, col: str) -> float:
    return float(rows.loc[metric, col]) if metric in rows.index else math.nan


def _rate_cells(rows: pd.DataFrame, widths: tuple[int, int, int]) -> list[tuple[str, int, str]]:
    wb, wp, wd = widths
    if "response_rate" not in rows.index:
        return [("n/a", wb, ">"), ("n/a", wp, ">"), ("n/a", wd, "<")]
    r = rows.loc["response_rate"]
    lo, hi = 100 * r["ci_low"], 100 * r["ci_high"]
    f = RowFormat([100 * r["diff"], lo, hi], 0.5 * (hi - lo))
    sig = "*" if bool(r["significant"]) else ""
    return [(f"{100 * r['baseline_mean']:.1f}", wb, ">"), (f"{100 * r['policy_mean']:.1f}", wp, ">"),
            (f"{f(100 * r['diff'], True):>5} {f.interval(lo, hi)}{sig}", wd, "<")]


def _burn_cells(rows: pd.DataFrame, widths: tuple[int, int, int]) -> list[tuple[str, int, str]]:
    wb, wp, wc = widths
    m = "net_credit_burn_per_recruiter"
    if m not in rows.index:
        return [("n/a", wb, ">"), ("n/a", wp, ">"), ("n/a", wc, "<")]
    r = rows.loc[m]
    sig = "*" if bool(r["significant"]) else ""
    if math.isfinite(r["rel_change"]):
        change = f"{pct(r['rel_change']):>5} [{pct(r['rel_ci_low'])}, {pct(r['rel_ci_high'])}]{sig}"
    else:
        change = f"{num(r['diff'], True)} {ci(r['ci_low'], r['ci_high'])}{sig}"
    return [(num(r["baseline_mean"]), wb, ">"), (num(r["policy_mean"]), wp, ">"), (change, wc, "<")]


def format_results(results: Results, width: int = 100) -> str:
    """The whole printed report: header, comparison, pairing gain, subgroups, precision outcome."""
    sc = results.scenario
    head = [
        f"scenario {sc.name}: {sc.run.horizon_days} days from {sc.run.start_date.isoformat()}, "
        f"{results.n_replications} paired replications per policy, root seed {sc.root_seed}",
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
