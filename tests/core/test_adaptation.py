"""Adaptation: the pressure formula against a plainly written reference, and the state update.

``pressure`` applies only the clipping bounds that can bind (refunds and balances are never
negative); these tests hold it to the documented formula with every bound applied.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.core.config import Adaptation
from simulator.core.recruiters import AdaptTerms, Recruiters, adapt, pressure


def _recruiters(rng: np.random.Generator, n: int) -> Recruiters:
    z = np.zeros(n)
    pers0, bulk0, vol0 = rng.random(n), rng.random(n), rng.exponential(6.0, n)
    spent = rng.exponential(4.0, n) * (rng.random(n) < 0.8)  # some recruiters idle: no recent spending
    refunded = spent * rng.uniform(0.0, 1.5, n)  # refunds can run ahead of spending for a while
    return Recruiters(
        seat=np.zeros(n, np.int8), group=np.zeros(n, np.int16), adaptive=rng.random(n) < 0.7,
        team=np.arange(n), segment=np.zeros(n, np.int16), skill=z.copy(), budget=z + 90.0,
        pers0=pers0, bulk0=bulk0, vol0=vol0, pers=rng.random(n), bulk=rng.random(n), vol=rng.exponential(6.0, n),
        ewma_spent=spent, ewma_refunded=refunded,
    )


def _reference_pressure(rec: Recruiters, a: Adaptation, balance: np.ndarray, days: int,
                        warned: np.ndarray, in_ip: np.ndarray) -> np.ndarray:
    """docs/model.md, 'Adaptation', written out with every clip."""
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.where(rec.ewma_spent <= 1e-9, a.cost_reference, 1.0 - rec.ewma_refunded / rec.ewma_spent)
    cost = np.clip((c - a.cost_reference) / (1.0 - a.cost_reference), 0.0, 1.0)
    c = np.clip(c, 0.0, 1.0)
    scarcity = np.clip(1.0 - balance / (rec.vol * c * max(days, 1) + 1.0), 0.0, 1.0)
    p = (a.weight_cost * cost + a.weight_scarcity * scarcity + a.weight_warning * warned
         + a.weight_improvement * in_ip)
    return np.clip(p, 0.0, 1.0)


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 60), days=st.integers(0, 31),
       w=st.tuples(*[st.floats(0.0, 2.0)] * 4), ref=st.floats(0.0, 0.95))
def test_pressure_is_the_documented_formula_and_in_unit_interval(
    seed: int, n: int, days: int, w: tuple[float, float, float, float], ref: float,
) -> None:
    rng = np.random.default_rng(seed)
    rec = _recruiters(rng, n)
    a = Adaptation(weight_cost=w[0], weight_scarcity=w[1], weight_warning=w[2], weight_improvement=w[3],
                   cost_reference=ref)
    balance = rng.exponential(20.0, n) * (rng.random(n) < 0.7)
    warned, in_ip = rng.random(n) < 0.2, rng.random(n) < 0.1
    p = pressure(rec, a, balance, days, warned, in_ip)
    assert ((p >= 0.0) & (p <= 1.0)).all()
    np.testing.assert_allclose(p, _reference_pressure(rec, a, balance, days, warned, in_ip), rtol=1e-12, atol=1e-12)
    # nobody warned or in an Improvement Period may be passed as False
    none = np.zeros(n, dtype=bool)
    np.testing.assert_array_equal(pressure(rec, a, balance, days, False, False),
                                  pressure(rec, a, balance, days, none, none))


def test_adapt_moves_adaptive_recruiters_toward_the_targets_and_leaves_fixed_ones() -> None:
    """Exact: one step of speed s from x to x + s (target - x); kept terms give the same numbers."""
    rng = np.random.default_rng(3)
    a = Adaptation(speed=0.25, max_personalization_shift=0.6, max_volume_cut=0.5)
    rec = _recruiters(rng, 40)
    again = Recruiters(**{k: np.copy(v) for k, v in vars(rec).items()})
    before = {k: getattr(rec, k).copy() for k in ("pers", "bulk", "vol")}
    p = rng.random(40)
    adapt(rec, a, p)
    adapt(again, a, p, AdaptTerms.of(again, a))
    targets = {"pers": rec.pers0 + (1.0 - rec.pers0) * 0.6 * p, "bulk": rec.bulk0 * (1.0 - p),
               "vol": rec.vol0 * (1.0 - 0.5 * p)}
    fixed = ~rec.adaptive
    for k, target in targets.items():
        now = getattr(rec, k)
        np.testing.assert_array_equal(now, getattr(again, k))
        np.testing.assert_array_equal(now[fixed], before[k][fixed])
        np.testing.assert_allclose(now[~fixed], before[k][~fixed] + 0.25 * (target - before[k])[~fixed], rtol=1e-12)
    off = Adaptation(enabled=False)
    adapt(rec, off, p)
    np.testing.assert_array_equal(rec.pers, again.pers)
