"""Monte Carlo experiments: replications of every policy on common random numbers, and their statistics.

Replication ``i`` of every policy is run with ``replication_seed(root_seed, i)``, so the policies
face the same members, recruiters and random streams; differences are taken replication by
replication (paired) and summarized with Student-t intervals.  Replications can run on any
:class:`concurrent.futures.Executor` (serial, a process pool, Dask: :mod:`simulator.experiments.runner`);
results are collected by (policy, index), never by completion order, so the numbers do not
depend on the executor or the number of workers.  With a :class:`~simulator.experiments.runner.TaskStore`
each finished replication is written to its own file at once, and a resumed run computes only
the missing ones.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from simulator.core.config import Market, Policy, RunConfig
from simulator.core.metrics import (
    BREAKDOWN_KEYS,
    BREAKDOWN_METRICS,
    MEMBER_BINS,
    MEMBER_QUANTITIES,
    METRIC_NAMES,
    ReplicationResult,
    breakdown_arrays,
)
from simulator.core.seeding import replication_seed
from simulator.experiments.runner import (
    SerialExecutor,
    Task,
    TaskFailure,
    TaskKey,
    TaskStore,
    executor_slots,
    failure_report,
    open_executor,
    run_tasks,
)
from simulator.scenario import Overrides, Scenario, load_scenario, with_changes

__all__ = [
    "CONFIDENCE", "MAIN_METRICS", "MEMBER_COLUMNS", "PrecisionReport", "Record", "ReplicationError", "Results",
    "SerialExecutor", "compare", "empty_member_frame", "member_distribution_frame", "precision_half_widths",
    "record_store", "run_experiment", "run_scenario", "run_single", "summarize",
]

MAIN_METRICS: tuple[tuple[str, bool], ...] = (("response_rate", False), ("net_credit_burn", True))
"""The main comparison: (metric, judged relative to the baseline?) - what ``--precision`` targets."""

CONFIDENCE = 0.95
ALPHA = 1.0 - CONFIDENCE

Progress = Callable[[int, int], None]
"""Called as ``progress(done, total)`` after each finished replication."""

RECORD_FORMAT = 2
"""Version of the per-replication file layout (:meth:`Record.to_arrays`); 2 added the member histograms.

