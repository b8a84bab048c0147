"""Plausible worlds: a set of values of the uncertain parameters, read from a posterior or drawn from the prior.

A :class:`WorldSet` is the source: parameter names, values (n x d), weights and ids.  It comes from a
posterior file (:func:`read_posterior`, the ``posterior.csv`` a Bayesian calibration writes: columns
``world, weight, <parameters>``, every problem reported with the file, line and column) or from the
prior (:func:`prior_worlds`: a Latin hypercube through each ``Prior.ppf``, seeded from the root seed).

A :class:`WorldPlan` says which world each replication runs in.  The rule: ``W`` world draws of ``R``
replications each; replication ``i`` belongs to draw ``i // R``.  From the prior, draw ``w`` is design
point ``w``.  From a posterior, the ``W`` draws are a *systematic resample* of the rows by weight (one
uniform number ``u`` from ``design_rng(root_seed, PURPOSE_WORLDS)``; draw ``w`` takes the row whose
cumulative normalised weight first exceeds ``(u + w) / W``): every draw is equally likely, a row of
weight ``p`` fills about ``p W`` draws, and a zero-weight row none.  Everything follows from the root seed.
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import SupportsIndex

import numpy as np
import pandas as pd

from simulator.core.config import ConfigError, Market
from simulator.experiments.design import PURPOSE_WORLDS, design_rng, unit_sample
from simulator.scenario.uncertain import UncertainParameter, world_market

PRIOR = "prior"
"""The ``--worlds`` value that draws the worlds from the scenario's priors instead of a posterior file."""

POSTERIOR_FILE = "posterior.csv"
"""The file ``--worlds DIR`` reads in ``DIR``."""

DEFAULT_WORLD_COUNT = 40
"""World draws when ``--world-count`` is not given."""

DEFAULT_PER_WORLD = 2
"""Replications per world when ``--replications`` is not given (two is the least that separates Monte
Carlo noise from the spread across worlds)."""

MAX_SHOWN = 10
"""How many problems of a posterior file one message lists."""


class WorldsFileError(ValueError):
    """The worlds cannot be built: a posterior file that is unreadable or invalid, or a bad world count.

    The message names the file, the line (data rows start on line 2) and the column; the CLI exits 2.
    """


@dataclass(frozen=True)
class WorldSet:
    """Where the worlds come from: ``values[k, j]`` is parameter ``names[j]`` in world ``ids[k]``.

    ``weights`` are normalised to sum to 1; ``source`` is ``"prior"`` or the posterior file.
    """

    names: tuple[str, ...]
    values: np.ndarray
    weights: np.ndarray
    ids: tuple[object, ...]
    source: str

    @property
    def size(self) -> int:
        return len(self.ids)

    def digest(self) -> str:
        """sha256 of the names, ids, values and weights (a resumed run must use the same worlds)."""
        h = hashlib.sha256()
        h.update(repr((self.names, self.ids)).encode())
        h.update(np.ascontiguousarray(self.values, dtype=np.float64).tobytes())
        h.update(np.ascontiguousarray(self.weights, dtype=np.float64).tobytes())
        return h.hexdigest()


# --------------------------------------------------------------------------- the prior


def prior_worlds(parameters: Sequence[UncertainParameter], count: int, root_seed: int) -> WorldSet:
    """``count`` worlds spread over the priors: a Latin hypercube in [0, 1)^d through each prior's ``ppf``."""
    _check_count(count)
    if not parameters:
        raise WorldsFileError("--worlds prior: the scenario has no uncertain: block (no parameters to vary)")
    u = unit_sample("lhs", count, len(parameters), design_rng(root_seed, PURPOSE_WORLDS))
    values = np.column_stack([p.prior.ppf(u[:, j]) for j, p in enumerate(parameters)])
    return WorldSet(tuple(p.name for p in parameters), values, np.full(count, 1.0 / count),
                    tuple(range(count)), PRIOR)


def _check_count(count: int) -> None:
    if count < 2:
        raise WorldsFileError(f"--world-count {count}: at least 2 worlds are needed to see a spread across them")


# --------------------------------------------------------------------------- a posterior file


