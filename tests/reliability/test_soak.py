"""Soak: 200 back-to-back small runs of ``inmail-sim run`` with random valid ``--set`` overrides.

Hypothesis draws a dozen-odd fields from their documented valid ranges (docs/scenarios.md,
``simulator/core/config.py``) - members, recruiter groups, horizon, start date, seed, replications,
refund rule, allotments, accrual, threshold, pooling, a switch date, a one-off grant, the response
and fatigue models - and applies them to the tiny scenario.  Most runs go through
``simulator.cli.main`` in this process; about one in twenty is the real command in a subprocess with
two workers.  Every run must exit 0 without a traceback and write tables whose numbers are sound:
finite (the only empty cells are the ones docs/scenarios.md allows), rates in [0, 1], counts
non-negative whole numbers, the metric identities of docs/metrics.md, and credit conservation
(granted = final balance + spent - refunded + expired), which needs the ledger's final balance:
replication 0 of each policy is re-run alone (``run_single``) and must also match its written row.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.core.metrics import BREAKDOWN_METRICS, METRIC_NAMES
from simulator.experiments.replication import run_single
from simulator.scenario import load_scenario

from .helpers import ROOT, RUN_OUTPUTS, cli, tiny_file

pytestmark = pytest.mark.slow

EXAMPLES = int(__import__("os").environ.get("SOAK_EXAMPLES", 200))
RATES = ("response_rate", "acceptance_rate")
COUNTS = ("sent", "sent_bulk", "sent_personalized", "responses", "accepted", "declined", "unanswered", "pending",
          "credits_granted", "credits_spent", "credits_refunded", "credits_expired", "net_credit_burn",
          "credits_lost", "stockout_recruiter_days", "warnings", "improvement_periods")
"""Metrics that count things: whole numbers >= 0."""
BREAKDOWN_COUNTS = ("recruiters", "sent", "sent_bulk", "responses", "accepted", "credits_spent", "credits_refunded",
                    "net_credit_burn", "stockout_recruiter_days", "warnings", "improvement_periods")
ADDITIVE = ("sent", "sent_bulk", "responses", "accepted", "credits_spent", "credits_refunded", "warnings",
            "improvement_periods", "stockout_recruiter_days")
"""Metrics whose subgroup values add up to the market's, in every breakdown."""


# --------------------------------------------------------------------------- the draws


@dataclass(frozen=True)
class Case:
    """One soak run: the ``--set`` overrides, ``--seed``, ``-n`` and whether to use the real command."""

    sets: tuple[str, ...]
    seed: int
    replications: int
    subprocess: bool


def _set(path: str, value: object) -> str:
    return f"{path}={json.dumps(value)}"  # JSON values are YAML flow values


def _r(x: float) -> float:
    return round(x, 4)


fractions = st.floats(0.0, 1.0).map(_r)
inner = st.floats(0.01, 0.99).map(_r)
START = dt.date(2014, 1, 1)


@st.composite
def market_sets(draw: st.DrawFn, horizon: int) -> list[str]:
    """Members, recruiter groups and the behaviour models, inside their documented ranges."""
    sets = [
        _set("market.members.count", draw(st.integers(1, 1500))),
        _set("market.recruiters.corporate.count", draw(st.integers(0, 30))),
        _set("market.recruiters.lite.count", draw(st.integers(0, 10))),
        _set("market.recruiters.bulk.count", draw(st.integers(0, 3))),
        _set("market.members.segments.a.base_response", draw(inner)),
        _set("market.members.segments.b.active_share", draw(fractions)),
    ]
    if draw(st.booleans()):
        sets.append(_set("market.recruiters.corporate.daily_volume", {
            "kind": "lognormal", "a": _r(draw(st.floats(0.1, 20))), "b": _r(draw(st.floats(0.0, 1.5)))}))
        sets.append(_set("market.recruiters.corporate.behaviour", draw(st.sampled_from(["fixed", "adaptive"]))))
    if draw(st.booleans()):
        sets.append(_set("market.response", {
            "personalization_effect": _r(draw(st.floats(0.0, 5.0))),
            "reference_personalization": draw(fractions),
            "bulk_personalization_factor": draw(fractions),
            "member_heterogeneity_sd": _r(draw(st.floats(0.0, 2.0))),
            "observation_days": draw(st.integers(1, 2 * horizon + 10)),
        }))
    if draw(st.booleans()):
        sets.append(_set("market.fatigue", {
            "enabled": draw(st.booleans()),
            "weight_bulk": _r(draw(st.floats(0.0, 5.0))),
            "weight_personalized": _r(draw(st.floats(0.0, 5.0))),
            "half_life_days": _r(draw(st.floats(0.5, 365.0))),
            "sensitivity": _r(draw(st.floats(0.0, 2.0))),
        }))
    if draw(st.booleans()):
        sets.append(_set("market.sending.weekend_factor", _r(draw(st.floats(0.0, 2.0)))))
    return sets


