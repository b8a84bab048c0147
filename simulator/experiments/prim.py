"""PRIM, the Patient Rule Induction Method (Friedman & Fisher 1999), for scenario discovery.

Given points ``x`` (one row per world, one column per uncertain parameter) and a 0/1 outcome ``y``
(the condition holds in that world), PRIM looks for a box - a lower and an upper bound per
dimension - in which ``y`` is mostly 1:

- **peeling**: from the box holding every point, try removing the ``alpha`` share of the points in
  the box at the lower or at the upper edge of each dimension, keep the peel after which the mean of
  ``y`` in the box is highest, and repeat while the box keeps at least ``min_mass`` of the points.
  Each step is a point of the **trajectory** (coverage, density, mass, restricted dimensions);
- **choice**: among trajectory points with coverage >= ``min_coverage`` and density >= ``threshold``,
  the densest; of the points within ``density_tolerance`` of that density, the one with the largest
  coverage (without the tolerance, the last peels inside the true region, which trade coverage for
  noise-sized gains in density, would be kept);
- **dropping**: an edge of the chosen box whose quasi-p (below, for that edge alone) exceeds
  ``max_quasi_p`` is widened back to the prior range, the least significant first, recomputing after
  each (greedy peeling often restricts a noise dimension, or the far edge of a real one, early and
  keeps it; the quasi-p finds it);
- **pasting**: widen the chosen box again, one edge at a time by about ``alpha`` of its points,
  while that raises the density;
- **quasi-p** of each restriction (as EMA Workbench does): with that restriction removed the box
  holds ``T_j`` points of density ``p_j``; the one-sided binomial tail ``P(Binom(T, p_j) >= H)``
  for the ``H`` of ``T`` points of interest in the box. Small: the restriction matters;
- **stability**: PRIM again on bootstrap resamples of the points; how often each dimension is
  restricted, and the spread of its bounds.

Coverage = share of all points of interest that are in the box; density = share of the box's points
that are of interest; mass = share of all points in the box. Pure numpy/scipy; the resampling draws
from a generator passed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import binom

DEFAULT_ALPHA = 0.05
DEFAULT_MIN_MASS = 0.05
DEFAULT_MIN_COVERAGE = 0.5
DEFAULT_DENSITY_TOLERANCE = 0.02
DEFAULT_MAX_QUASI_P = 0.05
DEFAULT_RESAMPLES = 50


@dataclass(frozen=True)
class PrimSettings:
    """The knobs of one PRIM run (see the module docstring)."""

    alpha: float = DEFAULT_ALPHA
    min_mass: float = DEFAULT_MIN_MASS
    min_coverage: float = DEFAULT_MIN_COVERAGE
    threshold: float = 0.0
    density_tolerance: float = DEFAULT_DENSITY_TOLERANCE
    max_quasi_p: float = DEFAULT_MAX_QUASI_P
    paste: bool = True

    def __post_init__(self) -> None:
        for name, low, high in (("alpha", 0.0, 0.5), ("min_mass", 0.0, 1.0), ("min_coverage", 0.0, 1.0),
                                ("threshold", 0.0, 1.0), ("density_tolerance", 0.0, 1.0),
                                ("max_quasi_p", 0.0, 1.0)):
            value = getattr(self, name)
            if not (np.isfinite(value) and low <= value <= high) or (name == "alpha" and value <= 0):
                raise ValueError(f"{name} = {value}: allowed {'(' if name == 'alpha' else '['}{low}, {high}]")


@dataclass(frozen=True)
class Box:
    """Bounds per dimension (``low[j] <= x[:, j] <= high[j]``) and what the box holds."""

    low: np.ndarray
    high: np.ndarray
    coverage: float
    density: float
    mass: float
    restricted: tuple[int, ...]

    @property
    def n_restricted(self) -> int:
        return len(self.restricted)


@dataclass
class PrimResult:
    """The trajectory, the chosen box (None if no point meets the rule) and its statistics."""

    names: tuple[str, ...]
    prior_low: np.ndarray
    prior_high: np.ndarray
    trajectory: pd.DataFrame
    boxes: list[Box]
    chosen: int | None
    box: Box | None
    quasi_p: dict[str, float] = field(default_factory=dict)
    stability: pd.DataFrame | None = None

    def restrictions(self) -> pd.DataFrame:
        """One row per restricted dimension of the chosen box: bounds, prior range, quasi-p, stability."""
        columns = ["dimension", "low", "high", "prior_low", "prior_high", "quasi_p"]
        if self.box is None:
            return pd.DataFrame(columns=columns)
        rows = [{"dimension": self.names[j], "low": float(self.box.low[j]), "high": float(self.box.high[j]),
                 "prior_low": float(self.prior_low[j]), "prior_high": float(self.prior_high[j]),
                 "quasi_p": self.quasi_p.get(self.names[j], np.nan)} for j in self.box.restricted]
        frame = pd.DataFrame(rows, columns=columns)
        if self.stability is not None:
            frame = frame.merge(self.stability, on="dimension", how="left")
        return frame


# --------------------------------------------------------------------------- box measures


def in_box(x: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Boolean mask of the rows of ``x`` inside ``[low, high]`` on every dimension."""
    return np.all((x >= low) & (x <= high), axis=1)


