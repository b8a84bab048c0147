"""Regression tests on summary statistics: store a run's means and standard errors, check later runs against them.

A *baseline* (a small JSON file) holds, per policy and metric, the mean over replications, its
standard error and the number of replications, plus the same for every policy's paired difference
to the scenario's baseline policy (row ``"new - old"``), together with what produced them: root
seed, package and numpy versions, the overrides and a hash of the resolved scenario.

Two ways to check a new run against it:

* ``exact``: same seed, same number of replications, same ``inmail-sim`` and numpy versions ->
  every stored number must be reproduced up to float round-off (relative 1e-9).  If the seed,
  the replications or the versions differ, exact mode does not apply: :class:`ExactNotApplicableError`
  (exit code 2 on the command line) says so and points to statistical mode.
* ``statistical``: any seed, any version.  Each difference ``now - stored`` is divided by its
  standard error ``sqrt(se_stored**2 + se_now**2)`` and tested with a two-sided Welch t-test;
  the p-values are Holm-corrected over all tested rows so that the chance of *any* false alarm
  on an unchanged model is at most ``alpha`` (default 1%).  Rows with no spread in either run
  (e.g. ``credits_granted`` with fixed seat counts) are compared exactly (relative 1e-9) instead.

A changed scenario is detected through the hash of its :data:`MODEL_KEYS` and refused
(:class:`ScenarioChangedError`) unless explicitly allowed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import platform
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from simulator.core.metrics import METRIC_NAMES
from simulator.experiments.experiment import Results, run_experiment
from simulator.experiments.provenance import git_revision, scenario_hash
from simulator.experiments.runner import Progress, atomic_write
from simulator.scenario import Scenario, load_scenario

FORMAT = "inmail-sim-baseline/1"
"""Written into every baseline file; a file with another format is refused."""

DEFAULT_ALPHA = 0.01
"""Family-wise false-alarm rate of statistical mode: P(any row flagged | nothing changed) <= alpha."""

EXACT_RTOL = 1e-9
"""Relative tolerance of exact comparisons (float round-off only)."""

EXACT_ATOL = 1e-12
"""Absolute tolerance of exact comparisons, for values that should be 0."""

MODEL_KEYS: tuple[str, ...] = ("start_date", "horizon_days", "baseline", "policies", "market")
"""Top-level scenario keys that define what is simulated: the scenario hash covers exactly these.

