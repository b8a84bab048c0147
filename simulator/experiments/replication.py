"""One replication of one policy, as the experiments run it: the task, its small picklable record, the frames.

Replication ``i`` of every policy is run with ``replication_seed(root_seed, i)``, so the policies
face the same members, recruiters and random streams.  A task returns a :class:`Record`; with a
:class:`~simulator.experiments.runner.TaskStore` each finished record is written to its own file at
once (:meth:`Record.to_arrays`), and a resumed run computes only the missing ones.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

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
from simulator.experiments.runner import Task, TaskFailure, TaskKey, TaskStore, failure_report, run_tasks
from simulator.scenario import Scenario

RECORD_FORMAT = 2
"""Version of the per-replication file layout (:meth:`Record.to_arrays`); 2 added the member histograms.

A file of another version does not decode (``ValueError``), so a store treats it as missing and
the replication is computed again.
"""

MEMBER_COLUMNS: tuple[str, ...] = ("policy", "replication", "quantity", "bin", "members")
"""Columns of :attr:`Results.member_distribution` (``member_distribution.csv``); ``bin`` is a lower edge of
:data:`~simulator.core.metrics.MEMBER_BINS`."""


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


def replication_record(market: Market, policy: Policy, run: RunConfig, root_seed: int, index: int) -> Record:
    """One replication of one policy as a :class:`Record` (the task a worker runs)."""
    result = run_single(market, policy, run, root_seed, index)
    return Record(
        policy=policy.name, replication=index, root_seed=root_seed, seed_entropy=result.seed_entropy,
        spawn_key=tuple(result.spawn_key), metrics={k: float(result.metrics[k]) for k in METRIC_NAMES},
        daily={k: np.asarray(v, dtype=np.float64) for k, v in result.daily.items()},
        breakdowns={by: breakdown_arrays(result.recruiters, by) for by in BREAKDOWN_KEYS},
        member_histograms={q: np.asarray(result.member_histograms[q], dtype=np.int64)
                           for q in MEMBER_QUANTITIES if q in result.member_histograms},
    )


def replication_tasks(scenario: Scenario, indices: Iterable[int], point: int | None = None,
                      markets: Mapping[int, Market] | None = None) -> list[Task]:
    """One task per (replication index, policy) of ``scenario`` (``point``: its sweep point, if any).

    ``markets``: the market of each replication index (a run across plausible worlds); default the scenario's.
    """
    return [Task(TaskKey(name, i, point), replication_record,
                 (scenario.market if markets is None else markets[i], scenario.policies[name], scenario.run,
                  scenario.root_seed, i))
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
                on_done: Callable[[], None] | None = None,
                store: TaskStore | None = None,
                markets: Mapping[int, Market] | None = None) -> dict[tuple[str, int], Record]:
    """Run every policy for each replication index; return records keyed by (policy, index).

    ``markets``: the market of each replication index (see :func:`replication_tasks`).
    Raises :class:`ReplicationError` listing the failed replications (the others are in ``store``).
    """
    tasks = replication_tasks(scenario, indices, markets=markets)
    run = run_tasks(tasks, executor, store, reuse=_reuser(scenario),
                    on_done=(lambda _key: on_done()) if on_done is not None else None)
    if run.failures:
        raise ReplicationError(run.failures, run.finished, run.total)
    return {(k.policy, k.replication): r for k, r in run.results.items()}


# --------------------------------------------------------------------------- frames


def replication_frame(records: Iterable[Record]) -> pd.DataFrame:
    rows = [{"policy": r.policy, "replication": r.replication, "seed": r.root_seed, **r.metrics} for r in records]
    return pd.DataFrame(rows, columns=["policy", "replication", "seed", *METRIC_NAMES])


def timeseries_frame(records: Sequence[Record]) -> pd.DataFrame:
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


def breakdown_frame(records: Sequence[Record]) -> pd.DataFrame:
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