def read_posterior(path: str | Path, parameters: Sequence[UncertainParameter]) -> WorldSet:
    """The worlds of ``path`` (``world, weight, <one column per uncertain parameter>``; a folder: its
    ``posterior.csv``), checked.

    Raises :class:`WorldsFileError` for a file that cannot be read, missing or unknown columns,
    values that are not finite numbers or lie outside their prior's support, and weights that are
    negative, not finite or all zero; each problem names the file, line and column.
    """
    path = Path(path)
    if path.is_dir():  # the folder a Bayesian calibration wrote
        path = path / POSTERIOR_FILE
    names = [p.name for p in parameters]
    if not names:
        raise WorldsFileError(f"--worlds {path}: the scenario has no uncertain: block, so no column of the file "
                              "can be used")
    frame = _read_frame(path)
    _check_columns(path, list(map(str, frame.columns)), names)
    problems: list[str] = []
    ids = frame["world"].tolist()
    if frame["world"].isna().any() or len(set(map(str, ids))) != len(ids):
        dup = frame["world"].astype(str).duplicated(keep=False) | frame["world"].isna()
        problems += [_where(path, k, ids[k], "world", ids[k], "world ids must be present and unique")
                     for k in np.flatnonzero(dup.to_numpy())]
    weights = _numbers(path, frame, "weight", ids, problems)
    bad = np.isfinite(weights) & (weights < 0)
    problems += [_where(path, k, ids[k], "weight", weights[k], "a weight must be >= 0") for k in np.flatnonzero(bad)]
    values = np.column_stack([_numbers(path, frame, name, ids, problems) for name in names])
    for j, parameter in enumerate(parameters):
        low, high = parameter.prior.low, parameter.prior.high
        col = values[:, j]
        outside = np.isfinite(col) & ((col < low) | (col > high))
        problems += [_where(path, k, ids[k], parameter.name, col[k],
                            f"outside the support of its prior ({parameter.prior.kind}: [{low:g}, {high:g}])")
                     for k in np.flatnonzero(outside)]
    _raise(path, problems)
    total = float(weights.sum())
    if not total > 0:
        raise WorldsFileError(f"{path}: column weight: every weight is 0; at least one world needs a weight > 0")
    return WorldSet(tuple(names), values, weights / total, tuple(ids), str(path))


def _read_frame(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, skipinitialspace=True)
    except FileNotFoundError:
        raise WorldsFileError(f"--worlds {path}: no such file (give a posterior.csv or 'prior')") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise WorldsFileError(f"{path}: cannot be read as a CSV file ({type(exc).__name__}: {exc})") from None
    if frame.empty:
        raise WorldsFileError(f"{path}: no worlds (the file has a header but no rows)")
    return frame


