"""Pareto fronts and hypervolume of a multi-objective search (pure numpy, no simulation).

Points are given in *minimization* form: lower is better in every column (a maximized objective is
negated first).  The hypervolume of a front is the volume it dominates inside the box up to a
reference point; with objectives normalised to [0, 1] (see :func:`normalise`) and the reference
point 1.1 in every column, an empty front has hypervolume 0 and a single ideal point 1.1^d.
"""

from __future__ import annotations

import numpy as np

REFERENCE = 1.1
"""The reference point of the normalised hypervolume, in every objective."""


def dominates(a: np.ndarray, b: np.ndarray) -> bool:
    """``a`` is no worse than ``b`` in every objective and better in one (minimization)."""
    return bool(np.all(a <= b) and np.any(a < b))


def non_dominated(points: np.ndarray) -> np.ndarray:
    """Indices of the points no other point dominates (ties kept; minimization), in input order."""
    points = np.asarray(points, dtype=np.float64)
    keep = [i for i, p in enumerate(points)
            if not np.any(np.all(points <= p, axis=1) & np.any(points < p, axis=1))]
    return np.array(keep, dtype=np.int64)


def normalise(points: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """``(points - low) / (high - low)`` column by column (a column with no range maps to 0)."""
    span = np.where(high > low, high - low, 1.0)
    return (np.asarray(points, dtype=np.float64) - low) / span


def hypervolume(points: np.ndarray, reference: np.ndarray) -> float:
    """The exact volume dominated by ``points`` and bounded by ``reference`` (minimization; slicing).

    Recursive in the number of objectives: sort by the last column, and add each slab between
    consecutive values times the hypervolume of the points below it in the other columns.  Exact and
    fast enough for the fronts a search produces (tens of points, a few objectives).
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, len(reference))
    pts = pts[np.all(pts < reference, axis=1)]
    if len(pts) == 0:
        return 0.0
    if pts.shape[1] == 1:
        return float(reference[0] - pts[:, 0].min())
    pts = pts[non_dominated(pts)]
    order = np.argsort(pts[:, -1], kind="stable")
    pts = pts[order]
    total = 0.0
    for k in range(len(pts)):
        upper = pts[k + 1, -1] if k + 1 < len(pts) else reference[-1]
        depth = upper - pts[k, -1]
        if depth > 0:
            total += depth * hypervolume(pts[: k + 1, :-1], reference[:-1])
    return float(total)


def generational_distance(found: np.ndarray, true_front: np.ndarray) -> float:
    """Mean Euclidean distance from each found point to its nearest point of ``true_front``."""
    found = np.asarray(found, dtype=np.float64)
    true_front = np.asarray(true_front, dtype=np.float64)
    dist = np.sqrt(((found[:, None, :] - true_front[None, :, :]) ** 2).sum(axis=2)).min(axis=1)
    return float(dist.mean())
