"""Runs side by side: any policies of any run folders, their means and their differences with CIs.

Every row (run, policy) is compared with a *reference*: the same policy in the first run, or - for
the first run's own policies, policies it does not have, or with ``against`` - one policy of the
first run (``against``, else its baseline, else its first policy shown).

A difference is **paired** (mean of per-replication differences, Student-t interval) when the two
rows come from the same run, or from runs with the same root seed and the same ``market:`` block
(:func:`~simulator.io.run_index.market_hash`): replication r of both then drew the same members
and recruiters from ``SeedSequence(root_seed, spawn_key=(r,))``, so it uses the replications both
runs have.  Otherwise it is **unpaired** (Welch interval over all replications of each).  Both
intervals come from :mod:`simulator.experiments.statistics`.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from simulator.core.metrics import CURRENT_METRICS, METRIC_NAMES, canonical_metric
from simulator.experiments.statistics import CONFIDENCE, t_interval, t_quantile_dof
from simulator.io.run_index import HEADLINE_METRICS, RunIndexError, find_run, market_hash, run_id_of
from simulator.io.view import ResultsView

COLUMNS: tuple[str, ...] = (
    "metric", "run", "policy", "mean", "ci_low", "ci_high", "n", "reference", "diff", "diff_ci_low",
    "diff_ci_high", "rel_change", "pairing", "n_pairs", "folder", "run_id",
)
"""Columns of :func:`compare_runs`: ``run`` is the run's label (A, B, ...), ``reference`` a ``run:policy``."""


class RunComparisonError(ValueError):
    """Bad input for a comparison (unknown run, folder without results, unknown metric or policy): exit 2."""


@dataclass(frozen=True)
class ComparedRun:
    """One run of a comparison: its label, folder, index id and results."""

    label: str
    folder: Path
    run_id: int | None
    results: ResultsView

    @property
    def root_seed(self) -> int:
        return int(self.results.scenario.root_seed)

    @property
    def market(self) -> str:
        return market_hash(self.results.scenario)

    def values(self, policy: str, metric: str) -> pd.Series:
        """The metric's per-replication values of ``policy``, indexed by replication."""
        reps = self.results.replications
        rows = reps[reps["policy"] == policy]
        return pd.Series(rows[metric].to_numpy(dtype=np.float64), index=rows["replication"].to_numpy())


@dataclass(frozen=True)
class RunComparison:
    """The runs, how each later run pairs with the first, and the table (:data:`COLUMNS`)."""

    runs: tuple[ComparedRun, ...]
    pairings: dict[str, str]
    table: pd.DataFrame


# --------------------------------------------------------------------------- opening runs


def resolve_run(spec: str | Path, index: str | Path | None = None) -> tuple[Path, int | None]:
    """A run given as a folder path or as an index id (a folder of that name wins) -> (folder, id)."""
    path = Path(spec)
    if path.is_dir():
        return path, run_id_of(path, index)
    text = str(spec).lstrip("#")
    if re.fullmatch(r"[0-9]{1,18}", text):
        try:
            return find_run(int(text), index), int(text)
        except RunIndexError as exc:
            raise RunComparisonError(str(exc)) from None
    raise RunComparisonError(f"{spec}: no such run folder, and not a run id of the index "
                             "(`inmail-sim runs` lists the registered runs)")


def open_run(folder: Path, label: str, run_id: int | None) -> ComparedRun:
    """Load a finished run folder (:class:`RunComparisonError` if it holds none)."""
    if not folder.is_dir():
        which = f"run {run_id}'s folder" if run_id is not None else "folder"
        raise RunComparisonError(f"{which} {folder} no longer exists (`inmail-sim runs --prune` forgets it)")
    missing = [n for n in ("manifest.json", "replications.csv", "scenario.resolved.yaml")
               if not (folder / n).is_file()]
    if missing:
        raise RunComparisonError(f"{folder}: not a finished run folder (no {', '.join(missing)})")
    from simulator.io.report import NotARunFolderError, load_run

    try:
        results = load_run(folder)  # the damaged-file checks of `report`: the file is named
    except NotARunFolderError as exc:
        raise RunComparisonError(str(exc)) from None
    except (OSError, KeyError) as exc:
        raise RunComparisonError(f"{folder}: cannot read its results: {exc}") from None
    return ComparedRun(label, folder, run_id, ResultsView.of(results))


