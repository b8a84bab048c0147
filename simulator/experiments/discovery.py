"""Scenario discovery: in which plausible worlds does the conclusion flip?

A run with worlds (``inmail-sim run --worlds``) holds ``worlds.csv`` (the uncertain parameters of
each replication's world) and ``world_outcomes.csv`` (every metric of every policy in every
replication). A condition such as ``diff.response_rate < 0`` (the policy minus the baseline, paired
within the replication) is true or false in each world; :mod:`simulator.experiments.prim` then finds
the box of world parameters where it is mostly true, and :func:`sentence` says it in plain words.

The condition (``--where``) is ``LHS OP NUMBER`` with OP one of ``<  <=  >  >=`` and LHS
``diff.METRIC`` (the only non-baseline policy, or ``--policy``), ``diff.POLICY.METRIC`` or
``POLICY.METRIC`` (a policy's own value); deprecated metric names are accepted through
:func:`~simulator.core.metrics.canonical_metric`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simulator.core.metrics import CURRENT_METRICS, METRIC_NAMES, canonical_metric
from simulator.experiments.design import PURPOSE_DISCOVERY, design_rng
from simulator.experiments.discovery_text import sentence
from simulator.experiments.prim import DEFAULT_RESAMPLES, PrimResult, PrimSettings, prim

OPERATORS: tuple[str, ...] = ("<", "<=", ">", ">=")
MIN_WORLDS = 10
"""Fewer worlds than this is refused: no box found in so few points would mean anything."""

WORLDS_FILE, OUTCOMES_FILE, MANIFEST_FILE = "worlds.csv", "world_outcomes.csv", "manifest.json"
_WHERE = re.compile(r"^\s*(?P<lhs>[A-Za-z0-9_.\-]+)\s*(?P<op><=|>=|<|>|==|=|!=)?\s*(?P<rhs>.*?)\s*$")


class DiscoveryInputError(ValueError):
    """A run folder or a condition that discovery cannot use (the CLI exits 2 with the message)."""


@dataclass(frozen=True)
class Condition:
    """``kind`` "diff" (policy minus baseline) or "value" (the policy's own), ``metric OP bound``."""

    kind: str
    policy: str
    baseline: str
    metric: str
    op: str
    bound: float
    text: str

    def holds(self, values: np.ndarray) -> np.ndarray:
        """0/1 per value."""
        compare = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal}[self.op]
        return compare(values, self.bound).astype(float)


@dataclass(frozen=True)
class WorldRun:
    """What discovery reads from a run folder."""

    folder: Path
    worlds: pd.DataFrame
    outcomes: pd.DataFrame
    parameters: tuple[str, ...]
    baseline: str
    policies: tuple[str, ...]
    root_seed: int


@dataclass
class DiscoveryResult:
    """The answer: ``boxes`` (one row per restricted dimension), ``trajectory``, ``sentence`` and the rest."""

    condition: Condition
    n_worlds: int
    n_true: int
    n_dropped: int
    settings: PrimSettings
    resamples: int
    root_seed: int
    sentence: str
    boxes: pd.DataFrame
    trajectory: pd.DataFrame
    prim: PrimResult | None
    data: pd.DataFrame = field(repr=False)

    @property
    def share(self) -> float:
        """Share of worlds where the condition holds."""
        return self.n_true / self.n_worlds if self.n_worlds else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """The content of ``discovery.json``."""
        c, res = self.condition, self.prim
        box = None if res is None or res.box is None else {
            "trajectory_step": res.chosen, "coverage": res.box.coverage, "density": res.box.density,
            "mass": res.box.mass, "restrictions": _records(self.boxes[["dimension", "low", "high", "quasi_p"]]),
            "dropped_or_pasted_away": [res.names[j] for j in res.boxes[res.chosen or 0].restricted
                                       if j not in res.box.restricted],
        }
        return {
            "where": c.text, "kind": c.kind, "policy": c.policy, "baseline": c.baseline, "metric": c.metric,
            "op": c.op, "bound": c.bound, "n_worlds": self.n_worlds, "n_true": self.n_true, "share_true": self.share,
            "n_dropped_missing_values": self.n_dropped, "parameters": list(self.data.columns[2:-2]),
            "box": box, "sentence": self.sentence,
            "stability": None if res is None or res.stability is None else _records(res.stability),
            "settings": {"alpha": self.settings.alpha, "min_mass": self.settings.min_mass,
                         "min_coverage": self.settings.min_coverage, "threshold": self.settings.threshold,
                         "density_tolerance": self.settings.density_tolerance,
                         "max_quasi_p": self.settings.max_quasi_p, "paste": self.settings.paste,
                         "resamples": self.resamples},
            "root_seed": self.root_seed,
            "seeding": "bootstrap resamples from design_rng(root_seed, PURPOSE_DISCOVERY)",
            "choice_rule": CHOICE_RULE,
        }