A file of another version does not decode (``ValueError``), so a store treats it as missing and
the replication is computed again.
"""

MEMBER_COLUMNS: tuple[str, ...] = ("policy", "replication", "quantity", "bin", "members")
"""Columns of :attr:`Results.member_distribution` (``member_distribution.csv``); ``bin`` is a lower edge of
:data:`~simulator.core.metrics.MEMBER_BINS`."""


# --------------------------------------------------------------------------- running


@dataclass(frozen=True)
class Record:
    """What one (policy, replication) returns to the experiment: small and picklable.

    ``daily`` is empty when the time series was not asked for (``RunConfig.record_daily``).
    ``member_histograms``: quantity (``received``, ``unanswered``) -> active members per
    :data:`~simulator.core.metrics.MEMBER_BINS` bin (int64, one entry per bin).
    """

    policy: str
    replication: int
    root_seed: int
    seed_entropy: int
    spawn_key: tuple[int, ...]
    metrics: dict[str, float]
    daily: dict[str, np.ndarray]
    breakdowns: dict[str, dict[str, dict[str, float]]]
    member_histograms: dict[str, np.ndarray] = field(default_factory=dict)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays (no pickle) for the per-replication file; :meth:`from_arrays` inverts it exactly."""
        meta = {"format": RECORD_FORMAT, "policy": self.policy, "replication": self.replication,
                "root_seed": self.root_seed, "seed_entropy": self.seed_entropy, "spawn_key": list(self.spawn_key)}
        rows = [(by, label, values) for by, groups in self.breakdowns.items() for label, values in groups.items()]
        bd_cols = list(rows[0][2]) if rows else list(BREAKDOWN_METRICS)
        daily_names = list(self.daily)
        horizon = len(next(iter(self.daily.values()))) if self.daily else 0
        quantities = list(self.member_histograms)
        return {
            "meta": np.array(json.dumps(meta)),
            "metric_names": np.array(list(self.metrics), dtype=str),
            "metric_values": np.array(list(self.metrics.values()), dtype=np.float64),
            "daily_names": np.array(daily_names, dtype=str),
            "daily_values": (np.stack([np.asarray(self.daily[k], dtype=np.float64) for k in daily_names])
                             if daily_names else np.zeros((0, horizon), dtype=np.float64)),
            "breakdown_keys": np.array([[by, label] for by, label, _ in rows], dtype=str).reshape(-1, 2),
            "breakdown_metrics": np.array(bd_cols, dtype=str),
            "breakdown_values": np.array([[v[c] for c in bd_cols] for _, _, v in rows],
                                         dtype=np.float64).reshape(-1, len(bd_cols)),
            "member_quantities": np.array(quantities, dtype=str),
            "member_bins": np.array(MEMBER_BINS, dtype=np.int64),
            "member_counts": (np.stack([np.asarray(self.member_histograms[q], dtype=np.int64) for q in quantities])
                              if quantities else np.zeros((0, len(MEMBER_BINS)), dtype=np.int64)),
        }

    @classmethod
    def from_arrays(cls, a: Mapping[str, np.ndarray]) -> Record:
        """The record written by :meth:`to_arrays` (raises ``ValueError`` for another layout or other bins)."""
        meta = json.loads(str(a["meta"][()]))
        if meta.get("format") != RECORD_FORMAT:
            raise ValueError(f"per-replication file format {meta.get('format')!r}, expected {RECORD_FORMAT}")
        if a["member_bins"].tolist() != list(MEMBER_BINS):
            raise ValueError(f"per-replication file has member bins {a['member_bins'].tolist()}, "
                             f"expected {list(MEMBER_BINS)}")
        daily_values = a["daily_values"]
        breakdowns: dict[str, dict[str, dict[str, float]]] = {}
        cols = [str(c) for c in a["breakdown_metrics"]]
        for (by, label), values in zip(a["breakdown_keys"].tolist(), a["breakdown_values"], strict=True):
            breakdowns.setdefault(by, {})[label] = {c: float(v) for c, v in zip(cols, values, strict=True)}
        return cls(
            policy=str(meta["policy"]), replication=int(meta["replication"]), root_seed=int(meta["root_seed"]),
            seed_entropy=int(meta["seed_entropy"]), spawn_key=tuple(int(k) for k in meta["spawn_key"]),
            metrics={str(k): float(v) for k, v in zip(a["metric_names"], a["metric_values"], strict=True)},
            daily={str(k): daily_values[i].copy() for i, k in enumerate(a["daily_names"])},
            breakdowns=breakdowns,
            member_histograms={str(q): a["member_counts"][i].astype(np.int64)
                               for i, q in enumerate(a["member_quantities"])},
        )


def record_store(folder: str | Path) -> TaskStore:
    """A :class:`~simulator.experiments.runner.TaskStore` of :class:`Record` files (one per policy and replication)."""
    return TaskStore(folder, Record.from_arrays)


def run_single(market: Market, policy: Policy, run: RunConfig, root_seed: int, index: int) -> ReplicationResult:
    """Re-run replication ``index`` of one policy alone: everything comes from (root seed, index)."""
    from simulator.core.engine import run_replication

    return run_replication(market, policy, run, seed=replication_seed(root_seed, index))