def open_runs(specs: Sequence[str | Path], index: str | Path | None = None) -> tuple[ComparedRun, ...]:
    """Open every run, labelled A, B, ...; the same run given twice is refused."""
    if not specs:
        raise RunComparisonError("give at least one run (a folder or an index id)")
    if len(specs) > len(string.ascii_uppercase):
        raise RunComparisonError(f"at most {len(string.ascii_uppercase)} runs at a time")
    runs: list[ComparedRun] = []
    for label, spec in zip(string.ascii_uppercase, specs, strict=False):
        folder, run_id = resolve_run(spec, index)
        twin = next((r for r in runs if r.folder.resolve() == folder.resolve()), None)
        if twin is not None:
            raise RunComparisonError(f"{spec}: the same run as {twin.label} ({twin.folder}); give each run once")
        runs.append(open_run(folder, label, run_id))
    return tuple(runs)


# --------------------------------------------------------------------------- pairing and intervals


def pairing(run: ComparedRun, first: ComparedRun) -> tuple[bool, str]:
    """Whether replication r of ``run`` and of ``first`` faced the same market, and why (or why not)."""
    if run is first:
        return True, "the same run: common random numbers"
    if run.root_seed != first.root_seed:
        return False, f"root seeds differ ({run.root_seed} vs {first.root_seed})"
    if run.market != first.market:
        return False, "the market: blocks differ"
    common = len(set(run.results.replications["replication"]) & set(first.results.replications["replication"]))
    if common < 2:
        return False, f"only {common} replication{'s' if common != 1 else ''} in common"
    return True, f"same root seed {run.root_seed} and the same market (sha256 {run.market[:12]})"


def welch_interval(a: np.ndarray, b: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """Mean of ``a`` minus mean of ``b`` and its Welch (unequal variances) Student-t interval."""
    na, nb = len(a), len(b)
    diff = float(np.mean(a) - np.mean(b)) if na and nb else math.nan
    if na < 2 or nb < 2:
        return diff, math.nan, math.nan
    va, vb = float(np.var(a, ddof=1)) / na, float(np.var(b, ddof=1)) / nb
    if va + vb == 0:
        return diff, diff, diff
    dof = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1))
    hw = float(t_quantile_dof(dof, confidence)) * math.sqrt(va + vb)
    return diff, diff - hw, diff + hw


def difference(row: pd.Series, ref: pd.Series, paired: bool, confidence: float = CONFIDENCE
               ) -> tuple[float, float, float, float, int]:
    """(diff, low, high, reference mean, pairs) of ``row - ref``: paired on common replications, else Welch."""
    if paired:
        both = pd.concat({"r": row, "b": ref}, axis=1, join="inner").dropna()
        d = (both["r"] - both["b"]).to_numpy()
        mean, low, high = t_interval(d, confidence)
        return float(mean), float(low), float(high), float(both["b"].mean()), len(d)
    welch = welch_interval(row.dropna().to_numpy(), ref.dropna().to_numpy(), confidence)
    return (*welch, float(ref.mean()), 0)


# --------------------------------------------------------------------------- the comparison


def _check_choices(runs: Sequence[ComparedRun], metrics: Sequence[str] | None, policies: Sequence[str] | None,
                   against: str | None) -> tuple[list[str], list[str] | None]:
    chosen = [canonical_metric(m) for m in metrics] if metrics else list(HEADLINE_METRICS)
    unknown = [m for m in chosen if m not in METRIC_NAMES]
    if unknown:
        raise RunComparisonError(f"unknown metric {', '.join(unknown)}: choose from {', '.join(CURRENT_METRICS)}")
    everywhere = [p for r in runs for p in r.results.scenario.policy_names]
    if policies:
        bad = [p for p in policies if p not in everywhere]
        if bad:
            raise RunComparisonError(f"unknown policy {', '.join(bad)}: the runs have "
                                     f"{', '.join(dict.fromkeys(everywhere))}")
        for r in runs:
            if not set(policies) & set(r.results.scenario.policy_names):
                raise RunComparisonError(f"run {r.label} ({r.folder}) has none of the policies "
                                         f"{', '.join(policies)}: it has {', '.join(r.results.scenario.policy_names)}")
    if against is not None and against not in runs[0].results.scenario.policy_names:
        raise RunComparisonError(f"--against {against}: not a policy of the first run {runs[0].folder} "
                                 f"({', '.join(runs[0].results.scenario.policy_names)})")
    return chosen, list(policies) if policies else None