@st.composite
def policy_sets(draw: st.DrawFn, name: str, start: dt.date, horizon: int) -> list[str]:
    """The credit rules of policy ``name``: refund, allotments, accrual, pooling, threshold, grants, switch."""
    p = f"policies.{name}"
    sets = []
    if draw(st.booleans()):
        sets.append(_set(f"{p}.refund", {"kind": draw(st.sampled_from(["on_silence", "on_response", "never"])),
                                         "window_days": draw(st.integers(0, 120)),
                                         "latency_days": draw(st.integers(0, 5))}))
    if draw(st.booleans()):
        sets.append(_set(f"{p}.allotments", {"recruiter": draw(st.integers(0, 300)),
                                             "recruiter_lite": draw(st.integers(0, 60))}))
    if draw(st.booleans()):
        sets.append(_set(f"{p}.accrual", {"kind": draw(st.sampled_from(["unlimited", "cap", "expire"])),
                                          "cap_months": _r(draw(st.floats(0.0, 6.0))),
                                          "expire_days": draw(st.integers(1, 120))}))
    if draw(st.booleans()):
        sets.append(_set(f"{p}.pooling", draw(st.booleans())))
    threshold = draw(st.sampled_from(["keep", "off", "on", "custom"]))
    if threshold in ("off", "on"):
        sets.append(f"{p}.threshold={threshold}")
    elif threshold == "custom":
        sets.append(_set(f"{p}.threshold", {"min_rate": draw(fractions), "min_sends": draw(st.integers(1, 200)),
                                            "window_days": draw(st.integers(1, 30)),
                                            "improvement_days": draw(st.integers(1, 30))}))
    if draw(st.integers(0, 4)) == 0:
        day = start + dt.timedelta(days=draw(st.integers(0, horizon)))
        sets.append(_set(f"{p}.grants", [{"date": day.isoformat(), "amount": draw(st.integers(0, 500))}]))
    if draw(st.integers(0, 4)) == 0:
        switch = start + dt.timedelta(days=draw(st.integers(0, horizon)))
        sets += [_set(f"{p}.switch_date", switch.isoformat()),
                 _set(f"{p}.before", {"preset": draw(st.sampled_from(["old_2014", "pre_threshold_2014"]))})]
    return sets


@st.composite
def cases(draw: st.DrawFn) -> Case:
    horizon = draw(st.integers(1, 45))
    start = START + dt.timedelta(days=draw(st.integers(0, 3 * 365)))
    sets = [_set("horizon_days", horizon), _set("start_date", start.isoformat())]
    sets += draw(market_sets(horizon))
    for name in ("old", "new"):
        sets += draw(policy_sets(name, start, horizon))
    seed = draw(st.integers(0, 2**32 - 1))
    # one run in twenty as a real process: chosen by a hash of the draws (hypothesis favours small
    # integers, so a drawn number would pick far more), and the same again when an example is replayed
    real = zlib.crc32("\n".join([*sets, str(seed)]).encode()) % 20 == 0
    return Case(sets=tuple(sets), seed=seed, replications=draw(st.integers(1, 3)), subprocess=real)


# --------------------------------------------------------------------------- the checks


def finite(frame: pd.DataFrame, columns: list[str] | tuple[str, ...], what: str) -> None:
    values = frame[list(columns)].to_numpy(dtype=np.float64)
    assert np.isfinite(values).all(), f"{what}: non-finite value in\n{frame[list(columns)][~np.isfinite(values)]}"


