"""The run index: every finished run folder registered in a small SQLite file, to list and find runs again.

Where it lives (:func:`index_for_folder`, :func:`index_path`): ``$INMAIL_SIM_RUNS_DB`` when set (a file,
or a folder holding the index), else
``.inmail-sim-runs.sqlite`` in the parent of the run folder - ``runs/.inmail-sim-runs.sqlite`` for the
default ``runs/<scenario>-<timestamp>`` folders.  A row holds what identifies a run (folder, scenario
name, file, hash and market hash, overrides, root seed, replications, policies, code version, date)
and its headline numbers (:data:`HEADLINE_METRICS`: per policy the mean and CI, per non-baseline
policy the paired difference to the baseline with its CI).

Registering never breaks a run: :func:`register_run` turns every index problem (locked, corrupt,
read-only) into a warning on stderr.  Concurrent runs are safe: each registration is one
``BEGIN IMMEDIATE`` transaction, and a busy index is waited for (:data:`BUSY_TIMEOUT`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import sqlite3
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from simulator.experiments.comparison import MAIN_METRICS
from simulator.experiments.experiment import Results
from simulator.experiments.provenance import code_version, scenario_hash
from simulator.scenario import Scenario

INDEX_NAME = ".inmail-sim-runs.sqlite"
"""File name of the index in the parent of the run folders."""

ENV_VAR = "INMAIL_SIM_RUNS_DB"
"""Environment variable naming one index file for every run (overrides the parent-folder default)."""

DEFAULT_RUNS = Path("runs")
"""Where ``inmail-sim runs`` looks without ``--index`` or :data:`ENV_VAR`: ``runs/`` of the current folder."""

BUSY_TIMEOUT = 10.0
"""Seconds a registration waits for another process writing the index before giving up (a warning)."""

SCHEMA_VERSION = 1
"""``PRAGMA user_version`` of the index; a file with another version is not written to."""

HEADLINE_METRICS: tuple[str, ...] = tuple(m for m, _ in MAIN_METRICS)
"""The numbers kept in the index and compared by default: those ``--precision`` targets."""

RELATIVE_METRICS: frozenset[str] = frozenset(m for m, rel in MAIN_METRICS if rel)
"""Headline metrics whose difference is judged relative to the baseline (shown in %)."""

MARKET_KEYS: tuple[str, ...] = ("market",)
"""Scenario fields that, with the root seed, decide replication r's members and recruiters."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    folder TEXT NOT NULL UNIQUE,
    finished TEXT NOT NULL,
    finished_utc TEXT NOT NULL,
    registered TEXT NOT NULL,
    scenario TEXT NOT NULL,
    scenario_file TEXT,
    scenario_sha256 TEXT NOT NULL,
    market_sha256 TEXT NOT NULL,
    overrides TEXT NOT NULL,
    root_seed INTEGER NOT NULL,
    replications INTEGER NOT NULL,
    policies TEXT NOT NULL,
    baseline TEXT NOT NULL,
    package TEXT,
    model_sha256 TEXT,
    numpy TEXT
);
CREATE TABLE IF NOT EXISTS headlines (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    policy TEXT NOT NULL,
    metric TEXT NOT NULL,
    mean REAL, ci_low REAL, ci_high REAL, n INTEGER,
    diff REAL, diff_ci_low REAL, diff_ci_high REAL,
    rel_change REAL, rel_ci_low REAL, rel_ci_high REAL,
    PRIMARY KEY (run_id, policy, metric)
);
CREATE INDEX IF NOT EXISTS runs_scenario ON runs (scenario);
"""

RUN_COLUMNS: tuple[str, ...] = (
    "id", "folder", "finished", "scenario", "scenario_file", "scenario_sha256", "market_sha256", "overrides",
    "root_seed", "replications", "policies", "baseline", "package", "model_sha256", "numpy",
)
HEADLINE_VALUES: tuple[str, ...] = ("mean", "ci_low", "ci_high", "diff", "diff_ci_low", "diff_ci_high",
                                    "rel_change", "rel_ci_low", "rel_ci_high")


class RunIndexError(Exception):
    """The index cannot be read or written as asked: the message names the file and why (exit code 2)."""


# --------------------------------------------------------------------------- where the index is


def _index_file(path: str | Path) -> Path:
    """``path`` itself, or ``path/.inmail-sim-runs.sqlite`` when it is a folder."""
    file = Path(path).expanduser()
    return file / INDEX_NAME if file.is_dir() else file


def _from_environment() -> Path | None:
    env = os.environ.get(ENV_VAR, "").strip()
    return _index_file(env) if env else None


def index_for_folder(folder: str | Path) -> Path:
    """The index a run folder is registered in: ``$INMAIL_SIM_RUNS_DB``, else ``<parent>/.inmail-sim-runs.sqlite``."""
    return _from_environment() or Path(folder).resolve().parent / INDEX_NAME


def index_path(index: str | Path | None = None) -> Path:
    """The index to read: ``index`` (a file, or a folder holding one), else ``$INMAIL_SIM_RUNS_DB``, else runs/'s."""
    if index is None or str(index) == "":
        return _from_environment() or DEFAULT_RUNS / INDEX_NAME
    return _index_file(index)


