"""The tornado: one input at a time at its low and high value around the scenario as written, sorted by swing.

``2 d + 1`` evaluations for ``d`` inputs; with common random numbers each effect is a paired
difference against the base point, with a Student-t interval over the replications.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from simulator.experiments.design import Parameter
from simulator.experiments.statistics import CONFIDENCE, t_half_width


def tornado_points(parameters: Sequence[Parameter]) -> list[dict[str, Any]]:
    """The one-at-a-time design: the base point (no change), then each input at low and at high."""
    pts: list[dict[str, Any]] = [{}]
    for p in parameters:
        lo, hi = p.scale(np.array([0.0, 1.0]))
        pts += [{p.path: lo}, {p.path: hi}]
    return pts


def tornado_table(values: np.ndarray, parameters: Sequence[Parameter], outputs: Sequence[str],
                  base_values: Mapping[str, Any] | None = None, confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Effect of each input's low and high value on each output, largest first.

    ``effect_low`` / ``effect_high``: output change from the base point (``*_hw``: Student-t
    half-widths at ``confidence``, the sensitivity block's setting); ``swing`` = output at high -
    output at low; ``span``: the width of the tornado
    bar (``max(effects, 0) - min(effects, 0)``), the sort key.

    ``values``: ``(2 d + 1, s, r)`` outputs over :func:`tornado_points` and ``r`` replications
    (common random numbers: paired against the base point; ``r`` = 1 gives no CIs).
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 2:
        v = v[..., None]
    base = v[0]
    r = v.shape[-1]

    def hw(x: np.ndarray) -> float:
        """Student-t half-width (at ``confidence``) of a mean over replications (NaN for one replication)."""
        return float(t_half_width(np.std(x, ddof=1), r, confidence)) if r > 1 else np.nan

    rows = []
    for j, p in enumerate(parameters):
        lo_v, hi_v = v[1 + 2 * j], v[2 + 2 * j]
        for k, out in enumerate(outputs):
            d_lo, d_hi = lo_v[k] - base[k], hi_v[k] - base[k]
            swing = hi_v[k] - lo_v[k]
            low_x, high_x = p.scale(np.array([0.0, 1.0]))
            rows.append({
                "output": out, "parameter": p.path,
                "base_value": (base_values or {}).get(p.path), "low": low_x, "high": high_x,
                "output_base": base[k].mean(), "output_low": lo_v[k].mean(), "output_high": hi_v[k].mean(),
                "effect_low": d_lo.mean(), "effect_low_hw": hw(d_lo), "effect_high": d_hi.mean(),
                "effect_high_hw": hw(d_hi), "swing": swing.mean(), "swing_hw": hw(swing),
                "span": max(d_lo.mean(), d_hi.mean(), 0.0) - min(d_lo.mean(), d_hi.mean(), 0.0),
            })
    out_frame = pd.DataFrame(rows)
    if out_frame.empty:
        return out_frame
    order = {o: i for i, o in enumerate(outputs)}
    out_frame["_o"] = out_frame["output"].map(order)
    out_frame = out_frame.sort_values(["_o", "span"], ascending=[True, False], kind="stable")
    return out_frame.drop(columns=["_o"]).reset_index(drop=True)


def tornado_analyse(func: Callable[[np.ndarray], np.ndarray], parameters: Sequence[Parameter],
                    base: Sequence[float], outputs: Sequence[str] | None = None) -> pd.DataFrame:
    """Tornado of a deterministic ``func`` (``(m, d)`` -> ``(m,)`` or ``(m, s)``) around ``base``."""
    pts = tornado_points(parameters)
    X = np.tile(np.asarray(base, dtype=np.float64), (len(pts), 1))
    for k, pt in enumerate(pts):
        for j, p in enumerate(parameters):
            if p.path in pt:
                X[k, j] = pt[p.path]
    y = np.asarray(func(X), dtype=np.float64)
    y = y[:, None] if y.ndim == 1 else y
    names = list(outputs) if outputs is not None else [f"y{k}" for k in range(y.shape[1])]
    return tornado_table(y[..., None], parameters, names, dict(zip([p.path for p in parameters], base,
                                                                   strict=True)))
