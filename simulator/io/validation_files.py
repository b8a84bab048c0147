"""The files of ``inmail-sim validate-model``: validation.csv / .md, leave_one_out.csv, anecdotes.csv, subfolders.

``validation.csv``: one row per figure (:data:`~simulator.experiments.validation_rows.COLUMNS`).
``validation.md``: the same table in Markdown with a short reading.  ``leave_one_out.csv``: per
target, the prediction of the calibration that left it out next to the full calibration's.
``anecdotes.csv``: per posterior world, the anecdote quantities.  ``calibration/`` and
``loo/<target>/``: each calibration's files (:func:`~simulator.io.posterior_files.write_posterior`).
``validation.json``: settings, worlds, minutes, the command line.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from simulator.experiments.runner import atomic_write
from simulator.experiments.validation import ValidationResult, summary_counts
from simulator.experiments.validation_rows import COLUMNS
from simulator.io.posterior_files import write_posterior


def _csv(path: Path, frame: pd.DataFrame) -> Path:
    atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False, float_format="%.6g"))
    return path


def _text(path: Path, text: str) -> Path:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return path


def loo_frame(result: ValidationResult) -> pd.DataFrame:
    """Per target: its band, the full calibration's predictive, the leave-one-out prediction."""
    rows = []
    table = result.table.set_index("figure")
    for band in result.spec.bands:
        p = result.loo_predictions.get(band.name)
        fit = result.loo.get(band.name)
        full = table.loc[band.name]
        rows.append({"target": band.name, "low": band.low if math.isfinite(band.low) else math.nan,
                     "high": band.high if math.isfinite(band.high) else math.nan,
                     "full_median": full["model_value"], "full_low": full["interval_low"],
                     "full_high": full["interval_high"],
                     "loo_median": p.median if p else math.nan, "loo_low": p.low if p else math.nan,
                     "loo_high": p.high if p else math.nan, "loo_inside_share": p.inside_share if p else math.nan,
                     "loo_verdict": full["loo_verdict"],
                     "loo_worlds": len(fit.abc.weights) if fit else 0, "loo_ess": fit.abc.ess if fit else math.nan,
                     "loo_converged": fit.abc.converged if fit else None})
    return pd.DataFrame(rows)


def _cell(x: Any, relative: bool = False) -> str:
    if isinstance(x, str):
        return x
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return ""
    return f"{x:+.1%}" if relative else f"{x:.4g}"


def markdown(result: ValidationResult) -> str:
    """validation.md: how it was made, the table, a short reading."""
    t = result.table
    counts = summary_counts(t)
    lines = [f"# Model validity: {result.scenario.name}", "",
             f"Posterior: {len(result.weights):,} worlds"
             + (f" read from {result.posterior_folder}" if result.posterior_folder else " (calibration on every "
                "target, `calibration/`)")
             + (f"; leave-one-out: one calibration per target ({result.settings.loo_worlds} worlds each, `loo/`)"
                if result.loo else "; no leave-one-out (--no-loo)") + ".",
             "Model value: posterior predictive median on fresh replications; interval: 95% of the posterior. "
             "Covered: the interval overlaps the published band.", "",
             "| figure | kind | source | model quantity | model value [95%] | published | verdict | LOO [95%] | LOO |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in t.itertuples(index=False):
        interval = f"{_cell(r.model_value)} [{_cell(r.interval_low)}, {_cell(r.interval_high)}]"
        loo = (f"{_cell(r.loo_value)} [{_cell(r.loo_low)}, {_cell(r.loo_high)}]"
               if isinstance(r.loo_value, float) and math.isfinite(r.loo_value) else "")
        lines.append(f"| {r.figure} | {r.kind} | {r.source} | {r.model_quantity} | {interval} | {r.published} | "
                     f"{r.verdict} | {loo} | {r.loo_verdict} |")
    lines += ["", "## Reading", "",
              f"{counts['covered']} figures covered, {counts['missed']} missed, {counts['not comparable']} not "
              "comparable."]
    for r in t.itertuples(index=False):
        if r.verdict == "missed":
            lines.append(f"- **{r.figure}** missed: model {_cell(r.model_value)} [{_cell(r.interval_low)}, "
                         f"{_cell(r.interval_high)}] against {r.published}.")
        elif r.verdict == "not comparable" and r.note:
            lines.append(f"- **{r.figure}** not comparable: {r.note}.")
        if r.kind == "target" and "leave-one-out calibration" in str(r.note):
            lines.append(f"- **{r.figure}**: {r.note}.")
        elif r.loo_verdict == "missed":
            lines.append(f"- **{r.figure}** is met when fitted but not predicted by the other figures (leave-one-out "
                         f"{_cell(r.loo_value)} [{_cell(r.loo_low)}, {_cell(r.loo_high)}]).")
    return "\n".join(lines) + "\n"


def write_validation(result: ValidationResult, out: str | Path, *, argv: Sequence[str] | None = None,
                     minutes: float | None = None) -> list[Path]:
    """Write every file; return the top-level ones."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    if result.full is not None:
        write_posterior(result.full, folder / "calibration", argv=argv)
    for name, res in result.loo.items():
        write_posterior(res, folder / "loo" / name, argv=argv)
    written = [_csv(folder / "validation.csv", result.table.loc[:, list(COLUMNS)])]
    written.append(_text(folder / "validation.md", markdown(result)))
    if result.loo:
        written.append(_csv(folder / "leave_one_out.csv", loo_frame(result)))
    if not result.anecdotes.empty:
        written.append(_csv(folder / "anecdotes.csv", result.anecdotes))
    manifest = {"scenario": result.scenario.source, "worlds": len(result.weights),
                "settings": result.settings.__dict__, "posterior": str(result.posterior_folder or ""),
                "scale": result.scenario.resolved.get("scale", 1.0), "counts": dict(summary_counts(result.table)),
                "minutes": minutes, "argv": list(argv) if argv is not None else None}
    written.append(_text(folder / "validation.json", json.dumps(manifest, indent=2, default=str) + "\n"))
    return written
