"""Provenance: what a study's results depend on (scenario, seed, code) and where the code came from.

A run folder's checkpoint and every manifest record :func:`run_fingerprint`; ``--resume`` compares
fingerprints (:func:`fingerprint_differences`) and refuses to mix results of another scenario, seed
or code.  The code is identified by a hash of the model's source files (:func:`model_modules`), so
editing presentation or plumbing keeps a run resumable.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from simulator.scenario import Scenario

NOT_IN_SCENARIO_HASH: tuple[str, ...] = ("replications", "max_replications", "root_seed", "sweep", "sensitivity")
"""Fields that do not change any replication's numbers (the seed is checked on its own)."""

MODEL_ROOTS: tuple[str, ...] = ("core.engine", "scenario", "experiments.experiment")
"""Modules whose source (with every ``simulator`` module they import, recursively) is the model's code."""

NOT_MODEL: frozenset[str] = frozenset({"cli", "io", "experiments.runner", "experiments.comparison",
                                       "experiments.statistics", "scenario.memory", "__main__"})
"""Presentation, plumbing and the statistics over replications (with their submodules): they never change
a replication's numbers, so editing them keeps --resume working."""

_IMPORT = re.compile(r"^\s*(?:from|import)\s+simulator\.([\w.]+)", re.MULTILINE)

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
"""The ``simulator`` package folder (this module is ``simulator/experiments/provenance.py``)."""


def package_version() -> str:
    """The installed ``inmail-sim`` version (the source tree's if not installed)."""
    try:
        from importlib.metadata import version

        return version("inmail-sim")
    except Exception:  # not installed: fall back to the package attribute
        import simulator

        return str(getattr(simulator, "__version__", "unknown"))


def git_revision() -> dict[str, Any]:
    """The commit of the source tree the package was imported from, if it is a git checkout."""
    here = str(PACKAGE_ROOT)
    try:
        rev = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=False)
        if rev.returncode != 0:
            return {"revision": None, "dirty": None}
        dirty = subprocess.run(["git", "-C", here, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=False)
        return {"revision": rev.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"revision": None, "dirty": None}


def canonical_sha256(value: Any) -> str:
    """sha256 of ``value`` as canonical JSON (sorted keys, no spaces): key order and formatting do not matter."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


HASHED_WHEN_SET: tuple[str, ...] = ("scale",)
"""Fields that change the market whatever part of it a partial hash covers; hashed only when set, so a
scenario without them keeps the hash it had before they existed (stored baselines stay valid)."""


def scenario_hash(scenario: Scenario, keys: Sequence[str] | None = None) -> str:
    """sha256 of the resolved scenario (after ``extends`` and overrides).

    Without ``keys``: everything that changes a replication's numbers (all fields but
    :data:`NOT_IN_SCENARIO_HASH`, plus the calendar) - a run folder's fingerprint.  With ``keys``:
    only those top-level fields (a baseline file hashes its model part this way).
    """
    if keys is not None:
        data = {k: scenario.resolved.get(k) for k in keys}
        data |= {k: scenario.resolved[k] for k in HASHED_WHEN_SET if scenario.resolved.get(k) is not None}
        return canonical_sha256(data)
    data = {k: v for k, v in scenario.resolved.items() if k not in NOT_IN_SCENARIO_HASH}
    data["_run"] = {"start_date": scenario.run.start_date.isoformat(), "horizon_days": scenario.run.horizon_days}
    return canonical_sha256(data)


def _module_file(name: str) -> Path | None:
    """The source file of module ``simulator.<name>`` (a package's ``__init__.py``), or None."""
    base = PACKAGE_ROOT.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _excluded(name: str) -> bool:
    return any(name == n or name.startswith(n + ".") for n in NOT_MODEL)


def model_modules() -> list[Path]:
    """The source files that decide a replication's numbers: :data:`MODEL_ROOTS` and what they import."""
    seen: dict[str, Path] = {}
    todo = list(MODEL_ROOTS)
    while todo:
        name = todo.pop()
        path = _module_file(name)
        if name in seen or _excluded(name) or path is None:
            continue
        seen[name] = path
        todo += _IMPORT.findall(path.read_text(encoding="utf-8"))
        if path.name == "__init__.py":  # a package's modules are the package's code
            todo += [f"{name}.{q.stem}" for q in path.parent.glob("*.py") if q.stem != "__init__"]
    return sorted(seen.values())


@functools.cache
def _model_hash() -> str:
    digest = hashlib.sha256()
    for path in model_modules():
        digest.update(path.relative_to(path.parents[1]).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def code_version() -> dict[str, str]:
    """Package version, a hash of the model's source files, and numpy's version (its random streams)."""
    return {"package": package_version(), "model_sha256": _model_hash(), "numpy": np.__version__}


def run_fingerprint(scenario: Scenario) -> dict[str, Any]:
    """What the results of a run folder depend on: the scenario (hash), the root seed and the code."""
    return {"scenario": scenario.name, "scenario_sha256": scenario_hash(scenario), "root_seed": scenario.root_seed,
            "code": code_version()}


def _describe_code(code: dict[str, Any]) -> str:
    if not code:
        return "unknown"
    return f"inmail-sim {code.get('package')}, model {code.get('model_sha256')}, numpy {code.get('numpy')}"


def _describe_worlds(worlds: Any) -> str:
    if not isinstance(worlds, dict):
        return "none (a plain run)"
    return (f"{worlds.get('count')} draws x {worlds.get('per_world')} replications from {worlds.get('source')}, "
            f"sha256 {str(worlds.get('sha256'))[:12]}")


def fingerprint_differences(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Why the results stored under ``stored`` cannot be mixed with a run under ``current`` (empty: they can)."""
    out = []
    if stored.get("scenario_sha256") != current.get("scenario_sha256"):
        out.append(f"the scenario differs (stored: {stored.get('scenario')!r} sha256 "
                   f"{str(stored.get('scenario_sha256'))[:12]}, now: {current.get('scenario')!r} sha256 "
                   f"{str(current.get('scenario_sha256'))[:12]})")
    if stored.get("root_seed") != current.get("root_seed"):
        out.append(f"the root seed differs (stored: {stored.get('root_seed')}, now: {current.get('root_seed')})")
    if stored.get("worlds") != current.get("worlds"):  # a run across plausible worlds
        out.append(f"the worlds differ (stored: {_describe_worlds(stored.get('worlds'))}; now: "
                   f"{_describe_worlds(current.get('worlds'))})")
    old, new = stored.get("code") or {}, current.get("code") or {}
    if old != new:
        out.append(f"the code version differs (stored: {_describe_code(old)}; now: {_describe_code(new)})")
    return out