Left out on purpose: ``name``, ``description`` (words), ``replications``, ``max_replications`` and
``root_seed`` (how much and which randomness, recorded separately), and any experiment-control
block (sweeps and the like), which does not change what one run of the scenario computes.
"""

EXACT_VERSIONS: tuple[str, ...] = ("inmail_sim", "numpy")
"""Versions that must match for exact mode (a new numpy may draw different random numbers)."""

DIFF_SEP = " - "
"""Row label of a paired difference: ``"new - old"`` (policy names cannot contain spaces)."""

MODES: tuple[str, ...] = ("exact", "statistical")


class BaselineError(ValueError):
    """Bad input for a baseline operation (unreadable file, wrong mode, ...): exit code 2."""


class ScenarioChangedError(BaselineError):
    """The scenario resolves to something else than when the baseline was saved."""


class ExactNotApplicableError(BaselineError):
    """Exact mode was asked for but the seed, the replications or the versions differ."""


class BaselineMismatchError(AssertionError):
    """Raised by :func:`assert_matches_baseline` when a number moved; the message is the table."""


# --------------------------------------------------------------------------- fingerprints


def config_hash(scenario: Scenario) -> str:
    """SHA-256 of the config objects the scenario builds (market, policies, calendar).

    Unlike the scenario hash (:data:`MODEL_KEYS`) it also changes when a preset or a default in the package
    changes; a check reports such a change as a note (it is a model change, to be tested).
    """
    parts = [repr(scenario.market), repr([scenario.policies[p] for p in scenario.policy_names]),
             repr(scenario.baseline), repr(scenario.run)]
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()


def current_versions() -> dict[str, str]:
    """Versions of the package and of the libraries that produce its numbers."""
    import scipy

    import simulator

    return {"inmail_sim": str(simulator.__version__), "numpy": np.__version__, "scipy": scipy.__version__,
            "pandas": pd.__version__, "python": platform.python_version()}


# --------------------------------------------------------------------------- the baseline


@dataclass(frozen=True)
class Stat:
    """Mean over replications, its standard error (sd / sqrt(n)) and the number of replications."""

    mean: float
    se: float
    n: int


@dataclass(frozen=True)
class Baseline:
    """Summary statistics of one experiment and what produced them (the content of a baseline file)."""

    scenario: str
    scenario_hash: str
    config_hash: str
    root_seed: int
    replications: int
    baseline_policy: str
    policies: tuple[str, ...]
    overrides: tuple[str, ...]
    versions: dict[str, str]
    stats: dict[str, dict[str, Stat]]
    """Row (a policy, or ``"new - old"`` for a paired difference) -> metric -> :class:`Stat`."""
    scenario_file: str | None = None
    created: str = ""
    git_revision: str | None = None
    source: str | None = field(default=None, compare=False)
    """The file this baseline was read from (not stored)."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (see :func:`save_baseline`)."""
        return {
            "format": FORMAT,
            "scenario": self.scenario,
            "scenario_file": self.scenario_file,
            "scenario_hash": self.scenario_hash,
            "config_hash": self.config_hash,
            "overrides": list(self.overrides),
            "root_seed": self.root_seed,
            "replications": self.replications,
            "baseline_policy": self.baseline_policy,
            "policies": list(self.policies),
            "versions": dict(self.versions),
            "git_revision": self.git_revision,
            "created": self.created,
            "statistics": {
                row: {m: {"mean": _num(s.mean), "se": _num(s.se), "n": s.n} for m, s in metrics.items()}
                for row, metrics in self.stats.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Any, source: str | None = None) -> Baseline:
        """Parse a baseline document; :class:`BaselineError` names the file and the problem."""
        where = source or "baseline"
        if not isinstance(data, dict):
            raise BaselineError(f"{where}: not a baseline file (expected a JSON object)")
        if data.get("format") != FORMAT:
            raise BaselineError(f"{where}: format is {data.get('format')!r}; this version reads {FORMAT!r}")
        try:
            statistics = {
                str(row): {str(m): Stat(_float(s["mean"]), _float(s["se"]), int(s["n"])) for m, s in metrics.items()}
                for row, metrics in data["statistics"].items()
            }
            return cls(
                scenario=str(data["scenario"]), scenario_hash=str(data["scenario_hash"]),
                config_hash=str(data.get("config_hash", "")), root_seed=int(data["root_seed"]),
                replications=int(data["replications"]), baseline_policy=str(data["baseline_policy"]),
                policies=tuple(str(p) for p in data["policies"]), overrides=tuple(str(o) for o in data["overrides"]),
                versions={str(k): str(v) for k, v in data["versions"].items()}, stats=statistics,
                scenario_file=data.get("scenario_file"), created=str(data.get("created", "")),
                git_revision=data.get("git_revision"), source=source,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            missing = f"field {exc.args[0]!r} is missing" if isinstance(exc, KeyError) else str(exc)
            raise BaselineError(f"{where}: malformed baseline file: {missing}") from None


def _num(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _float(x: Any) -> float:
    return math.nan if x is None else float(x)


def _stat(values: np.ndarray) -> Stat:
    n = int(values.size)
    mean = float(values.mean()) if n else math.nan
    se = float(values.std(ddof=1) / math.sqrt(n)) if n >= 2 else math.nan
    return Stat(mean, se, n)


def statistics_of(results: Results, metrics: Sequence[str] = METRIC_NAMES) -> dict[str, dict[str, Stat]]:
    """Per policy and metric the mean, standard error and n; then every paired difference to the baseline."""
    reps = results.replications
    names = results.scenario.policy_names
    wide = {p: reps[reps["policy"] == p].set_index("replication").sort_index() for p in names}
    out: dict[str, dict[str, Stat]] = {
        p: {m: _stat(wide[p][m].to_numpy(dtype=np.float64)) for m in metrics} for p in names
    }
    base = wide[results.baseline]
    for p in names:
        if p == results.baseline:
            continue
        common = wide[p].index.intersection(base.index)
        out[f"{p}{DIFF_SEP}{results.baseline}"] = {
            m: _stat(wide[p].loc[common, m].to_numpy(dtype=np.float64) - base.loc[common, m].to_numpy(dtype=np.float64))
            for m in metrics
        }
    return out


def baseline_from_results(results: Results, metrics: Sequence[str] = METRIC_NAMES,
                          scenario_file: str | None = None) -> Baseline:
    """The :class:`Baseline` of an experiment's results."""
    sc = results.scenario
    unknown = [m for m in metrics if m not in results.replications.columns]
    if unknown:
        raise BaselineError(f"unknown metric(s) {', '.join(unknown)}; allowed: {', '.join(METRIC_NAMES)}")
    return Baseline(
        scenario=sc.name, scenario_hash=scenario_hash(sc, MODEL_KEYS), config_hash=config_hash(sc),
        root_seed=int(sc.root_seed), replications=results.n_replications, baseline_policy=sc.baseline,
        policies=tuple(sc.policy_names), overrides=tuple(sc.overrides), versions=current_versions(),
        stats=statistics_of(results, metrics), scenario_file=scenario_file or sc.source,
        created=dt.datetime.now().astimezone().isoformat(timespec="seconds"), git_revision=git_revision()["revision"],
    )


def save_baseline(results: Results, path: str | Path, metrics: Sequence[str] = METRIC_NAMES,
                  scenario_file: str | None = None) -> Baseline:
    """Write the baseline of ``results`` to ``path`` (JSON, written atomically); needs >= 2 replications."""
    if results.n_replications < 2:
        raise BaselineError(f"a baseline needs a standard error, so at least 2 replications (10+ recommended); "
                            f"got {results.n_replications}")
    base = baseline_from_results(results, metrics, scenario_file)
    target = Path(path)
    if target.exists() and target.is_dir():
        raise BaselineError(f"{target}: is a folder; give the baseline file name, e.g. {target / 'baseline.json'}")
    target.parent.mkdir(parents=True, exist_ok=True)
    text = dumps(base)
    atomic_write(target, lambda p: p.write_text(text, encoding="utf-8"))
    return base


def dumps(baseline: Baseline) -> str:
    """The baseline as JSON text: one line per metric, so a regenerated file diffs readably."""
    doc = baseline.to_dict()
    statistics = doc.pop("statistics")
    head = json.dumps(doc, indent=1, allow_nan=False)
    blocks = []
    for row, metrics in statistics.items():
        inner = ",\n".join(f"   {json.dumps(m)}: {json.dumps(s, allow_nan=False)}" for m, s in metrics.items())
        blocks.append(f"  {json.dumps(row)}: {{\n{inner}\n  }}")
    body = ",\n".join(blocks)
    return f'{head[:-2]},\n "statistics": {{\n{body}\n }}\n}}\n'


def load_baseline(path: str | Path) -> Baseline:
    """Read a baseline file; :class:`BaselineError` if it is missing or malformed."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BaselineError(f"{p}: baseline file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BaselineError(f"{p}: cannot read the baseline file ({exc})") from None
    return Baseline.from_dict(data, str(p))


# --------------------------------------------------------------------------- comparing


@dataclass
class CheckReport:
    """The outcome of a check: one row per (row, metric) and a verdict.

    ``rows`` columns: ``row`` (policy or ``"new - old"``), ``metric``, ``stored``, ``now``, ``diff``,
    ``se`` (combined standard error), ``z`` (difference in standard errors), ``p_adj`` (Holm-adjusted
    p-value; NaN where compared exactly), ``verdict`` and ``regression`` (bool).
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
    dof = (va + vb) ** 2 / ((va**2 / (a.n - 1) if a.n > 1 else 0.0) + (vb**2 / (b.n - 1) if b.n > 1 else 0.0))
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
                      allow_changed_scenario: bool = False) -> CheckReport:
    """Compare the statistics of a new run (``now``) with a stored baseline, metric by metric."""
    if mode not in MODES:
        raise BaselineError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if not 0.0 < alpha < 1.0:
        raise BaselineError(f"alpha (the family-wise false-alarm rate) must be in (0, 1), got {alpha}")
    notes = _preconditions(stored, now, mode, allow_changed_scenario)
    records: list[dict[str, Any]] = []
    for row, metric, s, n in _pairs(stored, now):
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
    rows = rows.drop(columns="p")[["row", "metric", "stored", "now", "diff", "se", "z", "p_adj", "verdict",
                                   "regression"]]
    return CheckReport(mode=mode, alpha=alpha, stored=stored, now=now, rows=rows, notes=notes)


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


# --------------------------------------------------------------------------- entry points


def check_results(results: Results, baseline: str | Path | Baseline, mode: str = "statistical",
                  alpha: float = DEFAULT_ALPHA, allow_changed_scenario: bool = False,
                  metrics: Sequence[str] | None = None) -> CheckReport:
    """Compare ``results`` with a baseline (file or object); ``metrics`` limits the check to some metrics."""
    stored = baseline if isinstance(baseline, Baseline) else load_baseline(baseline)
    if metrics is not None:
        stored = _only(stored, metrics)
    names = list(metrics) if metrics is not None else sorted({m for ms in stored.stats.values() for m in ms},
                                                             key=_metric_order)
    names = [m for m in names if m in results.replications.columns] or list(METRIC_NAMES)
    now = baseline_from_results(results, names)
    return compare_baselines(stored, now, mode, alpha, allow_changed_scenario)


def _metric_order(m: str) -> tuple[int, str]:
    return (METRIC_NAMES.index(m) if m in METRIC_NAMES else len(METRIC_NAMES), m)


def _only(b: Baseline, metrics: Sequence[str]) -> Baseline:
    from dataclasses import replace

    keep = set(metrics)
    missing = keep - {m for ms in b.stats.values() for m in ms}
    if missing:
        raise BaselineError(f"{b.source or 'baseline'}: has no metric(s) {', '.join(sorted(missing))}")
    return replace(b, stats={r: {m: s for m, s in ms.items() if m in keep} for r, ms in b.stats.items()})


def assert_matches_baseline(results: Results, path: str | Path, mode: str = "statistical",
                            alpha: float = DEFAULT_ALPHA, allow_changed_scenario: bool = False,
                            metrics: Sequence[str] | None = None) -> CheckReport:
    """For analysts' pytest suites: raise :class:`BaselineMismatchError` (an AssertionError) if a number moved.

    ``results`` must come from the scenario the baseline was saved from (same resolved scenario,
    same overrides); in ``"statistical"`` mode any seed and number of replications will do.
    A changed scenario or an inapplicable exact mode raises :class:`BaselineError`.
    Returns the report when everything matches.
    """
    report = check_results(results, path, mode, alpha, allow_changed_scenario, metrics)
    if not report.ok:
        raise BaselineMismatchError(report.render(only_failures=True))
    return report


def rerun(scenario_file: str | Path, baseline: Baseline, *, seed: int | None = None,
          replications: int | None = None, workers: int | None = None,
          progress: Progress | None = None) -> Results:
    """Run ``scenario_file`` with the baseline's overrides (and its seed and replications unless given)."""
    scenario = load_scenario(scenario_file, list(baseline.overrides))
    return run_experiment(scenario, replications=replications or baseline.replications,
                          root_seed=baseline.root_seed if seed is None else seed, workers=workers, progress=progress)


def check_scenario(scenario_file: str | Path, baseline: str | Path | Baseline, mode: str = "statistical", *,
                   seed: int | None = None, replications: int | None = None, alpha: float = DEFAULT_ALPHA,
                   allow_changed_scenario: bool = False, workers: int | None = None,
                   progress: Progress | None = None) -> CheckReport:
    """Re-run a scenario as the baseline was made (its overrides, seed and replications unless given) and check it.

    Problems that need no run (changed scenario, exact mode not applicable) are raised before
    anything is simulated.
    """
    stored = baseline if isinstance(baseline, Baseline) else load_baseline(baseline)
    scenario = load_scenario(scenario_file, list(stored.overrides))
    planned = Baseline(
        scenario=scenario.name, scenario_hash=scenario_hash(scenario, MODEL_KEYS), config_hash=config_hash(scenario),
        root_seed=stored.root_seed if seed is None else seed, replications=replications or stored.replications,
        baseline_policy=scenario.baseline, policies=tuple(scenario.policy_names), overrides=stored.overrides,
        versions=current_versions(), stats={},
    )
    compare_baselines(stored, planned, mode, alpha, allow_changed_scenario)  # raises before the run
    if mode == "statistical" and planned.replications < 2:
        raise BaselineError("statistical mode needs at least 2 replications")
    results = rerun(scenario_file, stored, seed=seed, replications=replications, workers=workers, progress=progress)
    return check_results(results, stored, mode, alpha, allow_changed_scenario)


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
    bad = report.regressions
    lines.append("")
    if bad.empty:
        lines.append(f"OK: none of {len(report.rows)} rows moved beyond "
                     + ("float round-off" if report.mode == "exact" else "Monte Carlo noise"))
    else:
        worst = ", ".join(f"{r.row}:{r.metric}" for r in bad.head(5).itertuples(index=False))
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        lines.append(f"REGRESSION: {len(bad)} of {len(report.rows)} rows moved ({worst}{more})")
    return "\n".join(lines)