def _run_task(market: Market, policy: Policy, run: RunConfig, root_seed: int, index: int) -> Record:
    result = run_single(market, policy, run, root_seed, index)
    return Record(
        policy=policy.name, replication=index, root_seed=root_seed, seed_entropy=result.seed_entropy,
        spawn_key=tuple(result.spawn_key), metrics={k: float(result.metrics[k]) for k in METRIC_NAMES},
        daily={k: np.asarray(v, dtype=np.float64) for k, v in result.daily.items()},
        breakdowns={by: breakdown_arrays(result.recruiters, by) for by in BREAKDOWN_KEYS},
        member_histograms={q: np.asarray(result.member_histograms[q], dtype=np.int64)
                           for q in MEMBER_QUANTITIES if q in result.member_histograms},
    )


def replication_tasks(scenario: Scenario, indices: Iterable[int], point: int | None = None) -> list[Task]:
    """One task per (replication index, policy) of ``scenario`` (``point``: its sweep point, if any)."""
    return [Task(TaskKey(name, i, point), _run_task,
                 (scenario.market, scenario.policies[name], scenario.run, scenario.root_seed, i))
            for i in indices for name in scenario.policy_names]


class ReplicationError(RuntimeError):
    """Replications failed; ``failures`` names each (policy, index) and why.  The finished ones are kept."""

    def __init__(self, failures: Sequence[TaskFailure], finished: int, total: int) -> None:
        self.failures, self.finished, self.total = list(failures), finished, total
        super().__init__(f"{total - finished} of {total} replication{'s' if total != 1 else ''} did not finish "
                         f"({finished} did):\n{failure_report(self.failures)}")


def _reuser(scenario: Scenario) -> Callable[[Record], Record | None]:
    """Which stored records a run may use: the same root seed, and the time series if it wants it."""
    want_daily = scenario.run.record_daily

    def reuse(rec: Record) -> Record | None:
        if rec.root_seed != scenario.root_seed or list(rec.metrics) != list(METRIC_NAMES):
            return None
        if want_daily and not rec.daily:
            return None
        return rec if want_daily else dataclasses.replace(rec, daily={})

    return reuse


def run_records(scenario: Scenario, indices: Iterable[int], executor: Executor,
                progress: Callable[[], None] | None = None,
                store: TaskStore | None = None) -> dict[tuple[str, int], Record]:
    """Run every policy for each replication index; return records keyed by (policy, index).

    Raises :class:`ReplicationError` listing the failed replications (the others are in ``store``).
    """
    tasks = replication_tasks(scenario, indices)
    run = run_tasks(tasks, executor, store, reuse=_reuser(scenario),
                    on_done=(lambda _key: progress()) if progress is not None else None)
    if run.failures:
        raise ReplicationError(run.failures, run.finished, run.total)
    return {(k.policy, k.replication): r for k, r in run.results.items()}


@dataclass(frozen=True)
class PrecisionReport:
    """How a ``--precision`` run ended."""

    target: float
    reached: bool
    replications: int
    cap: int
    half_widths: dict[str, float]

    @property
    def message(self) -> str:
        worst = max(self.half_widths.items(), key=lambda kv: kv[1]) if self.half_widths else ("-", math.nan)
        if self.reached:
            return (f"precision target {self.target:g} reached after {self.replications} replications "
                    f"(widest half-width: {worst[0]} {worst[1]:.3g})")
        return (f"replication cap {self.cap} hit before the precision target {self.target:g} "
                f"(widest half-width: {worst[0]} {worst[1]:.3g})")