def measure(x: np.ndarray, y: np.ndarray, low: np.ndarray, high: np.ndarray,
            prior_low: np.ndarray, prior_high: np.ndarray) -> Box:
    """The :class:`Box` of bounds ``low``/``high``: coverage, density, mass and restricted dimensions."""
    inside = in_box(x, low, high)
    n_in = int(inside.sum())
    hits = float(y[inside].sum())
    total = float(y.sum())
    restricted = tuple(int(j) for j in np.flatnonzero((low > prior_low) | (high < prior_high)))
    return Box(low.copy(), high.copy(), coverage=hits / total if total else 0.0,
               density=hits / n_in if n_in else 0.0, mass=n_in / len(y), restricted=restricted)


# --------------------------------------------------------------------------- peeling and pasting


def _peel_candidates(xb: np.ndarray, alpha: float) -> list[tuple[int, int, float, np.ndarray]]:
    """Every possible peel of the box's points ``xb``: (dimension, 0 lower / 1 upper, new bound, kept mask)."""
    n = len(xb)
    k = max(1, int(np.floor(alpha * n)))
    out = []
    for j in range(xb.shape[1]):
        values = np.sort(xb[:, j])
        if k >= n:
            continue
        lower, upper = values[k], values[n - 1 - k]
        if lower > values[0]:
            out.append((j, 0, float(lower), xb[:, j] >= lower))
        if upper < values[-1]:
            out.append((j, 1, float(upper), xb[:, j] <= upper))
    return out


def peel(x: np.ndarray, y: np.ndarray, alpha: float, min_mass: float,
         prior_low: np.ndarray, prior_high: np.ndarray) -> list[Box]:
    """The peeling trajectory: the whole box first, then one box per peel, until ``min_mass``."""
    low, high = prior_low.astype(float).copy(), prior_high.astype(float).copy()
    idx = np.arange(len(y))
    boxes = [measure(x, y, low, high, prior_low, prior_high)]
    min_points = min_mass * len(y)
    while True:
        best: tuple[float, int, int, int, float, np.ndarray] | None = None
        for j, side, bound, kept in _peel_candidates(x[idx], alpha):
            n_kept = int(kept.sum())
            if n_kept < min_points or n_kept == 0:
                continue
            key = (float(y[idx[kept]].mean()), n_kept)
            if best is None or key > (best[0], best[1]):
                best = (key[0], n_kept, j, side, bound, kept)
        if best is None:
            return boxes
        _, _, j, side, bound, kept = best
        if side == 0:
            low[j] = bound
        else:
            high[j] = bound
        idx = idx[kept]
        boxes.append(measure(x, y, low, high, prior_low, prior_high))


def paste(x: np.ndarray, y: np.ndarray, box: Box, alpha: float,
          prior_low: np.ndarray, prior_high: np.ndarray) -> Box:
    """Widen ``box`` one edge at a time (about ``alpha`` of its points each) while the density rises."""
    low, high = box.low.copy(), box.high.copy()
    current = box
    while True:
        n_box = round(current.mass * len(y))
        k = max(1, int(np.floor(alpha * n_box)))
        best: Box | None = None
        for j in current.restricted:
            others = np.ones(len(y), dtype=bool)
            for i in range(x.shape[1]):
                if i != j:
                    others &= (x[:, i] >= low[i]) & (x[:, i] <= high[i])
            for side in (0, 1):
                if side == 0:
                    outside = np.sort(x[others & (x[:, j] < low[j]), j])[::-1]
                else:
                    outside = np.sort(x[others & (x[:, j] > high[j]), j])
                if len(outside) == 0:
                    continue
                bound = float(outside[min(k, len(outside)) - 1])
                new_low, new_high = low.copy(), high.copy()
                if side == 0:
                    new_low[j] = bound
                else:
                    new_high[j] = bound
                candidate = measure(x, y, new_low, new_high, prior_low, prior_high)
                if candidate.density > current.density and (best is None or candidate.density > best.density):
                    best = candidate
        if best is None:
            return current
        current, low, high = best, best.low.copy(), best.high.copy()