CHOICE_RULE = ("among peeling steps with coverage >= min_coverage and density >= threshold, the densest; of those "
               "within density_tolerance of it, the one with the largest coverage; then restrictions with "
               "quasi-p > max_quasi_p are dropped edge by edge (least significant first) and the box is pasted")


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
            for row in json.loads(frame.to_json(orient="records"))]


# --------------------------------------------------------------------------- the run folder


def _read_csv(path: Path, required: Sequence[str]) -> pd.DataFrame:
    if not path.is_file():
        raise DiscoveryInputError(f"{path} not found: run with --worlds first (inmail-sim run SCENARIO --worlds ...)")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise DiscoveryInputError(f"{path}: damaged CSV ({type(exc).__name__}: {exc})") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DiscoveryInputError(f"{path}: damaged: missing column(s) {', '.join(missing)} "
                                  f"(expected {', '.join(required)}, ...)")
    if frame.empty:
        raise DiscoveryInputError(f"{path}: damaged: no rows")
    return frame


def _numeric(frame: pd.DataFrame, columns: Sequence[str], path: Path, finite: bool) -> None:
    for column in columns:
        values = pd.to_numeric(frame[column], errors="coerce")
        number = values.to_numpy(float)
        bad = ~np.isfinite(number) if finite else np.isnan(number) & frame[column].notna().to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DiscoveryInputError(f"{path}: damaged: column {column} row {row + 2} = {frame[column].iloc[row]!r}"
                                      f" (a {'finite ' if finite else ''}number is needed)")
        frame[column] = values.astype(float)


def _parameter_columns(manifest: dict[str, Any], worlds: pd.DataFrame, path: Path) -> tuple[str, ...]:
    """The manifest's ``worlds.parameters`` when it lists them (each must be a column), else every column
    of ``worlds.csv`` but ``replication`` and ``world``."""
    entry = manifest.get("worlds")
    listed = entry.get("parameters") if isinstance(entry, dict) else None
    if isinstance(listed, list) and listed and all(isinstance(name, str) for name in listed):
        missing = [name for name in listed if name not in worlds.columns]
        if missing:
            raise DiscoveryInputError(f"{path}: damaged: no column for the uncertain parameter(s) {', '.join(missing)} "
                                      f"that manifest.json lists")
        return tuple(listed)
    return tuple(str(c) for c in worlds.columns if c not in ("replication", "world"))


