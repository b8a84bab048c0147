"""Anticipation: adaptive recruiters near the published bar feel pressure before any warning.

Exact: the pressure of hand-built windows against the equation of docs/model.md (closeness x
exposure x weight); in a run, the pressure the engine adds is that equation on the threshold
book's own window, and it alone moves the recruiters (replayed step by step).  Behaviour: with every
other pressure term off, a recruiter whose response rate is just above the bar raises its
personalization and cuts bulk, one far above does not move at all, and none moves when the threshold
is off or its seat type is not reviewed.  Markets: members who answer on the day they receive an
InMail (check interval 1 day), so a seat's windowed rate is its answer probability.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pytest

from simulator import Adaptation, Market, MemberPopulation, RecruiterGroup, Segment, run_replication
from simulator.core import engine
from simulator.core.anticipation import AnticipationTerms, anticipation_pressure
from simulator.core.config import Anticipation, Threshold
from simulator.core.engine import Simulation
from simulator.core.seeding import streams

from .helpers import constant_market, fixed, phase, policy, run_config

BAR = Threshold(min_sends=100, window_days=14, min_rate=0.13, warning_days=14, improvement_days=14)
"""The 2014 rule (seed 004)."""

QUIET = Adaptation(weight_cost=0.0, weight_scarcity=0.0, weight_warning=0.0, weight_improvement=0.0, speed=0.1)
"""Adaptation with every term but anticipation off: the pressure a recruiter feels is P_ant alone."""


def closed_form(sends: np.ndarray, resp: np.ndarray, bar: float, margin: float, weight: float,
                min_sends: int) -> np.ndarray:
    """The equation of docs/model.md, written out seat by seat in plain Python."""
    out = []
    for n, k in zip(sends.tolist(), resp.tolist(), strict=True):
        r = k / n if n else 0.0
        closeness = min(max((bar * (1 + margin) - r) / (bar * margin), 0.0), 1.0)
        out.append(weight * closeness * min(n / min_sends, 1.0))
    return np.array(out)


def test_pressure_of_hand_built_windows() -> None:
    """Below the bar: full; just above: part; from bar x (1 + margin) up: none; fewer sends: in proportion."""
    subject = np.ones(7, dtype=bool)
    terms = AnticipationTerms.of(Anticipation(True, 0.6, 0.5), BAR, subject)
    assert terms is not None
    sends = np.array([200, 200, 200, 200, 50, 25, 0])
    resp = np.array([10, 28, 39, 60, 7, 3, 0])  # rates 0.05, 0.14, 0.195 (= top), 0.30, 0.14, 0.12, none
    got = anticipation_pressure(terms, sends, resp)
    np.testing.assert_allclose(got, closed_form(sends, resp, 0.13, 0.5, 0.6, 100), rtol=1e-12, atol=1e-15)
    assert got[0] == pytest.approx(0.6)
    assert got[1] == pytest.approx(0.6 * (0.195 - 0.14) / 0.065)
    assert got[2] == pytest.approx(0.0, abs=1e-12) and got[3] == 0.0 and got[6] == 0.0
    assert got[4] == pytest.approx(got[1] * 50 / 100)  # same rate as seat 1, half the exposure
    assert got[5] == pytest.approx(0.6 * 0.25)  # rate below the bar, a quarter of min_sends


def test_pressure_is_proportional_to_exposure_below_min_sends() -> None:
    terms = AnticipationTerms.of(Anticipation(True, 1.5, 1.0), BAR, np.ones(6, dtype=bool))
    assert terms is not None
    sends = np.array([10, 20, 40, 80, 100, 300])
    got = anticipation_pressure(terms, sends, np.zeros(6, dtype=np.int64))  # rate 0: full closeness
    np.testing.assert_allclose(got, 1.5 * np.minimum(sends / 100, 1.0), rtol=1e-15)


@pytest.mark.parametrize(("anticipation", "threshold", "subject"), [
    (Anticipation(False, 0.6, 0.5), BAR, True),
    (Anticipation(True, 0.6, 0.5), Threshold(enabled=False), True),
    (Anticipation(True, 0.6, 0.5), BAR, False),
    (Anticipation(True, 0.0, 0.5), BAR, True),
], ids=["off", "no-threshold", "not-reviewed", "zero-weight"])
def test_no_terms_when_nobody_feels_it(anticipation: Anticipation, threshold: Threshold, subject: bool) -> None:
    assert AnticipationTerms.of(anticipation, threshold, np.full(4, subject)) is None


def test_a_bar_of_zero_puts_no_pressure() -> None:
    """min_rate 0: nobody can breach, and closeness is 0 (not 0 / 0)."""
    terms = AnticipationTerms.of(Anticipation(True, 0.6, 0.5), dataclasses.replace(BAR, min_rate=0.0),
                                 np.ones(2, dtype=bool))
    assert terms is not None
    assert anticipation_pressure(terms, np.array([200, 0]), np.array([0, 0])).tolist() == [0.0, 0.0]


def near_and_far_market(anticipation: Anticipation, seat: str = "recruiter") -> Market:
    """Adaptive recruiters of two segments: answer probability 0.15 (just above the bar 0.13) and 0.60 (far above).

    Members answer on the day (check interval 1), so a seat's window rate is its answer probability;
    20 InMails a weekday, 280 in a 14-day window (exposure 1).
    """
    base = constant_market(members=4000)
    segments = (Segment("near", 0.5, base_response=0.15, active_share=1.0, check_interval_days=fixed(1.0),
                        openness=fixed(0.4)),
                Segment("far", 0.5, base_response=0.60, active_share=1.0, check_interval_days=fixed(1.0),
                        openness=fixed(0.4)))

    def group(name: str, weights: tuple[float, float]) -> RecruiterGroup:
        return RecruiterGroup(name, 30, seat_type=seat, behaviour="adaptive", personalization=fixed(0.4),
                              targeting_skill=fixed(0.0), daily_volume=fixed(20.0), bulk_share=fixed(0.4),
                              time_budget_minutes=fixed(1e9), segment_weights=weights)

    return dataclasses.replace(
        base, members=MemberPopulation(4000, segments),
        recruiters=(group("near", (1.0, 0.0)), group("far", (0.0, 1.0))),
        sending=dataclasses.replace(base.sending, adaptation=QUIET, anticipation=anticipation))


def run_near_and_far(anticipation: Anticipation, threshold: Threshold = BAR, seat: str = "recruiter",
                     horizon: int = 60) -> Simulation:
    sim = Simulation(near_and_far_market(anticipation, seat), policy(phase(), threshold=threshold),
                     run_config(dt.date(2014, 8, 1), horizon), streams(11))
    sim.execute()
    return sim


ON = Anticipation(True, 0.6, 0.5)


def test_a_recruiter_just_above_the_bar_personalizes_more_and_cuts_bulk_one_far_above_does_not() -> None:
    sim = run_near_and_far(ON)
    rec = sim.rec
    near, far = rec.group == 0, rec.group == 1
    assert (rec.pers[near] > 0.4 + 0.05).all() and (rec.bulk[near] < 0.4 - 0.05).all()
    assert (rec.vol[near] < 20.0).all()
    assert (rec.pers[far] == 0.4).all() and (rec.bulk[far] == 0.4).all() and (rec.vol[far] == 20.0).all()


@pytest.mark.parametrize(("threshold", "seat"), [(Threshold(enabled=False), "recruiter"), (BAR, "recruiter_lite")],
                         ids=["threshold-off", "seat-not-reviewed"])
def test_nobody_moves_without_a_threshold_that_reviews_the_seat(threshold: Threshold, seat: str) -> None:
    sim = run_near_and_far(ON, threshold, seat)
    assert (sim.rec.pers == 0.4).all() and (sim.rec.bulk == 0.4).all() and (sim.rec.vol == 20.0).all()
    plain = run_near_and_far(Anticipation(False), threshold, seat)
    assert sim.result().metrics == plain.result().metrics


def test_the_pressure_added_is_the_equation_on_the_books_window_and_alone_moves_the_recruiters(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Record what the engine adds each day; check it against the closed form of that day's window and
    replay the adaptation rule with it: the recruiters end exactly where the run left them."""
    seen: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    real = engine.anticipation_pressure

    def spy(terms: AnticipationTerms, win_sends: np.ndarray, win_resp: np.ndarray) -> np.ndarray:
        out = real(terms, win_sends, win_resp)
        seen.append((win_sends.copy(), win_resp.copy(), out.copy()))
        return out

    monkeypatch.setattr(engine, "anticipation_pressure", spy)
    sim = run_near_and_far(ON, horizon=40)
    assert len(seen) == 40
    pers = np.full(sim.rec.count, 0.4)
    for sends, resp, added in seen:
        np.testing.assert_allclose(added, closed_form(sends, resp, 0.13, 0.5, 0.6, 100), rtol=1e-12, atol=1e-15)
        pers += 0.1 * (0.4 + (1 - 0.4) * QUIET.max_personalization_shift * np.minimum(added, 1.0) - pers)
    np.testing.assert_allclose(sim.rec.pers, pers, rtol=1e-12)
    ramp = [added[sim.rec.group == 0].mean() for _, _, added in seen]
    assert ramp[0] < ramp[13] and ramp[13] > 0.2  # exposure builds up over the first window