def run_experiment(
    scenario: Scenario, *, replications: int | None = None, root_seed: int | None = None,
    executor: Executor | None = None, workers: int | None = None, dask: str | None = None,
    precision: float | None = None, max_replications: int | None = None, indices: Sequence[int] | None = None,
    progress: Progress | None = None, store: TaskStore | None = None, timeseries: bool = True,
    memory_limit: int | None = None, memory_check: bool = True,
) -> Results:
    """Run the scenario's policies on common random numbers and return :class:`Results`.

    ``executor``: any ``concurrent.futures.Executor`` (left open); else ``workers`` > 1 starts a
    process pool, ``dask`` (an address or ``"local"``) a Dask executor, otherwise replications run
    serially.  ``precision``: keep adding replications until the 95% CI half-width of every main
    difference (:data:`MAIN_METRICS`: response-rate difference in absolute terms, net-credit-burn
    change relative to the baseline) is at most ``precision``, or ``max_replications`` is reached.
    ``indices``: run only these replication indices (e.g. ``[7]`` to re-run replication 7 alone).
    ``store``: write each finished replication there and reuse the ones it already holds (resume).
    ``timeseries=False``: workers do not return the daily series (no ``timeseries``).
    The scenario's memory need is checked first (:func:`simulator.scenario.memory.check_memory`;
    ``memory_limit`` in bytes overrides the available memory; ``memory_check=False`` skips it).
    Raises :class:`ReplicationError` when replications fail, :class:`~simulator.experiments.runner.RunInterrupted`
    on Ctrl-C.
    """
    from simulator.scenario.memory import check_memory

    scenario = with_changes(scenario, replications=replications, root_seed=root_seed,
                            max_replications=max_replications)
    if not timeseries and scenario.run.record_daily:
        scenario = dataclasses.replace(scenario, run=dataclasses.replace(scenario.run, record_daily=False))
    if precision is not None and precision <= 0:
        raise ValueError(f"precision must be > 0, got {precision}")
    npol = len(scenario.policies)
    n0 = scenario.replications
    if precision is not None:  # a CI needs a few replications to start from
        n0 = max(n0, min(3, scenario.max_replications))
    first = list(indices) if indices is not None else list(range(n0))
    if memory_check and dask in (None, "local"):
        concurrent = executor_slots(executor) if executor is not None else max(1, workers or 1)
        check_memory(scenario, concurrent=concurrent, limit=memory_limit,
                     replications=scenario.max_replications if precision is not None else len(first))
    total = len(first) * npol
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    report: PrecisionReport | None = None
    with (open_executor(workers or 1, dask) if executor is None else contextlib.nullcontext(executor)) as ex:
        records = run_records(scenario, first, ex, tick, store)
        n = len(first)
        while precision is not None and indices is None:
            widths = precision_half_widths(_replication_frame(records.values()), scenario.baseline)
            worst = max(widths.values(), default=math.inf)
            cap = scenario.max_replications
            if worst <= precision or n >= cap:
                report = PrecisionReport(precision, worst <= precision, n, cap, widths)
                break
            needed = math.ceil(n * (worst / precision) ** 2 * 1.1) if math.isfinite(worst) else 2 * n
            new_n = min(cap, max(n + 1, min(needed, 4 * n)))
            total += (new_n - n) * npol
            records.update(run_records(scenario, range(n, new_n), ex, tick, store))
            n = new_n
    if indices is None:
        scenario = with_changes(scenario, replications=n)
    ordered = [records[(p, i)] for i in sorted({i for _, i in records}) for p in scenario.policy_names]
    return Results(
        scenario=scenario,
        replications=_replication_frame(ordered),
        timeseries=_timeseries_frame(ordered),
        breakdown_replications=_breakdown_frame(ordered),
        precision=report,
        member_distribution=member_distribution_frame(ordered),
    )


def run_scenario(source: str | Path | Mapping[str, Any], overrides: Overrides = (), **options: Any) -> Results:
    """Load a scenario (file path or mapping, with ``--set``-style overrides) and run it.

    ``options`` go to :func:`run_experiment` (``replications``, ``root_seed``, ``workers``,
    ``precision``, ...).  The notebook one-liner::

        res = run_scenario("scenarios/old_vs_new.yaml", ["market.members.count=20000"], replications=5)
        res.comparison, res.summary, res.replications, res.timeseries
    """
    return run_experiment(load_scenario(source, overrides), **options)


# --------------------------------------------------------------------------- frames


