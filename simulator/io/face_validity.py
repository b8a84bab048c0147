"""Face validity: does a run look like what the source documents say?  The numbers behind the report section.

From a run folder's daily series (``timeseries.csv``) and recruiter breakdowns:

* the response rate week by week (responses / InMails of the week's cohort, per replication), with
  the range across replications, around the policies' switch dates;
* per month, the share of the seats the threshold reviews (``Threshold.seat_types``) that were
  warned (the daily ``warnings`` summed over the month / reviewed seats) and that were in an
  Improvement Period on an average day of the month (daily ``in_improvement`` / reviewed seats);
* the documents' figures beside them (:data:`DOCUMENT_FIGURES`) and one sentence per figure saying
  whether the run agrees.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from simulator.experiments.experiment import Results


@dataclass(frozen=True)
class DocumentFigure:
    """A published figure a run can be held against: a band ``[low, high]`` (``low`` 0 for a bound)."""

    key: str
    text: str
    source: str
    low: float
    high: float

    def holds(self, value: float) -> bool:
        return math.isfinite(value) and self.low <= value <= self.high


DOCUMENT_FIGURES: dict[str, DocumentFigure] = {f.key: f for f in (
    DocumentFigure("misuse", "under 2% of users misuse bulk InMail", "seed 004", 0.0, 0.02),
    DocumentFigure("lowest", "the lowest segments answer 16-19%", "seed 004", 0.16, 0.19),
    DocumentFigure("optimal", "20-30% is generally considered optimal (targeted content)", "seeds 001, 004",
                   0.20, 0.30),
    DocumentFigure("rise_2014", "response rates rose by more than 25% after the 2014 updates", "seed 002",
                   0.25, math.inf),
)}
"""The documents' figures the section shows (docs/calibration.md, 'Targets')."""

WEEK_DAYS = 7


def has_daily_series(results: Results) -> bool:
    """Whether the run kept its daily series (``timeseries.csv`` with the response and threshold series)."""
    ts = results.timeseries
    return not ts.empty and {"sent", "responses", "warnings", "in_improvement"} <= set(ts["metric"].unique())


def _wide(results: Results, metrics: tuple[str, ...]) -> pd.DataFrame:
    """The daily series of ``metrics`` as columns, one row per policy, replication and day."""
    ts = results.timeseries
    ts = ts[ts["metric"].isin(metrics)]
    return ts.pivot_table(index=["policy", "replication", "day"], columns="metric", values="value",
                          aggfunc="sum").reset_index()


def _spread(frame: pd.DataFrame, keys: list[str], column: str) -> pd.DataFrame:
    """Mean and range across replications of ``column`` per ``keys``."""
    grouped = frame.groupby(keys, sort=True)[column]
    return pd.DataFrame({"mean": grouped.mean(), "low": grouped.min(), "high": grouped.max(),
                         "n": grouped.size()}).reset_index()


def weekly_response_rate(results: Results) -> pd.DataFrame:
    """Per policy and week: ``week`` (its first date), ``mean``, ``low``, ``high`` (range across replications)."""
    daily = _wide(results, ("sent", "responses"))
    daily["week"] = daily["day"] // WEEK_DAYS
    weeks = daily.groupby(["policy", "replication", "week"], sort=True)[["sent", "responses"]].sum().reset_index()
    weeks["rate"] = np.where(weeks["sent"] > 0, weeks["responses"] / weeks["sent"].where(weeks["sent"] > 0), np.nan)
    out = _spread(weeks.dropna(subset=["rate"]), ["policy", "week"], "rate")
    start = results.scenario.run.start_date
    out["week"] = [start + dt.timedelta(days=int(w) * WEEK_DAYS) for w in out["week"]]
    return out


def reviewed_seats(results: Results) -> pd.DataFrame:
    """Per policy and replication, the seats its threshold reviews (policies without a threshold left out)."""
    bd = results.breakdown_replications
    rows = []
    for name, policy in results.scenario.policies.items():
        if not policy.threshold.enabled:
            continue
        mine = bd[(bd["by"] == "seat_type") & (bd["policy"] == name) & bd["label"].isin(policy.threshold.seat_types)]
        for replication, seats in mine.groupby("replication")["recruiters"].sum().items():
            rows.append({"policy": name, "replication": int(replication), "reviewed": float(seats)})
    return pd.DataFrame(rows, columns=["policy", "replication", "reviewed"])


def monthly_threshold_shares(results: Results) -> pd.DataFrame:
    """Per policy with a threshold and calendar month: the share of reviewed seats warned that month and
    the share in an Improvement Period on an average day of it (``warned_*``, ``ip_*``: mean, low, high)."""
    seats = reviewed_seats(results)
    if seats.empty:
        return pd.DataFrame(columns=["policy", "month", "days", "warned_mean", "warned_low", "warned_high",
                                     "ip_mean", "ip_low", "ip_high"])
    daily = _wide(results, ("warnings", "in_improvement")).merge(seats, on=["policy", "replication"])
    start = results.scenario.run.start_date
    daily["month"] = [dt.date((d := start + dt.timedelta(days=int(day))).year, d.month, 1) for day in daily["day"]]
    months = daily.groupby(["policy", "replication", "month"], sort=True).agg(
        warnings=("warnings", "sum"), in_improvement=("in_improvement", "mean"), days=("day", "size"),
        reviewed=("reviewed", "first")).reset_index()
    reviewed = months["reviewed"].where(months["reviewed"] > 0)
    months["warned"] = (months["warnings"] / reviewed).fillna(0.0)
    months["ip"] = (months["in_improvement"] / reviewed).fillna(0.0)
    warned = _spread(months, ["policy", "month"], "warned")
    ip = _spread(months, ["policy", "month"], "ip")
    days = months.groupby(["policy", "month"], sort=True)["days"].first().reset_index()
    for prefix, frame in (("warned_", warned), ("ip_", ip)):
        frame = frame.drop(columns="n").rename(columns={c: prefix + c for c in ("mean", "low", "high")})
        days = days.merge(frame, on=["policy", "month"])
    return days


def good_senders_rate(results: Results) -> pd.DataFrame:
    """Per policy: the response rate of the recruiters in the high personalization band (mean, low, high)."""
    bd = results.breakdown_replications
    high = bd[(bd["by"] == "personalization_band") & (bd["label"] == "high")]
    return _spread(high, ["policy"], "response_rate")


def switch_dates(results: Results) -> dict[str, dt.date]:
    """The policies that switch rules during the run, and when."""
    sc = results.scenario
    end = sc.run.start_date + dt.timedelta(days=sc.run.horizon_days)
    return {name: p.switch_date for name, p in sc.policies.items()
            if p.switch_date is not None and sc.run.start_date < p.switch_date < end}


def threshold_contrasts(results: Results) -> list[str]:
    """The compared policies that add a threshold to a baseline without one (the 2014 updates' contrast)."""
    sc = results.scenario
    if sc.policies[sc.baseline].threshold.enabled:
        return []
    return [name for name in sc.policy_names if name != sc.baseline and sc.policies[name].threshold.enabled]


__all__ = ["DOCUMENT_FIGURES", "DocumentFigure", "good_senders_rate", "has_daily_series", "monthly_threshold_shares",
           "reviewed_seats", "switch_dates", "threshold_contrasts", "weekly_response_rate"]
