"""The rows of ``validation.csv``: per figure the model quantity, its prediction, the published value, the verdict.

:func:`figure_rows`: the calibration targets (kind ``target``, with their leave-one-out
prediction) and validation figures (``held out`` when a figure was published, else
``prediction``).  :func:`extra_rows`: the figures of POLICY_FACTS section 5 no target reads and
the anecdotes (:mod:`.anecdotes`), from per-world values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from simulator.experiments.bayes_calibration import BayesSpec
from simulator.experiments.posterior_predictive import figure_summary
from simulator.experiments.target_bands import Band

COLUMNS = ("figure", "source", "kind", "model_quantity", "model_value", "interval_low", "interval_high",
           "published", "verdict", "inside_share", "loo_value", "loo_low", "loo_high", "loo_verdict", "note")


@dataclass(frozen=True)
class Prediction:
    """A figure's posterior predictive: median, 95% interval, share of the posterior inside its band."""

    median: float
    low: float
    high: float
    inside_share: float


def verdict(band: Band, low: float, high: float) -> str:
    """covered (the interval overlaps the band), missed, or not comparable (no published figure / no value)."""
    if band.kind == "none" or not (math.isfinite(low) and math.isfinite(high)):
        return "not comparable"
    return "covered" if low <= band.high and high >= band.low else "missed"


def predict(band: Band, values: np.ndarray, weights: np.ndarray) -> Prediction:
    """The weighted median and 95% interval of per-world ``values`` and the share inside ``band``."""
    s = figure_summary(band, np.asarray(values, dtype=np.float64), np.asarray(weights, dtype=np.float64))
    return Prediction(s["median"], s["q025"], s["q975"], s["inside_share"])


def quantity(band: Band, fitted: str) -> str:
    """What the model measures for a band, in words."""
    if band.baseline is not None:
        how = "relative change" if band.relative else "difference"
        return (f"{band.key}: {band.setting} vs {band.baseline}, {how} paired per replication "
                "(common random numbers), mean over replications")
    return f"{band.key} under {band.setting or fitted}, mean over replications"


def _row(figure: str, source: str, kind: str, what: str, band: Band, p: Prediction, published: str,
         note: str = "", loo: Prediction | None = None, loo_band: Band | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "figure": figure, "source": source, "kind": kind, "model_quantity": what, "model_value": p.median,
        "interval_low": p.low, "interval_high": p.high, "published": published,
        "verdict": "not comparable" if note.startswith("not comparable") else verdict(band, p.low, p.high),
        "inside_share": p.inside_share, "loo_value": math.nan, "loo_low": math.nan, "loo_high": math.nan,
        "loo_verdict": "", "note": note.removeprefix("not comparable: ")}
    if loo is not None:
        row.update(loo_value=loo.median, loo_low=loo.low, loo_high=loo.high,
                   loo_verdict=verdict(loo_band or band, loo.low, loo.high))
    return row


def figure_rows(spec: BayesSpec, values: Mapping[str, np.ndarray], weights: np.ndarray,
                loo: Mapping[str, Prediction]) -> list[dict[str, Any]]:
    """A row per target (with its LOO prediction when there is one) and per validation figure."""
    rows = []
    for band in spec.bands:
        p = predict(band, values[band.name], weights)
        rows.append(_row(band.name, band.source, "target", quantity(band, spec.policy), band, p, band.describe(),
                         loo=loo.get(band.name)))
    for band in spec.check_bands:
        p = predict(band, values[band.name], weights)
        kind = "prediction" if band.kind == "none" else "held out"
        note = "not comparable: no published figure (a prediction)" if band.kind == "none" else ""
        rows.append(_row(band.name, band.source, kind, quantity(band, spec.policy), band,
                         p, band.describe() if band.kind != "none" else "", note))
    return rows


def _band(name: str, low: float, high: float) -> Band:
    width = high - low if math.isfinite(high - low) and high > low else abs(high if math.isfinite(high) else low)
    return Band(name, name, low, high, width or 1.0, "band")


def _values(frame: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    if column not in frame.columns:
        return np.array([]), np.array([])
    return frame[column].to_numpy(dtype=np.float64), frame["weight"].to_numpy(dtype=np.float64)


EXTRAS: tuple[tuple[str, str, str, str, tuple[float, float], str, str], ...] = (
    ("ignore_non_personalized", "seed 000: 48% of B2B decision makers ignore messages that are not personalized",
     "held out", "ignore_share", (0.48, 0.48),
     "1 - E[p(answer given pi=0)] / E[p(answer given pi=1)] over the active members of the calibrated recruiter "
     "market, per posterior world (exact; fatigue cancels)", "48%"),
    ("research_user_collapse", "seed 003: one research user's response rate fell from 30-40% to 0.05%",
     "anecdote", "seat_collapse_share", (0.0, 1.0),
     "share of the seats with a rate >= 30% under old_2014 whose rate is < 1% under new_2015 (>= 20 InMails "
     "under both; same seats, same seed; the heaviest posterior worlds)", "one user: 30-40% -> 0.05%"),
    ("team_pool_2015", "seed 003 (comment): a 4-seat team's pool 'never exceeded 400' under the new policy",
     "anecdote", "team_pool_max_new", (-math.inf, 400.0),
     "largest balance of four average seats over the year under new_2015 (4 x total balance / seats)",
     "<= 400"),
    ("team_inflow_2014", "seed 003 (comment): 'upwards of 900-1000' credits accrued per month before",
     "anecdote", "team_inflow_per_month_old", (900.0, 1000.0),
     "credits coming in per month (allotments + refunds) for four average seats under old_2014", "900 .. 1000"),
)
"""(figure, source, kind, column of the anecdotes frame, published band, model quantity, published text)."""

NOT_COMPARABLE = {
    "research_user_collapse": "not comparable: one user's account is not a share of seats; the model value says "
                              "whether any seat's rate collapses like that under the 2015 rule",
}


def extra_rows(anecdotes: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of the figures no target reads, from the per-world anecdote values."""
    rows = []
    for figure, source, kind, column, (low, high), what, published in EXTRAS:
        band = _band(figure, low, high)
        x, w = _values(anecdotes, column)
        p = predict(band, x, w) if len(x) else Prediction(math.nan, math.nan, math.nan, math.nan)
        note = NOT_COMPARABLE.get(figure, "" if len(x) else "not comparable: the scenario has no validation "
                                                            "figure comparing old_2014 with new_2015 to run it on")
        rows.append(_row(figure, source, kind, what, band, p, published, note))
    return rows
