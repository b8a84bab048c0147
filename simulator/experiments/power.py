"""The power of a baseline check: the smallest change it detects, and the replications a wanted one needs.

The statistical check (:mod:`simulator.experiments.baseline_check`) tests each row's difference
``now - stored`` with a two-sided Welch t-test on ``se = sqrt(se_stored^2 + se_now^2)`` and
Holm-corrects over the ``m`` tested rows.  Holm's first (strictest) step rejects a row when its
p-value is below ``alpha / m``; when a single row moved - the case the correction is built for -
that row is the smallest p-value and must pass exactly this step, and when several rows moved the
later steps are looser.  So the per-row level ``alpha_row = alpha / m`` gives the check's power on
one row, and an MDE computed with it is an upper bound (conservative) for a change that moves
several rows.

The minimum detectable effect at power ``1 - beta`` (80%) is the usual normal-approximation bound,
with Student-t quantiles at Welch's degrees of freedom ``dof`` for small samples::

    MDE = (t_{1 - alpha_row/2, dof} + t_{1 - beta, dof}) * sqrt(se_stored^2 + se_now^2)

(a true difference of MDE puts the test statistic's centre ``t_{1-beta}`` above the critical value,
so it exceeds it with probability ~ ``1 - beta``; the opposite tail adds < alpha_row/2).  Rows with
no spread in either run are compared exactly: any change is detected (MDE 0).

Solving for ``n`` (both runs with ``n`` replications and per-replication standard deviation ``sd``:
``se^2 = 2 sd^2 / n``, ``dof = 2 (n - 1)``) has the t quantiles on both sides, so
:func:`replications_needed` starts from the normal answer and steps to the smallest ``n`` whose MDE
is at most the wanted effect (the MDE decreases with ``n``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
from scipy import stats

from simulator.experiments.baseline_file import DIFF_SEP, BaselineError, Stat
from simulator.experiments.statistics import t_quantile_dof

POWER = 0.8
"""The power the MDE is quoted at: the chance the check flags a true change of that size."""

HEADLINE_METRICS: tuple[str, ...] = ("response_rate", "net_credit_burn", "sent", "responses", "credits_per_response")
"""The metrics whose MDE ``baseline save`` and ``baseline check`` print."""

MAX_REPLICATIONS = 10_000_000
"""Above this many replications :func:`replications_needed` gives up (the effect is not detectable)."""

Stats = Mapping[str, Mapping[str, Stat]]
"""Row (a policy or ``"new - old"``) -> metric -> :class:`Stat`, as in a baseline."""


def welch_dof(va: float, vb: float, na: int, nb: int) -> float:
    """Welch-Satterthwaite degrees of freedom of a difference of two means with squared standard errors va, vb."""
    den = (va**2 / (na - 1) if na > 1 else 0.0) + (vb**2 / (nb - 1) if nb > 1 else 0.0)
    return (va + vb) ** 2 / den if den > 0 else math.inf


def row_alpha(alpha: float, tested: int) -> float:
    """The per-row level of the Holm-corrected check: Holm's first step, ``alpha / m``."""
    return alpha / max(int(tested), 1)


def holm_family_size(stored: Stats, now: Stats | None = None) -> int:
    """The size of the check's Holm family: rows with a standard error > 0 in either run."""
    now = stored if now is None else now
    return sum(1 for row, ms in stored.items() for m, s in ms.items()
               if m in now.get(row, {}) and (s.se > 0 or now[row][m].se > 0))


def _quantiles(alpha_row: float, power: float, dof: float) -> float:
    """``t_{1 - alpha_row/2, dof} + t_{power, dof}`` (normal quantiles for infinite dof)."""
    if math.isinf(dof):
        return float(stats.norm.ppf(1.0 - alpha_row / 2.0) + stats.norm.ppf(power))
    return float(t_quantile_dof(dof, 1.0 - alpha_row) + t_quantile_dof(dof, 2.0 * power - 1.0))


def detectable_effect(stored: Stat, now: Stat, alpha_row: float, power: float = POWER) -> float:
    """The MDE of one row: the true difference the check flags with probability ``power``.

    0 for a row with no spread in either run (compared exactly); NaN without standard errors.
    """
    if stored.n < 2 or now.n < 2 or math.isnan(stored.se) or math.isnan(now.se):
        return math.nan
    va, vb = stored.se**2, now.se**2
    if va + vb == 0.0:
        return 0.0
    return _quantiles(alpha_row, power, welch_dof(va, vb, stored.n, now.n)) * math.sqrt(va + vb)


def level_of(stats_: Stats, row: str, metric: str) -> float:
    """The size of the metric a relative change refers to: the row's mean; for ``new - old``, old's mean."""
    _, sep, base = row.partition(DIFF_SEP)
    source = stats_.get(base if sep else row, {}).get(metric)
    return math.nan if source is None else source.mean


