"""The files of a Bayesian calibration: posterior.csv, predictive.csv, calibration.json and figures.

``posterior.csv``: ``world, weight, <one column per uncertain parameter>`` (weights sum to 1; the
worlds of ``inmail-sim run`` read it).  ``predictive.csv``: per target ``target, low, high, mean,
q025, q975, inside_share`` (a one-sided bound has an empty ``low`` or ``high``), from fresh
replications of every posterior world.  ``predictive_checks.csv``: the validation figures the
posterior predicts.  ``calibration.json``: method, stages, tolerance schedule, acceptance rates,
effective sample size, simulations, minutes, seeds, scale.  Figures: ``posterior_pairs.png``,
``predictive.png``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simulator.experiments.bayes_calibration import BayesResult
from simulator.experiments.runner import atomic_write
from simulator.io.plotting.canvas import render_png
from simulator.io.plotting.posterior_figures import posterior_pairs, predictive_intervals

PREDICTIVE_COLUMNS = ("target", "low", "high", "mean", "q025", "q975", "inside_share")


def _csv(path: Path, frame: pd.DataFrame) -> None:
    atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False, float_format="%.10g"))


def _bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def prior_ranges(result: BayesResult) -> list[tuple[float, float]]:
    """Each parameter's plotted range: its prior's support, or its 0.5%-99.5% quantiles when unbounded."""
    out = []
    for p in result.spec.parameters:
        lo, hi = p.prior.low, p.prior.high
        if not (math.isfinite(lo) and math.isfinite(hi)):
            qlo, qhi = (float(v) for v in p.prior.ppf(np.array([0.005, 0.995])))
            lo, hi = (lo if math.isfinite(lo) else qlo), (hi if math.isfinite(hi) else qhi)
        out.append((lo, hi))
    return out


def write_posterior(result: BayesResult, out: str | Path, *, argv: Sequence[str] | None = None) -> list[Path]:
    """Write the folder's files (figures last but one, calibration.json last); return them."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    _csv(folder / "posterior.csv", result.posterior)
    written.append(folder / "posterior.csv")
    _csv(folder / "posterior_summary.csv", result.parameter_table())
    written.append(folder / "posterior_summary.csv")
    if not result.predictive.empty:
        frame = result.predictive.loc[:, list(PREDICTIVE_COLUMNS)].replace([np.inf, -np.inf], np.nan)
        _csv(folder / "predictive.csv", frame)
        written.append(folder / "predictive.csv")
        _bytes(folder / "predictive.png", render_png(predictive_intervals(result.predictive)))
        written.append(folder / "predictive.png")
    if not result.checks.empty:
        _csv(folder / "predictive_checks.csv", result.checks)
        written.append(folder / "predictive_checks.csv")
    _bytes(folder / "posterior_pairs.png",
           render_png(posterior_pairs(result.posterior, result.spec.names, prior_ranges(result))))
    written.append(folder / "posterior_pairs.png")
    manifest: dict[str, Any] = {**result.manifest(), "argv": list(argv) if argv is not None else None}
    atomic_write(folder / "calibration.json",
                 lambda tmp: tmp.write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8"))
    written.append(folder / "calibration.json")
    return written
