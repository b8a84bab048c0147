"""Checking a new run's statistics against a stored baseline: exact or statistical, row by row.

* ``exact``: same seed, replications and versions -> every stored number must be reproduced up
  to float round-off (:data:`EXACT_RTOL`); otherwise :class:`ExactNotApplicableError`.
* ``statistical``: any seed, any version.  Each difference ``now - stored`` is divided by its
  standard error and tested with a two-sided Welch t-test; the p-values are Holm-corrected over
  all tested rows (family-wise false-alarm rate ``alpha``).  Rows with no spread in either run are
  compared exactly instead.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from simulator.experiments.baseline_file import (
    DEFAULT_ALPHA,
    EXACT_ATOL,
    EXACT_RTOL,
    EXACT_VERSIONS,
    MODES,
    Baseline,
    BaselineError,
    ExactNotApplicableError,
    ScenarioChangedError,
    Stat,
)
from simulator.experiments.power import (
    HEADLINE_METRICS,
    detectable_effect,
    mde_table,
    render_mde,
    row_alpha,
    welch_dof,
)


@dataclass
class CheckReport:
    """The outcome of a check: one row per (row, metric) and a verdict.

    ``rows`` columns: ``row`` (policy or ``"new - old"``), ``metric``, ``stored``, ``now``, ``diff``,
    ``se`` (combined standard error), ``z`` (difference in standard errors), ``p_adj`` (Holm-adjusted
    p-value; NaN where compared exactly), ``verdict``, ``regression`` (bool) and ``mde`` (the smallest
    true difference the statistical check flags with 80% power, :mod:`simulator.experiments.power`).
    """

    mode: str
    alpha: float
    stored: Baseline
    now: Baseline
    rows: pd.DataFrame
    notes: list[str]

    @property
    def ok(self) -> bool:
        """True when no row is a regression."""
        return not bool(self.rows["regression"].any())

    @property
    def regressions(self) -> pd.DataFrame:
        """The rows that moved."""
        return self.rows[self.rows["regression"]].reset_index(drop=True)

    @property
    def tested(self) -> int:
        """Number of rows given a statistical test (the Holm family)."""
        return int(self.rows["p_adj"].notna().sum())

    def render(self, only_failures: bool = False) -> str:
        """The table printed by ``inmail-sim baseline check``."""
        return render_report(self, only_failures)


def _same(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= EXACT_ATOL + EXACT_RTOL * max(abs(a), abs(b))


def _welch_p(diff: float, a: Stat, b: Stat) -> tuple[float, float]:
    """(combined se, two-sided Welch t-test p-value) of a difference of two independent means."""
    va, vb = a.se**2, b.se**2
    se = math.sqrt(va + vb)
    dof = welch_dof(va, vb, a.n, b.n)
    return se, float(2.0 * stats.t.sf(abs(diff) / se, dof))


def holm(p: Sequence[float]) -> np.ndarray:
    """Holm step-down adjusted p-values (reject where adjusted p <= alpha; family-wise error <= alpha)."""
    arr = np.asarray(p, dtype=np.float64)
    m = arr.size
    order = np.argsort(arr, kind="stable")
    adj = np.empty(m)
    running = 0.0
    for k, i in enumerate(order):
        running = max(running, min(1.0, (m - k) * arr[i]))
        adj[i] = running
    return adj


def _pairs(stored: Baseline, now: Baseline) -> Iterable[tuple[str, str, Stat | None, Stat | None]]:
    for row, metrics in stored.stats.items():
        for m, s in metrics.items():
            yield row, m, s, now.stats.get(row, {}).get(m)
    for row, metrics in now.stats.items():
        for m, s in metrics.items():
            if m not in stored.stats.get(row, {}):
                yield row, m, None, s


def compare_baselines(stored: Baseline, now: Baseline, mode: str = "statistical", alpha: float = DEFAULT_ALPHA,
                      allow_changed_scenario: bool = False, allow_missing: bool = False) -> CheckReport:
    """Compare the statistics of a new run (``now``) with a stored baseline, metric by metric.

    Rows the stored file should hold but lacks (:meth:`Baseline.missing`: deleted from the file)
    fail the check, or are listed as skipped with ``allow_missing``.
    """
    if mode not in MODES:
        raise BaselineError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if not 0.0 < alpha < 1.0:
        raise BaselineError(f"alpha (the family-wise false-alarm rate) must be in (0, 1), got {alpha}")
    notes = _preconditions(stored, now, mode, allow_changed_scenario)
    records: list[dict[str, Any]] = []
    missing = set(stored.missing())
    for row, metric, s, n in _pairs(stored, now):
        if s is None and (row, metric) in missing:
            continue  # listed below, as missing from the file
        rec: dict[str, Any] = {"row": row, "metric": metric, "stored": s.mean if s else math.nan,
                               "now": n.mean if n else math.nan, "diff": math.nan, "se": math.nan,
                               "z": math.nan, "p": math.nan}
        if s is None or n is None:
            rec["verdict"] = "new (not compared)" if s is None else "MISSING now"
            rec["regression"] = s is not None
        else:
            rec["diff"] = n.mean - s.mean
            rec.update(_judge(s, n, mode))
        records.append(rec)
    records += _missing_records(stored, now, allow_missing)
    rows = pd.DataFrame(records, columns=["row", "metric", "stored", "now", "diff", "se", "z", "p", "verdict",
                                          "regression"])
    tested = rows["p"].notna().to_numpy()
    rows["p_adj"] = math.nan
    if tested.any():
        rows.loc[tested, "p_adj"] = holm(rows.loc[tested, "p"].to_numpy())
        flagged = tested & (rows["p_adj"].to_numpy() <= alpha)
        rows.loc[tested, "verdict"] = np.where(flagged[tested], "REGRESSION", "ok")
        rows.loc[tested, "regression"] = flagged[tested]
    rows["regression"] = rows["regression"].astype(bool)
    alpha_row = row_alpha(alpha, int(tested.sum()))
    rows["mde"] = [_row_mde(stored, now, r, m, alpha_row) for r, m in zip(rows["row"], rows["metric"], strict=True)]
    rows = rows.drop(columns="p")[["row", "metric", "stored", "now", "diff", "se", "z", "p_adj", "verdict",
                                   "regression", "mde"]]
    return CheckReport(mode=mode, alpha=alpha, stored=stored, now=now, rows=rows,
                       notes=notes + _missing_notes(stored, allow_missing))


MISSING_IN_FILE = "MISSING in file"
"""Verdict of a row the baseline file should hold but lacks (a failure unless allowed)."""

SKIPPED = "skipped (not in file)"
"""Verdict of such a row with ``allow_missing``."""


def _missing_records(stored: Baseline, now: Baseline, allow_missing: bool) -> list[dict[str, Any]]:
    out = []
    for row, metric in stored.missing():
        n = now.stats.get(row, {}).get(metric)
        out.append({"row": row, "metric": metric, "stored": math.nan, "now": n.mean if n else math.nan,
                    "diff": math.nan, "se": math.nan, "z": math.nan, "p": math.nan,
                    "verdict": SKIPPED if allow_missing else MISSING_IN_FILE, "regression": not allow_missing})
    return out


def _missing_notes(stored: Baseline, allow_missing: bool) -> list[str]:
    missing = stored.missing()
    if not missing:
        return []
    where = stored.source or "the baseline"
    names = ", ".join(f"{r}:{m}" for r, m in missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5
                                                                else "")
    if allow_missing:
        return [f"note: {len(missing)} rows are missing from {where} and were skipped (--allow-missing): {names}"]
    return [f"MISSING: {where} lacks {len(missing)} rows that it should hold ({names}): the file was edited or "
            "damaged. Save it again (inmail-sim baseline save), or add --allow-missing to check only the rows "
            "it has"]


def _row_mde(stored: Baseline, now: Baseline, row: str, metric: str, alpha_row: float) -> float:
    """The row's minimum detectable effect at the check's per-row level (NaN when a side is missing)."""
    s, n = stored.stats.get(row, {}).get(metric), now.stats.get(row, {}).get(metric)
    return math.nan if s is None or n is None else detectable_effect(s, n, alpha_row)


def _judge(s: Stat, n: Stat, mode: str) -> dict[str, Any]:
    """Exact verdicts, or the p-value of a statistical test (the verdict is set after Holm's correction)."""
    diff = n.mean - s.mean
    if mode == "exact":
        same = _same(s.mean, n.mean) and _same(s.se, n.se) and s.n == n.n
        return {"verdict": "ok" if same else "REGRESSION", "regression": not same}
    if n.n < 2 or s.n < 2 or math.isnan(s.se) or math.isnan(n.se):
        raise BaselineError("statistical mode needs a standard error on both sides: at least 2 replications")
    if s.se == 0.0 and n.se == 0.0:  # no Monte Carlo spread: the value is fixed by the scenario
        same = _same(s.mean, n.mean)
        return {"verdict": "ok (no spread)" if same else "REGRESSION (no spread)", "regression": not same,
                "z": 0.0 if same else math.copysign(math.inf, diff)}
    se, p = _welch_p(diff, s, n)
    return {"se": se, "z": diff / se, "p": p, "verdict": "", "regression": False}


def _preconditions(stored: Baseline, now: Baseline, mode: str, allow_changed_scenario: bool) -> list[str]:
    """Refuse a changed scenario / an inapplicable exact mode; return notes for the report."""
    notes: list[str] = []
    where = stored.source or "the baseline"
    if stored.scenario_hash != now.scenario_hash:
        msg = (f"the scenario changed since {where} was saved (scenario hash {stored.scenario_hash[:12]} -> "
               f"{now.scenario_hash[:12]}): the scenario file, a file it extends or the overrides differ")
        if not allow_changed_scenario:
            raise ScenarioChangedError(msg + "; save a new baseline, or allow it (--allow-changed-scenario) to "
                                        "measure what the change did")
        notes.append("WARNING: " + msg + "; compared anyway (--allow-changed-scenario)")
    elif stored.config_hash and stored.config_hash != now.config_hash:
        notes.append("note: the scenario is unchanged but builds different config objects (a preset or a default "
                      "in the package changed since the baseline was saved)")
    if set(stored.policies) != set(now.policies):
        notes.append(f"note: policies differ: stored {', '.join(stored.policies)}; now {', '.join(now.policies)}")
    differ = _setting_differences(stored, now)
    if mode == "exact" and differ:
        raise ExactNotApplicableError(
            f"exact mode does not apply: {'; '.join(differ)}. Exact mode needs the same seed, replications and "
            f"versions ({', '.join(EXACT_VERSIONS)}); use statistical mode (--mode statistical), which allows them "
            "to differ")
    if mode == "statistical" and differ:
        notes.append("differs from the stored run: " + "; ".join(differ))
    return notes


def _setting_differences(stored: Baseline, now: Baseline) -> list[str]:
    out = []
    if stored.root_seed != now.root_seed:
        out.append(f"seed {now.root_seed} (stored {stored.root_seed})")
    if stored.replications != now.replications:
        out.append(f"{now.replications} replications (stored {stored.replications})")
    for key in EXACT_VERSIONS:
        a, b = stored.versions.get(key), now.versions.get(key)
        if a != b:
            out.append(f"{key} {b} (stored {a})")
    return out


# --------------------------------------------------------------------------- the table


def _fmt(x: float) -> str:
    if isinstance(x, float) and math.isnan(x):
        return "-"
    return f"{x:.6g}"


def _fmt_z(x: float) -> str:
    if math.isnan(x):
        return "-"
    if math.isinf(x):
        return "+inf" if x > 0 else "-inf"
    return f"{x:+.2f}"


def _fmt_p(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.3g}"


def render_report(report: CheckReport, only_failures: bool = False) -> str:
    """Header (what was compared, how), the table (metric, stored, now, difference in se, verdict), the verdict."""
    s, n = report.stored, report.now
    lines = [f"baseline check of scenario {n.scenario} against {s.source or 'the stored baseline'} "
             f"({report.mode} mode)",
             f"  stored: seed {s.root_seed}, {s.replications} replications, inmail-sim "
             f"{s.versions.get('inmail_sim')}, numpy {s.versions.get('numpy')}, saved {s.created or '?'}",
             f"  now:    seed {n.root_seed}, {n.replications} replications, inmail-sim "
             f"{n.versions.get('inmail_sim')}, numpy {n.versions.get('numpy')}"]
    if report.mode == "statistical":
        text = (f"test: two-sided Welch t-test of diff/se = (now - stored) / sqrt(se_stored^2 + se_now^2) per "
                f"row, Holm-corrected over {report.tested} rows: family-wise false-alarm rate {report.alpha:.3g}; "
                f"rows with no spread in either run are compared exactly (rtol {EXACT_RTOL:g})")
    else:
        text = f"exact: every mean and standard error must match to rtol {EXACT_RTOL:g}"
    for note in [text, *report.notes]:
        lines.append(textwrap.fill(note, 100, initial_indent="  ", subsequent_indent="    "))
    rows = report.regressions if only_failures else report.rows
    if not rows.empty:
        table = [("policy", "metric", "stored", "now", "diff/se", "p_adj", "verdict")]
        table += [(r.row, r.metric, _fmt(r.stored), _fmt(r.now), _fmt_z(r.z), _fmt_p(r.p_adj), r.verdict)
                  for r in rows.itertuples(index=False)]
        widths = [max(len(t[i]) for t in table) for i in range(len(table[0]))]
        right = {2, 3, 4, 5}
        lines.append("")
        for t in table:
            cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(t, widths, strict=True))]
            lines.append("  ".join(cells).rstrip())
    if report.mode == "statistical" and not only_failures:
        table = mde_table(s.stats, n.stats, report.alpha, HEADLINE_METRICS)
        lines += ["", render_mde(table, report.alpha, report.tested)]
    bad = report.regressions
    lost = bad[bad["verdict"] == MISSING_IN_FILE]
    bad = bad[bad["verdict"] != MISSING_IN_FILE]
    lines.append("")
    if not lost.empty:
        lines.append(f"MISSING: {len(lost)} of {len(report.rows)} rows are not in {s.source or 'the baseline file'}"
                     " (--allow-missing to skip them)")
    if bad.empty and lost.empty:
        skipped = int((report.rows["verdict"] == SKIPPED).sum())
        lines.append(f"OK: none of {len(report.rows) - skipped} rows moved beyond "
                     + ("float round-off" if report.mode == "exact" else "Monte Carlo noise")
                     + (f" ({skipped} rows not in the file skipped)" if skipped else ""))
    elif not bad.empty:
        worst = ", ".join(f"{r.row}:{r.metric}" for r in bad.head(5).itertuples(index=False))
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        lines.append(f"REGRESSION: {len(bad)} of {len(report.rows)} rows moved ({worst}{more})")
    return "\n".join(lines)
