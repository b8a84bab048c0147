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
