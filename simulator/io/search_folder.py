"""Reading the output folder of ``inmail-sim optimize`` for the report and the notebooks.

The folder (written by the search) holds ``search.json`` (what was searched, how, how long),
``trials.csv``, ``pareto.csv``, ``references.csv``, ``hypervolume.csv``, ``pareto_policies.yaml``
and the figures ``pareto.png`` and ``convergence.png``.  ``search.json`` marks the folder kind:
:func:`is_search_folder`.  ``search.json`` and ``pareto.csv`` are required; any other file that is
missing or unreadable becomes a note (:attr:`SearchFolder.notes`), never a failed report.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from simulator.io.tables import MISSING

SEARCH_FILE = "search.json"
PARETO_FILE = "pareto.csv"
TRIALS_FILE = "trials.csv"
REFERENCES_FILE = "references.csv"
HYPERVOLUME_FILE = "hypervolume.csv"
POLICIES_FILE = "pareto_policies.yaml"
FIGURE_FILES: tuple[tuple[str, str], ...] = (("pareto", "pareto.png"), ("convergence", "convergence.png"))
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CONSTRAINT_COLUMN = re.compile(r"^constraint_(\d+)_value$")
REFERENCE_POLICY = "new_2015"
"""The policy every recommendation is compared with, rule by rule (the rule in force since 2015)."""


class SearchFolderError(ValueError):
    """The folder is not a readable optimize folder (the message names the file and says why)."""


@dataclass(frozen=True)
class Objective:
    """One objective: a metric and whether more of it is better."""

    metric: str
    direction: str

    @property
    def sign(self) -> int:
        """+1 when more is better (maximize), -1 when less is better."""
        return 1 if self.direction == "maximize" else -1


@dataclass
class SearchFolder:
    """What an optimize folder holds, read once."""

    path: Path
    meta: dict[str, Any]
    pareto: pd.DataFrame
    trials: pd.DataFrame | None = None
    references: pd.DataFrame | None = None
    hypervolume: pd.DataFrame | None = None
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    figures: dict[str, bytes] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def objectives(self) -> list[Objective]:
        """The objectives of ``search.json`` in order."""
        return [Objective(str(o.get("metric")), str(o.get("direction", "maximize")))
                for o in self.meta.get("objectives", []) if isinstance(o, dict)]

    @property
    def levers(self) -> list[dict[str, Any]]:
        """The levers of ``search.json`` (``path``, ``kind``, ``low``/``high`` or ``choices``)."""
        return [lever for lever in self.meta.get("levers", []) if isinstance(lever, dict) and "path" in lever]

    @property
    def constraint_indices(self) -> list[int]:
        """The ``i`` of the ``constraint_<i>_value`` columns of ``pareto.csv``, in order."""
        found = (CONSTRAINT_COLUMN.match(str(c)) for c in self.pareto.columns)
        return sorted(int(m.group(1)) for m in found if m)

    def constraint_text(self, position: int) -> str:
        """The text of the constraint at ``position`` (0-based) as ``search.json`` states it."""
        constraints = self.meta.get("constraints", [])
        if position < len(constraints) and isinstance(constraints[position], dict):
            return str(constraints[position].get("text", f"constraint {position}"))
        return f"constraint {position}"


    def constraint_metric(self, position: int) -> str:
        """The metric of the constraint at ``position`` (empty when ``search.json`` does not say)."""
        constraints = self.meta.get("constraints", [])
        if position < len(constraints) and isinstance(constraints[position], dict):
            return str(constraints[position].get("metric", ""))
        return ""


def is_search_folder(folder: str | Path) -> bool:
    """Whether ``folder`` is the output folder of ``inmail-sim optimize`` (it holds ``search.json``)."""
    return (Path(folder) / SEARCH_FILE).is_file()


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise SearchFolderError(f"{path}: cannot be read: {type(exc).__name__}: {exc}") from None
    if not isinstance(data, dict):
        raise SearchFolderError(f"{path}: not a JSON object (is it the search.json of `inmail-sim optimize`?)")
    return data


def _read_csv(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise SearchFolderError(f"{path.name} cannot be read: {type(exc).__name__}: {exc}") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise SearchFolderError(f"{path.name} lacks the column{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    return frame


def objective_columns(metric: str) -> tuple[str, str, str]:
    """The mean and 95% CI columns of an objective metric."""
    return f"{metric}_mean", f"{metric}_ci_low", f"{metric}_ci_high"


def read_search_folder(folder: str | Path) -> SearchFolder:
    """Read an optimize folder; :class:`SearchFolderError` when ``search.json`` or ``pareto.csv`` is unusable."""
    path = Path(folder)
    if not path.is_dir():
        raise SearchFolderError(f"{folder}: no such folder")
    meta = _read_json(path / SEARCH_FILE)
    if not (path / PARETO_FILE).is_file():
        raise SearchFolderError(f"{folder}: not a finished optimize folder, missing {PARETO_FILE}: the search has "
                                "not finished (run `inmail-sim optimize` again to resume it)")
    found = SearchFolder(path, meta, pd.DataFrame())
    wanted = tuple(c for o in found.objectives for c in objective_columns(o.metric))
    found.pareto = _read_csv(path / PARETO_FILE, ("name", *wanted))
    found.pareto["name"] = found.pareto["name"].astype(str)
    found.trials = _optional(found, TRIALS_FILE, ("trial", "state", *wanted))
    found.references = _optional(found, REFERENCES_FILE, ("name", *wanted))
    if found.references is not None:
        found.references["name"] = found.references["name"].astype(str)
    found.hypervolume = _optional(found, HYPERVOLUME_FILE, ("trial", "hypervolume"))
    found.policies = _read_policies(found)
    for name, file in FIGURE_FILES:
        try:
            data = (path / file).read_bytes()
        except OSError:
            found.notes[name] = f"{file} is missing"
            continue
        if data.startswith(PNG_MAGIC):
            found.figures[name] = data
        else:
            found.notes[name] = f"{file} is not a PNG image"
    return found


def _optional(found: SearchFolder, file: str, required: tuple[str, ...]) -> pd.DataFrame | None:
    """An optional table of the folder, or None with a note saying why."""
    if not (found.path / file).is_file():
        found.notes[file] = f"{file} is missing"
        return None
    try:
        return _read_csv(found.path / file, required)
    except SearchFolderError as exc:
        found.notes[file] = str(exc)
        return None


def _read_policies(found: SearchFolder) -> dict[str, dict[str, Any]]:
    """The policy blocks of ``pareto_policies.yaml`` by name (empty, with a note, if unreadable)."""
    file = found.path / POLICIES_FILE
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        found.notes[POLICIES_FILE] = f"{POLICIES_FILE} cannot be read: {type(exc).__name__}"
        return {}
    policies = data.get("policies") if isinstance(data, dict) else None
    if not isinstance(policies, dict):
        found.notes[POLICIES_FILE] = f"{POLICIES_FILE} has no `policies:` mapping"
        return {}
    return {str(name): block for name, block in policies.items() if isinstance(block, dict)}


# --------------------------------------------------------------------------- derived facts


def row_means(row: pd.Series, objectives: list[Objective]) -> list[float]:
    """The objective means of one row, in the order of ``objectives``."""
    return [as_float(row.get(objective_columns(o.metric)[0])) for o in objectives]


def no_worse(means: list[float], reference: list[float], objectives: list[Objective]) -> bool:
    """Whether ``means`` is at least as good as ``reference`` on every objective (by the means)."""
    return all(o.sign * (m - r) >= 0 for m, r, o in zip(means, reference, objectives, strict=True))


def reference_row(found: SearchFolder, name: str = REFERENCE_POLICY) -> pd.Series | None:
    """The row of ``references.csv`` named ``name`` (None without it)."""
    if found.references is None:
        return None
    rows = found.references[found.references["name"] == name]
    return None if rows.empty else rows.iloc[0]


def converged_at(hypervolume: pd.DataFrame, share: float = 0.99) -> int | None:
    """The first trial at which the hypervolume reached ``share`` of its final value (None if never positive)."""
    frame = hypervolume.sort_values("trial")
    values = pd.to_numeric(frame["hypervolume"], errors="coerce")
    final = float(values.iloc[-1]) if len(values) else math.nan
    if not math.isfinite(final) or final <= 0:
        return None
    reached = frame["trial"][values >= share * final]
    return int(reached.iloc[0]) if len(reached) else None


def best_under_constraints(found: SearchFolder) -> list[tuple[str, str, str]]:
    """``(constraint set text, objective, policy name)`` of ``search.json``'s ``best_under_constraints``
    (``objective``: ``maximize response_rate``, or empty when the entry names none)."""
    found_best = []
    for entry in found.meta.get("best_under_constraints") or []:
        if not isinstance(entry, dict) or "name" not in entry:
            continue
        text = next((entry[k] for k in ("constraints", "text", "constraint_set", "constraint") if k in entry), "")
        if isinstance(text, list):
            text = " and ".join(str(t) for t in text)
        found_best.append((str(text) or "no constraints", str(entry.get("objective", "")), str(entry["name"])))
    return found_best


def range_ends(found: SearchFolder) -> list[tuple[str, float, str, list[str]]]:
    """``(lever path, end, "lower"|"upper", Pareto policy names)`` for every numeric lever end some Pareto
    policy sits on."""
    ends = []
    for lever in found.levers:
        path, low, high = str(lever["path"]), as_float(lever.get("low")), as_float(lever.get("high"))
        if lever.get("kind") == "choice" or path not in found.pareto.columns:
            continue
        values = pd.to_numeric(found.pareto[path], errors="coerce")
        for end, word in ((low, "lower"), (high, "upper")):
            names = found.pareto["name"][(values - end).abs() <= 1e-9 * max(1.0, abs(end))].tolist()
            if math.isfinite(end) and names:
                ends.append((path, end, word, [str(n) for n in names]))
    return ends


def shown_value(value: Any) -> str:
    """A lever value or count as text: ``true``/``false``, whole floats without ``.0``, 4 significant digits."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if not math.isfinite(value):
            return MISSING
        return str(int(value)) if value.is_integer() else f"{value:.4g}"
    return str(value)


def as_float(value: Any) -> float:
    """``value`` as a float, NaN when it is not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