# --------------------------------------------------------------------------- choice, quasi-p, stability


def choose(boxes: Sequence[Box], settings: PrimSettings) -> int | None:
    """Index of the reported box on the trajectory (the rule in the module docstring), or None."""
    eligible = [i for i, b in enumerate(boxes)
                if b.coverage >= settings.min_coverage and b.density >= settings.threshold]
    if not eligible:
        return None
    top = max(boxes[i].density for i in eligible)
    near = [i for i in eligible if boxes[i].density >= top - settings.density_tolerance]
    return max(near, key=lambda i: (boxes[i].coverage, -i))


def quasi_p(x: np.ndarray, y: np.ndarray, box: Box, prior_low: np.ndarray,
            prior_high: np.ndarray) -> np.ndarray:
    """Per restricted dimension (in ``box.restricted`` order): ``P(Binom(T, p_j) >= H)``."""
    if not box.restricted:
        return np.zeros(0)
    dims = list(box.restricted)
    outside = (x[:, dims] < box.low[dims]) | (x[:, dims] > box.high[dims])  # only restricted dims can exclude
    misses = outside.sum(axis=1)
    inside = misses == 0
    total, hits = int(inside.sum()), int(y[inside].sum())
    wider = inside[:, None] | ((misses == 1)[:, None] & outside)  # column j: the box without restriction j
    p_j = (y @ wider) / np.maximum(wider.sum(axis=0), 1)
    return np.asarray(binom.sf(hits - 1, total, p_j), dtype=float)


def edge_quasi_p(x: np.ndarray, y: np.ndarray, box: Box, prior_low: np.ndarray,
                 prior_high: np.ndarray) -> list[tuple[int, int, float]]:
    """The quasi-p of each restricted edge alone: (dimension, 0 lower / 1 upper, p), that edge widened back."""
    edges = [(j, side) for j in box.restricted for side in (0, 1)
             if (box.low[j] > prior_low[j] if side == 0 else box.high[j] < prior_high[j])]
    violates = np.column_stack([x[:, j] < box.low[j] if side == 0 else x[:, j] > box.high[j] for j, side in edges])
    misses = violates.sum(axis=1)
    inside = misses == 0
    total, hits = int(inside.sum()), int(y[inside].sum())
    wider = inside[:, None] | ((misses == 1)[:, None] & violates)
    p_e = (y @ wider) / np.maximum(wider.sum(axis=0), 1)
    values = binom.sf(hits - 1, total, p_e)
    return [(j, side, float(v)) for (j, side), v in zip(edges, values, strict=True)]


def drop_insignificant(x: np.ndarray, y: np.ndarray, box: Box, max_p: float, prior_low: np.ndarray,
                       prior_high: np.ndarray) -> Box:
    """``box`` without its edges of quasi-p > ``max_p`` (each edge tested alone), the least significant first.

    Tested per edge, not per dimension: a peel at the far edge of a dimension whose near edge matters
    is dropped on its own (``x > 4`` rather than ``x between 4 and 7.8``).
    """
    while box.restricted:
        j, side, value = max(edge_quasi_p(x, y, box, prior_low, prior_high), key=lambda e: e[2])
        if value <= max_p:
            return box
        low, high = box.low.copy(), box.high.copy()
        if side == 0:
            low[j] = prior_low[j]
        else:
            high[j] = prior_high[j]
        box = measure(x, y, low, high, prior_low, prior_high)
    return box


