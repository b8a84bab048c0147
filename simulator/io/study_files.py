"""The output folders of the studies: sweep, sensitivity, calibration and explanation.

Each writer puts the study's tables (CSV), its figures and a manifest (what is needed to reproduce
it; written last) into a folder, every file atomically (a temporary name, then ``os.replace``).
A figure that fails to draw is noted in the manifest (``figure_errors``) and costs nothing else.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from simulator.core.metrics import DEPRECATED_METRICS
from simulator.experiments.calibration import CalibrationResult, calibrated_mapping
from simulator.experiments.explain import UNLIMITED_CREDITS, ExplainResult
from simulator.experiments.provenance import git_revision, package_version, run_fingerprint
from simulator.experiments.runner import atomic_write
from simulator.experiments.sensitivity import TARGET_HALF_WIDTH, SensitivityResults, needed_policies
from simulator.experiments.sweep import SweepResults
from simulator.io.plotting import (
    FIGURES_DIR,
    plot_sobol,
    plot_sweep,
    plot_sweep_heatmap,
    plot_tornado,
    render_png,
    waterfall_figure,
    write_pngs,
)
from simulator.scenario import scenario_yaml

__all__ = ["write_calibration", "write_explain", "write_figure_files", "write_sensitivity", "write_sweep"]

FigureMakers = Mapping[str, Callable[[], Figure]]
"""Figure name (without ``.png``) -> a function drawing it."""


def _write_csv(path: Path, frame: pd.DataFrame) -> None:
    atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))


def _write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    _write_text(path, json.dumps(data, indent=2, default=str) + "\n")


def _timestamp(moment: dt.datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment else None


def write_figure_files(makers: FigureMakers, folder: Path, extra: dict[str, Any]) -> list[str]:
    """Draw each figure into ``folder/figures/NAME.png``; one that fails is noted in ``extra`` and skipped."""
    pngs: dict[str, bytes] = {}
    for name, make in makers.items():
        try:
            pngs[name] = render_png(make())
        except Exception as exc:  # a broken figure must not cost the tables
            extra.setdefault("figure_errors", {})[name] = f"{type(exc).__name__}: {exc}"
    paths = write_pngs(pngs, folder)
    return [f"{FIGURES_DIR}/{p.name}" for p in paths.values()]


# --------------------------------------------------------------------------- sweep


def sweep_figures(res: SweepResults) -> dict[str, Callable[[], Figure]]:
    """For every metric of the sweep: metric and difference vs each swept parameter; a heatmap per
    policy for two-parameter grids."""
    makers: dict[str, Callable[[], Figure]] = {}
    spec = res.spec
    metrics = [m for m in spec.metrics if m not in DEPRECATED_METRICS]  # a renamed metric is drawn once
    scattered = spec.method != "grid"
    for metric in metrics:
        makers[f"sweep_{metric}"] = partial(plot_sweep, res.table, spec.paths, metric, res.baseline,
                                            scattered=scattered)
        if spec.method == "grid" and len(spec.paths) == 2:
            for policy in [p for p in res.scenario.policy_names if p != res.baseline]:
                makers[f"sweep_heatmap_{metric}_{policy}"] = partial(
                    plot_sweep_heatmap, res.table, spec.paths[0], spec.paths[1], metric, policy, res.baseline)
    return makers


def sweep_manifest(res: SweepResults, files: Iterable[str], *, argv: Sequence[str] | None = None,
                   started: dt.datetime | None = None, finished: dt.datetime | None = None,
                   workers: int | None = None, executor: str | None = None) -> dict[str, Any]:
    """What is needed to reproduce the sweep."""
    scenario, spec = res.scenario, res.spec
    git = git_revision()
    return {
        "package": "inmail-sim", "version": package_version(), "git_revision": git["revision"],
        "git_dirty": git["dirty"], "kind": "sweep", "fingerprint": run_fingerprint(scenario),
        "scenario": scenario.name, "scenario_file": scenario.source,
        "overrides": list(scenario.overrides), "baseline": scenario.baseline, "policies": scenario.policy_names,
        "root_seed": scenario.root_seed, "method": spec.method, "design_seed": spec.seed, "points": len(res.points),
        "parameters": spec.paths, "replications": spec.replications, "seeds": spec.seeds,
        "seeding": ("replication i of every policy at every point uses SeedSequence(root_seed, spawn_key=(i,))"
                    if spec.seeds == "common" else
                    "replication i of every policy at point p uses SeedSequence(point seed, spawn_key=(i,)); "
                    "point seeds are in sweep_points.csv"),
        "tasks": len(res.replications), "tasks_run": res.tasks.get("run"),
        "shared_policies": res.tasks.get("shared_policies", []), "points_run": res.tasks.get("points_run"),
        "reference": spec.reference,
        "workers": workers, "executor": executor,
        "command": " ".join(argv) if argv else None,
        "started": _timestamp(started), "finished": _timestamp(finished),
        "numpy_version": np.__version__, "pandas_version": pd.__version__, "pid": os.getpid(),
        "files": list(files),
    }


def write_sweep(res: SweepResults, out: str | Path, **manifest_kw: Any) -> Path:
    """Write ``sweep.csv``, ``sweep_points.csv``, ``sweep_replications.csv`` (``sweep_reference.csv`` with
    a ``sweep.reference``, ``sweep_comparison.csv`` with ``extra["compare"] = (a, b)``), figures and a manifest.

    ``manifest_kw``: ``argv``, ``started``, ``finished``, ``workers``, ``executor`` (:func:`sweep_manifest`).
    """
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    tables = {"sweep.csv": res.table, "sweep_points.csv": res.point_frame, "sweep_replications.csv": res.replications}
    if res.reference_table is not None:
        tables["sweep_reference.csv"] = res.reference_table
    if "compare" in res.extra:  # inmail-sim sweep --compare A B
        tables["sweep_comparison.csv"] = res.compare(*res.extra["compare"])
    for name, frame in tables.items():
        _write_csv(folder / name, frame)
    _write_text(folder / "scenario.resolved.yaml", res.scenario.resolved_yaml())
    figures = write_figure_files(sweep_figures(res), folder, res.extra)
    names = [*tables, "scenario.resolved.yaml", *figures, "manifest.json"]
    manifest = sweep_manifest(res, names, **manifest_kw) | {"figure_errors": res.extra.get("figure_errors", {})}
    _write_json(folder / "manifest.json", manifest)
    return folder


# --------------------------------------------------------------------------- sensitivity


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "_-" else "_" for c in text)


def sensitivity_figures(res: SensitivityResults) -> dict[str, Callable[[], Figure]]:
    """A Sobol-index chart and a tornado per output (when computed)."""
    makers: dict[str, Callable[[], Figure]] = {}
    for k, output in enumerate(res.output_names):
        if not res.indices.empty:
            makers[f"sobol_{k}_{_slug(output)}"] = partial(plot_sobol, res.indices, output)
        if not res.tornado.empty:
            makers[f"tornado_{k}_{_slug(output)}"] = partial(plot_tornado, res.tornado, output)
    return makers


def sensitivity_manifest(res: SensitivityResults, files: Iterable[str], *, argv: Sequence[str] | None = None,
                         started: dt.datetime | None = None, finished: dt.datetime | None = None,
                         workers: int | None = None, executor: str | None = None) -> dict[str, Any]:
    """What is needed to reproduce the sensitivity analysis."""
    scenario, spec = res.scenario, res.spec
    git = git_revision()
    model_runs = len(res.samples) * spec.replications * len(needed_policies(spec, scenario))
    return {
        "package": "inmail-sim", "version": package_version(), "git_revision": git["revision"],
        "git_dirty": git["dirty"], "kind": "sensitivity", "fingerprint": run_fingerprint(scenario),
        "scenario": scenario.name, "scenario_file": scenario.source,
        "overrides": list(scenario.overrides), "baseline": scenario.baseline, "policy": spec.policy,
        "root_seed": scenario.root_seed, "design_seed": spec.seed, "parameters": spec.paths,
        "outputs": [o.name for o in spec.outputs], "n": spec.n, "replications": spec.replications,
        "evaluations": spec.evaluations, "model_runs": model_runs,
        "bootstrap_resamples": spec.bootstrap, "confidence": spec.confidence,
        "target_half_width": TARGET_HALF_WIDTH, "warnings": res.warnings,
        "method": "Sobol: Saltelli 2010 estimators (scipy.stats.sobol_indices), BCa bootstrap over the N rows; "
                  "tornado: one at a time around the scenario's values",
        "seeding": "replication i of every evaluation uses SeedSequence(root_seed, spawn_key=(i,))",
        "workers": workers, "executor": executor, "command": " ".join(argv or []) or None,
        "started": _timestamp(started), "finished": _timestamp(finished),
        "files": list(files),
    }


def write_sensitivity(res: SensitivityResults, out: str | Path, **manifest_kw: Any) -> Path:
    """``sensitivity.csv`` (indices), ``tornado.csv``, ``sensitivity_samples.csv``, figures, manifest."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    tables = {"sensitivity.csv": res.indices, "tornado.csv": res.tornado, "sensitivity_samples.csv": res.samples}
    for name, frame in tables.items():
        _write_csv(folder / name, frame)
    figures = write_figure_files(sensitivity_figures(res), folder, res.extra)
    names = [*tables, *figures, "manifest.json"]
    manifest = sensitivity_manifest(res, names, **manifest_kw) | {"figure_errors": res.extra.get("figure_errors", {})}
    _write_json(folder / "manifest.json", manifest)
    return folder


