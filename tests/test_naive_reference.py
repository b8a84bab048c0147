"""The vectorized engine agrees with the naive per-message simpy reference.

Both implementations simulate the same simplified model (one segment, constant answer probability
``active_share * base_response`` = 0.54, fixed check interval, no heterogeneity, fatigue, adaptation,
threshold or pooling, credits never binding).

Sample size, per refund rule and per implementation: 10 independent replications of 25 recruiters
x 7 InMails per weekday (0.15 x that at weekends) x 40 days, i.e. about 5,300 InMails per
replication and about 53,000 InMails in all, to 3,000 members.  Standard errors are between
replications (sd / sqrt(10)), so they include the member draws; the two estimates must differ by
less than 4 combined standard errors (about 0.011).  Runtime: about 6 s on an idle machine (plus the
simulator import), almost all of it in the naive reference.

The check interval is chosen per rule so that the window matters: 8 days for refund on silence
after 7 days (a member who answers does so within 7 days 66% of the time; an off-by-one in the
window moves the refund fraction by about 9 combined standard errors), 60 days for refund on
response within 90 days (22% of answers come after 90 days, 5% after the 180 observation days).
An off-by-one in the 90-day window is beyond Monte Carlo reach (it moves the fraction by 0.002):
that belongs in a deterministic unit test.
"""

from __future__ import annotations

import math
import sys
from dataclasses import replace
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from naive_reference import Comparison, Estimate, SimpleModel, compare, expected, format_comparison, run_engine

from simulator import Dist, RefundRule

BASE = SimpleModel(recruiters=25, members=3_000, horizon_days=40, daily_volume=Dist("fixed", 7.0),
                   active_share=0.9, base_response=0.6)
REPLICATIONS = 10
ENGINE_REPLICATIONS = 48
TOLERANCE_SE = 4.0

CASES: dict[str, tuple[RefundRule, SimpleModel]] = {
    "on_silence_7d": (RefundRule("on_silence", window_days=7, latency_days=0),
                      replace(BASE, check_interval_days=8.0)),
    "on_response_90d": (RefundRule("on_response", window_days=90, latency_days=1),
                        replace(BASE, check_interval_days=60.0)),
}


@pytest.fixture(scope="module", params=list(CASES), ids=list(CASES))
def case(request: pytest.FixtureRequest) -> tuple[Comparison, SimpleModel]:
    rule, model = CASES[request.param]
    return compare(model, rule, replications=REPLICATIONS, seed=20150201), model


@pytest.mark.parametrize("metric", ["response_rate", "refund_fraction"])
def test_engine_agrees_with_naive_reference(case: tuple[Comparison, SimpleModel], metric: str) -> None:
    comparison, model = case
    for impl in ("naive", "engine"):
        assert comparison.inmails(impl) > 45_000, f"{impl}: sample smaller than the stated ~53,000 InMails"
    z = comparison.z(metric)  # type: ignore[arg-type]
    assert math.isfinite(z)
    assert abs(z) < TOLERANCE_SE, format_comparison(comparison, model)


@pytest.mark.parametrize("name", list(CASES))
def test_engine_matches_closed_form(name: str) -> None:
    """Both could share a misreading of the model: the engine must also hit the closed form.

    The engine is cheap, so this uses 48 replications (about 260,000 InMails; SE about 0.001).
    """
    rule, model = CASES[name]
    runs = [run_engine(model, rule, 7_000 + i) for i in range(ENGINE_REPLICATIONS)]
    truth = expected(model, rule)
    for metric in ("response_rate", "refund_fraction"):
        est = Estimate.of([getattr(t, metric) for t in runs])
        assert abs(est.mean - truth[metric]) < TOLERANCE_SE * est.se, (
            f"{name} {metric}: engine {est.mean:.5f} +- {est.se:.5f}, closed form {truth[metric]:.5f}")