def mde_table(stored: Stats, now: Stats | None, alpha: float, metrics: Sequence[str] = HEADLINE_METRICS,
              power: float = POWER) -> pd.DataFrame:
    """Per row and headline metric: ``level``, ``mde`` (absolute) and ``relative`` (mde / |level|).

    ``now`` None: a check with the stored replications and spread (what ``baseline save`` prints).
    """
    alpha_row = row_alpha(alpha, holm_family_size(stored, now))
    records = []
    for row, ms in stored.items():
        for metric in metrics:
            s = ms.get(metric)
            n = s if now is None else now.get(row, {}).get(metric)
            if s is None or n is None:
                continue
            level = level_of(stored, row, metric)
            mde = detectable_effect(s, n, alpha_row, power)
            rel = mde / abs(level) if level and math.isfinite(level) else math.nan
            records.append({"row": row, "metric": metric, "level": level, "mde": mde, "relative": rel})
    return pd.DataFrame(records, columns=["row", "metric", "level", "mde", "relative"])


def _fmt_mde(mde: float, rel: float) -> str:
    if math.isnan(mde):
        return "-"
    if mde == 0.0:
        return "exact"
    if not math.isfinite(rel):
        return f"{mde:.3g}"
    pct = 100.0 * rel
    return f"{mde:.3g} ({pct:.2g}%)" if pct < 10 else f"{mde:.3g} ({pct:.0f}%)"


def render_mde(table: pd.DataFrame, alpha: float, tested: int, power: float = POWER) -> str:
    """The block printed under ``baseline save`` / ``baseline check``: one line per row, one column per metric."""
    lines = [f"smallest change the check detects with {power:.0%} power (MDE; alpha {alpha:g} Holm-corrected over "
             f"{tested} rows -> {row_alpha(alpha, tested):.3g} per row; % of the level):"]
    if table.empty:
        return lines[0] + " none of the headline metrics is stored"
    metrics = list(dict.fromkeys(table["metric"]))
    cells = [["row", *metrics]]
    for row, group in table.groupby("row", sort=False):
        by = {r.metric: _fmt_mde(r.mde, r.relative) for r in group.itertuples(index=False)}
        cells.append([str(row), *[by.get(m, "-") for m in metrics]])
    widths = [max(len(c[i]) for c in cells) for i in range(len(cells[0]))]
    for c in cells:
        lines.append("  " + "  ".join(x.ljust(w) if i == 0 else x.rjust(w)
                                      for i, (x, w) in enumerate(zip(c, widths, strict=True))).rstrip())
    return "\n".join(lines)


# --------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class Detect:
    """A wanted sensitivity: ``value`` in metric units (``absolute``), percentage points or a relative share."""

    value: float
    kind: str
    text: str

    def absolute(self, level: float) -> float:
        """The wanted change in metric units for a metric at ``level``."""
        if self.kind == "relative":
            return self.value * abs(level)
        return self.value / 100.0 if self.kind == "pp" else self.value


_DETECT = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(pp|%)?\s*$")


def parse_detect(text: str, metric: str) -> Detect:
    """``0.1pp`` (percentage points, rates only), ``2%`` (relative to the level) or ``0.003`` (metric units)."""
    match = _DETECT.match(text)
    if not match or not float(match.group(1)) > 0:
        raise BaselineError(f"--detect {text!r}: give a positive change: 0.1pp (percentage points of a rate), "
                            "2% (relative to the metric's level) or a plain number in the metric's units")
    value, unit = float(match.group(1)), match.group(2)
    if unit == "pp" and not metric.endswith("_rate"):
        raise BaselineError(f"--detect {text!r}: percentage points apply to rates (response_rate, acceptance_rate), "
                            f"not {metric}; give 2% or a plain number")
    if unit == "%" and value >= 100:
        raise BaselineError(f"--detect {text!r}: a relative change must be below 100%")
    return Detect(value / 100.0 if unit == "%" else value, {"pp": "pp", "%": "relative", None: "absolute"}[unit],
                  text.strip())


def _mde_at(n: int, sd: float, alpha_row: float, power: float, stored: Stat | None) -> float:
    now = Stat(0.0, sd / math.sqrt(n), n)
    return detectable_effect(now if stored is None else stored, now, alpha_row, power)