# --------------------------------------------------------------------------- calibration


def write_calibration(result: CalibrationResult, out: str | Path, *, argv: Sequence[str] | None = None,
                      scenario_out: str | Path | None = None) -> list[Path]:
    """Write the calibration folder; return the files written (the manifest last).

    ``calibration_parameters.csv``, ``calibration_targets.csv``, ``calibration_validation.csv``,
    ``calibrated.yaml`` (or ``scenario_out``: a scenario extending the input with the fitted values,
    ready for ``inmail-sim run``) and ``calibration.json``.
    """
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, frame in (("calibration_parameters.csv", result.parameters),
                        ("calibration_targets.csv", result.targets),
                        ("calibration_validation.csv", result.validation)):
        if not frame.empty:
            _write_csv(folder / name, frame)
            written.append(folder / name)
    if result.status != "interrupted" and result.scenario.source:
        target = Path(scenario_out) if scenario_out else folder / "calibrated.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        relative = os.path.relpath(Path(result.scenario.source).resolve(), target.parent.resolve())
        header = (f"generated by inmail-sim calibrate {result.scenario.source} on {dt.date.today().isoformat()}\n"
                  f"{result.status}: {result.message}\n"
                  "run it with: inmail-sim run " + ("--allow-outside-extends " if relative.startswith("..") else "")
                  + str(target))
        _write_text(target, scenario_yaml(calibrated_mapping(result, Path(relative).as_posix()), header))
        written.append(target)
    spec = result.spec
    manifest = {
        "scenario": result.scenario.source, "policy": spec.policy, "status": result.status,
        "message": result.message, "method": spec.method, "replications": spec.replications,
        "check_replications": spec.check_replications, "root_seed": result.scenario.root_seed,
        "fit_replication_indices": list(range(spec.replications)),
        "check_replication_indices": list(range(spec.replications, spec.replications + spec.check_replications)),
        "start": dict(zip(spec.names, result.start, strict=True)),
        "fitted": dict(zip(spec.names, result.fitted, strict=True)),
        "overrides": result.overrides, "evaluations": len(result.evaluations),
        "argv": list(argv) if argv is not None else None,
    }
    _write_json(folder / "calibration.json", manifest)
    written.append(folder / "calibration.json")
    return written


