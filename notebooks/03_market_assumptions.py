# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 · Market assumptions: how much does the answer depend on them?
#
# The old-vs-new comparison rests on assumptions about the market that the documents only sketch:
#
# * the **share of bulk-heavy senders** (fewer than 2% of users misuse bulk InMail, POLICY_FACTS 3, 5);
# * **member fatigue**, the externality generic InMails impose on everyone (POLICY_FACTS 6);
# * **adaptation**: whether recruiters change how they send when the rule changes.
#
# Each section varies one assumption, re-runs the main comparison at each value and plots the
# new-minus-old difference in response rate and in net credit burn with its 95% interval.

# %% tags=["parameters"]
# Parameters. The defaults are the real sizes (several minutes on 2 cores); CI runs this notebook
# with the small values in brackets (papermill-style: this cell is tagged "parameters").
SCENARIO = "../scenarios/old_vs_new.yaml"   # relative to this folder
REPLICATIONS = 10        # per policy and setting                           [CI: 2]
MEMBERS = 100_000        # simulated members (the scenario's own number)    [CI: 2_000]
RECRUITER_SCALE = 1.0    # multiplies every recruiter group's count         [CI: 0.06]
HORIZON_DAYS = 365       # days of sending                                  [CI: 60]
WORKERS = 2              # worker processes; results do not depend on it    [CI: 1]

# %%
import matplotlib.pyplot as plt
import pandas as pd

from simulator import load_scenario, run_scenario

pd.set_option("display.width", 140)

base = load_scenario(SCENARIO)
COUNTS = {g.name: max(1, round(g.count * RECRUITER_SCALE)) for g in base.market.recruiters if g.count > 0}
SIZE = {"market.members.count": MEMBERS, "horizon_days": HORIZON_DAYS}
SIZE |= {f"market.recruiters.{name}.count": n for name, n in COUNTS.items()}
METRICS = ["response_rate", "net_credit_burn"]


def effect(assumption: str, value: float, overrides: dict) -> pd.DataFrame:
    """Run the scenario with ``overrides`` on top of the size; return the new-vs-old rows of METRICS."""
    res = run_scenario(SCENARIO, SIZE | overrides, replications=REPLICATIONS, workers=WORKERS)
    comp = res.comparison[res.comparison["metric"].isin(METRICS)]
    return comp.assign(assumption=assumption, value=value)[
        ["assumption", "value", "metric", "baseline_mean", "policy_mean", "diff", "ci_low", "ci_high", "rel_change"]]


def plot(frame: pd.DataFrame, xlabel: str) -> plt.Figure:
    """The difference (new - old) of each metric against the assumption's value, with 95% intervals."""
    fig, axes = plt.subplots(1, len(METRICS), figsize=(12, 4))
    for ax, metric in zip(axes, METRICS, strict=True):
        d = frame[frame["metric"] == metric].sort_values("value")
        ax.errorbar(d["value"], d["diff"], yerr=[d["diff"] - d["ci_low"], d["ci_high"] - d["diff"]],
                    fmt="o-", capsize=3)
        ax.axhline(0, color="grey", lw=1)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"{metric}: new - old (95% CI)")
    fig.tight_layout()
    return fig


# %% [markdown]
# ## 1 · The share of bulk-heavy senders
#
# The scenario has 15 bulk-heavy senders among 1,000 recruiters (1.5%). Here the share goes from 0 to
# 10%, taking recruiters from (or giving them to) the adaptive corporate group so the total stays the
# same.

# %%
total = sum(COUNTS.values())
rows = []
for share in [0.0, 0.015, 0.03, 0.06, 0.10]:
    bulk = round(share * total)
    corporate = COUNTS["corporate_adaptive"] + COUNTS["bulk_heavy"] - bulk
    rows.append(effect("bulk share", bulk / total, {"market.recruiters.bulk_heavy.count": bulk,
                                                    "market.recruiters.corporate_adaptive.count": corporate}))
bulk_share = pd.concat(rows, ignore_index=True)
bulk_share

# %%
plot(bulk_share, "share of bulk-heavy senders among recruiters");

# %% [markdown]
# ## 2 · Member fatigue
#
# `market.fatigue.sensitivity` scales how much a member's accumulated InMail load lowers the chance
# that they answer (0 = no fatigue; the scenario's value is the default 0.08).

# %%
fatigue = pd.concat([effect("fatigue sensitivity", s, {"market.fatigue.sensitivity": s})
                     for s in [0.0, 0.04, 0.08, 0.16]], ignore_index=True)
fatigue

# %%
plot(fatigue, "fatigue sensitivity");

# %% [markdown]
# ## 3 · Adaptation
#
# Adaptive recruiters move a share `speed` of the way towards their new habit each day (the scenario's
# value is 0.05); speed 0 means adaptation is switched off (everyone keeps their 2014 habits).

# %%
rows = [effect("adaptation speed", 0.0, {"market.sending.adaptation.enabled": False})]
rows += [effect("adaptation speed", s, {"market.sending.adaptation.speed": s}) for s in [0.02, 0.05, 0.15]]
adaptation = pd.concat(rows, ignore_index=True)
adaptation

# %%
plot(adaptation, "adaptation speed (share of the way per day)");

# %% [markdown]
# ## Summary
#
# How far the response-rate difference moves across each assumption's range: if the spread is large
# compared with the intervals, the conclusion depends on that assumption and it deserves calibration.

# %%
every = pd.concat([bulk_share, fatigue, adaptation], ignore_index=True)
every["half_width"] = (every["ci_high"] - every["ci_low"]) / 2
spread = every.groupby(["assumption", "metric"], sort=False).agg(
    lowest=("diff", "min"), highest=("diff", "max"), median_ci_half_width=("half_width", "median"))
spread["range"] = spread["highest"] - spread["lowest"]
spread
