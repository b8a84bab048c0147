"""Uncertain market assumptions as data: prior distributions over market fields, and a world's market.

A scenario's ``uncertain:`` block names parameters; each sets one or more market fields (dotted paths,
as in ``--set``) to ``value x factor`` and has a prior.  A *world* is one value per parameter; its
market is the scenario's market with those fields set (:func:`world_market`).  Everything here is
plain data and numpy: the core never sees a prior, only the frozen :class:`Market` of a world.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import stats

from simulator.core.config import Dist, Market

PriorKind = Literal["uniform", "loguniform", "beta", "lognormal"]
PRIOR_KINDS: tuple[str, ...] = ("uniform", "loguniform", "beta", "lognormal")
"""Allowed prior kinds (``uniform`` / ``loguniform`` on ``[a, b]``; ``beta`` with mean ``a`` and
concentration ``b`` on ``[0, 1]``; ``lognormal`` with median ``a`` and log-sd ``b``) - the distribution
kinds of the model's own fields, plus ``loguniform``."""


@dataclass(frozen=True)
class _Distribution:
    """A scipy distribution with its parameters, not frozen: freezing one builds its docstring (~1 ms),
    and a scenario's priors are evaluated on every load."""

    family: Any
    parameters: dict[str, float]

    def cdf(self, x: Any) -> Any:
        return self.family.cdf(x, **self.parameters)

    def ppf(self, q: Any) -> Any:
        return self.family.ppf(q, **self.parameters)

    def logpdf(self, x: Any) -> Any:
        return self.family.logpdf(x, **self.parameters)


@dataclass(frozen=True)
class Prior:
    """A prior over one parameter; a lognormal is truncated to ``[low, high]`` when those are given."""

    kind: PriorKind
    a: float
    b: float
    lower: float = -math.inf
    upper: float = math.inf

    def _dist(self) -> _Distribution:
        if self.kind == "uniform":
            return _Distribution(stats.uniform, {"loc": self.a, "scale": self.b - self.a})
        if self.kind == "loguniform":
            return _Distribution(stats.loguniform, {"a": self.a, "b": self.b})
        if self.kind == "beta":
            return _Distribution(stats.beta, {"a": self.a * self.b, "b": (1.0 - self.a) * self.b})
        return _Distribution(stats.lognorm, {"s": self.b, "scale": self.a})

    @property
    def low(self) -> float:
        """Smallest value the prior gives (after truncation)."""
        return float(max(self._dist().ppf(0.0), self.lower))

    @property
    def high(self) -> float:
        """Largest value the prior gives (after truncation)."""
        return float(min(self._dist().ppf(1.0), self.upper))

    def _cdf_bounds(self) -> tuple[float, float]:
        d = self._dist()
        return float(d.cdf(self.lower)) if math.isfinite(self.lower) else 0.0, \
            float(d.cdf(self.upper)) if math.isfinite(self.upper) else 1.0

    @property
    def mass(self) -> float:
        """The share of the untruncated distribution inside ``[lower, upper]`` (0: the truncation leaves nothing)."""
        lo, hi = self._cdf_bounds()
        return max(hi - lo, 0.0)

    def ppf(self, u: np.ndarray) -> np.ndarray:
        """Quantile function: maps ``u`` in [0, 1] to values (space-filling designs go through it)."""
        lo, hi = self._cdf_bounds()
        return np.asarray(self._dist().ppf(lo + np.asarray(u, dtype=np.float64) * (hi - lo)), dtype=np.float64)

    def logpdf(self, x: np.ndarray) -> np.ndarray:
        """Log density (``-inf`` outside the support), normalised after truncation."""
        x = np.asarray(x, dtype=np.float64)
        lo, hi = self._cdf_bounds()
        out = np.asarray(self._dist().logpdf(x), dtype=np.float64) - math.log(hi - lo)
        return np.where((x >= self.lower) & (x <= self.upper), out, -np.inf)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` independent draws (inverse-CDF, so truncation costs nothing)."""
        return self.ppf(rng.random(n))


@dataclass(frozen=True)
class UncertainParameter:
    """One uncertain assumption: the market fields it sets (``(dotted path, factor)``), its prior and why."""

    name: str
    paths: tuple[tuple[str, float], ...]
    prior: Prior
    reason: str = ""

    def field_values(self, value: float) -> dict[str, float]:
        """``{path: value x factor}``: what a world with this parameter at ``value`` sets."""
        return {path: float(value) * factor for path, factor in self.paths}


# --------------------------------------------------------------------------- setting market fields


def _set(obj: Any, segs: Sequence[str], value: float, shown: str) -> Any:
    """``obj`` with the field at ``segs`` set to ``value`` (frozen dataclasses and tuples rebuilt)."""
    seg, rest = segs[0], segs[1:]
    if isinstance(obj, tuple):
        names = [getattr(item, "name", None) for item in obj]
        if seg in names:
            i = names.index(seg)
        elif seg.isascii() and seg.isdigit() and int(seg) < len(obj):
            i = int(seg)
        else:
            raise KeyError(f"{shown}: no item {seg!r}; allowed: {', '.join(str(n) for n in names)}")
        return (*obj[:i], _set(obj[i], rest, value, shown), *obj[i + 1:])
    if not dataclasses.is_dataclass(obj) or seg not in {f.name for f in dataclasses.fields(obj)}:
        raise KeyError(f"{shown}: no field {seg!r}")
    old = getattr(obj, seg)
    if rest:
        new: Any = _set(old, rest, value, shown)
    elif isinstance(old, Dist):  # a bare number sets a distribution to that fixed value
        new = Dist("fixed", float(value), 0.0)
    elif isinstance(old, bool) or not isinstance(old, (int, float)):
        raise KeyError(f"{shown}: not a numeric field")
    else:
        new = round(value) if isinstance(old, int) else float(value)
    return dataclasses.replace(obj, **{seg: new})  # type: ignore[type-var]


def set_market_fields(market: Market, values: Mapping[str, float]) -> Market:
    """``market`` with each dotted ``market.`` path of ``values`` set (the config classes check the ranges).

    Raises ``KeyError`` for a path that names no numeric market field and ``ConfigError`` for a
    value outside the field's allowed range.
    """
    for path, value in values.items():
        segs = path.split(".")
        if segs[0] != "market" or len(segs) < 2:
            raise KeyError(f"{path}: an uncertain assumption is a market field (paths start with 'market.')")
        market = _set(market, segs[1:], value, path)
    return market


def world_market(market: Market, parameters: Sequence[UncertainParameter], values: Sequence[float]) -> Market:
    """The market of the world whose parameters take ``values`` (one per parameter, in order)."""
    fields: dict[str, float] = {}
    for parameter, value in zip(parameters, values, strict=True):
        fields.update(parameter.field_values(value))
    return set_market_fields(market, fields)
