"""Plain-text tables of a run across plausible worlds (what ``inmail-sim run --worlds`` prints; <= 100 columns).

Each difference is shown with its Monte Carlo interval *and* its range across worlds, never one for the
other: the first shrinks as the run grows, the second is the assumption uncertainty and does not.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pandas as pd

from simulator.core.metrics import CURRENT_METRICS
from simulator.io.tables import MISSING, RowFormat, compact_interval, num, scale_of

if TYPE_CHECKING:
    from simulator.experiments.world_study import WorldResults

WORLDS_WIDTHS: tuple[int, ...] = (21, 8, 16, 16, 16, 9, 8)
"""metric, diff, 95% MC CI, 80% of worlds, 95% of worlds, P(better), MC share: 100 columns with spaces."""

WORLDS_NOTE = (
    "diff: mean over the worlds of the paired difference (rates in points). MC CI: 95% Monte Carlo\n"
    "interval of that mean (narrows with more worlds and replications). 80%/95% of worlds: where the\n"
    "difference lies across the plausible worlds - the assumption uncertainty, which more runs do not\n"
    "remove. P(better): share of worlds where the policy is better (n/a: the metric has no better\n"
    "direction). MC share: share of one replication's variance of the difference that is Monte Carlo."
)


def _row(cells: list[tuple[str, int, str]]) -> str:
    return " ".join(f"{text:{align}{w}}" for text, w, align in cells).rstrip()


def _short(name: str, width: int) -> str:
    return name if len(name) <= width else name[: width - 2] + ".."


def _interval(number: RowFormat, low: float, high: float, width: int) -> str:
    if not (math.isfinite(low) and math.isfinite(high)):
        return MISSING
    for text in (number.interval(low, high), compact_interval(low, high)):
        if len(text) <= width:
            return text
    return f"[{_sig3(low)}, {_sig3(high)}]"


def _sig3(value: float) -> str:
    """A signed number in three significant digits with a k/M suffix (the narrowest form of a bound)."""
    for limit, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:+.3g}{suffix}"
    return f"{value:+.3g}"


def _share(value: float) -> str:
    return MISSING if not math.isfinite(value) else f"{value * 100:.0f}%"


def worlds_table(res: WorldResults, metrics: tuple[str, ...] = CURRENT_METRICS) -> list[str]:
    """One block per non-baseline policy: each metric's difference with its MC CI and its range across worlds."""
    table = res.worlds_comparison
    sc = res.scenario
    plan = res.plan
    w_metric, w_diff, w_ci, w_80, w_95, w_p, w_share = WORLDS_WIDTHS
    lines: list[str] = []
    if len(sc.policy_names) < 2:
        return [f"one policy ({sc.baseline}) across {plan.count} plausible worlds: no difference to report", ""]
    for policy in [p for p in sc.policy_names if p != sc.baseline]:
        rows = table[table["policy"] == policy].set_index("metric")
        lines.append(f"{policy} vs {sc.baseline} (baseline) across {plan.count} plausible worlds x {plan.per_world} "
                     f"replications (worlds: {plan.world_set.source})")
        lines.append(_row([("metric", w_metric, "<"), ("diff", w_diff, ">"), ("95% MC CI", w_ci, ">"),
                           ("80% of worlds", w_80, ">"), ("95% of worlds", w_95, ">"), ("P(better)", w_p, ">"),
                           ("MC share", w_share, ">")]))
        for metric in metrics:
            if metric not in rows.index:
                continue
            row = rows.loc[metric]
            k = scale_of(metric)
            diff, lo, hi, q10, q90, q025, q975 = (float(row[c]) * k for c in (
                "diff_mean", "mc_ci_low", "mc_ci_high", "worlds_q10", "worlds_q90", "worlds_q025", "worlds_q975"))
            number = RowFormat([diff, lo, hi, q025, q975], 0.5 * (hi - lo))
            p = float(row["p_better"])
            lines.append(_row([
                (_short(metric, w_metric), w_metric, "<"), (number(diff, True), w_diff, ">"),
                (_interval(number, lo, hi, w_ci), w_ci, ">"), (_interval(number, q10, q90, w_80), w_80, ">"),
                (_interval(number, q025, q975, w_95), w_95, ">"),
                (MISSING if not math.isfinite(p) else f"{p:.2f}", w_p, ">"),
                (_share(float(row["mc_share"])), w_share, ">"),
            ]))
        lines += [WORLDS_NOTE, ""]
    return lines


def robustness_table(res: WorldResults) -> list[str]:
    """Regret of every policy on the headline metrics, then the satisficing shares (if a decision: block)."""
    table = res.robustness
    if table.empty:
        return []
    lines = [f"Robustness across {res.plan.count} worlds: regret = how far a policy falls short of the best policy "
             "of each world",
             _row([("metric", 28, "<"), ("policy", 16, "<"), ("mean", 10, ">"), ("90th pct", 10, ">"),
                   ("max", 10, ">")])]
    regret = table[table["measure"] == "regret"]
    for metric in regret["metric"].drop_duplicates():
        k = scale_of(metric)
        for policy, part in regret[regret["metric"] == metric].groupby("policy", sort=False):
            value = part.set_index("statistic")["value"]
            lines.append(_row([(_short(metric, 28), 28, "<"), (_short(str(policy), 16), 16, "<"),
                               *((num(float(value[s]) * k), 10, ">") for s in ("mean", "q90", "max"))]))
    lines.append("(rates in points; 0 = the best policy in every world)")
    lines += _satisficing_lines(table[table["measure"] == "satisficing"], res.plan.count)
    return [*lines, ""]


SATISFICING_NOTE = "[..]: 95% Wilson interval of the share of worlds where a policy meets them all"


def _satisficing_lines(table: pd.DataFrame, worlds: int) -> list[str]:
    if table.empty:
        return ["no decision: block, so no satisficing shares (add requirements such as response_rate >= 0.2)"]
    lines = ["", f"Satisficing: share of the {worlds} worlds where a policy meets each requirement (per-world means)",
             _row([("policy", 16, "<"), ("requirement", 48, "<"), ("share of worlds", 22, ">")])]
    for (policy, requirement), part in table.groupby(["policy", "metric"], sort=False):
        value = part.set_index("statistic")["value"]
        text = f"{value['share']:.2f}"
        if "ci_low" in value.index:
            text += f" [{value['ci_low']:.2f}, {value['ci_high']:.2f}]"
        lines.append(_row([(_short(str(policy), 16), 16, "<"), (_short(str(requirement), 48), 48, "<"),
                           (text, 22, ">")]))
    return [*lines, SATISFICING_NOTE]


def format_worlds(res: WorldResults) -> str:
    """Everything ``inmail-sim run --worlds`` prints."""
    return "\n".join([*worlds_table(res), *robustness_table(res)]).rstrip() + "\n"