def whole_non_negative(frame: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    values = frame[list(columns)].to_numpy(dtype=np.float64)
    assert (values >= 0).all(), f"{what}: a negative count"
    assert (values == np.round(values)).all(), f"{what}: a count that is not a whole number"


def check_replications(reps: pd.DataFrame, n: int) -> None:
    """Per replication: finite, rates in [0, 1], counts >= 0 and the identities of docs/metrics.md."""
    assert sorted(reps["replication"].unique()) == list(range(n))
    finite(reps, METRIC_NAMES, "replications.csv")
    whole_non_negative(reps, COUNTS, "replications.csv")
    assert ((reps[list(RATES)] >= 0) & (reps[list(RATES)] <= 1)).all().all()
    for name in ("credits_per_response", "inmails_per_active_member", "unanswered_per_active_member",
                 "mean_member_fatigue"):
        assert (reps[name] >= 0).all(), name
    r = reps
    assert (r["sent"] == r["sent_bulk"] + r["sent_personalized"]).all()
    assert (r["responses"] == r["accepted"] + r["declined"]).all()
    assert (r["unanswered"] == r["sent"] - r["responses"]).all() and (r["pending"] == r["unanswered"]).all()
    assert (r["credits_spent"] == r["sent"]).all()
    assert (r["credits_refunded"] <= r["credits_spent"]).all()
    assert (r["net_credit_burn"] == r["credits_spent"] - r["credits_refunded"]).all()
    assert (r["credits_lost"] == r["credits_spent"] - r["credits_refunded"] + r["credits_expired"]).all()
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(r["sent"] > 0, r["responses"] / r["sent"], 0.0)
    assert np.allclose(r["response_rate"], rate, rtol=1e-12, atol=0)


def check_summary(summary: pd.DataFrame, n: int) -> None:
    finite(summary, ["mean", "std", "ci_low", "ci_high", "n"], "summary.csv")
    assert (summary["n"] == n).all() and (summary["std"] >= 0).all()
    assert (summary["ci_low"] <= summary["mean"] + 1e-9).all() and (summary["mean"] <= summary["ci_high"] + 1e-9).all()
    rates = summary[summary["metric"].isin(RATES)]["mean"]
    assert ((rates >= 0) & (rates <= 1)).all()
    assert (summary[summary["metric"].isin(COUNTS)]["mean"] >= 0).all()


def check_comparison(comp: pd.DataFrame, n: int) -> None:
    """Finite, except the empty cells docs/scenarios.md allows: p_value with one replication, rel_* from a 0 mean."""
    finite(comp, ["diff", "ci_low", "ci_high", "baseline_mean", "policy_mean", "n", "unpaired_ci_low",
                  "unpaired_ci_high", "ci_shrink"], "comparison.csv")
    p = comp["p_value"]
    assert p.isna().all() if n == 1 else (p.notna() & (p >= 0) & (p <= 1)).all(), "p_value"
    for col in ("rel_change", "rel_ci_low", "rel_ci_high"):
        empty = ~np.isfinite(comp[col].to_numpy(dtype=np.float64))
        assert (comp.loc[empty, "baseline_mean"] == 0).all() and (comp.loc[empty, "diff"] != 0).all(), col
        assert comp.loc[empty, col].isna().all(), f"{col}: an infinite value"
    assert comp["significant"].isin([True, False]).all()


def check_breakdowns(bd: pd.DataFrame, reps: pd.DataFrame) -> None:
    """Subgroups: finite, rates in [0, 1], counts >= 0, and they add up to the market's totals."""
    finite(bd, BREAKDOWN_METRICS, "breakdown_replications.csv")
    whole_non_negative(bd, BREAKDOWN_COUNTS, "breakdown_replications.csv")
    assert ((bd[list(RATES)] >= 0) & (bd[list(RATES)] <= 1)).all().all()
    totals = reps.set_index(["policy", "replication"])[list(ADDITIVE)].sort_index()
    for by, group in bd.groupby("by"):
        sums = group.groupby(["policy", "replication"])[list(ADDITIVE)].sum().sort_index()
        pd.testing.assert_frame_equal(sums, totals.loc[sums.index], check_dtype=False, obj=f"breakdown by {by}")


def check_timeseries(ts: pd.DataFrame, reps: pd.DataFrame, horizon: int) -> None:
    """Daily series: finite, rates in [0, 1], one value per day; sent, grants and expiry add up to the totals."""
    finite(ts, ["value"], "timeseries.csv")
    assert ((ts["day"] >= 0) & (ts["day"] < horizon)).all()
    rates = ts[ts["metric"].isin(RATES)]["value"]
    assert ((rates >= 0) & (rates <= 1)).all()
    sums = ts.groupby(["policy", "replication", "metric"])["value"].sum().unstack("metric")
    totals = reps.set_index(["policy", "replication"]).loc[sums.index]
    for name in ("sent", "credits_granted", "credits_spent", "credits_expired"):
        assert np.allclose(sums[name], totals[name], rtol=0, atol=1e-6), name
    assert (sums["credits_refunded"] <= totals["credits_refunded"] + 1e-6).all()  # + refunds after the horizon


def check_members(md: pd.DataFrame) -> None:
    assert (md["members"] >= 0).all()
    per = md.groupby(["policy", "replication", "quantity"])["members"].sum().unstack("quantity")
    assert (per["received"] == per["unanswered"]).all()  # both histograms count every active member


def check_conservation(scenario: Path, case: Case, reps: pd.DataFrame) -> None:
    """Replication 0 of each policy re-run alone: the ledger conserved credits and the row is the same."""
    sc = load_scenario(scenario, case.sets)
    for name, policy in sc.policies.items():
        res = run_single(sc.market, policy, sc.run, case.seed, 0)
        m, final = res.metrics, res.extra["final_balance"]
        assert res.extra["credits_conserved"] == 1.0, name
        assert final >= 0, name
        assert m["credits_granted"] == final + m["credits_spent"] - m["credits_refunded"] + m["credits_expired"], name
        assert m["credits_lost"] == m["credits_granted"] - final, name
        row = reps[(reps["policy"] == name) & (reps["replication"] == 0)].iloc[0]
        assert {k: float(row[k]) for k in METRIC_NAMES} == m, f"{name}: replication 0 re-run alone differs"


def check_run(folder: Path, scenario: Path, case: Case) -> None:
    for name in RUN_OUTPUTS:
        assert (folder / name).is_file(), name
    assert (folder / "manifest.json").is_file()
    n, horizon = case.replications, int(json.loads(case.sets[0].split("=", 1)[1]))
    reps = pd.read_csv(folder / "replications.csv")
    check_replications(reps, n)
    check_summary(pd.read_csv(folder / "summary.csv"), n)
    check_comparison(pd.read_csv(folder / "comparison.csv"), n)
    check_breakdowns(pd.read_csv(folder / "breakdown_replications.csv"), reps)
    check_timeseries(pd.read_csv(folder / "timeseries.csv"), reps, horizon)
    check_members(pd.read_csv(folder / "member_distribution.csv"))
    check_conservation(scenario, case, reps)


# --------------------------------------------------------------------------- the soak


def run_case(case: Case, scenario: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["run", str(scenario), "--out", str(out), "-n", str(case.replications), "--seed", str(case.seed),
            "--no-figures", "-q"]
    for text in case.sets:
        argv += ["--set", text]
    if case.subprocess:
        proc = subprocess.run([sys.executable, "-m", "simulator", *argv, "--workers", "2", "--no-progress"],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
        code, err = proc.returncode, proc.stdout + proc.stderr
    else:
        code, out_text, err = cli(capsys, *argv)
        err += out_text
    assert code == 0, err
    assert "Traceback" not in err and "Warning" not in err, err


def test_200_random_valid_runs_exit_0_with_sound_numbers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tiny_file(tmp_path)
    done: list[Case] = []

    @settings(max_examples=EXAMPLES, deadline=None, database=None, print_blob=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(case=cases())
    def soak(case: Case) -> None:
        with tempfile.TemporaryDirectory(dir=tmp_path) as folder:
            out = Path(folder) / "run"
            run_case(case, scenario, out, capsys)
            check_run(out, scenario, case)
        done.append(case)

    started = time.monotonic()
    soak()
    elapsed = time.monotonic() - started
    assert len(done) >= EXAMPLES, f"only {len(done)} runs"
    subprocesses = sum(c.subprocess for c in done)
    print(f"soak: {len(done)} runs ({subprocesses} as subprocesses with 2 workers) in {elapsed:.0f} s")