# --------------------------------------------------------------------------- explanation


def write_explain(result: ExplainResult, out: str | Path, *, argv: Sequence[str] | None = None,
                  figure: bool = True) -> list[Path]:
    """Write ``explain.csv``, ``explain_replications.csv``, ``explain_worlds.csv``, ``explain.png`` and
    ``explain.json`` (the manifest, last)."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in (("explain.csv", result.table), ("explain_replications.csv", result.contributions),
                        ("explain_worlds.csv", result.worlds)):
        _write_csv(folder / name, frame)
        written.append(folder / name)
    if figure:
        png = render_png(waterfall_figure(result.table, result.metrics))
        atomic_write(folder / "explain.png", lambda tmp: tmp.write_bytes(png))
        written.append(folder / "explain.png")
    plan = result.plan
    manifest = {
        "scenario": result.scenario.source, "baseline": plan.baseline, "policy": plan.policy,
        "rules": list(plan.rules), "channels": list(plan.channels), "worlds": len(plan.worlds),
        "replications": len(result.indices), "root_seed": result.scenario.root_seed,
        "unlimited_credits": UNLIMITED_CREDITS, "metrics": list(result.metrics),
        "world_ids": {w.id: w.describe(plan.channels) for w in plan.worlds.values()},
        "argv": list(argv) if argv is not None else None,
    }
    _write_text(folder / "explain.json", json.dumps(manifest, indent=2) + "\n")
    written.append(folder / "explain.json")
    return written