def market_hash(scenario: Scenario) -> str:
    """sha256 of the scenario's ``market:`` block: with the root seed, it decides replication r's market."""
    return scenario_hash(scenario, keys=MARKET_KEYS)


# --------------------------------------------------------------------------- one run's entry


@dataclass(frozen=True)
class RunEntry:
    """One run folder as the index records it."""

    folder: str
    finished: str
    scenario: str
    scenario_file: str | None
    scenario_sha256: str
    market_sha256: str
    overrides: tuple[str, ...]
    root_seed: int
    replications: int
    policies: tuple[str, ...]
    baseline: str
    code: Mapping[str, str]
    headlines: tuple[dict[str, Any], ...]


def _float(value: Any) -> float | None:
    """A number for SQLite: NaN and missing values are NULL."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def headline_rows(results: Results) -> tuple[dict[str, Any], ...]:
    """Per policy and headline metric: mean and CI; for non-baseline policies the difference to the baseline."""
    summary = results.summary.set_index(["policy", "metric"])
    comparison = results.comparison.set_index(["policy", "metric"])
    rows = []
    for policy in results.scenario.policy_names:
        for metric in HEADLINE_METRICS:
            if (policy, metric) not in summary.index:
                continue
            s = summary.loc[(policy, metric)]
            row: dict[str, Any] = {"policy": policy, "metric": metric, "mean": _float(s["mean"]),
                                   "ci_low": _float(s["ci_low"]), "ci_high": _float(s["ci_high"]), "n": int(s["n"])}
            if (policy, metric) in comparison.index:
                c = comparison.loc[(policy, metric)]
                row.update(diff=_float(c["diff"]), diff_ci_low=_float(c["ci_low"]), diff_ci_high=_float(c["ci_high"]),
                           rel_change=_float(c["rel_change"]), rel_ci_low=_float(c["rel_ci_low"]),
                           rel_ci_high=_float(c["rel_ci_high"]))
            rows.append(row)
    return tuple(rows)


def entry_of(results: Results, folder: str | Path, manifest: Mapping[str, Any]) -> RunEntry:
    """The index entry of ``results`` written to ``folder`` with ``manifest``."""
    sc = results.scenario
    fingerprint = manifest.get("fingerprint") or {}
    return RunEntry(
        folder=str(Path(folder).resolve()),
        finished=str(manifest.get("finished") or dt.datetime.now().astimezone().isoformat(timespec="seconds")),
        scenario=sc.name, scenario_file=sc.source, scenario_sha256=str(fingerprint.get("scenario_sha256")
                                                                         or scenario_hash(sc)),
        market_sha256=market_hash(sc), overrides=tuple(sc.overrides), root_seed=int(sc.root_seed),
        replications=int(results.n_replications), policies=tuple(sc.policy_names), baseline=sc.baseline,
        code=dict(fingerprint.get("code") or code_version()), headlines=headline_rows(results),
    )


# --------------------------------------------------------------------------- the SQLite file


@contextlib.contextmanager
def connect(path: Path, *, write: bool) -> Iterator[sqlite3.Connection]:
    """A connection in autocommit mode (transactions are explicit); a read never creates the file."""
    if write:
        path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None)
    else:
        if not path.is_file():
            raise RunIndexError(f"no run index at {path} (runs are registered there by `inmail-sim run`; "
                                f"choose another with --index FILE or ${ENV_VAR})")
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT,
                              isolation_level=None)
    try:
        con.execute("PRAGMA foreign_keys = ON")
        yield con
    finally:
        con.close()


def _check_version(con: sqlite3.Connection, path: Path) -> int:
    version = int(con.execute("PRAGMA user_version").fetchone()[0])
    if version not in (0, SCHEMA_VERSION):
        raise RunIndexError(f"{path}: run index format {version}, this inmail-sim reads format {SCHEMA_VERSION}")
    return version


def register(entry: RunEntry, index: Path) -> int:
    """Write ``entry`` into ``index`` in one transaction (replacing an earlier row of its folder); its id."""
    now = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    with connect(index, write=True) as con:
        con.execute("BEGIN IMMEDIATE")
        try:
            if _check_version(con, index) == 0:
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        con.execute(statement)
                con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            con.execute("DELETE FROM runs WHERE folder = ?", (entry.folder,))
            cur = con.execute(
                "INSERT INTO runs (folder, finished, finished_utc, registered, scenario, scenario_file, "
                "scenario_sha256, market_sha256, overrides, root_seed, replications, policies, baseline, package, "
                "model_sha256, numpy) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (entry.folder, entry.finished, _utc(entry.finished), now, entry.scenario, entry.scenario_file,
                 entry.scenario_sha256, entry.market_sha256, json.dumps(list(entry.overrides)), entry.root_seed,
                 entry.replications, json.dumps(list(entry.policies)), entry.baseline, entry.code.get("package"),
                 entry.code.get("model_sha256"), entry.code.get("numpy")))
            run_id = int(cur.lastrowid or 0)
            con.executemany(
                "INSERT INTO headlines (run_id, policy, metric, n, " + ", ".join(HEADLINE_VALUES) + ") VALUES "
                "(?, ?, ?, ?" + ", ?" * len(HEADLINE_VALUES) + ")",
                [(run_id, h["policy"], h["metric"], h.get("n"), *(h.get(k) for k in HEADLINE_VALUES))
                 for h in entry.headlines])
            con.execute("COMMIT")
        except BaseException:
            if con.in_transaction:  # SQLite may have rolled back already (a full disk, an I/O error)
                con.execute("ROLLBACK")
            raise
    return run_id


def _utc(stamp: str) -> str:
    """An ISO time stamp in UTC (sortable as text); unparsable stamps sort as they are."""
    try:
        when = dt.datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    if when.tzinfo is None:
        when = when.astimezone()
    return when.astimezone(dt.UTC).isoformat(timespec="seconds")


def register_run(results: Results, folder: str | Path, manifest: Mapping[str, Any],
                 index: str | Path | None = None) -> int | None:
    """Register a written run folder; any index problem is a warning on stderr (the run is complete anyway).

    Returns the run's id, or None when it could not be registered.
    """
    path = Path(index) if index is not None else index_for_folder(folder)
    try:
        return register(entry_of(results, folder, manifest), path)
    except (sqlite3.Error, OSError, RunIndexError, ValueError) as exc:
        print(f"inmail-sim: warning: the run in {folder} is complete but was not added to the run index "
              f"{path}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return None


# --------------------------------------------------------------------------- reading the index


def _read(index: Path, sql: str, params: tuple[Any, ...] = ()) -> pd.DataFrame:
    try:
        with connect(index, write=False) as con:
            if _check_version(con, index) == 0:
                return pd.DataFrame()
            return pd.read_sql_query(sql, con, params=params)
    except (sqlite3.Error, pd.errors.DatabaseError, OverflowError) as exc:
        raise RunIndexError(f"{index}: cannot read the run index: {exc}") from None


def _is_complete(folder: str) -> bool:
    return (Path(folder) / "manifest.json").is_file()


def list_runs(index: str | Path | None = None, *, scenario: str | None = None, limit: int | None = None
              ) -> pd.DataFrame:
    """The registered runs, newest first: one row per (run, policy) with its headline numbers.

    Columns: the run's (:data:`RUN_COLUMNS`, ``exists`` - whether the folder still holds the run),
    ``policy``, ``is_baseline``, and per headline metric ``M``: ``M``, ``M_ci_low``, ``M_ci_high``,
    ``M_diff``, ``M_diff_ci_low``, ``M_diff_ci_high``, ``M_rel_change`` (difference to the baseline).
    ``scenario`` filters by scenario name; ``limit`` keeps the newest runs (0 or None: all).
    """
    path = index_path(index)
    where, params = ("WHERE scenario = ?", (scenario,)) if scenario else ("", ())
    top = f"LIMIT {int(limit)}" if limit else ""
    runs = _read(path, f"SELECT {', '.join(RUN_COLUMNS)} FROM runs {where} "
                       f"ORDER BY finished_utc DESC, id DESC {top}", params)
    if runs.empty:
        return pd.DataFrame(columns=[*RUN_COLUMNS, "exists", "policy", "is_baseline"])
    ids = [int(i) for i in runs["id"]]
    heads = _read(path, f"SELECT * FROM headlines WHERE run_id IN ({', '.join('?' * len(ids))})", tuple(ids))
    runs["exists"] = [_is_complete(f) for f in runs["folder"]]
    runs["overrides"] = [tuple(json.loads(o)) for o in runs["overrides"]]
    runs["policies"] = [tuple(json.loads(p)) for p in runs["policies"]]
    by_policy: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for h in heads.to_dict("records"):
        by_policy.setdefault((int(h["run_id"]), str(h["policy"])), []).append(h)
    rows = []
    for run in runs.to_dict("records"):
        for policy in run["policies"]:
            row = {**run, "policy": policy, "is_baseline": policy == run["baseline"]}
            for h in by_policy.get((int(run["id"]), policy), []):
                m = h["metric"]
                row.update({m: h["mean"], f"{m}_ci_low": h["ci_low"], f"{m}_ci_high": h["ci_high"],
                            f"{m}_diff": h["diff"], f"{m}_diff_ci_low": h["diff_ci_low"],
                            f"{m}_diff_ci_high": h["diff_ci_high"], f"{m}_rel_change": h["rel_change"]})
            rows.append(row)
    return pd.DataFrame(rows)


def find_run(run_id: int, index: str | Path | None = None) -> Path:
    """The folder of run ``run_id`` of the index (:class:`RunIndexError` if unknown)."""
    path = index_path(index)
    found = _read(path, "SELECT folder FROM runs WHERE id = ?", (int(run_id),))
    if found.empty:
        raise RunIndexError(f"no run {run_id} in the run index {path} (`inmail-sim runs` lists them)")
    return Path(str(found["folder"].iloc[0]))


def run_id_of(folder: str | Path, index: str | Path | None = None) -> int | None:
    """The id under which ``folder`` is registered, or None (not registered, or no readable index)."""
    try:
        found = _read(index_path(index) if index is not None else index_for_folder(folder),
                      "SELECT id FROM runs WHERE folder = ?", (str(Path(folder).resolve()),))
    except RunIndexError:
        return None
    return None if found.empty else int(found["id"].iloc[0])


def prune(index: str | Path | None = None) -> list[tuple[int, str]]:
    """Remove the runs whose folder no longer holds a finished run; return their (id, folder)."""
    path = index_path(index)
    gone = [(int(r.id), str(r.folder)) for r in _read(path, "SELECT id, folder FROM runs").itertuples()
            if not _is_complete(str(r.folder))]
    if gone:
        try:
            with connect(path, write=True) as con:
                con.execute("BEGIN IMMEDIATE")
                con.executemany("DELETE FROM runs WHERE id = ?", [(i,) for i, _ in gone])
                con.execute("COMMIT")
        except sqlite3.Error as exc:
            raise RunIndexError(f"{path}: cannot prune the run index: {exc}") from None
    return gone