def _replication_frame(records: Iterable[Record]) -> pd.DataFrame:
    rows = [{"policy": r.policy, "replication": r.replication, "seed": r.root_seed, **r.metrics} for r in records]
    return pd.DataFrame(rows, columns=["policy", "replication", "seed", *METRIC_NAMES])


def _timeseries_frame(records: Sequence[Record]) -> pd.DataFrame:
    """Tidy daily series (policy, replication, day, metric, value), built column by column (fast)."""
    series = [(r.policy, r.replication, metric, np.asarray(values, dtype=np.float64))
              for r in records for metric, values in r.daily.items()]
    if not series:
        return pd.DataFrame(columns=["policy", "replication", "day", "metric", "value"])
    lengths = np.array([len(v) for *_, v in series], dtype=np.int64)
    return pd.DataFrame({
        "policy": np.repeat(np.array([p for p, *_ in series], dtype=object), lengths),
        "replication": np.repeat(np.array([i for _, i, *_ in series], dtype=np.int64), lengths),
        "day": np.concatenate([np.arange(n, dtype=np.int64) for n in lengths]),
        "metric": np.repeat(np.array([m for _, _, m, _ in series], dtype=object), lengths),
        "value": np.concatenate([v for *_, v in series]),
    })


def _breakdown_frame(records: Sequence[Record]) -> pd.DataFrame:
    rows = [
        {"by": by, "label": label, "policy": r.policy, "replication": r.replication, **values}
        for r in records for by, groups in r.breakdowns.items() for label, values in groups.items()
    ]
    return pd.DataFrame(rows, columns=["by", "label", "policy", "replication", *BREAKDOWN_METRICS])


def empty_member_frame() -> pd.DataFrame:
    """A :attr:`Results.member_distribution` without rows (the run did not record the histograms)."""
    dtypes = {"policy": str, "replication": np.int64, "quantity": str, "bin": np.int64, "members": np.int64}
    return pd.DataFrame({c: pd.Series(dtype=dtypes[c]) for c in MEMBER_COLUMNS})


def member_distribution_frame(records: Sequence[Record]) -> pd.DataFrame:
    """Tidy member histograms (policy, replication, quantity, bin, members) in record, quantity, bin order."""
    rows = [(r.policy, r.replication, q, np.asarray(r.member_histograms[q], dtype=np.int64))
            for r in records for q in MEMBER_QUANTITIES if q in r.member_histograms]
    if not rows:
        return empty_member_frame()
    nbins = len(MEMBER_BINS)
    for policy, index, q, counts in rows:
        if len(counts) != nbins:
            raise ValueError(f"member histogram {q!r} of {policy!r} replication {index} has {len(counts)} bins, "
                             f"expected {nbins}")
    n = len(rows)
    return pd.DataFrame({
        "policy": np.repeat(np.array([p for p, *_ in rows], dtype=object), nbins),
        "replication": np.repeat(np.array([i for _, i, *_ in rows], dtype=np.int64), nbins),
        "quantity": np.repeat(np.array([q for _, _, q, _ in rows], dtype=object), nbins),
        "bin": np.tile(np.array(MEMBER_BINS, dtype=np.int64), n),
        "members": np.concatenate([c for *_, c in rows]),
    })


# --------------------------------------------------------------------------- statistics