def replications_needed(detect: float, sd: float, alpha_row: float, power: float = POWER,
                        stored: Stat | None = None) -> int | None:
    """The smallest ``n`` >= 2 whose MDE is at most ``detect``; None if no ``n`` up to the cap reaches it.

    ``stored`` None: both runs (a new baseline and the check) have ``n`` replications; else the check
    runs ``n`` against the fixed stored row (whose own standard error may already be too large).
    """
    if sd == 0.0:
        return 2
    if not (math.isfinite(sd) and detect > 0):
        return None
    if stored is not None and _quantiles(alpha_row, power, math.inf) * stored.se >= detect:
        return None
    z = _quantiles(alpha_row, power, math.inf)
    n = max(2, math.ceil(2.0 * (z * sd / detect) ** 2))  # the normal answer for two runs of n
    while n < MAX_REPLICATIONS and _mde_at(n, sd, alpha_row, power, stored) > detect:
        n = max(n + 1, math.ceil(n * 1.05))  # t quantiles: the normal answer is a lower bound
    if n >= MAX_REPLICATIONS:
        return None
    low = 2
    while low < n:  # smallest n with MDE(n) <= detect (MDE decreases with n)
        mid = (low + n) // 2
        if _mde_at(mid, sd, alpha_row, power, stored) <= detect:
            n = mid
        else:
            low = mid + 1
    return n


def plan_table(stats_: Stats, metric: str, detect: Detect, alpha: float, tested: int, against: bool = False,
               power: float = POWER) -> pd.DataFrame:
    """Per row of ``metric``: level, per-replication sd, the wanted change and the replications it needs.

    ``n_new``: replications of both a new baseline and the check; with ``against``, ``n_check``: of a
    check against the stored rows as they are (None: out of reach without a new baseline).
    """
    alpha_row = row_alpha(alpha, tested)
    records = []
    for row, ms in stats_.items():
        s = ms.get(metric)
        if s is None or s.n < 2 or math.isnan(s.se):
            continue
        level = level_of(stats_, row, metric)
        wanted = detect.absolute(level)
        sd = s.se * math.sqrt(s.n)
        rec = {"row": row, "level": level, "sd": sd, "detect": wanted,
               "n_new": replications_needed(wanted, sd, alpha_row, power)}
        if against:
            rec["n_check"] = replications_needed(wanted, sd, alpha_row, power, stored=s)
        records.append(rec)
    return pd.DataFrame(records)


def _missing(n: object) -> bool:
    return n is None or (isinstance(n, float) and math.isnan(n))


def _fmt_n(n: object) -> str:
    return "out of reach" if _missing(n) else str(int(n))  # type: ignore[call-overload]


def render_plan(table: pd.DataFrame, metric: str, detect: Detect, alpha: float, tested: int, source: str,
                power: float = POWER) -> str:
    """What ``baseline plan`` prints: the spread it used, per row the replications needed, and the answer."""
    alpha_row = row_alpha(alpha, tested)
    lines = [f"replications to detect a change of {detect.text} in {metric} with {power:.0%} power "
             f"(alpha {alpha:g} Holm-corrected over {tested} rows -> {alpha_row:.3g} per row; two-sided Welch test)",
             f"  spread per replication estimated from {source}",
             "  MDE = (t_{1-alpha_row/2,dof} + t_{power,dof}) * sqrt(se_stored^2 + se_now^2), se = sd / sqrt(n)", ""]
    against = "n_check" in table.columns
    head = ["row", "level", "sd/replication", "change", "n (new baseline and check)"]
    head += ["n (check against the file)"] if against else []
    cells = [head]
    for r in table.to_dict("records"):
        cells.append([str(r["row"]), f"{r['level']:.4g}", f"{r['sd']:.4g}", f"{r['detect']:.4g}",
                      _fmt_n(r["n_new"])] + ([_fmt_n(r["n_check"])] if against else []))
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    for c in cells:
        lines.append("  " + "  ".join(x.ljust(w) if i == 0 else x.rjust(w)
                                      for i, (x, w) in enumerate(zip(c, widths, strict=True))).rstrip())
    needed = list(table["n_new"]) if not table.empty else []
    lines.append("")
    if not needed or any(_missing(n) for n in needed):
        lines.append("some row cannot reach this sensitivity within the replication cap; ask for a larger change")
    else:
        lines.append(f"needed: {max(int(n) for n in needed)} replications per run (save the baseline and check "
                     f"with --replications {max(int(n) for n in needed)}) to detect {detect.text} on every row")
    return "\n".join(lines)


@dataclass(frozen=True)
class ReplicationPlan:
    """The answer of ``baseline plan``: per row of ``metric`` the replications a wanted sensitivity needs."""

    table: pd.DataFrame
    metric: str
    detect: Detect
    alpha: float
    tested: int
    source: str

    @property
    def needed(self) -> int | None:
        """Replications per run so that every row detects the change (None if one cannot)."""
        ns = list(self.table["n_new"]) if not self.table.empty else []
        return None if not ns or any(_missing(n) for n in ns) else max(int(n) for n in ns)

    def render(self) -> str:
        """The printout of ``inmail-sim baseline plan``."""
        return render_plan(self.table, self.metric, self.detect, self.alpha, self.tested, self.source)
