"""The baseline file: summary statistics of one experiment and what produced them, as readable JSON.

Per policy and metric the mean over replications, its standard error and the number of
replications, plus the same for every policy's paired difference to the scenario's baseline
policy (row ``"new - old"``); with the root seed, the versions, the overrides and the hashes of
the scenario (:data:`MODEL_KEYS`) and of the config objects it builds.  Also the settings and
errors shared by saving and checking baselines.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simulator.experiments.baseline_schema import (
    LEGACY_METRICS,
    canonical_names,
    expected_rows,
    known_metric,
    validate_document,
)
from simulator.experiments.runner import atomic_write
from simulator.scenario import Scenario

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
    metrics: tuple[str, ...] | None = None
    """The metrics every row must hold (written into the file; a file without the list:
    :data:`~simulator.experiments.baseline_schema.LEGACY_METRICS`); None: not checked."""
    source: str | None = field(default=None, compare=False)
    """The file this baseline was read from (not stored)."""

    def _stat_metrics(self) -> list[str]:
        return list(dict.fromkeys(m for metrics in self.stats.values() for m in metrics))

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
            "metrics": list(self.metrics if self.metrics is not None else self._stat_metrics()),
            "statistics": {
                row: {m: {"mean": _num(s.mean), "se": _num(s.se), "n": s.n} for m, s in metrics.items()}
                for row, metrics in self.stats.items()
            },
        }

    @property
    def rows(self) -> list[str]:
        """The rows the statistics must have: every policy, then every paired difference."""
        return expected_rows(self.policies, self.baseline_policy)

    def missing(self) -> list[tuple[str, str]]:
        """(row, metric) pairs the file should hold (:attr:`metrics`) but does not; [] when not recorded."""
        if self.metrics is None:
            return []
        return [(row, m) for row in self.rows for m in self.metrics if m not in self.stats.get(row, {})]

    @classmethod
    def from_dict(cls, data: Any, source: str | None = None) -> Baseline:
        """Parse and validate a baseline document (:mod:`baseline_schema`); :class:`BaselineError` names the
        file, the field path and what is allowed."""
        where = source or "baseline"
        if not isinstance(data, dict):
            raise BaselineError(f"{where}: not a baseline file (expected a JSON object)")
        if data.get("format") != FORMAT:
            raise BaselineError(f"{where}: format is {data.get('format')!r}; this version reads {FORMAT!r}")
        try:
            doc = validate_document(data, where)
        except ValueError as exc:
            raise BaselineError(str(exc)) from None
        statistics: dict[str, dict[str, Stat]] = {}
        for row, metrics in doc.statistics.items():
            stats = statistics.setdefault(row, {})
            for m, s in metrics.items():
                stats.setdefault(known_metric(m) or m, Stat(s.mean, s.se, s.n))
        return cls(
            scenario=doc.scenario, scenario_hash=doc.scenario_hash, config_hash=doc.config_hash,
            root_seed=doc.root_seed, replications=doc.replications, baseline_policy=doc.baseline_policy,
            policies=tuple(doc.policies), overrides=tuple(doc.overrides), versions=dict(doc.versions),
            stats=statistics, scenario_file=doc.scenario_file, created=doc.created, git_revision=doc.git_revision,
            metrics=canonical_names(LEGACY_METRICS if doc.metrics is None else doc.metrics), source=source,
        )


def _num(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


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


def is_baseline_file(path: Path) -> bool:
    """Whether ``path`` holds a baseline file (a JSON object of :data:`FORMAT`, even a damaged one)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(data, dict) and data.get("format") == FORMAT


def check_target(path: str | Path, force: bool = False) -> Path:
    """The file a baseline may be saved to: not a folder, and not an existing file that is no baseline
    (unless ``force``): saving must never replace an unrelated file."""
    target = Path(path)
    if target.is_dir():
        raise BaselineError(f"{target}: is a folder; give the baseline file name, e.g. {target / 'baseline.json'}")
    if not force and (target.exists() or target.is_symlink()) and not is_baseline_file(target):
        raise BaselineError(f"{target}: exists and is not a baseline file (a JSON object with format {FORMAT!r}); "
                            "saving would replace it: choose another file name, or add --force (force=True) to "
                            "overwrite it")
    return target


def write_baseline_file(baseline: Baseline, path: str | Path, force: bool = False) -> Path:
    """Write ``baseline`` to ``path`` atomically, after :func:`check_target`; the text is validated first,
    so a file that could not be read back (a NaN mean, say) is never written."""
    target = check_target(path, force)
    text = dumps(baseline)
    try:
        validate_document(json.loads(text), str(target))
    except ValueError as exc:
        raise BaselineError(f"cannot save this baseline: {exc}") from None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, lambda p: p.write_text(text, encoding="utf-8"))
    except OSError as exc:
        raise BaselineError(f"{target}: cannot write the baseline file ({exc.strerror or exc})") from None
    return target


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