def _t_half_width(sd: np.ndarray | float, n: np.ndarray | float) -> np.ndarray:
    """Half-width of the 95% Student-t interval of a mean (NaN when n < 2)."""
    n = np.asarray(n, dtype=np.float64)
    sd = np.asarray(sd, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = stats.t.ppf(1.0 - ALPHA / 2.0, np.where(n >= 2, n - 1, np.nan))
        return q * sd / np.sqrt(n)


def _long(frame: pd.DataFrame, keys: Sequence[str], metrics: Sequence[str]) -> pd.DataFrame:
    return frame.melt(id_vars=[*keys, "policy", "replication"], value_vars=list(metrics),
                      var_name="metric", value_name="value")


def _in_input_order(out: pd.DataFrame, frame: pd.DataFrame, keys: Sequence[str],
                    metrics: Sequence[str]) -> pd.DataFrame:
    """Sort rows by (keys as first seen in ``frame``, policy as first seen, metric as listed)."""
    cols: list[str] = []
    ranks: dict[str, pd.Series] = {}
    if keys:
        seen = frame[list(keys)].drop_duplicates()
        rank = {tuple(row): i for i, row in enumerate(seen.itertuples(index=False))}
        ranks["_k"] = pd.Series([rank[tuple(r)] for r in out[list(keys)].itertuples(index=False)], index=out.index)
        cols.append("_k")
    pol_rank = {p: i for i, p in enumerate(frame["policy"].drop_duplicates())}
    ranks["_p"] = out["policy"].map(pol_rank)
    met_rank = {m: i for i, m in enumerate(metrics)}
    ranks["_m"] = out["metric"].map(met_rank)
    cols += ["_p", "_m"]
    tmp = out.assign(**ranks).sort_values(cols, kind="stable")
    return tmp.drop(columns=cols).reset_index(drop=True)


def summarize(frame: pd.DataFrame, metrics: Sequence[str] = METRIC_NAMES, keys: Sequence[str] = ()) -> pd.DataFrame:
    """Per policy (and ``keys``) and metric: mean, std, 95% t-interval, n.

    Never NaN for finite data: with a single replication there is no spread to estimate, so
    ``std`` is reported as 0 and the interval collapses to the mean (read ``n``); identical
    replications give ``std`` 0 and the interval [mean, mean] as well.
    """
    long = _long(frame, keys, metrics)
    g = long.groupby([*keys, "policy", "metric"], sort=False)["value"]
    out = g.agg(mean="mean", std="std", n="count").reset_index()
    single = out["n"].to_numpy() < 2
    out["std"] = np.where(single, 0.0, out["std"].to_numpy(dtype=np.float64))
    hw = np.where(single, 0.0, _t_half_width(out["std"].to_numpy(), out["n"].to_numpy()))
    out["ci_low"] = out["mean"] - hw
    out["ci_high"] = out["mean"] + hw
    out = out[[*keys, "policy", "metric", "mean", "std", "ci_low", "ci_high", "n"]]
    return _in_input_order(out, frame, keys, metrics)


COMPARISON_COLUMNS: tuple[str, ...] = (
    "metric", "baseline", "policy", "diff", "ci_low", "ci_high", "rel_change", "p_value",
    "baseline_mean", "policy_mean", "n", "rel_ci_low", "rel_ci_high",
    "unpaired_ci_low", "unpaired_ci_high", "ci_shrink", "significant",
)
"""Columns of :func:`compare` (the first eight are the ``comparison.csv`` contract)."""


def compare(frame: pd.DataFrame, baseline: str, metrics: Sequence[str] = METRIC_NAMES,
            keys: Sequence[str] = ()) -> pd.DataFrame:
    """Paired differences of every other policy against ``baseline``, replication by replication.

    ``diff``/``ci_*``/``p_value``: mean of (policy - baseline) over the replications both have, its
    95% t-interval and two-sided paired t-test p-value.  ``rel_*``: the same divided by the
    baseline mean.  ``unpaired_*``: the Welch interval that ignores the pairing; ``ci_shrink`` is
    how much narrower the paired interval is (0.8 = 80% narrower).

    Degenerate cases, chosen so that no 0/0 NaN leaks into the tables: with one replication the
    intervals collapse to ``diff`` (as in :func:`summarize`), ``ci_shrink`` is 0 and ``p_value``
    is left empty (no test is possible; ``significant`` is false).  With a baseline mean of 0,
    ``rel_*`` are 0 when the policy does not differ at all and empty otherwise (a change from 0
    has no relative size).
    """
    empty = pd.DataFrame(columns=[*keys, *COMPARISON_COLUMNS])
    long = _long(frame, keys, metrics)
    idx = [*keys, "metric", "replication"]
    by_policy = {p: g.set_index(idx)["value"] for p, g in long.groupby("policy", sort=False)}
    if baseline not in by_policy:
        return empty
    base = by_policy[baseline]
    gkeys = [*keys, "metric"]
    parts = []
    for pol, values in by_policy.items():
        if pol == baseline:
            continue
        pair = pd.concat({"b": base, "p": values}, axis=1, join="inner").dropna()
        pair["d"] = pair["p"] - pair["b"]
        g = pair.groupby(level=gkeys, sort=False)
        agg = pd.DataFrame({
            "baseline_mean": g["b"].mean(), "policy_mean": g["p"].mean(), "diff": g["d"].mean(),
            "sd_d": g["d"].std(), "sd_b": g["b"].std(), "sd_p": g["p"].std(), "n": g["d"].count(),
        }).reset_index()
        agg["baseline"] = baseline
        agg["policy"] = pol
        parts.append(agg)
    if not parts:
        return empty
    out = pd.concat(parts, ignore_index=True)
    n = out["n"].to_numpy(dtype=np.float64)
    diff = out["diff"].to_numpy(dtype=np.float64)
    sd_d = out["sd_d"].to_numpy(dtype=np.float64)
    dof = np.where(n >= 2, n - 1, np.nan)
    hw = np.where(n >= 2, _t_half_width(sd_d, n), 0.0)
    out["ci_low"] = diff - hw
    out["ci_high"] = diff + hw
    with np.errstate(invalid="ignore", divide="ignore"):
        p = 2.0 * stats.t.sf(np.abs(diff / (sd_d / np.sqrt(n))), dof)
    p = np.where((n >= 2) & (sd_d == 0), np.where(diff == 0, 1.0, 0.0), p)
    out["p_value"] = np.where(n < 2, np.nan, p)
    bmean = out["baseline_mean"].to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        nothing = (diff == 0) & (hw == 0)  # no difference at all: relative change 0 even from a zero baseline
        scale = np.where(bmean != 0, 1.0 / np.abs(bmean), np.where(nothing, 0.0, np.nan))
        out["rel_change"] = np.where(bmean != 0, diff / bmean, np.where(nothing, 0.0, np.nan))
        out["rel_ci_low"] = (diff - hw) * scale
        out["rel_ci_high"] = (diff + hw) * scale
        vb = out["sd_b"].to_numpy(dtype=np.float64) ** 2 / n
        vp = out["sd_p"].to_numpy(dtype=np.float64) ** 2 / n
        welch_df = (vb + vp) ** 2 / (vb**2 / (n - 1) + vp**2 / (n - 1))
        welch_df = np.where(np.isfinite(welch_df), welch_df, dof)
        uhw = np.where(n >= 2, stats.t.ppf(1.0 - ALPHA / 2.0, welch_df) * np.sqrt(vb + vp), 0.0)
        out["unpaired_ci_low"] = diff - uhw
        out["unpaired_ci_high"] = diff + uhw
        out["ci_shrink"] = np.where(uhw > 0, 1.0 - hw / uhw, 0.0)
    out["significant"] = (out["p_value"] < ALPHA) & ((out["ci_low"] > 0) | (out["ci_high"] < 0))
    return _in_input_order(out[[*keys, *COMPARISON_COLUMNS]], frame, keys, metrics)


def precision_half_widths(frame: pd.DataFrame, baseline: str) -> dict[str, float]:
    """CI half-widths of the main comparison (see :data:`MAIN_METRICS`), keyed ``policy:metric``.

    With a single policy, the half-widths of its own means are used instead.
    """
    names = [m for m, _ in MAIN_METRICS]
    relative = dict(MAIN_METRICS)
    out: dict[str, float] = {}
    if frame["replication"].nunique() < 2:  # no spread to estimate yet: not known to any precision
        return {f"{p}:{m}": math.inf for p in frame["policy"].drop_duplicates() for m in names}
    if frame["policy"].nunique() > 1:
        comp = compare(frame, baseline, names)
        for row in comp.itertuples(index=False):
            lo, hi = (row.rel_ci_low, row.rel_ci_high) if relative[row.metric] else (row.ci_low, row.ci_high)
            out[f"{row.policy}:{row.metric}"] = _finite_half(lo, hi)
    else:
        summ = summarize(frame, names)
        for row in summ.itertuples(index=False):
            hw = 0.5 * (row.ci_high - row.ci_low)
            if relative[row.metric]:
                hw = hw / abs(row.mean) if row.mean else math.inf
            out[f"{row.policy}:{row.metric}"] = hw if math.isfinite(hw) else math.inf
    return out


def _finite_half(lo: float, hi: float) -> float:
    hw = 0.5 * (float(hi) - float(lo))
    return hw if math.isfinite(hw) else math.inf


# --------------------------------------------------------------------------- results


@dataclass
class Results:
    """The outcome of an experiment, as pandas DataFrames.

    ``replications``: one row per (policy, replication) with ``seed`` (the root seed; replication
    ``r`` used ``replication_seed(seed, r)``) and a column per metric.  ``timeseries``: tidy daily
    series (policy, replication, day, metric, value).  ``breakdown_replications``: per recruiter
    subgroup (by, label), policy and replication.  ``member_distribution``: active members per
    count bin (policy, replication, quantity, bin, members; ``bin`` is the lower edge of a
    :data:`~simulator.core.metrics.MEMBER_BINS` bin); empty when not recorded (an old run folder).
    The statistics are derived from these.
    """

    scenario: Scenario
    replications: pd.DataFrame
    timeseries: pd.DataFrame
    breakdown_replications: pd.DataFrame
    precision: PrecisionReport | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    member_distribution: pd.DataFrame = field(default_factory=empty_member_frame)

    @property
    def baseline(self) -> str:
        return self.scenario.baseline

    @property
    def n_replications(self) -> int:
        return int(self.replications["replication"].nunique())

    @cached_property
    def summary(self) -> pd.DataFrame:
        """policy, metric, mean, std, ci_low, ci_high, n."""
        return summarize(self.replications)

    @cached_property
    def comparison(self) -> pd.DataFrame:
        """Paired differences against the baseline (see :func:`compare`)."""
        return compare(self.replications, self.baseline)

    @cached_property
    def breakdowns(self) -> pd.DataFrame:
        """Per recruiter subgroup: by, label, policy, metric, mean, std, ci_low, ci_high, n."""
        return summarize(self.breakdown_replications, BREAKDOWN_METRICS, keys=("by", "label"))

    @cached_property
    def breakdown_comparison(self) -> pd.DataFrame:
        """Per recruiter subgroup: the paired difference against the baseline (who wins, who loses)."""
        return compare(self.breakdown_replications, self.baseline, BREAKDOWN_METRICS, keys=("by", "label"))

    def breakdown(self, by: str) -> pd.DataFrame:
        """:attr:`breakdown_comparison` for one key (``seat_type``, ``personalization_band``, ...)."""
        if by not in BREAKDOWN_KEYS:
            raise ValueError(f"breakdown key must be one of {', '.join(BREAKDOWN_KEYS)}, got {by!r}")
        bc = self.breakdown_comparison
        return bc[bc["by"] == by].drop(columns="by").reset_index(drop=True)

    def pairing(self, metrics: Sequence[str] = ("response_rate", "net_credit_burn")) -> pd.DataFrame:
        """How much the pairing (common random numbers) shrank each comparison's CI."""
        c = self.comparison
        cols = ["policy", "metric", "ci_low", "ci_high", "unpaired_ci_low", "unpaired_ci_high", "ci_shrink"]
        return c[c["metric"].isin(metrics)][cols].reset_index(drop=True)