def load_world_run(folder: str | Path) -> WorldRun:
    """Read and check ``worlds.csv``, ``world_outcomes.csv`` and ``manifest.json`` of a run folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DiscoveryInputError(f"{folder}: not a folder (give the output folder of `inmail-sim run --worlds`)")
    manifest_path = folder / MANIFEST_FILE
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DiscoveryInputError(f"{manifest_path} not found: not a finished run folder") from None
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as exc:
        raise DiscoveryInputError(f"{manifest_path}: damaged ({exc})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("baseline"), str) \
            or not isinstance(manifest.get("policies"), list):
        raise DiscoveryInputError(f"{manifest_path}: damaged: needs baseline (a name) and policies (a list)")
    seed = manifest.get("root_seed")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise DiscoveryInputError(f"{manifest_path}: root_seed = {seed!r}: a whole number >= 0 is needed")
    worlds = _read_csv(folder / WORLDS_FILE, ("replication", "world"))
    parameters = _parameter_columns(manifest, worlds, folder / WORLDS_FILE)
    if not parameters:
        raise DiscoveryInputError(f"{folder / WORLDS_FILE}: damaged: no uncertain-parameter columns")
    _numeric(worlds, ["replication", *parameters], folder / WORLDS_FILE, finite=True)
    if worlds["replication"].duplicated().any():
        dup = int(worlds.loc[worlds["replication"].duplicated(), "replication"].iloc[0])
        raise DiscoveryInputError(f"{folder / WORLDS_FILE}: damaged: replication {dup} appears twice")
    outcomes = _read_csv(folder / OUTCOMES_FILE, ("replication", "world", "policy"))
    _numeric(outcomes, ["replication"], folder / OUTCOMES_FILE, finite=True)
    outcomes["policy"] = outcomes["policy"].astype(str)
    return WorldRun(folder, worlds, outcomes, parameters, manifest["baseline"],
                    tuple(str(p) for p in manifest["policies"]), seed)


# --------------------------------------------------------------------------- the condition


def _allowed(run: WorldRun) -> str:
    others = [p for p in run.policies if p != run.baseline]
    return (f"allowed: diff.METRIC{'' if len(others) == 1 else ' (with --policy)'}, diff.POLICY.METRIC or "
            f"POLICY.METRIC, then one of {' '.join(OPERATORS)}, then a number; POLICY one of "
            f"{', '.join(run.policies)} (baseline {run.baseline}; diff needs a non-baseline one); "
            f"METRIC one of {', '.join(CURRENT_METRICS)}")


def parse_where(where: str, run: WorldRun, policy: str | None = None) -> Condition:
    """The :class:`Condition` of a ``--where`` text; :class:`DiscoveryInputError` saying what is allowed."""
    match = _WHERE.match(where)
    if match is None or match["op"] not in OPERATORS:
        op = "" if match is None else match["op"] or ""
        raise DiscoveryInputError(f"--where {where!r}: {'operator ' + repr(op) + ' unknown; ' if op else ''}"
                                  f"expected LHS OP NUMBER; {_allowed(run)}")
    lhs, op = match["lhs"], match["op"]
    try:
        bound = float(match["rhs"])
    except ValueError:
        bound = float("nan")
    if not math.isfinite(bound):
        raise DiscoveryInputError(f"--where {where!r}: {match['rhs']!r} is not a finite number; {_allowed(run)}")
    head, _, metric_name = lhs.rpartition(".")
    metric = canonical_metric(metric_name)
    if metric not in METRIC_NAMES:
        raise DiscoveryInputError(f"--where {where!r}: {metric_name!r} is not a metric; {_allowed(run)}")
    if not head:
        raise DiscoveryInputError(f"--where {where!r}: say whose {metric}: diff.{metric} (policy minus baseline) "
                                  f"or POLICY.{metric}; {_allowed(run)}")
    if policy is not None and policy not in run.policies:
        raise DiscoveryInputError(f"--policy {policy!r} is not a policy of this run; {_allowed(run)}")
    kind = "diff" if head == "diff" or head.startswith("diff.") else "value"
    named = head[5:] if kind == "diff" else head
    if named and policy is not None and named != policy:
        raise DiscoveryInputError(f"--where {where!r} names policy {named!r} but --policy is {policy!r}")
    chosen = named or policy or _only_other(run, where)
    if chosen not in run.policies:
        raise DiscoveryInputError(f"--where {where!r}: {chosen!r} is not a policy of this run; {_allowed(run)}")
    if kind == "diff" and chosen == run.baseline:
        raise DiscoveryInputError(f"--where {where!r}: the difference of the baseline {chosen!r} with itself is 0; "
                                  f"{_allowed(run)}")
    text = f"diff.{chosen}.{metric} {op} {match['rhs']}" if kind == "diff" else f"{chosen}.{metric} {op} {match['rhs']}"
    return Condition(kind, chosen, run.baseline, metric, op, bound, text)


def _only_other(run: WorldRun, where: str) -> str:
    others = [p for p in run.policies if p != run.baseline]
    if len(others) != 1:
        raise DiscoveryInputError(f"--where {where!r}: this run has {len(others)} non-baseline policies "
                                  f"({', '.join(others) or 'none'}): name one (diff.POLICY.METRIC or --policy)")
    return others[0]


def outcome_table(run: WorldRun, condition: Condition) -> tuple[pd.DataFrame, int]:
    """Per replication: replication, world, the parameters, ``value`` and ``holds`` (0/1); and how many
    replications were left out for a missing (NaN) value."""
    path = run.folder / OUTCOMES_FILE
    if condition.metric not in run.outcomes.columns:
        raise DiscoveryInputError(f"{path}: damaged: no column {condition.metric}")
    needed = [condition.policy, *([condition.baseline] if condition.kind == "diff" else [])]
    values = {}
    for name in needed:
        rows = run.outcomes[run.outcomes["policy"] == name]
        if rows["replication"].duplicated().any():
            raise DiscoveryInputError(f"{path}: damaged: policy {name} has a replication twice")
        column = pd.to_numeric(rows[condition.metric], errors="coerce")
        values[name] = pd.Series(column.to_numpy(float), index=rows["replication"].to_numpy())
        lacking = sorted(set(run.worlds["replication"]) - set(values[name].index))
        if lacking:
            raise DiscoveryInputError(f"{path}: damaged: no row for policy {name} in replication {int(lacking[0])} "
                                      f"(and {len(lacking) - 1} more)" if len(lacking) > 1 else
                                      f"{path}: damaged: no row for policy {name} in replication {int(lacking[0])}")
    reps = run.worlds["replication"].to_numpy()
    value = values[condition.policy].reindex(reps).to_numpy()
    if condition.kind == "diff":
        value = value - values[condition.baseline].reindex(reps).to_numpy()
    table = run.worlds[["replication", "world", *run.parameters]].copy()
    table["value"] = value
    keep = np.isfinite(value)
    table = table[keep].reset_index(drop=True)
    table["holds"] = condition.holds(table["value"].to_numpy())
    return table, int((~keep).sum())


# --------------------------------------------------------------------------- the answer


def discover(run_dir: str | Path, where: str, *, policy: str | None = None, settings: PrimSettings | None = None,
             resamples: int = DEFAULT_RESAMPLES) -> DiscoveryResult:
    """Scenario discovery on a run folder with worlds: the box of world parameters where ``where`` holds.

    Notebook use: ``res = discover("runs/worlds1", where="diff.response_rate < 0")``; then
    ``res.sentence``, ``res.boxes``, ``res.trajectory``.
    """
    settings = settings or PrimSettings()
    run = load_world_run(run_dir)
    condition = parse_where(where, run, policy)
    table, dropped = outcome_table(run, condition)
    if len(table) < MIN_WORLDS:
        raise DiscoveryInputError(f"{run.folder}: {len(table)} worlds with a value of {condition.metric}; "
                                  f"discovery needs at least {MIN_WORLDS}")
    y = table["holds"].to_numpy()
    n_true = int(y.sum())
    result: PrimResult | None = None
    if 0 < n_true < len(y):
        result = prim(table[list(run.parameters)].to_numpy(float), y, run.parameters, settings,
                      rng=design_rng(run.root_seed, PURPOSE_DISCOVERY), resamples=resamples)
    boxes = boxes_frame(result)
    trajectory = result.trajectory if result is not None else pd.DataFrame(columns=TRAJECTORY_COLUMNS)
    text = sentence(condition, result, n_true, len(y), settings)
    return DiscoveryResult(condition, len(y), n_true, dropped, settings, resamples, run.root_seed, text, boxes,
                           trajectory, result, table)


TRAJECTORY_COLUMNS = ["step", "coverage", "density", "mass", "n_restricted", "chosen"]
BOX_COLUMNS = ["box", "dimension", "low", "high", "prior_low", "prior_high", "quasi_p",
               "restricted_share_in_resamples", "low_resample_q10", "low_resample_q90", "high_resample_q10",
               "high_resample_q90", "coverage", "density", "mass", "n_restricted"]
"""``boxes.csv``: one row per restricted dimension of the reported box; box-level figures repeated per row."""


def boxes_frame(result: PrimResult | None) -> pd.DataFrame:
    """The ``boxes.csv`` table (:data:`BOX_COLUMNS`) of the reported box; no rows when there is none."""
    if result is None or result.box is None:
        return pd.DataFrame(columns=BOX_COLUMNS)
    frame = result.restrictions()
    box = result.box
    frame.insert(0, "box", result.chosen)
    for name, value in (("coverage", box.coverage), ("density", box.density), ("mass", box.mass),
                        ("n_restricted", box.n_restricted)):
        frame[name] = value
    return frame.reindex(columns=BOX_COLUMNS)