def test_statistically_the_mean_pressure_matches_the_closed_form(monkeypatch: pytest.MonkeyPatch) -> None:
    """Seats that do not move (speed 0) answered with p = 0.30 on the day: r = k / n with k ~ Binomial(n, p)
    given n, so E[r] = p; with margin 3 (full below 0.13, none from 0.52) closeness never clips, and n ~ 280 >=
    min_sends, so E[P_ant] = weight (top - p) / span exactly.  Sample: 60 seats x 4 disjoint 14-day windows
    (days 13, 27, 41, 55) = 240 independent values; tolerance 4 SE of their mean (SE ~ 0.003)."""
    seen: list[np.ndarray] = []
    real = engine.anticipation_pressure

    def spy(terms: AnticipationTerms, win_sends: np.ndarray, win_resp: np.ndarray) -> np.ndarray:
        out = real(terms, win_sends, win_resp)
        seen.append(out.copy())
        return out

    monkeypatch.setattr(engine, "anticipation_pressure", spy)
    market = near_and_far_market(Anticipation(True, 0.6, 3.0))
    segments = (dataclasses.replace(market.members.segments[0], share=1.0, base_response=0.30),)
    groups = tuple(dataclasses.replace(g, segment_weights=None) for g in market.recruiters)
    market = dataclasses.replace(market, members=MemberPopulation(4000, segments), recruiters=groups,
                                 sending=dataclasses.replace(market.sending,
                                                             adaptation=dataclasses.replace(QUIET, speed=0.0)))
    run_replication(market, policy(phase(), threshold=BAR), run_config(dt.date(2014, 8, 1), 56), seed=5)
    values = np.concatenate([seen[day] for day in (13, 27, 41, 55)])
    assert values.size == 240 and (values > 0).all() and (values < 0.6).all()  # never clipped
    expected = 0.6 * (0.13 * 4 - 0.30) / (0.13 * 3)
    se = values.std(ddof=1) / np.sqrt(values.size)
    assert abs(values.mean() - expected) <= 4 * se, (values.mean(), expected, se)


def test_off_by_default_and_the_off_switch_keeps_every_number() -> None:
    market = near_and_far_market(Anticipation())
    switched_off = near_and_far_market(Anticipation(False, 5.0, 3.0))
    pol = policy(phase(), threshold=BAR)
    a = run_replication(market, pol, run_config(dt.date(2014, 8, 1), 30), seed=3)
    b = run_replication(switched_off, pol, run_config(dt.date(2014, 8, 1), 30), seed=3)
    assert a.metrics == b.metrics
    assert all(np.array_equal(a.daily[k], b.daily[k]) for k in a.daily)