def _check_columns(path: Path, columns: list[str], names: Sequence[str]) -> None:
    expected = ["world", "weight", *names]
    missing = [c for c in expected if c not in columns]
    unknown = [c for c in columns if c not in expected]
    parts = []
    if missing:
        parts.append(f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    if unknown:
        parts.append(f"unknown column{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} (not a parameter of the "
                     "scenario's uncertain: block)")
    if len(set(columns)) != len(columns):
        parts.append("a column appears twice")
    if parts:
        raise WorldsFileError(f"{path}: {'; '.join(parts)}; expected the columns {', '.join(expected)}")


def _numbers(path: Path, frame: pd.DataFrame, column: str, ids: list[object], problems: list[str]) -> np.ndarray:
    """Column ``column`` as floats; every entry that is not a finite number is a problem."""
    raw = frame[column]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    for k in np.flatnonzero(~np.isfinite(values)):
        problems.append(_where(path, k, ids[k], column, raw.iloc[k], "not a finite number"))
    return values


def _where(path: Path, row: SupportsIndex, world: object, column: str, value: object, message: str) -> str:
    return f"{path}:{operator.index(row) + 2}: world {world}, column {column} = {value}: {message}"


def _raise(path: Path, problems: list[str]) -> None:
    if not problems:
        return
    shown = problems[:MAX_SHOWN]
    more = f"\n  ... and {len(problems) - MAX_SHOWN} more" if len(problems) > MAX_SHOWN else ""
    raise WorldsFileError(f"{path}: {len(problems)} problem{'s' if len(problems) != 1 else ''} in the worlds "
                          "file:\n  " + "\n  ".join(shown) + more)


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class WorldPlan:
    """Which world each replication runs in: ``rows[w]`` is the row of ``world_set`` of draw ``w``;
    replication ``i`` belongs to draw ``i // per_world``."""

    world_set: WorldSet
    rows: np.ndarray
    per_world: int

    @property
    def count(self) -> int:
        """W: the number of world draws."""
        return len(self.rows)

    @property
    def replications(self) -> int:
        return self.count * self.per_world

    def draw_of(self, replication: np.ndarray | int) -> np.ndarray:
        return np.asarray(replication) // self.per_world

    def replication_frame(self) -> pd.DataFrame:
        """One row per replication: ``replication, world, <parameter values>`` (``worlds.csv``)."""
        reps = np.arange(self.replications)
        rows = self.rows[self.draw_of(reps)]
        ids = [self.world_set.ids[k] for k in rows]
        out = pd.DataFrame({"replication": reps, "world": ids})
        for j, name in enumerate(self.world_set.names):
            out[name] = self.world_set.values[rows, j]
        return out

    def fingerprint(self) -> dict[str, object]:
        """What a resumed run must share with this one (the worlds and how replications map to them)."""
        return {"source": self.world_set.source, "sha256": self.world_set.digest(), "count": self.count,
                "per_world": self.per_world, "rows_sha256": hashlib.sha256(self.rows.tobytes()).hexdigest()}


def plan_worlds(world_set: WorldSet, count: int, per_world: int, root_seed: int) -> WorldPlan:
    """``count`` world draws of ``per_world`` replications each (the rule in the module docstring)."""
    _check_count(count)
    if per_world < 2:
        raise WorldsFileError(f"--replications {per_world}: a run across worlds needs at least 2 replications per "
                              "world to tell Monte Carlo noise from the spread across worlds")
    if world_set.source == PRIOR:
        if world_set.size != count:
            raise ValueError(f"a prior world set of {world_set.size} points cannot fill {count} draws")
        return WorldPlan(world_set, np.arange(count), per_world)
    rows = systematic_resample(world_set.weights, count, design_rng(root_seed, PURPOSE_WORLDS))
    return WorldPlan(world_set, rows, per_world)


def systematic_resample(weights: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` row indices by systematic resampling of ``weights`` (>= 0, not all 0); zero weights never drawn."""
    w = np.asarray(weights, dtype=np.float64)
    cum = np.cumsum(w) / w.sum()
    last = int(np.flatnonzero(w > 0)[-1])
    cum[last:] = 1.0  # round-off must not leave positions past the last row that can be drawn
    positions = (rng.random() + np.arange(count)) / count
    return np.searchsorted(cum, positions, side="right").astype(np.int64)


def world_markets(market: Market, parameters: Sequence[UncertainParameter], plan: WorldPlan) -> dict[int, Market]:
    """The market of every replication of ``plan`` (one market object per world draw, shared by its replications).

    A value the market's own range check refuses raises :class:`WorldsFileError` naming the row and column.
    """
    source = plan.world_set
    by_row: dict[int, Market] = {}
    problems: list[str] = []
    for row in dict.fromkeys(int(r) for r in plan.rows):
        values = source.values[row]
        try:
            by_row[row] = world_market(market, parameters, values)
        except (ConfigError, KeyError) as exc:
            column = _column_of(exc, parameters)
            shown = "" if column is None else f", column {column} = {values[source.names.index(column)]:g}"
            where = f"{source.source}:{row + 2}" if source.source != PRIOR else f"prior draw {row}"
            problems.append(f"{where}: world {source.ids[row]}{shown}: the market refuses it: {exc}")
    if problems:
        raise WorldsFileError(f"{len(problems)} world{'s' if len(problems) != 1 else ''} outside the model's ranges:"
                              "\n  " + "\n  ".join(problems[:MAX_SHOWN]))
    return {i: by_row[int(plan.rows[i // plan.per_world])] for i in range(plan.replications)}


def _column_of(exc: Exception, parameters: Sequence[UncertainParameter]) -> str | None:
    """The parameter whose market field the error names (best effort: the last segment of a path)."""
    text = str(exc)
    for p in parameters:
        for path, _ in p.paths:
            if path in text or path.rsplit(".", 1)[-1] in text:
                return p.name
    return None


def worlds_summary(plan: WorldPlan) -> dict[str, object]:
    """The manifest's ``worlds`` entry: source, count, parameter names, how replications map to worlds."""
    return {
        "source": plan.world_set.source, "count": plan.count, "replications_per_world": plan.per_world,
        "parameters": list(plan.world_set.names), "distinct_worlds": len(set(plan.rows.tolist())),
        "rule": ("replication i runs in world draw i // replications_per_world; "
                 + ("draws are Latin-hypercube points through each prior's quantile function"
                    if plan.world_set.source == PRIOR else
                    "draws are a systematic resample of the posterior rows by weight")
                 + f" (seeded from the root seed, design stream {PURPOSE_WORLDS})"),
        "sha256": plan.world_set.digest(),
    }