def find_box(x: np.ndarray, y: np.ndarray, settings: PrimSettings,
             prior_low: np.ndarray | None = None, prior_high: np.ndarray | None = None) -> tuple[list[Box], int | None,
                                                                                               Box | None]:
    """Peel, choose and paste: (trajectory boxes, chosen index, the chosen box after pasting)."""
    prior_low = x.min(axis=0) if prior_low is None else prior_low
    prior_high = x.max(axis=0) if prior_high is None else prior_high
    boxes = peel(x, y, settings.alpha, settings.min_mass, prior_low, prior_high)
    chosen = choose(boxes, settings)
    if chosen is None:
        return boxes, None, None
    box = drop_insignificant(x, y, boxes[chosen], settings.max_quasi_p, prior_low, prior_high)
    if settings.paste and box.restricted:
        box = paste(x, y, box, settings.alpha, prior_low, prior_high)
    return boxes, chosen, box


def stability(x: np.ndarray, y: np.ndarray, names: Sequence[str], settings: PrimSettings,
              rng: np.random.Generator, resamples: int = DEFAULT_RESAMPLES) -> pd.DataFrame:
    """PRIM on ``resamples`` bootstrap resamples: per dimension, the share of resamples restricting it and
    the 10% / 90% quantiles of its bounds over those resamples (NaN when never restricted)."""
    prior_low, prior_high = x.min(axis=0), x.max(axis=0)
    d = x.shape[1]
    lows: list[list[float]] = [[] for _ in range(d)]
    highs: list[list[float]] = [[] for _ in range(d)]
    counted = 0
    for _ in range(resamples):
        take = rng.integers(0, len(y), len(y))
        _, _, box = find_box(x[take], y[take], settings, prior_low, prior_high)
        counted += 1
        if box is None:
            continue
        for j in box.restricted:
            lows[j].append(float(box.low[j]))
            highs[j].append(float(box.high[j]))

    def q(values: list[float], level: float) -> float:
        return float(np.quantile(values, level)) if values else float("nan")

    return pd.DataFrame({
        "dimension": list(names),
        "restricted_share_in_resamples": [len(lows[j]) / counted if counted else np.nan for j in range(d)],
        "low_resample_q10": [q(lows[j], 0.1) for j in range(d)],
        "low_resample_q90": [q(lows[j], 0.9) for j in range(d)],
        "high_resample_q10": [q(highs[j], 0.1) for j in range(d)],
        "high_resample_q90": [q(highs[j], 0.9) for j in range(d)],
    })


def trajectory_frame(boxes: Sequence[Box], chosen: int | None) -> pd.DataFrame:
    """One row per peeling step: step, coverage, density, mass, n_restricted, chosen (bool)."""
    return pd.DataFrame({
        "step": np.arange(len(boxes)),
        "coverage": [b.coverage for b in boxes],
        "density": [b.density for b in boxes],
        "mass": [b.mass for b in boxes],
        "n_restricted": [b.n_restricted for b in boxes],
        "chosen": [i == chosen for i in range(len(boxes))],
    })


def prim(x: np.ndarray, y: np.ndarray, names: Sequence[str], settings: PrimSettings | None = None,
         rng: np.random.Generator | None = None, resamples: int = DEFAULT_RESAMPLES) -> PrimResult:
    """PRIM of ``y`` (0/1) on the columns ``names`` of ``x``: trajectory, chosen box, quasi-p, stability.

    ``rng`` drives the bootstrap of the stability check; without it (or with ``resamples=0``) no
    stability is computed.
    """
    settings = settings or PrimSettings()
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.ndim != 2 or x.shape[0] != len(y) or x.shape[1] != len(names):
        raise ValueError(f"x is {x.shape}, y has {len(y)} values, {len(names)} names: they must agree")
    if len(y) == 0 or not np.all(np.isfinite(x)) or not np.all((y == 0) | (y == 1)):
        raise ValueError("x must be finite and non-empty, y 0 or 1")
    prior_low, prior_high = x.min(axis=0), x.max(axis=0)
    boxes, chosen, box = find_box(x, y, settings, prior_low, prior_high)
    qp: dict[str, float] = {}
    if box is not None:
        qp = {names[j]: p for j, p in zip(box.restricted, quasi_p(x, y, box, prior_low, prior_high), strict=True)}
    stab = stability(x, y, names, settings, rng, resamples) if rng is not None and resamples > 0 else None
    return PrimResult(tuple(names), prior_low, prior_high, trajectory_frame(boxes, chosen), boxes, chosen, box,
                      qp, stab)