def _shown(run: ComparedRun, policies: list[str] | None) -> list[str]:
    names = run.results.scenario.policy_names
    return [p for p in names if policies is None or p in policies]


def _reference(run: ComparedRun, policy: str, first: ComparedRun, shown_first: list[str],
               against: str | None) -> str:
    """The first run's policy that ``(run, policy)`` is compared with."""
    if against is not None:
        return against
    if run is not first and policy in shown_first:
        return policy
    base = first.results.scenario.baseline
    return base if base in shown_first else shown_first[0]


def run_comparison(runs: Sequence[str | Path], metrics: Sequence[str] | None = None,
                   policies: Sequence[str] | None = None, *, against: str | None = None,
                   index: str | Path | None = None, confidence: float = CONFIDENCE) -> RunComparison:
    """Compare runs (folders or index ids): see the module docstring for references and pairing."""
    opened = open_runs(runs, index)
    chosen, wanted = _check_choices(opened, metrics, policies, against)
    first = opened[0]
    shown_first = _shown(first, wanted) or ([against] if against else [])
    if not shown_first:
        shown_first = [first.results.scenario.baseline]
    pairs = {r.label: pairing(r, first) for r in opened}
    rows = []
    for metric in chosen:
        for run in opened:
            for policy in _shown(run, wanted):
                rows.append(_row(run, policy, metric, first, _reference(run, policy, first, shown_first, against),
                                 pairs[run.label][0], confidence))
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    return RunComparison(opened, {k: ("paired: " if v[0] else "unpaired (Welch): ") + v[1]
                                  for k, v in pairs.items()}, table)


def _row(run: ComparedRun, policy: str, metric: str, first: ComparedRun, ref_policy: str, paired: bool,
         confidence: float) -> dict[str, object]:
    values = run.values(policy, metric)
    mean, low, high = t_interval(values.to_numpy(), confidence)
    row: dict[str, object] = {
        "metric": metric, "run": run.label, "policy": policy, "mean": float(mean), "ci_low": float(low),
        "ci_high": float(high), "n": int(values.notna().sum()), "reference": f"{first.label}:{ref_policy}",
        "diff": math.nan, "diff_ci_low": math.nan, "diff_ci_high": math.nan, "rel_change": math.nan,
        "pairing": "reference", "n_pairs": 0, "folder": str(run.folder), "run_id": run.run_id,
    }
    if run is first and policy == ref_policy:
        return row
    diff, dlow, dhigh, ref_mean, n_pairs = difference(values, first.values(ref_policy, metric), paired, confidence)
    row.update(diff=diff, diff_ci_low=dlow, diff_ci_high=dhigh, n_pairs=n_pairs,
               rel_change=diff / abs(ref_mean) if ref_mean else math.nan,
               pairing="paired" if paired else "unpaired")
    return row


def compare_runs(runs: Sequence[str | Path], metrics: Sequence[str] | None = None,
                 policies: Sequence[str] | None = None, *, against: str | None = None,
                 index: str | Path | None = None, confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Runs side by side as a DataFrame (:data:`COLUMNS`), one row per metric, run and policy.

    ``runs``: run folders or run-index ids; ``metrics`` default to the headline ones
    (response_rate, net_credit_burn); ``policies`` default to every policy of every run.
    ``pairing`` says how each difference was computed: ``paired`` (per replication, ``n_pairs``
    common replications) or ``unpaired`` (Welch).  Raises :class:`RunComparisonError` for bad input.
    """
    return run_comparison(runs, metrics, policies, against=against, index=index, confidence=confidence).table
